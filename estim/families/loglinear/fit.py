"""Maximum likelihood for log-linear capture–recapture models, as Rcapture's ``closedp`` / ``closedpCI``.

Each stratum's cell counts are a Poisson log-linear model (`estim.families.loglinear.design`), fitted by
iteratively reweighted least squares (R's ``glm.fit``, with the glm2 package's step halving: `poisson_glm`).
N̂ = n + exp(β̂₀) with SE² = exp(β̂₀) + exp(2β̂₀) Var(β̂₀) (Rcapture's ``getN``); the trap-response model Mb
has its own N̂ and delta-method SE. Chao's η must be non-negative: as Rcapture (``neg = TRUE``), the first
negative η is dropped and the model refitted until none is negative.

Profile likelihood (Cormack 1992; Rcapture's ``closedpCI``). Given N, the never-seen cell gets the count
n₀ = N − n and the model is refitted on all cells; the multinomial log-likelihood of N is, up to a constant,

    ℓ(N) = −D(N)/2 + log[n₀^n₀ N! / (N^N n₀!)],

D(N) the Poisson deviance of that fit (the second term turns the Poisson likelihood of the augmented table into
the multinomial one). N̂_profile maximises ℓ (slightly below the Poisson N̂) and the 95 % interval is
{N : ℓ(N) ≥ ℓ(N̂_profile) − χ²₁(0.95)/2}; its lower end is n when ℓ(n) is above that level. ℓ is computed
with the exact log-gamma (Rcapture uses Stirling's approximation above N = 100: the ends then agree to
about 1/(12N)). Mb's N̂ is not n + exp(β̂₀), and its profile is that of its removal likelihood
(`mb_profile_loglik`). The interval reported as ci95 is Chao's log-transformed one (`log_interval`).
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
EPSILON = float(np.finfo(float).eps)  # R's .Machine$double.eps, the floor of μ
# the Newton decrement at which an IRLS fit has converged: the maximum is less than 0.001 SE away
GLM_DECREMENT = 1e-6


def _mean(eta: np.ndarray) -> np.ndarray:
    """exp(η) as R's log link computes it (``make.link("log")$linkinv``): never below machine epsilon, so
    that a cell whose expected count underflows (Poisson2's 2^k − 1 over 12 occasions puts exp(−800) in the
    cells k ≥ 8 once τ < 0) keeps a finite working response (y − μ)/μ; and not above exp(700)."""
    return np.maximum(np.exp(np.minimum(eta, 700.0)), EPSILON)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The least-squares solution of a u = b for a symmetric positive semi-definite a (X'WX), equilibrated
    first: a column whose weighted norm is 10⁻⁹ of the others' (Poisson2's 2^k − 1 where the counts are) is
    otherwise lost to the others' rounding."""
    d = np.sqrt(np.diag(a))
    d = np.where(d > 0, d, 1.0)
    return np.linalg.lstsq(a / np.outer(d, d), b / d, rcond=None)[0] / d


def poisson_glm(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, maxit: int = 200
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Poisson log-link GLM by iteratively reweighted least squares (as R's glm.fit): β and (X'WX)⁻¹.

    As R, μ is floored (`_mean`) and a step whose deviance is not finite is halved. Here also X'WX is
    equilibrated before each solve (`_solve`: as accurate here as R's QR of √W X, and not slowed, as a QR of
    4,095 rows is, by BLAS threads on a busy machine), and a step that raises the deviance is halved, as the
    glm2 package does (Marschner 2011). Converged when the deviance changes by less than `GLM_TOLERANCE` of
    itself (R's criterion, tighter) and the Newton decrement gᵀ(X'WX)⁻¹g is below `GLM_DECREMENT` (the score,
    not only the deviance, is at a maximum). Counts adding up to more than 2^53 (beyond the integers a double
    holds), or a step linear algebra cannot solve, raise ``LinAlgError``: the callers report no estimate.

    Before, Poisson2 over 12 occasions or more stopped with ``LinAlgError`` (the profile's fits divided 0 by
    0). With μ floored alone, the unequilibrated normal equations lost τ from 26 occasions on (2^26 = 6.7e7)
    and IRLS stopped, as converged, below the maximum (over 28: N̂ 62.7 with n = 62, where the MLE is 170)."""
    total = float(np.sum(y))
    if not (np.isfinite(total) and total <= 2.0**53):
        raise np.linalg.LinAlgError(
            f"the counts add up to {total:.3g}, beyond 2^53, the largest integer a double holds exactly"
        )
    peak = np.abs(x).max(axis=0) if x.size else np.ones(x.shape[1])
    scale = np.where(peak > 0, peak, 1.0)
    xs = x / scale
    nan_cov = np.full((x.shape[1], x.shape[1]), np.nan)
    # R's start: μ = y + 0.1, then weighted least squares on the working response
    mu = y + 0.1
    eta = np.log(mu)
    beta = np.zeros(x.shape[1])
    dev_old = deviance(y, mu)
    converged = False
    for iteration in range(maxit):
        z = eta - offset + (y - mu) / mu
        xw = xs * mu[:, None]
        new = _solve(xs.T @ xw, xw.T @ z)
        dev = deviance(y, _mean(xs @ new + offset))
        # R's step halving when the deviance is not finite, and (after the first step, which starts from
        # μ = y + 0.1 rather than from coefficients) glm2's when it increases: plain IRLS overshoots on a
        # column as steep as Poisson2's 2^k − 1 over 12 occasions and oscillated there, the profile
        # likelihood at N = 1,650 coming out at −4e11 instead of −1,037
        for _half in range(50):
            worse = iteration > 0 and dev - dev_old > GLM_TOLERANCE * (abs(dev) + 0.1)
            if np.isfinite(dev) and not worse:
                break
            new = (new + beta) / 2
            dev = deviance(y, _mean(xs @ new + offset))
        beta = new
        eta = xs @ beta + offset
        mu = _mean(eta)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < GLM_TOLERANCE:
            info = xs.T @ (xs * mu[:, None])
            score = xs.T @ (y - mu)
            try:
                decrement = float(score @ _solve(info, score))
            except np.linalg.LinAlgError:
                decrement = np.inf
            if decrement < GLM_DECREMENT:
                converged = True
                break
        dev_old = dev
    info = xs.T @ (xs * mu[:, None])
    d = np.sqrt(np.diag(info))
    d = np.where(d > 0, d, 1.0)
    try:
        cov = np.linalg.inv(info / np.outer(d, d)) / np.outer(d * scale, d * scale)
    except np.linalg.LinAlgError:
        cov = nan_cov
    return beta / scale, cov, converged


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
        var = float(v @ cov @ v - n_hat)
        se = float(np.sqrt(var)) if var >= 0 else float("nan")  # Rcapture: NaN, not 0
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
    docstring), N ≥ n continuous; NaN where the fit of the augmented table did not converge. For Mb, the
    removal likelihood's (`mb_profile_loglik`)."""
    if design.model.capture == "Mb":
        return mb_profile_loglik(design, stratum, n_total)
    y = design.counts[stratum]
    n = y.sum()
    x = np.vstack([design.matrix, np.zeros(design.matrix.shape[1])])
    offset = np.concatenate([design.offset, [0.0]])
    out = []
    for big_n in np.atleast_1d(n_total):
        n0 = float(big_n) - n
        ya = np.concatenate([y, [n0]])
        try:
            beta, _cov, conv, keep = fit_cells(ya, x, offset, design.nonnegative)
        except np.linalg.LinAlgError:
            out.append(np.nan)
            continue
        xd = np.column_stack([np.ones(len(ya)), x])[:, keep]
        mu = _mean(xd @ beta[keep] + offset)
        ct = xlogy(n0, n0) - xlogy(big_n, big_n) + gammaln(big_n + 1) - gammaln(n0 + 1)
        out.append(-deviance(ya, mu) / 2 + ct if conv else np.nan)
    return np.asarray(out)


def mb_profile_loglik(design: Design, stratum: int, n_total: np.ndarray | float) -> np.ndarray:
    """Mb's multinomial profile log-likelihood of N (Otis et al. 1978), up to a constant.

    Under Mb an animal first caught on occasion f contributes (1 − p)^(f−1) p before its first capture, and
    one never caught (1 − p)^t; what follows a first capture depends on c alone. So with n animals seen and
    S = Σ (f − 1), ℓ(N) = log N!/(N − n)! + n log p̂ + (S + (N − n) t) log(1 − p̂), p̂ = n / (n + S + (N − n) t)
    (the removal likelihood of the first captures; the c part does not depend on N). Rcapture's closedpCI has
    no interval for Mb."""
    y = design.counts[stratum]
    n = float(y.sum())
    s = float(y @ design.matrix[:, design.terms.index("before_first")])
    t = design.occasions
    big_n = np.atleast_1d(np.asarray(n_total, dtype=float))
    misses = s + (big_n - n) * t
    p = n / (n + misses)
    return gammaln(big_n + 1) - gammaln(big_n - n + 1) + xlogy(n, p) + xlogy(misses, 1 - p)


class _ProfileFailed(Exception):
    """A fit along the profile did not converge: no profile interval rather than a wrong one."""


def profile_interval(
    design: Design, stratum: int, n_hat: float, level: float = 0.95, max_factor: float = 3.0
) -> dict[str, Any] | None:
    """N̂ maximising the profile likelihood and the `level` interval (module docstring); an end the likelihood
    does not bound within 1,000 × N̂ is inf (and N̂ too when ℓ still rises there). None when a fit along
    the profile did not converge."""
    n = float(design.counts[stratum].sum())

    def ell(v: float) -> float:
        value = float(profile_loglik(design, stratum, v)[0])
        if not np.isfinite(value):
            raise _ProfileFailed
        return value

    try:
        n_max, lower, upper = _profile_ends(ell, n, n_hat, level, max_factor)
    except _ProfileFailed:
        return None
    return {
        "n_hat": n_max,
        "ci95": (float(lower), float(upper)),
        "method": (
            "multinomial profile likelihood of Mb's first captures (Otis et al. 1978)"
            if design.model.capture == "Mb"
            else "multinomial profile likelihood (Cormack 1992), as Rcapture's closedpCI"
        ),
    }


def _profile_ends(
    ell: Any, n: float, n_hat: float, level: float, max_factor: float
) -> tuple[float, float, float]:
    """The maximum of ℓ over N ≥ n and the ends of {N : ℓ(N) ≥ ℓ_max − χ²₁(level)/2} (Rcapture's search:
    the maximum within (n, 1.5 N̂), the upper end beyond it; here ℓ is followed upward while it still rises
    at the search's end, up to 1,000 × N̂, beyond which N̂ and the upper end are inf)."""
    ceiling = 1000 * max(n_hat, 1.0)
    upper_search = max(1.5 * n_hat, n + 1.0)
    res = optimize.minimize_scalar(
        lambda v: -ell(v), bounds=(n, upper_search), method="bounded", options={"xatol": 1e-6}
    )
    n_max, l_max = float(res.x), -float(res.fun)
    while n_max > upper_search * (1 - 1e-3) and ell(2 * upper_search) > l_max:
        if upper_search >= ceiling:  # ℓ still rises: no maximum, no upper end
            n_max, l_max = float("inf"), ell(2 * upper_search)
            break
        res = optimize.minimize_scalar(
            lambda v: -ell(v),
            bounds=(upper_search, 4 * upper_search),
            method="bounded",
            options={"xatol": 1e-6},
        )
        upper_search *= 4
        n_max, l_max = float(res.x), -float(res.fun)
    cut = l_max - stats.chi2.ppf(level, 1) / 2

    def gap(v: float) -> float:
        return ell(v) - cut

    top = n_max if np.isfinite(n_max) else 2 * upper_search
    lower = n if gap(n) >= 0 else optimize.brentq(gap, n, top, xtol=1e-6)
    if not np.isfinite(n_max):
        return n_max, float(lower), float("inf")
    hi = max(max_factor * n_hat, n_max + 1.0)
    while gap(hi) >= 0 and hi < ceiling:
        hi *= 2
    upper = optimize.brentq(gap, n_max, hi, xtol=1e-6) if gap(hi) < 0 else float("inf")
    return n_max, float(lower), float(upper)


def log_interval(n_hat: float, se: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Chao's (1987) log-transformed interval for N: N̂ − n log-normal, so the ends are n + (N̂ − n)/C and
    n + (N̂ − n)·C with C = exp(z √log(1 + SE²/(N̂ − n)²)). Never below n, the people seen, unlike N̂ ± z SE.
    Rcapture's closedpCI gives it for its normal-heterogeneity model, singleRcapture as ``lognormal``.
    (n, inf) when N̂ = n with an SE; NaN when N̂ or the SE is not a number."""
    f0 = n_hat - n
    if not (np.isfinite(f0) and np.isfinite(se) and f0 >= 0 and se >= 0):
        return float("nan"), float("nan")
    if f0 == 0:
        return float(n), float(n if se == 0 else np.inf)
    c = np.exp(stats.norm.ppf(0.5 + level / 2) * np.sqrt(np.log1p((se / f0) ** 2)))
    return float(n + f0 / c), float(n + f0 * c)


# the interval estim reports as ci95 for the closed-population families (extra["ci_kind"])
LOG_INTERVAL = "log-transformed (Chao 1987): n + (N-hat − n)/C to n + (N-hat − n)·C, never below n"


def _broke_down(terms: Terms, error: Exception, seconds: float) -> MLEResult:
    """No estimate where the fit broke down numerically (`poisson_glm`'s ``LinAlgError``)."""
    return MLEResult.no_estimate(
        f"{terms.label}: the log-linear fit failed numerically ({type(error).__name__}: {error})",
        converged=False,
        extra={"seconds": seconds, "ci_kind": LOG_INTERVAL},
    )


def mle(terms: Terms, design: Design, *, profile: bool = True) -> MLEResult:
    """Rcapture's estimate of N for one log-linear model; strata are fitted separately and summed.

    A fit whose N̂ is not a finite number ≥ n, or (Mb) implies p ≤ 0, is reported as a failure on the boundary,
    not as a number. ci95 is Chao's log-transformed interval (`log_interval`: N̂ ± 1.96 SE reached below the
    people seen, and below 0, on Mb's and the Mh models' wide fits); with one stratum the profile-likelihood
    interval is computed beside it (Mb's from its removal likelihood, `mb_profile_loglik`)."""
    t0 = time.perf_counter()
    fits = []
    for s in range(len(design.strata)):
        y = design.counts[s]
        n = float(y.sum())
        if n == 0:
            raise EstimInputError(f"stratum {design.strata[s]!r}: nobody seen")
        try:
            beta, cov, conv, keep = fit_cells(y, design.matrix, design.offset, design.nonnegative)
        except np.linalg.LinAlgError as error:
            return _broke_down(terms, error, time.perf_counter() - t0)
        n_hat, se, failed = _n_hat(design, beta, cov, n)
        if not failed and not (np.isfinite(n_hat) and n_hat >= n and np.isfinite(se)):
            failed = (
                f"{terms.label}: N-hat {n_hat:,.1f} (SE {se:,.1f}) is not a finite estimate of at least "
                f"n = {n:,.0f}"
            )
        xd = np.column_stack([np.ones(len(y)), design.matrix])
        mu = _mean(xd @ beta + design.offset)
        cells_y, cells_mu = y, mu
        if design.histories is not None:
            # the f_k fit's expected count of one history with k captures is μ_k / C(t, k)
            full, cell = design.histories
            cells_y, cells_mu = full[s], (mu / np.exp(design.offset))[cell]
        kept = xd[:, keep]
        peak = np.abs(kept).max(axis=0)
        # judged with each column at its own scale (Poisson2's 2^k − 1 reaches 2^30 beside 0/1 columns)
        if not failed and np.linalg.matrix_rank(kept / np.where(peak > 0, peak, 1.0)) < len(keep):
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
    n_seen = float(design.counts.sum())
    names = ("intercept", *design.terms)
    params: dict[str, float] = {}
    for s, f in zip(design.strata, fits, strict=True):
        params[f"N[{s}]"] = f["n_hat"]
        params.update({f"{nm}[{s}]": float(b) for nm, b in zip(names, f["beta"], strict=True)})
    prof, notes = None, {}
    if profile and not failed and len(fits) == 1:
        prof = profile_interval(design, 0, n_hat)
        if prof is None:
            notes["profile"] = "not computed: a fit along the profile likelihood did not converge"
    if failed:
        n_hat, se = float("nan"), float("nan")
    return MLEResult(
        n_hat=float(n_hat),
        se=se,
        ci95=log_interval(n_hat, se, n_seen),
        parameters=params,
        loglik=float(sum(f["loglik"] for f in fits)),
        converged=all(f["converged"] for f in fits),
        boundary=bool(failed),
        message=failed or f"Poisson log-linear {terms.label} (as Rcapture)",
        extra={
            "seconds": time.perf_counter() - t0,
            "ci_kind": LOG_INTERVAL,
            **notes,
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
