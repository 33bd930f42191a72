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
does where the conditional fit runs to a boundary) is reported as inf; a profile flat over the whole range (N
not identified: one person seen once, under the Poisson) has no N̂_profile (nan) and the interval [n, inf).

N̂_profile is close to, but not the same as, the conditional Horvitz–Thompson N̂ that `mle` reports: the
conditional likelihood is the full one with N integrated out under p(N) ∝ 1/N (see the package docstring).

The inner maximisation over θ is done in NumPy with the families' own kernels; no compiled graph is needed.
For the one-inflated models the inflation ω is maximised in closed form at each (N, λ) (`FullLikelihood.
omega_at`), so that the search is over λ alone: a two-parameter Nelder–Mead from the nearest N's θ could stop
short of the maximum on their ridge, which made ℓ_p depend on the order in which N was visited and put the
interval's ends in the wrong place (or none: a bracket without a sign change). For the negative binomial λ
has a closed form at each (N, α) (`FullLikelihood._negbin_theta`), and log α is searched over its whole range.
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
# ℓ_p that varies less than this over N − n from 10⁻⁹ n to 10⁶ n (on FLAT_GRID points) is flat: far below the
# χ²₁(0.95)/2 = 1.92 that sets the interval, and far above the inner fits' rounding (~10⁻¹¹ here)
FLAT_TOLERANCE = 1e-6
FLAT_GRID = 25


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

    def omega_at(self, n_total: float, eta: float) -> float:
        """The one-inflation ω that maximises L(N, λ, ω) at fixed N and λ = e^η.

        With a = 1 − ω, P(0) = a·P₀, P(1) = 1 − a(1 − P₁) and P(k) = a·P_k for k ≥ 2 (P the base law), so
        log L = (N − f₁) log a + f₁ log(1 − a(1 − P₁)) + terms free of a: concave in a, stationary at
        a = (N − f₁)/(N(1 − P₁)), and a ≤ 1 (ω ≥ 0) holds it at 1 beyond."""
        base = self.spec.base
        miss_one = -float(np.expm1(kernels.log_pmf(base, np.array([1.0]), eta, np)[0]))  # 1 − P₁
        f1 = float(self.f[0])
        a = min(1.0, (n_total - f1) / (n_total * miss_one)) if miss_one > 0 else 1.0
        return 1.0 - a

    def _omega_theta(self, n_total: float, eta: float) -> np.ndarray:
        """θ = (η, logit ω) with ω maximised out; logit ω is clipped to ±40 (ω = 0 or 1 to double precision)."""
        omega = self.omega_at(n_total, eta)
        psi = float(np.clip(scipy.special.logit(omega), -40.0, 40.0))
        return np.array([eta, psi])

    def _negbin_theta(self, n_total: float, log_alpha: float) -> np.ndarray:
        """θ = (η, log α) with λ = e^η maximised out. At fixed N and α the negative binomial's log L is, in η,
        Sη − (N/α + S) log(1 + αe^η) + const (S = Σ k f_k): concave, with its maximum at λ = S/N, the mean
        count over all N people, whatever α."""
        total = float(np.sum(self.k * self.f))
        return np.array([np.log(total / n_total), log_alpha])

    def profile(self, n_total: float, start: Any | None = None) -> float:
        """ℓ_p(N) = max_θ log L(N, θ), started at ``start`` or at the θ of the nearest N profiled so far."""
        n_total = float(n_total)
        if start is None:
            start = self._nearest(n_total)
        start = np.atleast_1d(np.asarray(start, dtype=float))

        def negative(theta: Any) -> float:
            value = self.loglik(n_total, theta)
            return -value if np.isfinite(value) else 1e300

        if self.spec.omega:
            # ω in closed form, then a one-dimensional search over η
            e0 = float(start[0])
            res = scipy.optimize.minimize_scalar(
                lambda e: negative(self._omega_theta(n_total, float(e))),
                bracket=(e0 - 0.05, e0 + 0.05),
                tol=1e-10,
            )
            theta = self._omega_theta(n_total, float(res.x))
            value = -negative(theta)
        elif self.size == 1:
            e0 = float(start[0])
            res = scipy.optimize.minimize_scalar(
                lambda e: negative(np.array([e])), bracket=(e0 - 0.05, e0 + 0.05), tol=1e-10
            )
            theta, value = np.array([res.x]), -float(res.fun)
        else:
            # negative binomial: λ in closed form (`_negbin_theta`), then log α over its range: a grid a
            # half-unit apart, refined around the best point by a bounded Brent search
            grid = np.linspace(*LOG_ALPHA_BOUNDS, 61)
            values = [negative(self._negbin_theta(n_total, psi)) for psi in grid]
            best = int(np.argmin(values))
            low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
            res = scipy.optimize.minimize_scalar(
                lambda psi: negative(self._negbin_theta(n_total, float(psi))),
                bounds=(low, high),
                method="bounded",
                options={"xatol": 1e-9},
            )
            psi = float(res.x) if res.fun <= values[best] else float(grid[best])
            theta = self._negbin_theta(n_total, psi)
            value = -negative(theta)
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
    frequencies give no finite likelihood to profile. A flat profile (`_flat`: the data do not identify N)
    has no maximum: ``n_hat`` is nan and the interval all of [n, inf)."""
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
    elif g(bracket[1]) > max(g(bracket[0]), g(bracket[2])):
        res = scipy.optimize.minimize_scalar(
            lambda u: -g(float(u)), bracket=(bracket[0], bracket[1], bracket[2]), tol=1e-10
        )
        n_hat, loglik_hat = n + float(np.exp(res.x)), -float(res.fun)
    else:
        # level with a neighbour (a flat profile): Brent's search needs the middle strictly highest, and
        # scipy raised a ValueError; the best point so far stands, and `_flat` below says whether N is
        # identified at all
        u_best = max(values, key=values.__getitem__)
        n_hat, loglik_hat = n + float(np.exp(u_best)), values[u_best]
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
        lower = n + _end(excess, outside, inside, n)
    upper = np.inf
    if np.isfinite(n_hat):
        inside = m = max(m_hat, 1e-6 * n)
        for _ in range(WIDEN_STEPS):
            m *= 2
            if m > m_top:
                break
            if excess(m) > 0:
                upper = n + _end(excess, inside, m, n)
                break
            inside = m
    if (
        lower == n
        and not np.isfinite(upper)
        and _flat(g, [*values.values(), loglik_hat], u_bottom, u_top)
    ):
        # every N ≥ n is as likely as any other: no maximum to report, and the interval is all of [n, ∞)
        n_hat = np.nan
    return {"n_hat": float(n_hat), "ci95": (float(lower), float(upper)), "method": METHOD}


def _flat(g: Any, seen: list[float], u_bottom: float, u_top: float) -> bool:
    """Whether the profile ℓ_p, as g(u) of u = log(N − n), stays within `FLAT_TOLERANCE` of one value from
    N − n = 10⁻⁹ n to 10⁶ n (on a grid, beside the values ``seen`` so far): then the data do not identify N
    (one person seen once, under the Poisson: ℓ_p(N) = −1 for every N)."""
    grid = [g(float(u)) for u in np.linspace(u_bottom, u_top, FLAT_GRID)]
    return bool(max(*grid, *seen) - min(*grid, *seen) < FLAT_TOLERANCE)


class ProfileError(ValueError):
    """The profile likelihood's interval could not be read off: ℓ_p was found higher than its maximum."""


def _end(excess: Any, a: float, b: float, n: float) -> float:
    """The root of the deviance excess between a and b (N − n), which must bracket it."""
    at_a, at_b = excess(a), excess(b)
    if np.sign(at_a) == np.sign(at_b):
        raise ProfileError(
            f"no end of the profile interval between N − n = {a:.6g} and {b:.6g} (deviance excess "
            f"{at_a:.3g} and {at_b:.3g}): the profile's maximum was not found"
        )
    return float(scipy.optimize.brentq(excess, a, b, xtol=1e-8 * n, rtol=1e-12))
