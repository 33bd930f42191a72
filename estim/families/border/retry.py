"""The retry probability r of the border model and the parameters sampled relative to it.

r is sampled so that r = 1 (Espenshade's repeated trials) is an interior point (`retry_log`), and the levels
the data trade off against r (the ridge) are sampled relative to it, each keeping its stated prior: the
journeys' and the bypass level (`along_retry`), the registers' coverage (`register_coverage`); the section
hazards and their mean are moved in `estim.families.border.model.build_border` by −log r/`RIDGE_HAZARD_SLOPE`.
A table is the model's prior table (``create(name, **kwargs)``, ``parameters(name)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from estim.errors import EstimInputError
from estim.families.border.repeated_trials import SLAB_DENSITY
from estim.priors import Prior

# The data pin pr (repeats), μp (apprehended journeys) and the bypassers' μ p (flow law) far better than r,
# so a change of r moves p ∝ 1/r, μ ∝ r and the bypass level η0 by log r with it: a ridge that, sampled in
# the natural parameters, had r's bulk ESS at 53–235 and up to 132 divergences on the shipped data. Sampled
# relative to r (the same model and priors: a shift of location with unit Jacobian), the ridge is nearly
# straight. κ = d log p / d log H = H e^{−H}/(1 − e^{−H}) at p ≈ 0.45, the surveyed sections' level.
RIDGE_HAZARD_SLOPE = 0.73
RIDGE_COVERAGE_SLOPE = 1.8


def along_retry(
    table: Any, priors: Mapping[str, Prior], name: str, log_retry: Any, **kwargs: Any
) -> Any:
    """Parameter `name` (a level that moves by +log r along the ridge with r), sampled as
    ``name_given_retry`` = name − log r with its prior's location shifted by the same amount, so that `name`
    keeps exactly its stated prior. A prior without a location (``mu``) is sampled as it is."""
    prior = priors[name]
    if "mu" not in prior.parameters:
        return table.create(name, **kwargs)
    parameters = table.parameters(name)
    moved = Prior(prior.distribution, **{**parameters, "mu": parameters["mu"] - log_retry})
    tilde = moved.create(f"{name}_given_retry", **kwargs)
    return pm.Deterministic(name, tilde + log_retry, **kwargs)


# The auxiliaries the sampler moves for r (a point of the plane; its angle is not identified, so the gate
# does not read them: it reads r).
RETRY_AUXILIARY = "give_up_hazard_root"
RETRY_ROOT = ("first", "second")


def retry_log(table: Any, prior: Prior, repeated_trials: float) -> Any:
    """log r for r [retry_probability] with its stated Beta(a, b) prior. When the data say r ≈ 1 (repeated
    trials), r's posterior presses against the bound: sampled in logit r its upper tail is long and flat, and
    the ridge shifts, linear in log r, bend there (rare divergences in that tail on the shipped data at any
    target_accept). For b = 1 (the default uniform, a = b = 1) the cumulative hazard of giving up after an
    apprehension, h = −log r, is sampled as half the squared length of a point v of the plane
    [give_up_hazard_root]: r ~ Beta(a, 1) is h ~ Exponential(a), which is |v|²/2 for v ~ Normal(0, I/a)
    exactly (a χ² with two degrees of freedom). r = 1 is then the centre of a Gaussian, smooth (a signed
    h = |v| in one dimension puts a kink there), and a likelihood linear in h near r = 1 is Gaussian in v.
    For b ≠ 1 the prior density at r = 1 is 0 or infinite: r is sampled as it is (logit r)."""
    if prior.distribution != "Beta":
        raise EstimInputError(f"prior of retry_probability: a Beta law, got {prior}")
    parameters = table.parameters("retry_probability")
    a, b = parameters["alpha"], parameters["beta"]
    if not (isinstance(b, (int, float)) and float(b) == 1.0):
        if repeated_trials > 0:
            raise EstimInputError(
                f"[options] repeated_trials_prior = {repeated_trials}: averaging with r = 1 needs a prior "
                f"on retry_probability with a finite density at 1, a Beta(a, 1); got {prior}. Set "
                "repeated_trials_prior = 0"
            )
        return pt.log(table.create("retry_probability"))
    # the slab's prior density of h = −log r at 0, which the Savage–Dickey ratio divides by
    # (`estim.families.border.repeated_trials`)
    pm.Deterministic(SLAB_DENSITY, pt.constant(float(a)))
    root = pm.Normal(RETRY_AUXILIARY, mu=0.0, sigma=1.0 / np.sqrt(a), dims="retry_root")
    log_retry = -0.5 * pt.sum(root**2)
    pm.Deterministic("retry_probability", pt.exp(log_retry))
    return log_retry


def register_coverage(prior: Prior, log_retry: Any) -> Any:
    """π_{L,c} [register_coverage], sampled as z = logit π + c log r: the linkage pins the share of linked
    journeys a list sees through this crossing, ≈ s π, and with pr pinned s = r(1 − p)/(1 − pr) moves as
    r^c, c = 1 + p/(1 − p) ≈ `RIDGE_COVERAGE_SLOPE` (p ≈ 0.45), so π and r trade off along a curve (π ∝
    r^−c) that defeats the sampler (divergences at small r, where π is largest); in (z, r) the curve is nearly
    straight. The prior stays the one stated on π, a shift of z by c log r having unit Jacobian: for
    Beta(1, 1) (uniform) z | r is Logistic(c log r, 1) exactly, for a LogitNormal(μ, σ) Normal(c log r + μ, σ);
    for another Beta or a (Offset)LogUniform, z is flat and π's density with the Jacobian dπ/dz = π(1 − π) is
    added (−∞ outside a LogUniform's bounds).

    Which prior matters for r: the data pin s π, so a density f on π gives r the factor ∫ L(s π) f(π) dπ
    = (1/s) ∫ L(u) f(u/s) du. A uniform f leaves 1/s per coverage, a pull towards small s (small r) whatever
    the data; a log-uniform, f(π) ∝ 1/π, leaves none while π = u/s stays inside its bounds; so does a prior
    flat in logit π where π is small, and the model's LogitNormal(−3, 2.5) leaves a factor within a few per
    cent of none over a halving of s (its curvature 1/σ²). It has that curvature everywhere: the
    OffsetLogUniform (π + ε log-uniform, revision 5) was exactly linear in z below logit ε, so a chain the
    early warm-up sent there saw a constant gradient, and nutpie's metric, which scales each coordinate by
    its draws' spread over its gradients' spread, gave that coordinate a scale of 10⁶: the chain stalled
    (step size 10⁻¹²) for hours."""
    dims = ("in_country_list", "category")
    if prior.distribution not in ("Beta", "LogitNormal", "LogUniform", "OffsetLogUniform"):
        raise EstimInputError(
            "prior of register_coverage: a Beta, LogitNormal, LogUniform or OffsetLogUniform law, got "
            f"{prior}"
        )
    shift = RIDGE_COVERAGE_SLOPE * log_retry
    parameters = {k: float(v) for k, v in prior.parameters.items()}
    if prior.distribution == "Beta" and parameters["alpha"] == 1.0 and parameters["beta"] == 1.0:
        z = pm.Logistic("register_coverage_z", mu=shift, s=1.0, dims=dims)
        return pm.Deterministic("register_coverage", pm.math.sigmoid(z - shift), dims=dims)
    if prior.distribution == "LogitNormal":
        mu, sigma = parameters["mu"], parameters["sigma"]
        z = pm.Normal("register_coverage_z", mu=shift + mu, sigma=sigma, dims=dims)
        return pm.Deterministic("register_coverage", pm.math.sigmoid(z - shift), dims=dims)
    z = pm.Flat("register_coverage_z", dims=dims)
    coverage = pm.Deterministic("register_coverage", pm.math.sigmoid(z - shift), dims=dims)
    if prior.distribution == "Beta":
        law = pm.logp(pm.Beta.dist(alpha=parameters["alpha"], beta=parameters["beta"]), coverage)
    else:
        offset, lower, upper = prior.log_uniform_bounds()
        shifted = coverage + offset
        inside = (shifted >= lower) & (shifted <= upper)
        law = pt.switch(inside, -pt.log(shifted) - np.log(np.log(upper / lower)), -np.inf)
    pm.Potential("register_coverage_prior", (law + pt.log(coverage) + pt.log1p(-coverage)).sum())
    return coverage
