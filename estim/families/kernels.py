"""Likelihood pieces shared by the model families, written once for both NumPy and PyTensor.

Every function takes the array namespace ``xp`` (``numpy`` or ``pytensor.tensor``) so the same formula serves
the PyMC model, the maximum-likelihood objective (compiled PyTensor with exact gradients) and the NumPy
post-processing that draws N from a posterior. Everything is on the log scale.

Count distributions are parameterised by their mean λ = exp(η):

* Poisson: P(k) = λ^k e^{−λ} / k!, p0 = e^{−λ};
* geometric: P(k) = λ^k / (1 + λ)^{k+1}, p0 = 1 / (1 + λ);
* negative binomial with dispersion α (variance λ(1 + αλ), size 1/α): p0 = (1 + αλ)^{−1/α}.

One-inflation (singleRcapture's ``oizt*`` models: inflate first, then truncate) mixes a point mass at 1 with
weight ω into the *untruncated* count, P*(1) = ω + (1 − ω)P(1), P*(k) = (1 − ω)P(k) for k ≠ 1, so
p0* = (1 − ω)p0; the observed counts follow P*(k) / (1 − p0*), k ≥ 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special

BASE_COUNTS = ("poisson", "geometric", "negbin")


def gammaln(x: Any, xp: Any) -> Any:
    return xp.gammaln(x) if hasattr(xp, "gammaln") else scipy.special.gammaln(x)


def softplus(x: Any, xp: Any) -> Any:
    """log(1 + e^x) without overflow."""
    return xp.softplus(x) if hasattr(xp, "softplus") else np.logaddexp(0.0, x)


LOG_HALF = float(np.log(0.5))


def log1mexp(x: Any, xp: Any) -> Any:
    """log(1 − e^x) for x ≤ 0, to full relative precision over the whole range (Mächler 2012): log(−expm1 x)
    above x = −log 2, where 1 − e^x would lose every digit as x → 0 (p0 → 1), and log1p(−e^x) below, where
    1 − e^x rounds to 1 and its logarithm to 0 (from x ≈ −37 on; at −20 half the digits were gone). −inf at
    x = 0 (NumPy's divide-by-zero warning, as log 0), 0 at x = −inf, nan above 0.

    PyTensor's own `log1mexp` is the same formula (and what its rewrites made of log(−expm1 x) before)."""
    if xp is not np:
        return xp.log1mexp(x)
    if isinstance(x, float | int | np.floating | np.integer):
        # one number (the profile likelihood's inner loop calls this thousands of times): `math`, many times
        # faster on a scalar than NumPy's array machinery
        v = float(x)
        if v < LOG_HALF:
            return np.float64(math.log1p(-math.exp(v)))
        if v < 0.0:
            return np.float64(math.log(-math.expm1(v)))
        x = np.float64(v)  # 0, above 0 or nan: NumPy's −inf, nan and warnings, as before
    x = np.asarray(x, dtype=float)
    # each branch on inputs clamped to its own side, so that the one not taken warns of nothing
    near = np.log(-np.expm1(np.maximum(x, LOG_HALF)))
    far = np.log1p(-np.exp(np.minimum(x, LOG_HALF)))
    out = np.where(x < LOG_HALF, far, near)  # nan in stays nan (x < LOG_HALF is False: `near`)
    return out[()] if out.ndim == 0 else out


def log_pmf(base: str, k: np.ndarray, eta: Any, xp: Any, alpha: Any = None) -> Any:
    """log P(K = k) of the untruncated count with mean exp(eta); k broadcasts against eta."""
    k = np.asarray(k, dtype=float)
    # lgamma(k + 1) is constant in the parameters: computed once in NumPy, outside the graph.
    lkf = scipy.special.gammaln(k + 1.0)
    if base == "poisson":
        return k * eta - xp.exp(eta) - lkf
    if base == "geometric":
        return k * eta - (k + 1.0) * softplus(eta, xp)
    if base == "negbin":
        r = 1.0 / alpha
        # log(λ/(r+λ)) = η − log(r + λ); log(r/(r+λ)) = −log1p(αλ)
        log_r_plus_lam = xp.log(r + xp.exp(eta))
        return (
            gammaln(k + r, xp)
            - gammaln(r, xp)
            - lkf
            - r * xp.log1p(alpha * xp.exp(eta))
            + k * (eta - log_r_plus_lam)
        )
    raise ValueError(f"unknown count distribution {base!r}")


def log_p0(base: str, eta: Any, xp: Any, alpha: Any = None, omega: Any = None) -> Any:
    """log P(K = 0): the log probability that a person with linear predictor eta is never seen."""
    if base == "poisson":
        lp0 = -xp.exp(eta)
    elif base == "geometric":
        lp0 = -softplus(eta, xp)
    elif base == "negbin":
        lp0 = -xp.log1p(alpha * xp.exp(eta)) / alpha
    else:
        raise ValueError(f"unknown count distribution {base!r}")
    if omega is not None:
        lp0 = lp0 + xp.log1p(-omega)
    return lp0


SMALL_MEAN_ETA = -30.0
"""Below this log-mean, log(1 − p0) is taken from its expansion in λ = e^η (relative error < λ ≈ 1e-13)."""


def log_seen(base: str, eta: Any, xp: Any, alpha: Any = None) -> Any:
    """log(1 − p0) = log P(K ≥ 1) of the untruncated count, finite however small its mean λ = e^η.

    log1mexp(log p0) is exact in principle, but once λ is below ~1e-308 p0 rounds to 1 and it returns −∞,
    so that a truncated law log P(k) − log(1 − p0) came out +∞, a point a sampler accepts (the border model's
    repeat counts reach it when r·p underflows, r → 0). Geometric: log(λ/(1 + λ)),
    exactly. Poisson and negative binomial: their expansion η − (1 + α)λ/2 (α = 0 for the Poisson) below
    η = `SMALL_MEAN_ETA`, log1mexp above (its input clamped there, so the branch not taken has a finite
    gradient)."""
    if base == "geometric":
        return eta - softplus(eta, xp)
    if base not in ("poisson", "negbin"):
        raise ValueError(f"unknown count distribution {base!r}")
    safe = xp.maximum(eta, SMALL_MEAN_ETA)
    curvature = 1.0 if base == "poisson" else 1.0 + alpha
    return xp.where(
        eta < SMALL_MEAN_ETA,
        eta - 0.5 * curvature * xp.exp(eta),
        log1mexp(log_p0(base, safe, xp, alpha), xp),
    )


def log_truncated_pmf(
    base: str, k: np.ndarray, eta: Any, xp: Any, alpha: Any = None, omega: Any = None
) -> Any:
    """log P(K = k | K ≥ 1) for k ≥ 1, optionally one-inflated (ω); finite for any finite η (`log_seen`)."""
    lp = log_pmf(base, k, eta, xp, alpha)
    if omega is None:
        return lp - log_seen(base, eta, xp, alpha)
    inflated_one = xp.logaddexp(xp.log(omega), xp.log1p(-omega) + lp)
    lp = xp.where(np.asarray(k) == 1, inflated_one, xp.log1p(-omega) + lp)
    return lp - log1mexp(log_p0(base, eta, xp, alpha, omega), xp)


def zelterman_log_prob(k: np.ndarray, eta: Any, xp: Any) -> Any:
    """Zelterman's local model: among people seen once or twice, P(K = 2 | K ∈ {1, 2}) = λ/(2 + λ) with
    λ = 2 exp(eta), i.e. a logistic regression with logit eta. Cells with k ≥ 3 carry log-probability 0 (they
    do not enter this likelihood)."""
    k = np.asarray(k)
    return xp.where(k == 1, -softplus(eta, xp), xp.where(k == 2, -softplus(-eta, xp), 0.0 * eta))


def zelterman_log_p0(eta: Any, xp: Any) -> Any:
    """log P(K = 0) = −λ under the Poisson that Zelterman's λ = 2 f2/f1 estimates locally."""
    return -2.0 * xp.exp(eta)


def replicate_counts(
    log_prob: np.ndarray,
    n: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, ...] | None = None,
    remainder: bool = False,
) -> np.ndarray:
    """Replicated cell counts: each row's n people spread multinomially over its cells.

    By default with probabilities proportional to exp(log_prob) renormalised over the cells given (cells absent
    from the data — counts above the largest k, histories nobody showed — are not replicated, and the mass they
    carry is moved onto the others). Normalised in log space, because at extreme prior draws every
    exp(log_prob) underflows to 0 and a plain normalisation gives 0/0.

    ``remainder=True``: `log_prob` are the model's own probabilities of the cells given, summing to at most
    one over them; the mass 1 − Σ exp(log_prob) (of cells absent from the data) is one more multinomial cell,
    dropped from the result. Each given cell's replicate then has its exact marginal law Binomial(n, P(cell)),
    and the replicates of a row sum to n less those who fell on absent cells. On cells that exhaust the
    outcomes (Σ = 1 up to rounding), the same draws as the default."""
    if remainder:
        total = scipy.special.logsumexp(log_prob, axis=-1, keepdims=True)
        # rounding may put Σ a hair above 1: then nothing is left over, and the cells are renormalised
        scale = np.maximum(total, 0.0)
        p = np.exp(log_prob - scale)
        rest = np.clip(-np.expm1(np.minimum(total, 0.0)), 0.0, 1.0)
        p = np.concatenate([p, rest], axis=-1)
        p = p / p.sum(axis=-1, keepdims=True)
        shape = tuple(size) if size is not None else np.broadcast_shapes(log_prob.shape, n.shape)
        wide = (*shape[:-1], shape[-1] + 1)
        n_b = np.broadcast_to(n, shape)[..., 0]
        return rng.multinomial(n_b, np.broadcast_to(p, wide))[..., :-1].astype(np.int64)
    lp = log_prob - np.max(log_prob, axis=-1, keepdims=True)
    p = np.exp(lp)
    p = p / p.sum(axis=-1, keepdims=True)
    shape = tuple(size) if size is not None else np.broadcast_shapes(p.shape, n.shape)
    n_b = np.broadcast_to(n, shape)[..., 0]
    return rng.multinomial(n_b, np.broadcast_to(p, shape)).astype(np.int64)


def population_given_p_unseen(n: np.ndarray, posterior: Any, rng: np.random.Generator) -> Any:
    """Draws of N per stratum from the posterior's ``p_unseen`` (chain, draw, stratum): N = n +
    NegativeBinomial(n, 1 − P(0)), the law of N given P(0) under the prior p(N) ∝ 1/N.

    numpy's negative_binomial(n, p) counts failures before the n-th success (success probability p). An empty
    stratum (n = 0) has an improper posterior for N under the 1/N prior: its N is 0, not a number drawn from
    nothing."""
    import xarray as xr

    post = posterior.dataset if hasattr(posterior, "dataset") else posterior
    p0 = post["p_unseen"].transpose("chain", "draw", "stratum").values
    n = np.asarray(n, dtype=np.int64)
    unseen = rng.negative_binomial(np.maximum(n, 1), np.clip(1.0 - p0, 1e-300, 1.0))
    unseen = np.where(n > 0, unseen, 0)
    return xr.DataArray(
        n[None, None, :] + unseen,
        dims=("chain", "draw", "stratum"),
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "stratum": post["stratum"].values,
        },
        name="N",
    )


def history_cell_logp(value: Any, log_cond: Any) -> Any:
    """One term per (stratum, history) cell, n_sh · log P(h | seen) (the multinomial coefficient is a
    constant); a cell nobody showed adds 0, not 0 · (−inf) = nan where P(h) underflows (Mb with c → 0, say)."""
    import pytensor.tensor as pt

    return pt.switch(pt.gt(value, 0), value * log_cond, 0.0)


def observed_histories(name: str, log_cond: Any, counts: np.ndarray) -> Any:
    """The observed cell counts (stratum, history) of a model in context, with one log-likelihood term per
    cell, count · log P(cell | seen) (the multinomial coefficient is a constant; a cell nobody showed adds 0,
    not 0 · (−inf) = nan where P underflows), and replicates that spread each stratum's n people over the
    model's cells with their P(cell | seen) (`replicate_counts` with ``remainder=True``).

    `log_cond` must be the model's own log P(cell | seen), normalised over every cell of the model, those
    absent from `counts` included: the cells given then carry at most all the mass, and whoever falls on the
    others is in no cell (the log-linear and latent-class models complete `counts` to every history up to
    `COMPLETE_OCCASIONS`, `complete_histories`, so that nothing is left over there)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_seen = np.asarray(counts).sum(axis=1, keepdims=True).astype(np.int64)
    return pm.CustomDist(
        name,
        log_cond,
        pt.as_tensor(n_seen),
        logp=lambda value, log_cond, n: history_cell_logp(value, log_cond),
        random=lambda log_cond, n, rng=None, size=None: replicate_counts(
            log_cond, n, rng, size, remainder=True
        ),
        observed=counts,
        dims=("stratum", "history"),
    )


# the closed-population data's names (`estim.families.closed.data`): the counts (stratum, history), and an f_k
# table's number of histories per k cell
HISTORY_COUNT = "history_count"
MULTIPLICITY = "multiplicity"
COMPLETE_OCCASIONS = 10
"""Up to this many occasions (lists) the models' cells are all 2^t − 1 histories (1,023 at t = 10): the Otis
families' (`estim.families.closed.model`), the log-linear (`estim.families.loglinear.model`) and the
latent-class (`estim.families.lists.latent_class`). Beyond, the cells double with each occasion while the
histories seen do not: the Mth/Mtbh likelihood costs cells × nodes × t,
and 4,000 predictive draws of 2,047 cells exceed the 5 MB a stored group may take (`estim.run.compact`:
history counts are never summed, so the draws are thinned to ~600); the observed histories and the unseen
histories' mass are replicated instead."""


def complete_histories(data: Any) -> Any:
    """`data` over all 2^t − 1 observable histories, zero counts for those nobody showed, when t ≤
    `COMPLETE_OCCASIONS`: the data's histories first, in their order (so that the cells with people are the
    data's, in the data's order), then the others in decreasing binary value. `data` itself when they are
    all there already, for an f_k table (its cells are k = 1…t, zeros included) and beyond the cap."""
    import xarray as xr

    t = data.sizes["occasion"]
    if MULTIPLICITY in data or t > COMPLETE_OCCASIONS or data.sizes["history"] == 2**t - 1:
        return data
    labels = [str(h) for h in data["history"].values]
    codes = np.arange(2**t - 1, 0, -1, dtype=np.int64)
    every = [format(int(c), f"0{t}b") for c in codes]
    if len(set(labels)) != len(labels) or not set(labels) <= set(every):
        return data  # not 0/1 labels of the occasions: left as they are (`_check` judges them)
    shown = set(labels)
    full = labels + [h for h in every if h not in shown]
    counts = data[HISTORY_COUNT].transpose("stratum", "history").values
    out = np.zeros((counts.shape[0], len(full)), dtype=np.int64)
    out[:, : len(labels)] = counts
    capture = np.array([[int(c) for c in h] for h in full], dtype=np.int8)
    ds = xr.Dataset(
        {
            HISTORY_COUNT: (("stratum", "history"), out),
            "capture": (("history", "occasion"), capture),
        },
        coords={
            "stratum": data["stratum"].values,
            "history": full,
            "occasion": data["occasion"].values,
        },
    )
    ds.attrs = dict(data.attrs)
    return ds
