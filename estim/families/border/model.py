"""The border model: illegal crossing attempts, apprehensions and unobserved crossings per section × month ×
category, for the whole border (DESIGN §4, family 4).

It is the generative process of ``docs/simulator.md`` (the contract), with the retry probability fixed at 1.
Indices: section s (12), month t, category c (border_resident, labour_migrant, transit_migrant, smuggler,
bypasser), detector d; y(t) = years since the first month, m(t) month of the year, I_e(t) the share of month t
with policy event e in force.

**Journeys** (intentions to cross illegally), J_{s,t,c} ~ NegBin(μ_{s,t,c}, φ_c) with

    log μ_{s,t,c} = log(ℓ_s/1000) + α_s + β_c + S_c(m) + τ_c y + Σ_e log(1 + (θ_{e,c} − 1) I_e(t))
                    + γ log(N_s/10⁵) [c = border_resident]                       (c ≠ bypasser)
    μ_{s,t,bypasser} = F_{s,t} · expit(η0 + η1 log(max(w_{s,t}, 0.1)/60))

ℓ_s section length, N_s near-border population (``data/sections.csv``); α_s sum-to-zero section effects; S_c two
seasonal harmonics; θ_{e,c} = exp(log_policy_effect): every policy event on every category's journeys (the data
cover all three events); F_{s,t}, w_{s,t} the land foreign flow and its mean wait at the section's checkpoints
(observed exactly, conditioned on): bypassers are law-abiding foreigners who cross outside a checkpoint, their
share rising with the wait with elasticity η1.

**Apprehension** per attempt (competing detector hazards):

    p_{s,t,c} = 1 − exp(−H),   log H = a_s + b_c + log Σ_d exp(e_d + δ y [d = technical])

a_s ~ Normal(μ_a + t_{terrain(s)}, σ_a) is partially pooled across sections, around a mean shifted by the
section's terrain (``data/sections.csv``; t sums to zero over terrains; ``terrain_hazard = false`` in [options]
pools all sections around one mean) (centred by default: every section's a_s is well
informed — by repeats or by the bypass block — and the non-centred form had 18 divergences and ESS 165 for σ_a
on the shipped data; ``centered_hazard = false`` in a spec's [options] for the other); b_c sums to zero;
e_patrol = 0. Within the month each
journey makes attempts until one succeeds (Espenshade's repeated trials, retry probability 1): its
apprehensions K_j ~ Geometric, P(K_j = k) = p^k (1 − p). Every journey ends in an unobserved crossing, so
**unobserved** = J and attempts = apprehensions + unobserved.

**Likelihood** (sufficient statistics of ``estim.statistics`` with ``period="month"``):

* surveyed sections (individual records): the apprehended journeys A = Σ_k f_k (a person makes at most one
  journey a month) follow NegBin(μp, φ) (binomial thinning of a gamma–Poisson count), and the repeat counts f_k
  follow the zero-truncated geometric P(k | k ≥ 1) = p^{k−1}(1 − p): the single-register family's kernel,
  reused (``kernels.log_truncated_pmf("geometric", …)`` with log-mean log(p/(1 − p))). This identifies p
  section by section, month by month;
* unsurveyed sections (monthly totals only): the apprehensions K = Σ_j K_j have mean μq, q = p/(1 − p), and
  their exact compound law: A ~ NegBin(μp, φ) journeys are apprehended at least once and K − A | A is the
  sum of A geometric counts of further apprehensions, so
  P(K = k) = Σ_{a=1..k} NegBin(a; μp, φ) C(k−1, a−1) p^{k−a}(1 − p)^a (``_totals_logp``; Σ K terms).
  Until 2026-11 this was a negative binomial matched to K's mean and variance; K alone must separate μ from
  p, and the matched law's wrong shape biased the unsurveyed sections' unobserved crossings ~4 % low (28 of
  30 recovery datasets; 16 % in one cell's large-sample limit). With the exact law, over the same 30
  datasets: low in 17 of 30, by 0.8 % on average; section-year coverage 0.897 (was 0.871, 469 of 557 misses
  on one side; now 232 above, 211 below);
* the detector split of each month's apprehensions (all sections, categories) is multinomial with shares
  ∝ exp(e_d + δ y [d = technical]): it identifies the technical trend δ, hence p's trend everywhere.

In an unsurveyed section K alone mixes flow and detection (E K = μ p/(1 − p)); a_s there is informed by the
bypassers, whose flow is tied to the observed F and w through η0 and η1 learnt in the surveyed sections, and by
the hierarchy. That is an assumption (the bypass law is the same on every section) the summary states.

**Unobserved crossings** are drawn from their conditional law given the data at each posterior draw (not the
expectation μ(1 − p)): with G the gamma rate of the cell, G | A ~ Gamma(φ + A, φ/μ + p) and J − A | G ~
Poisson(G(1 − p)); in unsurveyed cells A | K is drawn first, P(A = a | K) ∝ NegBin(a; μp, φ) · C(K−1, a−1)
p^{K−a}(1 − p)^a.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.special
import xarray as xr

from estim.errors import EstimInputError
from estim.families import kernels
from estim.families.base import Family, MLEResult, register, rng_from
from estim.priors import Prior, merge_priors

CATEGORIES = ("border_resident", "labour_migrant", "transit_migrant", "smuggler", "bypasser")
JOURNEY_CATEGORIES = CATEGORIES[:4]  # log-linear journeys; bypassers follow the checkpoint flows
RESIDENT = "border_resident"
BYPASSER = "bypasser"
DETECTORS = ("patrol", "technical", "informant")
HARMONICS = ("cos1", "sin1", "cos2", "sin2")
OBSERVED = "apprehensions"  # the unsurveyed sections' monthly totals

DEFAULT_PRIORS: dict[str, Prior] = {
    # journeys: log per 1,000 km per month at the first month (residents: at 100,000 border population);
    # the simulator's calibrated values lie in 1–4
    "category_level": Prior("Normal", mu=2.0, sigma=2.0),
    "section_sd": Prior("HalfNormal", sigma=0.5),
    "season": Prior("Normal", mu=0.0, sigma=0.5),
    "trend": Prior("Normal", mu=0.0, sigma=0.25),  # per year: ±0.5 = ×1.6 a year, at the extreme
    "log_policy_effect": Prior("Normal", mu=0.0, sigma=0.5),
    "population_elasticity": Prior("Normal", mu=1.0, sigma=0.5),
    # 1/√φ (Stan's prior choice recommendation): 0 is Poisson, 0.5 is φ = 4
    "overdispersion": Prior("HalfNormal", sigma=0.5),
    "bypass_eta0": Prior("Normal", mu=-8.0, sigma=2.0),  # logit bypass share at a 60-minute wait
    "bypass_eta1": Prior("Normal", mu=0.0, sigma=2.0),  # elasticity of the bypass odds in the wait
    # detection: log hazard; p = 1 − exp(−H): hazard_mean −0.5 with the detector sum ≈ p 0.45
    "hazard_mean": Prior("Normal", mu=-0.5, sigma=1.0),
    "hazard_section_sd": Prior("HalfNormal", sigma=0.3),
    # terrain shifts the sections' mean hazard (sum to zero over terrains): ±0.5 is a factor 1.6 in the hazard
    "hazard_terrain": Prior("ZeroSumNormal", sigma=0.5),
    "hazard_category": Prior("ZeroSumNormal", sigma=0.5),
    "hazard_detector": Prior(
        "Normal", mu=0.0, sigma=1.5
    ),  # technical, informant relative to patrol
    "technical_trend": Prior("Normal", mu=0.0, sigma=0.2),
}


# --------------------------------------------------------------------------------------------------------------
# Data


def policy_in_force(events: pd.DataFrame, months: np.ndarray) -> xr.DataArray:
    """I_e(t): the share of the days of month t on or after event e's start date (0 before, 1 after)."""
    first = np.asarray(months).astype("datetime64[M]").astype("datetime64[D]")
    nxt = (np.asarray(months).astype("datetime64[M]") + np.timedelta64(1, "M")).astype(
        "datetime64[D]"
    )
    days = (nxt - first).astype(int)
    rows = []
    for start in events["start_date"]:
        d = np.datetime64(pd.Timestamp(start).date(), "D")
        after = (nxt - np.maximum(first, d)).astype(int)
        rows.append(np.clip(after / days, 0.0, 1.0))
    return xr.DataArray(
        np.array(rows).reshape(len(events), len(first)),
        dims=("event", "month"),
        coords={"event": events["kind"].astype(str).tolist(), "month": months},
    )


def border_data(stats: xr.Dataset, sections: pd.DataFrame, events: pd.DataFrame) -> xr.Dataset:
    """The border model's data from the sufficient statistics (``sufficient_statistics(period="month")``),
    the section table and the policy events: totals, repeat-apprehension frequencies of the surveyed
    sections, land flows and waits, section covariates and policy indicators."""
    if stats.attrs.get("period") != "month":
        raise EstimInputError(
            "the border model needs monthly repeat-apprehension frequencies: "
            "sufficient statistics with period='month'"
        )
    missing = [c for c in CATEGORIES if c not in stats["category"].values]
    if missing:
        raise EstimInputError(f"the records lack categories {missing}")
    stats = stats.sel(category=list(CATEGORIES), detector=list(DETECTORS))
    months = stats["month"].values
    by_detector = stats["apprehended"].transpose("section", "month", "category", "detector")
    apprehensions = by_detector.sum("detector")
    surveyed = stats["individual_records"].values.astype(bool)
    freq = stats["frequency"].transpose("section", "period", "category", "k").values
    if freq.shape[1] != len(months):
        raise EstimInputError("frequency periods do not match the months")
    k = stats["k"].values.astype(np.int64)
    journeys_apprehended = freq.sum(axis=3)
    from_freq = (freq * k).sum(axis=3)
    bad = surveyed[:, None, None] & (from_freq != apprehensions.values)
    if bad.any():
        s, t, c = np.argwhere(bad)[0]
        raise EstimInputError(
            f"section {stats['section'].values[s]}, month {str(months[t])[:7]}, category "
            f"{CATEGORIES[c]}: the repeat-apprehension frequencies add up to {from_freq[s, t, c]} "
            f"apprehensions but the totals say {apprehensions.values[s, t, c]}"
        )
    sec = sections.set_index(sections["section_id"].astype(str))
    order = [str(s) for s in stats["section"].values]
    absent = [s for s in order if s not in sec.index]
    if absent:
        raise EstimInputError(f"sections.csv has no row for {absent}")
    sec = sec.loc[order]
    month_index = np.arange(len(months))
    month_of_year = pd.DatetimeIndex(months).month.values
    flow = stats["land_crossings_foreigners"].transpose("section", "month").values
    wait = stats["land_mean_wait_minutes"].transpose("section", "month").values
    if np.isnan(wait).any() or (flow < 0).any():
        raise EstimInputError("land flows/waits missing for some section-month")
    events = events[events["section_id"].astype(str) == "*"]
    data = xr.Dataset(
        {
            "apprehensions": apprehensions.astype(np.int64),
            "apprehensions_by_detector": by_detector.astype(np.int64),
            "apprehended_journeys": (
                ("section", "month", "category"),
                np.where(surveyed[:, None, None], journeys_apprehended, -1).astype(np.int64),
            ),
            "frequency": (("section", "month", "category", "k"), freq.astype(np.int64)),
            "surveyed": ("section", surveyed),
            "length_km": ("section", sec["length_km"].to_numpy(float)),
            "border_population": ("section", sec["border_population"].to_numpy(float)),
            "terrain": ("section", sec["terrain"].astype(str).to_numpy()),
            "land_foreign_crossings": (("section", "month"), flow.astype(np.int64)),
            "land_mean_wait": (("section", "month"), wait.astype(float)),
            "years": ("month", month_index / 12.0),
            "month_of_year": ("month", month_of_year.astype(np.int64)),
            "policy_in_force": policy_in_force(events, months),
        },
        coords={
            "section": order,
            "month": months,
            "category": list(CATEGORIES),
            "detector": list(DETECTORS),
            "k": k,
            "year": ("month", pd.DatetimeIndex(months).year.values.astype(np.int64)),
        },
    )
    data.attrs["description"] = (
        "border model data: monthly apprehensions, repeat frequencies, flows"
    )
    return data


# --------------------------------------------------------------------------------------------------------------
# Model


def _harmonics(month_of_year: np.ndarray) -> np.ndarray:
    w = 2 * np.pi * month_of_year / 12.0
    return np.stack(
        [np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)], axis=1
    )  # (month, harmonic)


def _rates(data: xr.Dataset, v: Mapping[str, Any], xp: Any) -> tuple[Any, Any, Any, Any]:
    """log μ (section, month, category), log p, log(1 − p) = −H and φ (category), for PyTensor or NumPy
    parameter values ``v`` (NumPy: each with a leading draw axis)."""
    y = data["years"].values

    def ax(x: Any, n_after: int) -> Any:  # append trailing axes
        for _ in range(n_after):
            x = x[..., None]
        return x

    harm = _harmonics(data["month_of_year"].values)  # (M, 4)
    season = (
        xp.dot(v["season"], harm.T)
        if xp is not np
        else np.einsum("...ch,mh->...cm", v["season"], harm)
    )
    # season: (..., C4, M)
    log_len = np.log(data["length_km"].values / 1000.0)  # (S,)
    log_pop = np.log(data["border_population"].values / 1e5)
    in_force = data["policy_in_force"].values  # (E, M)
    theta = xp.exp(v["log_policy_effect"])  # (..., E, C4)
    # Σ_e log(1 + (θ − 1) I_e(t)): (..., C4, M)
    pol = xp.log(1.0 + (ax(theta, 1) - 1.0) * in_force[:, None, :]).sum(axis=-3)
    cat_t = ax(v["category_level"], 1) + season + ax(v["trend"], 1) * y + pol  # (..., C4, M)
    resident = np.array([c == RESIDENT for c in JOURNEY_CATEGORIES], float)  # (C4,)
    sec = ax(v["section_effect"], 2) + log_len[:, None, None]  # (..., S, 1, 1)
    pop = ax(v["population_elasticity"], 3) * (log_pop[:, None, None] * resident[None, :, None])
    log_mu4 = sec + pop + xp.expand_dims(cat_t, -3) if xp is np else sec + pop + cat_t[None, :, :]
    # (..., S, C4, M)
    flow = data["land_foreign_crossings"].values.astype(float)
    wait = np.log(np.maximum(data["land_mean_wait"].values, 0.1) / 60.0)
    eta0, eta1 = ax(v["bypass_eta0"], 2), ax(v["bypass_eta1"], 2)
    log_share = -kernels.softplus(-(eta0 + eta1 * wait), xp)  # log expit, (..., S, M)
    log_mu_b = np.log(np.maximum(flow, 1.0)) + log_share
    log_mu = xp.concatenate([log_mu4, xp.expand_dims(log_mu_b, -2)], axis=-2)  # (..., S, C, M)
    # detection
    e = v["hazard_detector_full"]  # (..., D)
    tech = np.array([d == "technical" for d in DETECTORS], float)
    det = ax(e, 1) + ax(v["technical_trend"], 2) * (tech[:, None] * y[None, :])  # (..., D, M)
    log_sum = (
        pm.math.logsumexp(det, axis=-2, keepdims=False)
        if xp is not np
        else scipy.special.logsumexp(det, axis=-2)
    )  # (..., M)
    log_h = (
        ax(v["hazard_section"], 2)
        + ax(v["hazard_category"], 1)[..., None, :, :]
        + xp.expand_dims(xp.expand_dims(log_sum, -2), -3)
    )  # (..., S, C, M)
    h = xp.exp(log_h)
    log_p = kernels.log1mexp(-h, xp)
    log_1mp = -h
    phi = 1.0 / v["overdispersion"] ** 2  # (..., C)
    return log_mu, log_p, log_1mp, phi


def _nb_logp(value: Any, log_mean: Any, phi: Any, xp: Any) -> Any:
    """NegBin(mean exp(log_mean), shape φ) via the shared kernel (dispersion α = 1/φ)."""
    return kernels.log_pmf("negbin", value, log_mean, xp, alpha=1.0 / phi)


# Widths of the dense blocks of the unsurveyed likelihood: cells are grouped by their total k into blocks of
# width w (terms a = 1…w, masked beyond k), so padding wastes at most a third of the work. Measured (JAX,
# whole-model gradient, shipped data): 3.6–3.9 ms, as with the moment-matched law it replaces; a ragged
# gather/scatter form took 5.5 ms, blocks split by category 7.6 ms, powers of 4 5.9 ms.
_BLOCK_WIDTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)


def _totals_logp(
    k_obs: np.ndarray,
    keep: np.ndarray,
    log_mp: Any,
    log_p: Any,
    log_1mp: Any,
    phi: Any,
) -> Any:
    """log P(K = k) per (section, month, category) cell of an unsurveyed section, under the exact compound law
    of the model: A ~ NegBin(μp, φ) journeys are apprehended at least once, each then K_j − 1 more times,
    K_j − 1 ~ Geometric (P = p^{K_j − 1}(1 − p)), so

        P(K = 0) = NegBin(0; μp, φ),   P(K = k) = Σ_{a=1..k} NegBin(a; μp, φ) C(k−1, a−1) p^{k−a} (1−p)^a.

    ``k_obs`` (…, category) observed totals, ``keep`` 0/1 weights of the same shape (0: a cell that cannot
    occur, contributes 0); ``log_mp`` = log μp, ``log_p``, ``log_1mp`` tensors of that shape; ``phi``
    (category,) or broadcast to that shape. Cost is Σ k terms (one per possible A), not a sum over the
    journeys J.

    Each term is  g_c(a) + A0 + a·B + c(k, a)  with g_c(a) = log Γ(a + φ_c) − log Γ(φ_c) (one table over
    a = 0…max k per category, not a log-gamma per term), A0 = φ log(φ/(φ + μp)) + k log p,
    B = log(μp/(φ + μp)) + log(1 − p) − log p, and the constant c = log C(k−1, a−1) − log a!. Cells are
    grouped by k into dense blocks (``_BLOCK_WIDTHS``): dense sums differentiate faster than ragged gathers
    and scatters."""
    shape = k_obs.shape
    n_cat = shape[-1]
    kf = np.asarray(k_obs).reshape(-1).astype(np.int64)
    keepf = np.asarray(keep).reshape(-1) > 0
    cat = np.broadcast_to(np.arange(n_cat), shape).reshape(-1)
    lmp, lp, l1p = (pt.reshape(x, (-1,)) for x in (log_mp, log_p, log_1mp))
    # φ per cell (CustomDist hands its parameters over broadcast to the data's shape) and per category
    phi_cells = pt.reshape(pt.broadcast_to(phi, shape), (-1,))
    phi = phi_cells[:n_cat]
    lphi = pt.log(phi_cells)
    log_a0 = -pt.softplus(lmp - lphi)  # log φ/(φ + μp)
    log_a1 = -pt.softplus(lphi - lmp)  # log μp/(φ + μp)
    pos = np.flatnonzero(keepf & (kf > 0))
    zero = np.flatnonzero(keepf & (kf == 0))
    out = pt.zeros(kf.shape[0])
    if len(zero):
        out = pt.set_subtensor(out[zero], phi_cells[zero] * log_a0[zero])
    if len(pos):
        k_max = int(kf[pos].max())
        widths = tuple(w for w in _BLOCK_WIDTHS if w < k_max) + (
            min([w for w in _BLOCK_WIDTHS if w >= k_max], default=k_max),
        )
        width_of = np.array(widths)[np.searchsorted(widths, kf[pos])]
        # positive cells ordered by block width: every block is a contiguous slice
        order = np.argsort(width_of, kind="stable")
        perm, w_sorted, c_sorted = pos[order], width_of[order], cat[pos][order]
        k_sorted = kf[perm].astype(float)
        a0 = phi_cells[perm] * log_a0[perm] + k_sorted * lp[perm]
        b = log_a1[perm] + l1p[perm] - lp[perm]
        grid = np.arange(widths[-1] + 1, dtype=float)
        g = pt.gammaln(grid[None, :] + phi[:, None]) - pt.gammaln(phi)[:, None]  # (category, a)
        parts = []
        bounds = np.flatnonzero(np.diff(w_sorted)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(perm)], strict=True):
            w = int(w_sorted[lo])
            k = k_sorted[lo:hi, None]
            a = np.arange(1, w + 1, dtype=float)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                const = (
                    scipy.special.gammaln(k)
                    - scipy.special.gammaln(a)
                    - scipy.special.gammaln(np.maximum(k - a, 0.0) + 1)
                    - scipy.special.gammaln(a + 1)
                )
            const = np.where(a <= k, const, -1e30)  # beyond k: no term (exp underflows to 0)
            terms = g[c_sorted[lo:hi], 1 : w + 1] + a * b[lo:hi, None] + const
            parts.append(pm.math.logsumexp(terms, axis=1, keepdims=False))
        out = pt.set_subtensor(out[perm], a0 + pt.concatenate(parts))
    return pt.reshape(out, shape)


def build_border(
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    *,
    centered_hazard: bool = True,
    terrain_hazard: bool = True,
) -> pm.Model:
    """The border model (see the module docstring) on `border_data`'s output."""
    p = merge_priors(DEFAULT_PRIORS, priors)
    surveyed = data["surveyed"].values
    if not surveyed.any():
        raise EstimInputError(
            "the border model needs at least one section with individual apprehension records: "
            "without repeat apprehensions the apprehension probability is not identified"
        )
    coords = {
        "section": data["section"].values.tolist(),
        "month": data["month"].values,
        "category": list(CATEGORIES),
        "journey_category": list(JOURNEY_CATEGORIES),
        "detector": list(DETECTORS),
        "other_detector": list(DETECTORS[1:]),
        "harmonic": list(HARMONICS),
        "event": data["event"].values.tolist(),
    }
    terrain_names, terrain_of = np.unique(data["terrain"].values.astype(str), return_inverse=True)
    if terrain_hazard:
        coords["terrain"] = terrain_names.tolist()
    with pm.Model(coords=coords) as model:
        v: dict[str, Any] = {}
        section_sd = p["section_sd"].create("section_sd")
        v["section_effect"] = pm.ZeroSumNormal("section_effect", sigma=section_sd, dims="section")
        v["category_level"] = p["category_level"].create("category_level", dims="journey_category")
        v["season"] = p["season"].create("season", dims=("journey_category", "harmonic"))
        v["trend"] = p["trend"].create("trend", dims="journey_category")
        v["log_policy_effect"] = p["log_policy_effect"].create(
            "log_policy_effect", dims=("event", "journey_category")
        )
        v["population_elasticity"] = p["population_elasticity"].create("population_elasticity")
        v["overdispersion"] = p["overdispersion"].create("overdispersion", dims="category")
        v["bypass_eta0"] = p["bypass_eta0"].create("bypass_eta0")
        v["bypass_eta1"] = p["bypass_eta1"].create("bypass_eta1")
        mu_a = p["hazard_mean"].create("hazard_mean")
        sd_a = p["hazard_section_sd"].create("hazard_section_sd")
        if terrain_hazard and len(terrain_names) > 1:
            t = p["hazard_terrain"].create("hazard_terrain", dims="terrain")
            mu_a = mu_a + t[terrain_of]
        if centered_hazard:
            a = pm.Normal("hazard_section", mu=mu_a, sigma=sd_a, dims="section")
        else:
            z = pm.Normal("hazard_section_z", 0.0, 1.0, dims="section")
            a = pm.Deterministic("hazard_section", mu_a + sd_a * z, dims="section")
        v["hazard_section"] = a
        v["hazard_category"] = p["hazard_category"].create("hazard_category", dims="category")
        e_other = p["hazard_detector"].create("hazard_detector", dims="other_detector")
        v["hazard_detector_full"] = pt.concatenate([pt.zeros(1), e_other])
        v["technical_trend"] = p["technical_trend"].create("technical_trend")

        log_mu, log_p, log_1mp, phi = _rates(data, v, pt)  # (S, C, M)
        log_mu = log_mu.dimshuffle(0, 2, 1)  # (S, M, C)
        log_p = log_p.dimshuffle(0, 2, 1)
        log_1mp = log_1mp.dimshuffle(0, 2, 1)
        log_q = log_p - log_1mp
        flow_zero = (data["land_foreign_crossings"].values == 0)[:, :, None] & (
            np.array(CATEGORIES) == BYPASSER
        )[None, None, :]

        # surveyed sections: apprehended journeys ~ NegBin(μp, φ); repeats ~ zero-truncated geometric
        s_idx = np.flatnonzero(surveyed)
        keep_s = (~flow_zero[s_idx]).astype(float)  # dense, no-flow bypasser cells weighted 0
        a_obs = data["apprehended_journeys"].values[s_idx]
        pm.CustomDist(
            "apprehended_journeys",
            log_mu[s_idx] + log_p[s_idx],
            phi[None, None, :],
            # the observed counts enter as constants, so lgamma(A + 1) is computed once, outside the graph
            logp=lambda value, lm, ph: keep_s * _nb_logp(a_obs, lm, ph, pt),
            observed=a_obs,
        )
        freq = data["frequency"].values[s_idx]  # (S_s, M, C, K)
        nz = np.nonzero(freq)
        k_vals = data["k"].values[nz[3]]
        pm.CustomDist(
            "repeat_apprehensions",
            log_q[s_idx][nz[:3]],
            logp=lambda value, lq: value * kernels.log_truncated_pmf("geometric", k_vals, lq, pt),
            observed=freq[nz],
        )
        # unsurveyed sections: monthly totals under their exact compound law (A journeys, K − A repeats)
        u_idx = np.flatnonzero(~surveyed)
        if len(u_idx):
            # dense over (section, month, category) with the no-flow bypasser cells weighted 0: cheaper
            # to differentiate than gathering the other cells
            keep = (~flow_zero[u_idx]).astype(float)
            k_u = data["apprehensions"].values[u_idx]
            pm.CustomDist(
                OBSERVED,
                log_mu[u_idx] + log_p[u_idx],
                log_p[u_idx],
                log_1mp[u_idx],
                phi,
                logp=lambda value, lmp, lp, l1p, ph: _totals_logp(k_u, keep, lmp, lp, l1p, ph),
                observed=k_u,
            )
        # detector split of each month's apprehensions (multinomial; the coefficient is a constant)
        e_full = v["hazard_detector_full"]
        tech = np.array([d == "technical" for d in DETECTORS], float)
        det = e_full[None, :] + v["technical_trend"] * (
            data["years"].values[:, None] * tech[None, :]
        )
        log_share = det - pm.math.logsumexp(det, axis=1, keepdims=True)  # (M, D)
        pm.CustomDist(
            "apprehensions_by_detector",
            log_share,
            logp=lambda value, ls: value * ls,
            observed=data["apprehensions_by_detector"].sum(["section", "category"]).values,
            dims=("month", "detector"),
        )
    return model


# --------------------------------------------------------------------------------------------------------------
# After sampling: unobserved crossings, replicated data


def _posterior_values(posterior: xr.Dataset) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    names = [
        "section_effect",
        "category_level",
        "season",
        "trend",
        "log_policy_effect",
        "population_elasticity",
        "overdispersion",
        "bypass_eta0",
        "bypass_eta1",
        "hazard_section",
        "hazard_category",
        "hazard_detector",
        "technical_trend",
    ]
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    v = {}
    for n in names:
        x = posterior[n].values
        v[n] = x.reshape(shape[0] * shape[1], *x.shape[2:])
    v["hazard_detector_full"] = np.concatenate(
        [np.zeros((v["hazard_detector"].shape[0], 1)), v["hazard_detector"]], axis=1
    )
    return v, shape


def _rates_np(data: xr.Dataset, v: Mapping[str, np.ndarray], sl: slice) -> tuple[np.ndarray, ...]:
    vv = {k: x[sl] for k, x in v.items()}
    log_mu, log_p, log_1mp, phi = _rates(data, vv, np)
    # (D, S, C, M) -> (D, S, M, C)
    t = (0, 1, 3, 2)
    return log_mu.transpose(t), log_p.transpose(t), log_1mp.transpose(t), phi


def _sample_apprehended(
    rng: np.random.Generator,
    k_obs: np.ndarray,
    log_mp: np.ndarray,
    phi: np.ndarray,
    log_p: np.ndarray,
    log_1mp: np.ndarray,
) -> np.ndarray:
    """Draws of A | K per cell (draws × cells): P(A = a | K) ∝ NegBin(a; μp, φ) C(K−1, a−1) p^{K−a}(1−p)^a,
    a = 1..K (A = 0 when K = 0), by inverse CDF over a within each cell.

    Successive weights differ by the factor (a + φ)(K − a) / ((a + 1) a) · μp/(φ + μp) · (1 − p)/p, so the
    kernel needs one logarithm per (draw, a) instead of three log-gamma functions; it runs compiled (numba):
    over 3,000 draws the unsurveyed cells have ~10⁸ (draw, a) pairs."""
    n_draws, n_cells = log_mp.shape
    out = np.zeros((n_draws, n_cells), dtype=np.int64)
    pos = np.flatnonzero(k_obs > 0)
    if len(pos) == 0:
        return out
    u = rng.random((n_draws, len(pos)))
    out[:, pos] = _apprehended_kernel()(
        np.ascontiguousarray(k_obs[pos], dtype=np.int64),
        np.ascontiguousarray(log_mp[:, pos], dtype=np.float64),
        np.ascontiguousarray(phi[:, pos], dtype=np.float64),
        np.ascontiguousarray(log_p[:, pos], dtype=np.float64),
        np.ascontiguousarray(log_1mp[:, pos], dtype=np.float64),
        u,
    )
    return out


_KERNEL: Any = None


def _apprehended_kernel() -> Any:
    """The compiled inverse-CDF sampler of ``_sample_apprehended`` (compiled on first use, cached on disk)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True)
        def kernel(kk, log_mp, phi, log_p, log_1mp, u):  # noqa: ANN001, ANN202
            n_draws, n_cells = log_mp.shape
            res = np.empty((n_draws, n_cells), dtype=np.int64)
            lw = np.empty(kk.max())
            for i in range(n_draws):
                for j in range(n_cells):
                    k = kk[j]
                    f = phi[i, j]
                    lm = log_mp[i, j]
                    c = lm - np.log(f + np.exp(lm)) + log_1mp[i, j] - log_p[i, j]
                    lw[0] = 0.0
                    top = 0.0
                    for a in range(1, k):  # lw[a] is log w(a + 1) − log w(1)
                        lw[a] = lw[a - 1] + np.log((a + f) * (k - a) / ((a + 1.0) * a)) + c
                        if lw[a] > top:
                            top = lw[a]
                    total = 0.0
                    for a in range(k):
                        lw[a] = np.exp(lw[a] - top)
                        total += lw[a]
                    target = u[i, j] * total
                    acc = 0.0
                    pick = k
                    for a in range(k):
                        acc += lw[a]
                        if acc >= target:
                            pick = a + 1
                            break
                    res[i, j] = pick
            return res

        _KERNEL = kernel
    return _KERNEL


def crossings(
    data: xr.Dataset,
    posterior: xr.Dataset,
    rng: Any = None,
    *,
    chunk: int = 25,
) -> xr.Dataset:
    """Posterior draws of the unobserved crossings U (= journeys J, retry probability 1) per section ×
    month × category, from their conditional law given the data at each parameter draw (module docstring).

    Returns ``unobserved`` (chain, draw, section, month, category) as int32 and the expected journeys μ
    (same dims) for reference."""
    rng = rng_from(rng)
    v, (n_chain, n_draw) = _posterior_values(posterior)
    n = n_chain * n_draw
    surveyed = data["surveyed"].values
    k_all = data["apprehensions"].values  # (S, M, C)
    a_obs = data["apprehended_journeys"].values
    unobserved = np.zeros((n, *k_all.shape), dtype=np.int32)
    expected = np.zeros((n, *k_all.shape), dtype=np.float32)
    flow_zero = (data["land_foreign_crossings"].values == 0)[:, :, None] & (
        np.array(CATEGORIES) == BYPASSER
    )[None, None, :]
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        log_mu, log_p, log_1mp, phi = _rates_np(data, v, sl)
        d = log_mu.shape[0]
        phi_c = np.broadcast_to(phi[:, None, None, :], log_mu.shape)
        a = np.broadcast_to(np.where(surveyed[:, None, None], a_obs, 0), log_mu.shape).copy()
        u = ~surveyed
        if u.any():
            shape_u = log_mu[:, u].shape
            a_u = _sample_apprehended(
                rng,
                k_all[u].reshape(-1),
                *(x[:, u].reshape(d, -1) for x in (log_mu + log_p, phi_c, log_p, log_1mp)),
            )
            a[:, u] = a_u.reshape(shape_u)
        mu = np.exp(log_mu)
        p = np.exp(log_p)
        g = rng.gamma(phi_c + a, 1.0 / (phi_c / mu + p))
        extra = rng.poisson(g * np.exp(log_1mp))
        j = np.where(flow_zero[None], 0, a + extra)
        unobserved[sl] = j
        expected[sl] = np.where(flow_zero[None], 0, mu)
    dims = ("chain", "draw", "section", "month", "category")
    coords = {
        "section": data["section"].values,
        "month": data["month"].values,
        "category": data["category"].values,
    }
    shape = (n_chain, n_draw, *k_all.shape)
    return xr.Dataset(
        {
            "unobserved": (dims, unobserved.reshape(shape)),
            "expected_journeys": (dims, expected.reshape(shape)),
        },
        coords=coords,
    )


def replicate(
    data: xr.Dataset, posterior: xr.Dataset, rng: Any = None, *, draws: int = 200
) -> xr.Dataset:
    """Posterior predictive replicates of the checked statistics at ``draws`` thinned posterior draws:
    monthly apprehension totals per section, and the repeat-apprehension frequencies f_k per surveyed section
    (summed over months and categories)."""
    rng = rng_from(rng)
    v, (n_chain, n_draw) = _posterior_values(posterior)
    n = n_chain * n_draw
    pick = np.unique(np.linspace(0, n - 1, min(draws, n)).astype(int))
    v = {k: x[pick] for k, x in v.items()}
    log_mu, log_p, _log_1mp, phi = _rates_np(data, v, slice(None))
    d = log_mu.shape[0]
    mu = np.exp(log_mu)
    p = np.exp(log_p)
    phi_c = np.broadcast_to(phi[:, None, None, :], mu.shape)
    j = rng.poisson(rng.gamma(phi_c, mu / phi_c))
    a = rng.binomial(j, p)
    p_miss = np.clip(1.0 - p, 1e-12, 1.0)  # p rounds to 1 only at absurd parameter values
    extra = rng.negative_binomial(np.maximum(a, 1), p_miss) * (a > 0)
    k_tot = (a + extra).sum(axis=3)  # (D, S, M)
    surveyed = data["surveyed"].values
    k_max = int(data["k"].values.max())
    s_idx = np.flatnonzero(surveyed)
    freq = np.zeros((d, len(s_idx), k_max), dtype=np.int64)
    for i in range(d):
        for si, s in enumerate(s_idx):
            aa = a[i, s].ravel()
            # apprehensions of one apprehended journey: 1 + failures before the first miss
            kk = rng.geometric(np.repeat(p_miss[i, s].ravel(), aa))
            freq[i, si] = np.bincount(np.minimum(kk, k_max), minlength=k_max + 1)[1:]
    return xr.Dataset(
        {
            "monthly_apprehensions": (("sample", "section", "month"), k_tot),
            "frequency": (("sample", "surveyed_section", "k"), freq),
        },
        coords={
            "section": data["section"].values,
            "month": data["month"].values,
            "surveyed_section": data["section"].values[s_idx],
            "k": np.arange(1, k_max + 1),
        },
        attrs={"note": f"k = {k_max} collects {k_max} or more apprehensions"},
    )


QUANTILES = (0.05, 0.5, 0.95)


def observed_checks(data: xr.Dataset) -> xr.Dataset:
    """The observed statistics the posterior predictive checks compare with `replicate`'s draws."""
    surveyed = data["surveyed"].values
    k_max = int(data["k"].values.max())
    freq = data["frequency"].isel(section=np.flatnonzero(surveyed)).sum(["month", "category"])
    return xr.Dataset(
        {
            "monthly_apprehensions": data["apprehensions"].sum("category"),
            "frequency": (("surveyed_section", "k"), freq.values[:, :k_max]),
        },
        coords={
            "section": data["section"].values,
            "month": data["month"].values,
            "surveyed_section": data["section"].values[surveyed],
            "k": np.arange(1, k_max + 1),
        },
    )


def after_sampling(
    data: xr.Dataset, posterior: xr.Dataset, rng: Any = None, **_: Any
) -> dict[str, xr.Dataset]:
    """Derived quantities and checks kept in the saved fit (the per-cell draws would take ~0.3 GB):

    * posterior: draws of unobserved crossings per section × year (``unobserved_section_year``), for the
      whole border per year (``unobserved_border_year``) and per category × year;
    * ``crossings``: per section × month × category, the 5 %, 50 % and 95 % posterior quantiles of the
      unobserved crossings and of the attempts (apprehensions + unobserved), with the apprehensions;
    * posterior_predictive / observed_data: monthly apprehension totals per section and the surveyed
      sections' repeat-apprehension frequencies (`replicate`, `observed_checks`).
    """
    rng = rng_from(rng)
    cr = crossings(data, posterior, rng)
    years = ("month", data["year"].values)
    u = cr["unobserved"].assign_coords(year=years).groupby("year").sum()
    post = xr.Dataset(
        {
            "unobserved_section_year": u.sum("category").astype(np.int64),
            "unobserved_border_year": u.sum(["section", "category"]).astype(np.int64),
            "unobserved_category_year": u.sum("section").astype(np.int64),
        }
    )
    post["unobserved_section_year"].attrs["description"] = (
        "unobserved (undetected, successful) illegal crossings per section and year: draws of the count "
        "given the data"
    )
    k = data["apprehensions"]
    attempts = cr["unobserved"] + k.values[None, None]
    q = list(QUANTILES)
    table = xr.Dataset(
        {
            "unobserved": cr["unobserved"].quantile(q, dim=("chain", "draw")).astype(np.float32),
            "attempts": attempts.quantile(q, dim=("chain", "draw")).astype(np.float32),
            "apprehensions": k,
        }
    )
    table.attrs["description"] = "posterior quantiles per section x month x category"
    rep = replicate(data, posterior, rng)
    rep = rep.rename({"sample": "draw"}).expand_dims(chain=[0])
    return {
        "posterior": post,
        "crossings": table,
        "posterior_predictive": rep,
        "observed_data": observed_checks(data),
    }


def _population(data: xr.Dataset, posterior: xr.Dataset, rng: Any = None, **_: Any) -> xr.DataArray:
    """Whole-border unobserved crossings per year (draws): the border model's analogue of N."""
    u = crossings(data, posterior, rng)["unobserved"]
    return u.groupby("year").sum().sum(["section", "category"]).rename("N")


def _no_mle(data: xr.Dataset, **_: Any) -> MLEResult:
    raise EstimInputError("the border model has no maximum-likelihood mode")


BORDER = register(
    Family(
        name="border",
        description="hierarchical border model: attempts, apprehensions and unobserved crossings",
        data_kind="border",
        build=build_border,
        population=_population,
        mle=_no_mle,
        default_priors=DEFAULT_PRIORS,
        observed_name=OBSERVED,
        after_sampling=after_sampling,
    )
)
