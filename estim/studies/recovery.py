"""Parameter recovery (coverage) study for any family that declares a simulator (`RecoveryDesign`).

For one family: simulate many datasets from the family's *own* generative model at a fixed truth, fit each
with the family's default priors, and record whether the 90 % equal-tailed posterior interval of N covers the
true N. A calibrated model and sampler should cover in about 90 % of datasets (a Bayesian interval has exact
frequentist coverage only approximately; the acceptance band is 85–95 %).

Dataset i of a study is simulated with ``np.random.default_rng(seed + i)`` by the family's
``RecoveryDesign.simulate``; what the truth means, and how datasets are padded to one shape, each family
documents with its simulator (``estim.families.single_register.recovery``, ``estim.families.closed.recovery``).

Speed: the model is built and compiled (nutpie) once per study. The observed array is swapped for a named
shared variable whose value is replaced per dataset (``CompiledModel.with_data``); its shape is fixed by the
family's ``study_data``, which pads every dataset with zero cells, and a zero cell adds 0 to the
log-likelihood and its gradient, so padding does not change the posterior.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytensor
import xarray as xr

from estim.families import FAMILIES
from estim.families.base import Family, RecoveryDesign
from estim.families.registry import load_all
from estim.intervals import equal_tailed_array
from estim.resume import SETTINGS, StudyRows, study_rows_so_far
from estim.run.diagnostics import check as gate_check
from estim.run.sampler import available_threads, compile_model, draw
from estim.run.spec import SamplerSpec
from estim.studies.rows import coverage, flag, write_rows

INTERVAL = 0.9  # probability of the central interval of N whose coverage is measured
COVARIATE = "group"
SHARED_NAME = "recovery_frequency"

COLUMNS = [
    "dataset",
    "seed",
    "n_true",
    "n_observed",
    "n_median",
    "n_q05",
    "n_q95",
    "covered",
    "gate_passed",
    "gate_failed",
    "divergences",
    "seconds",
    "error",
]


def study_families() -> tuple[str, ...]:
    """The registered families that declare a recovery simulator."""
    return tuple(name for name, f in load_all().items() if f.recovery is not None)


def _family(family_name: str) -> Family:
    family = load_all().get(family_name)
    if family is None or family.recovery is None:
        raise ValueError(
            f"no recovery study for family {family_name!r}; known: {', '.join(study_families())}"
        )
    return family


def _design(family_name: str) -> RecoveryDesign:
    design = _family(family_name).recovery
    assert design is not None  # _family checked it
    return design


# --------------------------------------------------------------------------------------------------------------
# simulation


def true_parameters(
    family_name: str, true_params: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The family's default truth with ``true_params`` applied (unknown names are an error)."""
    design = _design(family_name)
    params = dict(design.truth)
    unknown = sorted(set(true_params or {}) - set(params))
    if unknown:
        raise ValueError(f"{family_name} takes true parameters {sorted(params)}, not {unknown}")
    params.update(true_params or {})
    return params


def simulate_dataset(
    family_name: str,
    seed: int,
    *,
    true_params: Mapping[str, float] | None = None,
    population_size: int | None = None,
    covariate_effect: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """One simulated dataset, deterministic in ``seed``: (table of the observed, true N).

    ``population_size`` defaults to the family's ``RecoveryDesign.population_size``.
    """
    design = _design(family_name)
    if covariate_effect is not None and not design.covariate:
        raise ValueError(f"the {family_name} recovery study has no covariate")
    params = true_parameters(family_name, true_params)
    size = design.population_size if population_size is None else population_size
    table = design.simulate(np.random.default_rng(seed), size, params, covariate_effect)
    return table, int(size)


# --------------------------------------------------------------------------------------------------------------
# one compiled model, many datasets


def with_shared_observed(model: Any, initial: np.ndarray) -> Any:
    """A copy of ``model`` whose observed frequency array is a shared variable named ``SHARED_NAME``."""
    from pymc.model.fgraph import ModelObservedRV, fgraph_from_model, model_from_fgraph

    fgraph, _ = fgraph_from_model(model)
    nodes = [n for n in fgraph.apply_nodes if isinstance(n.op, ModelObservedRV)]
    if len(nodes) != 1:
        raise RuntimeError(f"expected one observed variable, found {len(nodes)}")
    value = nodes[0].inputs[1]
    shared = pytensor.shared(
        np.asarray(initial, dtype=value.dtype), name=SHARED_NAME, shape=value.type.shape
    )
    fgraph.replace(value, shared, import_missing=True)
    return model_from_fgraph(fgraph, mutate_fgraph=True)


def compile_study_model(
    family_name: str, data: xr.Dataset, covariates: list[str], backend: str = "jax"
) -> Any:
    """The family's model for ``data``'s shape (default priors), compiled once by nutpie.

    ``backend`` "jax" compiles in seconds but pays ~0.3 ms of dispatch per gradient; "numba" compiles for
    ~30 s and then samples these small models several times faster, so it pays off over a long study.
    """
    family = _family(family_name)
    options = {"covariates": covariates} if covariates else {}
    model = family.build(data, None, **options)
    shared_model = with_shared_observed(model, data[family.observed_name].values)
    # freeze=False keeps the observed array a runtime input rather than a compiled-in constant
    return compile_model(shared_model, backend, freeze=False)


def fit_dataset(
    compiled: Any,
    family_name: str,
    data: xr.Dataset,
    covariates: list[str],
    *,
    seed: int,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float = 0.9,
) -> xr.DataTree:
    """NUTS (nutpie) on one dataset with the compiled model; the posterior gets the draws of N."""
    family = _family(family_name)
    seeds = np.random.SeedSequence(seed).generate_state(2)
    # A low-rank mass matrix adapts to correlated posteriors (λ with ω or α, intercept with covariate
    # effects): with nutpie's diagonal default 12 of 100 oiztpoisson fits failed the gate, with it none.
    sampler = SamplerSpec(
        draws=draws, tune=tune, chains=chains, target_accept=target_accept, adaptation="low_rank"
    )
    idata = draw(
        compiled.with_data(**{SHARED_NAME: data[family.observed_name].values}),
        sampler,
        int(seeds[0]),
        cores=min(chains, available_threads()),  # a pinned study worker: one thread
    )
    posterior = idata["posterior"].to_dataset()
    options = {"covariates": covariates} if covariates else {}
    n_draws = family.population(data, posterior, np.random.default_rng(int(seeds[1])), **options)
    # (closed families: N has a stratum dimension of length 1)
    idata["posterior"] = xr.DataTree(posterior.assign(N=n_draws))
    return idata


def dataset_row(
    task: tuple[int, int, xr.Dataset, int],
    *,
    family_name: str,
    covariates: list[str],
    backend: str,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    compiled: Any = None,
) -> pd.DataFrame:
    """One dataset of a recovery study (``task``: its index, seed, data and true N) fitted and compared with
    the truth: a one-row frame of `COLUMNS`. ``compiled``: the study's compiled model; None compiles it once
    per process (a dask worker: `estim.studies.distributed.worker_cache`) for datasets of this shape."""
    i, s, data, n_true = task
    if compiled is None:
        from estim.studies.distributed import worker_cache

        shape = tuple(sorted((str(k), int(v)) for k, v in data.sizes.items()))
        compiled = worker_cache(
            ("recovery", family_name, tuple(covariates), backend, shape),
            lambda: compile_study_model(family_name, data, covariates, backend),
        )
    observed = FAMILIES[family_name].observed_name
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "dataset": i,
        "seed": s,
        "n_true": n_true,
        "n_observed": int(data[observed].values.sum()),
    }
    try:
        idata = fit_dataset(
            compiled,
            family_name,
            data,
            covariates,
            seed=s,
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
        )
        n = idata["posterior"]["N"].values.ravel()
        q05, med, q95 = equal_tailed_array(n, INTERVAL)
        verdict = gate_check(idata)
        row.update(
            n_median=float(med),
            n_q05=float(q05),
            n_q95=float(q95),
            covered=bool(q05 <= n_true <= q95),
            gate_passed=verdict.passed,
            gate_failed=",".join(verdict.failed),
            divergences=int(idata["sample_stats"]["diverging"].sum()),
            error="",
        )
    except Exception as e:  # noqa: BLE001 - one failed fit is a result of the study, not its end
        row.update(
            n_median=np.nan,
            n_q05=np.nan,
            n_q95=np.nan,
            covered=False,
            gate_passed=False,
            gate_failed="error",
            divergences=-1,
            error=f"{type(e).__name__}: {e}".splitlines()[0],
        )
    row["seconds"] = time.perf_counter() - t0
    return pd.DataFrame([row], columns=COLUMNS)


def _describe_row(family_name: str, n_datasets: int, row: Mapping[str, Any]) -> str:
    return (
        f"{family_name} {int(row['dataset']) + 1}/{n_datasets}: N={row['n_true']} "
        f"median={row['n_median']:.0f} [{row['n_q05']:.0f}, {row['n_q95']:.0f}] "
        f"covered={row['covered']} gate={row['gate_passed']} {row['seconds']:.1f}s"
    )


def recovery_study(
    family_name: str,
    *,
    n_datasets: int = 100,
    seed: int = 20260101,
    true_params: Mapping[str, float] | None = None,
    population_size: int | None = None,
    covariate_effect: float | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 2,
    progress: bool = False,
    backend: str = "jax",
    target_accept: float | None = None,
    partial_out: str | None = None,
    resume: bool = False,
    force: bool = False,
    client: Any = None,
) -> pd.DataFrame:
    """Simulate ``n_datasets`` registers at a fixed truth, fit each, and check the 90 % interval of N.

    One row per dataset: ``n_true``, ``n_observed``, posterior median and 5 %/95 % quantiles of N,
    ``covered`` (n_q05 ≤ n_true ≤ n_q95), ``gate_passed`` (the diagnostics gate on the posterior including N),
    the names of failed gate checks, divergences, ``seconds`` (sampling + draws of N + gate for that dataset)
    and ``error`` (empty unless the fit raised). ``df.attrs`` records the settings and the compile time.

    ``draws`` per chain, ``tune`` and ``target_accept`` default to the family's ``RecoveryDesign`` (``tune``:
    min(draws, 1000) unless it says). ``backend`` "numba" compiles for ~30 s once and then samples these small
    models 3–4× faster than "jax". With ``partial_out`` the rows so far are written to that CSV after every
    dataset, and with ``resume`` the seeds already in it are not fitted again (their rows are kept; the file
    is refused when its rows were made with other options, `estim.resume`); without it a non-empty
    ``partial_out`` is refused unless ``force``. Every row records its ``settings`` (`study_rows`). With a
    dask ``client`` (`estim.studies.distributed`) the datasets run as tasks on its workers, each worker
    compiling the model once. ``population_size`` defaults to the family's.
    """
    design = _design(family_name)
    if population_size is None:
        population_size = design.population_size
    if draws is None:
        draws = design.draws
    if tune is None:
        tune = design.tune if design.tune is not None else min(draws, 1000)
    if target_accept is None:
        target_accept = design.target_accept
    params = true_parameters(family_name, true_params)
    covariates = [COVARIATE] if covariate_effect is not None else []
    seeds = [seed + i for i in range(n_datasets)]
    tables = [
        simulate_dataset(
            family_name,
            s,
            true_params=params,
            population_size=population_size,
            covariate_effect=covariate_effect,
        )
        for s in seeds
    ]
    datasets = design.study_data([t for t, _ in tables], covariates)

    start = time.perf_counter()
    settings = {
        "family_name": family_name,
        "covariates": covariates,
        "backend": backend,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "target_accept": target_accept,
    }
    tasks = [
        (i, s, data, n_true)
        for i, (s, data, (_, n_true)) in enumerate(zip(seeds, datasets, tables, strict=True))
    ]
    study = study_rows(
        params=params,
        population_size=population_size,
        covariate_effect=covariate_effect,
        seed=seed,
        **settings,
    )
    done = study_rows_so_far(partial_out, study, resume=resume, force=force)
    finished = set() if done is None else {int(x) for x in done["seed"]}
    compile_seconds = float("nan")
    if client is not None:
        from estim.studies.distributed import run_tasks

        def describe(frame: pd.DataFrame) -> str:
            return _describe_row(family_name, n_datasets, frame.iloc[0].to_dict())

        df = run_tasks(
            client,
            tasks,
            functools.partial(dataset_row, **settings),
            key=lambda task: task[1],
            done=finished,
            rows_so_far=done,
            out=partial_out,
            describe=describe if progress else None,
            name=family_name,
            settings=study.settings(),
        )
        # the study's columns, and which worker fitted each dataset (`run_tasks`)
        df = df.sort_values("dataset").reset_index(drop=True)
        df = df[[*COLUMNS, SETTINGS, *(["worker"] if "worker" in df else [])]]
    else:
        compiled = None
        if any(task[1] not in finished for task in tasks):
            compiled = compile_study_model(family_name, datasets[0], covariates, backend)
            compile_seconds = time.perf_counter() - start
        rows = [] if done is None else done.to_dict("records")
        for task in tasks:
            if task[1] in finished:
                continue
            row = study.stamp(dataset_row(task, compiled=compiled, **settings)).iloc[0].to_dict()
            rows.append(row)
            if partial_out is not None:  # a long study keeps what it has measured if it is stopped
                write_rows(rows, partial_out, [*COLUMNS, SETTINGS])
            if progress:
                print(_describe_row(family_name, n_datasets, row), flush=True, file=sys.stderr)
        df = pd.DataFrame(rows, columns=[*COLUMNS, SETTINGS])
    df.attrs.update(
        family=family_name,
        true_params=params,
        population_size=population_size,
        covariate_effect=covariate_effect,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        data_shape=dict(datasets[0].sizes),
        compile_seconds=compile_seconds,
        backend=backend,
        target_accept=target_accept,
        wall_seconds=time.perf_counter() - start,
    )
    return df


def study_rows(
    *,
    family_name: str,
    params: Mapping[str, float],
    population_size: int,
    covariate_effect: float | None,
    seed: int,
    **sampler: Any,
) -> StudyRows:
    """What a recovery study's rows are, and the options that determine them: its family,
    truth, N, covariate effect, sampler settings and backend, and the base seed (dataset i uses seed + i)."""
    options = {
        "study": "recovery",
        "family": family_name,
        "true_params": dict(sorted(params.items())),
        "population_size": int(population_size),
        "covariate_effect": covariate_effect,
        "seed": int(seed),
        **sampler,
    }
    return StudyRows(
        name="recovery study",
        columns=COLUMNS,
        unit=("seed",),
        key=("seed",),
        options=options,
        numbers=("seed",),
    )


# --------------------------------------------------------------------------------------------------------------
# summary


def coverage_summary(df: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Coverage of the 90 % interval with its exact (Clopper–Pearson) binomial ``level`` interval, relative
    error of the posterior median (median of |median − N|/N, and mean signed), gate failures and errors."""
    c = coverage(df["covered"], level)
    rel = (df["n_median"] - df["n_true"]) / df["n_true"]
    width = (df["n_q95"] - df["n_q05"]) / df["n_true"]
    return {
        "datasets": c["n"],
        "covered": c["covered"],
        "coverage": c["coverage"],
        "coverage_ci": tuple(c["ci"]),
        "median_abs_rel_error": float(rel.abs().median()),
        "mean_rel_error": float(rel.mean()),
        "median_rel_width": float(width.median()),
        "below": int((df["n_true"] < df["n_q05"]).sum()),
        "above": int((df["n_true"] > df["n_q95"]).sum()),
        # N is an integer: with a narrow interval (small N) the truth can sit exactly on an endpoint, which
        # counts as covered (n_q05 ≤ n_true ≤ n_q95) and pushes coverage above the nominal 90 %
        "at_endpoint": int(((df["n_true"] == df["n_q05"]) | (df["n_true"] == df["n_q95"])).sum()),
        "gate_failures": int((~flag(df["gate_passed"])).sum()),
        # (a CSV read back gives NaN for the empty error strings)
        "errors": int((df["error"].notna() & (df["error"].astype(str) != "")).sum()),
        "seconds_per_dataset": float(df["seconds"].median()),
    }


def study_report(df: pd.DataFrame) -> dict[str, Any]:
    """A study's settings (family, true parameters, N, sampler settings, data shape) and its coverage summary,
    as JSON-ready values: what `scripts/recovery.py` prints and the paper reads beside the rows."""
    keys = (
        "family",
        "true_params",
        "population_size",
        "covariate_effect",
        "draws",
        "tune",
        "chains",
        "seed",
        "data_shape",
        "compile_seconds",
        "backend",
        "target_accept",
    )
    summary = coverage_summary(df)
    return {
        **{k: df.attrs.get(k) for k in keys},
        **summary,
        "coverage_ci": [float(x) for x in summary["coverage_ci"]],
    }
