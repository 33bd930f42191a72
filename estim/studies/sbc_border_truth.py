"""The border SBC's truths (`estim.studies.sbc_border`): its priors (the model's defaults, the shipped spec's and
`SBC_PRIORS` over them), every parameter drawn from them in NumPy (`draw_truth`), and the model's free variables
at a set of natural parameters (`free_values`), for the log-likelihood the ranks include.

With the shipped spec's ``terrain_journeys`` option (and more than one terrain in the design) the sections'
journey levels are drawn as the model states them: α_s = u_terrain(s) + α'_s, u and α' each summing to zero."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from estim.families.border.data import CATEGORIES, DETECTORS, JOURNEY_CATEGORIES
from estim.families.border.model import DEFAULT_PRIORS
from estim.families.border.repeated_trials import REPEATED_TRIALS_PRIOR
from estim.families.border.retry import RIDGE_COVERAGE_SLOPE, RIDGE_HAZARD_SLOPE
from estim.priors import Prior, merge_priors
from estim.studies.sbc_designs import draw_prior

SBC_PRIORS: dict[str, Prior] = {
    # the defaults reach hazards of e^5 and more (p = 1 − 10⁻⁶⁰: with r = 1 a journey is caught for ever)
    "hazard_mean": Prior("Normal", mu=-1.5, sigma=0.5),
    "hazard_detector": Prior("Normal", mu=-1.0, sigma=0.5),
    # the defaults reach 10⁶ journeys a month in a cell (Normal(2, 2) levels, bypass shares near 1 of a flow
    # of 500,000 a month)
    "category_level": Prior("Normal", mu=2.0, sigma=1.0),
    "bypass_eta0": Prior("Normal", mu=-8.0, sigma=1.0),
    "bypass_eta1": Prior("Normal", mu=0.0, sigma=1.0),
}
"""The proper priors SBC uses in place of defaults that generate absurd borders, both for the truth and in the
fit."""


@functools.cache
def _shipped() -> tuple[xr.Dataset, dict[str, Prior], dict[str, Any]]:
    from estim.paths import REPO_ROOT
    from estim.run.data import load_data
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    return load_data(spec), dict(spec.priors), dict(spec.options)


def sbc_priors() -> dict[str, Prior]:
    """The model's default priors, the shipped spec's [priors] over them and `SBC_PRIORS` over both."""
    return merge_priors(merge_priors(DEFAULT_PRIORS, _shipped()[1]), SBC_PRIORS)


def _zero_sum(sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """ZeroSumNormal(σ): n independent Normal(0, σ) draws less their mean."""
    z = rng.normal(0.0, sigma, n)
    return z - z.mean()


def draw_truth(
    covariates: xr.Dataset,
    rng: np.random.Generator,
    priors: Mapping[str, Prior] | None = None,
    terrain_journeys: bool | None = None,
    repeated_trials_prior: float = REPEATED_TRIALS_PRIOR,
) -> dict[str, np.ndarray]:
    """Every parameter of the model (natural scale, the model's names and shapes) drawn from ``priors``
    (default `sbc_priors`), r from its spike-and-slab prior (r = 1 with probability
    ``repeated_trials_prior``). ``terrain_journeys`` (default: the shipped spec's option): the journey levels
    shifted by terrain, as the model has them with that option."""
    p = sbc_priors() if priors is None else priors
    if terrain_journeys is None:
        terrain_journeys = bool(_shipped()[2].get("terrain_journeys", False))
    n_sec, n_ev = covariates.sizes["section"], covariates.sizes["event"]
    n_j, n_c = len(JOURNEY_CATEGORIES), len(CATEGORIES)
    n_lists = covariates.sizes["in_country_list"]
    n_terrain = len(np.unique(covariates["terrain"].values))
    t: dict[str, np.ndarray] = {}
    slab = draw_prior(p["retry_probability"], (), rng)
    t["retry_probability"] = np.asarray(1.0 if rng.random() < repeated_trials_prior else slab)
    t["section_sd"] = draw_prior(p["section_sd"], (), rng)
    _, terrain_of = np.unique(covariates["terrain"].values.astype(str), return_inverse=True)
    if terrain_journeys and n_terrain > 1:  # the model's α_s = u_terrain(s) + α'_s
        t["section_deviation"] = _zero_sum(float(t["section_sd"]), n_sec, rng)
        t["journey_terrain"] = _zero_sum(p["journey_terrain"].parameters["sigma"], n_terrain, rng)
        t["section_effect"] = t["section_deviation"] + t["journey_terrain"][terrain_of]
    else:
        t["section_effect"] = _zero_sum(float(t["section_sd"]), n_sec, rng)
    t["category_level"] = draw_prior(p["category_level"], (n_j,), rng)
    t["season"] = draw_prior(p["season"], (n_j, 4), rng)
    t["trend"] = draw_prior(p["trend"], (n_j,), rng)
    t["log_policy_effect"] = draw_prior(p["log_policy_effect"], (n_ev, n_j), rng)
    t["population_elasticity"] = draw_prior(p["population_elasticity"], (), rng)
    t["overdispersion"] = draw_prior(p["overdispersion"], (n_c,), rng)
    t["bypass_eta0"] = draw_prior(p["bypass_eta0"], (), rng)
    t["bypass_eta1"] = draw_prior(p["bypass_eta1"], (), rng)
    t["hazard_mean"] = draw_prior(p["hazard_mean"], (), rng)
    t["hazard_section_sd"] = draw_prior(p["hazard_section_sd"], (), rng)
    t["hazard_terrain"] = _zero_sum(p["hazard_terrain"].parameters["sigma"], n_terrain, rng)
    location = t["hazard_mean"] + t["hazard_terrain"][terrain_of]
    t["hazard_section"] = rng.normal(location, t["hazard_section_sd"])
    t["hazard_category"] = _zero_sum(p["hazard_category"].parameters["sigma"], n_c, rng)
    t["hazard_detector"] = draw_prior(p["hazard_detector"], (len(DETECTORS) - 1,), rng)
    t["technical_trend"] = draw_prior(p["technical_trend"], (), rng)
    t["register_coverage"] = draw_prior(p["register_coverage"], (n_lists, n_c), rng)
    t["other_sightings"] = draw_prior(p["other_sightings"], (2**n_lists - 1, n_c), rng)
    return {k: np.asarray(v, dtype=float) for k, v in t.items()}


NATURAL = tuple(
    "retry_probability section_sd section_effect section_deviation journey_terrain category_level season trend"
    " log_policy_effect"
    " population_elasticity overdispersion bypass_eta0 bypass_eta1 hazard_mean hazard_section_sd hazard_terrain"
    " hazard_section hazard_category hazard_detector technical_trend register_coverage other_sightings".split()
)
"""The model's parameters on their natural scale (a truth, a posterior draw)."""


def free_values(
    names: list[str], natural: Mapping[str, np.ndarray], terrains: np.ndarray
) -> list[np.ndarray]:
    """The model's free variables ``names`` at the natural parameters ``natural`` (``terrains``: the
    sections' terrains): the model samples r as the point of the plane v with |v|²/2 = −log r (its angle is
    not identified: v = (√(−2 log r), 0)), the levels that move with r relative to it
    (`estim.families.border.retry`) and, non-centred, the section hazards and effects (or, with the journey levels
    shifted by terrain, their deviations) as standard scores."""
    log_r = float(np.log(natural["retry_probability"]))
    hazard_shift = -log_r / RIDGE_HAZARD_SLOPE
    out = []
    for name in names:
        if name == "give_up_hazard_root":
            value = np.array([np.sqrt(max(-2.0 * log_r, 0.0)), 0.0])
        elif name in ("category_level_given_retry", "bypass_eta0_given_retry"):
            value = natural[name.removesuffix("_given_retry")] - log_r
        elif name in ("hazard_mean_given_retry", "hazard_section_given_retry"):
            value = natural[name.removesuffix("_given_retry")] - hazard_shift
        elif name == "hazard_section_z":  # non-centred: a_s = μ_a + t_terrain(s) + σ_a z_s
            _, terrain_of = np.unique(np.asarray(terrains).astype(str), return_inverse=True)
            location = natural["hazard_mean"] + natural["hazard_terrain"][terrain_of]
            value = (natural["hazard_section"] - location) / natural["hazard_section_sd"]
        elif name in ("section_effect_z", "section_deviation_z"):  # non-centred: σ_α z_s
            value = natural[name.removesuffix("_z")] / natural["section_sd"]
        elif name == "register_coverage_z":
            pi = natural["register_coverage"]
            value = np.log(pi) - np.log1p(-pi) + RIDGE_COVERAGE_SLOPE * log_r
        else:
            value = natural[name]
        out.append(np.asarray(value, dtype=float))
    return out
