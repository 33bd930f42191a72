"""Effect recovery: do the forecasts of the measures cover the effects the simulator produces?

For dataset i of a study (simulator seed ``seed + i``):

1. a border is simulated for 15 years (2006–2020) with the parameters drawn around the defaults
   (`estim.simulate.perturb.perturbed_config`), first without measures: its records before the measures' start
   (2018-01) are the data the model is fitted to, as for the shipped data;
2. each measure's **true effect sizes** are drawn from the forecast's own priors (models/measures/*.toml), with
   a stream of their own: the truths spread over the priors' whole range rather than sitting at their centre,
   and a forecast whose model is right covers them at its nominal rate;
3. the simulator applies each measure alone with those effect sizes, from the start month, with its baseline
   under common random numbers (`estim.simulate.measures`): the **true change** of the whole border's
   unobserved crossings over the 36-month horizon is Σ unobserved − Σ baseline unobserved; the same is done
   with a mechanism the forecast lacks — a share ``MISSPECIFIED_DISPLACEMENT`` of the journeys a measure
   prevents moves to the neighbouring sections — and reported apart;
4. the border model is fitted to the pre-measure records (the shipped spec's priors, sampler settings
   overridable), and `estim.measures.forecast.forecast` forecasts every measure from that one fit;
5. per measure and mechanism: is the true change inside the 90 % interval of the forecast change, the
   interval's width, and whether the median has the true change's sign.

Two more forecasts from the same fit separate the model from the forecast's assumptions: ``known`` is told
the true effect sizes, and ``undamped`` is told them and also carries the fitted trends on undamped (ρ = 1),
as the simulated worlds do (their 2006–2017 trends continue to 2020), where the forecast spreads its draws
over ρ ∈ {0.6, …, 1}. What ``undamped`` misses is the model's (its level and trends at the end of the data, the
measures' mechanism), not the forecast's hedge on trend persistence. The baseline's own 90 % interval (the
forecast without measures) is checked against the true baseline too.

`summarise` gives, per measure and mechanism, the coverage, a one-sided binomial p-value against 0.90, the
median interval width beside the median true change, and the sign check where the true change exceeds 10 %.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr

from estim.families.border.data_kind import records_data
from estim.intervals import equal_tailed_array
from estim.io import atomic_path, without_error
from estim.measures.backtest import border_gate, fit_border, months_before
from estim.measures.forecast import BASELINE, ForecastSettings, forecast
from estim.measures.spec import MeasureSpec, read_measures

DEFAULT_STUDY_SEED = 6000
START = "2018-01"
HORIZON = 36
YEARS = 15  # 2006–2020: 12 fitted years and the 36-month horizon
INTERVAL = 0.9
MISSPECIFIED_DISPLACEMENT = 0.3
_EFFECT_STREAM = 0xEFFEC7


def true_effects(specs: Sequence[MeasureSpec], seed: int) -> dict[str, dict[str, float]]:
    """Each measure's true effect sizes for dataset ``seed``: one draw from each effect's prior."""
    return {
        spec.name: {
            e.name: float(
                e.draw(np.random.default_rng([seed, _EFFECT_STREAM, spec.stream(e.name)]), 1)[0]
            )
            for e in spec.effects
        }
        for spec in specs
    }


def _config(seed: int) -> Any:
    from estim.simulate.perturb import perturbed_config

    return dataclasses.replace(perturbed_config(seed), years=YEARS)


def fit_data(seed: int, scratch: str | Path | None = None) -> xr.Dataset:
    """The border model's data from the records of the world without measures, before `START`."""
    from estim.records import DEFAULT_KEY
    from estim.records.load import load_records
    from estim.simulate import simulate, write_simulation

    sim = simulate(seed=seed, config=_config(seed))
    # only the records before the measures' start are handed over (the fitted data); this also keeps out the
    # simulator's refusals of entry, whose calibrated trend (+48 % a year) leaves the plausible range when
    # extrapolated past 2017 and would fail validation (1 of 30 datasets)
    sim = dataclasses.replace(sim, records=records_before(sim.records, START))
    with tempfile.TemporaryDirectory(prefix="effectrec_", dir=scratch) as folder:
        write_simulation(sim, folder)
        records = load_records(folder, key=DEFAULT_KEY)
    data = records_data(records)
    return months_before(data, START)


def records_before(records: dict[str, pd.DataFrame], month: str) -> dict[str, pd.DataFrame]:
    """The record tables with only their rows before ``month`` (YYYY-MM): monthly rows by month, dated rows
    by date; tables without time (sections, checkpoints, policy events) whole."""
    first_day = f"{month}-01"
    out = {}
    for name, table in records.items():
        if "month" in table.columns:
            table = table[table["month"].astype(str) < month]
        elif "date" in table.columns:
            table = table[table["date"].astype(str) < first_day]
        out[name] = table.reset_index(drop=True)
    return out


def true_changes(
    seed: int, specs: Sequence[MeasureSpec], effects: dict[str, dict[str, float]]
) -> pd.DataFrame:
    """One row per measure and mechanism ("as forecast", "displacement"): the true change of the whole border's
    unobserved crossings over the horizon against the baseline (and the baseline's total)."""
    from estim.simulate import simulate

    cfg = _config(seed)
    rows = []
    for spec in specs:
        for mechanism, displacement in (
            ("as forecast", None),
            ("displacement", MISSPECIFIED_DISPLACEMENT),
        ):
            applied = spec.applied(effects[spec.name], start=START, displacement=displacement)
            truth = simulate(seed=seed, config=dataclasses.replace(cfg, measures=(applied,))).truth
            months = truth["month"].values.astype("datetime64[M]")
            horizon = months >= np.datetime64(START, "M")
            measured = float(truth["unobserved"].isel(month=horizon).sum())
            baseline = float(truth["baseline_unobserved"].isel(month=horizon).sum())
            rows.append(
                {
                    "measure": spec.name,
                    "mechanism": mechanism,
                    "true_change": measured - baseline,
                    "true_baseline": baseline,
                    "true_percent": 100.0 * (measured - baseline) / baseline,
                }
            )
    return pd.DataFrame(rows)


def known(specs: Sequence[MeasureSpec], effects: dict[str, dict[str, float]]) -> list[MeasureSpec]:
    """The measures with each effect size's prior replaced by (a width-1e-12 uniform at) its true value: a
    forecast that knows the effect sizes tests the mechanism and the model's propagation alone."""
    from estim.priors import Prior

    return [
        dataclasses.replace(
            spec,
            effects=tuple(
                dataclasses.replace(
                    e,
                    prior=Prior(
                        "Uniform",
                        lower=effects[spec.name][e.name],
                        upper=effects[spec.name][e.name] + 1e-12,
                    ),
                )
                for e in spec.effects
            ),
        )
        for spec in specs
    ]


def forecast_changes(
    data: xr.Dataset,
    posterior: xr.Dataset,
    specs: Sequence[MeasureSpec],
    seed: int,
    draws: int,
    prefix: str = "forecast",
    settings: ForecastSettings | None = None,
) -> pd.DataFrame:
    """Per measure: the forecast change of the whole border's unobserved crossings over the horizon (median and
    90 % interval, absolute and %) from one fit, and the baseline's median and 90 % interval; columns named
    ``prefix``_…"""
    fc = forecast(
        data,
        posterior,
        specs,
        start=START,
        horizon=HORIZON,
        draws=draws,
        seed=seed,
        settings=settings,
        history=False,
    )
    total = fc["unobserved"].sum(["section", "month"]).astype(float)
    base = total.sel(scenario=BASELINE)
    base_lo, _, base_hi = equal_tailed_array(base.values, INTERVAL)
    rows = []
    for spec in specs:
        diff = (total.sel(scenario=spec.name) - base).values
        pct = 100.0 * diff / base.values
        lo, med, hi = equal_tailed_array(diff, INTERVAL)
        plo, pmed, phi = equal_tailed_array(pct, INTERVAL)
        rows.append(
            {
                "measure": spec.name,
                f"{prefix}_median": float(med),
                f"{prefix}_lower": float(lo),
                f"{prefix}_upper": float(hi),
                f"{prefix}_percent_median": float(pmed),
                f"{prefix}_percent_lower": float(plo),
                f"{prefix}_percent_upper": float(phi),
                f"{prefix}_baseline": float(np.median(base.values)),
                f"{prefix}_baseline_lower": float(base_lo),
                f"{prefix}_baseline_upper": float(base_hi),
            }
        )
    return pd.DataFrame(rows)


def effect_recovery(
    n_seeds: int = 30,
    seed: int = DEFAULT_STUDY_SEED,
    *,
    measures: str | Sequence[str] = "all",
    draws: int | None = None,
    tune: int | None = None,
    forecast_draws: int = 1000,
    target_accept: float | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Run the study (module docstring) on ``n_seeds`` datasets; one row per dataset × measure × mechanism.
    With ``out`` the rows so far are rewritten after every dataset; with ``resume`` datasets in ``out`` are
    skipped (refused when made with other options: `estim.resume`), and without it a non-empty
    ``out`` is refused unless ``force``."""
    from estim.families.border.revision import MODEL_REVISION
    from estim.resume import StudyRows, study_rows_so_far

    specs = read_measures(measures)
    study = StudyRows(
        name="effect recovery study",
        columns=("dataset", "sim_seed", "measure", "error"),
        unit=("sim_seed",),
        key=("sim_seed", "measure", "mechanism"),
        options={
            "study": "effect_recovery",
            "model_revision": MODEL_REVISION,
            "measures": {m.name: m.digest for m in specs},  # each spec file's SHA-256
            "seed": int(seed),
            "draws": draws,
            "tune": tune,
            "forecast_draws": forecast_draws,
            "target_accept": target_accept,
        },
        numbers=("sim_seed",),
    )
    done = study_rows_so_far(out, study, resume=resume, force=force)
    frames = [done] if done is not None else []
    done_seeds = set(done["sim_seed"].unique()) if done is not None else set()
    for i in range(n_seeds):
        s = seed + i
        if s in done_seeds:
            continue
        t0 = time.perf_counter()
        # the revision on every row, an errored dataset's too (else the input would read as an earlier model's)
        info: dict[str, Any] = {"dataset": i, "sim_seed": s, "model_revision": MODEL_REVISION}
        effects = true_effects(specs, s)
        try:
            data = fit_data(s)
            truth = true_changes(s, specs, effects)
            t1 = time.perf_counter()
            trace = fit_border(data, s, draws=draws, tune=tune, target_accept=target_accept)
            verdict = border_gate(trace)
            t2 = time.perf_counter()
            posterior = trace["posterior"].to_dataset()
            predicted = forecast_changes(data, posterior, specs, s, forecast_draws)
            given = forecast_changes(
                data, posterior, known(specs, effects), s, forecast_draws, prefix="known"
            )
            undamped = forecast_changes(
                data,
                posterior,
                known(specs, effects),
                s,
                forecast_draws,
                prefix="undamped",
                settings=ForecastSettings(trend_damping=(1.0,)),
            )
            frame = (
                truth.merge(predicted, on="measure")
                .merge(given, on="measure")
                .merge(undamped, on="measure")
            )
            for prefix, name in (
                ("forecast", "covered"),
                ("known", "covered_known"),
                ("undamped", "covered_undamped"),
            ):
                frame[name] = (frame["true_change"] >= frame[f"{prefix}_lower"]) & (
                    frame["true_change"] <= frame[f"{prefix}_upper"]
                )
            frame["right_sign"] = np.sign(frame["forecast_median"]) == np.sign(frame["true_change"])
            info.update(
                gate_passed=bool(verdict.passed),
                gate_failed=",".join(verdict.failed),
                attempts=int(trace["posterior"].attrs.get("attempts", 1)),
                simulate_seconds=t1 - t0,
                fit_seconds=t2 - t1,
                forecast_seconds=time.perf_counter() - t2,
                error="",
            )
        except Exception as e:  # noqa: BLE001 - a failed dataset is a result of the study, not its end
            frame = pd.DataFrame(
                [{"measure": m.name, "mechanism": "", "covered": False} for m in specs]
            )
            info.update(gate_passed=False, error=f"{type(e).__name__}: {e}".splitlines()[0])
        info["seconds"] = time.perf_counter() - t0
        frame["true_effects"] = frame["measure"].map(
            {m: ";".join(f"{k}={v:.4g}" for k, v in vals.items()) for m, vals in effects.items()}
        )
        frame = study.stamp(frame.assign(**info))
        frames.append(frame)
        if out is not None:
            table = pd.concat(frames, ignore_index=True)
            with atomic_path(out) as tmp:
                table.to_csv(tmp, index=False)
        if progress and not info.get("error"):
            _progress_line(i, n_seeds, s, frame, info["seconds"])
        elif progress:
            print(
                f"dataset {i + 1}/{n_seeds} (seed {s}): {info['error']}",
                file=sys.stderr,
                flush=True,
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per measure × mechanism: datasets, coverage of the 90 % interval with a one-sided binomial p-value
    against 0.90 (P(X ≤ covered)), the median interval width and the median |true change| (% of the
    baseline), the share of datasets with |true change| > 10 % whose median had the right sign, and the
    forecast baseline's median error (% of the true baseline over the horizon) with the datasets it fell
    below the truth in."""
    out = []
    ok = rows[without_error(rows["error"])]
    for (measure, mechanism), g in ok.groupby(["measure", "mechanism"], sort=False):
        n, k = len(g), int(g["covered"].sum())
        big = g[g["true_percent"].abs() > 10]
        out.append(
            {
                "measure": measure,
                "mechanism": mechanism,
                "datasets": n,
                "covered": k,
                "coverage": k / n if n else np.nan,
                "p_value": float(scipy.stats.binom.cdf(k, n, INTERVAL)) if n else np.nan,
                "median_width_percent": float(
                    (g["forecast_percent_upper"] - g["forecast_percent_lower"]).median()
                ),
                "coverage_percent": float(
                    g["true_percent"]
                    .between(g["forecast_percent_lower"], g["forecast_percent_upper"])
                    .mean()
                ),
                "coverage_known": float(g["covered_known"].mean()),
                "coverage_known_percent": float(
                    g["true_percent"]
                    .between(g["known_percent_lower"], g["known_percent_upper"])
                    .mean()
                ),
                "p_value_known": float(
                    scipy.stats.binom.cdf(int(g["covered_known"].sum()), n, INTERVAL)
                ),
                "median_width_known": float(
                    (g["known_percent_upper"] - g["known_percent_lower"]).median()
                ),
                "median_abs_true_percent": float(g["true_percent"].abs().median()),
                "large_effects": len(big),
                "large_right_sign": int(big["right_sign"].sum()),
                "large_right_sign_known": int(
                    (np.sign(big["known_median"]) == np.sign(big["true_change"])).sum()
                ),
                "gate_passed": int(g["gate_passed"].sum()),
                # the level the change is taken from: a known effect's change in crossings misses with it
                "baseline_error_percent": float(
                    (100 * (g["forecast_baseline"] / g["true_baseline"] - 1)).median()
                ),
                "baseline_below": int((g["forecast_baseline"] < g["true_baseline"]).sum()),
                **_undamped(g, n),
            }
        )
    return pd.DataFrame(out)


def _undamped(g: pd.DataFrame, n: int) -> dict[str, float]:
    """The columns of the undamped arm and the baseline interval's coverage (none for rows made before they
    existed)."""
    if "covered_undamped" not in g or g["covered_undamped"].isna().any():
        return {}
    covered = g["covered_undamped"].astype(bool)
    return {
        "coverage_undamped": float(covered.mean()),
        "p_value_undamped": float(scipy.stats.binom.cdf(int(covered.sum()), n, INTERVAL)),
        "baseline_coverage": float(
            g["true_baseline"]
            .between(g["forecast_baseline_lower"], g["forecast_baseline_upper"])
            .mean()
        ),
        "baseline_error_undamped": float(
            (100 * (g["undamped_baseline"] / g["true_baseline"] - 1)).median()
        ),
    }


def format_summary(table: pd.DataFrame) -> str:
    """The study's table: one line per measure and mechanism."""
    lines = [
        f"Effect recovery: whole-border change in unobserved crossings over {HORIZON} months from {START}",
        f"coverage of the {round(100 * INTERVAL)} % interval (p: one-sided binomial against "
        f"{INTERVAL:.2f}); width and |true change| in % of the baseline (medians over datasets); sign: "
        "datasets with |true change| > 10 % whose forecast median had the right sign",
        "known: the same forecast told the true effect sizes (its trends still damped); coverage of the "
        "change in crossings, and (in brackets) of the % change",
        f"  {'measure':<14} {'mechanism':<13} {'n':>3} {'coverage':>9} {'p':>7} {'width %':>8} "
        f"{'|true| %':>8} {'sign':>7} {'gate':>5} {'known: cov.':>17} {'p':>7} {'width %':>8} "
        f"{'sign':>5}",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"  {r.measure:<14} {r.mechanism:<13} {r.datasets:>3} {r.coverage:>9.3f} "
            f"({r.coverage_percent:.3f}) {r.p_value:>7.3f} "
            f"{r.median_width_percent:>8.1f} {r.median_abs_true_percent:>8.1f} "
            f"{r.large_right_sign:>3}/{r.large_effects:<3} {r.gate_passed:>5} "
            f"{r.coverage_known:>9.3f} ({r.coverage_known_percent:.3f}) {r.p_value_known:>7.3f} "
            f"{r.median_width_known:>8.1f} {r.large_right_sign_known:>2}/{r.large_effects:<2}"
        )
    if len(table):
        first = table.iloc[0]  # one baseline forecast a dataset: the same for every measure
        lines.append(
            f"baseline: the forecast's unobserved crossings without measures over the horizon were a median "
            f"{first.baseline_error_percent:+.1f} % from the truth, below it in {first.baseline_below} of "
            f"{first.datasets} datasets (a known effect's change in crossings inherits that error)"
        )
        if np.isfinite(first.get("coverage_undamped", np.nan)):
            lines.append(
                f"  its 90 % interval held the true baseline in {first.baseline_coverage:.3f}; with the trends "
                f"undamped (ρ = 1, as the simulated worlds carry them) the baseline was "
                f"{first.baseline_error_undamped:+.1f} % from the truth"
            )
            lines.append(
                "undamped: told the true effect sizes and ρ = 1, coverage of the change in crossings "
                + ", ".join(
                    f"{r.measure} {r.mechanism} {r.coverage_undamped:.3f} (p {r.p_value_undamped:.3f})"
                    for r in table.itertuples()
                )
            )
    return "\n".join(lines)


def _progress_line(i: int, n: int, seed: int, frame: pd.DataFrame, seconds: float) -> None:
    ok = frame[frame["mechanism"] == "as forecast"]
    cells = ", ".join(
        f"{r.measure} {r.true_percent:+.1f}% in [{r.forecast_percent_lower:+.1f}, "
        f"{r.forecast_percent_upper:+.1f}] (known effect [{r.known_percent_lower:+.1f}, "
        f"{r.known_percent_upper:+.1f}])"
        for r in ok.itertuples()
    )
    print(
        f"dataset {i + 1}/{n} (seed {seed}): {cells}; {seconds:.0f} s", file=sys.stderr, flush=True
    )
