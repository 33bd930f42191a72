"""The closed-population families' Bayesian models (conditional likelihood; N marginalised, drawn after).

Cells. The data hold one row per history someone showed; the model's cells are every one of the 2^t − 1
observable histories when t ≤ `COMPLETE_OCCASIONS` (`complete_histories`: zero counts for those nobody
showed), and an f_k table's k = 1…t (zeros included by the data). The likelihood is unchanged — a zero count
adds nothing, 0 · log P(h | seen) taken as 0 even where P(h) underflows — but the predictive draws are the
fitted model's own: each stratum's n people fall on every history with its P(h | seen), the unseen histories
included, and `estim check` compares every cell, zeros too. Beyond the cap only the observed histories are
cells: the replicate puts the unseen histories' mass 1 − Σ P(h | seen) in a cell of its own, dropped
(`replicate_counts(remainder=True)`), so each observed cell keeps its exact marginal law.

Before this the replicate spread the n people over the observed histories alone, renormalised: no one fell on
an unseen history and the observed histories' probabilities were inflated. On the hares (Mt) the posterior
check of the 33 observed history counts read Freeman–Tukey p 1.000 ("MISFIT: the data vary less than the
model predicts"; chi-square 0.127) and f_k chi-square p 0.005; over all 63 histories they read Freeman–Tukey
0.804, chi-square 0.135, f_k chi-square 0.003 (a real misfit: f_6 = 2 where Mt predicts 0 – 1), the posterior
unchanged (docs/design.md §6). LOO: the cells nobody showed add nothing and count no one, and `estim compare`
compares fits on the histories someone showed (`estim.report.compare`), so an Otis fit and a log-linear fit of
the same histories are still compared (hare Mt against Mh_chao: elpd_diff −3.37 before and after). Huggins'
covariate model (`estim.families.closed.huggins`) already replicated each observed (pattern, history) cell
with its own law Binomial(n_x, P_x(h | seen)), those falling elsewhere in no cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import rng_from
from estim.families.closed.data import (
    MULTIPLICITY,
    OBSERVED,
    _check,
    log_multiplicity,
    require_histories,
)

# the completion is the log-linear and latent-class models' too (`estim.families.kernels`)
from estim.families.kernels import COMPLETE_OCCASIONS as COMPLETE_OCCASIONS
from estim.families.kernels import (
    complete_histories,
    observed_histories,
    population_given_p_unseen,
)
from estim.families.options import Option
from estim.priors import Prior, merge_priors

DEFAULT_NODES = 101  # quadrature nodes over the logit-normal heterogeneity (see _quadrature)
# Fewer than 21 trapezoid nodes on [−10, 10] do not even integrate the normal law to one (11: off by 1.4 %), and
# P(h) is off by tens of per cent; above 2,001 the cost grows with no gain. NumPy's Gauss–Hermite weights
# are NaN above 371 nodes.
MIN_NODES, MAX_NODES, MAX_GAUSS_HERMITE_NODES = 21, 2001, 371
QUADRATURES = ("trapezoid", "gauss-hermite")
# the models integrating over logit-normal heterogeneity, which nodes and quadrature set
_HETERO_NODES = ("Mh_logitnormal", "Mth", "Mtbh")
# build_closed's keyword arguments: a spec's [options] of the Otis families, checked when the spec is read
POOLING = (
    Option("stratified", "pool the capture-probability intercepts of the strata", kind="bool"),
    Option(
        "centered",
        "the centred form of the pooled intercepts (with stratified)",
        kind="bool",
        only_with={"stratified": True},
        because="it chooses how the strata's pooled intercepts are sampled; unpooled, each stratum's "
        "intercept is a parameter of its own, with no form to choose",
    ),
)
QUADRATURE = (
    Option(
        "nodes",
        f"quadrature nodes over the logit-normal heterogeneity (default {DEFAULT_NODES})",
        kind="int",
        low=MIN_NODES,
        high=MAX_NODES,
    ),
    Option(
        "quadrature", "the rule integrating the heterogeneity", kind="choice", choices=QUADRATURES
    ),
)
OPTIONS = POOLING + QUADRATURE


def family_options(name: str) -> tuple[Option, ...]:
    """The [options] Otis family `name` takes: the pooling of strata, and the quadrature where its model
    integrates over logit-normal heterogeneity (`_HETERO_NODES`)."""
    return OPTIONS if name in _HETERO_NODES else POOLING


def idle_options(name: str) -> dict[str, str]:
    """build_closed's keyword arguments that family `name`'s model does not read, each with why
    (`estim.families.base.Family.idle_options`)."""
    if name in _HETERO_NODES:
        return {}
    integral = "nodes and quadrature set the integral of Mh_logitnormal, Mth and Mtbh"
    why = (
        f"its heterogeneity is two classes, summed exactly, not integrated: {integral}"
        if name == "Mh_mixture"
        else f"it has no heterogeneity to integrate: {integral}"
    )
    return {o.name: why for o in QUADRATURE}


# --------------------------------------------------------------------------------------------------------------
# Bayesian models
# --------------------------------------------------------------------------------------------------------------

# Weak enough that the data decide on every shipped benchmark: the Bayesian median within half an SE of the
# MLE (measured: Normal(0, 1.5) on logit_p put the UK lists' Mt median 0.40 SE below, HalfNormal(1) on sigma_h
# the hares' Mth 0.56 SE below, HalfNormal(2) on the class gap the hares' mixture 0.58 SE above; these give
# −0.11, −0.21 and +0.35, the mixture keeping Normal(0, 1.5) on its lower class's logit).
_BASE = {"logit_p": Prior("Normal", mu=0, sigma=2.5), "sigma_stratum": Prior("HalfNormal", sigma=1)}
_TIME = {"occasion_sd": Prior("HalfNormal", sigma=1)}
# individual covariates (Huggins; M0, Mt, Mb): effects per standard deviation of a continuous covariate, or of
# a category against the reference level, on the logit scale
_COVARIATES = {"beta": Prior("Normal", mu=0, sigma=1)}
_PRIORS: dict[str, dict[str, Prior]] = {
    "M0": {**_BASE, **_COVARIATES},
    "Mt": {**_BASE, **_TIME, **_COVARIATES},
    "Mb": {**_BASE, "behaviour": Prior("Normal", mu=0, sigma=1), **_COVARIATES},
    "Mh_logitnormal": {**_BASE, "sigma_h": Prior("HalfNormal", sigma=2)},
    "Mh_mixture": {
        **_BASE,
        # the lower class's logit: wider than Normal(0, 1.5) lets its p run towards 0, where N has no bound
        # (the hares: median 0.35 SE above the MLE at 1.5, 0.58 at 2, 0.82 at 2.5)
        "logit_p": Prior("Normal", mu=0, sigma=1.5),
        "class_gap": Prior("HalfNormal", sigma=4),
        # boundary-avoiding: with a flat Beta(1, 1) an almost empty class leaves its p (and the gap) unidentified
        # and NUTS fails the gate (hare: R-hat 1.28; 38 of 100 simulated datasets at N = 150, T = 6)
        "mixture_weight": Prior("Beta", alpha=2, beta=2),
    },
    "Mth": {**_BASE, **_TIME, "sigma_h": Prior("HalfNormal", sigma=2)},
    "Mtbh": {
        **_BASE,
        **_TIME,
        "behaviour": Prior("Normal", mu=0, sigma=1),
        "sigma_h": Prior("HalfNormal", sigma=2),
    },
}
_TIME_MODELS = {"Mt", "Mth", "Mtbh"}


def _log_sig(eta: Any) -> tuple[Any, Any]:
    """log p and log(1 − p) for p = logit⁻¹(eta), stable for large |eta|."""
    return -pt.softplus(-eta), -pt.softplus(eta)


def _intercept(priors: Mapping[str, Prior], stratified: bool, centered: bool) -> Any:
    """Per-stratum capture logit: independent (no pooling) or partially pooled across strata."""
    if not stratified:
        return priors["logit_p"].create("logit_p", dims="stratum")
    mu = priors["logit_p"].create("logit_p")
    sd = priors["sigma_stratum"].create("sigma_stratum")
    if centered:
        return pm.Normal("intercept", mu=mu, sigma=sd, dims="stratum")
    z = pm.Normal("intercept_z", 0.0, 1.0, dims="stratum")
    return pm.Deterministic("intercept", mu + sd * z, dims="stratum")


def _occasion_logits(priors: Mapping[str, Prior], stratified: bool, centered: bool) -> Any:
    """(stratum, occasion) logits: free per occasion, or pooled intercept + zero-sum occasion deviations."""
    if not stratified:
        return priors["logit_p"].create("logit_p", dims=("stratum", "occasion"))
    a = _intercept(priors, True, centered)
    sd = priors["occasion_sd"].create("occasion_sd")
    # Zero-sum over occasions so the deviations cannot absorb the pooled intercept (identifiability).
    d = pm.ZeroSumNormal("occasion_effect", sigma=sd, dims=("stratum", "occasion"))
    return pm.Deterministic("logit_pt", a[:, None] + d, dims=("stratum", "occasion"))


def _quadrature(rule: str, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u_j and log weights with ∫ f(ε) Normal(ε; 0, 1) dε ≈ Σ_j w_j f(u_j).

    "trapezoid" (default): `nodes` equally spaced points on [−10, 10]. For an integrand analytic in a strip
    around the real line (the logistic is) the trapezoidal rule converges geometrically, and here much faster
    than Gauss–Hermite: against adaptive quadrature on T = 6 histories, worst relative error in P(h) with 101
    nodes is 3e-9 at σ_h = 3 and 2e-6 at σ_h = 4, where Gauss–Hermite gives 3e-2 (32 nodes) and 5e-5
    (100 nodes) at σ_h = 3. "gauss-hermite": the classical rule, exact for polynomials, poor when σ_h is large.
    """
    if rule == "trapezoid":
        u = np.linspace(-10.0, 10.0, nodes)
        return u, np.log(u[1] - u[0]) - 0.5 * u**2 - 0.5 * np.log(2 * np.pi)
    if rule == "gauss-hermite":
        if nodes > MAX_GAUSS_HERMITE_NODES:
            raise EstimInputError(
                f"[options] nodes: at most {MAX_GAUSS_HERMITE_NODES} with quadrature = 'gauss-hermite' "
                f"(NumPy's weights are not numbers beyond), got {nodes}; or the default trapezoid rule"
            )
        z, w = np.polynomial.hermite.hermgauss(nodes)
        return np.sqrt(2.0) * z, np.log(w) - 0.5 * np.log(np.pi)
    raise EstimInputError(f"unknown quadrature {rule!r}: 'trapezoid' or 'gauss-hermite'")


def _log_probs(name: str, x: np.ndarray, priors: Mapping[str, Prior], opts: Mapping[str, Any]):
    """log P(h) for the observed histories (stratum, history) and log P(0…0) (stratum,)."""
    stratified, centered = bool(opts.get("stratified", False)), bool(opts.get("centered", False))
    t = x.shape[1]
    xf = x.astype("float64")
    k = x.sum(axis=1)  # captures per history
    if name == "M0":
        lp, lq = _log_sig(_intercept(priors, stratified, centered))
        return k[None, :] * lp[:, None] + (t - k)[None, :] * lq[:, None], t * lq
    if name == "Mt":
        lp, lq = _log_sig(_occasion_logits(priors, stratified, centered))  # (S, T)
        return pt.dot(lp, xf.T) + pt.dot(lq, (1 - xf).T), lq.sum(axis=-1)
    if name == "Mb":
        a = _intercept(priors, stratified, centered)
        b = priors["behaviour"].create("behaviour", dims="stratum")
        lp, lq = _log_sig(a)
        lc, lqc = _log_sig(a + b)
        first = x.argmax(axis=1)  # misses before the first capture
        after = t - 1 - first - (k - 1)  # misses after it
        logp = (
            first[None, :] * lq[:, None]
            + lp[:, None]
            + (k - 1)[None, :] * lc[:, None]
            + after[None, :] * lqc[:, None]
        )
        return logp, t * lq
    if name in ("Mh_logitnormal", "Mh_mixture"):
        # P(h) depends on h only through its number of captures: compute for k = 0…T, then index.
        kk = np.arange(t + 1, dtype="float64")
        if name == "Mh_logitnormal":
            u, lw = _quadrature(opts["quadrature"], int(opts["nodes"]))
            a = _intercept(priors, stratified, centered)
            s = priors["sigma_h"].create("sigma_h", dims="stratum")
            eta = a[:, None] + s[:, None] * u[None, :]  # (S, J)
            lw_t = pt.as_tensor(lw)[None, :]
        else:
            a = _intercept(priors, stratified, centered)
            gap = priors["class_gap"].create("class_gap", dims="stratum")
            w = priors["mixture_weight"].create("mixture_weight", dims="stratum")
            # class 0 is the less catchable one: ordering by a positive gap removes label switching.
            eta = pt.stack([a, a + gap], axis=-1)  # (S, 2)
            lw_t = pt.stack([pt.log1p(-w), pt.log(w)], axis=-1)
        lp, lq = _log_sig(eta)
        terms = kk[None, :, None] * lp[:, None, :] + (t - kk)[None, :, None] * lq[:, None, :]
        by_k = pm.math.logsumexp(terms + lw_t[:, None, :], axis=-1, keepdims=False)  # (S, T+1)
        return by_k[:, k], by_k[:, 0]
    if name in ("Mth", "Mtbh"):
        u, lw = _quadrature(opts["quadrature"], int(opts["nodes"]))
        alpha = _occasion_logits(priors, stratified, centered)  # (S, T)
        s = priors["sigma_h"].create("sigma_h", dims="stratum")
        eta = alpha[:, :, None] + s[:, None, None] * u[None, None, :]  # (S, T, J)
        lp0, lq0 = _log_sig(eta)
        log_p0 = pm.math.logsumexp(lq0.sum(axis=1) + lw[None, :], axis=-1, keepdims=False)
        if name == "Mth":
            # (S, J, T) @ (T, H) -> (S, J, H)
            ll = pt.matmul(lp0.dimshuffle(0, 2, 1), xf.T) + pt.matmul(
                lq0.dimshuffle(0, 2, 1), (1 - xf).T
            )
        else:
            b = priors["behaviour"].create("behaviour", dims="stratum")
            # seen[h, t] = 1 when h has a capture before occasion t (the trap response applies).
            seen = (np.cumsum(x, axis=1) - x > 0).astype("float64")
            # p_it takes two values per (occasion, node): before and after the first capture. Evaluate
            # those (S, T, J) and combine them with four 0/1 (T, H) matrices, instead of a logistic per
            # (history, occasion, node): ~H/2 times fewer transcendental functions, the same sum.
            lp1, lq1 = _log_sig(eta + b[:, None, None])
            ll = (
                pt.matmul(lp0.dimshuffle(0, 2, 1), (xf * (1 - seen)).T)
                + pt.matmul(lq0.dimshuffle(0, 2, 1), ((1 - xf) * (1 - seen)).T)
                + pt.matmul(lp1.dimshuffle(0, 2, 1), (xf * seen).T)
                + pt.matmul(lq1.dimshuffle(0, 2, 1), ((1 - xf) * seen).T)
            )  # (S, J, H)
        log_ph = pm.math.logsumexp(ll + lw[None, :, None], axis=1, keepdims=False)
        return log_ph, log_p0
    raise EstimInputError(f"no Bayesian closed-population model {name!r}")


def build_closed(
    name: str,
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    *,
    stratified: bool = False,
    centered: bool = False,
    nodes: int = DEFAULT_NODES,
    quadrature: str = "trapezoid",
) -> pm.Model:
    """The PyMC model of family `name` with the conditional likelihood of the observed histories (of the
    f_k cells for an f_k table), over all 2^t − 1 histories up to `COMPLETE_OCCASIONS` (`complete_histories`).
    Data with covariates take `estim.families.closed.huggins.build_huggins`."""
    if "design" in data:
        raise EstimInputError(
            "data with individual covariates: build the model with the family (FAMILIES[name].build) or "
            "estim.families.closed.huggins.build_huggins"
        )
    for option, value in zip(OPTIONS, (stratified, centered, nodes, quadrature), strict=True):
        option.check(value)
    require_histories(name, data)
    _check(data)
    data = complete_histories(data)
    counts, x = _check(data)
    if "beta" in (priors or {}):
        raise EstimInputError(
            "a prior for beta (covariate effects), but the data have no covariates"
        )
    pri = merge_priors(_PRIORS[name], priors)
    coords = {
        "stratum": [str(s) for s in data["stratum"].values],
        "history": [str(h) for h in data["history"].values],
        "occasion": [str(o) for o in data["occasion"].values],
    }
    opts = {
        "stratified": stratified,
        "centered": centered,
        "nodes": nodes,
        "quadrature": quadrature,
    }
    with pm.Model(coords=coords) as model:
        log_ph, log_p0 = _log_probs(name, x, pri, opts)
        if MULTIPLICITY in data:
            # an f_k table: each representative history stands for C(t, k) histories of equal probability
            log_ph = log_ph + log_multiplicity(data)[None, :]
        pm.Deterministic("p_unseen", pt.exp(log_p0), dims="stratum")
        log_cond = log_ph - pt.log1mexp(log_p0)[:, None]
        # zero-safe cell terms, replicates over the model's cells with the unseen mass in none (`kernels`)
        observed_histories(OBSERVED, log_cond, counts)
    return model


def population(
    data: xr.Dataset, posterior: xr.Dataset | Any, rng: Any = None, **_: Any
) -> xr.DataArray:
    """Draws of N per stratum: N = n + NegativeBinomial(n, 1 − P(0)) at each posterior draw of P(0)."""
    counts, _x = _check(data)
    post = posterior.dataset if hasattr(posterior, "dataset") else posterior
    if "p_unseen" not in post:
        raise EstimInputError("the posterior lacks `p_unseen`; fit the model built by this family")
    return population_given_p_unseen(counts.sum(axis=1), post, rng_from(rng))
