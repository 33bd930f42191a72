"""The border model's count laws where speed matters: the exact law of an unsurveyed cell's monthly total
(`totals_logp`, the bulk of the model's gradient) and the draws of its apprehended journeys given the total
(`sample_apprehended`, compiled with numba), with the negative binomial of the apprehended journeys.

Notation of `estim.families.border.model`: in a cell, A ~ NegBin(μp, φ) journeys are apprehended at least once
and each of them K_j − 1 ~ Geometric more times (P(K_j − 1 = i) = p^i (1 − p)); K = Σ_j K_j.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.special

from estim.families import kernels


def negbin_logp(value: Any, log_mean: Any, phi: Any, xp: Any) -> Any:
    """log NegBin(value; mean exp(log_mean), shape φ) via the shared kernel (dispersion α = 1/φ); ``value``
    are counts in NumPy (log value! is computed once, outside any graph)."""
    return kernels.log_pmf("negbin", value, log_mean, xp, alpha=1.0 / phi)


# Widths of the dense blocks of the unsurveyed likelihood: cells are grouped by their total k into blocks of
# width w (terms a = 1…w, masked beyond k), so padding wastes at most a third of the work. Measured (JAX,
# whole-model gradient, shipped data): 3.6–3.9 ms, as with the moment-matched law it replaces; a ragged
# gather/scatter form took 5.5 ms, blocks split by category 7.6 ms, powers of 4 5.9 ms.
_BLOCK_WIDTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)

SADDLEPOINT_ABOVE = 256
"""Totals above this use the saddlepoint approximation of the compound law (`saddlepoint_logp`), one term a
cell instead of k. Measured against the exact law (tests/families/border/test_border_kernels.py) over
φ ∈ [0.3, 100], pr ∈ [0.05, 0.8] and means from 0.3 to 3 times the total: |error of log P| ≤ 8.4·10⁻⁴ at
k = 64, 1.8·10⁻⁴ at 128, 4.7·10⁻⁵ at 257 and 1.0·10⁻⁵ at 512. Up to 256 the exact sum is still cheap (at
most 256 terms a cell), and every border of the shipped volume (largest total ~200) is fitted with the exact
law, as before the approximation existed."""

REJECTION_ABOVE = 256
"""Totals above this have A | K drawn by rejection (exact, `sample_apprehended`), not by the inverse CDF."""


def saddlepoint_logp(
    k: Any,
    log_mp: Any,
    log_p: Any,
    log_1mp: Any,
    phi: Any,
    xp: Any = pt,
    limit: Any = None,
) -> Any:
    """log P(K = k) of the compound law of `totals_logp` by the saddlepoint approximation with its
    second-order correction (Daniels 1954; Butler 2007, §2.3), for k ≥ 1, in the array namespace ``xp``
    (PyTensor, or NumPy for tests); every argument broadcasts.

    With m = μp/φ and q = pr (``log_p`` is log q here, ``log_1mp`` log(1 − q)), K's cumulant generating
    function is κ(t) = −φ log(1 + m(1 − h(t))), h(t) = (1 − q)e^t/(1 − qe^t): the probability generating
    function of NegBin(μp, φ) journeys composed with their 1 + Geometric apprehensions. The saddlepoint
    equation κ'(t) = k is a quadratic in u = e^t,

        q(q + m) u² − (2q + m(1 + q) + (φ/k) m(1 − q)) u + (1 + m) = 0,

    whose smaller root is the saddlepoint. With g = 1/(1 − qu) and c = k/φ, the derivatives of κ there are
    κ₂ = k(P₂ + c), κ₃ = k(P₃ + 3cP₂ + 2c²), κ₄ = k(P₄ + 4cP₃ + 3cP₂² + 12c²P₂ + 6c³), with
    P₂ = 2g − 1, P₃ = 6g² − 6g + 1, P₄ = 24g³ − 36g² + 14g − 1; and 1 + m(1 − h) = φmhg/k (no cancellation).

        log P(K = k) ≈ κ(t̂) − t̂k − ½ log(2πκ₂) + log(1 + λ₄/8 − 5λ₃²/24) − ε(φ),   λ_j = κ_j/κ₂^{j/2}.

    As k grows, K/k tends to a gamma law of shape φ, for which the corrected saddlepoint is off by a factor
    that depends on φ alone (Stirling's series): ε(φ) = log Γ(φ) − (φ − ½) log φ + φ − ½ log 2π
    + log(1 − 1/(12φ)) is that limit (`saddlepoint_limit`; ``limit`` if given), removed. What is left decays
    like 1/k² (`SADDLEPOINT_ABOVE`)."""
    q, one_minus_q = xp.exp(log_p), xp.exp(log_1mp)
    log_phi = xp.log(phi)
    log_m = log_mp - log_phi
    m = xp.exp(log_m)
    c = k / phi
    a2 = q * (q + m)
    a1 = 2.0 * q + m * (1.0 + q) + m * one_minus_q / c
    a0 = 1.0 + m
    u = 2.0 * a0 / (a1 + xp.sqrt(xp.maximum(a1 * a1 - 4.0 * a2 * a0, 0.0)))
    log_u = xp.log(u)
    g = 1.0 / (1.0 - q * u)
    log_d = log_phi + log_m + log_1mp + log_u + 2.0 * xp.log(g) - xp.log(k)  # log(1 + m(1 − h))
    p2 = 2.0 * g - 1.0
    p3 = (6.0 * g - 6.0) * g + 1.0
    p4 = ((24.0 * g - 36.0) * g + 14.0) * g - 1.0
    k2 = k * (p2 + c)
    k3 = k * (p3 + 3.0 * c * p2 + 2.0 * c * c)
    k4 = k * (p4 + 4.0 * c * p3 + 3.0 * c * p2 * p2 + 12.0 * c * c * p2 + 6.0 * c**3)
    correction = xp.log1p(k4 / (8.0 * k2 * k2) - 5.0 * k3 * k3 / (24.0 * k2**3))
    if limit is None:
        limit = saddlepoint_limit(phi, xp)
    return -phi * log_d - k * log_u - 0.5 * xp.log(2.0 * np.pi * k2) + correction - limit


def saddlepoint_limit(phi: Any, xp: Any = pt) -> Any:
    """ε(φ) of `saddlepoint_logp`: the log ratio of the corrected saddlepoint density of a gamma law of shape φ
    to the exact one (the remainder of Stirling's series for log Γ(φ), with the correction's −1/(12φ))."""
    special = pt if xp is pt else scipy.special
    return (
        special.gammaln(phi)
        - (phi - 0.5) * xp.log(phi)
        + phi
        - 0.5 * np.log(2.0 * np.pi)
        + xp.log1p(-1.0 / (12.0 * phi))
    )


def totals_logp(
    k_obs: np.ndarray,
    keep: np.ndarray,
    log_mp: Any,
    log_p: Any,
    log_1mp: Any,
    phi: Any,
    saddlepoint_above: int | None = SADDLEPOINT_ABOVE,
) -> Any:
    """log P(K = k) per (section, month, category) cell of an unsurveyed section, under the exact compound law
    of the model:

        P(K = 0) = NegBin(0; μp, φ),   P(K = k) = Σ_{a=1..k} NegBin(a; μp, φ) C(k−1, a−1) p^{k−a} (1−p)^a.

    ``k_obs`` (…, category) observed totals (NumPy: the layout of the sum is built from them), ``keep`` 0/1
    weights of the same shape (0: a cell that cannot occur, contributes 0); ``log_mp`` = log μp, ``log_p``,
    ``log_1mp`` tensors of that shape; ``phi`` (category,) or broadcast to that shape. Cost is Σ k terms (one
    per possible A), not a sum over the journeys J.

    Each term is  g_c(a) + A0 + a·B + c(k, a)  with g_c(a) = log Γ(a + φ_c) − log Γ(φ_c) (one table over
    a = 0…max k per category, not a log-gamma per term), A0 = φ log(φ/(φ + μp)) + k log p,
    B = log(μp/(φ + μp)) + log(1 − p) − log p, and the constant c = log C(k−1, a−1) − log a!. Cells are
    grouped by k into dense blocks (``_BLOCK_WIDTHS``): dense sums differentiate faster than ragged gathers
    and scatters.

    Totals above ``saddlepoint_above`` (None: none) use `saddlepoint_logp`, one term a cell: the sum of the
    totals grows with the volume of apprehensions, the number of cells does not."""
    shape = k_obs.shape
    n_cat = shape[-1]
    kf = np.asarray(k_obs).reshape(-1).astype(np.int64)
    keepf = np.asarray(keep).reshape(-1) > 0
    cat = np.broadcast_to(np.arange(n_cat), shape).reshape(-1)
    lmp, lp, l1p = (pt.reshape(x, (-1,)) for x in (log_mp, log_p, log_1mp))
    # φ per cell (CustomDist hands its parameters over broadcast to the data's shape) and per category
    phi_cells = pt.reshape(pt.broadcast_to(phi, shape), (-1,))
    phi = phi_cells[:n_cat]
    lphi = pt.log(phi_cells)
    log_a0 = -pt.softplus(lmp - lphi)  # log φ/(φ + μp)
    log_a1 = -pt.softplus(lphi - lmp)  # log μp/(φ + μp)
    above = np.inf if saddlepoint_above is None else saddlepoint_above
    pos = np.flatnonzero(keepf & (kf > 0) & (kf <= above))
    zero = np.flatnonzero(keepf & (kf == 0))
    large = np.flatnonzero(keepf & (kf > above))
    out = pt.zeros(kf.shape[0])
    if len(zero):
        out = pt.set_subtensor(out[zero], phi_cells[zero] * log_a0[zero])
    if len(large):
        out = pt.set_subtensor(
            out[large],
            saddlepoint_logp(
                kf[large].astype(float),
                lmp[large],
                lp[large],
                l1p[large],
                phi_cells[large],
                limit=saddlepoint_limit(phi)[cat[large]],  # a log-gamma per category, not per cell
            ),
        )
    if len(pos):
        k_max = int(kf[pos].max())
        # beyond the table, widths double (the exact law everywhere on a large border)
        table = list(_BLOCK_WIDTHS)
        while table[-1] < k_max:
            table.append(2 * table[-1])
        widths = tuple(w for w in table if w < k_max) + (min(w for w in table if w >= k_max),)
        width_of = np.array(widths)[np.searchsorted(widths, kf[pos])]
        # positive cells ordered by block width: every block is a contiguous slice
        order = np.argsort(width_of, kind="stable")
        perm, w_sorted, c_sorted = pos[order], width_of[order], cat[pos][order]
        k_sorted = kf[perm].astype(float)
        a0 = phi_cells[perm] * log_a0[perm] + k_sorted * lp[perm]
        b = log_a1[perm] + l1p[perm] - lp[perm]
        grid = np.arange(widths[-1] + 1, dtype=float)
        g = pt.gammaln(grid[None, :] + phi[:, None]) - pt.gammaln(phi)[:, None]  # (category, a)
        parts = []
        bounds = np.flatnonzero(np.diff(w_sorted)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(perm)], strict=True):
            w = int(w_sorted[lo])
            k = k_sorted[lo:hi, None]
            a = np.arange(1, w + 1, dtype=float)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                const = (
                    scipy.special.gammaln(k)
                    - scipy.special.gammaln(a)
                    - scipy.special.gammaln(np.maximum(k - a, 0.0) + 1)
                    - scipy.special.gammaln(a + 1)
                )
            const = np.where(a <= k, const, -1e30)  # beyond k: no term (exp underflows to 0)
            terms = g[c_sorted[lo:hi], 1 : w + 1] + a * b[lo:hi, None] + const
            parts.append(pm.math.logsumexp(terms, axis=1, keepdims=False))
        out = pt.set_subtensor(out[perm], a0 + pt.concatenate(parts))
    return pt.reshape(out, shape)


def sample_apprehended(
    rng: np.random.Generator,
    k_obs: np.ndarray,
    log_mp: np.ndarray,
    phi: np.ndarray,
    log_p: np.ndarray,
    log_1mp: np.ndarray,
    rejection_above: int | None = REJECTION_ABOVE,
) -> np.ndarray:
    """Draws of A | K per cell (draws × cells): P(A = a | K) ∝ NegBin(a; μp, φ) C(K−1, a−1) p^{K−a}(1−p)^a,
    a = 1..K (A = 0 when K = 0), by inverse CDF over a within each cell; totals above ``rejection_above``
    (None: none) by rejection, also exact, at a cost that does not grow with K.

    Successive weights differ by the factor (a + φ)(K − a) / ((a + 1) a) · μp/(φ + μp) · (1 − p)/p, so the
    kernel needs one logarithm per (draw, a) instead of three log-gamma functions; it runs compiled (numba):
    over 3,000 draws the unsurveyed cells have ~10⁸ (draw, a) pairs. The inverse CDF costs K a draw: at 10 M
    records (Σ K ≈ 10⁷) ~0.5 s a draw. Above ``rejection_above`` each draw is by rejection from an envelope
    of the log-concave weights (flat within about an sd of the mode, geometric beyond along the secants at its
    ends: Devroye 1986, *Non-Uniform Random Variate Generation*, §VII.2), a few log-gamma evaluations a draw.
    Below it the draws are those the inverse CDF always gave (the shipped volume's totals are all below)."""
    n_draws, n_cells = log_mp.shape
    out = np.zeros((n_draws, n_cells), dtype=np.int64)
    above = np.inf if rejection_above is None else rejection_above
    pos = np.flatnonzero((k_obs > 0) & (k_obs <= above))
    large = np.flatnonzero(k_obs > above)

    def columns(cells: np.ndarray) -> tuple[np.ndarray, ...]:
        return (
            np.ascontiguousarray(k_obs[cells], dtype=np.int64),
            *(
                np.ascontiguousarray(x[:, cells], dtype=np.float64)
                for x in (log_mp, phi, log_p, log_1mp)
            ),
        )

    if len(pos):
        u = rng.random((n_draws, len(pos)))
        out[:, pos] = _compiled_sampler()(*columns(pos), u)
    if len(large):
        out[:, large] = _compiled_rejection_sampler()(*columns(large), int(rng.integers(2**62)))
    return out


@functools.cache
def _compiled_rejection_sampler() -> Any:
    """The rejection sampler of `sample_apprehended` for large totals, compiled on first use (numba)."""
    import math

    import numba

    @numba.njit(cache=True)
    def log_weight(a, k, f, c):  # noqa: ANN001, ANN202
        # log P(A = a | K = k) + const: NegBin(a; μp, φ) C(k − 1, a − 1) q^{k−a}(1 − q)^a up to factors free of a
        return (
            math.lgamma(a + f)
            - math.lgamma(a + 1.0)
            - math.lgamma(a)
            - math.lgamma(k - a + 1.0)
            + a * c
        )

    @numba.njit(cache=True)
    def sampler(kk, log_mp, phi, log_p, log_1mp, seed):  # noqa: ANN001, ANN202
        np.random.seed(seed)
        n_draws, n_cells = log_mp.shape
        res = np.empty((n_draws, n_cells), dtype=np.int64)
        for i in range(n_draws):
            for j in range(n_cells):
                k = kk[j]
                f = phi[i, j]
                lm = log_mp[i, j]
                c = lm - math.log(f + math.exp(lm)) + log_1mp[i, j] - log_p[i, j]
                if not (math.isfinite(c) and math.isfinite(f) and f > 0.0):
                    raise ValueError("A | K by rejection: a draw's parameters are not finite")
                # mode: w(a + 1)/w(a) = (a + φ)(k − a)/((a + 1)a) e^c = 1 is a quadratic in a
                e = math.exp(c)
                b = 1.0 - e * (k - f)
                root = (-b + math.sqrt(b * b + 4.0 * (1.0 + e) * e * f * k)) / (2.0 * (1.0 + e))
                m = min(max(int(root), 1), k)
                if m < k and log_weight(m + 1.0, k, f, c) > log_weight(float(m), k, f, c):
                    m += 1
                top = log_weight(float(m), k, f, c)
                # envelope: flat on [m − d, m + d], geometric beyond along the secants at its ends (an
                # upper bound, the weights being log-concave in a); d about one sd
                curvature = 2.0 * top - log_weight(float(max(m - 1, 1)), k, f, c)
                curvature -= log_weight(float(min(m + 1, k)), k, f, c)
                d = max(1, int(1.0 / math.sqrt(max(curvature, 1e-12))))
                lo, hi = max(m - d, 1), min(m + d, k)
                mass_mid = hi - lo + 1.0
                slope_r, slope_l = -1.0, -1.0
                if hi < k:  # ≤ 0 beyond the mode; kept below 0 for the geometric
                    slope_r = min(
                        log_weight(float(hi), k, f, c) - log_weight(hi - 1.0, k, f, c), -1e-12
                    )
                if lo > 1:
                    slope_l = min(
                        log_weight(float(lo), k, f, c) - log_weight(lo + 1.0, k, f, c), -1e-12
                    )
                edge_r = math.exp(log_weight(float(hi), k, f, c) - top) if hi < k else 0.0
                edge_l = math.exp(log_weight(float(lo), k, f, c) - top) if lo > 1 else 0.0
                mass_r = edge_r * math.exp(slope_r) / -math.expm1(slope_r) if hi < k else 0.0
                mass_l = edge_l * math.exp(slope_l) / -math.expm1(slope_l) if lo > 1 else 0.0
                total = mass_mid + mass_r + mass_l
                tries = 0
                while True:
                    tries += 1
                    if tries > 100_000:  # the envelope accepts most proposals: never a silent hang
                        raise RuntimeError("A | K by rejection: no draw accepted in 100,000 tries")
                    v = np.random.random() * total
                    if v < mass_mid:
                        a = lo + int(np.random.random() * (hi - lo + 1))
                        bound = 0.0
                    elif v < mass_mid + mass_r:
                        # j ≥ 1 steps right, P(j) ∝ e^{j·slope}: geometric
                        jj = 1 + int(math.log(np.random.random()) / slope_r)
                        a = hi + jj
                        bound = math.log(edge_r) + jj * slope_r
                    else:
                        jj = 1 + int(math.log(np.random.random()) / slope_l)
                        a = lo - jj
                        bound = math.log(edge_l) + jj * slope_l
                    if a < 1 or a > k:
                        continue
                    if math.log(np.random.random()) <= log_weight(float(a), k, f, c) - top - bound:
                        res[i, j] = a
                        break
        return res

    return sampler


@functools.cache
def _compiled_sampler() -> Any:
    """The inverse-CDF sampler of `sample_apprehended`, compiled on first use (numba is slow to import; the
    machine code is cached on disk)."""
    import numba

    # draws in parallel threads: the uniforms are drawn beforehand, so the result does not depend on the
    # threads (the same draws on one core or many)
    @numba.njit(cache=True, parallel=True)
    def sampler(kk, log_mp, phi, log_p, log_1mp, u):  # noqa: ANN001, ANN202
        n_draws, n_cells = log_mp.shape
        res = np.empty((n_draws, n_cells), dtype=np.int64)
        k_max = kk.max()
        for i in numba.prange(n_draws):
            lw = np.empty(k_max)
            for j in range(n_cells):
                k = kk[j]
                f = phi[i, j]
                lm = log_mp[i, j]
                c = lm - np.log(f + np.exp(lm)) + log_1mp[i, j] - log_p[i, j]
                lw[0] = 0.0
                top = 0.0
                for a in range(1, k):  # lw[a] is log w(a + 1) − log w(1)
                    lw[a] = lw[a - 1] + np.log((a + f) * (k - a) / ((a + 1.0) * a)) + c
                    if lw[a] > top:
                        top = lw[a]
                total = 0.0
                for a in range(k):
                    lw[a] = np.exp(lw[a] - top)
                    total += lw[a]
                target = u[i, j] * total
                acc = 0.0
                pick = k
                for a in range(k):
                    acc += lw[a]
                    if acc >= target:
                        pick = a + 1
                        break
                res[i, j] = pick
        return res

    return sampler
