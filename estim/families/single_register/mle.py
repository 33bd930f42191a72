"""Maximum likelihood for the single-register families, and the closed forms of Chao and Zelterman."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.optimize
import scipy.special
import scipy.stats
import xarray as xr
from pytensor.compile.mode import Mode

from estim.errors import EstimInputError
from estim.families.base import MLEResult
from estim.families.single_register.data import OBSERVED, design
from estim.families.single_register.model import _Spec

Z95 = scipy.stats.norm.ppf(0.975)
# Above these, a fitted p0 or N̂ says the model put the maximum at infinity rather than at a finite population.
N_HAT_LIMIT = 1e8
P0_LIMIT = 1.0 - 1e-6
LOG_ALPHA_BOUNDS = (-15.0, 15.0)
ALPHA_LIMIT = 1e4

# --------------------------------------------------------------------------------------------------------------
# maximum likelihood


def _ml_graph(spec: _Spec, f: np.ndarray, k: np.ndarray, x: np.ndarray):
    """Compiled −loglik with gradient and Hessian in θ = (β0, β, [log α | logit ω]), and N̂(θ) with gradient."""
    theta = pt.dvector("theta")
    p = x.shape[1]
    eta = theta[0] + (pt.dot(pt.as_tensor(x), theta[1 : 1 + p]) if p else 0.0 * pt.ones(len(f)))
    alpha = pt.exp(theta[1 + p]) if spec.alpha else None
    omega = pt.sigmoid(theta[1 + p]) if spec.omega else None
    support = spec.support(len(k))
    ll = pt.sum(f * support * spec.log_prob(k[None, :], eta[:, None], pt, alpha, omega))
    n_x = f.sum(axis=1)
    p0 = pt.exp(spec.log_p0(eta, pt, alpha, omega))
    n_hat = pt.sum(n_x / (1.0 - p0))
    g = pt.grad(-ll, theta)
    h = pytensor.gradient.hessian(-ll, theta)
    # The graphs are tiny (patterns × K), so compile time dominates: the Python linker (~1 s for a whole fit)
    # beats C (~13 s) and numba (~18 s) here.
    mode = Mode(linker="py", optimizer="fast_compile")
    fg = pytensor.function([theta], [-ll, g], mode=mode)
    hess = pytensor.function([theta], h, mode=mode)
    nh = pytensor.function([theta], [n_hat, pt.grad(n_hat, theta), p0], mode=mode)
    return fg, hess, nh


def _mle(spec: _Spec):
    def mle(data: xr.Dataset, *, covariates: Sequence[str] | None = None) -> MLEResult:
        """Maximum conditional likelihood, N̂ by Horvitz–Thompson, SE by the delta method plus the HT
        sampling variance Σ n_x p0_x/(1 − p0_x)² (van der Heijden et al. 2003; singleRcapture), Wald CI."""
        f = data[OBSERVED].values.astype(float)
        k = data["k"].values.astype(float)
        x, terms = design(data, covariates)
        fg, hess, nh = _ml_graph(spec, f, k, x)
        mean_k = (f * k).sum() / f.sum()
        if spec.base == "zelterman":
            start0 = np.log(max(f[:, 1].sum(), 0.5) / max(f[:, 0].sum(), 0.5))
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
            res = scipy.optimize.minimize(fg, start, jac=True, method="L-BFGS-B", bounds=bounds)
        else:
            # exact Hessian available: a trust-region Newton method converges where BFGS stalls on precision
            res = scipy.optimize.minimize(
                fg, start, jac=True, hess=hess, method="trust-exact", options={"gtol": 1e-6}
            )
        theta = res.x
        n_hat, dn, p0 = (np.asarray(v) for v in nh(theta))
        n_hat = float(n_hat)
        h = np.asarray(hess(theta))
        params = dict(zip(names, map(float, theta), strict=True))
        if spec.alpha:
            params["alpha"] = float(np.exp(theta[-1]))
        if spec.omega:
            params["omega"] = float(scipy.special.expit(theta[-1]))
        boundary, message = False, ""
        if spec.alpha and (
            theta[-1] >= LOG_ALPHA_BOUNDS[1] - 1e-3 or np.exp(theta[-1]) > ALPHA_LIMIT
        ):
            boundary = True
            message = (
                f"negative-binomial dispersion α runs to infinity (α̂ = {np.exp(theta[-1]):.3g}, "
                f"N̂ = {n_hat:.3g}): the likelihood has no finite maximum, so there is no estimate of N"
            )
        elif not np.isfinite(n_hat) or n_hat > N_HAT_LIMIT or p0.max() > P0_LIMIT:
            boundary = True
            message = f"fitted P(unseen) → 1 (N̂ = {n_hat:.3g}): no finite population-size estimate"
        elif spec.alpha and theta[-1] <= LOG_ALPHA_BOUNDS[0] + 1e-3:
            message = "dispersion α → 0: the negative binomial reduces to the Poisson"
        try:
            cov = np.linalg.inv(h)
            if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
                raise np.linalg.LinAlgError("Hessian not positive definite")
        except np.linalg.LinAlgError:
            cov = np.full_like(h, np.nan)
            if not boundary:
                message = (
                    message + "; " if message else ""
                ) + "Hessian singular: no standard error"
        n_x = f.sum(axis=1)
        var = float(dn @ cov @ dn + np.sum(n_x * p0 / (1.0 - p0) ** 2))
        se = float(np.sqrt(var)) if var >= 0 else float("nan")
        return MLEResult(
            n_hat=n_hat,
            se=se,
            ci95=(n_hat - Z95 * se, n_hat + Z95 * se),
            parameters=params,
            loglik=float(-res.fun),
            converged=bool(res.success) and not boundary,
            boundary=boundary,
            message=message or str(res.message),
            extra={
                "terms": terms,
                "covariance": cov,
                "p0": p0,
                "n_observed": int(f.sum()),
                "iterations": int(res.nit),
            },
        )

    return mle


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
