"""Single-register frequency models: how many people did one register never see?

Each person in the register was seen K = k ≥ 1 times (apprehended, treated, …); people with K = 0 are the
unknown part of the population. A model for the distribution of K, fitted to the observed k ≥ 1 only (the
*zero-truncated*, i.e. conditional, likelihood), extrapolates P(K = 0) = p0 and so the population size:
the Horvitz–Thompson estimate N̂ = Σ_x n_x / (1 − p0_x) over covariate patterns x with n_x people observed.

The data are the frequencies f_{x,k} (people in covariate pattern x seen exactly k times) built by
`frequency_data`; every cost scales with patterns × k, never with people.

Families (registered in `estim.families.FAMILIES`):

* ``ztpoisson``, ``ztgeometric``, ``ztnegbin``: zero-truncated Poisson / geometric / negative binomial
  regression, log λ_x = X_x β (treatment coding of the covariates, intercept only when there are none). The
  Poisson assumes everyone in a pattern has the same rate; the geometric (a Poisson with exponentially
  distributed rates) and the negative binomial (gamma-distributed rates, variance λ(1 + αλ)) allow
  heterogeneity and give larger N̂.
* ``oiztpoisson``, ``oiztgeometric``: one-inflated zero-truncated models (singleRcapture's definition:
  inflate the untruncated count, then truncate). A share ω of the population behaves as "seen once, never
  again" (e.g. people who leave after a first apprehension): P*(1) = ω + (1 − ω)P(1), P*(k) = (1 − ω)P(k)
  for k ≥ 2, P*(0) = (1 − ω)p0; observed counts follow P*(k) / (1 − (1 − ω)p0). Excess singletons then
  no longer inflate N̂ the way they do under the plain model.
* ``zelterman``: Zelterman's regression: among people seen once or twice, P(K = 2 | K ∈ {1, 2}) = λ/(2 + λ),
  i.e. logistic regression with logit X β and λ = 2 exp(X β) (the local Poisson rate that f2/f1 = λ/2
  estimates), and N̂ = Σ over all observed people 1/(1 − exp(−λ_i)) (as singleRcapture). Robust to
  heterogeneity that only shows at k ≥ 3.
* Closed forms `chao` (lower bound n + f1²/(2 f2), Chao 1987) and `zelterman` (n / (1 − exp(−2 f2/f1))).

Bayesian models (``build``) observe the frequency array itself (variable ``frequency``, dims (pattern, k)),
with log-likelihood f_{x,k} · log P(K = k | K ≥ 1, x) per cell, so ``pm.compute_log_likelihood`` gives one
term per cell and LOO works. N is not a parameter: under the prior p(N_x) ∝ 1/N_x for each pattern,

    Σ_{N ≥ n} (1/N) · N!/(N − n)! · p0^{N−n} = (n − 1)! Σ_{m ≥ 0} C(m + n − 1, m) p0^m = (n − 1)!/(1 − p0)^n,

so integrating N out of the full (unconditional) multinomial likelihood N!/((N − n)! Π f_k!) p0^{N−n}
Π P(k)^{f_k} leaves, up to a constant, exactly Π (P(k)/(1 − p0))^{f_k}: the conditional likelihood that the
model samples. Given the parameters the posterior of N is ∝ C(N − 1, n − 1) p0^{N−n} (1 − p0)^n, i.e.
N_x − n_x | θ ~ NegativeBinomial(n_x, 1 − p0_x) (failures before n_x successes); ``population`` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import scipy.optimize
import scipy.special
import scipy.stats
import xarray as xr
from pytensor.compile.mode import Mode

from estim.errors import EstimInputError
from estim.families import kernels
from estim.families.base import Family, MLEResult, register, rng_from
from estim.priors import Prior, merge_priors

OBSERVED = "frequency"
Z95 = scipy.stats.norm.ppf(0.975)
# Above these, a fitted p0 or N̂ says the model put the maximum at infinity rather than at a finite population.
N_HAT_LIMIT = 1e8
P0_LIMIT = 1.0 - 1e-6
LOG_ALPHA_BOUNDS = (-15.0, 15.0)
ALPHA_LIMIT = 1e4


# --------------------------------------------------------------------------------------------------------------
# data


def frequency_data(
    table: pd.DataFrame,
    *,
    count: str,
    covariates: Sequence[str] = (),
    weight: str | None = None,
) -> xr.Dataset:
    """Frequencies f_{x,k}: people in covariate pattern x seen exactly k times, k = 1..K.

    ``table`` has one row per person (``weight=None``) or per cell with the number of people in ``weight``.
    Covariates are categorical (values are turned into strings). Returns an ``xr.Dataset`` with ``frequency``
    (pattern, k) int64, the covariate columns as string variables over ``pattern``, and coords ``k`` = 1..K and
    ``pattern`` (labels such as ``"gender=male, age=<40yrs"``; ``"all"`` without covariates).
    """
    covariates = list(covariates)
    needed = [count, *covariates, *([weight] if weight else [])]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise EstimInputError(f"columns {missing} not in the table (it has {list(table.columns)})")
    frame = table[needed].copy()
    if frame[needed].isna().any().any():
        bad = [c for c in needed if frame[c].isna().any()]
        raise EstimInputError(f"missing values in column(s) {bad}")
    k = pd.to_numeric(frame[count], errors="coerce")
    if k.isna().any() or (k != np.round(k)).any() or (k < 1).any():
        raise EstimInputError(
            f"column {count!r} must hold whole numbers ≥ 1 (times seen; people seen 0 times are unknown)"
        )
    frame["_k"] = k.astype(np.int64)
    if weight:
        w = pd.to_numeric(frame[weight], errors="coerce")
        if w.isna().any() or (w < 0).any() or (w != np.round(w)).any():
            raise EstimInputError(f"column {weight!r} must hold whole numbers ≥ 0 (people per row)")
        frame["_w"] = w.astype(np.int64)
    else:
        frame["_w"] = np.int64(1)
    for c in covariates:
        frame[c] = frame[c].astype(str)
    if covariates:
        cells = frame.groupby([*covariates, "_k"], sort=True, observed=True)["_w"].sum()
        wide = cells.unstack("_k", fill_value=0)
    else:
        wide = frame.groupby("_k")["_w"].sum().to_frame().T
    wide = wide.loc[wide.sum(axis=1) > 0]
    n_k = int(frame["_k"].max())
    wide = wide.reindex(columns=range(1, n_k + 1), fill_value=0)
    if covariates:
        index = wide.index if isinstance(wide.index, pd.MultiIndex) else None
        values = [tuple(v) for v in index] if index is not None else [(v,) for v in wide.index]
        labels = [
            ", ".join(f"{c}={v}" for c, v in zip(covariates, row, strict=True)) for row in values
        ]
    else:
        values, labels = [()], ["all"]
    ds = xr.Dataset(
        {OBSERVED: (("pattern", "k"), wide.to_numpy(dtype=np.int64))},
        coords={"pattern": labels, "k": np.arange(1, n_k + 1, dtype=np.int64)},
    )
    for j, c in enumerate(covariates):
        ds[c] = ("pattern", np.array([row[j] for row in values], dtype=str))
    ds.attrs.update(count=count, covariates=covariates, n_observed=int(wide.to_numpy().sum()))
    return ds


def _covariates(data: xr.Dataset, covariates: Sequence[str] | None) -> list[str]:
    available = [str(v) for v in data.data_vars if v != OBSERVED and data[v].dims == ("pattern",)]
    if covariates is None:
        return available
    unknown = [c for c in covariates if c not in available]
    if unknown:
        raise EstimInputError(f"covariates {unknown} not in the data (it has {available})")
    return list(covariates)


def design(
    data: xr.Dataset, covariates: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded design (patterns × terms, without the intercept column) and the term names.

    The reference level of each covariate is its first level in sorted order (as R's default factor coding,
    so coefficients compare with singleRcapture); terms are named ``"covariate[level]"``.
    """
    columns, names = [], []
    for c in _covariates(data, covariates):
        values = data[c].values.astype(str)
        for level in sorted(set(values))[1:]:
            columns.append((values == level).astype(float))
            names.append(f"{c}[{level}]")
    x = np.column_stack(columns) if columns else np.zeros((data.sizes["pattern"], 0))
    return x, names


# --------------------------------------------------------------------------------------------------------------
# the families


@dataclass(frozen=True)
class _Spec:
    name: str
    base: str  # "poisson" | "geometric" | "negbin" | "zelterman"
    alpha: bool = False
    omega: bool = False

    def log_prob(
        self, k: np.ndarray, eta: Any, xp: Any, alpha: Any = None, omega: Any = None
    ) -> Any:
        if self.base == "zelterman":
            return kernels.zelterman_log_prob(k, eta, xp)
        return kernels.log_truncated_pmf(self.base, k, eta, xp, alpha, omega)

    def log_p0(self, eta: Any, xp: Any, alpha: Any = None, omega: Any = None) -> Any:
        if self.base == "zelterman":
            return kernels.zelterman_log_p0(eta, xp)
        return kernels.log_p0(self.base, eta, xp, alpha, omega)

    def support(self, n_k: int) -> np.ndarray:
        """Which k-cells enter the likelihood (Zelterman's uses k ∈ {1, 2} only)."""
        k = np.arange(1, n_k + 1)
        return (k <= 2).astype(float) if self.base == "zelterman" else np.ones(n_k)


def _default_priors(spec: _Spec) -> dict[str, Prior]:
    priors = {
        # log λ of the reference pattern (Zelterman: log(λ/2), the logit of P(K = 2 | K ∈ {1, 2})):
        # ±5 covers rates from ~0.01 to ~150 times per person.
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


def _cell_random(
    log_prob: np.ndarray,
    n: np.ndarray,
    support: np.ndarray,
    rng: np.random.Generator | None = None,
    size: tuple[int, ...] | None = None,
) -> np.ndarray:
    # Replicated frequencies over k = 1..K within the model's support (counts above K are not replicated).
    return kernels.replicate_counts(np.where(support, log_prob, -np.inf), n, rng, size)


def _build(spec: _Spec):
    def build(
        data: xr.Dataset,
        priors: Mapping[str, Prior] | None = None,
        *,
        covariates: Sequence[str] | None = None,
    ) -> pm.Model:
        x, terms = design(data, covariates)
        defaults = _default_priors(spec)
        if not terms:
            defaults.pop("beta")
        p = merge_priors(defaults, priors)
        f = data[OBSERVED].values.astype(np.int64)
        k = data["k"].values
        support = spec.support(len(k))
        n_x = (f * support).sum(axis=1, keepdims=True)
        coords = {"pattern": data["pattern"].values.tolist(), "k": k.tolist()}
        if terms:
            coords["term"] = terms
        with pm.Model(coords=coords) as model:
            eta = p["beta_intercept"].create("beta_intercept")
            if terms:
                beta = p["beta"].create("beta", dims="term")
                eta = eta + pt.dot(pt.as_tensor(x), beta)
            else:
                eta = pt.ones(len(f)) * eta
            alpha = p["alpha"].create("alpha") if spec.alpha else None
            omega = p["omega"].create("omega") if spec.omega else None
            log_prob = spec.log_prob(k[None, :], eta[:, None], pt, alpha, omega)
            pm.CustomDist(
                OBSERVED,
                log_prob,
                pt.as_tensor(n_x.astype(np.int64)),
                pt.as_tensor(support[None, :]),
                logp=_cell_logp,
                random=_cell_random,
                observed=f,
                dims=("pattern", "k"),
            )
        return model

    return build


def _posterior_dataset(posterior: Any) -> xr.Dataset:
    if isinstance(posterior, xr.Dataset):
        return posterior
    if isinstance(posterior, xr.DataTree):
        node = posterior["posterior"] if "posterior" in posterior.children else posterior
        return node.to_dataset()
    raise TypeError(
        f"posterior must be an xarray DataTree or Dataset, not {type(posterior).__name__}"
    )


def _population(spec: _Spec):
    def population(
        data: xr.Dataset,
        posterior: Any,
        rng: int | np.random.Generator | None = None,
        *,
        covariates: Sequence[str] | None = None,
    ) -> xr.DataArray:
        """Draws of N = Σ_x N_x with N_x − n_x | θ ~ NegativeBinomial(n_x, 1 − p0_x) (prior 1/N_x)."""
        rng = rng_from(rng)
        post = _posterior_dataset(posterior)
        x, terms = design(data, covariates)
        eta = post["beta_intercept"].values[..., None]  # (chain, draw, 1)
        if terms:
            beta = post["beta"].transpose("chain", "draw", "term").values
            eta = eta + beta @ x.T
        else:
            eta = np.broadcast_to(eta, (*eta.shape[:2], x.shape[0]))
        alpha = post["alpha"].values[..., None] if spec.alpha else None
        omega = post["omega"].values[..., None] if spec.omega else None
        p_seen = -np.expm1(spec.log_p0(eta, np, alpha, omega))
        # Zelterman's N̂ counts every observed person, not only those seen once or twice.
        n_x = data[OBSERVED].values.sum(axis=1)
        unseen = rng.negative_binomial(
            np.broadcast_to(n_x, p_seen.shape), np.clip(p_seen, 1e-300, 1.0)
        )
        total = unseen.sum(axis=-1) + n_x.sum()
        return xr.DataArray(
            total.astype(np.int64),
            dims=("chain", "draw"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values},
            name="N",
        )

    return population


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


# --------------------------------------------------------------------------------------------------------------
# registration

_SPECS = {
    "ztpoisson": (_Spec("ztpoisson", "poisson"), "zero-truncated Poisson regression"),
    "ztgeometric": (_Spec("ztgeometric", "geometric"), "zero-truncated geometric regression"),
    "ztnegbin": (
        _Spec("ztnegbin", "negbin", alpha=True),
        "zero-truncated negative binomial regression (dispersion alpha)",
    ),
    "oiztpoisson": (
        _Spec("oiztpoisson", "poisson", omega=True),
        "one-inflated zero-truncated Poisson regression (inflate, then truncate; share omega)",
    ),
    "oiztgeometric": (
        _Spec("oiztgeometric", "geometric", omega=True),
        "one-inflated zero-truncated geometric regression (inflate, then truncate; share omega)",
    ),
    "zelterman": (
        _Spec("zelterman", "zelterman"),
        "Zelterman regression: logistic model of P(seen twice | seen once or twice), HT over all observed",
    ),
}

for _name, (_spec, _description) in _SPECS.items():
    register(
        Family(
            name=_name,
            description=_description,
            data_kind="frequency",
            build=_build(_spec),
            population=_population(_spec),
            mle=_mle(_spec),
            default_priors=_default_priors(_spec),
            observed_name=OBSERVED,
        )
    )
