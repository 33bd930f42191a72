"""Beyond five lists: every two-list interaction at once, under a regularised horseshoe (Piironen & Vehtari
2017), in place of model averaging (the decomposable graphs are enumerated up to 6 lists; 7 have 617,675) or stepwise
selection (SparseMSE).

The model is the log-linear engine's (`estim.families.loglinear`): Rcapture's Mt (one effect per list) plus
all K(K − 1)/2 two-list interactions, ``Terms(capture="Mt", interactions=all pairs)``, on the 2^K − 1
observable patterns (any K from 3 to the engine's 20). Its likelihood is the engine's own
(`estim.families.loglinear.model.build_loglinear`): N summed out under p(N) ∝ 1/N, leaving the conditional
likelihood Π_h [P(h) / (1 − P(0))]^y_h of the observed patterns; N − n | β ~ NegativeBinomial(n, 1 − P(0)) is
drawn afterwards (`population`). Only the prior of the coefficients differs:

* list (main) effects: the engine's ``effect`` prior, Normal(0, 30) (they are always in the model, and the
  engine's reasons for a wide prior hold);
* pair effects, non-centred: β_jk = z_jk τ λ̃_jk, z_jk ~ Normal(0, 1), with
  λ̃²_jk = c² λ²_jk / (c² + τ² λ²_jk) — coded as τ λ̃ = ((τ λ)⁻² + c⁻²)^(−1/2), which never divides 0 by 0;

  - ``local``: λ_jk ~ HalfStudentT(ν = 1, σ = 1), a half-Cauchy: its heavy tail lets a real dependence
    escape the shrinkage, its pole at 0 shrinks the rest hard;
  - ``global``: τ = τ0 · g, g ~ HalfStudentT(ν = 1, σ = 1): a half-Cauchy with scale τ0 (Piironen & Vehtari's
    recommendation). τ0 = p0 / (D − p0) / √m, with D the number of pairs, p0 the number of pairs expected
    to interact (``[options] expected_pairs``, default ⌊K/2⌋, at least 1: published multiple-list analyses
    keep one interaction for every two lists or so) and m the median over pairs of the number of people on
    both lists. Their p0 / (D − p0) · σ/√n is for standardised covariates; a 0/1 pair column has standard
    deviation ≈ √(m/n) over the n people seen, so on the coefficient's own scale σ/√n becomes 1/√m (σ = 1,
    the Poisson pseudo-variance of their §3.5 per person). With 1/√n in its place τ0 was 10–15 times
    smaller and a 10-list fit got stuck (R-hat 1.6); with 1/√m it set the prior's effective number of non-zero
    pairs near p0, and the half-Cauchy lets the data move it;
  - ``slab_precision``: 1/c² ~ Gamma(ν/2, ν s²/2) with ν = 4, s = 2, i.e. the slab c² ~ InverseGamma(2, 8)
    written by its precision (estim's priors name no inverse gamma). A pair that escapes the shrinkage is
    still Normal(0, c²): log odds ratios between two lists beyond ±2c ≈ ±6 (a 400-fold dependence) are
    implausible, and without the slab an overlap of zero drives its β to −∞. With it the posterior is proper
    for every table, also where the MLE of a model with that pair does not exist (UK: LA and GP have nobody in
    common); the pair then lies far below zero, as far as the slab lets it, and N hardly depends on how far,
    since only the empty cells move.

Each prior is a spec's ``[priors]`` name (``effect``, ``local``, ``global``, ``slab_precision``). A
half-Student-t ``local`` or ``global`` is sampled as its scale mixture σ a / √b, a ~ HalfNormal(1),
b ~ Gamma(ν/2, ν/2) (rstanarm's ``hs()``; variables ``…_normal``, ``…_mixing``): the same prior.

Sampling (models/uk_lists_shrinkage.toml, measured). A strong pair's λ is identified only up to the point where
the slab takes over (τ λ ≫ c), so its tail mixes slowly: the gate reads the coefficients, P(0), τ and N
(`GATE_VARIABLES`), not the scales' pieces. nutpie's numba backend, target acceptance 0.99 (at 0.95 a 10-list
fit diverged 7 times), the diagonal mass matrix (the low-rank one took 3 times longer on 10 lists), and 2,000
draws, as the UK's list effects, correlated with their pairs, need them for ESS ≥ 400.

Variables: ``list_effect`` (stratum, list), ``pair_effect`` (stratum, pair) and their concatenation
``effect`` (stratum, term) = the engine's ``coefficient`` (the terms' scales are 1); the horseshoe's
``pair_z``, ``local_scale``, ``global_raw``, ``global_scale`` = τ, ``slab_precision``, ``slab_scale`` = c;
``p_unseen`` = P(0). A pair is *selected* (`selected_pairs`) when its central 95 % interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register
from estim.families.closed import OBSERVED
from estim.families.lists.data import LISTS
from estim.families.loglinear.design import Design, Terms, model_design
from estim.families.loglinear.model import DEFAULT_PRIORS as ENGINE_PRIORS
from estim.families.loglinear.model import build_loglinear, term_scale
from estim.families.loglinear.model import population as engine_population
from estim.families.options import Option, number_option
from estim.priors import Prior, merge_priors

SLAB_DF = 4.0  # ν of the slab's inverse gamma
SLAB_SCALE = 2.0  # s: the slab's scale on the log-odds-ratio scale of a pair
DEFAULT_PRIORS: dict[str, Prior] = {
    "effect": ENGINE_PRIORS["effect"],
    "local": Prior("HalfStudentT", nu=1, sigma=1),
    "global": Prior("HalfStudentT", nu=1, sigma=1),
    "slab_precision": Prior("Gamma", alpha=SLAB_DF / 2, beta=SLAB_DF * SLAB_SCALE**2 / 2),
}
# N and the quantities the diagnostics gate reads (the horseshoe's scales are heavy-tailed by design, and
# the pairs' z and λ trade off: only their product β is identified)
GATE_VARIABLES = ("effect", "p_unseen", "global_scale")


def lists_of(data: xr.Dataset) -> list[str]:
    """The list names of a pattern table (its occasions), checked: 3 lists at least."""
    if OBSERVED not in data or "capture" not in data:
        raise EstimInputError(
            "the shrinkage model needs a pattern table (estim.families.closed.history_data)"
        )
    lists = [str(o) for o in data["occasion"].values]
    if len(lists) < 3:
        raise EstimInputError(f"all two-list interactions need at least 3 lists; got {lists}")
    return lists


def shrinkage_terms(lists: Sequence[str]) -> Terms:
    """Mt with every two-list interaction, in the order (1, 2), (1, 3), …, (K − 1, K)."""
    return Terms(capture="Mt", interactions=tuple(combinations(lists, 2)))


def shrinkage_design(data: xr.Dataset) -> Design:
    """The engine's design of `shrinkage_terms` on the data's patterns."""
    return model_design(shrinkage_terms(lists_of(data)), data)


def default_expected_pairs(lists: int) -> int:
    """p0, the number of interacting pairs the global scale is set for: ⌊K/2⌋, at least 1."""
    return max(1, lists // 2)


def median_overlap(design: Design) -> np.ndarray:
    """Per stratum, the median over pairs of lists of the number of people on both (at least 1)."""
    pairs = design.matrix[:, design.matrix.shape[1] - len(design.model.interactions) :]
    overlaps = design.counts @ pairs  # (stratum, pair)
    return np.maximum(np.median(overlaps, axis=1), 1.0)


def global_scale_scale(pairs: int, expected_pairs: float, overlap: np.ndarray) -> np.ndarray:
    """τ0 = p0 / (D − p0) / √m per stratum: Piironen & Vehtari's (2017, eq. 3.12) p0 / (D − p0) · σ / √n for
    a standardised covariate, σ = 1, carried to the 0/1 pair column, whose standard deviation over the n
    people seen is about √(m/n) with m the number of people on both lists (the median over pairs)."""
    expected_pairs = number_option(
        "expected_pairs",
        expected_pairs,
        f"the number of pairs of lists expected to interact (of the {pairs} pairs)",
        low=0.0,
        high=float(pairs),
        low_open=True,
        high_open=True,
    )
    return expected_pairs / (pairs - expected_pairs) / np.sqrt(np.asarray(overlap, dtype=float))


def _scale(prior: Prior, name: str, dims: Any) -> Any:
    """A scale with prior `prior`; a half-Student-t one as its scale mixture σ a / √b, a ~ HalfNormal(1),
    b ~ Gamma(ν/2, rate ν/2) (rstanarm's ``hs()``): NUTS moves along log a and log b far better than along the
    half-Cauchy's own log, where the tail of a strong pair's λ mixed slowly and diverged."""
    if prior.distribution != "HalfStudentT":
        return prior.create(name, dims=dims)
    nu, sigma = float(prior.parameters["nu"]), float(prior.parameters["sigma"])
    a = pm.HalfNormal(f"{name}_normal", 1.0, dims=dims)
    b = pm.Gamma(f"{name}_mixing", alpha=nu / 2, beta=nu / 2, dims=dims)
    return pm.Deterministic(name, sigma * a / pt.sqrt(b), dims=dims)


def _horseshoe_effects(
    priors: Mapping[str, Prior], lists: list[str], pairs: list[str], tau0: np.ndarray
) -> Callable[[], Any]:
    """The builder of the coefficients (stratum, term) the engine calls inside its model
    (`build_loglinear`'s ``effects``): list effects, then the pairs' horseshoe, in the engine's term order."""

    def build() -> Any:
        model = pm.modelcontext(None)
        model.add_coord("list", lists)
        model.add_coord("pair", pairs)
        main = priors["effect"].create("list_effect", dims=("stratum", "list"))
        z = pm.Normal("pair_z", 0.0, 1.0, dims=("stratum", "pair"))
        local = _scale(priors["local"], "local_scale", ("stratum", "pair"))
        raw = _scale(priors["global"], "global_raw", "stratum")
        tau = pm.Deterministic("global_scale", raw * tau0, dims="stratum")
        precision = priors["slab_precision"].create("slab_precision", dims="stratum")
        pm.Deterministic("slab_scale", 1.0 / pt.sqrt(precision), dims="stratum")
        # τ λ̃ = (1 / (τ λ)² + 1 / c²)^(−1/2): Piironen & Vehtari's λ̃ without 0/0 as λ → 0
        scale = 1.0 / pt.sqrt(1.0 / pt.sqr(tau[:, None] * local) + precision[:, None])
        pair = pm.Deterministic("pair_effect", z * scale, dims=("stratum", "pair"))
        return pt.concatenate([main, pair], axis=1)

    return build


def build_shrinkage(
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    expected_pairs: float | None = None,
) -> pm.Model:
    """The Bayesian log-linear model of K lists with every two-list interaction under a regularised
    horseshoe (module docstring); dims stratum, history (the observed patterns), term, list, pair."""
    lists = lists_of(data)
    design = shrinkage_design(data)
    if not np.all(term_scale(design.matrix) == 1.0):  # 0/1 columns: effect = coefficient
        raise EstimInputError("a list or pair column of the design is not 0/1")
    pri = merge_priors(DEFAULT_PRIORS, priors)
    pairs = [":".join(t) for t in design.model.interactions]
    p0 = default_expected_pairs(len(lists)) if expected_pairs is None else expected_pairs
    tau0 = global_scale_scale(len(pairs), p0, median_overlap(design))
    return build_loglinear(design, data, effects=_horseshoe_effects(pri, lists, pairs, tau0))


def population(data: xr.Dataset, posterior: xr.Dataset | Any, rng: Any = None) -> xr.DataArray:
    """Draws of N per stratum: the engine's N = n + NegativeBinomial(n, 1 − P(0)) at each draw of P(0)."""
    return engine_population(shrinkage_design(data), posterior, rng)


def selected_pairs(posterior: xr.Dataset, prob: float = 0.95, stratum: int = 0) -> list[str]:
    """The pairs whose central `prob` posterior interval of the interaction excludes 0."""
    beta = posterior["pair_effect"].isel(stratum=stratum)
    lo = beta.quantile((1 - prob) / 2, dim=("chain", "draw"))
    hi = beta.quantile((1 + prob) / 2, dim=("chain", "draw"))
    keep = (lo > 0) | (hi < 0)
    return [str(p) for p in beta["pair"].values[keep.values]]


# --------------------------------------------------------------------------------------------------------------
# The registered family


def _build(
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    expected_pairs: float | None = None,
    **opts: Any,
) -> pm.Model:
    if opts:
        raise EstimInputError(
            f"lists_shrinkage takes [options] expected_pairs only; got {sorted(opts)}"
        )
    return build_shrinkage(data, priors, expected_pairs)


def _population(data: xr.Dataset, posterior: Any, rng: Any = None, **_: Any) -> xr.DataArray:
    return population(data, posterior, rng)


def _no_ml(*_: Any, **__: Any) -> MLEResult:
    raise EstimInputError(
        "lists_shrinkage has no maximum-likelihood mode: the ML of every pair at once rarely exists on a "
        "sparse table (see estim.families.lists.existence); SparseMSE's stepwise model is the family "
        "lists_stepwise"
    )


register(
    Family(
        name="lists_shrinkage",
        description="multiple lists: every two-list interaction under a regularised horseshoe, Bayesian",
        data=LISTS,
        build=_build,
        population=_population,
        mle=_no_ml,
        ml=False,
        default_priors=DEFAULT_PRIORS,
        observed_name=OBSERVED,
        gate_variables=GATE_VARIABLES,
        # below the number of pairs too, which the data decide (`global_scale_scale`)
        options=(
            Option(
                "expected_pairs",
                "the number of pairs of lists expected to interact",
                kind="number",
                low=0.0,
                low_open=True,
            ),
        ),
    )
)
