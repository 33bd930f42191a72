"""The shared count kernels at extreme means: the zero-truncated laws stay finite (never +∞) when the mean λ
underflows, match scipy where both are representable, and have finite gradients there."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal as D

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.stats

from estim.families import kernels

K = np.arange(1, 6)


def _exact_truncated(base: str, k: int, eta: float, alpha: float | None = None) -> float:
    """log P(k | k ≥ 1) in 60-digit decimal arithmetic (scipy's nbinom loses digits when λ is small)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        lam = D(eta).exp()
        if base == "poisson":
            log_pk = k * D(eta) - lam - D(math.lgamma(k + 1))
            log_p0 = -lam
        elif base == "geometric":
            log_pk = k * D(eta) - (k + 1) * (1 + lam).ln()
            log_p0 = -(1 + lam).ln()
        else:
            size = 1 / D(alpha)
            rising = math.prod((size + j for j in range(k)), start=D(1))
            log_pk = (
                (rising / math.factorial(k)).ln()
                + size * (size / (size + lam)).ln()
                + k * (lam / (size + lam)).ln()
            )
            log_p0 = size * (size / (size + lam)).ln()
        return float(log_pk - (1 - log_p0.exp()).ln())


@pytest.mark.parametrize("base,alpha", [("poisson", None), ("geometric", None), ("negbin", 0.7)])
@pytest.mark.parametrize("eta", [-25.0, -3.0, 0.0, 2.5])
def test_truncated_law_matches_exact_arithmetic(base, alpha, eta):
    got = kernels.log_truncated_pmf(base, K, eta, np, alpha)
    want = [_exact_truncated(base, int(k), eta, alpha) for k in K]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # and scipy, where its logs are exact (moderate means)
    if eta > -10:
        np.testing.assert_allclose(got, _scipy_truncated(base, K, eta, alpha), rtol=1e-9)


def _scipy_truncated(
    base: str, k: np.ndarray, eta: float, alpha: float | None = None
) -> np.ndarray:
    lam = np.exp(eta)
    if base == "poisson":
        law = scipy.stats.poisson(lam)
    elif base == "geometric":
        # P(k) = λ^k / (1 + λ)^{k+1}: scipy's nbinom with n = 1, p = 1/(1 + λ)
        law = scipy.stats.nbinom(1, 1.0 / (1.0 + lam))
    else:
        size = 1.0 / alpha
        law = scipy.stats.nbinom(size, size / (size + lam))
    return law.logpmf(k) - np.log(law.sf(0))


@pytest.mark.parametrize("base,alpha", [("poisson", None), ("geometric", None), ("negbin", 0.7)])
@pytest.mark.parametrize("eta", [-40.0, -800.0, -5000.0])
def test_truncated_law_is_finite_and_right_when_the_mean_underflows(base, alpha, eta):
    # λ → 0: all the mass of K | K ≥ 1 is at 1, and P(2 | K ≥ 1) → λ/2 (Poisson), λ (geometric),
    # (1 + α)λ/2 (negative binomial); before the fix p0 rounded to 1 and these came out +∞
    got = kernels.log_truncated_pmf(base, K, eta, np, alpha)
    assert np.all(np.isfinite(got[:1])) and not np.any(got == np.inf)
    np.testing.assert_allclose(got[0], 0.0, atol=1e-12)
    second = {"poisson": np.log(0.5), "geometric": 0.0, "negbin": np.log((1 + 0.7) / 2)}[base]
    np.testing.assert_allclose(got[1], eta + second, rtol=1e-12)


@pytest.mark.parametrize("base,alpha", [("poisson", None), ("geometric", None), ("negbin", 0.7)])
def test_log_seen_is_continuous_across_its_switch(base, alpha):
    below, above = (
        kernels.log_seen(base, kernels.SMALL_MEAN_ETA + d, np, alpha) for d in (-1e-9, 1e-9)
    )
    assert abs(float(above - below)) < 1e-8


@pytest.mark.parametrize("base,alpha", [("poisson", None), ("geometric", None), ("negbin", 0.7)])
def test_gradient_is_finite_at_any_mean(base, alpha):
    eta = pt.dscalar("eta")
    logp = pt.sum(
        np.array([3.0, 2.0, 1.0, 1.0, 1.0]) * kernels.log_truncated_pmf(base, K, eta, pt, alpha)
    )
    grad = pytensor.function([eta], pytensor.grad(logp, eta))
    for value in (-5000.0, -800.0, -40.0, -30.0, -3.0, 4.0):
        g = float(grad(value))
        assert np.isfinite(g), (base, value, g)
    # at tiny λ the counts above 1 pull η up with slope Σ f_k (k − 1) = 2 + 2 + 3 + 4 = 11
    np.testing.assert_allclose(float(grad(-800.0)), 11.0, rtol=1e-9)


# ------------------------------------------------------------------------------ log(1 − e^x) over its range


def _exact_log1mexp(x: float) -> float:
    """log(1 − e^x) in decimal arithmetic with digits enough that neither 1 − e^x (near 0) nor its logarithm
    (far below 0, where e^x is ~10^(x / 2.3)) loses any: the float x is converted exactly."""
    with decimal.localcontext() as ctx:
        ctx.prec = 50 + int(-x / 2.3) + max(0, int(-math.log10(-x)))
        return float((1 - D(x).exp()).ln())


EXTREMES = [-1e-300, -1e-20, -1e-8, -0.5, -math.log(2.0), -0.7, -1.0, -5.0, -20.0, -30.0, -38.0,
            -40.0, -100.0, -300.0, -700.0]  # fmt: skip


@pytest.mark.parametrize("x", EXTREMES)
def test_log1mexp_has_full_relative_precision_at_extreme_arguments(x):
    """Against 50-plus-digit decimal arithmetic: log(−expm1 x) alone came out 2·10⁻⁸ off at x = −20, 1.7·10⁻⁴
    at −30 and exactly 0 (100 % off) from −38 on, where 1 − e^x rounds to 1."""
    exact = _exact_log1mexp(x)
    assert kernels.log1mexp(x, np) == pytest.approx(exact, rel=4e-16, abs=0.0)
    values = kernels.log1mexp(np.array(EXTREMES), np)  # elementwise, the same
    assert values[EXTREMES.index(x)] == pytest.approx(exact, rel=4e-16, abs=0.0)


def test_log1mexp_far_below_zero_is_minus_e_to_the_x():
    """The closed-form asymptote: log(1 − e^x) = −e^x − e^{2x}/2 − …, so −e^x to double precision once
    e^x < 10⁻¹⁶, down to where e^x itself is the smallest subnormal; its ends: 0 at −inf, −inf at 0."""
    for x in (-40.0, -200.0, -745.0):
        assert kernels.log1mexp(x, np) == pytest.approx(-math.exp(x), rel=1e-15, abs=0.0)
    assert kernels.log1mexp(-np.inf, np) == 0.0
    with np.errstate(divide="ignore"):
        assert kernels.log1mexp(0.0, np) == -np.inf


def test_log1mexp_near_zero_is_log_minus_x_plus_x_over_two():
    """The closed-form asymptote at the other end: log(1 − e^x) = log(−x) + x/2 + x²/24 + O(x⁴)."""
    for x in (-1e-300, -1e-100, -1e-12, -1e-6):
        expected = math.log(-x) + x / 2 + x * x / 24
        assert kernels.log1mexp(x, np) == pytest.approx(expected, rel=1e-15, abs=0.0)


def test_log1mexp_in_pytensor_is_the_same_with_a_finite_gradient():
    x = pt.dvector("x")
    value = kernels.log1mexp(x, pt)
    f = pytensor.function([x], [value, pytensor.grad(value.sum(), x)])
    points = np.array(EXTREMES)
    got, gradient = f(points)
    np.testing.assert_allclose(got, [_exact_log1mexp(v) for v in EXTREMES], rtol=4e-16, atol=0.0)
    # d/dx log(1 − e^x) = −1/(e^{−x} − 1) = e^x / (e^x − 1)
    np.testing.assert_allclose(gradient, -1.0 / np.expm1(-points), rtol=1e-14)
    assert np.isfinite(gradient).all()
