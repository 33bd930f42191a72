"""Fit a model spec: data -> model -> prior predictive -> NUTS -> log-likelihood -> posterior predictive ->
draws of N -> diagnostics gate -> saved fit with provenance (DESIGN §6–7).

N is marginalised inside every family's model; its draws are made afterwards from its exact conditional law
given the data and each posterior draw (``Family.population``), and stored in the posterior group with
``unobserved = N − n``, n the number of distinct people (or animals) observed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult
from estim.priors import merge_priors
from estim.run import store
from estim.run.diagnostics import GateVerdict
from estim.run.diagnostics import check as gate_check
from estim.run.spec import DataSpec, ModelSpec, SamplerSpec


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
# Data
# --------------------------------------------------------------------------------------------------------------


def _frequency_data(table: pd.DataFrame, d: DataSpec) -> xr.Dataset:
    from estim.families.single_register import frequency_data

    return frequency_data(table, count=d.count, covariates=list(d.covariates))


def _history_data(table: pd.DataFrame, d: DataSpec) -> xr.Dataset:
    from estim.families.closed import history_data

    return history_data(table, occasions=list(d.occasions or table.columns))


# data_kind -> converter from a benchmark table (one row per individual) to the family's sufficient statistics.
DATA_CONVERTERS: dict[str, Callable[[pd.DataFrame, DataSpec], xr.Dataset]] = {
    "frequency": _frequency_data,
    "histories": _history_data,
}


def load_data(spec: ModelSpec) -> xr.Dataset:
    """The sufficient statistics the spec's family takes.

    A benchmark goes through the family's converter (``frequency_data(table, count=, covariates=)`` or
    ``history_data(table, occasions=)``). Records are validated, pseudonymised and reduced to sufficient
    statistics (`estim.statistics`), then cut to the spec's period (and section and category):

    * frequency families get f_k of one section × period, with ``category`` available as a covariate;
    * capture-history families get the histories of that period, one stratum per section (all sections,
      or the one named by ``section``).
    """
    family = _family(spec)
    if spec.data.records is not None:
        return _records_data(spec, family.data_kind)
    if family.data_kind not in DATA_CONVERTERS:
        raise EstimInputError(
            f"{spec.path or spec.name}: family {family.name!r} takes data of kind "
            f"{family.data_kind!r}, which specs cannot load yet"
        )
    from estim.benchmarks import load_benchmark

    d = spec.data
    assert d.benchmark is not None
    table = load_benchmark(d.benchmark)
    if family.data_kind == "histories":
        fields = [("occasions", list(d.occasions or []))]
    else:
        fields = [("count", [d.count] if d.count else []), ("covariates", list(d.covariates))]
    for field_name, columns in fields:
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise EstimInputError(
                f"{spec.path or spec.name}: [data] {field_name}: no column(s) {', '.join(missing)} in "
                f"benchmark {d.benchmark!r}; it has {', '.join(map(str, table.columns))}"
            )
    return DATA_CONVERTERS[family.data_kind](table, d)


def _records_data(spec: ModelSpec, data_kind: str) -> xr.Dataset:
    from estim.paths import REPO_ROOT, SYNTHETIC_DIR
    from estim.records import DEFAULT_KEY, load_records
    from estim.statistics import sufficient_statistics

    d = spec.data
    where = spec.path or spec.name
    assert d.records is not None
    folder = Path(d.records)
    if not folder.is_absolute():
        bases = [spec.path.parent, spec.path.parent.parent] if spec.path else [Path.cwd()]
        candidates = [b / folder for b in [*bases, REPO_ROOT]]
        folder = next((c for c in candidates if c.is_dir()), candidates[0])
    if not folder.is_dir():
        raise EstimInputError(f"{where}: [data] records: no folder {folder}")
    key = DEFAULT_KEY if folder.resolve() == SYNTHETIC_DIR.resolve() else None
    records = load_records(folder, key=key)
    if data_kind == "border":
        from estim.families.border import border_data

        for field_name in ("section", "period", "category"):
            if getattr(d, field_name) is not None:
                raise EstimInputError(
                    f"{where}: [data] {field_name}: the border model takes every section, month and "
                    "category"
                )
        stats = sufficient_statistics(records, period="month", occasion=None)
        return border_data(stats, records.sections, records.policy_events)
    occasion = d.occasion if data_kind == "histories" else None
    stats = sufficient_statistics(records, period=d.period_kind, occasion=occasion)
    for field_name, value in (("section", d.section), ("period", d.period)):
        if value is not None and value not in stats[field_name].values:
            raise EstimInputError(
                f"{where}: [data] {field_name}: {value!r} not in the records; "
                f"they have {', '.join(map(str, stats[field_name].values))}"
            )
    if data_kind == "histories":
        from estim.families.closed import history_data_from_statistics

        if d.category is not None:
            raise EstimInputError(
                f"{where}: [data] category: capture histories are not split by category"
            )
        if d.section is not None:
            stats = stats.sel(section=[d.section])
        return history_data_from_statistics(stats, d.period)
    if d.section is None:
        raise EstimInputError(
            f"{where}: [data] section: missing (frequency models fit one section)"
        )
    f = stats["frequency"].sel(section=d.section, period=d.period)
    if d.category is not None:
        f = f.sel(category=[d.category])
    cells = f.to_dataframe(name="n").reset_index()[["category", "k", "n"]]
    bad = [c for c in d.covariates if c != "category"]
    if bad:
        raise EstimInputError(
            f"{where}: [data] covariates: records offer only 'category' as a covariate, not {bad}"
        )
    from estim.families.single_register import frequency_data

    return frequency_data(cells, count="k", covariates=list(d.covariates), weight="n")


def data_hash(data: xr.Dataset) -> str:
    """SHA-256 over the dataset's variables, coordinates (names, dims, dtypes, values) and attributes.

    Computed from the values rather than from netCDF bytes, which can differ for equal data.
    """
    h = hashlib.sha256()
    for kind, mapping in (("coord", data.coords), ("var", data.data_vars)):
        for name in sorted(map(str, mapping)):
            da = mapping[name]
            values = np.asarray(da.values)
            h.update(f"{kind}:{name}:{da.dims}:{values.dtype.str}:{values.shape};".encode())
            if values.dtype.kind in "OUS":
                h.update(json.dumps(values.astype(str).tolist()).encode())
            else:
                h.update(np.ascontiguousarray(values).tobytes())
    h.update(json.dumps(data.attrs, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _family(spec: ModelSpec) -> Family:
    from estim.families.registry import load_all

    families = load_all()
    if spec.family not in families:
        raise EstimInputError(f"{spec.path or spec.name}: family: unknown family {spec.family!r}")
    return families[spec.family]


# --------------------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------------------


def _seeds(seed: int, n: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


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


def sample(spec: ModelSpec, family: Family, data: xr.Dataset) -> xr.DataTree:
    """Prior predictive, NUTS (nutpie), pointwise log-likelihood, posterior predictive and draws of N."""
    import pymc as pm

    s = spec.sampler
    seed_prior, seed_nuts, seed_ppc, seed_n = _seeds(spec.seed, 4)
    # The family merges the spec's overrides into its own defaults (DESIGN §4: priors explicit, overridable).
    model = family.build(data, dict(spec.priors), **spec.options)
    if family.after_sampling is not None:
        return _sample_custom(spec, family, data, model)
    with model, warnings.catch_warnings():
        # The families' replicate generators are NumPy code: numba running them in object mode is expected.
        warnings.filterwarnings("ignore", message="Numba will use object mode")
        prior = _optional(
            spec.name,
            "prior predictive",
            lambda: pm.sample_prior_predictive(
                draws=s.prior_draws, random_seed=seed_prior, compile_kwargs=_host_mode()
            ),
        )
        idata = _nuts(spec, seed_nuts)
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


def _nuts(spec: ModelSpec, seed: int) -> xr.DataTree:
    """NUTS (nutpie) on the model in context with the spec's sampler settings."""
    import pymc as pm

    s = spec.sampler
    nuts = {"adaptation": s.adaptation} if s.adaptation != "diagonal" else {}
    return pm.sample(
        draws=s.draws,
        tune=s.tune,
        chains=s.chains,
        nuts_sampler="nutpie",
        backend=s.backend,
        target_accept=s.target_accept,
        random_seed=seed,
        progressbar=False,
        nuts=nuts,
    )


def sample_nutpie(
    sampler: SamplerSpec, model: Any, seed: int, *, cores: int | None = None
) -> xr.DataTree:
    """NUTS by nutpie called directly, for the large custom models: on the border model a gradient costs
    ~3.7 ms this way and ~4.9 ms through ``pm.sample`` (measured, 1 chain; the compiled functions differ), and
    JAX differentiates its own graph (``gradient_backend="jax"``). The posterior's attributes record
    ``compile_time`` and ``sampling_time`` in seconds."""
    import nutpie

    s = sampler
    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(
        model,
        backend=s.backend,
        gradient_backend="jax" if s.backend == "jax" else "pytensor",
    )
    compiled_at = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=s.draws,
        tune=s.tune,
        chains=s.chains,
        # as pm.sample: more threads than cores only contend
        cores=cores if cores is not None else min(s.chains, os.cpu_count() or 1),
        seed=seed,
        progress_bar=False,
        target_accept=s.target_accept,
        **({"adaptation": s.adaptation} if s.adaptation != "diagonal" else {}),
    )
    idata["posterior"].attrs["compile_time"] = round(compiled_at - start, 3)
    idata["posterior"].attrs["sampling_time"] = round(time.perf_counter() - compiled_at, 3)
    return idata


def _sample_custom(spec: ModelSpec, family: Family, data: xr.Dataset, model: Any) -> xr.DataTree:
    """NUTS, then the family's own derived quantities and predictive checks (``after_sampling``)."""
    _seed_prior, seed_nuts, _seed_ppc, seed_after = _seeds(spec.seed, 4)
    idata = sample_nutpie(spec.sampler, model, seed_nuts)
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


def fit(spec: ModelSpec, *, out: str | Path | None = None, force: bool = False) -> FitResult:
    """Fit `spec` and save it to `out` (default: NAME.nc beside the spec), or reuse a matching cached fit.

    The fit is saved whether or not it passes the diagnostics gate; a failed fit is marked failed in the file
    and `FitResult.passed` is False. Raises `EstimInputError` for a spec whose data cannot be loaded.
    """
    family = _family(spec)
    path = Path(out) if out is not None else spec.default_output()
    data = load_data(spec)
    d_hash = data_hash(data)
    versions = store.library_versions()
    if not force:
        tree = store.cached(path, spec.spec_hash, d_hash, versions)
        if tree is not None:
            return FitResult(spec, path, tree, store.verdict(tree, str(path)), True, 0.0)
    start = time.perf_counter()
    idata = sample(spec, family, data)
    seconds = time.perf_counter() - start
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
            **_mle_attrs(family, data, spec),
        }
    )
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
    family = _family(spec)
    return family.mle(load_data(spec), **spec.options)
