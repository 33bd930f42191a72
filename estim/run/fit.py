"""Fit a model spec: data -> model -> prior predictive -> NUTS -> log-likelihood -> posterior predictive ->
draws of N -> diagnostics gate -> saved fit with provenance (docs/design.md §6–7).

N is marginalised inside every family's model; its draws are made afterwards from its exact conditional law
given the data and each posterior draw (``Family.population``), and stored in the posterior group with
``unobserved = N − n``, n the number of distinct people (or animals) observed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.families.base import Family, MLEResult
from estim.priors import merge_priors
from estim.run import store
from estim.run.data import data_hash, data_source, family_of, load_data
from estim.run.diagnostics import GateVerdict
from estim.run.diagnostics import check as gate_check
from estim.run.sampler import Progress, nuts, seeds
from estim.run.spec import ModelSpec


@dataclass(frozen=True)
class FitResult:
    """A fit on disk and in memory. `reused` is True when the cached file was returned without sampling.

    `seconds` is the wall time of the whole fit (model compilation included; ≈ 0 when reused).
    """

    spec: ModelSpec
    path: Path
    idata: xr.DataTree
    verdict: GateVerdict
    reused: bool
    seconds: float

    @property
    def passed(self) -> bool:
        return self.verdict.passed


# --------------------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------------------


def n_observed(
    data: xr.Dataset, idata: xr.DataTree, observed_name: str, n_draws: xr.DataArray
) -> xr.DataArray | float:
    """Distinct individuals observed: ``data["n_observed"]`` or ``data.attrs["n_observed"]`` if the family
    provides it, else the observed counts (f_k cells or history counts) summed over every dim N does not
    have (so per stratum when N is per stratum)."""
    if "n_observed" in data:
        return data["n_observed"]
    if "n_observed" in data.attrs:
        return float(data.attrs["n_observed"])
    counts = idata["observed_data"][observed_name]
    return counts.sum([d for d in counts.dims if d not in n_draws.dims])


def _optional(name: str, what: str, draw: Callable[[], xr.DataTree]) -> xr.DataTree | str:
    """Predictive draws, or the error message if the family cannot draw them (no ``random`` for a custom
    likelihood, say): the fit is still saved, with the message in its attributes and a warning now."""
    try:
        return draw()
    except Exception as e:  # noqa: BLE001 - a family's random() failing must not lose the fit itself
        message = f"{type(e).__name__}: {e}".strip().splitlines()[0]
        warnings.warn(
            f"{name}: {what} sampling failed ({message}); the fit is saved without it", stacklevel=3
        )
        return message


def _host_mode() -> dict[str, Any]:
    """Compile options for the one-off predictive and log-likelihood functions.

    These run once over all draws, so compile time dominates: PyTensor's default numba linker spends 3–4 s
    compiling the families' NumPy replicate generators in object mode, the C VM with light rewrites under 0.5 s
    (measured on hare_Mth: prior + posterior predictive 8.0 s → 1.4 s). Without a C compiler, keep the default.
    """
    import pytensor
    from pytensor.compile.mode import Mode

    if not pytensor.config.cxx:
        return {}
    return {"mode": Mode(linker="cvm", optimizer="fast_compile")}


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@contextlib.contextmanager
def _quiet_pymc() -> Iterator[None]:
    """PyMC logs "Sampling: [...]" at INFO for every predictive draw: not for a user's terminal."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def sample(
    spec: ModelSpec, family: Family, data: xr.Dataset, *, progress: Progress | None = None
) -> xr.DataTree:
    """Prior predictive, NUTS (nutpie), pointwise log-likelihood, posterior predictive and draws of N.
    `progress` receives a line of text at each stage and every ten seconds or so while sampling."""
    import pymc as pm

    s = spec.sampler
    seed_prior, seed_nuts, seed_ppc, seed_n = seeds(spec.seed, 4)
    # The family merges the spec's overrides into its own defaults (priors explicit, overridable).
    model = family.build(data, dict(spec.priors), **spec.options)
    if family.after_sampling is not None:
        return _sample_custom(spec, family, data, model, progress)
    with model, warnings.catch_warnings(), _quiet_pymc():
        # The families' replicate generators are NumPy code: numba running them in object mode is expected.
        warnings.filterwarnings("ignore", message="Numba will use object mode")
        _say(progress, f"prior predictive: {s.prior_draws:,} draws …")
        prior = _optional(
            spec.name,
            "prior predictive",
            lambda: pm.sample_prior_predictive(
                draws=s.prior_draws, random_seed=seed_prior, compile_kwargs=_host_mode()
            ),
        )
        idata = nuts(model, s, seed_nuts, with_data=True, progress=progress)
        _say(progress, "pointwise log-likelihood and posterior predictive draws …")
        pm.compute_log_likelihood(idata, progressbar=False, compile_kwargs=_host_mode())
        ppc = _optional(
            spec.name,
            "posterior predictive",
            lambda: pm.sample_posterior_predictive(
                idata, random_seed=seed_ppc, progressbar=False, compile_kwargs=_host_mode()
            ),
        )
    for what, result in (("prior_predictive", prior), ("posterior_predictive", ppc)):
        if isinstance(result, str):
            idata.attrs[f"{what}_error"] = result
        else:
            groups = ("prior", "prior_predictive") if what == "prior_predictive" else (what,)
            idata.update({k: result[k] for k in groups if k in result.children})
    posterior = idata["posterior"].to_dataset()
    n_draws = family.population(data, posterior, np.random.default_rng(seed_n), **spec.options)
    n = n_observed(data, idata, family.observed_name, n_draws)
    posterior = posterior.assign(
        N=n_draws.rename("N"), unobserved=(n_draws - n).rename("unobserved")
    )
    posterior["N"].attrs["description"] = (
        "population size, drawn from its conditional law given the data"
    )
    posterior["unobserved"].attrs["description"] = "N minus the individuals observed"
    idata["posterior"] = xr.DataTree(posterior)
    return idata


def _sample_custom(
    spec: ModelSpec, family: Family, data: xr.Dataset, model: Any, progress: Progress | None
) -> xr.DataTree:
    """NUTS, then the family's own derived quantities and predictive checks (``after_sampling``)."""
    _seed_prior, seed_nuts, _seed_ppc, seed_after = seeds(spec.seed, 4)
    idata = nuts(model, spec.sampler, seed_nuts, progress=progress)
    _say(progress, "generated quantities and predictive checks from every draw …")
    assert family.after_sampling is not None
    groups = family.after_sampling(
        data, idata["posterior"].to_dataset(), np.random.default_rng(seed_after), **spec.options
    )
    for name, ds in groups.items():
        if name == "posterior":
            idata["posterior"] = xr.DataTree(idata["posterior"].to_dataset().assign(ds.data_vars))
        else:
            idata[name] = xr.DataTree(ds)
    return idata


def fit(
    spec: ModelSpec,
    *,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> FitResult:
    """Fit `spec` and save it to `out` (default: NAME.nc beside the spec), or reuse a matching cached fit.

    The fit is saved whether or not it passes the diagnostics gate; a failed fit is marked failed in the file
    and `FitResult.passed` is False. Raises `EstimInputError` for a spec whose data cannot be loaded.
    `progress` (e.g. ``print``) receives a line of text at each stage and while sampling.
    """
    family = family_of(spec)
    path = Path(out) if out is not None else spec.default_output()
    source, synthetic = data_source(spec)
    _say(progress, f"{spec.name}: reading the data: {source} …")
    data = load_data(spec)
    d_hash = data_hash(data)
    versions = store.library_versions()
    if not force:
        tree = store.cached(path, spec.spec_hash, d_hash, versions)
        if tree is not None:
            _say(progress, f"{spec.name}: {path} is a fit of this spec and these data: reused")
            return FitResult(spec, path, tree, store.verdict(tree, str(path)), True, 0.0)
    start = time.perf_counter()
    idata = sample(spec, family, data, progress=progress)
    seconds = time.perf_counter() - start
    _say(progress, "diagnostics gate …")
    verdict = gate_check(idata)
    provenance = store.provenance_attrs(spec.spec_hash, d_hash, spec.seed, versions)
    provenance.update(
        {
            "model_name": spec.name,
            "family": family.name,
            "data_kind": family.data_kind,
            "observed_name": family.observed_name,
            "spec_json": spec.canonical_json(),
            "priors_json": json.dumps(
                {
                    k: p.to_dict()
                    for k, p in merge_priors(family.default_priors, spec.priors).items()
                },
                sort_keys=True,
            ),
            "fit_seconds": round(seconds, 3),
            "data_source": source,
            "data_synthetic": "true" if synthetic else "false",
            **_mle_attrs(family, data, spec),
        }
    )
    _say(progress, f"saving {path} …")
    store.save(idata, path, provenance, verdict)
    return FitResult(spec, path, idata, verdict, False, seconds)


def _mle_attrs(family: Family, data: xr.Dataset, spec: ModelSpec) -> dict[str, str]:
    """The maximum-likelihood fit beside the Bayesian one, as JSON attrs.

    A reader should see both; and where the likelihood peaks on the boundary of the parameter space the
    posterior of N is decided by the prior, which the summary must say.
    """
    try:
        m = family.mle(data, **spec.options)
    except Exception as e:  # noqa: BLE001 - the Bayesian fit stands on its own; record why ML is missing
        return {"mle_json": json.dumps({"error": f"{type(e).__name__}: {e}"})}
    return {
        "mle_json": json.dumps(
            {
                "n_hat": None if m.boundary else float(m.n_hat),
                "se": None if m.boundary else float(m.se),
                "ci95": None if m.boundary else [float(x) for x in m.ci95],
                "converged": bool(m.converged),
                "boundary": bool(m.boundary),
                "message": m.message,
            }
        )
    }


def fit_mle(spec: ModelSpec) -> MLEResult:
    """The family's maximum-likelihood fit of the spec's data (priors and sampler settings are ignored)."""
    family = family_of(spec)
    return family.mle(load_data(spec), **spec.options)
