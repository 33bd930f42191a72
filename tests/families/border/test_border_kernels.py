"""The border model's speed-tuned count laws (estim/families/border/kernels.py) against brute-force enumeration
and scipy: the exact law of an unsurveyed cell's total, the draws of its apprehended journeys given the total,
and the negative binomial of the apprehended journeys."""

from __future__ import annotations

import numpy as np
import pytensor
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
        saddlepoint_above=None,  # the exact law everywhere (the saddlepoint is tested below)
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


def _compound_logp_by_scipy(k, mp, phi, q):
    """log P(K = k) by the definition, through scipy: A ~ NegBin(mean μp, φ), K − A | A ~ NB₀(A, 1 − q)."""
    a = np.arange(1, k + 1)
    return scipy.special.logsumexp(
        scipy.stats.nbinom.logpmf(a, phi, phi / (phi + mp))
        + scipy.stats.nbinom.logpmf(k - a, a, 1 - q)
    )


# over φ, q = pr and the mean of K against k (the cell's data lie within a few sd of its mean)
SADDLEPOINT_GRID = [
    (phi, q, ratio)
    for phi in (0.3, 1.0, 5.0, 100.0)
    for q in (0.05, 0.4, 0.8)
    for ratio in (0.3, 1.0, 3.0)
]


@pytest.mark.parametrize("k", [65, 128, 257, 512])
def test_saddlepoint_matches_the_exact_compound_law_above_the_threshold(k):
    # the bounds of kernels.SADDLEPOINT_ABOVE (256): ≤ 1e-3 at 65, shrinking like 1/k²
    bound = {65: 1e-3, 128: 3e-4, 257: 6e-5, 512: 2e-5}[k]
    errors = []
    for phi, q, ratio in SADDLEPOINT_GRID:
        mp = ratio * k * (1 - q)  # E K = μp/(1 − q)
        approx = kernels.saddlepoint_logp(float(k), np.log(mp), np.log(q), np.log1p(-q), phi, np)
        errors.append(approx - _compound_logp_by_scipy(k, mp, phi, q))
    assert np.max(np.abs(errors)) < bound


def test_saddlepoint_is_exact_in_the_limit_of_large_totals():
    for phi, q in [(0.5, 0.4), (5.0, 0.1), (20.0, 0.7)]:
        k = 20_000
        mp = 0.8 * k * (1 - q)
        approx = kernels.saddlepoint_logp(float(k), np.log(mp), np.log(q), np.log1p(-q), phi, np)
        assert approx == pytest.approx(_compound_logp_by_scipy(k, mp, phi, q), abs=1e-7)


def test_saddlepoint_gradient_matches_the_exact_laws():
    # what the sampler sees: d log P / d(log μp, log q, φ) of the approximation against central differences of
    # the exact law, at k = 80 (just above the threshold)
    k, phi0, q0, mp0 = 80, 4.0, 0.45, 50.0
    lmp, lq, ph = pt.dscalar("lmp"), pt.dscalar("lq"), pt.dscalar("phi")
    approx = kernels.saddlepoint_logp(
        pt.as_tensor(np.float64(k)), lmp, lq, pt.log1p(-pt.exp(lq)), ph
    )
    grad = pytensor.function([lmp, lq, ph], pt.grad(approx, [lmp, lq, ph]))(
        np.log(mp0), np.log(q0), phi0
    )

    def exact(x):
        return _compound_logp_by_scipy(k, np.exp(x[0]), x[2], np.exp(x[1]))

    x0, h = np.array([np.log(mp0), np.log(q0), phi0]), 1e-5
    numeric = [(exact(x0 + h * e) - exact(x0 - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, numeric, rtol=2e-3, atol=1e-4)


def test_totals_use_the_saddlepoint_only_above_the_threshold():
    k = np.array([[3, 40, 256, 257, 600]])[..., None]  # (1, 5, 1): one category
    shape = k.shape
    mp, q, phi = 20.0, 0.5, 3.0
    args = (
        pt.as_tensor(np.full(shape, np.log(mp))),
        pt.as_tensor(np.full(shape, np.log(q))),
        pt.as_tensor(np.full(shape, np.log1p(-q))),
        pt.as_tensor(np.array([phi])),
    )
    keep = np.ones(shape)
    exact = kernels.totals_logp(k, keep, *args, saddlepoint_above=None).eval()[0, :, 0]
    mixed = kernels.totals_logp(k, keep, *args).eval()[0, :, 0]
    reference = [_compound_logp_by_scipy(int(x), mp, phi, q) for x in k.ravel()]
    np.testing.assert_allclose(exact, reference, rtol=1e-10)
    assert kernels.SADDLEPOINT_ABOVE == 256
    np.testing.assert_array_equal(mixed[:3], exact[:3])  # k ≤ 256: the exact law, bit for bit
    assert not np.array_equal(mixed[3:], exact[3:])  # above: the approximation ...
    np.testing.assert_allclose(mixed[3:], exact[3:], atol=6e-5)  # ... within its bound


def test_large_totals_cost_one_term_a_cell():
    # the exact law's graph holds Σ k terms; with the saddlepoint the graph of cells in the millions is as
    # small as that of cells in the tens, and its values are still right
    from pytensor.graph.basic import Constant, ancestors

    def biggest_constant(k):
        shape = k.shape
        logp = kernels.totals_logp(
            k,
            np.ones(shape),
            pt.as_tensor(np.log(k * 0.6 + 1.0)),
            pt.as_tensor(np.full(shape, np.log(0.4))),
            pt.as_tensor(np.full(shape, np.log(0.6))),
            pt.as_tensor(np.array([4.0])),
        )
        sizes = [np.size(v.data) for v in ancestors([logp]) if isinstance(v, Constant)]
        return max(sizes), logp

    small = np.array([[[290], [400], [600]]])
    large = small * 1_000
    size_small, _ = biggest_constant(small)
    size_large, logp = biggest_constant(large)
    assert size_large == size_small <= 3
    got = logp.eval()[0, :, 0]
    mp = large.ravel() * 0.6 + 1.0
    reference = [
        _compound_logp_by_scipy(int(k), m, 4.0, 0.4) for k, m in zip(large.ravel(), mp, strict=True)
    ]
    np.testing.assert_allclose(got, reference, atol=1e-8)


@pytest.mark.parametrize(
    ("k", "mp", "phi", "q"),
    [
        (300, 150.0, 3.0, 0.5),
        (1000, 900.0, 0.5, 0.3),
        (5000, 100.0, 20.0, 0.8),
        (260, 1.0, 1.0, 0.5),
    ],
)
def test_large_totals_draw_the_exact_conditional_law_by_rejection(k, mp, phi, q):
    # the rejection sampler (totals above REJECTION_ABOVE) against the law by scipy, and against the inverse
    # CDF's own sampling error at the same number of draws
    a = np.arange(1, k + 1)
    lw = scipy.stats.nbinom.logpmf(a, phi, phi / (phi + mp)) + scipy.stats.nbinom.logpmf(
        k - a, a, 1 - q
    )
    exact = np.exp(lw - lw.max())
    exact /= exact.sum()
    n = 40_000
    col = lambda x: np.full((n, 1), x)  # noqa: E731
    args = (np.array([k]), col(np.log(mp)), col(phi), col(np.log(q)), col(np.log1p(-q)))
    assert k > kernels.REJECTION_ABOVE
    drawn = kernels.sample_apprehended(np.random.default_rng(5), *args)[:, 0]
    walked = kernels.sample_apprehended(np.random.default_rng(5), *args, rejection_above=None)[:, 0]
    assert drawn.min() >= 1 and drawn.max() <= k

    def tv(x):
        return 0.5 * np.abs(np.bincount(x, minlength=k + 1)[1:] / n - exact).sum()

    assert tv(drawn) < 1.5 * tv(walked) + 0.005
    mean, sd = (a * exact).sum(), np.sqrt((a * a * exact).sum() - (a * exact).sum() ** 2)
    assert abs(drawn.mean() - mean) < 4 * sd / np.sqrt(n)
    assert drawn.std() == pytest.approx(sd, rel=0.03)


def test_totals_up_to_the_threshold_are_drawn_as_before():
    # the shipped volume's draws do not change: the same generator, the same inverse-CDF draws
    rng_args = (np.array([5, 256, 0, 40]),)
    ones = np.ones((50, 4))
    params = (np.log(30.0) * ones, 3 * ones, np.log(0.4) * ones, np.log(0.6) * ones)
    before = kernels.sample_apprehended(
        np.random.default_rng(2), *rng_args, *params, rejection_above=None
    )
    now = kernels.sample_apprehended(np.random.default_rng(2), *rng_args, *params)
    np.testing.assert_array_equal(before, now)


def test_rejection_refuses_parameters_that_are_not_finite():
    ones = np.ones((2, 1))
    with pytest.raises(ValueError, match="not finite"):
        kernels.sample_apprehended(
            np.random.default_rng(0),
            np.array([1000]),
            np.full((2, 1), np.nan),
            3 * ones,
            np.log(0.4) * ones,
            np.log(0.6) * ones,
        )


def test_draws_of_apprehended_journeys_do_not_depend_on_the_threads():
    """The inverse-CDF sampler runs its draws in parallel threads; the uniforms are drawn beforehand, so one
    thread and every thread give the same draws (a reviewer's rerun on another machine)."""
    import numba

    rng = np.random.default_rng(4)
    k = rng.negative_binomial(2, 0.3, 300)
    log_mp = np.log(np.maximum(k, 1))[None] + rng.normal(0.0, 0.2, (40, k.size)) - 0.3
    phi = np.full(log_mp.shape, 1.5)
    log_p = np.full(log_mp.shape, np.log(0.4))
    log_1mp = np.log1p(-np.exp(log_p))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = kernels.sample_apprehended(np.random.default_rng(9), k, log_mp, phi, log_p, log_1mp)
    finally:
        numba.set_num_threads(threads)
    many = kernels.sample_apprehended(np.random.default_rng(9), k, log_mp, phi, log_p, log_1mp)
    assert np.array_equal(one, many)
    assert np.all((many >= 1) == (k > 0)[None]) and np.all(many <= k[None])
