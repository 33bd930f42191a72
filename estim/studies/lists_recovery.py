"""Recovery study of the multiple-list models: how often the 90 % posterior interval of the population size N
covers the truth, over datasets simulated with heterogeneous capture and a list dependence at once (which no
decomposable graph but the complete one, with N unidentified, contains, and latent classes only with more classes than 4 lists identify), and over
controls with one departure at a time.

Designs (`STUDY_DESIGNS`): 4 and 6 lists (`estim.families.lists.simulate.FOUR_LISTS`, ``SIX_LISTS``: lists 1
and 2 dependent with within-class odds ratio 3, and 30 % of people 2.5 times as visible as the rest) × N ∈
{500, 5,000}. Models:

* ``bma``: dga's model averaging over decomposable graphs (`estim.families.lists.bma.dga_posterior`) with
  dga's defaults, δ = 2^−K and p(N) ∝ 1/N, on a grid of m = N − n that holds the posterior (it starts at
  m = 0…10n and doubles until the posterior at its end is below 10^−6 of its peak, `BMA_EDGE`). The posterior
  is exact on the grid, so its gate always passes; quantiles are dga's (smallest N whose CDF reaches p).
* ``latent_class``: LCMCR's model (`estim.families.lists.latent_class.build_latent_class`, 10 classes, its
  default priors) by NUTS (nutpie), compiled once per number of lists: every dataset is padded to all 2^K − 1
  patterns (a zero cell adds nothing to the likelihood) and swapped in as data. The gate reads N and the
  label-invariant quantities only (`LABEL_INVARIANT`), as the family's does; no retry.

Dataset i of every design uses seed ``seed + i`` (so both models see the same tables). Rows are appended to a
CSV as they arrive, one line each, flushed: a study stopped half-way resumes without redoing a finished row.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr

from estim.errors import EstimInputError
from estim.families.closed import history_data
from estim.families.lists import bma
from estim.families.lists.latent_class import (
    BACKEND,
    LABEL_INVARIANT,
    OBSERVED,
    TARGET_ACCEPT,
    build_latent_class,
)
from estim.families.lists.latent_class import population as latent_class_population
from estim.families.lists.simulate import (
    COUNT,
    FOUR_LISTS,
    FOUR_LISTS_DEPENDENCE,
    FOUR_LISTS_HETEROGENEITY,
    SIX_LISTS,
    SIX_LISTS_DEPENDENCE,
    SIX_LISTS_HETEROGENEITY,
    ListsDesign,
    patterns,
    simulate_lists,
)
from estim.intervals import equal_tailed_array
from estim.resume import SETTINGS, StudyRows, read_study_rows
from estim.run.diagnostics import check as gate_check
from estim.run.sampler import compile_model, draw
from estim.run.spec import SamplerSpec
from estim.studies.recovery import SHARED_NAME, with_shared_observed
from estim.studies.rows import flag, write_rows

INTERVAL = 0.9  # the central posterior interval of N whose coverage is measured
NOMINAL = 0.9
SEED = 20260316
BMA_EDGE = 1e-6  # the grid must end where the posterior is below this share of its peak
BMA_GRID_START, BMA_GRID_MAX = 10, 320  # grid ends, in multiples of n (dga's example uses 10n)
MODELS = ("bma", "latent_class")

STUDY_DESIGNS: dict[str, tuple[ListsDesign, int]] = {
    "4 lists, N=500": (FOUR_LISTS, 500),
    "4 lists, N=5000": (FOUR_LISTS, 5000),
    "6 lists, N=500": (SIX_LISTS, 500),
    "6 lists, N=5000": (SIX_LISTS, 5000),
    # each departure alone (controls: which model contains the truth, `estim.families.lists.simulate`)
    "4 lists, dependence only, N=5000": (FOUR_LISTS_DEPENDENCE, 5000),
    "4 lists, heterogeneity only, N=5000": (FOUR_LISTS_HETEROGENEITY, 5000),
    "6 lists, dependence only, N=500": (SIX_LISTS_DEPENDENCE, 500),
    "6 lists, heterogeneity only, N=500": (SIX_LISTS_HETEROGENEITY, 500),
}
# the designs: both departures at once
COMBINED_DESIGNS = ("4 lists, N=500", "4 lists, N=5000", "6 lists, N=500", "6 lists, N=5000")

COLUMNS = [
    "design",
    "model",
    "dataset",
    "seed",
    "n_true",
    "n_observed",
    "median",
    "q05",
    "q95",
    "covered",
    "gate_passed",
    "divergences",
    "seconds",
    "error",
]


@dataclass(frozen=True)
class LatentClassSettings:
    """How the latent-class model is sampled: the shipped spec's (models/kosovo_lists_latent_class.toml)
    unless said otherwise. ``cores`` threads run the chains (1: one after another)."""

    classes: int = 10
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = TARGET_ACCEPT
    backend: str = BACKEND
    cores: int = 1


# --------------------------------------------------------------------------------------------------------------
# one fit


def bma_fit(table: pd.DataFrame, lists: Sequence[str]) -> dict[str, Any]:
    """dga's model-averaged posterior of N (δ = 2^−K, p(N) ∝ 1/N): median and 90 % interval, on a grid of
    m grown (doubling from 0…10n) until it holds the posterior (`BMA_EDGE`)."""
    n = int(table[COUNT].sum())
    multiple = BMA_GRID_START
    while True:
        result = bma.dga_posterior(table, lists, COUNT, None, np.arange(0, multiple * n + 1))
        if result.edge_ratio < BMA_EDGE:
            break
        if multiple >= BMA_GRID_MAX:
            raise EstimInputError(
                f"the posterior of N is still {result.edge_ratio:.2g} of its peak at N = "
                f"{n + multiple * n:,} ({multiple} × n): the grid cannot hold it"
            )
        multiple *= 2
    lo, hi = (1 - INTERVAL) / 2, (1 + INTERVAL) / 2
    return {
        "median": float(result.median),
        "q05": float(result.quantile(lo)),
        "q95": float(result.quantile(hi)),
        "gate_passed": True,  # exact on the grid: no sampler to check
        "divergences": 0,
    }


def padded_history_data(table: pd.DataFrame, lists: Sequence[str]) -> xr.Dataset:
    """The pattern table as capture histories over all 2^K − 1 seen patterns (zero counts included), so that
    every dataset of K lists has the same shape and order."""
    k = len(lists)
    full = pd.DataFrame(patterns(k)[1:].astype(np.int64), columns=list(lists))
    code = full.to_numpy() @ (np.int64(1) << np.arange(k, dtype=np.int64))
    given = table[list(lists)].to_numpy(dtype=np.int64) @ (
        np.int64(1) << np.arange(k, dtype=np.int64)
    )
    counts = np.zeros(1 << k, dtype=np.int64)
    np.add.at(counts, given, table[COUNT].to_numpy(dtype=np.int64))
    full[COUNT] = counts[code]
    return history_data(full, occasions=list(lists), count=COUNT)


class LatentClassFitter:
    """LCMCR's model compiled once per number of lists (nutpie), fitted to many datasets by swapping data."""

    def __init__(self, settings: LatentClassSettings = LatentClassSettings()) -> None:
        self.settings = settings
        self._compiled: dict[int, Any] = {}
        self.compile_seconds: dict[int, float] = {}

    def _model(self, data: xr.Dataset) -> Any:
        k = data.sizes["occasion"]
        if k not in self._compiled:
            start = time.perf_counter()
            model = build_latent_class(data, classes=self.settings.classes)
            shared = with_shared_observed(model, data[OBSERVED].values)
            self._compiled[k] = compile_model(shared, self.settings.backend, freeze=False)
            self.compile_seconds[k] = time.perf_counter() - start
        return self._compiled[k]

    def fit(self, table: pd.DataFrame, lists: Sequence[str], seed: int) -> dict[str, Any]:
        """The latent-class posterior of N for one dataset: median and 90 % interval of its draws, and the
        gate's verdict on N and the label-invariant quantities."""
        s = self.settings
        data = padded_history_data(table, lists)
        compiled = self._model(data)
        nuts_seed, n_seed = np.random.SeedSequence(seed).generate_state(2)
        sampler = SamplerSpec(
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            target_accept=s.target_accept,
            backend=s.backend,
        )
        idata = draw(
            compiled.with_data(**{SHARED_NAME: data[OBSERVED].values}),
            sampler,
            int(nuts_seed),
            cores=s.cores,
        )
        posterior = idata["posterior"].to_dataset()
        n_draws = latent_class_population(data, posterior, np.random.default_rng(int(n_seed)))
        idata["posterior"] = xr.DataTree(posterior.assign(N=n_draws))
        q05, med, q95 = equal_tailed_array(n_draws.values.ravel(), INTERVAL)
        verdict = gate_check(idata, var_names=[*LABEL_INVARIANT, "N"])
        return {
            "median": float(med),
            "q05": float(q05),
            "q95": float(q95),
            "gate_passed": verdict.passed,
            "divergences": int(idata["sample_stats"]["diverging"].sum()),
        }


def fit_row(
    design: str, model: str, dataset: int, seed: int, fitter: LatentClassFitter | None
) -> dict[str, Any]:
    """Simulate dataset `dataset` of `design` with `seed` and fit `model` to it: one row of the study (a fit
    that raises is a row with its error, not the end of the study)."""
    structure, size = STUDY_DESIGNS[design]
    table = simulate_lists(np.random.default_rng(seed), size, structure)
    row: dict[str, Any] = {
        "design": design,
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "n_true": size,
        "n_observed": int(table[COUNT].sum()),
    }
    start = time.perf_counter()
    try:
        if model == "bma":
            result = bma_fit(table, structure.lists)
        else:
            assert fitter is not None
            compiled_before = sum(fitter.compile_seconds.values())
            result = fitter.fit(table, structure.lists, seed)
            # the one-off compilation is not part of the fit's time
            start += sum(fitter.compile_seconds.values()) - compiled_before
        row.update(result, error="")
        row["covered"] = bool(row["q05"] <= size <= row["q95"])
    except Exception as e:  # noqa: BLE001 - one failed fit is a result of the study, not its end
        row.update(
            median=np.nan,
            q05=np.nan,
            q95=np.nan,
            covered=False,
            gate_passed=False,
            divergences=-1,
            error=f"{type(e).__name__}: {e}".splitlines()[0],
        )
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def write_tables(
    folder: str | os.PathLike[str],
    *,
    designs: Iterable[str] = tuple(STUDY_DESIGNS),
    n_datasets: int = 10,
    seed: int = SEED,
) -> list[Path]:
    """The simulated tables of datasets 0…`n_datasets` − 1 of each design, exactly as the study fits them
    (dataset i of every design with seed ``seed + i``), as CSV files ``DESIGN__i.csv`` (the design's name with
    spaces, commas and = replaced), for fitting by another program (LCMCR, dga) on the same data."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for design in designs:
        structure, size = STUDY_DESIGNS[design]
        stem = design.replace(", ", "__").replace(" ", "_").replace("=", "")
        for i in range(n_datasets):
            table = simulate_lists(np.random.default_rng(seed + i), size, structure)
            path = out / f"{stem}__{i}.csv"
            table.to_csv(path, index=False, lineterminator="\n")
            written.append(path)
    return written


def design_of_table(name: str) -> tuple[str, int]:
    """The design and dataset number of a file name `write_tables` wrote (its inverse)."""
    stem, _, dataset = Path(name).stem.rpartition("__")
    for design in STUDY_DESIGNS:
        if design.replace(", ", "__").replace(" ", "_").replace("=", "") == stem:
            return design, int(dataset)
    raise EstimInputError(f"{name}: not a table of a design of this study")


# --------------------------------------------------------------------------------------------------------------
# the study, resumable


def study_rows(seed: int, settings: LatentClassSettings) -> StudyRows:
    """What the study's rows are, and the options that determine them, per model: the base seed and, for the
    latent classes, the sampler settings (not ``cores``, which only spreads the chains over threads)."""
    common = {"study": "lists_recovery", "seed": int(seed)}
    latent = {k: v for k, v in dataclasses.asdict(settings).items() if k != "cores"}
    return StudyRows(
        name="lists recovery study",
        columns=COLUMNS,
        unit=("design", "model", "dataset"),
        key=("design", "model", "dataset"),
        options={
            "bma": {
                **common,
                "model": "bma",
                "edge": BMA_EDGE,
                "grid": [BMA_GRID_START, BMA_GRID_MAX],
            },
            "latent_class": {**common, "model": "latent_class", **latent},
        },
        numbers=("dataset",),
        options_by="model",
        dtypes={"design": str, "model": str, "error": str},
    )


def finished(
    path: str | os.PathLike[str], study: StudyRows, say: Callable[[str], None] | None = None
) -> set[tuple[str, str, int]]:
    """The (design, model, dataset) rows already in the study's CSV, checked as a resumed study's are
    (`estim.resume.read_study_rows`: the file is refused, untouched, unless it is this study's with
    this run's options). A last line cut off by an interruption, and rows that ran with an error, are dropped
    — the file rewritten whole without them — so that they are redone."""
    path = Path(path)
    if path.suffix == ".gz":
        raise EstimInputError(
            f"{path}: this study appends plain CSV lines to its file, which a gzipped file cannot take; "
            "write it to a .csv and compress it afterwards"
        )
    if not path.exists() or path.stat().st_size == 0:
        return set()
    rows = read_study_rows(path, study, say=say)
    if rows.attrs["header"] != [*COLUMNS, SETTINGS]:
        raise EstimInputError(
            f"{path}: its header ({', '.join(rows.attrs['header'])}) is not in the order this study writes "
            f"({', '.join([*COLUMNS, SETTINGS])}), so appended rows would not line up; it cannot be resumed"
        )
    if rows.attrs["dropped"]:
        write_rows(rows, path, [*COLUMNS, SETTINGS])
    return {
        (str(d), str(m), int(i))
        for d, m, i in rows[["design", "model", "dataset"]].itertuples(index=False)
    }


def read_rows(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The study's rows as a table (``error`` empty when the fit ran)."""
    if not Path(path).is_file():
        raise EstimInputError(f"{path}: no such file of the study's rows")
    try:
        df = pd.read_csv(path, dtype={"design": str, "model": str, "error": str})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise EstimInputError(f"{path}: not a CSV of the study's rows ({e})") from e
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise EstimInputError(f"{path}: not the study's rows (it lacks {', '.join(missing)})")
    df["error"] = df["error"].fillna("")
    return df


def _append(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    columns = [*COLUMNS, SETTINGS]
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({c: row[c] for c in columns})
        f.flush()
        os.fsync(f.fileno())


def run_study(
    out: str | os.PathLike[str],
    *,
    designs: Iterable[str] = tuple(STUDY_DESIGNS),
    models: Iterable[str] = MODELS,
    n_datasets: int = 100,
    seed: int = SEED,
    settings: LatentClassSettings = LatentClassSettings(),
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Fit every model to datasets 0…`n_datasets` − 1 of every design (models in the order given, then
    designs, then datasets), appending each row to the CSV `out` as it is measured and skipping the rows it
    already holds. BMA runs only on designs of at most `bma.MAX_LISTS` lists (the others are reported through
    `progress` and left to a later run). Returns every row in the file."""
    designs, models = list(designs), list(models)
    unknown = [d for d in designs if d not in STUDY_DESIGNS] + [
        m for m in models if m not in MODELS
    ]
    if unknown:
        raise EstimInputError(
            f"unknown designs or models {unknown}: designs {list(STUDY_DESIGNS)}, models {list(MODELS)}"
        )
    path = Path(out)
    study = study_rows(seed, settings)
    done = finished(path, study, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _: None)
    fitter = LatentClassFitter(settings) if "latent_class" in models else None
    for model in models:
        for design in designs:
            structure, _ = STUDY_DESIGNS[design]
            if model == "bma" and len(structure.lists) > bma.MAX_LISTS:
                say(f"{design}, bma: skipped (dga_posterior takes at most {bma.MAX_LISTS} lists)")
                continue
            for i in range(n_datasets):
                if (design, model, i) in done:
                    continue
                row = fit_row(design, model, i, seed + i, fitter)
                row[SETTINGS] = study.settings(model)
                _append(path, row)
                say(
                    f"{design}, {model}, {i}: n={row['n_observed']} median={row['median']:.0f} "
                    f"[{row['q05']:.0f}, {row['q95']:.0f}] covered={row['covered']} "
                    f"gate={row['gate_passed']} {row['seconds']:.1f}s {row['error']}".rstrip()
                )
    return read_rows(path) if path.exists() else pd.DataFrame(columns=COLUMNS)


# --------------------------------------------------------------------------------------------------------------
# summary


def summary(rows: pd.DataFrame, nominal: float = NOMINAL) -> pd.DataFrame:
    """Per design × model: the share of datasets whose 90 % interval covered the true N, with the one-sided
    exact binomial p-value of coverage below `nominal` (small: significantly below), the median of
    |median − N| / N, the median of (median − N) / N, gate failures and errors. Rows whose fit raised count as
    not covered."""
    out = []
    for (design, model), g in rows.groupby(["design", "model"], sort=False):
        n = len(g)
        k = int(flag(g["covered"]).sum())
        rel = (g["median"] - g["n_true"]) / g["n_true"]
        out.append(
            {
                "design": design,
                "model": model,
                "datasets": n,
                "covered": k,
                "coverage": k / n,
                "p_value": float(scipy.stats.binomtest(k, n, nominal, alternative="less").pvalue),
                "median_abs_rel_error": float(rel.abs().median()),
                "median_rel_error": float(rel.median()),
                "below": int((g["n_true"] < g["q05"]).sum()),
                "above": int((g["n_true"] > g["q95"]).sum()),
                "gate_failures": int((~flag(g["gate_passed"])).sum()),
                # (a CSV read back gives NaN for the empty error strings)
                "errors": int((g["error"].notna() & (g["error"].astype(str) != "")).sum()),
                "seconds_median": float(g["seconds"].median()),
            }
        )
    return pd.DataFrame(out)
