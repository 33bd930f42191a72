"""The border model: illegal crossing attempts, apprehensions and unobserved crossings per section × month ×
category, for the whole border (docs/design.md §4).

It is the generative process of ``docs/simulator.md`` (the contract), without the person-level frailty of the
apprehension hazard (an option, below) and with the in-country registers read only through their linkage.
Indices: section s (12), month t, category c (border_resident, labour_migrant, transit_migrant, smuggler,
bypasser), detector d; y(t) = years since the first month, m(t) month of the year, I_e(t) the share of month t
with policy event e in force. Model variables are named after the symbols' meaning (in brackets below).

**Journeys** (intentions to cross illegally), J_{s,t,c} ~ NegBin(μ_{s,t,c}, φ_c) with

    log μ_{s,t,c} = log(ℓ_s/1000) + α_s + β_c + S_c(m) + τ_c y + Σ_e log(1 + (θ_{e,c} − 1) I_e(t))
                    + γ log(N_s/10⁵) [c = border_resident]                       (c ≠ bypasser)
    μ_{s,t,bypasser} = F_{s,t} · expit(η0 + η1 log(max(w_{s,t}, 0.1)/60))

ℓ_s section length, N_s near-border population (``data/sections.csv``); α_s [section_effect] sum-to-zero
section effects with scale σ_α [section_sd] (centred by default; ``centered_section_effect = false`` in a
spec's [options] samples them as σ_α times standard scores, for data that inform them weakly;
``terrain_journeys = true`` makes α_s = u_{terrain(s)} + α'_s, the deviations α'_s [section_deviation] taking the
section_effect prior and u [journey_terrain] summing to zero over terrains, so that a section alone in its
terrain is not pooled toward the others' journey level); β_c
[category_level]; S_c [season] two seasonal harmonics; τ_c
[trend]; θ_{e,c} = exp(log_policy_effect): every policy event on every category's journeys (the data cover all
three events); γ [population_elasticity]; φ_c = 1/overdispersion²; F_{s,t}, w_{s,t} the land foreign flow and
its mean wait at the section's checkpoints (observed exactly, conditioned on): bypassers are law-abiding
foreigners who cross outside a checkpoint, their share rising with the wait with elasticity η1 [bypass_eta1].

**Apprehension** per attempt (competing detector hazards):

    p_{s,t,c} = 1 − exp(−H),   log H = a_s + b_c + log Σ_d exp(e_d + δ y [d = technical])

a_s ~ Normal(μ_a + t_{terrain(s)}, σ_a) [hazard_section; hazard_mean, hazard_terrain, hazard_section_sd] is
partially pooled across sections, around a mean shifted by the section's terrain (``data/sections.csv``; t sums
to zero over terrains; ``terrain_hazard = false`` in [options] pools all sections around one mean) (centred by
default: every section's a_s is well informed — by repeats or by the bypass block — and the non-centred form had
18 divergences and ESS 165 for σ_a on the shipped data; ``centered_hazard = false`` in a spec's [options] for
the other); b_c [hazard_category] sums to zero; e_d [hazard_detector], e_patrol = 0; δ [technical_trend].
Within the month a journey makes attempts; each is apprehended with probability p, and after an apprehension
the person tries again with probability r [retry_probability] or gives up (Espenshade's repeated trials are
r = 1, ``retry_probability = 1.0`` in a spec's [options]; estimated, r has prior probability
``repeated_trials_prior`` = ½ of being 1 exactly and the stated Beta otherwise, the two averaged after
sampling: ``estim.families.border.repeated_trials``). Its apprehensions K_j: P(K_j = 0) = 1 − p and
P(K_j = k) = p (pr)^{k−1} (1 − pr) for k ≥ 1, whether it ends in a crossing or not; an apprehended journey gets
through in the end with probability s = r(1 − p)/(1 − pr), whatever its k. So **unobserved** = the journeys
never apprehended + the apprehended ones that got through, and attempts = apprehensions + unobserved.

**Likelihood** (sufficient statistics of ``estim.statistics`` with ``period="month"``):

* surveyed sections (individual records): the apprehended journeys A = Σ_k f_k (a person makes at most one
  journey a month) follow NegBin(μp, φ) (binomial thinning of a gamma–Poisson count), and the repeat counts f_k
  follow the zero-truncated geometric P(k | k ≥ 1) = (pr)^{k−1}(1 − pr): the single-register family's kernel,
  reused (``estim.families.kernels.log_truncated_pmf("geometric", …)`` with log-mean log(pr/(1 − pr))). This
  identifies pr section by section, month by month — not p and r apart;
* surveyed sections, linkage (``estim.statistics.linkage``): the apprehended journeys towards Russia, each
  looked up on the in-country registers L (police checks, overstays) in the W days after its first
  apprehension (*after*) and the W days before it (*before*). A journey got through with probability s; a
  list records that crossing with π_{L,c} [register_coverage]; the person's other crossings into Russia in a
  window recorded on exactly the lists S are Poisson with mean μ_{S,c} [other_sightings] (the same before and
  after; ``after_background`` ρ ≠ 1 puts ρ μ after, for sensitivity); lists independent given the crossings.
  The journeys by *after* pattern and by *before* pattern are multinomial (`link_terms`: P(seen on none of U) = [Π_{L∈U}(1 − π_L)]^{got} exp(−Σ_{S∩U≠∅} μ_S), patterns
  by inclusion–exclusion). The window before identifies the μ_S; after it, the two lists' overlap among the
  journeys that got through separates s from π (a two-list capture–recapture inside a cohort of known size),
  and s with pr gives r = pr + s(1 − pr). (A background rate per list, blind to other crossings seen on both
  lists, read them as list dependence and put r at 0.94 [0.89, 0.99] on data made with r = 1.) r is one
  number for the border, so the unsurveyed sections take it from the surveyed ones. Without registers (or with
  one in-country list) r rests on its prior, and the fit's summary says so;
* unsurveyed sections (monthly totals only): the apprehensions K = Σ_j K_j have mean μq, q = p/(1 − p), and
  their exact compound law: A ~ NegBin(μp, φ) journeys are apprehended at least once and K − A | A is the
  sum of A geometric counts of further apprehensions, so
  P(K = k) = Σ_{a=1..k} NegBin(a; μp, φ) C(k−1, a−1) (pr)^{k−a}(1 − pr)^a (`kernels.totals_logp`; Σ K
  terms). Above K = 256 (``saddlepoint_above`` in [options]) the saddlepoint approximation of this law takes
  its place, one term a cell whatever K (`kernels.saddlepoint_logp`, closed form: the saddlepoint equation is a
  quadratic): its error in log P is below 5·10⁻⁵ there and falls like 1/K². Every border of the shipped
  volume (largest total ~200) is fitted with the exact law.
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
expectation): with G the gamma rate of the cell, G | A ~ Gamma(φ + A, φ/μ + p) and the never-apprehended
journeys J − A | G ~ Poisson(G(1 − p)); in unsurveyed cells A | K is drawn first, P(A = a | K) ∝
NegBin(a; μp, φ) · C(K−1, a−1) (pr)^{K−a}(1 − pr)^a; of the A apprehended journeys Binomial(A, s) got through,
a linked one with its probability given its sightings (`estim.families.border.generated`).

**Priors** are the entries of `DEFAULT_PRIORS`, one per parameter; a spec's [priors] replaces any of them. The
two hierarchies are entries too: ``section_effect`` (α_s, default ZeroSumNormal(sigma="section_sd")) and
``hazard_section`` (a_s, default Normal(mu="hazard_mean", sigma="hazard_section_sd")). A string parameter names
a hyperparameter (`HYPERPARAMETERS`, each with its own entry), which enters the model when an entry names it;
a number fixes that parameter instead. a_s's prior is a location–scale law (Normal or StudentT): its location is
shifted by t_{terrain(s)}, and its non-centred form is location + scale · z with z the standard law. E.g. in a
spec, heavier-tailed section hazards, or section effects of fixed scale (no σ_α):

    [priors]
    hazard_section = { distribution = "StudentT", nu = 4, mu = "hazard_mean", sigma = "hazard_section_sd" }
    section_effect = { distribution = "ZeroSumNormal", sigma = 0.3 }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.basic import Constant

from estim.errors import EstimInputError
from estim.families import kernels as shared_kernels
from estim.families.border.data import (
    CATEGORIES,
    DETECTORS,
    HARMONICS,
    JOURNEY_CATEGORIES,
    no_bypass_flow,
)
from estim.families.border.idle_options import has_linkage
from estim.families.border.kernels import SADDLEPOINT_ABOVE, negbin_logp, totals_logp
from estim.families.border.linkage import link_set_names, link_terms
from estim.families.border.rates import detection, log_rates
from estim.families.border.repeated_trials import REPEATED_TRIALS_PRIOR, check_prior
from estim.families.border.retry import (
    RETRY_ROOT,
    RIDGE_HAZARD_SLOPE,
    along_retry,
    register_coverage,
    retry_log,
)
from estim.priors import Prior, merge_priors

OBSERVED = "apprehensions"  # the unsurveyed sections' monthly totals

DEFAULT_PRIORS: dict[str, Prior] = {
    # journeys: log per 1,000 km per month at the first month (residents: at 100,000 border population);
    # the simulator's calibrated values lie in 1–4
    "category_level": Prior("Normal", mu=2.0, sigma=2.0),
    "section_effect": Prior("ZeroSumNormal", sigma="section_sd"),  # α_s, their scale σ_α
    "section_sd": Prior("HalfNormal", sigma=0.5),
    # terrain shifts the sections' journey level (``terrain_journeys``; sum to zero over terrains)
    "journey_terrain": Prior("ZeroSumNormal", sigma=0.5),
    "season": Prior("Normal", mu=0.0, sigma=0.5),
    "trend": Prior("Normal", mu=0.0, sigma=0.25),  # per year: ±0.5 = ×1.6 a year, at the extreme
    "log_policy_effect": Prior("Normal", mu=0.0, sigma=0.5),
    "population_elasticity": Prior("Normal", mu=1.0, sigma=0.5),
    # 1/√φ (Stan's prior choice recommendation): 0 is Poisson, 0.5 is φ = 4
    "overdispersion": Prior("HalfNormal", sigma=0.5),
    "bypass_eta0": Prior("Normal", mu=-8.0, sigma=2.0),  # logit bypass share at a 60-minute wait
    "bypass_eta1": Prior("Normal", mu=0.0, sigma=2.0),  # elasticity of the bypass odds in the wait
    # detection: log hazard; p = 1 − exp(−H): hazard_mean −0.5 with the detector sum ≈ p 0.45
    "hazard_section": Prior("Normal", mu="hazard_mean", sigma="hazard_section_sd"),  # a_s
    "hazard_mean": Prior("Normal", mu=-0.5, sigma=1.0),
    "hazard_section_sd": Prior("HalfNormal", sigma=0.3),
    # terrain shifts the sections' mean hazard (sum to zero over terrains): ±0.5 is a factor 1.6 in the hazard
    "hazard_terrain": Prior("ZeroSumNormal", sigma=0.5),
    "hazard_category": Prior("ZeroSumNormal", sigma=0.5),
    # technical, informant relative to patrol
    "hazard_detector": Prior("Normal", mu=0.0, sigma=1.5),
    "technical_trend": Prior("Normal", mu=0.0, sigma=0.2),
    # r: the probability of trying again after an apprehension. Uniform: the data (the linkage of apprehended
    # journeys to the in-country registers) are to say how many give up; without linkage this prior is all
    # there is, and the fit says so
    "retry_probability": Prior("Beta", alpha=1.0, beta=1.0),
    # π_{L,c}: the share of journeys that got into Russia which in-country list L records within the link
    # window. logit π ~ Normal(−3, 2.5): 90 % between 0.08 % and 75 %, centred at 5 %; nearly log-uniform
    # there (flat in logit π is ∝ 1/π for small π). The linkage pins s·π, and a uniform π would give r a
    # factor 1/s per coverage whatever the data; this prior leaves a few per cent over a halving of s
    # (`retry.register_coverage`)
    "register_coverage": Prior("LogitNormal", mu=-3.0, sigma=2.5),
    # μ_{S,c}: the person's other crossings in a window recorded on exactly the lists S (0.1: one journey in
    # ten has such a sighting)
    "other_sightings": Prior("HalfNormal", sigma=0.5),
    # σ, the spread of the person-level frailty of the apprehension hazard (``frailty_sd = "estimated"``):
    # 0.5 makes the hazard of a person one sd apart 1.6 times another's
    "frailty_sd": Prior("HalfNormal", sigma=0.5),
}

# The entries a prior's string parameter may name (scalars, each in the model once named).
HYPERPARAMETERS = ("section_sd", "hazard_mean", "hazard_section_sd")
# Laws for a_s: a location (shifted by the terrain) and a scale (for the non-centred form).
LOCATION_SCALE = ("Normal", "StudentT")


class _PriorTable:
    """The merged priors inside a model's context: each parameter created from its entry, a hyperparameter
    created the first time an entry names it."""

    def __init__(self, priors: Mapping[str, Prior]) -> None:
        self.priors = priors
        self.hyperparameters: dict[str, Any] = {}

    def hyperparameter(self, name: str, named_by: str) -> Any:
        if name not in HYPERPARAMETERS:
            raise EstimInputError(
                f"prior of {named_by}: {name!r} is not a hyperparameter; a string parameter names one of "
                f"{', '.join(HYPERPARAMETERS)}"
            )
        if name not in self.hyperparameters:
            self.hyperparameters[name] = self.create(name)
        return self.hyperparameters[name]

    def parameters(self, name: str) -> dict[str, Any]:
        """The parameters of `name`'s prior, each string replaced by the hyperparameter it names."""
        prior = self.priors[name]
        if name in HYPERPARAMETERS and any(isinstance(x, str) for x in prior.parameters.values()):
            raise EstimInputError(f"prior of {name}: a hyperparameter's prior takes numbers only")
        return {
            k: self.hyperparameter(x, name) if isinstance(x, str) else x
            for k, x in prior.parameters.items()
        }

    def create(self, name: str, as_name: str | None = None, **kwargs: Any) -> Any:
        """The variable of prior entry ``name``, called ``as_name`` (default ``name``) in the model."""
        law = Prior(self.priors[name].distribution, **self.parameters(name))
        return law.create(as_name or name, **kwargs)


def _counts(value: Any) -> np.ndarray:
    """The observed counts a likelihood term's ``value`` holds. They are constants (observed data, as PyMC
    passes them): what depends on the counts alone (log k!, the layout of the totals' sum) is computed from
    them once, in NumPy, when the graph is built."""
    if isinstance(value, Constant):
        return np.asarray(value.data)
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"the border likelihood needs observed counts (constants), got {value!r}")


def _section_effect(
    table: _PriorTable, priors: Mapping[str, Prior], centered: bool, name: str = "section_effect"
) -> Any:
    """α_s from its prior entry, centred (sampled as it is) or non-centred: sampled as z_s
    [section_effect_z] from the law at scale 1, α_s = σ_α z_s (exact for a law of location 0 with a scale
    ``sigma``, e.g. the default ZeroSumNormal). Non-centred suits data that inform the section effects weakly
    (few or small sections): there the centred form has a funnel at small σ_α."""
    if centered:
        return table.create("section_effect", as_name=name, dims="section")
    prior = priors["section_effect"]
    parameters = table.parameters("section_effect")
    if "sigma" not in parameters or parameters.get("mu", 0.0) != 0.0:
        raise EstimInputError(
            "[options] centered_section_effect = false: the prior of section_effect must have a scale "
            f'sigma and location 0 (e.g. ZeroSumNormal(sigma="section_sd")), got {prior}'
        )
    z = Prior(prior.distribution, **{**parameters, "sigma": 1.0}).create(
        f"{name}_z", dims="section"
    )
    return pm.Deterministic(name, parameters["sigma"] * z, dims="section")


def build_border(
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    *,
    centered_hazard: bool = True,
    centered_section_effect: bool = True,
    terrain_hazard: bool = True,
    terrain_journeys: bool = False,
    retry_probability: float | None = None,
    repeated_trials_prior: float = REPEATED_TRIALS_PRIOR,
    frailty_sd: float | str | None = None,
    saddlepoint_above: int | bool = SADDLEPOINT_ABOVE,
    after_background: float = 1.0,
) -> pm.Model:
    """The border model (module docstring) on `border_data`'s output; ``priors`` replace entries of
    `DEFAULT_PRIORS`. ``retry_probability`` a number in (0, 1] fixes r (1: Espenshade's repeated trials, the
    model before 2026-12); None estimates it with the prior entry ``retry_probability`` (`_log_retry`), and
    the fit is then averaged with r = 1 of prior probability ``repeated_trials_prior``
    (`estim.families.border.repeated_trials`; 0: no averaging). ``frailty_sd``: None or 0 for no person-level frailty, a
    number σ > 0 for a frailty of that spread, ``"estimated"`` for σ with the prior entry ``frailty_sd``
    (`estim.families.border.rates.detection`). ``centered_hazard`` and ``centered_section_effect``: sample a_s and α_s as they
    are (true, the default) or as standard scores (`_section_effect`). ``terrain_hazard`` and
    ``terrain_journeys``: shift the sections' mean hazard, and their journey level, by terrain. ``saddlepoint_above``: unsurveyed totals above it take the
    saddlepoint approximation of their compound law (`estim.families.border.kernels.saddlepoint_logp`; cost
    one term a cell, not k), ``false`` the exact law everywhere. ``after_background`` ρ > 0: the register
    linkage's window after a journey sees the person's other crossings at ρ times the rate of the window
    before (`linkage.link_terms`; 1 is the model's assumption; other values are for sensitivity)."""
    overrides = dict(priors or {})
    priors = merge_priors(DEFAULT_PRIORS, overrides)
    if isinstance(after_background, bool) or not (
        isinstance(after_background, (int, float)) and float(after_background) > 0
    ):
        raise EstimInputError(
            f"[options] after_background = {after_background!r}: a number > 0 (the factor of the other "
            "crossings' sightings after a journey over before it; 1 assumes them equal)"
        )
    # ---- data
    surveyed = data["surveyed"].values
    if not surveyed.any():
        raise EstimInputError(
            "the border model needs at least one section with individual apprehension records: "
            "without repeat apprehensions the apprehension probability is not identified"
        )
    surveyed_idx, unsurveyed_idx = np.flatnonzero(surveyed), np.flatnonzero(~surveyed)
    no_flow = no_bypass_flow(data)  # bypasser cells that cannot occur: weighted 0 in dense terms
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
    terrain_hazard = terrain_hazard and len(terrain_names) > 1
    terrain_journeys = bool(terrain_journeys) and len(terrain_names) > 1
    if terrain_hazard or terrain_journeys:
        coords["terrain"] = terrain_names.tolist()
    if priors["hazard_section"].distribution not in LOCATION_SCALE:
        raise EstimInputError(
            f"prior of hazard_section: a location-scale law ({', '.join(LOCATION_SCALE)}), got "
            f"{priors['hazard_section']}"
        )

    check_prior(repeated_trials_prior)
    if retry_probability is not None and not 0.0 < float(retry_probability) <= 1.0:
        raise EstimInputError(
            f"[options] retry_probability: a probability in (0, 1], got {retry_probability!r}"
        )
    if not (
        frailty_sd is None
        or frailty_sd == "estimated"
        or (isinstance(frailty_sd, (int, float)) and frailty_sd >= 0)
    ):
        raise EstimInputError(
            f'[options] frailty_sd: a spread ≥ 0 or "estimated", got {frailty_sd!r}'
        )
    if saddlepoint_above is not False and (
        isinstance(saddlepoint_above, bool)
        or not isinstance(saddlepoint_above, int)
        or saddlepoint_above < 1
    ):
        raise EstimInputError(
            f"[options] saddlepoint_above: a total ≥ 1 above which the saddlepoint approximation is "
            f"used, or false for the exact law everywhere; got {saddlepoint_above!r}"
        )
    above = None if saddlepoint_above is False else int(saddlepoint_above)
    lists = [str(x) for x in data["in_country_list"].values]
    linked = data["linked_journeys"].values  # (section, month, category, link_pattern)
    linkage = has_linkage(data)  # as the check of after_background reads it
    coords["in_country_list"] = lists
    coords["link_set"] = link_set_names(lists)
    coords["retry_root"] = list(RETRY_ROOT)

    with pm.Model(coords=coords) as model:
        # ---- parameters (creation order fixes the sampler's parameter vector)
        table = _PriorTable(priors)
        # r first: the levels it trades off against are sampled relative to it (`retry.along_retry`)
        if retry_probability is None:
            log_retry = retry_log(
                table, priors["retry_probability"], check_prior(repeated_trials_prior)
            )
        else:
            retry = pm.Deterministic("retry_probability", pt.constant(float(retry_probability)))
            log_retry = pt.log(retry)
        # journeys
        if terrain_journeys:  # α_s = u_{terrain(s)} + α'_s
            deviation = _section_effect(table, priors, centered_section_effect, "section_deviation")
            journey_terrain = table.create("journey_terrain", dims="terrain")
            section_effect = pm.Deterministic(
                "section_effect", deviation + journey_terrain[terrain_of], dims="section"
            )
        else:
            section_effect = _section_effect(table, priors, centered_section_effect)  # α_s
        # β_c, μ ∝ r along the ridge
        category_level = along_retry(
            table, priors, "category_level", log_retry, dims="journey_category"
        )
        season = table.create("season", dims=("journey_category", "harmonic"))  # S_c
        trend = table.create("trend", dims="journey_category")  # τ_c
        # log θ_{e,c}
        log_policy_effect = table.create("log_policy_effect", dims=("event", "journey_category"))
        population_elasticity = table.create("population_elasticity")  # γ
        overdispersion = table.create("overdispersion", dims="category")  # 1/√φ_c
        bypass_eta0 = along_retry(table, priors, "bypass_eta0", log_retry)  # η0
        bypass_eta1 = table.create("bypass_eta1")  # η1
        # detection: a_s ~ law(μ_a + t_{terrain(s)}, σ_a); its mu and sigma create μ_a and σ_a when named.
        # log p + log r is what the repeats pin: a_s moves by −log r/κ along the ridge, and so does the mean
        # μ_a it is pooled around (sampled as `hazard_mean_given_retry`), so that a_s − μ_a, which σ_a
        # scales, does not move with r (moving a_s alone tied r to μ_a and σ_a: divergences towards large σ_a)
        shift = -log_retry / RIDGE_HAZARD_SLOPE
        mean_name = priors["hazard_section"].parameters.get("mu")
        if isinstance(mean_name, str) and mean_name in HYPERPARAMETERS:
            mean_prior = priors[mean_name]
            if "mu" in mean_prior.parameters and not any(
                isinstance(x, str) for x in mean_prior.parameters.values()
            ):
                moved_mean = Prior(
                    mean_prior.distribution,
                    **{**mean_prior.parameters, "mu": mean_prior.parameters["mu"] - shift},
                )
                tilde_mean = moved_mean.create(f"{mean_name}_given_retry")
                table.hyperparameters[mean_name] = pm.Deterministic(mean_name, tilde_mean + shift)
        hierarchy = table.parameters("hazard_section")
        if terrain_hazard:
            terrain_effect = table.create("hazard_terrain", dims="terrain")  # t
            hierarchy["mu"] = hierarchy["mu"] + terrain_effect[terrain_of]
        law = priors["hazard_section"].distribution
        if centered_hazard:
            moved = Prior(law, **{**hierarchy, "mu": hierarchy["mu"] - shift})
            tilde = moved.create("hazard_section_given_retry", dims="section")
            hazard_section = pm.Deterministic("hazard_section", tilde + shift, dims="section")
        else:
            standard = Prior(law, **{**hierarchy, "mu": 0.0, "sigma": 1.0})
            z = standard.create("hazard_section_z", dims="section")
            hazard_section = pm.Deterministic(
                "hazard_section", hierarchy["mu"] + hierarchy["sigma"] * z, dims="section"
            )
        hazard_category = table.create("hazard_category", dims="category")  # b_c
        hazard_detector = table.create("hazard_detector", dims="other_detector")  # e_d, d ≠ patrol
        hazard_detector_full = pt.concatenate([pt.zeros(1), hazard_detector])  # e_patrol = 0
        technical_trend = table.create("technical_trend")  # δ

        # ---- transformed parameters: log μ, log p, log(1 − p) (section, month, category), φ (category)
        log_mu, log_p, log_1mp, phi = log_rates(
            data,
            {
                "section_effect": section_effect,
                "category_level": category_level,
                "season": season,
                "trend": trend,
                "log_policy_effect": log_policy_effect,
                "population_elasticity": population_elasticity,
                "overdispersion": overdispersion,
                "bypass_eta0": bypass_eta0,
                "bypass_eta1": bypass_eta1,
                "hazard_section": hazard_section,
                "hazard_category": hazard_category,
                "hazard_detector_full": hazard_detector_full,
                "technical_trend": technical_trend,
            },
            pt,
        )
        if frailty_sd == "estimated":
            sigma = table.create("frailty_sd")
        elif frailty_sd:
            sigma = pm.Deterministic("frailty_sd", pt.constant(float(frailty_sd)))
        else:
            sigma = None
        # p̄, pr (the continuation of an apprehended journey's further attempts), s (got through in the end)
        # at r = 1 exactly (v = 0, a point of measure zero, but the initial point) log(1 − r) = −∞, and its
        # derivative times a zero weight is NaN: r is kept 1e-12 below 1 in the detection terms
        det = detection(
            log_p,
            log_1mp,
            log_retry if retry_probability is not None else pt.minimum(log_retry, -1e-12),
            sigma,
            pt,
        )
        log_pr, log_1mpr = det.log_pr, det.log_1mpr

        # ---- likelihood
        # surveyed sections: apprehended journeys A ~ NegBin(μp, φ) (dense; no-flow bypasser cells weigh 0)
        keep_surveyed = (~no_flow[surveyed_idx]).astype(float)
        pm.CustomDist(
            "apprehended_journeys",
            log_mu[surveyed_idx] + det.log_p[surveyed_idx],
            phi[None, None, :],
            logp=lambda value, log_mp, phi: (
                keep_surveyed * negbin_logp(_counts(value), log_mp, phi, pt)
            ),
            observed=data["apprehended_journeys"].values[surveyed_idx],
        )
        # ... and f_k people apprehended k times: f_k log P(k | k ≥ 1), zero-truncated geometric
        frequency = data["frequency"].values[surveyed_idx]  # (section, month, category, k)
        nonzero = np.nonzero(frequency)
        k = data["k"].values[nonzero[3]]
        if det.nodes is None:
            log_q = log_pr - log_1mpr  # the repeats' odds pr/(1 − pr)
            pm.CustomDist(
                "repeat_apprehensions",
                log_q[surveyed_idx][nonzero[:3]],
                logp=lambda value, log_q: (
                    value * shared_kernels.log_truncated_pmf("geometric", k, log_q, pt)
                ),
                observed=frequency[nonzero],
            )
        else:
            # with frailty: P(k | k ≥ 1) = Σ_q w_q p_q (p_q r)^{k−1} (1 − p_q r) / p̄, the exact mixture
            log_w = det.nodes[0]
            log_p_q, log_pr_q, log_1mpr_q = (x[surveyed_idx][nonzero[:3]] for x in det.nodes[1:])
            log_mix = (
                pm.math.logsumexp(
                    log_w + log_p_q + (k[:, None] - 1.0) * log_pr_q + log_1mpr_q,
                    axis=1,
                    keepdims=False,
                )
                - det.log_p[surveyed_idx][nonzero[:3]]
            )
            pm.CustomDist(
                "repeat_apprehensions",
                log_mix,
                logp=lambda value, log_mix: value * log_mix,
                observed=frequency[nonzero],
            )
        # unsurveyed sections: monthly totals K under their exact compound law (A journeys, K − A repeats),
        # dense over (section, month, category) with the no-flow bypasser cells weighted 0: cheaper to
        # differentiate than gathering the other cells
        if len(unsurveyed_idx):
            keep = (~no_flow[unsurveyed_idx]).astype(float)
            pm.CustomDist(
                OBSERVED,
                log_mu[unsurveyed_idx] + det.log_p[unsurveyed_idx],
                log_pr[unsurveyed_idx],
                log_1mpr[unsurveyed_idx],
                phi,
                logp=lambda value, log_mp, log_pr, log_1mpr, phi: totals_logp(
                    _counts(value), keep, log_mp, log_pr, log_1mpr, phi, above
                ),
                observed=data["apprehensions"].values[unsurveyed_idx],
            )
        # linkage of the surveyed sections' apprehended journeys towards Russia to the in-country lists:
        # a journey got through with probability s = r(1 − p)/(1 − pr) (1 − s = (1 − r)/(1 − pr)); list L
        # then sees it with π_L, and any journey's person is on L for another reason with ε_L (which the
        # window before the journey measures)
        if linkage:
            coverage = register_coverage(priors["register_coverage"], log_retry)
            other_sightings = table.create("other_sightings", dims=("link_set", "category"))
            cells = np.nonzero(linked[surveyed_idx].sum(axis=-1))
            log_got = det.log_s[surveyed_idx][cells]
            log_not = None if retry_probability == 1.0 else det.log_1ms[surveyed_idx][cells]
            link_terms(
                linked[surveyed_idx][cells],
                data["before_journeys"].values[surveyed_idx][cells],
                cells[2],
                log_got,
                log_not,
                coverage,
                other_sightings,
                float(after_background),
            )
            if float(after_background) != 1.0:  # recorded for the draws of `generated`
                pm.Deterministic("after_background", pt.constant(float(after_background)))
        # detector split of each month's apprehensions: multinomial (the coefficient is a constant) with
        # shares ∝ exp(e_d + δ y [d = technical])
        technical = np.array([d == "technical" for d in DETECTORS], float)
        detector = hazard_detector_full[None, :] + technical_trend * (
            data["years"].values[:, None] * technical[None, :]
        )
        # (month, detector)
        log_share = detector - pm.math.logsumexp(detector, axis=1, keepdims=True)
        pm.CustomDist(
            "apprehensions_by_detector",
            log_share,
            logp=lambda value, log_share: value * log_share,
            observed=data["apprehensions_by_detector"].sum(["section", "category"]).values,
            dims=("month", "detector"),
        )
    unnamed = sorted(
        h for h in HYPERPARAMETERS if h in overrides and h not in table.hyperparameters
    )
    if unnamed:
        raise EstimInputError(
            f'priors given for {", ".join(unnamed)}, which no prior names (e.g. sigma = "section_sd")'
        )
    return model
