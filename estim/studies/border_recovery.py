"""Recovery study of the border model (issue 4) and the machinery its misspecification study shares (issue 17,
`estim.studies.border_misspecification`): coverage of the unobserved crossings over simulated borders whose
parameters are drawn around the simulator's defaults.

For dataset i of a study (simulator seed ``seed + i``):

1. `perturbed_config(seed + i)` draws the parameters the border model estimates from the ranges of `RANGES`
   around the defaults of `SimulationConfig` (deterministic in the seed; every other field stays at its
   default), and the misspecification study then changes the simulator's retry probability r and frailty
   spread σ (``changes``);
2. the simulator (``estim.simulate.simulate`` with that seed and config, written by ``write_simulation``)
   produces the records and ``truth.nc``; the records are loaded and reduced to the border model's data exactly
   as for the shipped data (``load_records`` → ``BORDER_RECORDS.from_records``: the monthly sufficient
   statistics and the linkage of the surveyed sections' apprehended journeys to the in-country registers,
   from which r is estimated);
3. the border model is fitted as ``estim fit`` fits ``models/border.toml`` (`fit_dataset`): the spec's priors,
   options and sampler (nutpie, JAX; the model is rebuilt and compiled per dataset because its observed arrays
   are closed-over constants whose shapes change from dataset to dataset), the diagnostics gate
   (``estim.run.diagnostics.check``) and, when it fails, up to ``[sampler] retries`` retries with safer settings
   (``estim.run.fit.retry_settings``); the family's ``after_sampling`` draws the unobserved crossings
   (``border.crossings``) and the posterior predictive replicates from every draw;
4. the fit is **refused** when its last attempt fails the gate or any of the fit report's named posterior
   predictive checks (``border.report.predictive_check``) fails;
5. per section and calendar year the 90 % equal-tailed interval of the unobserved crossings (summed over the
   months and categories of the year) is compared with the truth (``truth.nc``'s ``unobserved``), and so are the
   whole border's per year and over the whole period.

Ranges (``U(a, b)`` uniform; "± x": default + U(−x, x), independently per element; "× U(a, b)": default times):

* ``section_effect`` α_s ± 0.2 each; ``category_effect`` β_c ± 0.2 (journey categories); ``trend`` τ_c ± 0.05;
* ``hazard_section`` a_s ± 0.2; ``hazard_category`` b_c ± 0.15 (all five categories);
* ``technical_trend`` δ ~ U(0.03, 0.10); ``bypass_eta1`` η1 ~ U(1.5, 2.5); ``bypass_eta0`` η0 ± 0.3;
* ``dispersion`` φ_c × U(0.7, 1.4) (all five categories);
* ``residents_take_up`` ~ U(0.2, 0.6) (θ of the residents' agreement on residents = 1 − take-up);
* ``customs_union_smuggler_effect`` ~ U(0.6, 0.9).

In the recovery design the simulator's retry probability is r = 1 and every person of a cell has the same
apprehension probability (no frailty): the model, which estimates r, contains the truth. The
misspecification study varies the simulator's r (which the model estimates) and gives people a frailty on the
apprehension hazard (which the model does not have). Nothing the model needs is shortened: 12 years, all
sections, all record types. One simulation takes about a second (plus about a second to write and load the
records); the fit dominates.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.families.border.data_kind import BORDER_RECORDS
from estim.families.border.repeated_trials import AT_ONE, with_repeated_trials
from estim.families.border.repeated_trials import summary as repeated_trials_summary
from estim.families.border.revision import MODEL_REVISION
from estim.intervals import equal_tailed
from estim.io import without_error
from estim.records import DEFAULT_KEY
from estim.records.load import load_records
from estim.records.schemas import CATEGORIES
from estim.resume import StudyRows, study_rows_so_far
from estim.simulate import simulate, write_simulation
from estim.simulate.perturb import SCALAR_PARAMS, perturbed_config
from estim.studies.border_fit import (  # noqa: F401 - re-exported: the studies' one fit
    FitOutcome,
    _shipped_spec,
    fit_dataset,
    predictive_verdicts,
    shipped_sampler,
)
from estim.studies.border_truth import INTERVAL, section_year_table
from estim.studies.rows import (
    below_nominal,
    below_nominal_by_dataset,
    bootstrap_coverage,
    coverage,
    flag,
    write_rows,
)

DEFAULT_STUDY_SEED = 4000
"""First simulator seed of the study (dataset i uses seed + i; far from the shipped data's 20061)."""
JOURNEY_CATEGORIES = tuple(c for c in CATEGORIES if c != "bypasser")
CELL = ("sim_retry", "sim_frailty")
"""The columns of the simulator's design a dataset was drawn from (its true r and frailty spread σ)."""
DATASET = (*CELL, "sim_seed")
"""The columns that identify one dataset of a study (a study's CSV has many rows per dataset)."""
BOOTSTRAP_SEED = (
    17  # the dataset bootstrap's resamples are fixed: the same rows give the same interval
)
BOOTSTRAP_DRAWS = 4000


# --------------------------------------------------------------------------------------------------------------
# simulation


def simulate_dataset(
    seed: int, folder: str | Path, changes: Mapping[str, Any] | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Simulate a border with `perturbed_config(seed)`, its fields in ``changes`` replaced (e.g.
    ``{"retry_probability": 0.6, "apprehension_frailty_sd": 0.5}``), and simulator seed ``seed`` into
    ``folder``; return (the border model's data from the written records, with the register linkage, and the
    truth read back from ``truth.nc``)."""
    folder = Path(folder)
    config = dataclasses.replace(perturbed_config(seed), **dict(changes or {}))
    sim = simulate(seed=seed, config=config)
    write_simulation(sim, folder)
    records = load_records(folder, key=DEFAULT_KEY)
    data = BORDER_RECORDS.from_records(records, {})
    truth = xr.load_dataset(folder / "truth.nc")
    return data, truth


# --------------------------------------------------------------------------------------------------------------
# one dataset of a study


def dataset_rows(
    seed: int,
    changes: Mapping[str, Any] | None = None,
    *,
    dataset: int = 0,
    known_failures: Mapping[int, Sequence[Sequence[str]]] | None = None,
    **sampler: Any,
) -> pd.DataFrame:
    """Simulate dataset ``seed`` (`simulate_dataset` with ``changes``), fit it (`fit_dataset`, ``sampler``
    overriding the shipped settings; ``known_failures[seed]``, if there, the failed checks of the attempts an
    earlier run made on this dataset, which are not run again: `border_fit`) and compare its intervals with the truth: `section_year_table`'s rows with,
    on each, what is known of the dataset — ``dataset``, ``sim_seed``, the design (``sim_retry``,
    ``sim_frailty``, ``sim_register_dating``, ``retry_true`` = ``sim_retry``), r's posterior median and 90 % interval (``retry_median``,
    ``retry_q05``, ``retry_q95``, ``retry_covered``), ``attempts`` (``attempts_skipped`` of them known to fail and not run again), the last attempt's gate (``gate_passed``,
    ``gate_failed``, ``gate_detail``, ``divergences``, ``mean_tree_steps``), the predictive checks
    (``ppc_<name>`` passed, ``ppc_<name>_inside`` share inside, ``ppc_<name>_p`` a discrepancy's posterior
    predictive p-value where the check has one, ``ppc_failed`` comma-separated), the refusal
    (``refused_gate``: the last attempt failed the gate; ``refused_ppc``: it passed the gate and a predictive
    check failed; ``refused``: either), timings (``simulate_seconds``; ``compile_seconds``,
    ``sample_seconds``, ``fit_seconds`` summed over the attempts; ``seconds`` in all), ``error`` (empty unless
    the dataset raised: then one row, ``year`` −1) and the scalar perturbed parameters (``param_*``)."""
    t0 = time.perf_counter()
    config = dataclasses.replace(perturbed_config(seed), **dict(changes or {}))
    r_true = float(config.retry_probability)
    info: dict[str, Any] = {
        "dataset": int(dataset),
        "sim_seed": int(seed),
        "sim_retry": r_true,
        "sim_frailty": float(config.apprehension_frailty_sd),
        "sim_register_dating": str(config.register_dating),
        "retry_true": r_true,
        "model_revision": MODEL_REVISION,
    }
    info.update({f"param_{n}": float(getattr(config, n)) for n in SCALAR_PARAMS})
    try:
        with tempfile.TemporaryDirectory(prefix="borderrec_", dir=_scratch()) as folder:
            data, truth = simulate_dataset(seed, folder, changes)
        t1 = time.perf_counter()
        before = dispersion_before_fit(data, sampler.get("spec"))
        info.update(before)
        if not before.get("ppc_repeat_dispersion", True):
            info.update(not_fitted(), simulate_seconds=t1 - t0, error="")
            info["seconds"] = time.perf_counter() - t0
            return not_fitted_table(data, truth).assign(**info)
        known = (known_failures or {}).get(int(seed), ())
        fitted = fit_dataset(data, seed=seed, known_failures=known, **sampler)
        tree = fitted.tree
        posterior = tree["posterior"].to_dataset()
        table = section_year_table(data, truth, posterior["unobserved_section_year"])
        checks = predictive_verdicts(tree)
        failed = [name for name, v in checks.items() if not v["passed"]]
        averaged = with_repeated_trials(posterior)  # r as the estimates read it (r = 1 averaged in)
        r_lo, r_med, r_hi = (
            float(v) for v in equal_tailed(averaged["retry_probability"], INTERVAL).values
        )
        repeated = repeated_trials_summary(posterior)
        stats = tree["sample_stats"]
        gate_passed = bool(fitted.verdict.passed)
        info.update(
            repeated_trials_probability=(
                math.nan if repeated is None else repeated["posterior_probability"]
            ),
            retry_median=r_med,
            retry_q05=r_lo,
            retry_q95=r_hi,
            retry_covered=bool(r_lo <= r_true <= r_hi),
            attempts=fitted.attempts,
            attempts_skipped=fitted.skipped,
            gate_passed=gate_passed,
            gate_failed=",".join(fitted.verdict.failed),
            gate_detail="" if gate_passed else fitted.verdict.describe(),
            divergences=int(stats["diverging"].sum()),
            mean_tree_steps=float(stats["n_steps"].mean()),
            **{f"ppc_{name}": v["passed"] for name, v in checks.items()},
            **{f"ppc_{name}_inside": v["inside"] for name, v in checks.items()},
            **{f"ppc_{name}_p": v["p_value"] for name, v in checks.items() if "p_value" in v},
            ppc_failed=",".join(failed),
            refused_gate=not gate_passed,
            refused_ppc=gate_passed and bool(failed),
            refused=not gate_passed or bool(failed),
            simulate_seconds=t1 - t0,
            compile_seconds=fitted.compile_seconds,
            sample_seconds=fitted.sample_seconds,
            fit_seconds=fitted.fit_seconds,
            error="",
        )
    except Exception as e:  # noqa: BLE001 - one failed dataset is a result of the study, not its end
        table = pd.DataFrame([{"section": "", "year": -1, "covered": False}])
        info.update(
            attempts=0,
            attempts_skipped=0,
            gate_passed=False,
            gate_failed="error",
            divergences=-1,
            refused_gate=False,
            refused_ppc=False,
            refused=False,
            error=f"{type(e).__name__}: {e}".splitlines()[0],
        )
    info["seconds"] = time.perf_counter() - t0
    return table.assign(**info)


def dispersion_before_fit(data: xr.Dataset, spec: Any = None) -> dict[str, Any]:
    """The test of the repeat counts' geometric law that a fit of ``spec`` (default the shipped one) makes on
    ``data`` before sampling (`estim.families.border.repeat_dispersion`), as row columns: ``dispersion_z``,
    ``dispersion_p``, ``dispersion_ratio`` and ``ppc_repeat_dispersion`` (passed); empty when it does not
    apply (a spec with a frailty, or data without surveyed repeat counts)."""
    from estim.families.border.repeat_dispersion import check_before_sampling

    test = check_before_sampling(data, **_shipped_spec(spec).options)
    if test is None:
        return {}
    return {
        "dispersion_z": test["z"],
        "dispersion_p": test["p_value"],
        "dispersion_ratio": test["ratio"],
        "ppc_repeat_dispersion": test["passed"],
    }


def not_fitted() -> dict[str, Any]:
    """The row columns of a dataset the fit refused before sampling (its repeat counts failed the dispersion
    test): no attempt, no posterior, refused by a named check."""
    nan = float("nan")
    return {
        "repeated_trials_probability": nan,
        "retry_median": nan,
        "retry_q05": nan,
        "retry_q95": nan,
        "retry_covered": False,
        "attempts": 0,
        "attempts_skipped": 0,
        "gate_passed": False,
        "gate_failed": "",
        "gate_detail": "not fitted: the repeat counts failed the dispersion test before sampling",
        "divergences": -1,
        "ppc_failed": "repeat_dispersion",
        "refused_gate": False,
        "refused_ppc": True,
        "refused": True,
        "compile_seconds": 0.0,
        "sample_seconds": 0.0,
        "fit_seconds": 0.0,
    }


def not_fitted_table(data: xr.Dataset, truth: xr.Dataset) -> pd.DataFrame:
    """`section_year_table` of a dataset not fitted: the truth, and no estimate (NaN, never covered)."""
    sections = data["section"].values
    years = np.unique(data["year"].values)
    nothing = xr.DataArray(
        np.full((1, 1, len(sections), len(years)), np.nan),
        dims=("chain", "draw", "section", "year"),
        coords={"section": sections, "year": years},
    )
    with warnings.catch_warnings():  # the quantiles of no draws are NaN, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        return section_year_table(data, truth, nothing)


def _scratch() -> str | None:
    """Scratch directory for the simulated records (``BORDERREC_TMP`` or the system default)."""
    return os.environ.get("BORDERREC_TMP") or None


@dataclass(frozen=True)
class Design:
    """One dataset a study will run: its index, simulator seed and changes to `perturbed_config`."""

    dataset: int
    seed: int
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def key(self) -> tuple[float, float, int]:
        """(r, σ, seed) as the rows record them (``DATASET``)."""
        config = dataclasses.replace(perturbed_config(self.seed), **dict(self.changes))
        return _key(config.retry_probability, config.apprehension_frailty_sd, self.seed)


def _key(retry: Any, frailty: Any, seed: Any) -> tuple[float, float, int]:
    # rounded: the design's floats come back from a CSV as their shortest repr, which may differ in the last bit
    return (round(float(retry), 9), round(float(frailty), 9), int(seed))


def done_datasets(rows: pd.DataFrame | None) -> set[tuple[float, float, int]]:
    """The (r, σ, seed) of the datasets a study's rows already hold; rows written before the design columns
    existed are of the recovery design (r = 1, no frailty)."""
    if rows is None or len(rows) == 0:
        return set()
    retry = rows["sim_retry"] if "sim_retry" in rows else pd.Series(1.0, index=rows.index)
    frailty = rows["sim_frailty"] if "sim_frailty" in rows else pd.Series(0.0, index=rows.index)
    return {
        _key(r, f, s)
        for r, f, s in zip(retry.fillna(1.0), frailty.fillna(0.0), rows["sim_seed"], strict=True)
    }


def design_rows(design: Design, sampler: Mapping[str, Any]) -> pd.DataFrame:
    """`dataset_rows` of one design: a study's task (module level, so a dask worker can unpickle it)."""
    return dataset_rows(design.seed, design.changes, dataset=design.dataset, **dict(sampler))


def study_rows(options: Mapping[str, Any]) -> StudyRows:
    """What a border study's rows are (one per dataset × section × year), made with ``options``."""
    key = (*DATASET, "section", "year")
    return StudyRows("border study", (*DATASET, "error"), DATASET, key, options, (*DATASET, "year"))


def run_designs(
    designs: Iterable[Design],
    *,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    client: Any = None,
    study: StudyRows | None = None,
    **sampler: Any,
) -> pd.DataFrame:
    """Run `dataset_rows` on each design in order, skipping (with ``resume``) those already in ``out`` (refused
    when made with other options than ``study``'s, by default the sampler's: `estim.resume`; without
    ``resume`` a non-empty ``out`` is refused unless ``force``); every row records its ``settings``; with
    ``out`` the CSV is rewritten whole and atomically with all rows so far after every dataset (so its columns
    always line up, and a stopped study keeps what it measured). With a dask ``client``
    (`estim.studies.distributed.study_client`) the designs run as tasks on its workers and the rows are
    written in the order they finish. Returns all rows, those read back from ``out`` first."""
    designs = list(designs)
    if study is None:
        study = study_rows({"study": "border", "model_revision": MODEL_REVISION, **sampler})
    done = study_rows_so_far(out, study, resume=resume, force=force)
    skip = done_datasets(done)
    if client is not None:
        from estim.studies.distributed import run_tasks

        return run_tasks(
            client,
            designs,
            functools.partial(design_rows, sampler=dict(sampler)),
            key=Design.key,
            done=skip,
            rows_so_far=done,
            out=out,
            describe=describe_dataset if progress else None,
            settings=study.settings(),
        )
    frames = [done] if done is not None else []
    for number, design in enumerate(designs, start=1):
        if design.key() in skip:
            continue
        frame = study.stamp(
            dataset_rows(design.seed, design.changes, dataset=design.dataset, **sampler)
        )
        frames.append(frame)
        if out is not None:
            write_rows(pd.concat(frames, ignore_index=True), out)
        if progress:
            print(
                f"dataset {number}/{len(designs)}: {describe_dataset(frame)}",
                flush=True,
                file=sys.stderr,
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def describe_dataset(frame: pd.DataFrame) -> str:
    """One line on one dataset's rows: design, coverage, r, attempts, gate, predictive checks, time."""
    first = frame.iloc[0]
    head = (
        f"r = {first['sim_retry']:g}, σ = {first['sim_frailty']:g}, seed {int(first['sim_seed'])}"
    )
    if not without_error(frame["error"]).iloc[0]:
        return f"{head}: ERROR {first['error']} ({first['seconds']:.0f} s)"
    years = frame.drop_duplicates("year")
    failed = first["ppc_failed"]
    ppc = failed if isinstance(failed, str) and failed else "passed"  # a CSV reads "" back as NaN
    verdict = "REFUSED" if first["refused"] else "accepted"
    return (
        f"{head}: section-years covered {int(frame['covered'].sum())}/{len(frame)}, border years "
        f"{int(years['border_covered'].sum())}/{len(years)}, period total "
        f"{'covered' if first['border_period_covered'] else 'MISSED'} "
        f"({first['border_period_median']:,.0f} [{first['border_period_q05']:,.0f}, "
        f"{first['border_period_q95']:,.0f}], truth {int(first['border_period_truth']):,}), r "
        f"{first['retry_median']:.2f} [{first['retry_q05']:.2f}, {first['retry_q95']:.2f}], "
        f"attempts {int(first['attempts'])}, gate "
        f"{'passed' if first['gate_passed'] else first['gate_failed']}, predictive checks {ppc}: "
        f"{verdict}, {first['seconds']:.0f} s"
    )


# --------------------------------------------------------------------------------------------------------------
# the recovery study


def recovery_study(
    n_seeds: int = 30,
    seed: int = DEFAULT_STUDY_SEED,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    *,
    target_accept: float | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    spec: str | Path | None = None,
    client: Any = None,
    known_failures: Mapping[int, Sequence[Sequence[str]]] | None = None,
) -> pd.DataFrame:
    """Run the recovery study on ``n_seeds`` datasets (simulator seeds ``seed`` … ``seed + n_seeds − 1``,
    r = 1, no frailty). Returns a long DataFrame, one row per dataset × section × year (`dataset_rows`'s
    columns). With ``out`` that CSV is rewritten with all rows so far after every dataset; with ``resume``
    datasets already in ``out`` are skipped (and their rows kept in the result). Sampler settings default to
    the fitted spec's (`shipped_sampler`); ``progress`` prints a line per dataset on stderr. ``spec``: a
    border spec fitted in place of ``models/border.toml`` (a variant to compare with the shipped model on the
    same datasets; the same seeds give the same datasets). ``client``: run the datasets as tasks on a dask
    client's workers (`run_designs`). ``known_failures``: attempts an earlier run saw fail, not run again
    (`dataset_rows`)."""
    shipped = _shipped_spec(spec).sampler.to_dict()
    settings = {
        "draws": shipped["draws"] if draws is None else draws,
        "tune": shipped["tune"] if tune is None else tune,
        "chains": shipped["chains"] if chains is None else chains,
        "target_accept": shipped["target_accept"] if target_accept is None else target_accept,
    }
    # labelled by the seed's offset from the default, so runs from different seeds merge without a clash
    designs = [Design(seed + i - DEFAULT_STUDY_SEED, seed + i) for i in range(n_seeds)]
    extra = {} if spec is None else {"spec": spec}
    if known_failures:
        extra["known_failures"] = dict(known_failures)
    options = {"study": "border_recovery", "model_revision": MODEL_REVISION, "seed": int(seed)}
    study = study_rows({**options, **settings, **extra})
    df = run_designs(
        designs,
        out=out,
        resume=resume,
        force=force,
        progress=progress,
        client=client,
        study=study,
        **settings,
        **extra,
    )
    df.attrs.update(n_seeds=n_seeds, seed=seed, **settings, **extra)
    return df


# --------------------------------------------------------------------------------------------------------------
# summaries


def retry_split(border: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The whole border's coverage split by whether the fit put r at 1 (``at_one``: r's 90 % interval rests on
    1, ``retry_q05`` ≥ `AT_ONE`) or not (``below_one``): per group the datasets, the years covered (``years``,
    ``years_covered``, ``p_below_90`` by dataset), the period totals covered and the median relative width
    of the period total's 90 % interval (q95 − q05 over the posterior median). ``border`` has one row per
    dataset × year. With r at 1 the intervals lose the width that r's uncertainty gives them: this is where
    they are narrowest, and where the recovery study finds them too narrow (docs/design.md §4)."""
    out: dict[str, dict[str, Any]] = {}
    at_one = border["retry_q05"].astype(float) >= AT_ONE
    for name, rows in (("at_one", border[at_one]), ("below_one", border[~at_one])):
        period = rows.drop_duplicates(keys)
        width = (period["border_period_q95"] - period["border_period_q05"]) / period[
            "border_period_median"
        ]
        out[name] = {
            "datasets": int(len(period)),
            "years": int(len(rows)),
            "years_covered": int(flag(rows["border_covered"]).sum()),
            "p_below_90": below_nominal_by_dataset(rows, "border_covered", by=keys)
            if len(rows)
            else float("nan"),
            "periods_covered": int(flag(period["border_period_covered"]).sum()),
            "median_period_width": float(width.median()) if len(period) else float("nan"),
        }
    return out


def coverage_summary(df: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Coverage of the 90 % intervals with exact (Clopper–Pearson) ``level`` intervals: of all section-years
    (also with the dataset bootstrap's ``level`` interval, ``ci_datasets``, which is the one to read: a
    dataset's section-years are not independent; and of those of datasets that passed the gate, or that were
    not refused when the rows say), by section (with the misses split into ``truth_above`` — the interval lies
    below the truth, under-estimation — and ``truth_below``, and the median relative error of the posterior
    median), of the whole border's years (with the one-sided binomial p-value of a coverage below 90 %,
    ``p_below_90``, its years counted by dataset — `below_nominal_by_dataset`: one dataset's years miss
    together — and ``p_below_90_independent`` as if they were independent) and
    of its period totals; gate failures, refusals, retries, errors and timings per dataset."""
    keys = [c for c in DATASET if c in df]
    per_dataset = df.drop_duplicates(keys)
    ok = df[without_error(df["error"])]
    passed = ok[flag(ok["gate_passed"])]
    by_section = {}
    for s, g in ok.groupby("section", sort=False):
        c = coverage(g["covered"], level)
        c["truth_above"] = int((g["truth"] > g["q95"]).sum())
        c["truth_below"] = int((g["truth"] < g["q05"]).sum())
        c["surveyed"] = bool(g["surveyed"].iloc[0])
        c["median_rel_error"] = float(((g["median"] - g["truth"]) / g["truth"]).median())
        by_section[str(s)] = c
    border = ok.drop_duplicates([*keys, "year"])
    border_cov = coverage(border["border_covered"], level)
    border_cov["truth_above"] = int((border["border_truth"] > border["border_q95"]).sum())
    border_cov["truth_below"] = int((border["border_truth"] < border["border_q05"]).sum())
    border_cov["p_below_90"] = below_nominal_by_dataset(border, "border_covered", by=keys)
    border_cov["p_below_90_independent"] = below_nominal(border["border_covered"])
    border_cov["ci_datasets"] = bootstrap_coverage(border, "border_covered", level, by=keys)
    overall = coverage(ok["covered"], level)
    overall["truth_above"] = int((ok["truth"] > ok["q95"]).sum())
    overall["truth_below"] = int((ok["truth"] < ok["q05"]).sum())
    overall["ci_datasets"] = bootstrap_coverage(ok, "covered", level, by=keys)
    n_sets = int(len(per_dataset))
    fails = int((~flag(per_dataset["gate_passed"])).sum())
    timing_cols = [
        c
        for c in (
            "seconds",
            "simulate_seconds",
            "compile_seconds",
            "sample_seconds",
            "fit_seconds",
            "crossings_seconds",
        )
        if c in per_dataset
    ]
    out = {
        "datasets": n_sets,
        "section_years": overall,
        "section_years_gate_passed": coverage(passed["covered"], level),
        "by_section": by_section,
        "sections_beyond_5_percent": [
            s for s, c in by_section.items() if abs(c["median_rel_error"]) > 0.05
        ],
        "border_years": border_cov,
        "gate_failures": fails,
        "gate_failure_share": fails / n_sets if n_sets else float("nan"),
        "gate_failed_checks": per_dataset.loc[~flag(per_dataset["gate_passed"]), "gate_failed"]
        .value_counts()
        .to_dict(),
        "errors": int((~without_error(per_dataset["error"])).sum()),
        "divergences_total": int(per_dataset["divergences"].clip(lower=0).sum()),
        "median_seconds": {c: float(per_dataset[c].median()) for c in timing_cols},
    }
    if "border_period_covered" in ok:
        period = ok.drop_duplicates(keys)
        out["border_period"] = {
            **coverage(period["border_period_covered"], level),
            "p_below_90": below_nominal(period["border_period_covered"]),
        }
    if "retry_q05" in ok and "border_period_q05" in ok:
        out["border_by_retry"] = retry_split(border, keys)
    if "refused" in df:
        ran = per_dataset[without_error(per_dataset["error"])]
        accepted = ok[~flag(ok["refused"])]
        out.update(
            refused=int(flag(ran["refused"]).sum()),
            refused_gate=int(flag(ran["refused_gate"]).sum()),
            refused_ppc=int(flag(ran["refused_ppc"]).sum()),
            retried=int((ran["attempts"] > 1).sum()),
            section_years_accepted={
                **coverage(accepted["covered"], level),
                "ci_datasets": bootstrap_coverage(accepted, "covered", level, by=keys),
            },
        )
    return out
