"""Profile-likelihood estimate and 95 % interval of N for a single-register model without covariates.

With one covariate pattern, the people of the population are N independent draws of K, of which the n with
K ≥ 1 are seen, f_k of them exactly k times. The full (unconditional) likelihood in N and the count model's
parameters θ is the multinomial

    L(N, θ) = N! / ((N − n)! Π_k f_k!) · p0(θ)^(N − n) · Π_k P_k(θ)^{f_k},

with P_k the untruncated (for the one-inflated models, inflated) probability of k and p0 that of 0. The
profile log-likelihood ℓ_p(N) = max_θ log L(N, θ) is maximised at N̂_profile, and the 95 % interval is
{N : 2(ℓ_p(N̂_profile) − ℓ_p(N)) ≤ χ²₁(0.95)} (Cormack 1992; N continuous through lgamma). It is not symmetric
around N̂: the likelihood falls steeply towards N = n, where nobody would be left unseen, and slowly towards
large N. An end the likelihood does not bound (it stays within χ²₁(0.95)/2 of its maximum as N → ∞, as it
does where the conditional fit runs to a boundary) is reported as inf.

N̂_profile is close to, but not the same as, the conditional Horvitz–Thompson N̂ that `mle` reports: the
conditional likelihood is the full one with N integrated out under p(N) ∝ 1/N (see the package docstring).

The inner maximisation over θ (one or two parameters) is done in NumPy with the families' own kernels, started
from the θ of the nearest N already profiled; no compiled graph is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from estim.families import kernels
from estim.families.single_register.model import _Spec

METHOD = "profile likelihood (full likelihood in N)"
CHI2_95 = float(scipy.stats.chi2.ppf(0.95, 1))
# N − n beyond this many times n is "unbounded": the same limit as the ML fit's N_HAT_RATIO_LIMIT
UNBOUNDED_RATIO = 1e6
LOG_ALPHA_BOUNDS = (-15.0, 15.0)
WIDEN_STEPS = 80


class FullLikelihood:
    """log L(N, θ) of one covariate pattern's frequencies f_1..f_K, and its profile ℓ_p(N) = max_θ log L(N, θ).

    θ = (η[, ψ]) as in the ML fit: η = log λ (logit p for the binomial), ψ = log α (negative binomial) or
    logit ω (one-inflated models)."""

    def __init__(self, spec: _Spec, f: Any, trials: int | None = None) -> None:
        if spec.base == "zelterman":
            raise ValueError(f"family {spec.name!r} has no likelihood in N")
        self.spec = spec
        self.f = np.asarray(f, dtype=float).reshape(-1)
        self.k = np.arange(1, len(self.f) + 1, dtype=float)
        self.n = float(self.f.sum())
        self.trials = None if trials is None else float(trials)
        self.constant = -float(scipy.special.gammaln(self.f + 1.0).sum())
        self.size = 2 if (spec.alpha or spec.omega) else 1
        self._solved: dict[float, np.ndarray] = {}

    def _parts(self, theta: np.ndarray) -> tuple[float, float]:
        """(log p0, Σ_k f_k log P_k) at θ."""
        spec, eta = self.spec, float(theta[0])
        alpha = omega = None
        if spec.alpha:
            alpha = float(np.exp(np.clip(theta[1], *LOG_ALPHA_BOUNDS)))
        if spec.omega:
            omega = float(scipy.special.expit(theta[1]))
        lp0 = float(spec.log_p0(eta, np, alpha, omega, self.trials))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_seen = float(kernels.log1mexp(lp0, np)) if lp0 < 0 else -np.inf
            log_trunc = spec.log_prob(self.k, eta, np, alpha, omega, self.trials)
            cells = float(np.sum(np.where(self.f > 0, self.f * (log_trunc + log_seen), 0.0)))
        return lp0, cells

    def loglik(self, n_total: float, theta: Any) -> float:
        """log L(N, θ), with N = ``n_total`` ≥ n (continuous)."""
        if n_total < self.n:
            return -np.inf
        lp0, cells = self._parts(np.atleast_1d(np.asarray(theta, dtype=float)))
        unseen = n_total - self.n
        value = (
            scipy.special.gammaln(n_total + 1.0)
            - scipy.special.gammaln(unseen + 1.0)
            + self.constant
            + (unseen * lp0 if unseen > 0 else 0.0)
            + cells
        )
        return float(value) if np.isfinite(value) else -np.inf

    def profile(self, n_total: float, start: Any | None = None) -> float:
        """ℓ_p(N) = max_θ log L(N, θ), started at ``start`` or at the θ of the nearest N profiled so far."""
        n_total = float(n_total)
        if start is None:
            start = self._nearest(n_total)
        start = np.atleast_1d(np.asarray(start, dtype=float))

        def negative(theta: Any) -> float:
            value = self.loglik(n_total, theta)
            return -value if np.isfinite(value) else 1e300

        if self.size == 1:
            e0 = float(start[0])
            res = scipy.optimize.minimize_scalar(
                lambda e: negative(np.array([e])), bracket=(e0 - 0.05, e0 + 0.05), tol=1e-10
            )
            theta, value = np.array([res.x]), -float(res.fun)
        else:
            res = scipy.optimize.minimize(
                negative,
                start,
                method="Nelder-Mead",
                options={
                    "xatol": 1e-9,
                    "fatol": 1e-11,
                    "maxiter": 4000,
                    "initial_simplex": start + np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]]),
                },
            )
            theta, value = np.asarray(res.x, dtype=float), -float(res.fun)
        self._solved[n_total] = theta
        return value

    def _nearest(self, n_total: float) -> np.ndarray:
        if not self._solved:
            raise ValueError("no starting θ: give start")
        keys = np.array(list(self._solved))
        # nearest on the scale of the unseen, log(1 + N − n)
        distance = np.abs(np.log1p(keys - self.n) - np.log1p(n_total - self.n))
        return self._solved[float(keys[np.argmin(distance)])]


def profile_likelihood(
    spec: _Spec, f: Any, trials: int | None, theta: Any
) -> dict[str, Any] | None:
    """N̂_profile and its 95 % profile-likelihood interval (ends by brentq on brackets widened geometrically
    in N − n from N̂_profile; an unbounded end is inf), from the conditional ML θ̂ as the starting point.

    Returns ``{"n_hat", "ci95", "method"}`` (`estim.families.base.MLEResult.profile`), or None when the
    frequencies give no finite likelihood to profile."""
    full = FullLikelihood(spec, f, trials)
    n = full.n
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    if spec.alpha:
        theta = np.r_[theta[0], np.clip(theta[1], *LOG_ALPHA_BOUNDS)]
    lp0, _ = full._parts(theta)
    m_top = UNBOUNDED_RATIO * n
    # the conditional N̂'s unseen, as the first guess of the profile's
    m0 = float(np.exp(lp0 - kernels.log1mexp(lp0, np)) * n) if lp0 < 0 else m_top
    # (below the top, so that the walk below can tell rising from flat)
    m0 = float(np.clip(m0, 1e-6 * n, m_top / 10))
    if not np.isfinite(full.profile(n + m0, start=theta)):
        return None

    def lp(m: float) -> float:
        return full.profile(n + m)

    # maximise ℓ_p over u = log(N − n): walk uphill with doubling steps until it turns down
    u_top, u_bottom = np.log(m_top), np.log(1e-9 * n)
    u0, h = np.log(m0), 0.02
    values = {u0: lp(m0)}

    def g(u: float) -> float:
        if u not in values:
            values[u] = lp(float(np.exp(u)))
        return values[u]

    direction = 1.0 if g(u0 + h) > g(u0) else (-1.0 if g(u0 - h) > g(u0) else 0.0)
    if direction == 0.0:
        bracket = (u0 - h, u0, u0 + h)
    else:
        previous, current, step = u0 - direction * h, u0, h
        bracket = None
        for _ in range(WIDEN_STEPS):
            step *= 2
            following = float(np.clip(current + direction * step, u_bottom, u_top))
            if following == current:
                break
            if g(following) <= g(current):
                bracket = tuple(sorted((previous, current, following)))
                break
            if following in (u_top, u_bottom):
                break
            previous, current = current, following
    if bracket is None and direction > 0:
        # still rising at N − n = 10⁶ n: the likelihood has no finite maximum in N
        top = g(u_top)
        n_hat, loglik_hat = np.inf, top
    elif bracket is None:
        n_hat, loglik_hat = n, lp(0.0)
    else:
        res = scipy.optimize.minimize_scalar(
            lambda u: -g(float(u)), bracket=(bracket[0], bracket[1], bracket[2]), tol=1e-10
        )
        n_hat, loglik_hat = n + float(np.exp(res.x)), -float(res.fun)
    loglik_hat = max(loglik_hat, *values.values())

    def excess(m: float) -> float:
        """2(ℓ̂ − ℓ_p) − χ²₁(0.95): negative inside the interval."""
        return 2.0 * (loglik_hat - lp(m)) - CHI2_95

    m_hat = n_hat - n if np.isfinite(n_hat) else m_top
    # lower end: halve N − n until outside (or N = n is inside: then the interval starts at n)
    lower = n
    inside, outside = m_hat, None
    m = m_hat
    for _ in range(WIDEN_STEPS):
        m /= 2
        if m < 1e-9 * n:
            if excess(0.0) > 0:
                outside = 0.0
            break
        if excess(m) > 0:
            outside = m
            break
        inside = m
    if outside is not None:
        lower = n + scipy.optimize.brentq(excess, outside, inside, xtol=1e-8 * n, rtol=1e-12)
    upper = np.inf
    if np.isfinite(n_hat):
        inside = m = max(m_hat, 1e-6 * n)
        for _ in range(WIDEN_STEPS):
            m *= 2
            if m > m_top:
                break
            if excess(m) > 0:
                upper = n + scipy.optimize.brentq(excess, inside, m, xtol=1e-8 * n, rtol=1e-12)
                break
            inside = m
    return {"n_hat": float(n_hat), "ci95": (float(lower), float(upper)), "method": METHOD}
