"""Profile-likelihood intervals for N of the intercept-only single-register families: the profile log-likelihood
against a direct maximisation written with scipy.stats, the hare against Rcapture's profile interval for M0,
the Dutch data's intervals (asymmetric to the right), the unbounded end of a boundary fit, and the timing."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats as st

from estim.benchmarks import load_benchmark
from estim.families import FAMILIES
from estim.families.registry import load_all
from estim.families.single_register import binomial_data, frequency_data, full_likelihood
from estim.families.single_register.profile import CHI2_95, METHOD

load_all()
PROFILED = ["ztpoisson", "ztgeometric", "ztnegbin", "oiztpoisson", "oiztgeometric"]
TINY = np.array([9, 5, 3, 1])  # f_1..f_4: a register of 18 people


@pytest.fixture(scope="module")
def dutch():
    return frequency_data(load_benchmark("netherlands_immigrants"), times_seen="capture")


def _direct_profile(family: str, f: np.ndarray, n_total: int, trials: int = 4) -> float:
    """max over θ of log N!/((N − n)! Π f_k!) + (N − n) log P(0) + Σ f_k log P(k), with P from scipy.stats."""
    k = np.arange(1, len(f) + 1)
    n = f.sum()
    coefficient = (
        scipy.special.gammaln(n_total + 1)
        - scipy.special.gammaln(n_total - n + 1)
        - scipy.special.gammaln(f + 1).sum()
    )

    def dist(theta):
        if family == "ztpoisson":
            return st.poisson(np.exp(theta[0]))
        if family == "ztgeometric":
            lam = np.exp(theta[0])
            return st.nbinom(1, 1 / (1 + lam))
        return st.binom(trials, scipy.special.expit(theta[0]))

    def negative(theta):
        d = dist(theta)
        return -(coefficient + (n_total - n) * d.logpmf(0) + np.sum(f * d.logpmf(k)))

    if family == "oiztpoisson":

        def negative(theta):  # noqa: F811 — the one-inflated Poisson: inflate, then (N − n) zeros
            lam, omega = np.exp(theta[0]), scipy.special.expit(theta[1])
            pmf = (1 - omega) * st.poisson.pmf(np.r_[0, k], lam) + omega * (np.r_[0, k] == 1)
            return -(coefficient + (n_total - n) * np.log(pmf[0]) + np.sum(f * np.log(pmf[1:])))

        # several starts: a two-parameter surface can hold Nelder–Mead away from the maximum
        return -min(
            scipy.optimize.minimize(
                negative, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
            ).fun
            for start in ([0.0, -1.0], [-1.0, -3.0], [1.0, 0.0], [0.5, -5.0])
        )
    res = scipy.optimize.minimize_scalar(lambda b: negative([b]), bounds=(-8, 8), method="bounded",
                                         options={"xatol": 1e-10})  # fmt: skip
    return -float(res.fun)


@pytest.mark.parametrize("family", ["ztpoisson", "ztgeometric", "ztbinomial", "oiztpoisson"])
def test_profile_loglik_equals_a_direct_maximisation(family):
    trials = 4 if family == "ztbinomial" else None
    full = full_likelihood(family, TINY, trials)
    start = [0.0, -1.0] if family == "oiztpoisson" else [0.0]
    grid = [18, 19, 20, 22, 25, 30, 40, 60, 100]
    got = [full.profile(n, start=start if i == 0 else None) for i, n in enumerate(grid)]
    expected = [_direct_profile(family, TINY, n) for n in grid]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_full_loglik_at_a_point_equals_scipy():
    full = full_likelihood("ztpoisson", TINY)
    lam, n_total = 0.9, 31
    k = np.arange(1, 5)
    expected = (
        scipy.special.gammaln(n_total + 1)
        - scipy.special.gammaln(n_total - TINY.sum() + 1)
        - scipy.special.gammaln(TINY + 1).sum()
        + (n_total - TINY.sum()) * st.poisson.logpmf(0, lam)
        + np.sum(TINY * st.poisson.logpmf(k, lam))
    )
    assert full.loglik(n_total, [np.log(lam)]) == pytest.approx(expected, rel=1e-12)


def test_interval_ends_on_an_integer_grid():
    """The profile MLE and the interval read off ℓ_p on every integer N (direct maximisation per N)."""
    r = FAMILIES["ztpoisson"].mle(frequency_data(pd.DataFrame({"k": np.repeat([1, 2, 3, 4], TINY)}),
                                                 times_seen="k"))  # fmt: skip
    grid = np.arange(18, 80)
    values = np.array([_direct_profile("ztpoisson", TINY, n) for n in grid])
    best = grid[np.argmax(values)]
    assert abs(r.profile["n_hat"] - best) <= 1
    inside = grid[2 * (values.max() - values) <= CHI2_95]
    lo, hi = r.profile["ci95"]
    assert inside.min() - 1 <= lo <= inside.min()
    assert inside.max() <= hi <= inside.max() + 1


def test_ztpoisson_profile_near_the_conditional_estimate(dutch):
    r = FAMILIES["ztpoisson"].mle(dutch)
    assert r.profile["method"] == METHOD
    # the full and the conditional likelihood's estimates differ slightly
    assert r.profile["n_hat"] == pytest.approx(7079.93, rel=0.005)
    assert r.profile["n_hat"] != pytest.approx(r.n_hat, rel=1e-6)


@pytest.mark.parametrize("family", ["ztpoisson", "ztgeometric", "oiztpoisson", "oiztgeometric"])
def test_interval_contains_the_estimate_and_leans_right(dutch, family):
    r = FAMILIES[family].mle(dutch)
    lo, hi = r.profile["ci95"]
    n_hat = r.profile["n_hat"]
    assert 1880 < lo < n_hat < hi < np.inf
    assert lo < r.n_hat < hi
    # asymmetric to the right: the likelihood falls faster towards N = n than towards large N
    assert hi - n_hat > n_hat - lo
    # each end lies where the deviance reaches χ²₁(0.95)
    f = dutch["frequency"].values[0]
    full = full_likelihood(family, f)
    start = [r.extra["standardised"][name] for name in r.extra["standardised"]]
    top = full.profile(n_hat, start=start)
    for end in (lo, hi):
        assert 2 * (top - full.profile(end)) == pytest.approx(CHI2_95, abs=1e-3)


def test_hare_profile_matches_rcapture():
    # Rcapture closedpCI.t(hare, m = "M0"): 74.70223 [69.47209, 82.99023] (M0's multinomial likelihood)
    hare = load_benchmark("hare")
    data = binomial_data(hare.assign(k=hare.sum(axis=1)), times_seen="k", trials=6)
    r = FAMILIES["ztbinomial"].mle(data)
    assert r.profile["n_hat"] == pytest.approx(74.70223, abs=1e-3)
    assert r.profile["ci95"] == pytest.approx((69.47209, 82.99023), abs=1e-3)


def test_boundary_fit_has_an_unbounded_upper_end(dutch):
    r = FAMILIES["ztnegbin"].mle(dutch)
    assert r.boundary
    lo, hi = r.profile["ci95"]
    assert r.profile["n_hat"] == np.inf and hi == np.inf
    assert 1880 < lo < np.inf


def test_no_profile_for_models_without_a_likelihood_in_n_or_with_covariates(dutch):
    assert FAMILIES["zelterman"].mle(dutch).profile is None
    assert FAMILIES["chao"].mle(dutch).profile is None
    with pytest.raises(ValueError, match="no likelihood in N"):
        full_likelihood("chao", dutch["frequency"].values[0])
    with_gender = frequency_data(
        load_benchmark("netherlands_immigrants"), times_seen="capture", covariates=["gender"]
    )
    assert FAMILIES["ztpoisson"].mle(with_gender).profile is None


@pytest.mark.parametrize("family", PROFILED)
def test_each_fit_is_fast(dutch, family):
    FAMILIES[family].mle(dutch)  # compiles the family's graph once
    start = time.perf_counter()
    r = FAMILIES[family].mle(dutch)
    assert time.perf_counter() - start < 2.0
    assert r.profile is not None
