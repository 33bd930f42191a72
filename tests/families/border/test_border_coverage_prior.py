"""The registers' coverage π is sampled relative to r (z = logit π + c log r, `estim.families.border.retry`):
its prior must stay the one stated on π at every r, a LogUniform must leave r no pull, and the model's
LogitNormal nearly none, with curvature in z everywhere (the sampler's metric needs it)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
import scipy.integrate
import scipy.stats

from estim.errors import EstimInputError
from estim.families.border.retry import RIDGE_COVERAGE_SLOPE, register_coverage
from estim.priors import Prior

LAWS = {
    "uniform": (Prior("Beta", alpha=1.0, beta=1.0), scipy.stats.beta(1.0, 1.0)),
    "beta": (Prior("Beta", alpha=2.0, beta=5.0), scipy.stats.beta(2.0, 5.0)),
    "log-uniform": (Prior("LogUniform", lower=1e-3, upper=1.0), scipy.stats.loguniform(1e-3, 1.0)),
    # logit π ~ Normal(−3, 2.5): the density of expit of a normal
    "logit-normal": (Prior("LogitNormal", mu=-3.0, sigma=2.5), None),
    # π + 0.001 log-uniform on (0.001, 1.001): scipy's law shifted
    "offset-log-uniform": (
        Prior("OffsetLogUniform", offset=1e-3, upper=1.0),
        scipy.stats.loguniform(1e-3, 1.0 + 1e-3, loc=-1e-3),
    ),
}


def _density_of_coverage(prior, r):
    """π ↦ the model's prior density of π given r (from its logp in z, with dz/dπ = 1/(π(1 − π)))."""
    dims = ("in_country_list", "category")
    with pm.Model(coords={"in_country_list": ["a"], "category": ["c"]}) as model:
        register_coverage(prior, np.log(r))
    logp = model.compile_logp()

    def density(pi):
        z = np.log(pi) - np.log1p(-pi) + RIDGE_COVERAGE_SLOPE * np.log(r)
        return np.exp(logp({"register_coverage_z": np.full((1, 1), z)})) / (pi * (1 - pi))

    assert dims == tuple(model.named_vars_to_dims["register_coverage"])
    return density


def _reference_pdf(law, pi):
    prior, reference = LAWS[law]
    if reference is not None:
        return reference.pdf(pi)
    mu, sigma = prior.parameters["mu"], prior.parameters["sigma"]
    return scipy.stats.norm(mu, sigma).pdf(np.log(pi / (1 - pi))) / (pi * (1 - pi))


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("r", [1.0, 0.6, 0.2])
def test_the_coverage_keeps_its_stated_prior_at_every_r(law, r):
    density = _density_of_coverage(LAWS[law][0], r)
    for pi in (2e-5, 2e-3, 0.03, 0.4, 0.97):
        if law == "log-uniform" and pi < 1e-3:
            continue  # outside its support: the next test
        assert density(pi) == pytest.approx(_reference_pdf(law, pi), rel=1e-6)


def test_a_log_uniform_is_zero_outside_its_bounds_and_the_offset_one_has_no_edge():
    density = _density_of_coverage(Prior("LogUniform", lower=0.01, upper=0.5), 0.7)
    assert density(0.005) == 0.0 and density(0.6) == 0.0 and density(0.2) > 0
    # the model's: flat in π below the offset, so smooth (exponential) in z = logit π there
    density = _density_of_coverage(Prior("OffsetLogUniform", offset=1e-3, upper=1.0), 0.7)
    assert density(1e-6) == pytest.approx(density(1e-5), rel=0.02)


def test_what_each_prior_says_about_r_when_the_data_pin_the_seen_share():
    # the linkage pins q = s π; the coverage's prior then gives s the factor ∫ L(s π) f(π) dπ. With a sharp
    # L around q = 0.2 that is f(q/s)/s: ∝ 1/s for the uniform (towards small s), flat for the log-uniform,
    # and 1/(q + 0.001 s) for the model's offset log-uniform: flat within 0.25 %
    q, width = 0.2, 0.002

    def factor(law, s):
        density = _density_of_coverage(LAWS[law][0], 1.0)  # the model's own prior on π
        like = lambda pi: np.exp(-0.5 * ((s * pi - q) / width) ** 2)  # noqa: E731
        lo, hi = q / s - 8 * width / s, q / s + 8 * width / s
        return scipy.integrate.quad(lambda pi: like(pi) * density(pi), lo, hi)[0]

    uniform = factor("uniform", 0.4) / factor("uniform", 0.8)
    log_uniform = factor("log-uniform", 0.4) / factor("log-uniform", 0.8)
    offset = factor("offset-log-uniform", 0.4) / factor("offset-log-uniform", 0.8)
    logit_normal = factor("logit-normal", 0.4) / factor("logit-normal", 0.8)
    assert uniform == pytest.approx(2.0, rel=1e-3)
    assert log_uniform == pytest.approx(1.0, rel=1e-3)
    assert offset == pytest.approx((0.2 + 0.001 * 0.8) / (0.2 + 0.001 * 0.4), rel=1e-3)
    assert offset == pytest.approx(1.0, abs=0.0025)
    # the model's (revision 6): f(q/s)/s with f the logit-normal's density, π = 0.25 → 0.5, i.e.
    # 2 · (0.25 · 0.75)/(0.5 · 0.5) · exp(−(3² − (3 − log 3)²)/(2 · 2.5²)) = 0.975: a pull of 2.5 %
    # per halving of s, against the uniform's 100 %; smaller where π is small (flat in logit is 1/π there)
    expected = 2 * (0.25 * 0.75) / 0.25 * np.exp(-(9 - (3 - np.log(3)) ** 2) / (2 * 2.5**2))
    assert logit_normal == pytest.approx(expected, rel=1e-3)
    assert logit_normal == pytest.approx(1.0, abs=0.03)


def test_the_model_prior_is_the_logit_normal_with_curvature_in_its_tails():
    # revision 5's offset log-uniform is exactly linear in z below logit 0.001: a constant gradient there,
    # which gave nutpie's gradient-based metric a scale of 1e6 for a coverage a chain strayed to (fits
    # stalled); the model's logit-normal has curvature −1/σ² everywhere
    from estim.families.border.model import DEFAULT_PRIORS

    assert DEFAULT_PRIORS["register_coverage"] == Prior("LogitNormal", mu=-3.0, sigma=2.5)

    def curvature(prior, z, h=0.5):
        with pm.Model(coords={"in_country_list": ["a"], "category": ["c"]}) as model:
            register_coverage(prior, np.log(0.6))
        logp = model.compile_logp()
        at = [logp({"register_coverage_z": np.full((1, 1), z + d)}) for d in (-h, 0.0, h)]
        return (at[0] - 2 * at[1] + at[2]) / h**2

    for z in (-40.0, -12.0, -3.0, 4.0):
        assert curvature(DEFAULT_PRIORS["register_coverage"], z) == pytest.approx(
            -1 / 2.5**2, rel=1e-6
        )
    offset = Prior("OffsetLogUniform", offset=1e-3, upper=1.0)
    assert abs(curvature(offset, -40.0)) < 1e-9  # linear: the failure revision 6 removes


def test_other_coverage_laws_are_refused():
    with pm.Model(coords={"in_country_list": ["a"], "category": ["c"]}):
        with pytest.raises(
            EstimInputError, match="Beta, LogitNormal, LogUniform or OffsetLogUniform"
        ):
            register_coverage(Prior("HalfNormal", sigma=0.5), 0.0)
