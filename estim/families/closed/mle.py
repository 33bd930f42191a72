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
from estim.families.closed.data import OBSERVED, _check
from estim.families.closed.model import DEFAULT_NODES, build_closed

# --------------------------------------------------------------------------------------------------------------
# Maximum likelihood: Rcapture's log-linear models (closedp.t)
# --------------------------------------------------------------------------------------------------------------


def all_histories(t: int) -> np.ndarray:
    """The 2^T − 1 possible non-empty histories in Rcapture's order (decreasing binary value, 11…1 first)."""
    codes = np.arange(2**t - 1, 0, -1)
    return ((codes[:, None] >> np.arange(t - 1, -1, -1)[None, :]) & 1).astype(np.int8)


def loglinear_design(model: str, t: int) -> np.ndarray:
    """Rcapture's design matrix (without the intercept) over `all_histories(t)` (Rivest & Baillargeon 2007)."""
    h = all_histories(t).astype(float)
    k = h.sum(axis=1)
    if model == "M0":
        return k[:, None]
    if model == "Mt":
        return h
    if model == "Mb":
        first = h.argmax(axis=1)  # occasions before the first capture
        return np.column_stack([first, k - 1])
    chao = np.column_stack([np.maximum(k - j + 1, 0) for j in range(3, t + 1)])
    poisson2 = (2.0**k - 1)[:, None]
    if model == "Mh_chao":
        return np.column_stack([k, chao])
    if model == "Mh_poisson2":
        return np.column_stack([k, poisson2])
    if model == "Mth_poisson2":
        return np.column_stack([h, poisson2])
    raise EstimInputError(f"no log-linear model {model!r}")


def _poisson_glm(
    y: np.ndarray, x: np.ndarray, maxit: int = 200
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Poisson log-link GLM by iteratively reweighted least squares (as R's glm.fit): β and (X'WX)⁻¹."""
    beta = np.linalg.lstsq(x, np.log(y + 0.5), rcond=None)[0]
    dev_old = np.inf
    converged = False
    for _ in range(maxit):
        mu = np.exp(x @ beta)
        z = x @ beta + (y - mu) / mu
        xw = x * mu[:, None]
        beta = np.linalg.solve(x.T @ xw, xw.T @ z)
        mu = np.exp(x @ beta)
        dev = 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - (y - mu))
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-10:
            converged = True
            break
        dev_old = dev
    mu = np.exp(x @ beta)
    cov = np.linalg.inv(x.T @ (x * mu[:, None]))
    return beta, cov, converged


def _loglinear_fit(model: str, y: np.ndarray, t: int) -> dict[str, Any]:
    xd = np.column_stack([np.ones(2**t - 1), loglinear_design(model, t)])
    cols = list(range(xd.shape[1]))
    beta, cov, conv = _poisson_glm(y, xd[:, cols])
    if model == "Mh_chao":
        # Rcapture (Chao.neg): a negative η would make the lower bound meaningless; drop the first negative
        # η column and refit until none is negative.
        while (beta[2:] < 0).any():
            drop = 2 + int(np.argmax(beta[2:] < 0))
            cols.pop(drop)
            beta, cov, conv = _poisson_glm(y, xd[:, cols])
    n = y.sum()
    if model == "Mb":
        # Rcapture's parameterisation: β1 = log[(1 − p)/(1 − c)], β2 = logit c, intercept log[N p (1−c)^(T−1)].
        e0, e1, e2 = np.exp(beta)
        den = 1 + e2 - e1
        n_hat = e0 * (1 + e2) ** t / den
        v = n_hat * np.array([1.0, e1 / den, t * e2 / (1 + e2) - e2 / den])
        se = float(np.sqrt(v @ cov @ v - n_hat))
        params = {"p": 1 - e1 / (1 + e2), "c": e2 / (1 + e2)}
    else:
        f0 = np.exp(beta[0])
        n_hat = n + f0
        se = float(np.sqrt(f0 + f0**2 * cov[0, 0]))
        params = {}
    mu = np.exp(xd[:, cols] @ beta)
    loglik = float(np.sum(y * np.log(mu) - mu - _lgamma1(y)))
    return {
        "n_hat": float(n_hat),
        "se": se,
        "beta": beta,
        "loglik": loglik,
        "converged": conv,
        "params": params,
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
    Mb uses Rcapture's own parameterisation and delta-method formula.
    """
    t0 = time.perf_counter()
    counts, x = _check(data)
    fits = [_loglinear_fit(model, _full_counts(c, x), x.shape[1]) for c in counts]
    n_hat = sum(f["n_hat"] for f in fits)
    se = float(np.sqrt(sum(f["se"] ** 2 for f in fits)))
    z = stats.norm.ppf(0.975)
    params: dict[str, float] = {}
    for s, f in zip(data["stratum"].values, fits, strict=True):
        params[f"N[{s}]"] = f["n_hat"]
        params.update({f"{k}[{s}]": float(v) for k, v in f["params"].items()})
        params.update({f"beta{i}[{s}]": float(b) for i, b in enumerate(f["beta"])})
    return MLEResult(
        n_hat=float(n_hat),
        se=se,
        ci95=(float(n_hat - z * se), float(n_hat + z * se)),
        parameters=params,
        loglik=float(sum(f["loglik"] for f in fits)),
        converged=all(f["converged"] for f in fits),
        message=f"Rcapture-style Poisson log-linear {model}",
        extra={"seconds": time.perf_counter() - t0, "ci_kind": "Wald"},
    )


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
    of the exact gradient on the unconstrained scale. A scale running to zero is reported as a boundary.
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
    res = optimize.minimize(negll, theta0, jac=True, method="L-BFGS-B")
    n = counts.sum(axis=1)

    def n_hat_of(theta: np.ndarray) -> float:
        return float(np.sum(n / (1 - np.asarray(p0_fn(*unpack(theta))))))

    eps = 1e-5
    d = len(res.x)
    hess = np.zeros((d, d))
    gn = np.zeros(d)
    for i in range(d):
        e = np.zeros(d)
        e[i] = eps
        hess[:, i] = (negll(res.x + e)[1] - negll(res.x - e)[1]) / (2 * eps)
        gn[i] = (n_hat_of(res.x + e) - n_hat_of(res.x - e)) / (2 * eps)
    hess = 0.5 * (hess + hess.T)
    p0 = np.asarray(p0_fn(*unpack(res.x)))
    n_hat = n_hat_of(res.x)
    try:
        var = float(np.sum(n * p0 / (1 - p0) ** 2) + gn @ np.linalg.solve(hess, gn))
    except np.linalg.LinAlgError:
        var = np.nan
    se = float(np.sqrt(var)) if var > 0 else float("nan")
    names = [v.name for v in free]
    params = {
        f"{nm}[{i}]": float(v)
        for nm, val in zip(names, unpack(res.x), strict=True)
        for i, v in enumerate(np.ravel(val))
    }
    # A log-scale parameter far below zero means a variance/gap collapsed to 0: the model reduces to a
    # simpler one and its Wald SE is meaningless.
    boundary = any(
        nm.endswith("_log__") and v < -6
        for nm, val in zip(names, unpack(res.x), strict=True)
        for v in np.ravel(val)
    ) or any(
        nm.endswith("_logodds__") and abs(v) > 12
        for nm, val in zip(names, unpack(res.x), strict=True)
        for v in np.ravel(val)
    )
    z = stats.norm.ppf(0.975)
    return MLEResult(
        n_hat=n_hat,
        se=se,
        ci95=(n_hat - z * se, n_hat + z * se),
        parameters=params,
        loglik=-float(res.fun),
        converged=bool(res.success),
        boundary=bool(boundary),
        message=f"conditional (Huggins) ML of {name}; parameters on the unconstrained scale",
        extra={"seconds": time.perf_counter() - t0, "ci_kind": "Wald"},
    )
