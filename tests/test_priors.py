"""The declarative priors' own laws: the LogUniform (log x uniform between the logs of its bounds)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
import scipy.stats

from estim.errors import EstimInputError
from estim.priors import Prior
from estim.studies.sbc_designs import draw_prior


@pytest.mark.parametrize("lower, upper", [(0.0, 1.0), (0.5, 0.1), (-1.0, 1.0), (0.2, 0.2)])
def test_a_log_uniform_needs_positive_ordered_bounds(lower, upper):
    with pytest.raises(EstimInputError, match="0 < lower < upper"):
        Prior("LogUniform", lower=lower, upper=upper)


@pytest.mark.parametrize(
    "law, bounds", [("LogUniform", ("lower", "upper")), ("OffsetLogUniform", ("offset", "upper"))]
)
def test_a_log_uniform_with_a_name_for_a_bound_is_a_clear_error(law, bounds):
    # a spec's "0.001" or a hyperparameter's name: an EstimInputError naming the law, not a float() traceback
    with pytest.raises(EstimInputError, match=f"prior {law} takes numbers"):
        Prior(law, **{bounds[0]: "0.001", bounds[1]: 1.0})


def test_a_log_uniform_has_the_density_of_a_log_uniform_and_round_trips():
    prior = Prior("LogUniform", lower=1e-3, upper=1.0)
    assert Prior.from_dict(prior.to_dict()) == prior
    with pm.Model() as model:
        prior.create("coverage")
    # the sampled variable is log x; its density in x is the reference's after the Jacobian 1/x
    logp = model.compile_logp(jacobian=False)
    for x in (2e-3, 0.05, 0.9):
        density_log_x = np.exp(logp({"coverage_log_interval__": _interval(np.log(x), prior)}))
        assert density_log_x / x == pytest.approx(scipy.stats.loguniform(1e-3, 1.0).pdf(x))


def _interval(value, prior):
    lo, hi = np.log(prior.parameters["lower"]), np.log(prior.parameters["upper"])
    u = (value - lo) / (hi - lo)
    return np.log(u / (1 - u))


def test_log_uniform_draws_follow_the_law():
    draws = draw_prior(
        Prior("LogUniform", lower=1e-3, upper=1.0), (20_000,), np.random.default_rng(3)
    )
    assert draws.min() >= 1e-3 and draws.max() <= 1.0
    assert scipy.stats.kstest(draws, scipy.stats.loguniform(1e-3, 1.0).cdf).pvalue > 0.01


def test_an_offset_log_uniform_is_a_shifted_log_uniform():
    prior = Prior("OffsetLogUniform", offset=1e-3, upper=1.0)
    assert prior.log_uniform_bounds() == (1e-3, 1e-3, 1.0 + 1e-3)
    with pytest.raises(EstimInputError, match="offset > 0"):
        Prior("OffsetLogUniform", offset=0.0, upper=1.0)
    draws = draw_prior(prior, (20_000,), np.random.default_rng(4))
    reference = scipy.stats.loguniform(1e-3, 1.0 + 1e-3, loc=-1e-3)
    assert draws.min() > 0 and draws.max() < 1.0
    assert scipy.stats.kstest(draws, reference.cdf).pvalue > 0.01
    with pm.Model() as model:
        value = prior.create("coverage")
    assert model["coverage"] is value and "coverage_log" in model.named_vars
