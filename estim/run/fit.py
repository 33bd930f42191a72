"""Fit a model spec: data -> model -> prior predictive -> NUTS -> log-likelihood -> posterior predictive ->
draws of N -> diagnostics gate (retried with safer settings when it fails) -> saved fit with provenance
(docs/design.md §6–7).

N is marginalised inside every family's model; its draws are made afterwards from its exact conditional law
given the data and each posterior draw (``Family.population``), and stored in the posterior group with
``unobserved = N − n``, n the number of distinct people (or animals) observed. What grows with the number of
patterns or individuals is stored compactly (`estim.run.compact`). A family whose posterior is computed
exactly (``Family.exact``: model averaging on a grid) skips the model and the sampler: its independent draws
go through the same gate (R-hat and ESS) and the same store, marked ``sampler = "exact"``.

From Python: `fit` takes a spec (`estim.run.spec.read_spec`); `fit_table` a pandas DataFrame or a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError, ModelRejected
from estim.families.base import Family
from estim.io import folder_sha256, sha256
from estim.priors import Prior, merge_priors, watched
from estim.run import compact, store
from estim.run.data import data_file, data_hash, data_source, family_of, load_data, records_folder
from estim.run.diagnostics import GateVerdict
from estim.run.diagnostics import check as gate_check
from estim.run.mle import fit_mle, mle_attrs, mle_dict  # noqa: F401 - fit_mle, mle_dict: also imported from here
from estim.run.sampler import Progress, nuts, seeds
from estim.run.spec import TABLE_SOURCE, ModelSpec, SamplerSpec, parse_spec


@dataclass(frozen=True)
class Attempt:
    """One run of the sampler within a fit: its settings, the gate's verdict on it, its wall time."""

    number: int
    sampler: SamplerSpec
    verdict: GateVerdict
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        s = self.sampler
        return {
            "attempt": self.number,
            "draws": s.draws,
            "tune": s.tune,
            "chains": s.chains,
            "target_accept": s.target_accept,
            "adaptation": s.adaptation,
            "passed": self.verdict.passed,
            "failed": list(self.verdict.failed),
            "verdict": self.verdict.describe(),
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        s = self.sampler
        return (
            f"attempt {self.number} (target_accept {s.target_accept:g}, {s.draws:,} draws, "
            f"{s.tune:,} warm-up, {s.chains} chains, {self.seconds:.1f} s): {self.verdict.describe()}"
        )


@dataclass(frozen=True)
class FitResult:
    """A fit on disk and in memory. `reused` is True when the cached file was returned without sampling.

    `seconds` is the wall time of the whole fit, every attempt included (model compilation included; ≈ 0
    when reused). `attempts` lists each run of the sampler (one unless the gate failed and it was retried;
    read from the file for a reused fit).
    """

    spec: ModelSpec
    path: Path
    idata: xr.DataTree
    verdict: GateVerdict
    reused: bool
    seconds: float
    attempts: tuple[dict[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict.passed


MIXING_CHECKS = frozenset({"r_hat", "ess_bulk", "ess_tail"})
"""The gate's checks of mixing: chains that fail only these explored without divergences, just too slowly."""


def retry_settings(
    sampler: SamplerSpec,
    retry: int,
    failed: Iterable[str] = (),
    last: SamplerSpec | None = None,
) -> SamplerSpec:
    """The sampler settings of the `retry`-th retry after a failed gate (``failed``: the checks the last
    attempt failed; ``last``: its settings): the draws and warm-up doubled at each retry (more effective draws,
    a longer adaptation), and target_accept raised to max(0.95, ta + 0.05) at the first retry and to 0.99 after
    (smaller steps: fewer divergences) — unless every failed check is one of mixing (`MIXING_CHECKS`). Then the
    last attempt's target is kept: smaller steps cost about twice the gradients per draw and do not make a
    slowly mixing chain mix faster (Vehtari et al. 2021, Bayesian Analysis 16(2): run the chains longer)."""
    failed = set(failed)
    factor = 2**retry
    longer = {"draws": sampler.draws * factor, "tune": sampler.tune * factor}
    if failed and failed <= MIXING_CHECKS:
        kept = (last or sampler).target_accept
        return dataclasses.replace(sampler, target_accept=kept, **longer)
    ta = sampler.target_accept
    ta = min(0.99, max(0.95, round(ta + 0.05, 6))) if retry == 1 else max(0.99, ta)
    return dataclasses.replace(sampler, target_accept=max(ta, sampler.target_accept), **longer)


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


def _noted(notes: dict[str, str], result: tuple[Any, dict[str, str]]) -> Any:
    """The value of a (value, notes) pair, its notes added to `notes`."""
    value, new = result
    notes.update(new)
    return value


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _idle(message: str, how: str, progress: Progress | None) -> None:
    """A prior or option that would change nothing: refused (``how="refuse"``), or said and warned of."""
    if how == "refuse":
        raise EstimInputError(message)
    _say(progress, f"warning: {message}")
    warnings.warn(message, stacklevel=3)


def build_model(
    spec: ModelSpec,
    family: Family,
    data: xr.Dataset,
    *,
    idle_priors: str = "refuse",
    progress: Progress | None = None,
) -> Any:
    """The family's model of the spec's data (the family merges the spec's priors into its defaults).

    A spec prior the model never reads (`estim.priors.watched`): a pooling scale in an unpooled model, a
    parameter the data or ``[options]`` leave out, would change nothing, and is refused (`EstimInputError`)
    before anything is sampled, as is an ``[options]`` entry these data leave without effect
    (`Family.idle_given_data`); with ``idle_priors="warn"`` either is said instead (a sensitivity variant)."""
    for text in family.idle_given_data(data, spec.options).values():
        _idle(f"{spec.path or spec.name}: [options] {text}", idle_priors, progress)
    priors, read = watched(spec.priors)
    model = family.build(data, priors, **spec.options)
    idle = sorted(set(spec.priors) - read)
    if idle:
        them = "it" if len(idle) == 1 else "them"
        free = ", ".join(v.name for v in model.free_RVs) or "none"
        message = (
            f"{spec.name}: [priors] {', '.join(idle)}: the {family.name} model of these data and [options] "
            f"does not use {them} (its parameters here: {free}), so {them} would change nothing; remove "
            f"{them}, or give the [options] under which the model has {them}"
        )
        _idle(message, idle_priors, progress)
    return model


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
    spec: ModelSpec,
    family: Family,
    data: xr.Dataset,
    *,
    progress: Progress | None = None,
    idle_priors: str = "refuse",
) -> xr.DataTree:
    """Prior predictive, NUTS (nutpie), pointwise log-likelihood, posterior predictive and draws of N.
    `progress` receives a line of text at each stage and every ten seconds or so while sampling. Predictive
    draws and the log-likelihood are kept compact (`estim.run.compact`), what was done noted in the
    attributes. A spec prior or ``[options]`` entry that would change nothing is refused, or with
    ``idle_priors="warn"`` said (`build_model`)."""
    if family.exact is not None:
        return _sample_exact(spec, family, data, progress)
    s = spec.sampler
    seed_prior, seed_nuts, seed_ppc, seed_n = seeds(spec.seed, 4)
    model = build_model(spec, family, data, idle_priors=idle_priors, progress=progress)
    if family.after_sampling is not None:
        return _sample_custom(spec, family, data, model, progress)
    observed = family.observed_name
    notes: dict[str, str] = {}
    with model, warnings.catch_warnings(), _quiet_pymc():
        # The families' replicate generators are NumPy code: numba running them in object mode is expected.
        warnings.filterwarnings("ignore", message="Numba will use object mode")
        _say(progress, f"prior predictive: {s.prior_draws:,} draws …")
        prior = _optional(
            spec.name,
            "prior predictive",
            lambda: _noted(
                notes, compact.prior_predictive(model, s.prior_draws, seed_prior, observed)
            ),
        )
        idata = nuts(model, s, seed_nuts, with_data=True, progress=progress)
        _say(progress, "pointwise log-likelihood and posterior predictive draws …")
        ll = _noted(notes, compact.log_likelihood(model, idata, observed))
        if ll is not None:
            idata["log_likelihood"] = xr.DataTree(ll)
        posterior_draws = idata["posterior"].to_dataset()
        ppc = _optional(
            spec.name,
            "posterior predictive",
            lambda: _noted(
                notes, compact.posterior_predictive(model, posterior_draws, seed_ppc, observed)
            ),
        )
    for what, result in (("prior_predictive", prior), ("posterior_predictive", ppc)):
        if isinstance(result, str):
            idata.attrs[f"{what}_error"] = result
        else:
            groups = ("prior", "prior_predictive") if what == "prior_predictive" else (what,)
            idata.update({k: result[k] for k in groups if k in result.children})
    idata.attrs.update(notes)
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


EXACT = "exact"  # the ``sampler`` attribute of a fit whose posterior the family computed exactly
SAMPLER_CHECKS = ("divergences", "e_bfmi")  # the gate's checks of NUTS itself, not of the draws


def _sample_exact(
    spec: ModelSpec, family: Family, data: xr.Dataset, progress: Progress | None
) -> xr.DataTree:
    """Independent draws from a posterior the family computes exactly (``Family.exact``, e.g. model averaging
    on a grid): no PyMC model and no sampler. The spec's chains × draws are drawn with the spec's seed, and
    ``unobserved = N − n`` is added as for the sampled families."""
    s = spec.sampler
    *_, seed_exact = seeds(spec.seed, 4)
    _say(progress, f"exact posterior: {s.chains} × {s.draws:,} independent draws …")
    assert family.exact is not None
    groups = family.exact(
        data,
        dict(spec.priors),
        np.random.default_rng(seed_exact),
        draws=s.draws,
        chains=s.chains,
        **spec.options,
    )
    idata = xr.DataTree.from_dict(dict(groups))
    posterior = groups["posterior"]
    n_draws = posterior["N"]
    n = n_observed(data, idata, family.observed_name, n_draws)
    posterior = posterior.assign(unobserved=(n_draws - n).rename("unobserved"))
    posterior["N"].attrs["description"] = "population size, drawn from its exact posterior"
    posterior["unobserved"].attrs["description"] = "N minus the individuals observed"
    idata["posterior"] = xr.DataTree(posterior)
    idata.attrs["sampler"] = EXACT
    idata.attrs["prior_predictive_error"] = (
        "not drawn: the posterior is computed exactly, with no PyMC model to draw from"
    )
    return idata


def _exact_verdict(verdict: GateVerdict) -> GateVerdict:
    """The gate on independent draws: R-hat and ESS only (divergences and E-BFMI are properties of NUTS's
    trajectories, and there are none). Independent draws pass R-hat and ESS but for chance; the checks are
    kept because they are cheap and would catch draws that are not what they claim (a chain's draws
    repeated, chains drawn from different laws)."""
    checks = tuple(c for c in verdict.checks if c.name not in SAMPLER_CHECKS)
    return GateVerdict(passed=all(c.passed for c in checks), checks=checks)


def check_before_sampling(
    family: Family, spec: ModelSpec, data: xr.Dataset, progress: Progress | None = None
) -> dict[str, Any] | None:
    """The family's test of its assumptions on the data (`Family.precheck`), made before any sampling: its
    result (None when the family has none or it does not apply), or `ModelRejected` when it fails, naming
    the test and its result."""
    if family.precheck is None:
        return None
    result = family.precheck(data, **spec.options)
    if result is None:
        return None
    _say(progress, f"{spec.name}: before sampling: {result['text']}")
    if not result["passed"]:
        raise ModelRejected(
            f"{spec.name}: the data reject the model, by a test made before sampling: {result['text']}. "
            f"{result.get('remedy', 'Not fitted.')}"
        )
    return result


def fit(
    spec: ModelSpec,
    *,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    table: pd.DataFrame | None = None,
    idle_priors: str = "refuse",
) -> FitResult:
    """Fit `spec` and save it to `out` (default: NAME.nc beside the spec), or reuse a matching cached fit.

    Every attempt is checked by the diagnostics gate; one that fails is retried up to ``[sampler] retries``
    times with a higher target acceptance rate and more draws (`retry_settings`), each retry gated like the
    first. The fit is saved whether or not the last attempt passes, with every attempt recorded
    (``attempts_json``); a failed fit is marked failed in the file and `FitResult.passed` is False. Raises
    `EstimInputError` for a spec whose data cannot be loaded. `progress` (e.g. ``print``) receives a line of
    text at each stage and while sampling. `table` is the DataFrame of a spec made by `fit_table`. A spec prior
    or ``[options]`` entry that would change nothing is refused before sampling, or with
    ``idle_priors="warn"`` said (`build_model`)."""
    family = family_of(spec)
    path = Path(out) if out is not None else spec.default_output()
    store.check_out(path)  # before any work: a folder it cannot write in, a file that is not a fit
    source, synthetic = data_source(spec)
    _say(progress, f"{spec.name}: reading the data: {source} …")
    files = _file_attrs(
        spec
    )  # hashed before they are read: an edit made during the fit is caught later
    data = load_data(spec, table)
    d_hash = data_hash(data)
    versions = store.library_versions()
    if not force:
        tree = store.cached(path, spec.spec_hash, d_hash, versions)
        if tree is not None:
            _say(progress, f"{spec.name}: {path} is a fit of this spec and these data: reused")
            attempts = tuple(json.loads(str(tree.attrs.get("attempts_json", "[]"))))
            verdict = store.verdict(tree, str(path))
            return FitResult(spec, path, tree, verdict, True, 0.0, attempts)
    precheck = check_before_sampling(family, spec, data, progress)
    start = time.perf_counter()
    attempts: list[Attempt] = []
    settings = spec.sampler
    for number in range(1, spec.sampler.retries + 2):
        if number > 1:
            last = attempts[-1]
            settings = retry_settings(spec.sampler, number - 1, last.verdict.failed, last.sampler)
            _say(
                progress,
                f"{attempts[-1].describe()}; retrying with target_accept {settings.target_accept:g}, "
                f"{settings.draws:,} draws and {settings.tune:,} warm-up …",
            )
        began = time.perf_counter()
        attempt_spec = dataclasses.replace(spec, sampler=settings)
        idata = sample(attempt_spec, family, data, progress=progress, idle_priors=idle_priors)
        _say(progress, "diagnostics gate …")
        names = gate_names(family, idata)
        verdict = gate_check(idata) if names is None else gate_check(idata, var_names=names)
        if family.exact is not None:
            verdict = _exact_verdict(verdict)
        attempts.append(Attempt(number, settings, verdict, time.perf_counter() - began))
        if verdict.passed:
            break
    seconds = time.perf_counter() - start
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
            "attempts_json": json.dumps([a.to_dict() for a in attempts]),
            "sampler_json": json.dumps(settings.to_dict(), sort_keys=True),
            "data_source": source,
            "data_synthetic": "true" if synthetic else "false",
            **files,
            **mle_attrs(family, data, spec),
            **({} if precheck is None else {"precheck_json": json.dumps(precheck, sort_keys=True)}),
        }
    )
    _say(progress, f"saving {path} …")
    store.save(idata, path, provenance, verdict)
    records = tuple(a.to_dict() for a in attempts)
    # the tree as the file holds it, as a reused fit returns it: a netCDF round trip changes types (attributes
    # become NumPy scalars, object coordinates fixed-width strings), so what is computed from a fresh fit
    # would otherwise differ, in its bytes, from the same computation on the same fit read back
    return FitResult(spec, path, store.load(path), verdict, False, seconds, records)


def _file_attrs(spec: ModelSpec) -> dict[str, str]:
    """Where a data file was when fitted, and its SHA-256 (a record folder's, `folder_sha256`): which bytes the
    fit was made from."""
    if spec.data.records is not None:
        folder = records_folder(spec)
        return {"records_folder": str(folder.resolve()), "records_sha256": folder_sha256(folder)}
    if spec.data.file is None:
        return {}
    path = data_file(spec)
    return {"data_file": str(path.resolve()), "data_file_sha256": sha256(path)}


def fit_table(
    table: pd.DataFrame | str | Path,
    family: str,
    *,
    seed: int,
    fields: Mapping[str, Any] | None = None,
    priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
    sampler: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    name: str = "table",
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> FitResult:
    """Fit `family` to a table from Python, exactly as a spec with ``[data] file`` would be fitted.

    `table` is a pandas DataFrame or the path of a CSV or Parquet file; `fields` are the family's ``[data]``
    fields (``{"layout": "individuals", "times_seen": "capture", "covariates": ["sex"]}``, …), `priors`
    overrides of the family's priors (`estim.priors.Prior` objects or ``{"distribution": "Normal", …}``
    tables), `sampler` the ``[sampler]`` settings and `options` the family's options, all checked as in a
    spec. Saved to `out` (default: NAME.nc in the current folder) and reused when the cached fit matches.

    A fit of a file records the file and can be re-read later (`estim check`, `estim compare`, forecasts);
    a fit of a DataFrame records only a description of it: its data cannot be re-read from the fit.
    """
    data: dict[str, Any] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in (fields or {}).items()
    }
    frame = None
    if isinstance(table, pd.DataFrame):
        frame = table
        columns = ", ".join(map(str, table.columns[:8])) + (", …" if table.shape[1] > 8 else "")
        data[TABLE_SOURCE] = f"an in-memory table of {len(table):,} rows ({columns})"
    elif isinstance(table, str | Path):
        data["file"] = str(Path(table).expanduser().resolve())
    else:
        raise EstimInputError(
            f"fit_table: expected a DataFrame or a file's path, got {type(table).__name__}"
        )
    raw = {
        "name": name,
        "family": family,
        "seed": seed,
        "data": data,
        "priors": {
            k: p.to_dict() if isinstance(p, Prior) else dict(p) for k, p in (priors or {}).items()
        },
        "sampler": dict(sampler or {}),
        "options": dict(options or {}),
    }
    spec = parse_spec(raw, source=f"fit_table({name})", allow_table=True)
    return fit(spec, out=out, force=force, progress=progress, table=frame)


def gate_names(family: Family, idata: xr.DataTree) -> list[str] | None:
    """The posterior variables the gate reads: all (None), all but the family's `gate_skip`, or its
    `gate_variables` and N."""
    posterior = idata["posterior"]
    if family.gate_variables is None:
        if not family.gate_skip:
            return None
        return [str(v) for v in posterior.data_vars if v not in family.gate_skip]
    return [v for v in (*family.gate_variables, "N") if v in posterior.data_vars]
