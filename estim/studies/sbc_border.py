"""Simulation-based calibration of the border model (`estim.families.border.model`) on a reduced design: is the
posterior that the model, its sampler and its generated quantities compute the right one, for the whole
design's unobserved crossings, r and the hierarchy's main parameters? (docs/sbc.md, "The border model".)

**Design** (`reduced_covariates`): the shipped covariates of `SECTIONS` (Orenburg surveyed with linkage; two
terrains) × `MONTHS` months from `FIRST_MONTH` (across the one policy event kept). Every likelihood term and
parameter block of the full model is there, at a twentieth of the cells; every count is simulated.

**Truth** (`draw_truth`): drawn in NumPy from the fit's priors (`sbc_priors`: the defaults and the spec's,
tighter in `SBC_PRIORS` where the defaults make absurd borders); r from its spike-and-slab prior.

**Data** (`simulate_border`), journey by journey from the model's docstring, not from its likelihood code:
J ~ NegBin(μ, φ) per cell; each attempt meets the detectors' competing exponential hazards within the month;
after an apprehension the person tries again with probability r; a share `LINK_SHARE` of the surveyed
section's apprehended journeys is looked up on the in-country lists. The truth's unobserved crossings are the
journeys that got through (never apprehended, or after their last apprehension).

**Ranks** (`replicate_rows`): the fit (nutpie, JAX; rebuilt and compiled for every dataset, whose counts
shape the likelihood's layout), averaged with r = 1 as the family does, thinned to L = 99 draws; there the
unobserved crossings by the family's `crossings` and the log-likelihood by one compiled function.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.families.border.data import CATEGORIES, DETECTORS, JOURNEY_CATEGORIES, RESIDENT
from estim.families.border.repeated_trials import REPEATED_TRIALS_PRIOR
from estim.families.border.revision import MODEL_REVISION
from estim.studies import sbc_ranks as ranks
from estim.studies.sbc_border_truth import (  # noqa: F401 - re-exported: the SBC's truths
    NATURAL,
    SBC_PRIORS,
    _shipped,
    _zero_sum,
    draw_truth,
    free_values,
    sbc_priors,
)

SECTIONS = ("orenburg", "samara", "novosibirsk", "tyumen")
FIRST_MONTH, MONTHS = "2008-07", 24  # across the border residents' agreement, 2009-04-27
LINK_SHARE = 0.42  # apprehended journeys looked up on the registers: the shipped Orenburg share (9,838/23,475)
MAX_ATTEMPTS = 100  # datasets redrawn at most (`simulate_replicate`)
# absurd borders are redrawn: at p → 1 and r = 1 a journey's apprehensions grow like exp(H) (shipped: 18 at most)
MAX_REPEATS, MAX_CELL_APPREHENSIONS = 100, 20_000
CHUNK = 1_000_000  # journeys simulated at a time (bounded memory on a large border)

RANKED = (
    "unobserved",
    "retry_probability",
    "hazard_mean",
    "hazard_section_sd",
    "section_sd",
    f"overdispersion[{RESIDENT}]",
    "overdispersion[bypasser]",
    "loglik",
)
"""The quantities ranked (m = 8): the whole design's unobserved crossings over the period, r (averaged with
r = 1), the section hazards' mean μ_a and scale σ_a, the section effects' scale σ_α, two categories'
overdispersion and log p(data | θ)."""


@dataclass(frozen=True)
class BorderSbcDesign:
    """The sampler settings of the border SBC (the shipped spec's target acceptance and adaptation, fewer draws:
    L = 99 ranks need ~100 effective draws) and the spike of r's prior."""

    backend: str = "jax"
    chains: int = 2
    tune: int = 500
    draws: int = 500
    target_accept: float = 0.95
    adaptation: str = "low_rank"
    repeated_trials_prior: float = REPEATED_TRIALS_PRIOR
    # the shipped spec's centred section hazards suit its volume (every a_s well informed); here three of four
    # sections are unsurveyed and the counts a twentieth: the centred form diverged (33 in 1,000 draws)
    centered_hazard: bool = False
    # the same for α_s, which only the unsurveyed totals inform here (docs/sbc.md: a funnel at small σ_α)
    centered_section_effect: bool = False

    def describe(self) -> str:
        return (
            f"{len(SECTIONS)} sections ({', '.join(SECTIONS)}; {SECTIONS[0]} surveyed) × {MONTHS} months from "
            f"{FIRST_MONTH} × {len(CATEGORIES)} categories; priors: the model's defaults but "
            + "; ".join(f"{k} ~ {v}" for k, v in SBC_PRIORS.items())
            + f"; r = 1 with prior probability {self.repeated_trials_prior:g}, else "
            f"{sbc_priors()['retry_probability']}; section hazards "
            + ("centred" if self.centered_hazard else "non-centred")
            + ", section effects "
            + ("centred" if self.centered_section_effect else "non-centred")
        )


DESIGN = BorderSbcDesign()


# --------------------------------------------------------------------------------------------------------------
# the reduced design and its priors


def reduced_covariates(full: xr.Dataset | None = None) -> xr.Dataset:
    """What the model conditions on, for `SECTIONS` × `MONTHS` months from `FIRST_MONTH`: lengths,
    populations, terrains, surveyed flags, land flows and waits, seasons, years (from 0 at the first month)
    and the policy events that change within the months; the lists and patterns of the linkage. No counts."""
    full = _shipped()[0] if full is None else full
    first = int(np.flatnonzero(full["month"].values == np.datetime64(f"{FIRST_MONTH}-01"))[0])
    d = full.sel(section=list(SECTIONS)).isel(month=slice(first, first + MONTHS))
    in_force = d["policy_in_force"].values
    # an event that does not change within the months is confounded with the levels: dropped
    changing = in_force.max(axis=1) > in_force.min(axis=1)
    d = d.isel(event=np.flatnonzero(changing))
    keep = (
        "surveyed length_km border_population terrain"
        " land_foreign_crossings land_mean_wait month_of_year policy_in_force"
    ).split()
    out = d[keep].drop_vars(["k", "link_pattern", "detector"], errors="ignore")
    out["years"] = ("month", np.arange(MONTHS) / 12.0)
    out = out.assign_coords(
        detector=list(DETECTORS),
        in_country_list=full["in_country_list"].values,
        link_pattern=full["link_pattern"].values,
    )
    out.attrs = {"link_window_days": int(full.attrs.get("link_window_days", 0))}
    return out


# --------------------------------------------------------------------------------------------------------------
# the border, journey by journey


def journey_means(covariates: xr.Dataset, truth: Mapping[str, np.ndarray]) -> np.ndarray:
    """μ, the mean journeys of every (section, month, category) cell, from the model docstring's equations."""
    m = covariates["month_of_year"].values
    w = 2.0 * np.pi * m / 12.0
    seasonal = np.stack([np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)], axis=1)  # cos1 sin1 …
    years = covariates["years"].values
    in_force = covariates["policy_in_force"].values  # (event, month)
    theta = np.exp(truth["log_policy_effect"])  # (event, journey category)
    policy = np.log1p((theta[:, :, None] - 1.0) * in_force[:, None, :]).sum(axis=0)  # (cat, month)
    by_month = (
        truth["category_level"][:, None]
        + truth["season"] @ seasonal.T
        + truth["trend"][:, None] * years[None, :]
        + policy
    )  # (journey category, month)
    length = covariates["length_km"].values
    population = covariates["border_population"].values
    resident = np.array([c == RESIDENT for c in JOURNEY_CATEGORIES])
    log_mu = (
        np.log(length / 1000.0)[:, None, None]
        + truth["section_effect"][:, None, None]
        + by_month.T[None, :, :]
        + truth["population_elasticity"]
        * np.log(population / 1e5)[:, None, None]
        * resident[None, None, :]
    )
    flow = covariates["land_foreign_crossings"].values.astype(float)
    wait = np.maximum(covariates["land_mean_wait"].values, 0.1)
    odds = truth["bypass_eta0"] + truth["bypass_eta1"] * np.log(wait / 60.0)
    bypass = flow / (1.0 + np.exp(-odds))  # F · expit(η0 + η1 log(w/60)); 0 without flow
    return np.concatenate([np.exp(log_mu), bypass[:, :, None]], axis=2)


def detector_hazards(covariates: xr.Dataset, truth: Mapping[str, np.ndarray]) -> np.ndarray:
    """H_d = exp(a_s + b_c + e_d + δ y [d = technical]) per (section, month, category, detector)."""
    e = np.concatenate([[0.0], truth["hazard_detector"]])  # e_patrol = 0
    technical = np.array([d == "technical" for d in DETECTORS], float)
    by_month = (
        e[None, :] + truth["technical_trend"] * covariates["years"].values[:, None] * technical
    )
    log_h = (
        truth["hazard_section"][:, None, None, None]
        + truth["hazard_category"][None, None, :, None]
        + by_month[None, :, None, :]
    )
    return np.exp(log_h)


def _journeys(
    hazards: np.ndarray, retry: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate journeys whose detectors have ``hazards`` (journey, detector): each attempt is caught by the
    detector whose exponential time comes first, if before the month's end; after a capture the person tries
    again with probability ``retry``. Returns each journey's apprehensions k, whether it got through, and the
    apprehensions per detector (journey, detector)."""
    n = hazards.shape[0]
    k = np.zeros(n, np.int64)
    through = np.zeros(n, bool)
    by_detector = np.zeros(hazards.shape, np.int64)
    active = np.arange(n)
    while active.size:
        times = rng.exponential(1.0, (active.size, hazards.shape[1])) / hazards[active]
        first = times.argmin(axis=1)
        caught = times[np.arange(active.size), first] < 1.0
        through[active[~caught]] = True
        hit = active[caught]
        k[hit] += 1
        by_detector[hit, first[caught]] += 1
        again = rng.random(hit.size) < retry
        active = hit[again]
    return k, through, by_detector


def _sightings(rng: np.random.Generator, n: int, rates: np.ndarray, n_lists: int) -> np.ndarray:
    """The lists (a bit pattern) on which n people are seen through their other crossings in a window:
    Poisson(μ_S) crossings on exactly the lists of each set S = 1 … 2^L − 1 (``rates``, (n, set))."""
    pattern = np.zeros(n, np.int64)
    for b in range(1, 2**n_lists):
        pattern |= np.where(rng.poisson(rates[:, b - 1]) > 0, b, 0)
    return pattern


def simulate_border(
    covariates: xr.Dataset, truth: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[xr.Dataset, dict[str, int]]:
    """The border model's data at ``truth`` (`border_data`'s layout), journey by journey (module docstring),
    with the true totals: ``journeys``, ``unobserved`` (got through: never caught, or after the last
    apprehension), ``apprehensions``, ``linked``."""
    mu = journey_means(covariates, truth)  # (section, month, category)
    phi = 1.0 / truth["overdispersion"] ** 2
    gamma = rng.gamma(np.broadcast_to(phi, mu.shape), mu / phi)
    journeys = rng.poisson(gamma)
    hazards = detector_hazards(covariates, truth).reshape(-1, len(DETECTORS))
    shape, n_cells = mu.shape, mu.size
    cell_of = np.repeat(np.arange(n_cells), journeys.ravel())
    k = np.zeros(cell_of.size, np.int64)
    through = np.zeros(cell_of.size, bool)
    by_detector = np.zeros((n_cells, len(DETECTORS)), np.int64)
    for lo in range(0, cell_of.size, CHUNK):
        cells = cell_of[lo : lo + CHUNK]
        k_c, t_c, d_c = _journeys(hazards[cells], float(truth["retry_probability"]), rng)
        k[lo : lo + CHUNK], through[lo : lo + CHUNK] = k_c, t_c
        np.add.at(by_detector, cells, d_c)
    caught = k > 0
    apprehensions = np.bincount(cell_of, weights=k, minlength=n_cells).astype(np.int64)
    apprehended = np.bincount(cell_of[caught], minlength=n_cells)
    surveyed = np.repeat(covariates["surveyed"].values, shape[1] * shape[2])
    k_max = max(int(k.max(initial=0)), 1)
    frequency = np.zeros((n_cells, k_max), np.int64)
    in_surveyed = caught & surveyed[cell_of]
    np.add.at(frequency, (cell_of[in_surveyed], k[in_surveyed] - 1), 1)
    # the register linkage of a share of the surveyed sections' apprehended journeys
    n_lists = covariates.sizes["in_country_list"]
    n_pat = 2**n_lists
    linked_journey = in_surveyed & (rng.random(k.size) < LINK_SHARE)
    cells = cell_of[linked_journey]
    category = cells % shape[2]
    coverage = truth["register_coverage"][:, category].T  # (journey, list)
    other = truth["other_sightings"][:, category].T  # (journey, set)
    seen = (rng.random(coverage.shape) < coverage) & through[linked_journey][:, None]
    this_crossing = (seen * (1 << np.arange(n_lists))).sum(axis=1)
    after = this_crossing | _sightings(rng, cells.size, other, n_lists)
    before = _sightings(rng, cells.size, other, n_lists)
    linked = np.zeros((n_cells, n_pat), np.int64)
    before_counts = np.zeros((n_cells, n_pat), np.int64)
    np.add.at(linked, (cells, after), 1)
    np.add.at(before_counts, (cells, before), 1)
    dims = ("section", "month", "category")
    data = covariates.copy()
    data["apprehensions"] = (dims, apprehensions.reshape(shape))
    data["apprehensions_by_detector"] = ((*dims, "detector"), by_detector.reshape(*shape, -1))
    data["apprehended_journeys"] = (dims, np.where(surveyed, apprehended, -1).reshape(shape))
    data["frequency"] = ((*dims, "k"), frequency.reshape(*shape, k_max))
    data["linked_journeys"] = ((*dims, "link_pattern"), linked.reshape(*shape, n_pat))
    data["before_journeys"] = ((*dims, "link_pattern"), before_counts.reshape(*shape, n_pat))
    data = data.assign_coords(
        category=list(CATEGORIES),
        k=np.arange(1, k_max + 1),
        year=("month", pd.DatetimeIndex(data["month"].values).year.values.astype(np.int64)),
    )
    totals = {
        "journeys": int(journeys.sum()),
        "unobserved": int(through.sum()),
        "apprehensions": int(apprehensions.sum()),
        "linked": int(linked.sum()),
    }
    return data, totals


# --------------------------------------------------------------------------------------------------------------
# the fit, the ranked quantities and the log-likelihood


class BorderSbcModel:
    """The border model on one simulated dataset with the SBC priors, compiled by nutpie (JAX), and
    log p(data | θ) as a function of the free variables, compiled once (JAX)."""

    def __init__(self, data: xr.Dataset, design: BorderSbcDesign = DESIGN) -> None:
        import pymc as pm
        import pytensor
        from pytensor.graph.replace import graph_replace

        from estim.families.border.model import build_border
        from estim.run.sampler import compile_model

        start = time.perf_counter()
        self.design = design
        overrides = {**_shipped()[1], **SBC_PRIORS}  # entries of DEFAULT_PRIORS, merged there
        options = {
            k: getattr(design, k)
            for k in ("repeated_trials_prior", "centered_hazard", "centered_section_effect")
        }
        model = build_border(data, overrides, **{**_shipped()[2], **options})
        self.free = [rv.name for rv in model.free_RVs]
        self.terrains = data["terrain"].values
        loglik = sum(pm.logp(rv, model.rvs_to_values[rv]).sum() for rv in model.observed_RVs)
        inputs = [rv.type() for rv in model.free_RVs]
        replaced = graph_replace(loglik, dict(zip(model.free_RVs, inputs, strict=True)))
        self._loglik = pytensor.function(inputs, replaced, mode="JAX", on_unused_input="ignore")
        self.compiled = compile_model(model, design.backend)
        self.compile_seconds = time.perf_counter() - start

    def loglik(self, natural: Mapping[str, np.ndarray]) -> float:
        """log p(data | θ) at natural parameters θ (up to a constant in θ)."""
        return float(self._loglik(*free_values(self.free, natural, self.terrains)))

    def fit(self, seed: int, draws: int) -> xr.DataTree:
        from estim.run.sampler import available_threads, draw
        from estim.run.spec import SamplerSpec

        d = self.design
        keys = ("tune", "chains", "target_accept", "backend", "adaptation")
        sampler = SamplerSpec(draws=draws, **{k: getattr(d, k) for k in keys})
        return draw(self.compiled, sampler, seed, cores=min(d.chains, available_threads()))


def _category(name: str) -> tuple[str, str | None]:
    """``overdispersion[bypasser]`` → ("overdispersion", "bypasser"); a scalar → (name, None)."""
    base, _, label = name.rstrip("]").partition("[")
    return base, label or None


def parameter_draws(posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """The ranked parameters' draws (chain, draw): r, μ_a, σ_a, σ_α and the categories' overdispersion."""
    out = {}
    for name in RANKED:
        base, label = _category(name)
        if base in ("unobserved", "loglik"):
            continue
        x = posterior[base]
        if label is not None:
            x = x.sel(category=label)
        out[name] = np.broadcast_to(
            x.transpose("chain", "draw").values, (posterior.sizes["chain"], posterior.sizes["draw"])
        )
    return out


def truth_quantities(
    truth: Mapping[str, np.ndarray], totals: Mapping[str, int], loglik: float
) -> dict[str, float]:
    """The ranked quantities at the truth (`RANKED`)."""
    out = {"unobserved": float(totals["unobserved"])}
    for name in RANKED[1:-1]:
        base, label = _category(name)
        value = truth[base] if label is None else truth[base][list(CATEGORIES).index(label)]
        out[name] = float(value)
    out["loglik"] = loglik
    return out


def averaged_draws(
    data: xr.Dataset,
    posterior: xr.Dataset,
    chosen: np.ndarray,
    model: BorderSbcModel,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], float]:
    """The ranked quantities at the ``chosen`` draws (flat indices) of the posterior averaged with r = 1 (as
    the family's estimates read it): the parameters, the whole design's unobserved crossings drawn by the
    family's `crossings` and the log-likelihood; with P(r = 1 | data)."""
    from estim.families.border.generated import crossings
    from estim.families.border.repeated_trials import (
        SOURCE,
        repeated_trials_draws,
        with_repeated_trials,
    )

    source, _, probability = repeated_trials_draws(
        posterior, model.design.repeated_trials_prior, rng
    )
    averaged = with_repeated_trials(posterior.assign({SOURCE: source}))
    flat = averaged.stack(sample=("chain", "draw")).isel(sample=chosen)
    flat = flat.drop_vars(["sample", "chain", "draw"]).rename({"sample": "draw"})
    thinned = flat.expand_dims(chain=[0]).assign_coords(draw=np.arange(len(chosen)))
    thinned = thinned.transpose("chain", "draw", ...)
    out = {k: v.ravel() for k, v in parameter_draws(thinned).items()}
    unobserved = crossings(data, thinned, rng)["unobserved"]
    out["unobserved"] = unobserved.sum(["section", "month", "category"]).values.ravel()
    at = [{n: thinned[n].values[0, i] for n in NATURAL if n in thinned} for i in range(len(chosen))]
    out["loglik"] = np.array([model.loglik(natural) for natural in at])
    return out, probability


def simulate_replicate(
    rng: np.random.Generator, covariates: xr.Dataset | None = None
) -> tuple[dict[str, np.ndarray], xr.Dataset, dict[str, int], int]:
    """Truth, data, true totals and the number of attempts: a dataset without a linked journey (the model then
    has no linkage, and r only its prior), or with a journey caught more than `MAX_REPEATS` times or a cell of
    more than `MAX_CELL_APPREHENSIONS` apprehensions, is drawn again: a condition on the data alone, which
    leaves SBC valid (5 of the first 120 replicates' first draws)."""
    covariates = reduced_covariates() if covariates is None else covariates
    for attempt in range(1, MAX_ATTEMPTS + 1):
        truth = draw_truth(covariates, rng)
        data, totals = simulate_border(covariates, truth, rng)
        repeats = data["k"].values[data["frequency"].values.sum(axis=(0, 1, 2)) > 0]
        if (
            totals["linked"] > 0
            and repeats.max(initial=0) <= MAX_REPEATS
            and data["apprehensions"].values.max() <= MAX_CELL_APPREHENSIONS
        ):
            return truth, data, totals, attempt
    raise RuntimeError(f"border: no dataset with a linked journey in {MAX_ATTEMPTS} draws")


EXTRA_COLUMNS = ("compile_seconds", "p_repeated_trials", "model_revision")
"""The border replicate's columns beyond `estim.studies.sbc_ranks.COLUMNS`."""


def replicate_rows(
    task: tuple[str, int, int],
    *,
    draws_per_rank: int = ranks.DRAWS_PER_RANK,
    backend: str | None = None,
) -> pd.DataFrame:
    """Replicate ``task`` = ("border", replicate, seed): one row per ranked quantity (`RANKED`) in the columns
    of `estim.studies.sbc_ranks.COLUMNS` (``n_true``: the true unobserved crossings, ``n_observed``: the
    apprehensions) and `EXTRA_COLUMNS`: ``compile_seconds``, ``p_repeated_trials`` (P(r = 1 | data)) and
    ``model_revision`` (`estim.families.border.revision`); or one row with the error. The model is built
    and compiled for each dataset (its likelihood's layout is built from the observed totals,
    `estim.families.border.kernels.totals_logp`); ``seconds`` is the fit's time after that."""

    family, replicate, seed = task
    design = DESIGN if backend is None else BorderSbcDesign(backend=backend)
    sim_seq, fit_seq, post_seq = ranks.replicate_seeds(family, replicate, seed)
    base: dict[str, Any] = dict(family=family, replicate=int(replicate), seed=int(seed))
    base["draws"] = draws_per_rank
    base["model_revision"] = MODEL_REVISION  # an errored replicate's too
    start = time.perf_counter()
    try:
        truth, data, totals, attempts = simulate_replicate(np.random.default_rng(sim_seq))
        base.update(
            n_true=totals["unobserved"], n_observed=totals["apprehensions"], attempts=attempts
        )
        model = BorderSbcModel(data, design)
        start = time.perf_counter()
        rng = np.random.default_rng(post_seq)
        nuts_seed = int(fit_seq.generate_state(1)[0])
        idata = model.fit(nuts_seed, design.draws)
        ess, rhat = ranks.diagnostics(parameter_draws(idata["posterior"].to_dataset()))
        refit = ess < draws_per_rank + 1
        if refit:  # too few effective draws for L roughly independent ones: a longer chain
            idata = model.fit(nuts_seed, design.draws * ranks.REFIT_FACTOR)
            ess, rhat = ranks.diagnostics(parameter_draws(idata["posterior"].to_dataset()))
        posterior = idata["posterior"].to_dataset()
        chosen = ranks.thin(posterior.sizes["chain"] * posterior.sizes["draw"], draws_per_rank)
        draws, probability = averaged_draws(data, posterior, chosen, model, rng)
        truths = truth_quantities(truth, totals, model.loglik(truth))
        seconds = time.perf_counter() - start
        fit = ranks.fit_columns(idata, ess, rhat, refit, seconds)
        rows = ranks.quantity_rows(
            base,
            truths,
            draws,
            rng,
            **fit,
            compile_seconds=model.compile_seconds,
            p_repeated_trials=probability,
        )
    except Exception as e:  # noqa: BLE001 - a failed replicate is a result of the study, not its end
        rows = [ranks.error_row(base, time.perf_counter() - start, e)]
    return pd.DataFrame(rows, columns=[*ranks.COLUMNS, *EXTRA_COLUMNS])


def report_info(backend: str | None = None) -> dict[str, Any]:
    """What `estim.studies.sbc.study_report` says of the border design in place of a prior on N."""
    d = DESIGN if backend is None else BorderSbcDesign(backend=backend)
    sampler = ("backend", "chains", "tune", "draws", "target_accept", "adaptation")
    return {"population_prior": d.describe(), "sampler": {k: getattr(d, k) for k in sampler}}
