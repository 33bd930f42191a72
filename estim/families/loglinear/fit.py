"""Maximum likelihood for log-linear capture–recapture models, as Rcapture's ``closedp`` / ``closedpCI``.

Each stratum's cell counts are a Poisson log-linear model (`estim.families.loglinear.design`), fitted by
iteratively reweighted least squares (R's ``glm.fit``). N̂ = n + exp(β̂₀) with SE² = exp(β̂₀) +
exp(2β̂₀) Var(β̂₀) (Rcapture's ``getN``); the trap-response model Mb has its own N̂ and delta-method SE.
Chao's η must be non-negative: as Rcapture (``neg = TRUE``), the first negative η is dropped and the model
refitted until none is negative.

Profile likelihood (Cormack 1992; Rcapture's ``closedpCI``). Given N, the never-seen cell gets the count
n₀ = N − n and the model is refitted on all cells; the multinomial log-likelihood of N is, up to a constant,

    ℓ(N) = −D(N)/2 + log[n₀^n₀ N! / (N^N n₀!)],

D(N) the Poisson deviance of that fit (the second term turns the Poisson likelihood of the augmented table into
the multinomial one). N̂_profile maximises ℓ (slightly below the Poisson N̂) and the 95 % interval is
{N : ℓ(N) ≥ ℓ(N̂_profile) − χ²₁(0.95)/2}; its lower end is n when ℓ(n) is above that level. ℓ is computed
with the exact log-gamma (Rcapture uses Stirling's approximation above N = 100: the ends then agree to
about 1/(12N)).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy import optimize, stats
from scipy.special import gammaln, xlogy

from estim.errors import EstimInputError
from estim.families.base import MLEResult
from estim.families.loglinear.design import Design, Terms

GLM_TOLERANCE = 1e-10


def poisson_glm(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, maxit: int = 200
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Poisson log-link GLM by iteratively reweighted least squares (as R's glm.fit): β and (X'WX)⁻¹.

    Converged when the deviance changes by less than `GLM_TOLERANCE` of itself (R's criterion, tighter)."""
    # R's start: μ = y + 0.1, then weighted least squares on the working response
    mu = y + 0.1
    eta = np.log(mu)
    beta = np.zeros(x.shape[1])
    dev_old = deviance(y, mu)
    converged = False
    for _ in range(maxit):
        z = eta - offset + (y - mu) / mu
        xw = x * mu[:, None]
        new = np.linalg.lstsq(x.T @ xw, xw.T @ z, rcond=None)[0]
        dev = deviance(y, np.exp(np.clip(x @ new + offset, -700, 700)))
        # R's step halving when the deviance is not finite
        for _half in range(50):
            if np.isfinite(dev):
                break
            new = (new + beta) / 2
            dev = deviance(y, np.exp(np.clip(x @ new + offset, -700, 700)))
        beta = new
        eta = x @ beta + offset
        mu = np.exp(eta)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < GLM_TOLERANCE:
            converged = True
            break
        dev_old = dev
    mu = np.exp(x @ beta + offset)
    info = x.T @ (x * mu[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full(info.shape, np.nan)
    return beta, cov, converged


def deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """The Poisson deviance 2 Σ [y log(y/μ) − (y − μ)]."""
    return float(2 * np.sum(xlogy(y, y) - xlogy(y, mu) - (y - mu)))


def fit_cells(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, nonnegative: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool, list[int]]:
    """β (intercept first, zeros for dropped columns), its covariance, convergence, and the kept columns of
    [1 | x]: Chao's η that come out negative are dropped one at a time, first first (Rcapture's Chao.neg)."""
    xd = np.column_stack([np.ones(len(y)), x])
    keep = list(range(xd.shape[1]))
    nonneg = np.concatenate([[False], nonnegative])
    while True:
        beta, cov, conv = poisson_glm(y, xd[:, keep], offset)
        negative = [i for i, col in enumerate(keep) if nonneg[col] and beta[i] < 0]
        if not negative:
            break
        keep.pop(negative[0])
    full = np.zeros(xd.shape[1])
    full[keep] = beta
    full_cov = np.zeros((xd.shape[1], xd.shape[1]))
    full_cov[np.ix_(keep, keep)] = cov
    return full, full_cov, conv, keep


def _n_hat(design: Design, beta: np.ndarray, cov: np.ndarray, n: float) -> tuple[float, float, str]:
    if design.model.capture == "Mb":
        # Rcapture's parameterisation: β1 = log[(1 − p)/(1 − c)], β2 = logit c, intercept log[N p (1−c)^(t−1)]
        t = design.occasions
        e0, e1, e2 = np.exp(beta)
        den = 1 + e2 - e1
        n_hat = e0 * (1 + e2) ** t / den
        v = n_hat * np.array([1.0, e1 / den, t * e2 / (1 + e2) - e2 / den])
        se = float(np.sqrt(max(v @ cov @ v - n_hat, 0.0)))
        if den <= 0:
            return (
                n_hat,
                se,
                (
                    f"Mb: the fitted log-linear model implies p ≤ 0 (Rcapture's N-hat would be {n_hat:,.1f})"
                ),
            )
        return n_hat, se, ""
    f0 = np.exp(beta[0])
    return n + f0, float(np.sqrt(f0 + f0**2 * cov[0, 0])), ""


def profile_loglik(design: Design, stratum: int, n_total: np.ndarray | float) -> np.ndarray:
    """Cormack's multinomial profile log-likelihood ℓ(N) of one stratum at each N in `n_total` (module
    docstring), N ≥ n continuous."""
    y = design.counts[stratum]
    n = y.sum()
    x = np.vstack([design.matrix, np.zeros(design.matrix.shape[1])])
    offset = np.concatenate([design.offset, [0.0]])
    out = []
    for big_n in np.atleast_1d(n_total):
        n0 = float(big_n) - n
        ya = np.concatenate([y, [n0]])
        beta, _cov, _conv, keep = fit_cells(ya, x, offset, design.nonnegative)
        xd = np.column_stack([np.ones(len(ya)), x])[:, keep]
        mu = np.exp(xd @ beta[keep] + offset)
        ct = xlogy(n0, n0) - xlogy(big_n, big_n) + gammaln(big_n + 1) - gammaln(n0 + 1)
        out.append(-deviance(ya, mu) / 2 + ct)
    return np.asarray(out)


def profile_interval(
    design: Design, stratum: int, n_hat: float, level: float = 0.95, max_factor: float = 3.0
) -> dict[str, Any]:
    """N̂ maximising the profile likelihood and the `level` interval (module docstring); an end the likelihood
    does not bound within 1,000 × N̂ is inf."""
    n = float(design.counts[stratum].sum())

    def ell(v: float) -> float:
        return float(profile_loglik(design, stratum, v)[0])

    upper_search = max(1.5 * n_hat, n + 1.0)
    res = optimize.minimize_scalar(
        lambda v: -ell(v), bounds=(n, upper_search), method="bounded", options={"xatol": 1e-6}
    )
    n_max, l_max = float(res.x), -float(res.fun)
    cut = l_max - stats.chi2.ppf(level, 1) / 2
    lower = n if ell(n) >= cut else optimize.brentq(lambda v: ell(v) - cut, n, n_max, xtol=1e-6)
    hi = max(max_factor * n_hat, n_max + 1.0)
    while ell(hi) >= cut and hi < 1000 * max(n_hat, 1.0):
        hi *= 2
    upper = (
        optimize.brentq(lambda v: ell(v) - cut, n_max, hi, xtol=1e-6)
        if ell(hi) < cut
        else float("inf")
    )
    return {
        "n_hat": n_max,
        "ci95": (float(lower), float(upper)),
        "method": "multinomial profile likelihood (Cormack 1992), as Rcapture's closedpCI",
    }


def mle(terms: Terms, design: Design, *, profile: bool = True) -> MLEResult:
    """Rcapture's estimate of N for one log-linear model; strata are fitted separately and summed.

    A fit whose N̂ is not a finite number ≥ n, or (Mb) implies p ≤ 0, is reported as a failure on the boundary,
    not as a number. With one stratum, the profile-likelihood interval is computed beside the Wald one."""
    t0 = time.perf_counter()
    fits = []
    for s in range(len(design.strata)):
        y = design.counts[s]
        n = float(y.sum())
        if n == 0:
            raise EstimInputError(f"stratum {design.strata[s]!r}: nobody seen")
        beta, cov, conv, keep = fit_cells(y, design.matrix, design.offset, design.nonnegative)
        n_hat, se, failed = _n_hat(design, beta, cov, n)
        if not failed and not (np.isfinite(n_hat) and n_hat >= n and np.isfinite(se)):
            failed = (
                f"{terms.label}: N-hat {n_hat:,.1f} (SE {se:,.1f}) is not a finite estimate of at least "
                f"n = {n:,.0f}"
            )
        xd = np.column_stack([np.ones(len(y)), design.matrix])
        mu = np.exp(xd @ beta + design.offset)
        cells_y, cells_mu = y, mu
        if design.histories is not None:
            # the f_k fit's expected count of one history with k captures is μ_k / C(t, k)
            full, cell = design.histories
            cells_y, cells_mu = full[s], (mu / np.exp(design.offset))[cell]
        if not failed and np.linalg.matrix_rank(xd[:, keep]) < len(keep):
            failed = (
                f"{terms.label}: the design matrix is not of full rank (a term is not estimable)"
            )
        fits.append(
            {
                "n_hat": n_hat,
                "se": se,
                "beta": beta,
                "dropped": [j for j in range(xd.shape[1]) if j not in keep],
                "deviance": deviance(cells_y, cells_mu),
                "df": len(cells_y) - len(keep),
                "loglik": float(np.sum(xlogy(cells_y, cells_mu) - cells_mu - gammaln(cells_y + 1))),
                "converged": conv,
                "failed": failed,
            }
        )
    failed = "; ".join(f["failed"] for f in fits if f["failed"])
    n_hat = sum(f["n_hat"] for f in fits)
    se = float(np.sqrt(sum(f["se"] ** 2 for f in fits)))
    z = stats.norm.ppf(0.975)
    names = ("intercept", *design.terms)
    params: dict[str, float] = {}
    for s, f in zip(design.strata, fits, strict=True):
        params[f"N[{s}]"] = f["n_hat"]
        params.update({f"{nm}[{s}]": float(b) for nm, b in zip(names, f["beta"], strict=True)})
    prof = None
    if profile and not failed and len(fits) == 1 and terms.capture != "Mb":
        prof = profile_interval(design, 0, n_hat)
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
        message=failed or f"Poisson log-linear {terms.label} (as Rcapture)",
        extra={
            "seconds": time.perf_counter() - t0,
            "ci_kind": "Wald",
            "deviance": sum(f["deviance"] for f in fits),
            "df": sum(f["df"] for f in fits),
            "aic": float(
                -2 * sum(f["loglik"] for f in fits)
                + 2 * sum(len(f["beta"]) - len(f["dropped"]) for f in fits)
            ),
            "dropped_terms": [names[j] for f in fits for j in f["dropped"]],
        },
        profile=prof,
    )
