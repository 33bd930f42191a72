"""Maximum likelihood for the closed-population families: Rcapture's log-linear models and the conditional
likelihood of the heterogeneity models."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytensor.tensor as pt
import xarray as xr
from scipy import optimize, stats

from estim.errors import EstimInputError
from estim.families.base import MLEResult
from estim.families.closed.data import (
    MULTIPLICITY,
    OBSERVED,
    _check,
    log_multiplicity,
    require_histories,
)
from estim.families.closed.model import DEFAULT_NODES, build_closed

# --------------------------------------------------------------------------------------------------------------
# Maximum likelihood: Rcapture's log-linear models (closedp.t)
# --------------------------------------------------------------------------------------------------------------


def all_histories(t: int) -> np.ndarray:
    """The 2^T − 1 possible non-empty histories in Rcapture's order (decreasing binary value, 11…1 first)."""
    codes = np.arange(2**t - 1, 0, -1)
    return ((codes[:, None] >> np.arange(t - 1, -1, -1)[None, :]) & 1).astype(np.int8)


LOGLINEAR = ("M0", "Mt", "Mb", "Mh_chao", "Mh_poisson2", "Mth_poisson2", "Mth_chao")


def loglinear_design(model: str, t: int) -> np.ndarray:
    """Rcapture's design matrix (without the intercept) over `all_histories(t)` (Rivest & Baillargeon 2007)."""
    return _design_rows(model, all_histories(t))


def _design_rows(model: str, h: np.ndarray) -> np.ndarray:
    """The log-linear model's design rows (without the intercept) for the 0/1 histories `h`."""
    h = np.asarray(h, dtype=float)
    t, k = h.shape[1], h.sum(axis=1)
    if model == "M0":
        return k[:, None]
    if model == "Mt":
        return h
    if model == "Mb":
        first = h.argmax(axis=1)  # occasions before the first capture
        return np.column_stack([first, k - 1])
    # Chao's lower-bound terms (k − j + 1)⁺, j = 3…T, and the Poisson2 term 2^k − 1 (Rivest & Baillargeon 2007)
    chao = np.maximum(k[:, None] - np.arange(3, t + 1)[None, :] + 1, 0)
    poisson2 = (2.0**k - 1)[:, None]
    designs = {
        "Mh_chao": lambda: np.column_stack([k, chao]),
        "Mh_poisson2": lambda: np.column_stack([k, poisson2]),
        "Mth_poisson2": lambda: np.column_stack([h, poisson2]),
        "Mth_chao": lambda: np.column_stack([h, chao]),
    }
    if model not in designs:
        raise EstimInputError(f"no log-linear model {model!r}")
    return designs[model]()


def _poisson_glm(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray | None = None, maxit: int = 200
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Poisson log-link GLM by iteratively reweighted least squares (as R's glm.fit): β and (X'WX)⁻¹.

    Converged when the deviance changes by less than 1e-10 of itself (R's relative criterion, tighter)."""
    off = np.zeros(len(y)) if offset is None else offset
    beta = np.linalg.lstsq(x, np.log(y + 0.5) - off, rcond=None)[0]
    dev_old = np.inf
    converged = False
    for _ in range(maxit):
        eta = x @ beta
        mu = np.exp(eta + off)
        z = eta + (y - mu) / mu
        xw = x * mu[:, None]
        beta = np.linalg.solve(x.T @ xw, xw.T @ z)
        mu = np.exp(x @ beta + off)
        dev = 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - (y - mu))
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-10:
            converged = True
            break
        dev_old = dev
    mu = np.exp(x @ beta + off)
    cov = np.linalg.inv(x.T @ (x * mu[:, None]))
    return beta, cov, converged


def _loglinear_fit(model: str, y: np.ndarray, h: np.ndarray, offset: np.ndarray) -> dict[str, Any]:
    """One stratum: counts `y` over the histories `h` (all 2^T − 1, or one per k with log C(T, k) in
    `offset`), the zero-count cells included."""
    t = h.shape[1]
    xd = np.column_stack([np.ones(len(h)), _design_rows(model, h)])
    cols = list(range(xd.shape[1]))
    beta, cov, conv = _poisson_glm(y, xd[:, cols], offset)
    if model in ("Mh_chao", "Mth_chao"):
        # Rcapture (Chao.neg): a negative η would make the lower bound meaningless; drop the first negative
        # η column and refit until none is negative.
        start = 2 if model == "Mh_chao" else 1 + t
        while (beta[start:] < 0).any():
            cols.pop(start + int(np.argmax(beta[start:] < 0)))
            beta, cov, conv = _poisson_glm(y, xd[:, cols], offset)
    n = y.sum()
    failed = ""
    if model == "Mb":
        # Rcapture's parameterisation: β1 = log[(1 − p)/(1 − c)], β2 = logit c, intercept log[N p (1−c)^(T−1)].
        e0, e1, e2 = np.exp(beta)
        den = 1 + e2 - e1
        n_hat = e0 * (1 + e2) ** t / den
        v = n_hat * np.array([1.0, e1 / den, t * e2 / (1 + e2) - e2 / den])
        se = float(np.sqrt(max(v @ cov @ v - n_hat, 0.0)))
        params = {"p": 1 - e1 / (1 + e2), "c": e2 / (1 + e2)}
        if den <= 0:
            # p = 1 − e1/(1 + e2) ≤ 0: the fitted counts imply no capture probability before the first capture
            failed = f"Mb: the fitted log-linear model implies p ≤ 0 (Rcapture's N-hat would be {n_hat:,.1f})"
    else:
        f0 = np.exp(beta[0])
        n_hat = n + f0
        se = float(np.sqrt(f0 + f0**2 * cov[0, 0]))
        params = {}
    if not failed and not (np.isfinite(n_hat) and n_hat >= n and np.isfinite(se)):
        failed = f"{model}: N-hat {n_hat:,.1f} is not a finite number at least n = {n:,.0f}"
    mu = np.exp(xd[:, cols] @ beta + offset)
    loglik = float(np.sum(y * np.log(mu) - mu - _lgamma1(y)))
    return {
        "n_hat": float(n_hat),
        "se": se,
        "beta": beta,
        "loglik": loglik,
        "converged": conv,
        "params": params,
        "failed": failed,
    }


def _lgamma1(y: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(y + 1)


def _full_counts(counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One stratum's counts on all 2^T − 1 histories in Rcapture's order (zeros for the unobserved)."""
    t = x.shape[1]
    code = (x.astype(np.int64) << np.arange(t - 1, -1, -1)).sum(axis=1)
    y = np.zeros(2**t - 1)
    np.add.at(y, 2**t - 1 - code, counts)
    return y


def mle_loglinear(model: str, data: xr.Dataset, **_: Any) -> MLEResult:
    """Rcapture closedp.t's estimate for one log-linear model; strata are fitted separately and summed.

    N̂ = n + exp(intercept) (the fitted count of the unseen history), SE² = exp(β₀) + exp(2β₀) Var(β₀);
    Mb uses Rcapture's own parameterisation and delta-method formula, and a fit where it gives p ≤ 0
    (Rcapture's negative N̂) is reported as a failure on the boundary, not as a number. An f_k table is fitted
    over k = 1…T with offset log C(T, k): the same likelihood, up to a constant, as over all histories.
    """
    t0 = time.perf_counter()
    require_histories(model, data)
    counts, x = _check(data)
    if MULTIPLICITY in data:
        h, offset = x, log_multiplicity(data)
        fits = [_loglinear_fit(model, c.astype(float), h, offset) for c in counts]
    else:
        h = all_histories(x.shape[1])
        offset = np.zeros(len(h))
        fits = [_loglinear_fit(model, _full_counts(c, x), h, offset) for c in counts]
    failed = "; ".join(f["failed"] for f in fits if f["failed"])
    n_hat = sum(f["n_hat"] for f in fits)
    se = float(np.sqrt(sum(f["se"] ** 2 for f in fits)))
    z = stats.norm.ppf(0.975)
    params: dict[str, float] = {}
    for s, f in zip(data["stratum"].values, fits, strict=True):
        params[f"N[{s}]"] = f["n_hat"]
        params.update({f"{k}[{s}]": float(v) for k, v in f["params"].items()})
        params.update({f"beta{i}[{s}]": float(b) for i, b in enumerate(f["beta"])})
    if failed:
        n_hat, se = float("nan"), float("nan")
    return MLEResult(
        n_hat=float(n_hat),
        se=se,
        ci95=(float(n_hat - z * se), float(n_hat + z * se)),
        parameters=params,
        loglik=float(sum(f["loglik"] for f in fits)),
        converged=all(f["converged"] for f in fits),
        boundary=bool(failed),
        message=failed or f"Rcapture-style Poisson log-linear {model}",
        extra={"seconds": time.perf_counter() - t0, "ci_kind": "Wald"},
    )


# --------------------------------------------------------------------------------------------------------------
# Convergence: a scale-free second-order check rather than an optimiser's absolute-gradient stop


def fd_hessian(grad: Any, theta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """The Hessian by central differences of an exact gradient, symmetrised."""
    d = len(theta)
    hess = np.zeros((d, d))
    for i in range(d):
        e = np.zeros(d)
        e[i] = eps
        hess[:, i] = (grad(theta + e) - grad(theta - e)) / (2 * eps)
    return 0.5 * (hess + hess.T)


NEWTON_TOLERANCE = 1e-6
# L-BFGS-B run until it cannot improve: its own stop (relative change of f ≤ 2e-9 by default) ended the UK
# lists' Mh_mixture at a saddle (N̂ 14,966, Hessian not positive definite) where the maximum is M0's boundary.
# Whether the fit converged is then decided by `newton_polish`, not by the optimiser's message.
OPTIMISER = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10}
# N̂ > 10,000 n (P(seen) < 1e-4): the likelihood rises towards N = ∞ along a ridge; no estimate
MIN_P_SEEN = 1e-4


def newton_polish(
    fun_grad: Any, theta: np.ndarray, steps: int = 20
) -> tuple[np.ndarray, np.ndarray, float]:
    """Newton steps on a negative log-likelihood from an optimiser's end point; returns θ, the Hessian there and
    the Newton decrement λ² = gᵀH⁻¹g (inf when H is not positive definite).

    λ² is the squared length of the step still to go, measured in standard errors (H⁻¹ is their covariance): it
    does not depend on the parameters' scale or the sample size, unlike a fixed gradient threshold (which
    refused a fit whose gradient was 9e-6 against 1e-6 while its estimate matched the reference to every
    digit). The fit has converged when λ² < `NEWTON_TOLERANCE` (the maximum is less than 0.001 SE away).
    """

    def grad(v: np.ndarray) -> np.ndarray:
        return fun_grad(v)[1]

    for step in range(steps + 1):
        value, g = fun_grad(theta)
        hess = fd_hessian(grad, theta)
        try:
            np.linalg.cholesky(hess)
            newton = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            return theta, hess, np.inf
        decrement = float(g @ newton)
        if decrement < 1e-14 or step == steps:
            break
        # a damped step: halve until the objective does not increase (beyond rounding)
        for _half in range(30):
            trial = theta - newton
            f_trial = fun_grad(trial)[0]
            if np.isfinite(f_trial) and f_trial <= value + 1e-12 * max(1.0, abs(value)):
                theta = trial
                break
            newton = newton / 2
        else:
            break
    return theta, hess, decrement


def mle_conditional(
    name: str,
    data: xr.Dataset,
    *,
    stratified: bool = False,
    nodes: int = DEFAULT_NODES,
    quadrature: str = "trapezoid",
    **_: Any,
) -> MLEResult:
    """Conditional ML (Huggins 1989) of a Bayesian family's likelihood, priors dropped; N̂ = Σ n/(1 − P̂(0)).

    Var N̂ = Σ n P(0)/(1 − P(0))² + ∇N̂ᵀ I⁻¹ ∇N̂ (Huggins 1989), with the information from finite differences
    of the exact gradient on the unconstrained scale. A scale running to zero, a mixture class emptying, or
    P(seen) below `MIN_P_SEEN` (N̂ running to infinity) is reported as a boundary.
    Converged when the Newton decrement is below `NEWTON_TOLERANCE` (see `newton_polish`), whatever the
    optimiser's own stopping message (kept in ``extra["optimiser"]``).
    """
    if stratified:
        raise EstimInputError("the ML mode fits strata separately: use stratified=False")
    t0 = time.perf_counter()
    counts, _x = _check(data)
    model = build_closed(name, data, nodes=nodes, quadrature=quadrature)
    free = model.value_vars
    obs_logp = model.logp(vars=[model[OBSERVED]])
    grad = pt.grad(obs_logp, free)
    # C-compiled (FAST_RUN): a one-off optimisation of a small graph, where numba's compile time dominates.
    fn = model.compile_fn([obs_logp, *grad], inputs=free, point_fn=False, mode="FAST_RUN")
    # Deterministics are graphs of the random variables: swap in the value variables to evaluate at a point.
    (p0_graph,) = model.replace_rvs_by_values([model["p_unseen"]])
    p0_fn = model.compile_fn(
        p0_graph, inputs=free, point_fn=False, on_unused_input="ignore", mode="FAST_RUN"
    )
    ip = model.initial_point()
    shapes = [np.shape(ip[v.name]) for v in free]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(theta: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for shp, sz in zip(shapes, sizes, strict=True):
            out.append(theta[i : i + sz].reshape(shp))
            i += sz
        return out

    def negll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        vals = fn(*unpack(theta))
        return -float(vals[0]), -np.concatenate([np.ravel(g) for g in vals[1:]])

    theta0 = np.concatenate([np.ravel(ip[v.name]) for v in free])
    res = optimize.minimize(negll, theta0, jac=True, method="L-BFGS-B", options=OPTIMISER)
    theta, hess, decrement = newton_polish(negll, res.x)
    n = counts.sum(axis=1)

    def n_hat_of(theta: np.ndarray) -> float:
        return float(np.sum(n / (1 - np.asarray(p0_fn(*unpack(theta))))))

    gn = np.array(
        [(n_hat_of(theta + e) - n_hat_of(theta - e)) / 2e-5 for e in np.eye(len(theta)) * 1e-5]
    )
    p0 = np.asarray(p0_fn(*unpack(theta)))
    n_hat = n_hat_of(theta)
    try:
        var = float(np.sum(n * p0 / (1 - p0) ** 2) + gn @ np.linalg.solve(hess, gn))
    except np.linalg.LinAlgError:
        var = np.nan
    se = float(np.sqrt(var)) if var > 0 else float("nan")
    names = [v.name for v in free]
    params = {
        f"{nm}[{i}]": float(v)
        for nm, val in zip(names, unpack(theta), strict=True)
        for i, v in enumerate(np.ravel(val))
    }
    # A log-scale parameter far below zero means a variance/gap collapsed to 0: the model reduces to a
    # simpler one and its Wald SE is meaningless.
    boundary = (
        any(
            nm.endswith("_log__") and v < -6
            for nm, val in zip(names, unpack(theta), strict=True)
            for v in np.ravel(val)
        )
        or any(
            nm.endswith("_logodds__") and abs(v) > 12
            for nm, val in zip(names, unpack(theta), strict=True)
            for v in np.ravel(val)
        )
        or bool(np.any(1 - p0 < MIN_P_SEEN))
    )
    z = stats.norm.ppf(0.975)
    return MLEResult(
        n_hat=n_hat,
        se=se,
        ci95=(n_hat - z * se, n_hat + z * se),
        parameters=params,
        loglik=-float(negll(theta)[0]),
        converged=bool(decrement < NEWTON_TOLERANCE),
        boundary=bool(boundary),
        message=f"conditional (Huggins) ML of {name}; parameters on the unconstrained scale",
        extra={
            "seconds": time.perf_counter() - t0,
            "ci_kind": "Wald",
            "newton_decrement": decrement,
            "optimiser": str(res.message),
        },
    )
