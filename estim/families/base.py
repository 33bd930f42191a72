"""The interface every model family implements, and the registry the fit runner reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from estim.priors import Prior


@dataclass(frozen=True)
class MLEResult:
    """A maximum-likelihood fit: population size with its standard error and 95 % interval.

    ``boundary`` is True when the maximum lies on the boundary of the parameter space (e.g. a negative
    binomial whose dispersion runs to its limit); then ``n_hat`` is not an estimate and must not be reported.
    """

    n_hat: float
    se: float
    ci95: tuple[float, float]
    parameters: Mapping[str, float]
    loglik: float
    converged: bool
    boundary: bool = False
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """One named model.

    build(data, priors, **options) -> pm.Model
        The model with named dims/coords. Its observed variable is the per-cell likelihood of the sufficient
        statistics (named `observed_name`, one log-likelihood term per frequency cell or capture history, so
        LOO works); N does not appear as a random variable.
    population(data, posterior, rng, **options) -> xr.DataArray
        Draws of N (name "N", dims chain, draw[, stratum]) given the posterior draws of the parameters: the
        exact conditional law of N given the data and parameters under the family's prior on N.
    mle(data, **options) -> MLEResult
    default_priors: parameter name -> Prior (overridable by a spec).
    data_kind: which sufficient statistics the family takes: "frequency" (single register, people seen k
        times, optionally by covariate pattern), "histories" (capture histories over occasions) or "border"
        (the border model's monthly statistics).
    after_sampling(data, posterior, rng, **options) -> dict[str, xr.Dataset] | None
        Optional. The family's own derived quantities and checks after NUTS, replacing `population` and the
        generic PyMC predictive draws: a dict of DataTree groups ("posterior" entries are added to the
        posterior). Used when the per-cell arrays would be too large to keep for every draw.
    """

    name: str
    description: str
    data_kind: str
    build: Callable[..., pm.Model]
    population: Callable[..., xr.DataArray]
    mle: Callable[..., MLEResult]
    default_priors: Mapping[str, Prior]
    observed_name: str
    after_sampling: Callable[..., dict[str, xr.Dataset]] | None = None


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    FAMILIES[family.name] = family
    return family


def rng_from(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
