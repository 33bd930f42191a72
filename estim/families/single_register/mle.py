"""Maximum likelihood for the single-register families, and the closed forms of Chao and Zelterman.

The conditional log-likelihood is a sum over covariate patterns, ℓ = Σ_x ℓ_x(η_x, ψ), with η_x = β0 + z_x β the
pattern's linear predictor on the standardised design (`estim.families.covariates`) and ψ the family's extra
parameter (log α or logit ω). Its first and second derivatives are computed per pattern (PyTensor, exact) and
assembled through the design, gradient Zᵀ ∂ℓ/∂η and Hessian Zᵀ diag(∂²ℓ/∂η²) Z: one evaluation costs
patterns × k cells, whatever the number of people.

Convergence is judged on the scale of the estimates, not of the log-likelihood: the Newton decrement gᵀH⁻¹g
(H the observed information, positive definite) is the squared distance from the estimate to the maximum of
the local quadratic, measured in standard errors. It does not grow with the number of people, as the raw
gradient does (a likelihood summed over 10⁶ people has gradient roundoff far above any fixed absolute
tolerance). After the optimiser, Newton steps polish the estimate; a fit is refused only when it is not within
`DECREMENT_TOL` (10⁻⁴ SE) of a maximum, or when the information is singular and the relative gradient
|g_j|·max(|θ_j|, 1)/max(|ℓ|, 1) still exceeds `RELATIVE_GRADIENT_TOL`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import scipy.linalg
import scipy.optimize
import scipy.special
import scipy.stats
import xarray as xr
from pytensor.compile.mode import Mode

from estim.errors import EstimInputError
from estim.families.base import MLEResult
from estim.families.single_register.data import OBSERVED, covariate_variable, design
from estim.families.single_register.goodness import frequency_fit
from estim.families.single_register.model import _Spec, pattern_trials
from estim.families.single_register.profile import ProfileError, profile_likelihood

Z95 = scipy.stats.norm.ppf(0.975)
# Above this, N̂/n (an average P(unseen) above 1 − 10⁻⁶) says the model put the maximum at infinity rather
# than at a finite population. Relative to the people seen: a register of 10⁸ people is not a boundary fit,
# and one person with an extreme covariate value (a large Horvitz–Thompson weight) is not either.
N_HAT_RATIO_LIMIT = 1e6
LOG_ALPHA_BOUNDS = (-15.0, 15.0)
ALPHA_LIMIT = 1e4
# gᵀH⁻¹g ≤ 1e-8: the estimate lies within 10⁻⁴ standard errors of the maximum.
DECREMENT_TOL = 1e-8
# where the information is singular (no standard errors), the scale-free relative gradient instead
RELATIVE_GRADIENT_TOL = 1e-6
POLISH_STEPS = 50
LOWER_BOUND = (
    "Chao's estimate is a lower bound for N: under heterogeneity (any mixture of Poisson rates) the "
    "population is at least this large and may lie above the interval, which is that of the bound; on "
    "simulated border section-years it lay 4–26 % below the people who attempted (docs/design.md §4, "
    '"Single-register and closed families on the border records")'
)

# --------------------------------------------------------------------------------------------------------------
# maximum likelihood


@functools.cache
def _pattern_derivatives(spec: _Spec, n_k: int) -> Any:
    """Compiled ℓ and, per pattern, ∂ℓ_x/∂η_x, ∂²ℓ_x/∂η_x² (and the ψ derivatives), N̂ (Σ n_x/(1 − p0_x), or
    Chao's) and its derivatives, p0_x; inputs (f, η[, ψ per pattern][, trials per pattern]). Each ℓ_x depends
    only on its own (η_x, ψ_x), so the gradient of Σ_x ∂ℓ_x/∂η_x with respect to η is the vector of second
    derivatives. Cached per family and K: a recovery study compiles once."""
    k = np.arange(1, n_k + 1, dtype=float)
    f = pt.dmatrix("f")
    eta = pt.dvector("eta")
    inputs = [f, eta]
    trials = trials_x = None
    alpha = omega = alpha_x = omega_x = psi = None
    if spec.alpha or spec.omega:
        psi = pt.dvector("psi")  # the shared ψ, repeated per pattern
        inputs.append(psi)
        if spec.alpha:
            alpha_x = pt.exp(psi)
            alpha = alpha_x[:, None]
        else:
            omega_x = pt.sigmoid(psi)
            omega = omega_x[:, None]
    if spec.binomial:
        trials_x = pt.dvector("trials")
        inputs.append(trials_x)
        trials = trials_x[:, None]
        support = 1.0  # f is 0 where k > t, and the log-probability there finite
    else:
        support = spec.support(n_k)[None, :]
    cells = f * support * spec.log_prob(k[None, :], eta[:, None], pt, alpha, omega, trials)
    ll = pt.sum(cells)
    lp0 = spec.log_p0(eta, pt, alpha_x, omega_x, trials_x)
    base = f[:, :2].sum(axis=1) if spec.estimator == "chao" else pt.sum(f, axis=1)
    odds = pt.exp(spec.log_unseen_odds(eta, pt, alpha_x, omega_x, trials_x))
    n_hat = pt.sum(f) + pt.sum(base * odds)
    g_eta = pt.grad(ll, eta)
    outputs = [ll, g_eta, pt.grad(pt.sum(g_eta), eta), n_hat, pt.grad(n_hat, eta), pt.exp(lp0)]
    if psi is not None:
        g_psi = pt.grad(ll, psi)
        outputs += [
            g_psi,
            pt.grad(pt.sum(g_eta), psi),
            pt.grad(pt.sum(g_psi), psi),
            pt.grad(n_hat, psi),
        ]
    # Small elementwise graphs: the Python linker compiles in about a second, C or numba take 10–20 s.
    mode = Mode(linker="py", optimizer="fast_compile")
    return pytensor.function(inputs, outputs, mode=mode)


class _Likelihood:
    """−ℓ(θ), its gradient and Hessian in θ = (β0, β, [ψ]) on the standardised design, and N̂(θ)."""

    def __init__(
        self, spec: _Spec, f: np.ndarray, z: np.ndarray, trials: np.ndarray | None = None
    ) -> None:
        self.fn = _pattern_derivatives(spec, f.shape[1])
        self.f, self.z, self.q = f, z, z.shape[1]
        self.trials = None if trials is None else np.asarray(trials, dtype=float)
        self.extra = spec.alpha or spec.omega
        self._memo: tuple[bytes, dict[str, Any]] | None = None

    def at(self, theta: np.ndarray) -> dict[str, Any]:
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]
        z, q = self.z, self.q
        eta = z @ theta[:q]
        args = [self.f, eta]
        if self.extra:
            args.append(np.full(len(eta), theta[q]))
        if self.trials is not None:
            args.append(self.trials)
        out = [np.asarray(v) for v in self.fn(*args)]
        if not all(np.isfinite(out[i]).all() for i in self._curvatures):
            out = self._finite_curvatures(args, out)
        ll, g_eta, h_ee, n_hat, dn_eta, p0 = out[:6]
        grad = z.T @ g_eta
        hess = z.T @ (h_ee[:, None] * z)
        dn = z.T @ dn_eta
        if self.extra:
            g_psi, h_ep, h_pp, dn_psi = out[6:]
            cross = z.T @ h_ep
            grad = np.r_[grad, g_psi.sum()]
            hess = np.block([[hess, cross[:, None]], [cross[None, :], np.array([[h_pp.sum()]])]])
            dn = np.r_[dn, dn_psi.sum()]
        value = {
            "nll": float(-ll),
            "grad": -grad,
            "hess": -hess,
            "n_hat": float(n_hat),
            "dn": dn,
            "p0": p0,
        }
        self._memo = (key, value)
        return value

    @property
    def _curvatures(self) -> tuple[int, ...]:
        """Positions in the compiled outputs of the per-pattern second derivatives (∂²ℓ_x/∂η_x², and with ψ
        ∂²ℓ_x/∂η_x∂ψ, ∂²ℓ_x/∂ψ²)."""
        return (2, 7, 8) if self.extra else (2,)

    def _finite_curvatures(self, args: list[Any], out: list[np.ndarray]) -> list[np.ndarray]:
        """The second derivatives where the symbolic ones are not finite, by central differences of the
        (finite) first derivatives. Where p0 underflows (a Poisson mean above ~700: a covariate that all but
        tells k, such as the prior arrests k − 1) the symbolic curvature of log(1 − p0) is inf/inf = nan,
        though the true one is 0 to double precision; the trust-region optimiser then stopped with an
        internal error ("array must not contain infs or NaNs") and the Bayesian fit lost the ML check that
        says its N is set by the prior."""
        out = list(out)
        eta = np.asarray(args[1], dtype=float)
        step = 1e-5 * np.maximum(np.abs(eta), 1.0)
        up = [np.asarray(v) for v in self.fn(args[0], eta + step, *args[2:])]
        down = [np.asarray(v) for v in self.fn(args[0], eta - step, *args[2:])]
        bad = ~np.isfinite(out[2])
        out[2] = np.where(bad, (up[1] - down[1]) / (2 * step), out[2])
        if self.extra:
            psi = np.asarray(args[2], dtype=float)
            h = 1e-5 * np.maximum(np.abs(psi), 1.0)
            up_p = [np.asarray(v) for v in self.fn(args[0], eta, psi + h, *args[3:])]
            down_p = [np.asarray(v) for v in self.fn(args[0], eta, psi - h, *args[3:])]
            for i, j in ((7, 1), (8, 6)):  # ∂/∂ψ of ∂ℓ_x/∂η_x and of ∂ℓ_x/∂ψ
                out[i] = np.where(np.isfinite(out[i]), out[i], (up_p[j] - down_p[j]) / (2 * h))
        return out

    def fun(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        v = self.at(theta)
        return v["nll"], v["grad"]

    def hess(self, theta: np.ndarray) -> np.ndarray:
        return self.at(theta)["hess"]


def newton_decrement(grad: np.ndarray, hess: np.ndarray) -> float | None:
    """gᵀH⁻¹g at a point (the squared distance to the maximum of the local quadratic, in standard errors), or
    None when H (the observed information) is not positive definite."""
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return None
    w = scipy.linalg.solve_triangular(chol, grad, lower=True)
    return float(w @ w)


def relative_gradient(grad: np.ndarray, theta: np.ndarray, loglik: float) -> float:
    """max_j |g_j|·max(|θ_j|, 1)/max(|ℓ|, 1): the gradient's size free of the scales of θ and ℓ (Dennis and
    Schnabel 1996, §7.2)."""
    scale = np.maximum(np.abs(theta), 1.0) / max(abs(loglik), 1.0)
    return float(np.max(np.abs(grad) * scale)) if len(grad) else 0.0


def converged_at(grad: np.ndarray, hess: np.ndarray, theta: np.ndarray, loglik: float) -> bool:
    """The scale-aware convergence test: Newton decrement ≤ `DECREMENT_TOL` where the information is positive
    definite, relative gradient ≤ `RELATIVE_GRADIENT_TOL` where it is not."""
    decrement = newton_decrement(grad, hess)
    if decrement is not None:
        return decrement <= DECREMENT_TOL
    return relative_gradient(grad, theta, loglik) <= RELATIVE_GRADIENT_TOL


def _polish(lik: _Likelihood, theta: np.ndarray, upper: float | None) -> tuple[np.ndarray, int]:
    """Newton steps with backtracking from the optimiser's point, while the information is positive definite:
    quasi-Newton and trust-region methods stop at an absolute gradient that roundoff can keep them above.
    ``upper`` bounds the last coordinate (log α): a step past it leaves the point to the boundary check."""
    steps = 0
    for _ in range(POLISH_STEPS):
        v = lik.at(theta)
        decrement = newton_decrement(v["grad"], v["hess"])
        if decrement is None or decrement <= 1e-20:
            break
        step = np.linalg.solve(v["hess"], v["grad"])
        # roundoff in a large ℓ: accept a step that does not lose more than a few ulps of it
        slack = 16 * np.finfo(float).eps * max(abs(v["nll"]), 1.0)
        t, moved = 1.0, False
        for _ in range(30):
            trial = theta - t * step
            if upper is not None and trial[-1] > upper:
                return theta, steps
            value = lik.at(trial)["nll"]
            if np.isfinite(value) and value <= v["nll"] - 1e-4 * t * decrement + slack:
                theta, moved = trial, True
                break
            t /= 2
        if not moved:
            break
        steps += 1
    return theta, steps


def _mle(spec: _Spec):
    def mle(data: xr.Dataset, *, covariates: Sequence[str] | None = None) -> MLEResult:
        """Maximum conditional likelihood, N̂ by Horvitz–Thompson (Chao: n + Σ over people seen once or twice
        of 1/(λ̂ + λ̂²/2)), SE by the delta method plus the sampling variance with the parameters known
        (HT: Σ n_x p0_x/(1 − p0_x)², van der Heijden et al. 2003; both as singleRcapture), Wald CI.
        Coefficients are reported on the covariates' own scale (``beta_intercept``, ``beta[term]``), with their
        standard errors in ``extra["standard_errors"]`` and the fitting (standardised) scale in
        ``extra["standardised"]``.

        Without covariates, ``profile`` holds the profile-likelihood estimate and 95 % interval of N from the
        full (unconditional) likelihood (`estim.families.single_register.profile`). Zelterman's and Chao's
        models have no likelihood in N (they model only P(K = 2 | K ∈ {1, 2})): their ``profile`` is None."""
        f = data[OBSERVED].values.astype(float)
        k = data["k"].values.astype(float)
        d = design(data, covariates)
        terms = list(d.terms)
        z = np.column_stack([np.ones(len(f)), d.matrix])
        trials = pattern_trials(spec, data)
        lik = _Likelihood(spec, f, z, trials)
        mean_k = (f * k).sum() / f.sum()
        if spec.base == "zelterman":
            if f.shape[1] < 2 or f[:, 0].sum() == 0 or f[:, 1].sum() == 0:
                who = "Chao's estimator" if spec.estimator == "chao" else "Zelterman's regression"
                raise EstimInputError(
                    f"{who} needs people seen once and people seen twice (f1, f2 > 0)"
                )
            start0 = np.log(max(f[:, 1].sum(), 0.5) / max(f[:, 0].sum(), 0.5))
        elif spec.binomial:
            # the share of occasions on which the seen were seen (ignores the truncation: a start only)
            share = np.clip((f * k).sum() / (f.sum(axis=1) * trials).sum(), 0.02, 0.98)
            start0 = scipy.special.logit(share)
        else:
            start0 = np.log(max(2.0 * (mean_k - 1.0), 0.05))
        start = np.r_[start0, np.zeros(len(terms))]
        names = ["beta_intercept", *[f"beta[{t}]" for t in terms]]
        bounds = [(None, None)] * len(start)
        if spec.alpha:
            start = np.r_[start, 0.0]
            names.append("log_alpha")
            bounds.append(LOG_ALPHA_BOUNDS)
        if spec.omega:
            start = np.r_[start, -2.0]
            names.append("logit_omega")
        if spec.alpha:
            res = scipy.optimize.minimize(
                lik.fun, start, jac=True, method="L-BFGS-B", bounds=bounds
            )
        else:
            # exact Hessian available: a trust-region Newton method converges where BFGS stalls
            res = scipy.optimize.minimize(
                lik.fun, start, jac=True, hess=lik.hess, method="trust-exact"
            )
        upper = LOG_ALPHA_BOUNDS[1] if spec.alpha else None
        theta, polished = _polish(lik, np.asarray(res.x, dtype=float), upper)
        v = lik.at(theta)
        n_hat, dn, p0, h, g = v["n_hat"], v["dn"], v["p0"], v["hess"], v["grad"]
        loglik = -v["nll"]
        boundary, notes = False, []
        if spec.alpha and (
            theta[-1] >= LOG_ALPHA_BOUNDS[1] - 1e-3 or np.exp(theta[-1]) > ALPHA_LIMIT
        ):
            boundary = True
            notes.append(
                f"negative-binomial dispersion α runs to infinity (α̂ = {np.exp(theta[-1]):.3g}, "
                f"N̂ = {n_hat:.3g}): the likelihood has no finite maximum, so there is no estimate of N"
            )
        elif not np.isfinite(n_hat) or n_hat > N_HAT_RATIO_LIMIT * f.sum():
            boundary = True
            notes.append(
                f"fitted P(unseen) → 1 (N̂ = {n_hat:.3g}): no finite population-size estimate"
                + _small_levels(data, f.sum(axis=1))
            )
        elif spec.alpha and theta[-1] <= LOG_ALPHA_BOUNDS[0] + 1e-3:
            notes.append("dispersion α → 0: the negative binomial reduces to the Poisson")
        decrement = newton_decrement(g, h)
        converged = converged_at(g, h, theta, loglik)
        coefficients = 1 + len(terms)
        if (
            decrement is not None
            and terms
            and np.linalg.cond(h[:coefficients, :coefficients]) > COND_LIMIT
        ):
            decrement = None  # the coefficients' information is singular to rounding: as singular
        if decrement is not None:
            cov = np.linalg.inv(h)
        else:
            cov = np.full_like(h, np.nan)
            if not boundary:
                # a flat direction of the likelihood: the parameters are not identified, and an N̂ without a
                # standard error is not reported as an estimate (status "not converged", exit 3)
                converged = False
                notes.append(
                    "Hessian singular: the data do not identify the parameters (a flat direction of the "
                    "likelihood), so there is no standard error and N-hat is not an estimate"
                )
        if not converged and not boundary and decrement is not None:
            notes.append(
                "not converged: "
                + (
                    f"the estimate is {np.sqrt(decrement):.2g} standard errors from the maximum"
                    if decrement is not None
                    else f"relative gradient {relative_gradient(g, theta, loglik):.2g} with a singular Hessian"
                )
                + f" ({res.message})"
            )
        var = float(dn @ cov @ dn + spec.sampling_variance(f, z @ theta[: z.shape[1]], p0))
        se = float(np.sqrt(var)) if var >= 0 else float("nan")
        # back to the covariates' own units: a linear map of (β0, β); ψ is unchanged
        a = np.eye(len(theta))
        a[: 1 + len(terms), : 1 + len(terms)] = d.original_scale_matrix()
        original = a @ theta
        cov_original = a @ cov @ a.T
        params = dict(zip(names, map(float, original), strict=True))
        if spec.alpha:
            params["alpha"] = float(np.exp(theta[-1]))
        if spec.omega:
            params["omega"] = float(scipy.special.expit(theta[-1]))
        profile = None
        if not terms and len(f) == 1 and spec.base != "zelterman":
            try:
                profile = profile_likelihood(
                    spec, f[0], None if trials is None else int(trials[0]), theta
                )
            except ProfileError as e:
                # the conditional fit stands without it; say why the interval is missing
                notes.append(f"no profile-likelihood interval: {e}")
            if profile is not None and np.isnan(profile["n_hat"]):
                notes.append(
                    "the profile likelihood of N is flat (every N ≥ n equally likely): the data do not "
                    f"identify N, and its 95 % profile interval is all of {f.sum():,.0f} – inf"
                )
            if profile is not None and not boundary:
                lo, hi = profile["ci95"]
                if not lo <= n_hat <= hi:
                    # the two likelihoods differ by the factor p(N) ∝ 1/N integrated out (see the package
                    # docstring); far apart, neither is to be read as the estimate
                    notes.append(
                        f"the conditional N̂ {n_hat:,.1f} lies outside the 95 % profile-likelihood interval "
                        f"{lo:,.1f} – {hi:,.1f}: the conditional and full likelihoods disagree, so the data "
                        "barely determine N"
                    )
        if spec.estimator == "chao" and not boundary:
            notes.append(LOWER_BOUND)
        fit = None
        if not boundary:
            psi = float(theta[-1]) if spec.alpha or spec.omega else None
            fit = frequency_fit(spec, f, z @ theta[: z.shape[1]], len(theta), psi, trials, n_hat)
            if fit is not None and not fit["passed"]:
                warnings.warn(fit["text"], UserWarning, stacklevel=2)
        return MLEResult(
            n_hat=n_hat,
            se=se,
            ci95=(n_hat - Z95 * se, n_hat + Z95 * se),
            parameters=params,
            loglik=loglik,
            converged=converged and not boundary,
            boundary=boundary,
            message="; ".join(notes),
            profile=profile,
            extra={
                "terms": terms,
                "covariance": cov_original,
                "standard_errors": dict(
                    zip(names, map(float, _roots(np.diag(cov_original))), strict=True)
                ),
                "standardised": dict(zip(names, map(float, theta), strict=True)),
                "center": dict(zip(terms, map(float, d.center), strict=True)),
                "scale": dict(zip(terms, map(float, d.scale), strict=True)),
                "p0": p0,
                "n_observed": int(f.sum()),
                "iterations": int(res.nit) + polished,
                "gradient": float(np.max(np.abs(g))),
                "newton_decrement": decrement,
                **({} if fit is None else {"goodness_of_fit": fit}),
            },
        )

    return mle


# the coefficients' information (standardised covariates, so well scaled) with a condition number above this is
# singular but for rounding: two terms the data cannot tell apart
COND_LIMIT = 1e12


def _roots(variances: np.ndarray) -> np.ndarray:
    """Standard errors from variances; a negative variance (a Hessian not positive definite) gives NaN."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(variances)


# a level of a categorical covariate with at most this many people is named when the fit runs to the boundary
_SMALL_LEVEL = 3


def _small_levels(data: xr.Dataset, people: np.ndarray) -> str:
    """The levels of the categorical covariates held by at most `_SMALL_LEVEL` people, as a clause for a
    failure message: such a level has a coefficient of its own (or is the reference of the others) that
    nearly nobody informs, which can run P(unseen) to 1."""
    small = []
    for c in data.attrs.get("categorical", []):
        variable = covariate_variable(c)
        if variable not in data:
            continue
        values = pd.Series(data[variable].values).astype(str).str.strip()
        held = pd.Series(people, index=values.index).groupby(values.to_numpy()).sum()
        small += [
            f"{c}={level!r} ({n:,.0f} {'person' if n == 1 else 'people'})"
            for level, n in held.items()
            if n <= _SMALL_LEVEL
        ]
    if not small:
        return ""
    return (
        f"; the level(s) {', '.join(small)} hold almost nobody: a level so small has a coefficient that the "
        "data barely inform; merge it into another level (a typo, a space or a capital letter, such as "
        "'Male' for 'male'?) or leave the covariate out"
    )


# --------------------------------------------------------------------------------------------------------------
# closed forms


def _totals(f: Any) -> np.ndarray:
    """f_1, f_2, … over all patterns, from a frequency Dataset or an array with f[0] = f_1."""
    if isinstance(f, xr.Dataset):
        return f[OBSERVED].values.sum(axis=0).astype(float)
    return np.asarray(f, dtype=float).reshape(-1)


def _closed(n_hat: float, var: float, params: dict[str, float], message: str = "") -> MLEResult:
    se = float(np.sqrt(var))
    return MLEResult(
        n_hat=float(n_hat),
        se=se,
        ci95=(n_hat - Z95 * se, n_hat + Z95 * se),
        parameters=params,
        loglik=float("nan"),
        converged=True,
        message=message,
    )


def chao(f: Any) -> MLEResult:
    """Chao's (1987) lower bound N̂ = n + f1²/(2 f2): valid under any mixture of Poisson rates, a lower bound
    for N. Variance f2 [r⁴/4 + r³ + r²/2], r = f1/f2 (Chao 1987; singleRcapture)."""
    ff = _totals(f)
    n, f1, f2 = ff.sum(), ff[0], ff[1] if len(ff) > 1 else 0.0
    if f2 <= 0:
        raise EstimInputError("Chao's estimator needs people seen twice (f2 > 0)")
    r = f1 / f2
    return _closed(n + f1**2 / (2 * f2), f2 * (r**4 / 4 + r**3 + r**2 / 2), {"f1": f1, "f2": f2})


def zelterman(f: Any) -> MLEResult:
    """Zelterman's (1988) estimator N̂ = n / (1 − exp(−λ̂)) with λ̂ = 2 f2/f1, a Poisson rate estimated only from
    people seen once or twice. SE as singleRcapture's intercept-only Zelterman regression: delta method with
    Var(log λ̂) = 1/f1 + 1/f2, plus the Horvitz–Thompson variance n e^{−λ}/(1 − e^{−λ})²."""
    ff = _totals(f)
    n, f1, f2 = ff.sum(), ff[0], ff[1] if len(ff) > 1 else 0.0
    if f1 <= 0 or f2 <= 0:
        raise EstimInputError("Zelterman's estimator needs people seen once and twice (f1, f2 > 0)")
    lam = 2 * f2 / f1
    p = -np.expm1(-lam)
    n_hat = n / p
    dn_dloglam = -n * np.exp(-lam) * lam / p**2
    var = dn_dloglam**2 * (1 / f1 + 1 / f2) + n * np.exp(-lam) / p**2
    return _closed(n_hat, var, {"lambda": lam, "f1": f1, "f2": f2})
