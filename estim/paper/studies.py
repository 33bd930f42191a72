"""The paper's steps that read expensive studies: never rerun by a build, read from their committed outputs in
``paper/inputs/``, which their own scripts make (each step names its script when an input is missing).

* ``recovery/FAMILY.csv`` and ``.json``: the parameter-recovery study of each single-register and
  closed-population family (`scripts/recovery.py`), one row per simulated dataset;
* ``border_recovery.csv`` and ``.json``: the border model's recovery study (`scripts/border_recovery.py`), one
  row per dataset × section × year;
* ``sensitivity.json``: the border model's prior sensitivity (`estim sensitivity models/border.toml --format
  json`);
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
        "./run python scripts/effect_recovery.py --out paper/inputs/effect_recovery.csv",
    )
    backtest_csv = _require(
        ctx.paper / "inputs" / "backtest.csv",
        "./run python scripts/backtest.py --out paper/inputs/backtest.csv",
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
    from estim.studies.border_recovery import coverage_summary as border_summary

    folder = ctx.paper / "inputs" / "recovery"
    rows, inputs = _family_rows(folder)
    border_csv = _require(
        ctx.paper / "inputs" / "border_recovery.csv",
        "./run python scripts/border_recovery.py --seeds 30 --out paper/inputs/border_recovery.csv",
    )
    inputs.append(border_csv)
    border_rows = pd.read_csv(border_csv)
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
            "gate_failures": Number(int(b["gate_failures"]), "deterministic"),
        },
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "recovery.csv"),
        write_numbers(out / "numbers" / "recovery.json", numbers),
    ]
    return [ctx.record(p, recovery, inputs) for p in paths]


def sensitivity(ctx: Context) -> list[Path]:
    """The border estimate's prior sensitivity: the whole border's unobserved crossings per year under the
    spec's prior of the apprehension probability and under a wider, a lower and a higher one."""
    source = _require(
        ctx.paper / "inputs" / "sensitivity.json",
        "./run estim sensitivity models/border.toml --format json > paper/inputs/sensitivity.json",
    )
    rows = json.loads(source.read_text(encoding="utf-8"))
    table = pd.DataFrame(
        [
            {
                "variant": r["variant"],
                "prior": "; ".join(f"{k} ~ {v}" for k, v in r["priors"].items())
                or "the spec's priors",
                "gate_passed": bool(r["gate_passed"]),
                "median": r["median"],
                "lower": r["lower"],
                "upper": r["upper"],
                "mean_p": r["mean_p"],
                "shift": r["shift_from_first"],
            }
            for r in rows
        ]
    )
    passed = table[table["gate_passed"]]
    numbers = {
        "variants": Number(len(table), "deterministic"),
        "gate_passed": Number(len(passed), "deterministic"),
        "max_abs_shift": Number(
            float(100 * passed["shift"].abs().max()), "deterministic", unit="%"
        ),
        "mean_p_min": Number(float(passed["mean_p"].min()), "deterministic"),
        "mean_p_max": Number(float(passed["mean_p"].max()), "deterministic"),
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "sensitivity.csv"),
        write_numbers(out / "numbers" / "sensitivity.json", numbers),
    ]
    return [ctx.record(p, sensitivity, [source]) for p in paths]
