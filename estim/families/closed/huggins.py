"""Individual covariates in closed-population models: the Huggins (1989) conditional likelihood for M0, Mt and
Mb (VGAM's posbernoulli.t for Mt, posbernoulli.b for Mb, and posbernoulli.t with parallel.t = TRUE for M0).

Animal i with covariates x_i is caught on occasion t with probability p_it, where

    logit p_it = a_t + b · [caught before t] + x_iᵀγ

with a_t = a for every t (M0, Mb) or free per occasion (Mt), b = 0 except in Mb, and x_i the row of the
covariate design (`estim.families.covariates.covariate_design`: continuous columns standardised, categorical
ones treatment-coded; γ reported on the covariates' own scale too). Conditioning on being seen, animal i
contributes log P_i(h_i) − log(1 − P_i(0…0)). Animals with the same covariates share P_i, so the likelihood is
a sum over the distinct (covariate pattern, history) cells, weighted by their counts: its cost grows with
the number of distinct cells, never with a loop over animals.

Maximum likelihood: N̂ = Σ_i 1/(1 − P̂_i(0…0)) (Horvitz–Thompson), Var N̂ = Σ_i P_i(0)/(1 − P_i(0))² +
∇N̂ᵀ I⁻¹ ∇N̂ (Huggins 1989). Bayesian: as for the other closed models N is marginalised: each covariate
pattern x is a closed population of N_x with prior ∝ 1/N_x, whose marginal likelihood is the conditional one,
and N_x − n_x | θ, data ~ NegativeBinomial(n_x, 1 − P_x(0…0)); N = Σ_x N_x is drawn after sampling.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import optimize, special

from estim.errors import EstimInputError
from estim.families.base import MLEResult, rng_from
from estim.families.closed.data import OBSERVED, history_codes
from estim.families.closed.mle import (
    MIN_P_SEEN,
    NEWTON_TOLERANCE,
    OPTIMISER,
    SINGULAR,
    newton_polish,
    singular_information,
)
from estim.families.closed.model import _PRIORS
from estim.families.covariates import covariate_design, parse_formula, refuse_read_off_counts
from estim.families.loglinear.fit import LOG_INTERVAL, log_interval
from estim.priors import Prior, merge_priors

HUGGINS = ("M0", "Mt", "Mb")
_NOT_HERE = ("sigma_stratum", "occasion_sd")  # strata are not combined with covariates

# --------------------------------------------------------------------------------------------------------------
# Data: distinct (covariate pattern, history) cells


def huggins_data(
    table: pd.DataFrame,
    x: np.ndarray,
    n: np.ndarray,
    occasions: Sequence[str],
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    formula: str | None = None,
) -> xr.Dataset:
    """Huggins data from a table's 0/1 histories `x`, its people per row `n` and its covariate columns.

    Returns ``history_count`` (cell): people in each distinct (covariate pattern, history) cell;
    ``cell_pattern``, ``cell_history`` (cell): the cell's indices; ``capture`` (history, occasion);
    ``design`` (pattern, term): the standardised covariates of each distinct pattern; ``pattern_count``
    (pattern); ``term_center``, ``term_scale`` (term), to report effects on the covariates' own scale.
    """
    design = covariate_design(
        table,
        () if formula is not None else covariates,
        categorical=categorical,
        formula=formula,
        weights=n,
        where="covariates",
    )
    if not design.terms:
        raise EstimInputError("covariates: the formula has no covariate term")
    named = covariates if formula is None else [c for t in parse_formula(formula)[0] for c in t]
    refuse_read_off_counts(
        {c: table[c].to_numpy() for c in dict.fromkeys(named)},
        x.sum(axis=1),
        n,
        where="covariates",
        counted="occasions caught",
    )
    keep = n > 0
    z, x, n = design.matrix[keep], x[keep], n[keep]
    if len(n) == 0:
        raise EstimInputError("nobody seen: every count is 0")
    patterns, pattern = np.unique(z, axis=0, return_inverse=True)
    codes = history_codes(x)
    hist_codes = np.unique(codes)[::-1]  # Rcapture's order, 11…1 first
    history = len(hist_codes) - 1 - np.searchsorted(hist_codes[::-1], codes)
    cell_key, cell = np.unique(pattern.ravel() * len(hist_codes) + history, return_inverse=True)
    counts = np.bincount(cell.ravel(), weights=n, minlength=len(cell_key)).astype(np.int64)
    t = x.shape[1]
    capture = ((hist_codes[:, None] >> np.arange(t - 1, -1, -1)[None, :]) & 1).astype(np.int8)
    ds = xr.Dataset(
        {
            OBSERVED: ("cell", counts),
            "cell_pattern": ("cell", (cell_key // len(hist_codes)).astype(np.int64)),
            "cell_history": ("cell", (cell_key % len(hist_codes)).astype(np.int64)),
            "capture": (("history", "occasion"), capture),
            "design": (("pattern", "term"), patterns),
            "pattern_count": (
                "pattern",
                np.bincount(pattern.ravel(), weights=n, minlength=len(patterns)).astype(np.int64),
            ),
            "term_center": ("term", design.center),
            "term_scale": ("term", design.scale),
        },
        coords={
            "cell": np.arange(len(cell_key)),
            "pattern": np.arange(len(patterns)),
            "term": list(design.terms),
            "history": [format(int(c), f"0{t}b") for c in hist_codes],
            "occasion": [str(o) for o in occasions],
        },
    )
    ds.attrs["covariate_kinds"] = ", ".join(f"{c}: {k}" for c, k in design.kinds.items())
    if formula is not None:
        ds.attrs["formula"] = formula
    return ds


def _arrays(data: xr.Dataset) -> dict[str, np.ndarray]:
    """The cell and pattern arrays a Huggins model reads (checked)."""
    need = [OBSERVED, "cell_pattern", "cell_history", "capture", "design", "pattern_count"]
    missing = [v for v in need if v not in data]
    if missing:
        raise EstimInputError(f"Huggins data lack {missing}: make them with `huggins_data`")
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    hist = data["cell_history"].values.astype(np.int64)
    caught = x[hist]
    # seen[c, t] = 1 when the cell's history has a capture before occasion t (Mb's trap response applies)
    seen = (np.cumsum(caught, axis=1) - caught > 0).astype(np.int8)
    return {
        "count": data[OBSERVED].values.astype(np.int64),
        "pattern": data["cell_pattern"].values.astype(np.int64),
        "caught": caught,
        "seen": seen,
        "design": data["design"].transpose("pattern", "term").values.astype(np.float64),
        "pattern_count": data["pattern_count"].values.astype(np.int64),
        "center": data["term_center"].values.astype(np.float64),
        "scale": data["term_scale"].values.astype(np.float64),
    }


def _refuse(name: str) -> None:
    if name not in HUGGINS:
        raise EstimInputError(
            f"{name}: individual covariates (the Huggins conditional likelihood) are available for "
            f"{', '.join(HUGGINS)}; fit one of those, or drop the covariates"
        )


# --------------------------------------------------------------------------------------------------------------
# Bayesian model


def build_huggins(
    name: str, data: xr.Dataset, priors: Mapping[str, Prior] | None = None
) -> pm.Model:
    """The PyMC model of M0, Mt or Mb with covariates: one conditional log-likelihood term per cell.

    The covariates and cells enter as named ``pm.Data`` (``design``, ``cell_pattern``, ``cell_capture``,
    ``cell_seen``, ``pattern_count``, ``term_center``, ``term_scale``), so that one compiled model can be
    given another dataset of the same shape (padded with `pad_huggins`; the observed counts are swapped as in
    `estim.studies.recovery.with_shared_observed`).
    """
    _refuse(name)
    given = sorted(set(priors or {}) & set(_NOT_HERE))
    if given:
        raise EstimInputError(f"priors {given} are for strata, which covariate models do not have")
    pri = merge_priors(_PRIORS[name], priors)
    a = _arrays(data)
    coords = {
        "cell": [int(c) for c in data["cell"].values],
        "pattern": [int(p) for p in data["pattern"].values],
        "term": [str(t) for t in data["term"].values],
        "occasion": [str(o) for o in data["occasion"].values],
    }
    with pm.Model(coords=coords) as model:
        design = pm.Data("design", a["design"], dims=("pattern", "term"))
        pattern = pm.Data("cell_pattern", a["pattern"], dims="cell")
        caught = pm.Data("cell_capture", a["caught"], dims=("cell", "occasion"))
        n_pattern = pm.Data("pattern_count", a["pattern_count"], dims="pattern")
        center = pm.Data("term_center", a["center"], dims="term")
        scale = pm.Data("term_scale", a["scale"], dims="term")
        beta = pri["beta"].create("beta", dims="term")
        t = a["caught"].shape[1]
        if name == "Mt":
            base = pri["logit_p"].create("logit_p", dims="occasion")
        else:
            base = pt.repeat(pt.shape_padleft(pri["logit_p"].create("logit_p")), t)
        offset = pt.dot(design, beta)  # (pattern,)
        # never caught: every occasion before any capture, so Mb's behaviour effect never applies
        log_p0 = -pt.softplus(base[None, :] + offset[:, None]).sum(axis=1)
        eta = base[None, :] + offset[pattern][:, None]
        if name == "Mb":
            seen = pm.Data("cell_seen", a["seen"], dims=("cell", "occasion"))
            eta = eta + pri["behaviour"].create("behaviour") * seen
        log_ph = (caught * eta - pt.softplus(eta)).sum(axis=1)
        log_cond = log_ph - pt.log1mexp(log_p0)[pattern]
        original = pm.Deterministic("beta_original", beta / scale, dims="term")
        shift = (original * center).sum()
        if name == "Mt":
            pm.Deterministic("logit_p_original", base - shift, dims="occasion")
        else:
            pm.Deterministic("logit_p_original", base[0] - shift)
        pm.CustomDist(
            OBSERVED,
            log_cond,
            pattern,
            n_pattern[pattern],
            logp=lambda value, log_cond, *_: value * log_cond,
            random=_thinned_random,
            observed=a["count"],
            dims="cell",
        )
    return model


def _thinned_random(
    log_cond: np.ndarray,
    pattern: np.ndarray,
    n_cell: np.ndarray,
    rng: np.random.Generator | None = None,
    size: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Replicated cell counts: the n_x animals of each pattern spread multinomially over all histories, read at
    the cells of the data (each cell count is Binomial(n_x, P_x(h | seen)); animals falling on histories
    absent from the data are not counted). Drawn as a chain of conditional binomials, one rank of cells
    within their pattern at a time."""
    gen = rng if rng is not None else np.random.default_rng()
    shape = tuple(size) if size is not None else np.shape(log_cond)
    lead = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    p_all = np.broadcast_to(np.exp(log_cond), shape).reshape(lead, -1)
    pattern = np.asarray(pattern, dtype=np.int64)
    n_x = np.zeros(int(pattern.max()) + 1 if len(pattern) else 0, dtype=np.int64)
    n_x[pattern] = np.asarray(n_cell, dtype=np.int64)
    order = np.lexsort((np.arange(len(pattern)), pattern))
    starts = np.r_[0, np.flatnonzero(np.diff(pattern[order])) + 1]
    rank = np.empty(len(pattern), dtype=np.int64)
    rank[order] = np.arange(len(pattern)) - np.repeat(starts, np.diff(np.r_[starts, len(pattern)]))
    out = np.zeros((lead, len(pattern)), dtype=np.int64)
    for i in range(lead):
        left, mass = n_x.copy(), np.ones(len(n_x))
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            cells = np.flatnonzero(rank == r)
            x, p = pattern[cells], p_all[i, cells]
            q = np.clip(p / np.maximum(mass[x], 1e-300), 0.0, 1.0)
            out[i, cells] = gen.binomial(left[x], q)
            left[x] -= out[i, cells]
            mass[x] -= p
    return out.reshape(shape)


def _log_p0(theta_base: np.ndarray, beta: np.ndarray, design: np.ndarray) -> np.ndarray:
    """log P(0…0) per (draw, pattern): draws of the occasion logits (draws, T) and effects (draws, terms)."""
    eta = theta_base[:, None, :] + (beta @ design.T)[:, :, None]
    return -np.logaddexp(0.0, eta).sum(axis=-1)


def huggins_population(data: xr.Dataset, posterior: Any, rng: Any = None) -> xr.DataArray:
    """Draws of N = Σ_x (n_x + NegativeBinomial(n_x, 1 − P_x(0…0))) at each posterior draw (x: covariate
    patterns), P_x computed from the draws of the logits and effects (not stored per pattern)."""
    post = posterior.dataset if hasattr(posterior, "dataset") else posterior
    a = _arrays(data)
    t = a["caught"].shape[1]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    logit = post["logit_p"].values.reshape(chains * draws, -1)
    base = logit if logit.shape[1] == t else np.repeat(logit, t, axis=1)
    beta = post["beta"].transpose("chain", "draw", "term").values.reshape(chains * draws, -1)
    # empty patterns (padding) add nobody and draw nothing, so padding leaves the draws unchanged
    keep = a["pattern_count"] > 0
    n_x, design = a["pattern_count"][keep], a["design"][keep]
    gen = rng_from(rng)
    total = np.zeros(chains * draws, dtype=np.int64)
    step = max(1, 2_000_000 // max(len(n_x) * t, 1))  # draws per chunk: bounded memory
    for start in range(0, chains * draws, step):
        sl = slice(start, start + step)
        p_seen = -np.expm1(_log_p0(base[sl], beta[sl], design))
        total[sl] = gen.negative_binomial(n_x, np.clip(p_seen, 1e-300, 1.0)).sum(axis=1)
    return xr.DataArray(
        (n_x.sum() + total).reshape(chains, draws),
        dims=("chain", "draw"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
        name="N",
    )


# --------------------------------------------------------------------------------------------------------------
# Maximum likelihood


def _unpack(name: str, theta: np.ndarray, t: int) -> tuple[np.ndarray, float, np.ndarray]:
    """θ -> (occasion logits (T,), behaviour, covariate effects); θ = [a | a_1…a_T] [b] γ."""
    if name == "Mt":
        return theta[:t], 0.0, theta[t:]
    if name == "Mb":
        return np.full(t, theta[0]), float(theta[1]), theta[2:]
    return np.full(t, theta[0]), 0.0, theta[1:]


def _negll(name: str, theta: np.ndarray, a: Mapping[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """Minus the conditional log-likelihood and its exact gradient."""
    caught, pattern, count, z = a["caught"], a["pattern"], a["count"], a["design"]
    t = caught.shape[1]
    base, b, gamma = _unpack(name, theta, t)
    offset = z @ gamma
    eta0 = base[None, :] + offset[:, None]
    log_p0 = -np.logaddexp(0.0, eta0).sum(axis=1)
    eta = base[None, :] + offset[pattern][:, None] + b * a["seen"]
    ll = float(
        np.sum(count[:, None] * (caught * eta - np.logaddexp(0.0, eta)))
        - np.sum(a["pattern_count"] * np.log(-np.expm1(log_p0)))
    )
    r = count[:, None] * (caught - special.expit(eta))  # d/dη of the history terms
    w = -(a["pattern_count"] / np.expm1(-log_p0))[:, None] * special.expit(
        eta0
    )  # of −n log(1 − P0)
    g_base = r.sum(axis=0) + w.sum(axis=0)
    g_offset = np.bincount(pattern, weights=r.sum(axis=1), minlength=len(z)) + w.sum(axis=1)
    g_gamma = z.T @ g_offset
    if name == "Mt":
        grad = np.concatenate([g_base, g_gamma])
    elif name == "Mb":
        grad = np.concatenate([[g_base.sum(), float((r * a["seen"]).sum())], g_gamma])
    else:
        grad = np.concatenate([[g_base.sum()], g_gamma])
    return -ll, -grad


def _n_hat(
    name: str, theta: np.ndarray, a: Mapping[str, np.ndarray]
) -> tuple[float, np.ndarray, float]:
    """Horvitz–Thompson N̂ = Σ_x n_x/(1 − P_x(0)), its gradient in θ and Σ_x n_x P_x(0)/(1 − P_x(0))²."""
    z, n_x = a["design"], a["pattern_count"]
    t = a["caught"].shape[1]
    base, _, gamma = _unpack(name, theta, t)
    eta0 = base[None, :] + (z @ gamma)[:, None]
    log_p0 = -np.logaddexp(0.0, eta0).sum(axis=1)
    p0, seen = np.exp(log_p0), -np.expm1(log_p0)
    d_eta = -(n_x * p0 / seen**2)[:, None] * special.expit(eta0)  # dN̂/dη0 (pattern, occasion)
    g_base, g_gamma = d_eta.sum(axis=0), z.T @ d_eta.sum(axis=1)
    if name == "Mt":
        grad = np.concatenate([g_base, g_gamma])
    elif name == "Mb":
        grad = np.concatenate([[g_base.sum(), 0.0], g_gamma])
    else:
        grad = np.concatenate([[g_base.sum()], g_gamma])
    return float(np.sum(n_x / seen)), grad, float(np.sum(n_x * p0 / seen**2))


def mle_huggins(name: str, data: xr.Dataset, **_: Any) -> MLEResult:
    """Conditional ML of M0, Mt or Mb with covariates and the Horvitz–Thompson N̂ with Huggins' (1989) SE.

    Parameters are reported on the covariates' own scale (``beta[term]`` per unit of a continuous covariate,
    ``logit_p`` at covariates 0) with their SEs in ``extra["se"]``. Converged when the Newton decrement is
    below `NEWTON_TOLERANCE` (scale-free; see `newton_polish`). An effect or logit beyond ±15 (a group never
    or always caught: separation) or a pattern with P(seen) < `MIN_P_SEEN` is a boundary: N̂ is then no estimate.
    """
    _refuse(name)
    t0 = time.perf_counter()
    a = _arrays(data)
    t, k = a["caught"].shape[1], a["design"].shape[1]
    n_base = {"Mt": t, "Mb": 2}.get(name, 1)
    # start at M0's closed-form-ish logit: captures per animal-occasion
    p = np.clip((a["count"] * a["caught"].sum(axis=1)).sum() / (a["count"].sum() * t), 0.01, 0.99)
    theta0 = np.zeros(n_base + k)
    theta0[: t if name == "Mt" else 1] = np.log(p / (1 - p))

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return _negll(name, theta, a)

    res = optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B", options=OPTIMISER)
    theta, hess, decrement = newton_polish(fun, res.x)
    n_hat, grad, sampling = _n_hat(name, theta, a)
    base, _, gamma = _unpack(name, theta, t)
    p_seen = -np.expm1(
        -np.logaddexp(0.0, base[None, :] + (a["design"] @ gamma)[:, None]).sum(axis=1)
    )
    boundary = bool(np.any(np.abs(theta) > 15) or np.any(p_seen < MIN_P_SEEN))
    # a flat direction of the likelihood (terms the data cannot tell apart, which the design check missed):
    # no standard error, and N-hat is no estimate (not converged); a boundary's Hessian is often singular too
    flat = not boundary and singular_information(hess)
    cov, se = np.full(hess.shape, np.nan), float("nan")
    if not flat:
        try:
            cov = np.linalg.inv(hess)
            se = float(np.sqrt(sampling + grad @ cov @ grad))
        except np.linalg.LinAlgError:
            flat = not boundary
    # original scale: γ/s per unit of each term, intercepts − Σ γ m/s (a linear map J of θ, so cov J cov Jᵀ)
    j = np.eye(len(theta))
    j[n_base:, n_base:] = np.diag(1 / a["scale"])
    first = list(range(t if name == "Mt" else 1))
    j[np.ix_(first, list(range(n_base, n_base + k)))] = -(a["center"] / a["scale"])[None, :]
    values, ses = j @ theta, np.sqrt(np.clip(np.diag(j @ cov @ j.T), 0, None))
    labels = (
        ([f"logit_p[{o}]" for o in data["occasion"].values] if name == "Mt" else ["logit_p"])
        + (["behaviour"] if name == "Mb" else [])
        + [f"beta[{term}]" for term in data["term"].values]
    )
    return MLEResult(
        n_hat=n_hat,
        se=se,
        ci95=log_interval(n_hat, se, float(a["count"].sum())),
        parameters=dict(zip(labels, map(float, values), strict=True)),
        loglik=-float(fun(theta)[0]),
        converged=bool(decrement < NEWTON_TOLERANCE) and not flat,
        boundary=boundary,
        message=f"Huggins conditional ML of {name} with covariates; Horvitz–Thompson N-hat"
        + (f"; {SINGULAR}" if flat else ""),
        extra={
            "seconds": time.perf_counter() - t0,
            "ci_kind": LOG_INTERVAL,
            "se": dict(zip(labels, map(float, ses), strict=True)),
            "newton_decrement": decrement,
            "optimiser": str(res.message),
        },
    )


# --------------------------------------------------------------------------------------------------------------
# Simulation, for recovery studies


def simulate_huggins(
    name: str,
    rng: np.random.Generator,
    size: int,
    occasion_p: Sequence[float],
    *,
    male_effect: float = 0.5,
    weight_effect: float = 1.5,
    behaviour: float = 0.0,
) -> pd.DataFrame:
    """The animals seen among `size`, under logit p_it = logit occasion_p[t] + male_effect·[male] +
    weight_effect·(weight − 1.5) (+ behaviour after the first capture, Mb), sex F/M with probability ½ each and
    weight ~ Normal(1.5, 0.25) kg: columns o1…oT, ``sex``, ``weight``. For M0 and Mb give equal `occasion_p`."""
    t = len(occasion_p)
    male = rng.random(size) < 0.5
    weight = rng.normal(1.5, 0.25, size)
    p = np.asarray(occasion_p, dtype=float)
    eta = (
        np.log(p / (1 - p))[None, :]
        + (male_effect * male + weight_effect * (weight - 1.5))[:, None]
    )
    u = rng.random((size, t))
    x = np.zeros((size, t), dtype=np.int8)
    seen = np.zeros(size, dtype=bool)
    for j in range(t):
        x[:, j] = u[:, j] < special.expit(eta[:, j] + (behaviour if name == "Mb" else 0.0) * seen)
        seen |= x[:, j].astype(bool)
    table = pd.DataFrame(x, columns=[f"o{j + 1}" for j in range(t)])
    table["sex"] = np.where(male, "M", "F")
    table["weight"] = weight
    return table[seen].reset_index(drop=True)


def pad_huggins(data: xr.Dataset, cells: int, patterns: int) -> xr.Dataset:
    """`data` with zero-count cells and empty patterns appended up to the given sizes, so datasets of one study
    share one compiled model. A zero-count cell adds 0 to the log-likelihood, an empty pattern 0 to N."""
    extra_c, extra_p = cells - data.sizes["cell"], patterns - data.sizes["pattern"]
    if extra_c < 0 or extra_p < 0:
        raise ValueError(f"cannot pad {dict(data.sizes)} to {cells} cells, {patterns} patterns")
    by_cell = data[[OBSERVED, "cell_pattern", "cell_history"]]
    pad_c = xr.zeros_like(by_cell.isel(cell=slice(0, 1))).isel(cell=[0] * extra_c)
    pad_c = pad_c.assign_coords(cell=np.arange(data.sizes["cell"], cells))
    by_pattern = data[["design", "pattern_count"]]
    pad_p = xr.zeros_like(by_pattern.isel(pattern=slice(0, 1))).isel(pattern=[0] * extra_p)
    pad_p = pad_p.assign_coords(pattern=np.arange(data.sizes["pattern"], patterns))
    rest = data.drop_vars([*by_cell.data_vars, *by_pattern.data_vars, "cell", "pattern"])
    return xr.merge(
        [
            rest,
            xr.concat([by_cell, pad_c], dim="cell"),
            xr.concat([by_pattern, pad_p], dim="pattern"),
        ],
        combine_attrs="override",
    )
