"""The border model's speed-tuned count laws (estim/families/border/kernels.py) against brute-force enumeration
and scipy: the exact law of an unsurveyed cell's total, the draws of its apprehended journeys given the total,
and the negative binomial of the apprehended journeys."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.special
import scipy.stats

from estim.families.border import kernels


def _exact_k_law(mu, phi, p, k_max=400, j_max=400):
    """P(K = k) by enumeration: J ~ NegBin(μ, φ), K | J = sum of J geometrics ~ NB₀(J, 1 − p)."""
    j = np.arange(j_max)
    pj = scipy.stats.nbinom.pmf(j, phi, phi / (phi + mu))
    k = np.arange(k_max)
    pk = np.zeros(k_max)
    pk[0] += pj[0]
    for jj in range(1, j_max):
        pk += pj[jj] * scipy.stats.nbinom.pmf(k, jj, 1 - p)
    return k, pk


@pytest.mark.parametrize(("mu", "phi", "p"), [(3.0, 5.0, 0.4), (20.0, 10.0, 0.55), (0.5, 2.0, 0.3)])
def test_unsurveyed_moments_match_the_exact_compound_law(mu, phi, p):
    k, pk = _exact_k_law(mu, phi, p)
    assert pk.sum() == pytest.approx(1, abs=1e-9)
    q = p / (1 - p)
    mean = (k * pk).sum()
    var = (k**2 * pk).sum() - mean**2
    assert mean == pytest.approx(mu * q, rel=1e-8)
    assert var == pytest.approx(mu * q * (1 + 2 * q) + (mu * q) ** 2 / phi, rel=1e-8)


@pytest.mark.parametrize(
    ("mu", "phi", "p"),
    [(3.0, 5.0, 0.4), (20.0, 10.0, 0.55), (0.5, 2.0, 0.3), (8.0, 0.5, 0.7), (50.0, 300.0, 0.2)],
)
def test_unsurveyed_likelihood_is_the_exact_compound_law(mu, phi, p):
    # reference: enumeration over the journeys J (not over A, as the model sums); category 1 has twice the φ
    pk = np.stack(
        [_exact_k_law(mu, f, p, k_max=200, j_max=600)[1] for f in (phi, 2 * phi)], axis=-1
    )
    # totals spread over the block widths, two categories, one cell weighted out
    k = np.array([[0, 0], [1, 3], [2, 5], [7, 12], [17, 40], [60, 130]])[None]  # (1, 6, 2)
    keep = np.ones(k.shape)
    keep[0, 2, 1] = 0
    shape = k.shape
    logp = kernels.totals_logp(
        k,
        keep,
        pt.as_tensor(np.full(shape, np.log(mu * p))),
        pt.as_tensor(np.full(shape, np.log(p))),
        pt.as_tensor(np.full(shape, np.log1p(-p))),
        pt.as_tensor(np.array([phi, 2 * phi])),
    ).eval()
    ref = np.log(pk[k, np.arange(2)])
    assert logp[0, 2, 1] == 0.0
    mask = keep > 0
    np.testing.assert_allclose(logp[mask], ref[mask], rtol=1e-10, atol=1e-10)


def test_apprehended_journeys_given_totals_follow_the_exact_conditional_law():
    mu, phi, p, k_obs = 6.0, 4.0, 0.45, 7
    # brute force: P(A = a, K = k) = Σ_J NB(J; μ, φ) Bin(a; J, p) NB₀(k − a; a, 1 − p)
    joint = np.zeros(k_obs + 1)
    for j in range(200):
        pj = scipy.stats.nbinom.pmf(j, phi, phi / (phi + mu))
        for a in range(1, min(j, k_obs) + 1):
            joint[a] += (
                pj * scipy.stats.binom.pmf(a, j, p) * scipy.stats.nbinom.pmf(k_obs - a, a, 1 - p)
            )
    exact = joint / joint.sum()
    rng = np.random.default_rng(0)
    n = 40_000
    col = lambda x: np.full((n, 1), x)  # noqa: E731
    draws = kernels.sample_apprehended(
        rng, np.array([k_obs]), col(np.log(mu * p)), col(phi), col(np.log(p)), col(np.log1p(-p))
    )[:, 0]
    freq = np.bincount(draws, minlength=k_obs + 1) / n
    assert draws.min() >= 1 and draws.max() <= k_obs
    np.testing.assert_allclose(freq, exact, atol=0.01)


def test_apprehended_journeys_given_a_large_total_follow_the_exact_conditional_law():
    # the sampler walks the weights by their ratio (numba); check a large K against log-gamma weights
    mu, phi, p, k_obs = 80.0, 3.0, 0.5, 120
    a = np.arange(1, k_obs + 1)
    m = mu * p
    lw = (
        scipy.stats.nbinom.logpmf(a, phi, phi / (phi + m))
        + scipy.special.gammaln(k_obs)
        - scipy.special.gammaln(a)
        - scipy.special.gammaln(k_obs - a + 1)
        + (k_obs - a) * np.log(p)
        + a * np.log1p(-p)
    )
    exact = np.exp(lw - lw.max())
    exact /= exact.sum()
    n = 40_000
    col = lambda x: np.full((n, 1), x)  # noqa: E731
    draws = kernels.sample_apprehended(
        np.random.default_rng(4),
        np.array([k_obs]),
        col(np.log(m)),
        col(phi),
        col(np.log(p)),
        col(np.log1p(-p)),
    )[:, 0]
    freq = np.bincount(draws, minlength=k_obs + 1)[1:] / n
    assert 0.5 * np.abs(freq - exact).sum() < 0.02  # total variation
    assert draws.mean() == pytest.approx((a * exact).sum(), rel=0.01)


def test_segments_of_several_cells_are_drawn_independently():
    rng = np.random.default_rng(1)
    k = np.array([0, 1, 3, 0, 5])
    n = 2000
    ones = np.ones((n, len(k)))
    a = kernels.sample_apprehended(
        rng, k, np.log(2.0) * ones, 3 * ones, np.log(0.4) * ones, np.log(0.6) * ones
    )
    assert (a[:, k == 0] == 0).all()
    assert (a[:, 1] == 1).all()
    assert ((a >= (k > 0)) & (a <= k)).all()


def test_no_positive_total_draws_nothing():
    rng = np.random.default_rng(1)
    zeros = np.zeros((3, 2))
    a = kernels.sample_apprehended(rng, np.array([0, 0]), zeros, zeros + 1, zeros - 1, zeros - 1)
    assert a.shape == (3, 2) and (a == 0).all()


def test_nb_kernel_matches_scipy():
    # the shared kernel the border likelihood uses, at the border's parameterisation (shape φ, α = 1/φ)
    a = np.array([0, 1, 5, 40])
    mean, phi = 7.5, 3.0
    got = kernels.negbin_logp(a, np.log(mean), phi, np)
    np.testing.assert_allclose(got, scipy.stats.nbinom.logpmf(a, phi, phi / (phi + mean)))
