"""The multiple-list families, registered.

* ``lists_stepwise``: SparseMSE's stepwise log-linear model (`estim.families.lists.stepwise`), maximum
  likelihood only: the two-list interactions selected at p-value ``threshold`` (``[options]``, default 0.02),
  and N̂ with its SE and Cormack's profile-likelihood interval under them. The data are list patterns with a
  count column, read as capture histories with the lists as occasions (``layout = "patterns"``), or the
  border records' registers and apprehension records for one period (`estim.families.lists.data`, ``LISTS``).

* ``lists_latent_class``: LCMCR's latent-class model (`estim.families.lists.latent_class`), Bayesian only,
  ``[options] classes`` (default 10). Classes can swap labels between chains, so the diagnostics gate reads
  N and the label-invariant quantities only (P(0) and each list's marginal capture probability). Its spec
  samples with nutpie's numba backend at target_accept 0.99 (measured: JAX is ~15× slower on this graph, and
  at 0.9 a Kosovo fit diverges now and then).

The model averaging over decomposable graphs is the family ``lists_bma`` (`estim.families.lists.bma_family`),
and the horseshoe model of every two-list interaction ``lists_shrinkage`` (`estim.families.lists.shrinkage`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register
from estim.families.closed import OBSERVED
from estim.families.lists.data import LISTS
from estim.families.lists.latent_class import DEFAULT_PRIORS as LATENT_CLASS_PRIORS
from estim.families.lists.latent_class import LABEL_INVARIANT, MAX_CLASSES, build_latent_class
from estim.families.lists.latent_class import population as latent_class_population
from estim.families.lists.stepwise import DEFAULT_THRESHOLD, THRESHOLD_WHAT, stepwise
from estim.families.options import Option, number_option
from estim.priors import Prior


def _ml_only(*_: Any, **__: Any) -> pm.Model:
    raise EstimInputError("lists_stepwise has only a maximum-likelihood mode (estim fit --mle)")


def _stepwise_mle(data: xr.Dataset, threshold: float = DEFAULT_THRESHOLD, **opts: Any) -> MLEResult:
    if opts:
        raise EstimInputError(f"lists_stepwise takes [options] threshold only; got {sorted(opts)}")
    threshold = number_option("threshold", threshold, THRESHOLD_WHAT, low=0.0, high=1.0)
    if "design" in data:
        raise EstimInputError("lists_stepwise takes no individual covariates")
    result = stepwise(data, threshold=threshold)
    pairs = ", ".join(":".join(t) for t in result.terms.interactions) or "none"
    fit = result.mle
    message = f"SparseMSE stepwise (p < {threshold:g}): interactions {pairs}; {fit.message}"
    interactions = [list(t) for t in result.terms.interactions]
    return dataclasses.replace(
        fit, message=message, extra={**fit.extra, "interactions": interactions}
    )


register(
    Family(
        name="lists_stepwise",
        description="multiple lists: SparseMSE's stepwise log-linear model (two-list interactions at "
        "p < 0.02), maximum likelihood",
        data=LISTS,
        build=_ml_only,
        population=_ml_only,
        mle=_stepwise_mle,
        default_priors={},
        bayesian=False,
        observed_name=OBSERVED,
        options=(Option("threshold", THRESHOLD_WHAT, kind="number", low=0.0, high=1.0),),
    )
)


def _latent_class_build(
    data: xr.Dataset, priors: Mapping[str, Prior] | None = None, classes: int = 10, **opts: Any
) -> pm.Model:
    if opts:
        raise EstimInputError(
            f"lists_latent_class takes [options] classes only; got {sorted(opts)}"
        )
    return build_latent_class(data, classes=classes, priors=priors)


def _latent_class_population(
    data: xr.Dataset, posterior: Any, rng: Any = None, **_: Any
) -> xr.DataArray:
    return latent_class_population(data, posterior, rng)


def _no_ml(*_: Any, **__: Any) -> MLEResult:
    raise EstimInputError(
        "lists_latent_class has no maximum-likelihood mode: the latent-class likelihood is fitted "
        "Bayesian only (estim fit without --mle)"
    )


register(
    Family(
        name="lists_latent_class",
        description="multiple lists: LCMCR's latent-class model (Dirichlet-process classes), Bayesian",
        data=LISTS,
        build=_latent_class_build,
        population=_latent_class_population,
        mle=_no_ml,
        default_priors=LATENT_CLASS_PRIORS,
        observed_name=OBSERVED,
        gate_variables=LABEL_INVARIANT,
        ml=False,
        options=(
            Option(
                "classes",
                "the number of latent classes (where the Dirichlet process is truncated)",
                kind="int",
                low=2,
                high=MAX_CLASSES,
            ),
        ),
    )
)
