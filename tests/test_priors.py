"""The declarative priors' own laws: the LogUniform (log x uniform between the logs of its bounds)."""

from __future__ import annotations

import re

import numpy as np
import pymc as pm
import pytest
import scipy.stats

from estim.errors import EstimInputError
from estim.priors import Prior, check_override
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


@pytest.mark.parametrize(
    ("law", "parameters", "says"),
    [
        ("Normal", {"mu": 0, "sigma": -1}, "sigma must be > 0, got -1"),
        ("Normal", {"mu": 0, "sigma": 0}, "sigma must be > 0"),
        ("HalfNormal", {"sigma": float("nan")}, "sigma must be finite"),
        ("Normal", {"mu": float("inf"), "sigma": 1}, "mu must be finite"),
        ("Normal", {"mu": 0, "sigma": True}, "sigma = true is not a number"),
        ("Gamma", {"alpha": -1, "beta": 1}, "alpha must be > 0"),
        ("StudentT", {"nu": 0, "mu": 0, "sigma": 1}, "nu must be > 0"),
        ("Exponential", {"lam": -2}, "lam must be > 0"),
        ("Uniform", {"lower": 1, "upper": 0}, "lower < upper"),
    ],
)
def test_a_law_with_an_impossible_parameter_is_refused(law, parameters, says):
    # before: accepted, and the fit died inside the sampler ("All initialization points failed", exit 1)
    with pytest.raises(EstimInputError, match=re.escape(says)):
        Prior(law, **parameters)


CLOSED = {
    "logit_p": Prior("Normal", mu=0, sigma=2.5),
    "sigma_stratum": Prior("HalfNormal", sigma=1),
    "weight": Prior("Beta", alpha=2, beta=2),
}


@pytest.mark.parametrize(
    ("name", "prior", "says"),
    [
        # narrower than the parameter: the estimate would sit at the prior's edge
        ("logit_p", Prior("HalfNormal", sigma=1), "could not move it outside the prior's range"),
        ("logit_p", Prior("Beta", alpha=1, beta=1), "could not move it outside the prior's range"),
        ("sigma_stratum", Prior("Beta", alpha=1, beta=1), "could not move it outside"),
        # wider: values the model cannot take
        ("sigma_stratum", Prior("Normal", mu=0, sigma=1), "values the model cannot take"),
        ("weight", Prior("Normal", mu=0.5, sigma=0.1), "values the model cannot take"),
        ("weight", Prior("Uniform", lower=0, upper=2), "values the model cannot take"),
        ("sigma_stratum", Prior("Uniform", lower=-1, upper=1), "values the model cannot take"),
        # another kind of parameter
        ("logit_p", Prior("ZeroSumNormal", sigma=1), "another kind of parameter"),
        ("logit_p", Prior("Dirichlet", a=[1, 1]), "another kind of parameter"),
        # a name or a list where a number is meant (no hierarchy to name in this family)
        ("logit_p", Prior("Normal", mu=0, sigma="1"), "sigma = '1': expected a number (written without"),
        ("logit_p", Prior("Normal", mu=[0, 1], sigma=1), "mu = [0, 1]: expected a number"),
    ],
)  # fmt: skip
def test_an_override_must_keep_its_parameters_support(name, prior, says):
    with pytest.raises(EstimInputError, match=re.escape(says)):
        check_override(name, prior, CLOSED)


@pytest.mark.parametrize(
    ("name", "prior"),
    [
        ("logit_p", Prior("StudentT", nu=3, mu=0, sigma=1)),
        ("logit_p", Prior("Uniform", lower=-5, upper=5)),
        ("sigma_stratum", Prior("Exponential", lam=1)),
        ("sigma_stratum", Prior("LogUniform", lower=0.01, upper=10)),
        ("sigma_stratum", Prior("Uniform", lower=0, upper=10)),
        ("weight", Prior("LogitNormal", mu=0, sigma=1)),
        ("weight", Prior("Uniform", lower=0.2, upper=0.8)),
        ("weight", Prior("LogUniform", lower=0.001, upper=1)),
    ],
)
def test_an_override_of_the_same_support_passes(name, prior):
    check_override(name, prior, CLOSED)


def test_a_hierarchy_may_name_another_parameter_where_the_family_does():
    defaults = {
        "level": Prior("Normal", mu=0, sigma=1),
        "spread": Prior("HalfNormal", sigma=1),
        "effect": Prior("Normal", mu="level", sigma="spread"),
    }
    check_override("effect", Prior("StudentT", nu=4, mu="level", sigma=0.1), defaults)
    with pytest.raises(EstimInputError, match="or the name of another of the model's parameters"):
        check_override("effect", Prior("Normal", mu="levle", sigma=1), defaults)
