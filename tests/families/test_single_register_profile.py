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
from estim.families.single_register.profile import CHI2_95, LOG_ALPHA_BOUNDS, METHOD

load_all()
PROFILED = ["ztpoisson", "ztgeometric", "ztnegbin", "oiztpoisson", "oiztgeometric"]
TINY = np.array([9, 5, 3, 1])  # f_1..f_4: a register of 18 people


@pytest.fixture(scope="module")
def dutch():
    return frequency_data(load_benchmark("netherlands_immigrants"), times_seen="capture")


def _log_coefficient(f: np.ndarray, n_total: float) -> float:
    """log N!/((N − n)! Π f_k!), the multinomial coefficient of the full likelihood."""
    n = f.sum()
    return float(
        scipy.special.gammaln(n_total + 1)
        - scipy.special.gammaln(n_total - n + 1)
        - scipy.special.gammaln(f + 1).sum()
    )


def _direct_profile(family: str, f: np.ndarray, n_total: int, trials: int = 4) -> float:
    """max over θ of log N!/((N − n)! Π f_k!) + (N − n) log P(0) + Σ f_k log P(k), with P from scipy.stats."""
    k = np.arange(1, len(f) + 1)
    n = f.sum()
    coefficient = _log_coefficient(f, n_total)

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


# ---------------------------------------------------------------------- sparse repeats: a ridge in (λ, ω)

SPARSE = np.array([500, 1])  # 500 people seen once, one seen twice


def _direct_inflated_profile(f: np.ndarray, n_total: float, geometric: bool) -> float:
    """ℓ_p(N) of a one-inflated model by brute force: Nelder–Mead over (log λ, logit ω) from a 5 × 3 grid of
    starts, the base pmf written out (Poisson e^{−λ}λ^k/k!, geometric λ^k/(1 + λ)^{k+1})."""
    k = np.r_[0, np.arange(1, len(f) + 1)]
    n = f.sum()
    coefficient = _log_coefficient(f, n_total)

    def negative(theta):
        lam, omega = np.exp(theta[0]), scipy.special.expit(theta[1])
        if geometric:
            base = np.exp(k * np.log(lam) - (k + 1) * np.log1p(lam))
        else:
            base = np.exp(k * np.log(lam) - lam - scipy.special.gammaln(k + 1))
        pmf = (1 - omega) * base + omega * (k == 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = coefficient + (n_total - n) * np.log(pmf[0]) + np.sum(f * np.log(pmf[1:]))
        return -value if np.isfinite(value) else 1e300

    return -min(
        scipy.optimize.minimize(negative, [a, b], method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).fun
        for a in np.linspace(-6, 6, 5) for b in np.linspace(-8, 8, 3)
    )  # fmt: skip


@pytest.mark.parametrize("family", ["oiztpoisson", "oiztgeometric"])
def test_inflation_in_closed_form_is_the_maximum_over_omega(family):
    full = full_likelihood(family, SPARSE)
    for n_total, eta in [(501, -2.0), (600, 0.5), (5_000, -4.0), (1e6, 1.0)]:
        omega = full.omega_at(n_total, eta)
        res = scipy.optimize.minimize_scalar(
            lambda psi, n_total=n_total, eta=eta: -full.loglik(n_total, [eta, psi]),
            bounds=(-30, 30),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert full.loglik(n_total, full._omega_theta(n_total, eta)) >= -res.fun - 1e-9
        assert 0.0 <= omega < 1.0


@pytest.mark.parametrize("family", ["oiztpoisson", "oiztgeometric"])
def test_sparse_repeats_profile_equals_a_brute_force_maximisation(family):
    # Before ω was maximised in closed form, a two-parameter Nelder–Mead started at the nearest N stopped on
    # the (λ, ω) ridge: ℓ_p came out 4.8 too low at N − n = 31,344, and the interval search then had no sign
    # change (ValueError), or on other data put the upper end at 2.2 million instead of 549.
    r = FAMILIES[family].mle(frequency_data(pd.DataFrame({"k": np.repeat([1, 2], SPARSE)}),
                                            times_seen="k"))  # fmt: skip
    lo, hi = r.profile["ci95"]
    top = _direct_inflated_profile(SPARSE, r.profile["n_hat"], family == "oiztgeometric")
    assert lo == 501 and np.isfinite(hi)
    assert r.profile["n_hat"] == 501
    assert 2 * (
        top - _direct_inflated_profile(SPARSE, hi, family == "oiztgeometric")
    ) == pytest.approx(CHI2_95, abs=1e-4)
    # no N in between lies higher than the profile's maximum (a stuck search would miss one)
    for n_total in (501.5, 520, (501 + hi) / 2, 2 * hi, 1e5):
        assert _direct_inflated_profile(SPARSE, n_total, family == "oiztgeometric") <= top + 1e-8
    # the conditional N̂ (~10⁵, the plain model's: ω̂ = 0) lies far outside: said, not hidden
    assert r.n_hat > hi
    assert "outside the 95 % profile-likelihood interval" in r.message


def test_negative_binomial_profile_equals_a_brute_force_maximisation():
    # 500 seen once, one twice: ℓ_p flattens towards large N (−5.029 at N = 5·10⁶ against −5.026 at its
    # maximum), so the upper end is unbounded; the two-parameter search from the nearest N ended it at 2.2
    # million. λ̂ = S/N in closed form and a search over log α alone now give the brute force's values.
    from estim.families.single_register import _SPECS
    from estim.families.single_register.profile import profile_likelihood

    k = np.arange(1, 3)
    profile = profile_likelihood(_SPECS["ztnegbin"][0], SPARSE, None, np.array([-5.0, -2.0]))
    assert profile["ci95"][1] == np.inf
    assert 28_000 < profile["ci95"][0] < 29_000

    def direct(n_total: float) -> float:
        n = SPARSE.sum()
        coefficient = _log_coefficient(SPARSE, n_total)

        def negative(theta):
            lam, alpha = np.exp(theta[0]), np.exp(theta[1])
            law = st.nbinom(1 / alpha, 1 / (1 + alpha * lam))
            value = coefficient + (n_total - n) * law.logpmf(0) + np.sum(SPARSE * law.logpmf(k))
            return -value if np.isfinite(value) else 1e300

        # log α within the model's bounds: towards α → 0 (the Poisson) scipy's log pmf loses digits
        return -min(
            scipy.optimize.minimize(negative, [a, b], method="Nelder-Mead",
                                    bounds=[(None, None), LOG_ALPHA_BOUNDS],
                                    options={"xatol": 1e-10, "fatol": 1e-12}).fun
            for a in (-6.0, -2.0) for b in (-8.0, -2.0, 2.0)
        )  # fmt: skip

    full = full_likelihood("ztnegbin", SPARSE)
    full.profile(501, start=[0.0, 0.0])
    for n_total in (600, profile["ci95"][0], 1.26e5, 5.01e6):
        assert full.profile(n_total) == pytest.approx(direct(n_total), abs=1e-4)


def test_an_interval_end_without_a_sign_change_is_named_not_a_scipy_error(monkeypatch):
    import estim.families.single_register.profile as profile_module

    with pytest.raises(profile_module.ProfileError, match="no end of the profile interval"):
        profile_module._end(lambda m: -1.0, 1.0, 2.0, 10.0)

    # the conditional fit still stands, and says why it has no profile interval
    def no_end(excess, a, b, n):
        raise profile_module.ProfileError("no end of the profile interval (test)")

    monkeypatch.setattr(profile_module, "_end", no_end)
    r = FAMILIES["ztpoisson"].mle(frequency_data(pd.DataFrame({"k": np.repeat([1, 2, 3, 4], TINY)}),
                                                 times_seen="k"))  # fmt: skip
    assert r.profile is None and r.converged and np.isfinite(r.n_hat)
    assert "no profile-likelihood interval: no end of the profile interval (test)" in r.message


@pytest.mark.parametrize("family", ["ztpoisson", "ztnegbin"])
def test_a_flat_profile_has_no_maximum_and_an_unbounded_interval_not_a_scipy_error(family):
    """One person seen once. Under the Poisson the full likelihood is N λ e^{−λN}, whose maximum over λ
    (λ = 1/N) is e^{−1} whatever N: the profile is flat and N is not identified (the negative binomial, the
    Poisson as α → 0, is as flat). scipy's Brent search raised ValueError ("Bracketing values … do not
    fulfill this requirement") out of the fit; now the profile has no maximum (nan) and its interval is all
    of [n, ∞)."""
    f = np.array([1])
    full = full_likelihood(family, f)
    theta = [0.0] if family == "ztpoisson" else [0.0, LOG_ALPHA_BOUNDS[0]]
    for n_total in (1.0, 3.0, 1e3, 1e6):
        assert full.profile(n_total, start=theta) == pytest.approx(-1.0, abs=1e-6)  # log e^{−1}
    r = FAMILIES[family].mle(frequency_data(pd.DataFrame({"k": [1]}), times_seen="k"))
    assert r.boundary and not r.converged
    assert np.isnan(r.profile["n_hat"]) and r.profile["ci95"] == (1.0, np.inf)
    assert "the profile likelihood of N is flat" in r.message


def test_a_profile_rising_to_infinity_is_not_taken_for_flat():
    """One person seen once under the geometric: max over λ of N λ/(1 + λ)^{N+1} is (1 + 1/N)^{−(N+1)},
    rising towards e^{−1} as N → ∞ (closed form): N-hat is inf, not nan."""
    full = full_likelihood("ztgeometric", np.array([1]))
    for n_total in (1.0, 10.0, 1e4):
        expected = -(n_total + 1) * np.log1p(1 / n_total)
        assert full.profile(n_total, start=[0.0]) == pytest.approx(expected, abs=1e-8)
    r = FAMILIES["ztgeometric"].mle(frequency_data(pd.DataFrame({"k": [1]}), times_seen="k"))
    assert r.profile["n_hat"] == np.inf and r.profile["ci95"] == (1.0, np.inf)
    assert "flat" not in r.message
