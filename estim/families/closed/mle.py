"""Maximum likelihood for the closed-population families: Rcapture's log-linear models and the conditional
likelihood of the heterogeneity models."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytensor.tensor as pt
import xarray as xr
from scipy import optimize

from estim.errors import EstimInputError
from estim.families.base import MLEResult
from estim.families.closed.data import OBSERVED, _check, require_histories
from estim.families.closed.model import DEFAULT_NODES, build_closed
from estim.families.loglinear.design import (
    Terms,
    model_design,
)
from estim.families.loglinear.fit import LOG_INTERVAL, log_interval
from estim.families.loglinear.fit import mle as loglinear_mle

# --------------------------------------------------------------------------------------------------------------
# Maximum likelihood: Rcapture's log-linear models (closedp.t), on the log-linear engine
# --------------------------------------------------------------------------------------------------------------

# The closed families whose ML is a Poisson log-linear model, and its terms (estim.families.loglinear)
LOGLINEAR: dict[str, Terms] = {
    "M0": Terms("M0"),
    "Mt": Terms("Mt"),
    "Mb": Terms("Mb"),
    **{
        f"{base}_{suffix}": Terms(capture, heterogeneity)
        for base, capture in (("Mh", "M0"), ("Mth", "Mt"))
        for suffix, heterogeneity in (
            ("chao", "chao"),
            ("poisson2", "poisson"),
            ("darroch", "darroch"),
            ("gamma35", "gamma"),
        )
    },
}


def mle_loglinear(model: str, data: xr.Dataset, **_: Any) -> MLEResult:
    """Rcapture closedp.t's estimate for one named log-linear model (`estim.families.loglinear.fit.mle`)."""
    require_histories(model, data)
    terms = LOGLINEAR[model]
    return checked_loglinear_mle(terms, model_design(terms, data), data)


def checked_loglinear_mle(terms: Terms, design: Any, data: xr.Dataset) -> MLEResult:
    """`estim.families.loglinear.fit.mle`, reported as no estimate when the MLE does not exist (`_no_maximum`):
    every log-linear fit of capture histories, the named models and the ``loglinear`` family's own terms."""
    result = loglinear_mle(terms, design)
    if result.boundary or not result.converged:
        return result
    reason = _no_maximum(terms, design, result, data)
    if not reason:
        return result
    return MLEResult.no_estimate(
        reason,
        converged=True,
        boundary=True,
        extra={**result.extra, "n_hat_at_stop": result.n_hat, "exists": False},
    )


def _no_maximum(terms: Terms, design: Any, result: MLEResult, data: xr.Dataset) -> str:
    """Why the log-linear fit has no finite maximum ("" when it has one): the same existence test as the
    lists' (`estim.families.lists.existence.facial_set`, Fienberg & Rinaldo 2012), on the columns the fit
    kept (Rcapture drops a negative Chao η). IRLS otherwise stops where the fitted counts of some zero cells
    are nearly 0 and reports a number: Mt with an occasion that caught everyone seen gave N-hat = n with an
    SE of 1e-5, where that occasion's capture probability runs to 1."""
    from estim.families.lists.existence import facial_set  # lists import the closed families

    if not (design.counts == 0).any():
        return ""
    dropped = set(result.extra.get("dropped_terms", []))
    if dropped and len(design.strata) > 1:
        return ""  # Chao's η dropped per stratum, but named once for all: not judged
    names = ("intercept", *design.terms)
    xd = np.column_stack([np.ones(len(design.cells)), design.matrix])
    kept = [j for j, nm in enumerate(names) if nm not in dropped]
    implicated = []
    for s, stratum in enumerate(design.strata):
        inside = facial_set(xd[:, kept], design.counts[s])
        prefix = f"{stratum}/" if len(design.strata) > 1 else ""
        implicated += [prefix + c for c, k in zip(design.cells, inside, strict=True) if not k]
    if not implicated:
        return ""
    why = (
        f"the MLE of {terms.label} does not exist: the fitted counts of the zero cells "
        + ", ".join(implicated[:12])
        + (" …" if len(implicated) > 12 else "")
        + " go to 0 (the margins lie on the boundary of the marginal cone), so N-hat is not an estimate"
    )
    x = data["capture"].transpose("history", "occasion").values
    seen = data[OBSERVED].values.sum(axis=tuple(range(data[OBSERVED].ndim - 1))) > 0
    everyone = [
        str(o) for o, col in zip(data["occasion"].values, x[seen].T, strict=True) if col.all()
    ]
    if everyone and terms.capture in ("Mt", "Mb"):
        said = ", ".join(repr(o) for o in everyone)
        why += (
            f"; occasion(s) {said} caught everyone seen: a capture probability runs to 1 and N-hat to the "
            "n seen, with no uncertainty"
        )
    return why


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
# The information from central differences of the exact gradient (`fd_hessian`, step 1e-5) holds about 10 digits
# of its largest eigenvalue: a condition number beyond this is singular to that precision, a flat direction of
# the likelihood. The reference fits (hare, UK lists; Huggins' tests) are below 1e4; Mh_mixture on 3 occasions,
# which the data cannot identify, came out from 4e9 to 1e12, sometimes positive definite (N̂ 344, SE 8e5, "ok").
COND_LIMIT = 1e9
# A capture logit beyond ±this (p within 3e-7 of 0 or 1) is running to infinity: Mth with an occasion that caught
# everyone seen stopped at logit 36 and gave N̂ = n with an SE of 1e-7, reported converged.
MAX_LOGIT = 15.0


def singular_information(hess: np.ndarray) -> bool:
    """Whether an information matrix is singular to the precision of `fd_hessian` (`COND_LIMIT`)."""
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(hess) if np.all(np.isfinite(hess)) else np.inf
    return not cond <= COND_LIMIT


SINGULAR = (
    "Hessian singular: the data do not identify the parameters (a flat direction of the likelihood), so "
    "there is no standard error and N-hat is not an estimate"
)


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


def _starts(
    names: list[str], shapes: list[tuple[int, ...]], theta0: np.ndarray
) -> list[np.ndarray]:
    """The priors' initial point, and for models with a log-scale (σ_h, the class gap) or a class weight
    also starts with those scales small and large: distinct basins of the heterogeneity likelihood."""
    starts = [theta0]
    scaled = [
        i
        for i, (nm, shp) in enumerate(zip(names, shapes, strict=True))
        if nm.endswith("_log__") or nm.endswith("_logodds__")
    ]
    if not scaled:
        return starts
    offsets = np.cumsum([0] + [int(np.prod(shp)) for shp in shapes])
    for shift in (-2.0, 1.0):
        start = theta0.copy()
        for i in scaled:
            start[offsets[i] : offsets[i + 1]] += shift
        starts.append(start)
    return starts


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
    P(seen) below `MIN_P_SEEN` (N̂ running to infinity) is reported as a boundary. ci95 is Chao's
    log-transformed interval (`estim.families.loglinear.fit.log_interval`), as Rcapture's closedpCI gives for
    its normal heterogeneity: N̂ ± 1.96 SE reached below the people seen, and below 0, on Mh_mixture's wide
    fits; N is not a parameter of the conditional likelihood, so there is no profile in N.
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
    # Several starts: the heterogeneity models' likelihood can have more than one maximum (the UK lists'
    # mixture: classes merged, or a class of about one person, 0.48 log-likelihood higher), and which one
    # a single start reaches depends on where it starts (the priors' initial point). The best one is kept.
    best = None
    for start in _starts([v.name for v in free], shapes, theta0):
        res = optimize.minimize(negll, start, jac=True, method="L-BFGS-B", options=OPTIMISER)
        if best is None or (np.isfinite(res.fun) and res.fun < best.fun - 1e-9):
            best = res
    res = best
    theta, hess, decrement = newton_polish(negll, res.x)
    n = counts.sum(axis=1)

    def n_hat_of(theta: np.ndarray) -> float:
        return float(np.sum(n / (1 - np.asarray(p0_fn(*unpack(theta))))))

    gn = np.array(
        [(n_hat_of(theta + e) - n_hat_of(theta - e)) / 2e-5 for e in np.eye(len(theta)) * 1e-5]
    )
    p0 = np.asarray(p0_fn(*unpack(theta)))
    n_hat = n_hat_of(theta)
    names = [v.name for v in free]
    params = {
        f"{nm}[{i}]": float(v)
        for nm, val in zip(names, unpack(theta), strict=True)
        for i, v in enumerate(np.ravel(val))
    }
    running = _running_logits(names, unpack(theta))
    unidentified = _unidentified(name, len(theta), data["capture"].sizes["occasion"])
    notes = list(unidentified)
    if running:
        caught_all = any(r.endswith("+∞") for r in running)
        notes.append(
            f"{', '.join(running)} (beyond ±{MAX_LOGIT:g} on the logit scale): a capture probability runs to "
            + ("1 (an occasion that caught everyone seen?)" if caught_all else "0")
            + ", so N-hat is not an estimate"
        )
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
        or bool(running)
    )
    # a flat direction of the likelihood (not already a boundary, whose Hessian is often singular too): no
    # standard error, and N-hat is no estimate (not converged, as the single-register families)
    flat = bool(unidentified) or (not boundary and singular_information(hess))
    if flat:
        var = np.nan
        notes += [] if unidentified else [SINGULAR]
    else:
        try:
            var = float(np.sum(n * p0 / (1 - p0) ** 2) + gn @ np.linalg.solve(hess, gn))
        except np.linalg.LinAlgError:
            var = np.nan
    se = float(np.sqrt(var)) if var > 0 else float("nan")
    return MLEResult(
        n_hat=n_hat,
        se=se,
        ci95=log_interval(n_hat, se, float(n.sum())),
        parameters=params,
        loglik=-float(negll(theta)[0]),
        converged=bool(decrement < NEWTON_TOLERANCE) and not flat,
        boundary=bool(boundary),
        message="; ".join(
            [f"conditional (Huggins) ML of {name}; parameters on the unconstrained scale", *notes]
        ),
        extra={
            "seconds": time.perf_counter() - t0,
            "ci_kind": LOG_INTERVAL,
            "newton_decrement": decrement,
            "optimiser": str(res.message),
        },
    )


def _unidentified(name: str, parameters: int, occasions: int) -> list[str]:
    """Why a heterogeneity model of the number of captures alone cannot be identified ([] when it can): the
    conditional likelihood of Mh_logitnormal and Mh_mixture reads the data only through the shares seen
    1, …, T times, T − 1 free numbers; more parameters than that leave a curve of maxima (Mh_mixture on 3
    occasions: 3 parameters, 2 shares)."""
    if name not in ("Mh_logitnormal", "Mh_mixture") or parameters <= occasions - 1:
        return []
    return [
        f"{name} has {parameters} parameters but on {occasions} occasions the data give {occasions - 1} "
        f"(the shares seen 1, …, {occasions} times): the likelihood is flat along a curve, so there is no "
        "standard error and N-hat is not an estimate; fit a model with fewer parameters (Mh_logitnormal, "
        "Mh_chao) or use more occasions"
    ]


def _running_logits(names: list[str], values: list[np.ndarray]) -> list[str]:
    """The capture logits (and the mixture's catchable class, and a trap response) beyond ±`MAX_LOGIT`."""
    out = []
    by_name = dict(zip(names, values, strict=True))
    for nm, val in by_name.items():
        if nm.endswith("_log__") or nm.endswith("_logodds__"):
            continue
        out += [
            f"{nm}[{i}] → {'+' if v > 0 else '−'}∞"
            for i, v in enumerate(np.ravel(val))
            if abs(v) > MAX_LOGIT
        ]
    if "class_gap_log__" in by_name and "logit_p" in by_name:
        upper = np.ravel(by_name["logit_p"]) + np.exp(np.ravel(by_name["class_gap_log__"]))
        out += ["the catchable class's logit → +∞" for u in upper if u > MAX_LOGIT]
    return out
