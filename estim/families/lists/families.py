"""The multiple-list families, registered.

* ``lists_stepwise``: SparseMSE's stepwise log-linear model (`estim.families.lists.stepwise`), maximum
  likelihood only: the two-list interactions selected at p-value ``threshold`` (``[options]``, default 0.02),
  and N̂ with its SE and Cormack's profile-likelihood interval under them. The data are list patterns with a
  count column, read as capture histories with the lists as occasions (``layout = "patterns"``).

The model averaging over decomposable graphs (`estim.families.lists.bma`) and the latent-class model
(`estim.families.lists.latent_class`) are not families yet: the first is a posterior on a grid, not a PyMC
model, and the second needs a gate on its label-invariant quantities.
"""

from __future__ import annotations

from typing import Any

import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register
from estim.families.closed import HISTORIES, OBSERVED
from estim.families.lists.stepwise import DEFAULT_THRESHOLD, stepwise


def _ml_only(*_: Any, **__: Any) -> pm.Model:
    raise EstimInputError("lists_stepwise has only a maximum-likelihood mode (estim fit --mle)")


def _stepwise_mle(data: xr.Dataset, threshold: float = DEFAULT_THRESHOLD, **opts: Any) -> MLEResult:
    if opts:
        raise EstimInputError(f"lists_stepwise takes [options] threshold only; got {sorted(opts)}")
    if "design" in data:
        raise EstimInputError("lists_stepwise takes no individual covariates")
    result = stepwise(data, threshold=float(threshold))
    pairs = ", ".join(":".join(t) for t in result.terms.interactions) or "none"
    fit = result.mle
    message = f"SparseMSE stepwise (p < {threshold:g}): interactions {pairs}; {fit.message}"
    return MLEResult(
        n_hat=fit.n_hat,
        se=fit.se,
        ci95=fit.ci95,
        parameters=fit.parameters,
        loglik=fit.loglik,
        converged=fit.converged,
        boundary=fit.boundary,
        message=message,
        extra={**fit.extra, "interactions": [list(t) for t in result.terms.interactions]},
        profile=fit.profile,
    )


register(
    Family(
        name="lists_stepwise",
        description="multiple lists: SparseMSE's stepwise log-linear model (two-list interactions at "
        "p < 0.02), maximum likelihood",
        data=HISTORIES,
        build=_ml_only,
        population=_ml_only,
        mle=_stepwise_mle,
        default_priors={},
        bayesian=False,
        observed_name=OBSERVED,
    )
)
