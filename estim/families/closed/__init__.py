"""Closed-population capture–recapture on capture histories (Otis, Burnham, White & Anderson 1978).

A population of N animals (people) is sampled on T occasions; each one seen at least once leaves a 0/1
capture history h. The models differ in how the capture probability varies (Otis et al. 1978):

* ``M0``: one capture probability p for everyone on every occasion;
* ``Mt``: time: p_t varies by occasion;
* ``Mb``: behaviour ("trap response"): p before the first capture, c = logit⁻¹(logit p + β) afterwards;
* ``Mh_logitnormal``: individual heterogeneity, logit p_i ~ Normal(μ, σ_h) (Coull & Agresti 1999);
* ``Mh_mixture``: heterogeneity as a two-class finite mixture (Pledger 2000);
* ``Mth``: time + logit-normal heterogeneity, logit p_it = α_t + ε_i;
* ``Mtbh``: time + behaviour + heterogeneity, logit p_it = α_t + β·[seen before t] + ε_i (weakly identified:
  lean on the priors and read the behaviour–heterogeneity correlation in the posterior).

Maximum likelihood. ``M0``, ``Mt`` and ``Mb`` reproduce Rcapture's ``closedp.t``: Poisson log-linear models
for the 2^T − 1 history counts (zeros included), N̂ = n + exp(intercept) (equal to the Otis et al. estimate
for M0 and Mt; Mb from Rcapture's own parameterisation). ML-only families give Rcapture's log-linear
heterogeneity models (Rivest & Baillargeon 2007): ``Mh_chao`` (Chao's lower bound), ``Mh_poisson2`` and
``Mth_poisson2``. The other families' ML mode maximises the same conditional likelihood as the Bayesian
model (Huggins 1989), N̂ = n / (1 − P̂(0)).

Likelihood. The integral over logit-normal heterogeneity is a fixed quadrature (deterministic and
differentiable): the trapezoidal rule on the standard-normal scale by default, Gauss–Hermite on request
(``quadrature="gauss-hermite"``; it needs many more nodes once σ_h > 2, see `_quadrature`). The models condition on being seen: each stratum s contributes, for every observed history h,
the term n_sh · log[P(h) / (1 − P(0…0))], one log-likelihood term per (stratum, history) cell, so LOO works.

Why N need not be sampled. With the prior p(N) ∝ 1/N the full likelihood N!/((N−n)! ∏ n_h!) · ∏ P(h)^n_h ·
P(0)^(N−n), summed over N ≥ n, is

    Σ_N (1/N) N!/(N−n)! P(0)^(N−n) = (n−1)! Σ_k C(n−1+k, k) P(0)^k = (n−1)! / (1 − P(0))^n,

so the marginal likelihood of θ is (up to constants) ∏_h [P(h)/(1 − P(0))]^n_h: exactly the conditional
likelihood above. The same algebra gives the conditional law of the unseen animals,
N − n | θ, data ~ NegativeBinomial(n, 1 − P(0)) (failures before the n-th success), which `population` draws
from the posterior of P(0) (the deterministic ``p_unseen``).

Stratification. Strata (e.g. border sections) are independent closed populations. By default every
parameter is per stratum (no pooling). With ``stratified=True`` the capture-probability intercept is pooled:
intercept_s = μ + σ_stratum · z_s (non-centred; ``centered=True`` for the centred form, better when strata
are well informed). For time models the occasion logits become intercept_s + δ_st, with δ_s· a zero-sum
deviation of scale ``occasion_sd``.

Data: `history_data` (a table of 0/1 occasion columns) or `history_data_from_statistics` (estim.statistics);
both give ``history_count`` (stratum, history) over distinct observed histories and ``capture``
(history, occasion). The cost scales with the number of distinct histories, not animals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register
from estim.families.closed.data import (
    HISTORIES,
    OBSERVED,
    history_data,
    history_data_from_statistics,
)
from estim.families.closed.mle import (
    all_histories,
    loglinear_design,
    mle_conditional,
    mle_loglinear,
)
from estim.families.closed.model import _PRIORS, build_closed, population
from estim.families.closed.recovery import recovery_design
from estim.priors import Prior

__all__ = [
    "HISTORIES",
    "OBSERVED",
    "all_histories",
    "build_closed",
    "history_data",
    "history_data_from_statistics",
    "loglinear_design",
    "population",
]

# --------------------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    "M0": "Otis M0: one capture probability",
    "Mt": "Otis Mt: capture probability varies by occasion",
    "Mb": "Otis Mb: trap response after the first capture",
    "Mh_logitnormal": "Otis Mh: logit-normal individual heterogeneity (fixed quadrature)",
    "Mh_mixture": "Otis Mh: two-class finite-mixture heterogeneity (Pledger 2000)",
    "Mth": "Otis Mth: occasion effects + logit-normal heterogeneity",
    "Mtbh": "Otis Mtbh: occasion effects + trap response + logit-normal heterogeneity",
}
_ML_ONLY = {
    "Mh_chao": "Mh, Chao's lower bound as Rcapture's log-linear model (ML only)",
    "Mh_poisson2": "Mh, Rcapture's Poisson2 log-linear heterogeneity (ML only)",
    "Mth_poisson2": "Mth, Rcapture's Poisson2 log-linear heterogeneity (ML only)",
}


def _bayes_family(name: str) -> Family:
    def build(data: xr.Dataset, priors: Mapping[str, Prior] | None = None, **opts: Any) -> pm.Model:
        return build_closed(name, data, priors, **opts)

    if name in ("M0", "Mt", "Mb"):

        def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
            return mle_loglinear(name, data, **opts)
    else:

        def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
            return mle_conditional(name, data, **opts)

    return Family(
        name=name,
        description=_DESCRIPTIONS[name],
        data=HISTORIES,
        build=build,
        population=population,
        mle=mle,
        default_priors=_PRIORS[name],
        observed_name=OBSERVED,
        recovery=recovery_design(name),
    )


def _ml_only_family(name: str) -> Family:
    def build(*_: Any, **__: Any) -> pm.Model:
        raise EstimInputError(f"{name} has only a maximum-likelihood mode")

    def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
        return mle_loglinear(name, data, **opts)

    return Family(
        name=name,
        description=_ML_ONLY[name],
        data=HISTORIES,
        build=build,
        population=build,
        mle=mle,
        default_priors={},
        observed_name=OBSERVED,
    )


FAMILY_NAMES = tuple(_DESCRIPTIONS)
for _name in FAMILY_NAMES:
    register(_bayes_family(_name))
for _name in _ML_ONLY:
    register(_ml_only_family(_name))
