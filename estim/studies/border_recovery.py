"""Recovery study of the border model (issue 4): coverage of section-year unobserved crossings over simulated
borders whose parameters are drawn around the simulator's defaults.

For dataset i of a study (simulator seed ``seed + i``):

1. `perturbed_config(seed + i)` draws the parameters the border model estimates from the ranges of `RANGES`
   around the defaults of `SimulationConfig` (deterministic in the seed; every other field stays at its
   default);
2. the simulator (``estim.simulate.simulate`` with that seed and config, written by ``write_simulation``)
   produces the records and ``truth.nc``; the records are loaded and reduced to the border model's data exactly
   as for the shipped data (``load_records`` → ``sufficient_statistics(period="month")`` → ``border_data``);
3. the border model is built and compiled (nutpie, JAX) for that dataset — its observed arrays are closed-over
   constants whose shapes (cells with a nonzero repeat count, sections × months with land flow) change from
   dataset to dataset, so the graph is not reused — sampled, put through the diagnostics gate
   (``estim.run.diagnostics.check``), and the unobserved crossings are drawn (``border.crossings``);
4. per section and calendar year the 90 % equal-tailed interval of the unobserved crossings (summed over the
   months and categories of the year) is compared with the truth (``truth.nc``'s ``unobserved``), and so is the
   whole border's per year.

Ranges (``U(a, b)`` uniform; "± x": default + U(−x, x), independently per element; "× U(a, b)": default times):

* ``section_effect`` α_s ± 0.2 each; ``category_effect`` β_c ± 0.2 (journey categories); ``trend`` τ_c ± 0.05;
* ``hazard_section`` a_s ± 0.2; ``hazard_category`` b_c ± 0.15 (all five categories);
* ``technical_trend`` δ ~ U(0.03, 0.10); ``bypass_eta1`` η1 ~ U(1.5, 2.5); ``bypass_eta0`` η0 ± 0.3;
* ``dispersion`` φ_c × U(0.7, 1.4) (all five categories);
* ``residents_take_up`` ~ U(0.2, 0.6) (θ of the residents' agreement on residents = 1 − take-up);
* ``customs_union_smuggler_effect`` ~ U(0.6, 0.9).

``retry_probability`` stays 1: the border model assumes Espenshade's repeated trials (every journey ends in an
unobserved crossing, unobserved = journeys); with r < 1 it would be misspecified, which is not what this study
tests. Nothing the model needs is shortened: 12 years, all sections, all record types. One simulation takes
about a second (plus about a second to write and load the records); the fit dominates.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.families import border as B
from estim.intervals import equal_tailed
from estim.io import study_rows_so_far, without_error
from estim.records import DEFAULT_KEY
from estim.records.load import load_records
from estim.records.schemas import CATEGORIES
from estim.run.diagnostics import check as gate_check
from estim.simulate import simulate, write_simulation
from estim.simulate.perturb import SCALAR_PARAMS, perturbed_config
from estim.statistics import sufficient_statistics
from estim.studies.rows import coverage, write_rows

DEFAULT_STUDY_SEED = 4000
"""First simulator seed of the study (dataset i uses seed + i; far from the shipped data's 20061)."""
INTERVAL = 0.9  # probability of the central intervals whose coverage is measured
JOURNEY_CATEGORIES = tuple(c for c in CATEGORIES if c != "bypasser")


# --------------------------------------------------------------------------------------------------------------
# simulation


def simulate_dataset(seed: int, folder: str | Path) -> tuple[xr.Dataset, xr.Dataset]:
    """Simulate a border with `perturbed_config(seed)` and simulator seed ``seed`` into ``folder`` and
    return (the border model's data from the written records, the truth read back from ``truth.nc``)."""
    folder = Path(folder)
    sim = simulate(seed=seed, config=perturbed_config(seed))
    write_simulation(sim, folder)
    r = load_records(folder, key=DEFAULT_KEY)
    st = sufficient_statistics(r, period="month", occasion=None)
    data = B.border_data(st, r.sections, r.policy_events)
    truth = xr.load_dataset(folder / "truth.nc")
    return data, truth


# --------------------------------------------------------------------------------------------------------------
# one dataset


def shipped_sampler() -> dict[str, Any]:
    """The sampler settings of ``models/border.toml`` (the study fits as the shipped spec does)."""
    return _shipped_spec().sampler.to_dict()


def _shipped_spec() -> Any:
    from estim.paths import REPO_ROOT
    from estim.run.spec import read_spec

    return read_spec(REPO_ROOT / "models" / "border.toml")


def fit_dataset(
    data: xr.Dataset,
    *,
    seed: int,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    cores: int = 2,
    target_accept: float | None = None,
) -> tuple[Any, dict[str, float]]:
    """Build the border model on ``data`` with the shipped spec's priors and options and sample it as
    ``estim fit`` does (`estim.run.sampler.nuts`), with the shipped sampler settings unless overridden;
    returns (trace, timings in seconds)."""
    from estim.run.sampler import nuts  # heavy imports, only when fitting

    spec = _shipped_spec()
    overrides = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    sampler = dataclasses.replace(
        spec.sampler, **{k: v for k, v in overrides.items() if v is not None}
    )
    model = B.build_border(data, dict(spec.priors), **spec.options)
    trace = nuts(model, sampler, seed, cores=cores)
    attrs = trace["posterior"].attrs
    return trace, {
        "compile_seconds": float(attrs["compile_time"]),
        "sample_seconds": float(attrs["sampling_time"]),
    }


def _year_coords(x: xr.DataArray, data: xr.Dataset) -> xr.DataArray:
    return x.assign_coords(year=("month", data["year"].values))


def section_year_table(
    data: xr.Dataset, truth: xr.Dataset, unobserved: xr.DataArray
) -> pd.DataFrame:
    """One row per section × year: the true unobserved crossings, the posterior median and 5 %/95 % quantiles
    of the draws ``unobserved`` (chain, draw, section, month, category), ``covered``; and the whole border's
    per year (``border_*`` columns, repeated across the sections of a year)."""
    u = (
        _year_coords(unobserved, data).groupby("year").sum().sum("category")
    )  # (chain, draw, section, year)
    t = truth["unobserved"].sel(section=data["section"].values, month=data["month"].values)
    t = _year_coords(t, data).groupby("year").sum().sum("category")  # (section, year)
    t = t.transpose("section", "year")
    q = equal_tailed(u, INTERVAL).transpose("quantile", "section", "year")
    ub = u.sum("section")
    tb = t.sum("section")
    qb = equal_tailed(ub, INTERVAL).transpose("quantile", "year")
    rows = []
    surveyed = dict(zip(data["section"].values, data["surveyed"].values, strict=True))
    for i, s in enumerate(t["section"].values):
        for j, y in enumerate(t["year"].values):
            lo, med, hi = (float(v) for v in q.values[:, i, j])
            tr = int(t.values[i, j])
            blo, bmed, bhi = (float(v) for v in qb.values[:, j])
            btr = int(tb.values[j])
            rows.append(
                {
                    "section": str(s),
                    "surveyed": bool(surveyed[s]),
                    "year": int(y),
                    "truth": tr,
                    "median": med,
                    "q05": lo,
                    "q95": hi,
                    "covered": bool(lo <= tr <= hi),
                    "border_truth": btr,
                    "border_median": bmed,
                    "border_q05": blo,
                    "border_q95": bhi,
                    "border_covered": bool(blo <= btr <= bhi),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# the study


def recovery_study(
    n_seeds: int = 30,
    seed: int = DEFAULT_STUDY_SEED,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    *,
    target_accept: float | None = None,
    cores: int = 2,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Run the study on ``n_seeds`` datasets (simulator seeds ``seed`` … ``seed + n_seeds − 1``).

    Returns a long DataFrame, one row per dataset × section × year (`section_year_table`'s columns) plus, per
    dataset: ``dataset``, ``sim_seed``, ``gate_passed``, ``gate_failed`` (failed checks, comma-separated),
    ``gate_detail`` (the verdict's description: worst values and where), ``divergences``,
    ``mean_tree_steps`` (leapfrog steps per draw), timings (``simulate_seconds``, ``compile_seconds``, ``sample_seconds``,
    ``crossings_seconds``, ``seconds`` in all), ``error`` (empty unless the dataset raised) and the scalar
    perturbed parameters (``param_*``). With ``out`` that CSV is rewritten with all rows so far after every dataset;
    with ``resume`` datasets already in ``out`` are skipped (and their rows kept in the result).
    Sampler settings default to the shipped spec's (`shipped_sampler`).
    """
    shipped = shipped_sampler()
    draws = shipped["draws"] if draws is None else draws
    tune = shipped["tune"] if tune is None else tune
    chains = shipped["chains"] if chains is None else chains
    target_accept = shipped["target_accept"] if target_accept is None else target_accept
    done = study_rows_so_far(out, resume)
    frames = [done] if done is not None else []
    done_seeds = set(done["sim_seed"].unique()) if done is not None else set()
    for i in range(n_seeds):
        s = seed + i
        if s in done_seeds:
            continue
        t0 = time.perf_counter()
        info: dict[str, Any] = {"dataset": i, "sim_seed": s}
        cfg = perturbed_config(s)
        info.update({f"param_{n}": float(getattr(cfg, n)) for n in SCALAR_PARAMS})
        try:
            with tempfile.TemporaryDirectory(prefix="borderrec_", dir=_scratch()) as folder:
                data, truth = simulate_dataset(s, folder)
            t1 = time.perf_counter()
            trace, timings = fit_dataset(
                data,
                seed=s,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                target_accept=target_accept,
            )
            verdict = gate_check(trace)
            t2 = time.perf_counter()
            cr = B.crossings(data, trace["posterior"].to_dataset(), np.random.default_rng(s))
            table = section_year_table(data, truth, cr["unobserved"])
            t3 = time.perf_counter()
            info.update(
                gate_passed=bool(verdict.passed),
                gate_failed=",".join(verdict.failed),
                gate_detail="" if verdict.passed else verdict.describe(),
                divergences=int(trace["sample_stats"]["diverging"].sum()),
                mean_tree_steps=float(trace["sample_stats"]["n_steps"].mean()),
                simulate_seconds=t1 - t0,
                compile_seconds=timings["compile_seconds"],
                sample_seconds=timings["sample_seconds"],
                crossings_seconds=t3 - t2,
                error="",
            )
        except Exception as e:  # noqa: BLE001 - one failed dataset is a result of the study, not its end
            table = pd.DataFrame([{"section": "", "year": -1, "covered": False}])
            info.update(
                gate_passed=False,
                gate_failed="error",
                divergences=-1,
                error=f"{type(e).__name__}: {e}".splitlines()[0],
            )
        info["seconds"] = time.perf_counter() - t0
        frame = table.assign(**info)
        frames.append(frame)
        if (
            out is not None
        ):  # rewritten whole after every dataset (small), so columns always line up
            write_rows(pd.concat(frames, ignore_index=True), out)
        if progress:
            sy = frame[frame["year"] >= 0]
            print(
                f"dataset {i + 1}/{n_seeds} (seed {s}): section-years covered "
                f"{int(sy['covered'].sum())}/{len(sy)}, border years "
                f"{int(sy.drop_duplicates('year')['border_covered'].sum()) if len(sy) else 0}/"
                f"{sy['year'].nunique()}, gate {'passed' if info['gate_passed'] else info['gate_failed']}, "
                f"divergences {info['divergences']}, {info['seconds']:.0f} s {info.get('error', '')}",
                flush=True,
                file=sys.stderr,
            )
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df.attrs.update(
        n_seeds=n_seeds,
        seed=seed,
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
    )
    return df


def _scratch() -> str | None:
    """Scratch directory for the simulated records (``BORDERREC_TMP`` or the system default)."""
    return os.environ.get("BORDERREC_TMP") or None


# --------------------------------------------------------------------------------------------------------------
# summary


def coverage_summary(df: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Coverage of the 90 % intervals with exact (Clopper–Pearson) ``level`` intervals: of all section-years
    (and of those of datasets that passed the gate), by section (with the misses split into ``truth_above``
    — the interval lies below the truth, under-estimation — and ``truth_below``), and of the whole border's
    years; gate failures, errors and timings per dataset."""
    per_dataset = df.drop_duplicates("sim_seed")
    ok = df[without_error(df["error"])]
    passed = ok[ok["gate_passed"].astype(bool)]
    by_section = {}
    for s, g in ok.groupby("section", sort=False):
        c = coverage(g["covered"], level)
        c["truth_above"] = int((g["truth"] > g["q95"]).sum())
        c["truth_below"] = int((g["truth"] < g["q05"]).sum())
        c["surveyed"] = bool(g["surveyed"].iloc[0])
        c["median_rel_error"] = float(((g["median"] - g["truth"]) / g["truth"]).median())
        by_section[str(s)] = c
    border = ok.drop_duplicates(["sim_seed", "year"])
    border_cov = coverage(border["border_covered"], level)
    border_cov["truth_above"] = int((border["border_truth"] > border["border_q95"]).sum())
    border_cov["truth_below"] = int((border["border_truth"] < border["border_q05"]).sum())
    overall = coverage(ok["covered"], level)
    overall["truth_above"] = int((ok["truth"] > ok["q95"]).sum())
    overall["truth_below"] = int((ok["truth"] < ok["q05"]).sum())
    n_sets = int(len(per_dataset))
    fails = int((~per_dataset["gate_passed"].astype(bool)).sum())
    timing_cols = [
        c
        for c in (
            "seconds",
            "simulate_seconds",
            "compile_seconds",
            "sample_seconds",
            "crossings_seconds",
        )
        if c in per_dataset
    ]
    return {
        "datasets": n_sets,
        "section_years": overall,
        "section_years_gate_passed": coverage(passed["covered"], level),
        "by_section": by_section,
        "border_years": border_cov,
        "gate_failures": fails,
        "gate_failure_share": fails / n_sets if n_sets else float("nan"),
        "gate_failed_checks": per_dataset.loc[
            ~per_dataset["gate_passed"].astype(bool), "gate_failed"
        ]
        .value_counts()
        .to_dict(),
        "errors": int((~without_error(per_dataset["error"])).sum()),
        "divergences_total": int(per_dataset["divergences"].clip(lower=0).sum()),
        "median_seconds": {c: float(per_dataset[c].median()) for c in timing_cols},
    }
