"""The paper's steps that read expensive studies: never rerun by a build, read from their committed outputs in
``paper/inputs/``, which their own scripts make (each step names its script when an input is missing).

* ``recovery/FAMILY.csv`` and ``.json``: the parameter-recovery study of each single-register and
  closed-population family (`scripts/recovery.py`), one row per simulated dataset;
* ``sensitivity.json``: the border model's prior sensitivity (`estim sensitivity models/border.toml --format
  json`);
* ``border_misspecification.csv.gz``: the border model's misspecification grid (`scripts/border_misspecification.py`),
  one row per dataset × section × year of each cell (simulated r × frailty σ);
  its cell r = 1, σ = 0 (the simulator at its calibrated world, 30 seeds) is also the border model's recovery
  study;
* ``effect_recovery.csv``, ``backtest.csv``: the forecasts' validation (`scripts/effect_recovery.py`,
  `scripts/backtest.py`).

Every number a step derives from these files is a deterministic function of them, so ``--verify`` compares it
exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from estim.errors import EstimInputError
from estim.io import without_error
from estim.paper.context import Context, write_csv
from estim.paper.numbers import Number, write_numbers

RECOVERY_CELL = (1.0, 0.0)
"""The misspecification grid's cell (r, frailty σ) that is the border model's recovery study."""

# the families' recovery studies in the order the manuscript lists them, with the kind of model
FAMILY_KINDS = {
    "ztpoisson": "single register",
    "ztgeometric": "single register",
    "ztnegbin": "single register",
    "oiztpoisson": "single register",
    "oiztgeometric": "single register",
    "zelterman": "single register",
    "M0": "closed population",
    "Mt": "closed population",
    "Mb": "closed population",
    "Mh_logitnormal": "closed population",
    "Mh_mixture": "closed population",
    "Mth": "closed population",
    "Mtbh": "closed population",
}


def _require(path: Path, command: str) -> Path:
    if not path.is_file():
        raise EstimInputError(
            f"{path}: missing; the paper reads it, and `{command}` makes it (see the README, 'The paper')"
        )
    return path


def forecasts(ctx: Context) -> list[Path]:
    """The validation of the forecasts: effect recovery over simulated borders and the backtest."""
    from estim.measures.recovery import summarise

    recovery_csv = _require(
        ctx.paper / "inputs" / "effect_recovery.csv",
        "./run python scripts/effect_recovery.py --seeds 30 --out paper/inputs/effect_recovery.csv",
    )
    backtest_csv = _require(
        ctx.paper / "inputs" / "backtest.csv",
        "./run python scripts/backtest.py --target-accept 0.95 --tune 1000 --out paper/inputs/backtest.csv",
    )
    recovery = summarise(pd.read_csv(recovery_csv))
    backtest = pd.read_csv(backtest_csv)
    out = ctx.generated
    paths = [
        write_csv(recovery, out / "tables" / "effect_recovery.csv"),
        write_csv(backtest, out / "tables" / "backtest.csv"),
    ]
    whole = backtest[backtest["series"] == "border"].iloc[0]
    sections = backtest[backtest["series"] != "border"]
    numbers = {
        "effect_recovery": {
            f"{r.measure}_{r.mechanism.split()[0]}": {
                "coverage": Number(float(r.coverage), "deterministic"),
                "coverage_known": Number(float(r.coverage_known), "deterministic"),
                "coverage_known_percent": Number(float(r.coverage_known_percent), "deterministic"),
                "baseline_error": Number(float(r.baseline_error_percent), "deterministic"),
                "baseline_below": Number(int(r.baseline_below), "deterministic"),
                **{  # the undamped arm (told the effects and ρ = 1) and the baseline's own interval
                    k: Number(float(getattr(r, k)), "deterministic")
                    for k in ("coverage_undamped", "baseline_coverage", "baseline_error_undamped")
                },
                "datasets": Number(int(r.datasets), "deterministic"),
            }
            for r in recovery.itertuples()
        },
        "backtest": {
            "ratio_ets": Number(float(whole["ratio_ets"]), "deterministic"),
            "ratio_snaive": Number(float(whole["ratio_snaive"]), "deterministic"),
            "sections_below_one": Number(int((sections["ratio_ets"] < 1).sum()), "deterministic"),
            "unobserved_coverage": Number(float(whole["unobserved_coverage"]), "deterministic"),
        },
    }
    paths.append(write_numbers(out / "numbers" / "studies.json", numbers))
    return [ctx.record(p, forecasts, [recovery_csv, backtest_csv]) for p in paths]


def _family_rows(folder: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    from estim.studies.recovery import coverage_summary

    rows, inputs = [], []
    for family, kind in FAMILY_KINDS.items():
        command = (
            f"./run python scripts/recovery.py --family {family} --backend numba "
            f"--out {folder}/{family}.csv > {folder}/{family}.json"
        )
        csv = _require(folder / f"{family}.csv", command)
        settings = json.loads(_require(folder / f"{family}.json", command).read_text("utf-8"))
        inputs += [csv, folder / f"{family}.json"]
        s = coverage_summary(pd.read_csv(csv))
        params = ", ".join(f"{k} = {v:g}" for k, v in settings["true_params"].items())
        rows.append(
            {
                "family": family,
                "kind": kind,
                "target": "N",  # the interval checked: of N, or of a section's (border's) year
                "truth": f"N = {settings['population_size']}" + (f"; {params}" if params else ""),
                "datasets": s["datasets"],
                "intervals": s["datasets"],
                "coverage": s["coverage"],
                "coverage_lower": s["coverage_ci"][0],
                "coverage_upper": s["coverage_ci"][1],
                "truth_below": s["below"],
                "truth_above": s["above"],
                "at_endpoint": s["at_endpoint"],
                "median_abs_rel_error": s["median_abs_rel_error"],
                "gate_failures": s["gate_failures"],
                "errors": s["errors"],
            }
        )
    return rows, inputs


def recovery(ctx: Context) -> list[Path]:
    """Recovery coverage per family: of N's 90 % interval over simulated datasets for each single-register and
    closed-population family, and of the border model's section-year unobserved crossings."""
    from estim.studies.border_recovery import CELL
    from estim.studies.border_recovery import coverage_summary as border_summary

    folder = ctx.paper / "inputs" / "recovery"
    rows, inputs = _family_rows(folder)
    # the border's recovery is the misspecification grid's cell of the calibrated world (r = 1, no frailty):
    # the same datasets, fitted by the current model, so the two studies cannot disagree about a dataset
    border_csv = _require(
        ctx.paper / "inputs" / "border_misspecification.csv.gz",
        "./run python scripts/border_misspecification.py --retry 1.0 --frailty 0 --seeds 30 "
        "--out paper/inputs/border_misspecification.csv.gz --resume",
    )
    inputs.append(border_csv)
    grid_rows = pd.read_csv(border_csv, low_memory=False)
    border_rows = grid_rows[
        (grid_rows[CELL[0]] == RECOVERY_CELL[0]) & (grid_rows[CELL[1]] == RECOVERY_CELL[1])
    ]
    if border_rows.empty:
        raise EstimInputError(
            f"{border_csv}: no dataset of the cell r = 1, σ = 0 (the border model's recovery study)"
        )
    b = border_summary(border_rows)
    ok = border_rows[without_error(border_rows["error"])]
    years = ok.drop_duplicates(["sim_seed", "year"])
    on_end = {
        "section-year": int(((ok["truth"] == ok["q05"]) | (ok["truth"] == ok["q95"])).sum()),
        "border-year": int(
            (
                (years["border_truth"] == years["border_q05"])
                | (years["border_truth"] == years["border_q95"])
            ).sum()
        ),
    }
    for target, c in (
        ("section-year", b["section_years"]),
        ("border-year", b["border_years"]),
    ):
        rows.append(
            {
                "family": "border",
                "kind": "border",
                "target": target,
                "truth": "drawn around the calibrated world",
                "datasets": b["datasets"],
                "intervals": c["n"],
                "coverage": c["coverage"],
                "coverage_lower": c["ci"][0],
                "coverage_upper": c["ci"][1],
                # the interval lies above the truth ("truth below") or below it
                "truth_below": c["truth_below"],
                "truth_above": c["truth_above"],
                "at_endpoint": on_end[target],
                "median_abs_rel_error": float("nan"),
                "gate_failures": b["gate_failures"],
                "errors": b["errors"],
            }
        )
    table = pd.DataFrame(rows)
    families = table[table["kind"] != "border"]
    in_range = families["coverage_lower"].le(0.9) & families["coverage_upper"].ge(0.9)
    numbers = {
        "families": Number(len(families), "deterministic"),
        "datasets_per_family": Number(int(families["datasets"].min()), "deterministic"),
        "families_consistent_with_90": Number(int(in_range.sum()), "deterministic"),
        "coverage_min": Number(float(families["coverage"].min()), "deterministic"),
        "coverage_max": Number(float(families["coverage"].max()), "deterministic"),
        "border": {
            "datasets": Number(int(b["datasets"]), "deterministic"),
            "section_years": Number(float(b["section_years"]["coverage"]), "deterministic"),
            "border_years": Number(float(b["border_years"]["coverage"]), "deterministic"),
            # one-sided binomial p of a coverage below 0.90, the years counted by dataset
            "border_years_p_below_90": Number(
                float(b["border_years"]["p_below_90"]), "deterministic"
            ),
            "gate_failures": Number(int(b["gate_failures"]), "deterministic"),
            "refused": Number(int(b.get("refused", 0)), "deterministic"),
            "sections_beyond_5_percent": Number(
                len(b["sections_beyond_5_percent"]), "deterministic"
            ),
            # their names and errors, so that the text says which and by how much
            "beyond_5_percent": Number(
                ", ".join(
                    f"{s.replace('_', ' ')} ({100 * b['by_section'][s]['median_rel_error']:+.1f} %)"
                    for s in b["sections_beyond_5_percent"]
                )
                or "none",
                "deterministic",
            ),
            **_retry_split_numbers(b),
        },
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "recovery.csv"),
        write_numbers(out / "numbers" / "recovery.json", numbers),
    ]
    return [ctx.record(p, recovery, inputs) for p in paths]


def _retry_split_numbers(summary: dict[str, Any]) -> dict[str, Any]:
    """The whole border's coverage where the fit put r at 1 and where it did not
    (`estim.studies.border_recovery.retry_split`): ``at_one`` and ``below_one``, each with its datasets, the
    share of years covered, the one-sided p of a coverage below 90 % (years counted by dataset), the period
    totals covered and the median relative width of the period total's interval."""
    split = summary.get("border_by_retry")
    if split is None:  # rows without r's interval (a study before r was estimated): no group
        split = {name: {"years": 0} for name in ("at_one", "below_one")}
    out: dict[str, Any] = {}
    for name, g in split.items():
        years = g["years"]
        if not years:  # no dataset in the group: nothing to quote (the text says so)
            out[name] = {"datasets": Number(0, "deterministic")}
            continue
        out[name] = {
            "datasets": Number(g["datasets"], "deterministic"),
            "years": Number(years, "deterministic"),
            "years_covered": Number(g["years_covered"], "deterministic"),
            "years_coverage": Number(g["years_covered"] / years, "deterministic"),
            "p_below_90": Number(float(g["p_below_90"]), "deterministic"),
            "periods_covered": Number(g["periods_covered"], "deterministic"),
            "median_period_width": Number(float(g["median_period_width"]), "deterministic"),
        }
    return out


# what a sensitivity variant changes, by the names of the priors and options it changes (first match wins)
VARIED = (
    ("frailty", ("frailty_sd",)),
    (
        "retry",
        ("retry_probability", "repeated_trials_prior", "register_coverage", "after_background"),
    ),
    ("hazard", ("hazard_mean", "hazard_terrain", "hazard_section", "hazard_section_sd")),
)
# a number that does not exist (no variant of its kind, no accepted fit), shown as a dash
NONE = "–"


def _varies(changed: list[str]) -> str:
    """The kind of a sensitivity variant from the priors and options it changes: "spec" (none), "frailty",
    "retry", "hazard" or "other"."""
    if not changed:
        return "spec"
    for kind, names in VARIED:
        if any(name in names for name in changed):
            return kind
    return "other"


def _or_none(x: float) -> Number:
    """A deterministic number, or `NONE` where it is undefined (NaN: JSON cannot hold it)."""
    return Number(float(x) if pd.notna(x) else NONE, "deterministic")


def sensitivity(ctx: Context) -> list[Path]:
    """The border estimate's sensitivity to its priors and assumptions: the whole border's unobserved crossings
    per year under the spec and each variant of `estim sensitivity` (hazard priors; r fixed, given a strong
    prior or no atom at 1; a frailty), with the mean apprehension probability, r's posterior median, the
    predictive checks each fails and the variants that fail the gate. Older inputs without ``options``,
    ``retry`` or ``checks_failed`` give none, NaN and "–"."""
    source = _require(
        ctx.paper / "inputs" / "sensitivity.json",
        "./run estim sensitivity models/border.toml --format json --out paper/inputs/sensitivity.json",
    )
    rows = json.loads(source.read_text(encoding="utf-8"))
    records = []
    for r in rows:
        priors, options = r.get("priors") or {}, r.get("options") or {}
        changed = [f"{k} ~ {v}" for k, v in priors.items()] + [
            f"{k} = {v}" for k, v in options.items()
        ]
        records.append(
            {
                "variant": r["variant"],
                "varies": _varies([*priors, *options]),
                "changed": "; ".join(changed) or "the spec's priors and options",
                "gate_passed": bool(r["gate_passed"]),
                "median": r["median"],
                "lower": r["lower"],
                "upper": r["upper"],
                "mean_p": r["mean_p"],
                "retry": float(r["retry"]) if r.get("retry") is not None else float("nan"),
                "retry_fixed": "retry_probability" in options,
                "shift": r["shift_from_first"],
                # the predictive checks the variant fails: "" none, NONE not recorded (older inputs)
                "checks_failed": NONE
                if r.get("checks_failed") is None
                else ", ".join(r["checks_failed"]),
            }
        )
    table = pd.DataFrame(records)
    passed = table[table["gate_passed"]]
    estimated = passed[~passed["retry_fixed"] & passed["retry"].notna()]
    numbers: dict[str, Any] = {
        "variants": Number(len(table), "deterministic"),
        "gate_passed": Number(len(passed), "deterministic"),
        "gate_failed": Number(
            ", ".join(table.loc[~table["gate_passed"], "variant"]) or NONE, "deterministic"
        ),
        "max_abs_shift": Number(
            float(100 * passed["shift"].abs().max()), "deterministic", unit="%"
        ),
        "mean_p_min": Number(float(passed["mean_p"].min()), "deterministic"),
        "mean_p_max": Number(float(passed["mean_p"].max()), "deterministic"),
        # r's posterior median over the variants that estimate it (NONE in inputs without r)
        "retry_min": _or_none(estimated["retry"].min()),
        "retry_max": _or_none(estimated["retry"].max()),
        # variants that passed the gate but fail a predictive check (NONE when no row recorded its checks)
        "checks_misfit": Number(
            int((~passed["checks_failed"].isin(["", NONE])).sum())
            if (passed["checks_failed"] != NONE).any()
            else NONE,
            "deterministic",
        ),
    }
    # per kind of variant: how many, how many passed the gate, the largest shift among those and its variant
    for kind, _ in VARIED:
        of_kind = table[table["varies"] == kind]
        ok = of_kind[of_kind["gate_passed"]]
        largest = ok.loc[ok["shift"].abs().idxmax()] if len(ok) else None
        numbers[kind] = {
            "variants": Number(len(of_kind), "deterministic"),
            "gate_passed": Number(len(ok), "deterministic"),
            # signed: the shift of the variant that moved the estimate most
            "largest_shift": Number(
                float(100 * largest["shift"]) if largest is not None else NONE,
                "deterministic",
                unit="%",
            ),
            "largest": Number(
                str(largest["variant"]) if largest is not None else NONE, "deterministic"
            ),
        }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "sensitivity.csv"),
        write_numbers(out / "numbers" / "sensitivity.json", numbers),
    ]
    return [ctx.record(p, sensitivity, [source]) for p in paths]


# the columns of the misspecification table, in its order (`cell_summary`'s names)
MISSPECIFICATION_COLUMNS = (
    "retry",
    "frailty",
    "seeds",
    "errors",
    "retried",
    "refused_gate",
    "refused_ppc",
    "refused",
    "dispersion_tested",
    "dispersion_failed",
    "accepted",
    "period_covered",
    "period_n",
    "period_p",
    "years_covered",
    "years_n",
    "years_p",
    "years_p_independent",
    "section_years_covered",
    "section_years_n",
    "section_years_coverage",
    "section_years_lo",
    "section_years_hi",
    "period_median_rel_error",
    "retry_median",
    "retry_coverage",
    "verdict",
)
_COUNTS = (
    "seeds",
    "errors",
    "retried",
    "refused_gate",
    "refused_ppc",
    "refused",
    "dispersion_tested",
    "dispersion_failed",
    "accepted",
    "period_covered",
    "period_n",
    "years_covered",
    "years_n",
    "section_years_covered",
    "section_years_n",
)


def _on_grid(
    summary: pd.DataFrame, retries: tuple[float, ...], frailties: tuple[float, ...]
) -> pd.DataFrame:
    """The cell summary on the study's whole design grid (and any other cell the rows hold), ordered by r then
    σ: a cell with no dataset yet is a row of zero counts, NaN shares and the verdict "no data"."""
    have = {
        (round(float(c["retry"]), 9), round(float(c["frailty"]), 9)): c
        for c in summary.to_dict("records")
    }
    grid = {(round(float(r), 9), round(float(f), 9)) for r in retries for f in frailties}
    rows = []
    for r, f in sorted(grid | set(have)):
        if (r, f) in have:
            rows.append({c: have[r, f][c] for c in MISSPECIFICATION_COLUMNS})
        else:
            empty = {c: 0 if c in _COUNTS else float("nan") for c in MISSPECIFICATION_COLUMNS}
            rows.append({**empty, "retry": r, "frailty": f, "verdict": "no data"})
    return pd.DataFrame(rows, columns=list(MISSPECIFICATION_COLUMNS))


def _share(k: int, n: int) -> Number:
    return Number(k / n if n else NONE, "deterministic")


def misspecification(ctx: Context) -> list[Path]:
    """The border model under misspecification: over the simulated grid of retry probability r × frailty
    spread σ, per cell the datasets fitted, retried and refused (by the gate, by a posterior predictive check),
    the accepted fits' coverage of the whole border's period total and years (with the one-sided binomial p of
    a coverage below 0.90, the years counted by dataset: `estim.studies.rows.below_nominal_by_dataset`) and of
    the section-years (with a by-dataset bootstrap interval), the median relative
    error of the period total, r's posterior median, and the verdict of
    `estim.studies.border_misspecification.verdict` ("passes", "refused", "FAILS", "no data")."""
    from estim.studies import border_misspecification as study

    source = _require(
        ctx.paper / "inputs" / "border_misspecification.csv.gz",
        "./run python scripts/border_misspecification.py --seeds 20 "
        "--out paper/inputs/border_misspecification.csv.gz --resume",
    )
    rows = pd.read_csv(source, low_memory=False)
    table = _on_grid(
        study.misspecification_summary(rows),
        study.RETRIES,
        study.FRAILTIES,
    )
    verdicts = table["verdict"].value_counts()
    base = table[(table["retry"] == 1.0) & (table["frailty"] == 0.0)]
    b = base.iloc[0] if len(base) else pd.Series(0, index=_COUNTS)
    ran = int(b["seeds"] - b["errors"])
    numbers = {
        "cells": Number(len(table), "deterministic"),
        "cells_run": Number(int((table["seeds"] > 0).sum()), "deterministic"),
        "seeds": Number(int(table["seeds"].sum()), "deterministic"),
        "seeds_min": Number(int(table["seeds"].min()), "deterministic"),
        "seeds_max": Number(int(table["seeds"].max()), "deterministic"),
        # the simulated grid, as the text lists it
        "grid": {
            "retries": Number(", ".join(f"{r:g}" for r in study.RETRIES), "deterministic"),
            "frailties": Number(", ".join(f"{f:g}" for f in study.FRAILTIES), "deterministic"),
        },
        # the datasets a cell needs before its verdict is the study's
        "seeds_planned": Number(study.N_SEEDS, "deterministic"),
        "passes": Number(int(verdicts.get("passes", 0)), "deterministic"),
        "refused": Number(int(verdicts.get("refused", 0)), "deterministic"),
        "fails": Number(int(verdicts.get("FAILS", 0)), "deterministic"),
        "no_data": Number(int(verdicts.get("no data", 0)), "deterministic"),
        # the test of the repeat counts before sampling, on the datasets with and without a frailty
        "dispersion": {
            f"{kind}_{what}": Number(
                int(table.loc[rows, f"dispersion_{what}"].sum()), "deterministic"
            )
            for kind, rows in (
                ("frailty", table["frailty"] > 0),
                ("no_frailty", table["frailty"] == 0),
            )
            for what in ("tested", "failed")
        },
        # the pass rule's thresholds (`estim.studies.border_misspecification`)
        "rule": {
            "p_min": Number(study.P_MIN, "deterministic"),
            "section_year_floor": Number(study.SECTION_YEAR_FLOOR, "deterministic"),
            "refused_share": Number(study.REFUSED_SHARE, "deterministic"),
            "baseline_refusals": Number(study.BASELINE_REFUSALS, "deterministic"),
        },
        # the model's own world, r = 1 and no frailty: its shares are NONE until it has an accepted fit
        "baseline": {
            **{c: Number(int(b[c]), "deterministic") for c in _COUNTS},
            "refused_share": _share(int(b["refused"]), ran),
            "border_years": _share(int(b["years_covered"]), int(b["years_n"])),
            "section_years": _share(int(b["section_years_covered"]), int(b["section_years_n"])),
            "period": _share(int(b["period_covered"]), int(b["period_n"])),
        },
    }
    # the accepted fits far off in period total, whatever their cell's verdict; r at the spike (≥ 0.99)
    far = study.far_misses(rows)
    numbers["far"] = {
        "threshold": Number(study.FAR, "deterministic"),
        "count": Number(len(far), "deterministic"),
        "accepted": Number(int(table["accepted"].sum()), "deterministic"),
        "high": Number(int((far["period_rel_error"] > 0).sum()), "deterministic"),
        "worst": Number(
            float(far["period_rel_error"].abs().max()) if len(far) else NONE, "deterministic"
        ),
        "at_spike": Number(int((far["retry_median"] >= 0.99).sum()), "deterministic"),
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "misspecification.csv"),
        write_numbers(out / "numbers" / "misspecification.json", numbers),
    ]
    return [ctx.record(p, misspecification, [source]) for p in paths]


# --------------------------------------------------------------------------------------------------------------
# provenance: which inputs an earlier border model made

BORDER_FITTED_INPUTS = (
    "border_misspecification.csv.gz",
    "backtest.csv",
    "effect_recovery.csv",
    "sensitivity.json",
    "sbc/sbc_border.csv",
    "stan_race.json",
)
"""The committed inputs made by fitting the border model, whose rows record the model's revision
(`estim.families.border.revision`)."""


def input_revisions(path: Path) -> set[int | None]:
    """The border-model revisions recorded in a study input (``model_revision``: a CSV column, or a key of a
    JSON object or of each object of a JSON list); None for rows that record none (made before revisions
    were recorded)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        values = [i.get("model_revision") if isinstance(i, dict) else None for i in items]
    else:
        # only that column: the grid's CSV has a row per section-year and ~60 columns
        frame = pd.read_csv(path, usecols=lambda column: column == "model_revision")
        values = frame["model_revision"].tolist() if "model_revision" in frame else [None]
    return {None if v is None or pd.isna(v) else int(v) for v in values}


def provenance(ctx: Context) -> list[Path]:
    """The border model's current revision and the committed study inputs made (wholly or in part) by another
    one, or recording none: their numbers describe an earlier model, and the paper says which they are."""
    from estim.families.border.revision import MODEL_REVISION

    inputs, stale = [], []
    for name in BORDER_FITTED_INPUTS:
        path = ctx.paper / "inputs" / name
        if not path.exists():
            continue
        inputs.append(path)
        if input_revisions(path) != {MODEL_REVISION}:
            stale.append(name)
    numbers = {
        "model_revision": Number(MODEL_REVISION, "deterministic"),
        "stale_count": Number(len(stale), "deterministic"),
        "stale_inputs": Number(", ".join(stale) if stale else NONE, "deterministic"),
    }
    path = write_numbers(ctx.generated / "numbers" / "provenance.json", numbers)
    return [ctx.record(path, provenance, inputs)]
