"""The single-register families' Bayesian models (zero-truncated likelihood; N marginalised, drawn after).

A family is a `_Spec`: the count model (``base``) and the estimator of the unseen (``estimator``). Every family
but Chao's is Horvitz–Thompson: each observed person stands for 1/(1 − p0) people, so the unseen of pattern x
number n_x · p0/(1 − p0) in expectation. Chao's estimator (``estimator = "chao"``, on Zelterman's logistic
likelihood) extrapolates from the people seen once or twice only: under the Poisson that explains them, a
person with K ∈ {1, 2} stands for P(0)/P(K ∈ {1, 2}) = 1/(λ + λ²/2) unseen ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.special
import xarray as xr

from estim.errors import EstimInputError
from estim.families import kernels
from estim.families.base import rng_from
from estim.families.covariates import Design, refuse_rank_deficient
from estim.families.single_register.data import OBSERVED, design
from estim.priors import Prior, merge_priors

# --------------------------------------------------------------------------------------------------------------
# the families


@dataclass(frozen=True)
class _Spec:
    name: str
    base: str  # "poisson" | "geometric" | "negbin" | "zelterman" | "binomial"
    alpha: bool = False
    omega: bool = False
    estimator: str = "ht"  # "ht" (Horvitz–Thompson over all observed) | "chao" (from k ∈ {1, 2})

    @property
    def binomial(self) -> bool:
        return self.base == "binomial"

    def log_prob(
        self,
        k: np.ndarray,
        eta: Any,
        xp: Any,
        alpha: Any = None,
        omega: Any = None,
        trials: Any = None,
    ) -> Any:
        if self.base == "zelterman":
            return kernels.zelterman_log_prob(k, eta, xp)
        if self.binomial:
            return binomial_log_prob(k, eta, trials, xp)
        return kernels.log_truncated_pmf(self.base, k, eta, xp, alpha, omega)

    def log_p0(
        self, eta: Any, xp: Any, alpha: Any = None, omega: Any = None, trials: Any = None
    ) -> Any:
        if self.base == "zelterman":
            return kernels.zelterman_log_p0(eta, xp)
        if self.binomial:
            return -trials * kernels.softplus(eta, xp)
        return kernels.log_p0(self.base, eta, xp, alpha, omega)

    def support(self, n_k: int, trials: np.ndarray | None = None) -> np.ndarray:
        """Which k-cells enter the likelihood: (k,), or (pattern, k) for the binomial (k ≤ its trials t_x);
        Zelterman's and Chao's use k ∈ {1, 2} only."""
        k = np.arange(1, n_k + 1)
        if self.binomial:
            return (k[None, :] <= np.asarray(trials)[:, None]).astype(float)
        return (k <= 2).astype(float) if self.base == "zelterman" else np.ones(n_k)

    def base_count(self, f: np.ndarray) -> np.ndarray:
        """Per pattern, the observed people the unseen are extrapolated from: all of them (Horvitz–Thompson),
        or those seen once or twice (Chao)."""
        return f[:, :2].sum(axis=1) if self.estimator == "chao" else f.sum(axis=1)

    def log_unseen_odds(
        self, eta: Any, xp: Any, alpha: Any = None, omega: Any = None, trials: Any = None
    ) -> Any:
        """log of the unseen people per person of `base_count`: log p0/(1 − p0) (Horvitz–Thompson), or
        −log(λ + λ²/2) with λ = 2e^η (Chao: P(0)/P(K ∈ {1, 2}) under the Poisson)."""
        if self.estimator == "chao":
            # λ + λ²/2 = λ(1 + λ/2) = 2e^η(1 + e^η)
            return -(np.log(2.0) + eta + kernels.softplus(eta, xp))
        lp0 = self.log_p0(eta, xp, alpha, omega, trials)
        return lp0 - kernels.log1mexp(lp0, xp)

    def sampling_variance(self, f: np.ndarray, eta: np.ndarray, p0: np.ndarray) -> float:
        """The part of Var N̂ that remains with the parameters known (singleRcapture's second term of popVar):
        Horvitz–Thompson Σ n_x p0_x/(1 − p0_x)²; Chao Σ n12_x (1 − P12)(1 + e^{−λ}/P12)², P12 = P(K ∈ {1, 2})
        under the Poisson (chao.R, as written there)."""
        if self.estimator == "chao":
            lam = 2.0 * np.exp(eta)
            p12 = lam * np.exp(-lam) * (1.0 + lam / 2.0)
            return float(np.sum(self.base_count(f) * (1 - p12) * (1 + np.exp(-lam) / p12) ** 2))
        return float(np.sum(f.sum(axis=1) * p0 / (1.0 - p0) ** 2))


def binomial_log_prob(k: np.ndarray, eta: Any, trials: Any, xp: Any) -> Any:
    """log P(K = k | K ≥ 1) of a Binomial(t, p), logit p = eta, truncated at zero; cells with k > t get 0 (they
    hold nobody, and `support` leaves them out). With log p = η − softplus(η) and log(1 − p) = −softplus(η),
    k log p + (t − k) log(1 − p) = kη − t·softplus(η)."""
    k = np.asarray(k, dtype=float)
    inside = k <= trials
    # log C(t, k), 0 outside the support (the gammaln of a negative integer there is not used)
    log_choose = xp.where(
        inside,
        kernels.gammaln(trials + 1.0, xp)
        - scipy.special.gammaln(k + 1.0)
        - kernels.gammaln(xp.maximum(trials - k, 0.0) + 1.0, xp),
        0.0,
    )
    lp0 = -trials * kernels.softplus(eta, xp)
    return log_choose + k * eta + lp0 - kernels.log1mexp(lp0, xp)


def _default_priors(spec: _Spec) -> dict[str, Prior]:
    priors = {
        # log λ of the reference pattern (Zelterman, Chao: log(λ/2), the logit of P(K = 2 | K ∈ {1, 2});
        # the binomial: logit p): ±5 covers rates from ~0.01 to ~150 times per person.
        "beta_intercept": Prior("Normal", mu=0.0, sigma=2.5),
        # a covariate multiplies the rate by e^β: Normal(0, 1) keeps ratios mostly within ×1/7 … ×7.
        "beta": Prior("Normal", mu=0.0, sigma=1.0),
    }
    if spec.alpha:
        # dispersion α (variance λ(1 + αλ)): α ≈ 2 already means strong heterogeneity. When the data push
        # α → ∞ (no finite maximum, as on the Dutch immigrant data) this prior decides N: report it.
        priors["alpha"] = Prior("HalfNormal", sigma=1.0)
    if spec.omega:
        # share of one-time-only people: uniform on (0, 1).
        priors["omega"] = Prior("Beta", alpha=1.0, beta=1.0)
    return priors


def _cell_logp(value: Any, log_prob: Any, n: Any, support: Any) -> Any:
    # f_{x,k} · log P(K = k | K ≥ 1, x): one log-likelihood term per frequency cell.
    return value * log_prob * support


def replicate_cells(
    log_prob: np.ndarray,
    n: np.ndarray,
    support: np.ndarray,
    rng: np.random.Generator | None = None,
    size: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Replicated frequencies f_{x,k} over k = 1..K within the model's support: the multinomial of n_x people
    over the cells, the model's mass above K (1 − Σ P(k | k ≥ 1) over the cells) in the last cell, which then
    reads "K or more" (as the data's does when K is the largest count seen): the families' predictive draws.
    Families normalised within their support (Zelterman's and Chao's k ∈ {1, 2}, the binomial's k ≤ t) have
    no such mass. Before, the cells were renormalised, spreading the tail over every k: a zero-truncated
    Poisson's replicated f_1 came out too high by the tail's share."""
    lp = np.where(support, log_prob, -np.inf)
    total = scipy.special.logsumexp(lp, axis=-1, keepdims=True)
    tail = np.clip(-np.expm1(np.minimum(total, 0.0)), 0.0, 1.0)
    inside = np.broadcast_to(np.asarray(support, dtype=bool), lp.shape)
    last = inside.shape[-1] - 1 - np.argmax(inside[..., ::-1], axis=-1)
    is_last = np.arange(inside.shape[-1]) == last[..., None]
    with np.errstate(divide="ignore"):
        lp = np.where(is_last, np.logaddexp(lp, np.log(tail)), lp)
    return kernels.replicate_counts(lp, n, rng, size)


def _build(spec: _Spec):
    def build(
        data: xr.Dataset,
        priors: Mapping[str, Prior] | None = None,
        *,
        covariates: Sequence[str] | None = None,
    ) -> pm.Model:
        d = design(data, covariates)
        refuse_unread_terms(spec, data, d)
        x, terms = d.matrix, list(d.terms)
        defaults = _default_priors(spec)
        if not terms:
            defaults.pop("beta")
        p = merge_priors(defaults, priors)
        f = data[OBSERVED].values.astype(np.int64)
        k = data["k"].values
        trials = pattern_trials(spec, data)
        support = spec.support(len(k), trials)
        n_x = (f * support).sum(axis=1, keepdims=True)
        trials = None if trials is None else trials[:, None].astype(float)
        coords = {"pattern": data["pattern"].values.tolist(), "k": k.tolist()}
        if terms:
            coords["term"] = terms
        with pm.Model(coords=coords) as model:
            eta = p["beta_intercept"].create("beta_intercept")
            if terms:
                beta = p["beta"].create("beta", dims="term")
                if np.any(d.center != 0.0) or np.any(d.scale != 1.0):
                    # the report reads coefficients in the covariates' own units (Design.original_scale)
                    pm.Deterministic(
                        "beta_intercept_original", eta - pt.dot(beta, d.center / d.scale)
                    )
                    pm.Deterministic("beta_original", beta / d.scale, dims="term")
                eta = eta + pt.dot(pt.as_tensor(x), beta)
            else:
                eta = pt.ones(len(f)) * eta
            alpha = p["alpha"].create("alpha") if spec.alpha else None
            omega = p["omega"].create("omega") if spec.omega else None
            log_prob = spec.log_prob(k[None, :], eta[:, None], pt, alpha, omega, trials)
            pm.CustomDist(
                OBSERVED,
                log_prob,
                pt.as_tensor(n_x.astype(np.int64)),
                pt.as_tensor(support if support.ndim == 2 else support[None, :]),
                logp=_cell_logp,
                random=replicate_cells,
                observed=f,
                dims=("pattern", "k"),
            )
        return model

    return build


def refuse_unread_terms(spec: _Spec, data: xr.Dataset, d: Design) -> None:
    """Zelterman's and Chao's likelihood reads only the people seen once or twice: a term that takes one value
    among them (a level whose people were all seen 3 or more times), or is a linear combination of the others
    there, has a coefficient the data say nothing about. The posterior then returns its prior, and Zelterman's
    N̂, which extrapolates every observed person, is set by that prior for the level's people (the ML fit is
    singular there); refused before sampling, naming the term."""
    if spec.base != "zelterman" or not d.terms:
        return
    f = data[OBSERVED].values
    read = f[:, :2].sum(axis=1) > 0
    if not read.any():
        return  # nobody seen once or twice: nothing to fit (refused as such elsewhere)
    who = "generalised Chao" if spec.estimator == "chao" else "Zelterman's regression"
    constant = [t for t, col in zip(d.terms, d.matrix[read].T, strict=True) if np.ptp(col) == 0.0]
    if constant:
        shown = ", ".join(repr(t) for t in constant)
        raise EstimInputError(
            f"term(s) {shown} take one value among the people seen once or twice, the only ones {who} reads "
            "(the people that set them apart were all seen 3 or more times): the data say nothing about "
            "their coefficients, which would be their priors"
            + ("" if spec.estimator == "chao" else ", and so would N for those people")
            + "; merge such a level into another one, or leave the covariate (or interaction) out"
        )
    refuse_rank_deficient(
        d.matrix[read], d.terms, "among the people seen once or twice (all " + who + " reads)"
    )


def pattern_trials(spec: _Spec, data: xr.Dataset) -> np.ndarray | None:
    """The binomial's number of occasions t_x per pattern (coordinate ``trials``); None for other families."""
    if not spec.binomial:
        return None
    if "trials" not in data.coords:
        raise EstimInputError(
            f"family {spec.name!r} needs the number of occasions per pattern (coordinate 'trials'; "
            "[data] trials or trials_column)"
        )
    return data["trials"].values.astype(np.int64)


def _posterior_dataset(posterior: Any) -> xr.Dataset:
    if isinstance(posterior, xr.Dataset):
        return posterior
    if isinstance(posterior, xr.DataTree):
        node = posterior["posterior"] if "posterior" in posterior.children else posterior
        return node.to_dataset()
    raise TypeError(
        f"posterior must be an xarray DataTree or Dataset, not {type(posterior).__name__}"
    )


POISSON_LIMIT = 1e15


def _poisson(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Poisson draws; above `POISSON_LIMIT` (beyond NumPy's range, where the relative sd is < 3e-8) the rate
    itself, capped below the int64 limit: such a draw of N says only that the model has no finite N."""
    draws = rng.poisson(
        np.minimum(np.nan_to_num(rate, nan=0.0, posinf=POISSON_LIMIT), POISSON_LIMIT)
    )
    huge = ~(rate <= POISSON_LIMIT)
    if huge.any():
        draws = np.where(huge, np.minimum(np.nan_to_num(rate, nan=4e18, posinf=4e18), 4e18), draws)
    return draws.astype(np.int64)


def _population(spec: _Spec):
    def population(
        data: xr.Dataset,
        posterior: Any,
        rng: int | np.random.Generator | None = None,
        *,
        covariates: Sequence[str] | None = None,
    ) -> xr.DataArray:
        """Draws of N = Σ_x N_x with N_x − n_x | θ ~ NegativeBinomial(n_x, 1 − p0_x) (prior 1/N_x).

        Drawn as the gamma–Poisson mixture it is: N_x − n_x = Poisson(G_x) with G_x ~ Gamma(n_x, scale
        p0_x/(1 − p0_x)), so the unseen total of a draw is one Poisson(Σ_x G_x). Exact, and a gamma draw per
        pattern (an exponential where n_x = 1, the usual case with continuous covariates) is several times
        cheaper than a negative-binomial one.

        Chao: the same argument among the people with K ∈ {0, 1, 2}, of whom the n12_x seen once or twice are
        the successes with probability P(K ∈ {1, 2})/P(K ≤ 2): the unseen are NegativeBinomial(n12_x,
        that probability), mean n12_x/(λ + λ²/2) (Chao's N̂ at the draw's λ), plus every observed person."""
        rng = rng_from(rng)
        post = _posterior_dataset(posterior)
        x = design(data, covariates).matrix
        intercept = post["beta_intercept"].values  # (chain, draw)
        beta = (
            post["beta"].transpose("chain", "draw", "term").values
            if x.shape[1]
            else np.zeros((*intercept.shape, 0))
        )
        alpha = post["alpha"].values if spec.alpha else None
        omega = post["omega"].values if spec.omega else None
        # Zelterman's N̂ counts every observed person, not only those seen once or twice; Chao's extrapolates
        # from those seen once or twice and adds everyone observed.
        f = data[OBSERVED].values
        n_x, base = f.sum(axis=1), spec.base_count(f)
        trials = pattern_trials(spec, data)
        total = np.empty(intercept.shape, dtype=np.int64)
        # a block of draws at a time: draws × patterns stays small with thousands of patterns
        rows = max(1, 1_000_000 // max(len(n_x), 1))
        for c in range(intercept.shape[0]):
            for s in range(0, intercept.shape[1], rows):
                block = slice(s, s + rows)
                eta = intercept[c, block, None] + beta[c, block] @ x.T
                a = alpha[c, block, None] if spec.alpha else None
                o = omega[c, block, None] if spec.omega else None
                odds = np.exp(spec.log_unseen_odds(eta, np, a, o, trials))
                rate = (rng.standard_gamma(np.broadcast_to(base, eta.shape)) * odds).sum(axis=-1)
                total[c, block] = _poisson(rng, rate) + n_x.sum()
        return xr.DataArray(
            total.astype(np.int64),
            dims=("chain", "draw"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values},
            name="N",
        )

    return population
