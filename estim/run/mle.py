"""The maximum-likelihood fit of a spec's data, and as JSON-able data: the estimate beside a Bayesian fit
(`mle_attrs`, saved with it), `estim fit --mle` and the summary's ML table (`mle_dict`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.families.base import Family, MLEResult
from estim.run.data import family_of, load_data
from estim.run.spec import ModelSpec


def _plain(value: Any) -> Any:
    """Numbers and arrays as JSON-able Python values, at full precision (inf and nan as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        return x if math.isfinite(x) else str(x)
    return value


def mle_dict(result: MLEResult) -> dict[str, Any]:
    """A maximum-likelihood fit as JSON-able data at full precision. ``n_hat``, ``se``, ``ci95`` (Wald, or the kind
    ``extra["ci_kind"]`` names) and
    ``profile`` (profile likelihood: ``n_hat``, ``ci95``, ``method``) are None when the fit is no estimate (on the boundary, or not converged: ``status`` says which); the value where
    the optimiser stopped is kept as ``n_hat_at_stop`` for diagnosis."""
    estimate = result.converged and not result.boundary
    status = "boundary" if result.boundary else ("ok" if result.converged else "not converged")
    return {
        "status": status,
        "n_hat": _plain(result.n_hat) if estimate else None,
        "se": _plain(result.se) if estimate else None,
        "ci95": _plain(result.ci95) if estimate else None,
        # the profile-likelihood estimate and interval, where the family has a likelihood in N
        "profile": _plain(dict(result.profile)) if estimate and result.profile else None,
        "n_hat_at_stop": None if estimate else _plain(result.n_hat),
        "parameters": _plain(result.parameters),
        "loglik": _plain(result.loglik),
        "converged": bool(result.converged),
        "boundary": bool(result.boundary),
        "message": result.message,
        "extra": _plain(result.extra),
    }


def mle_attrs(family: Family, data: xr.Dataset, spec: ModelSpec) -> dict[str, str]:
    """The maximum-likelihood fit beside the Bayesian one, as JSON attrs.

    A reader should see both; and where the likelihood peaks on the boundary of the parameter space the
    posterior of N is decided by the prior, which the summary must say.
    """
    if not family.ml:
        return {}
    try:
        m = family.mle(data, **spec.options)
    except Exception as e:  # noqa: BLE001 - the Bayesian fit stands on its own; record why ML is missing
        return {"mle_json": json.dumps({"error": f"{type(e).__name__}: {e}"})}
    return {"mle_json": json.dumps(mle_dict(m), default=str)}


def fit_mle(spec: ModelSpec, table: pd.DataFrame | None = None) -> MLEResult:
    """The family's maximum-likelihood fit of the spec's data (priors and sampler settings are ignored)."""
    family = family_of(spec)
    return family.mle(load_data(spec, table), **spec.options)
