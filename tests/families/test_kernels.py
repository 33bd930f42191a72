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
