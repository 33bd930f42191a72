"""Is a person-level frailty of the apprehension hazard supported by the repeat counts? PSIS-LOO of the border
fits without frailty, with σ = 0.5 and with σ estimated, on the surveyed sections' repeat-apprehension
frequencies (one point per section × month), their stacking weights, and what each does to the whole-border
estimate (issue 17).

Usage: `./run python scripts/border_frailty_loo.py [--spec models/border.toml] [--out FILE.json]`. The fits
are those of `estim sensitivity` (spec, frailty_0.5, frailty_estimated; cached beside the spec and reused when
their provenance matches, otherwise fitted: 3–40 min each on 2 cores).

`--simulate SEED [--sim-retry R] [--sim-frailty S]` fits a simulated dataset instead (the recovery study's
dataset SEED, `estim.studies.border_recovery.simulate_dataset`, with the simulator's r and frailty spread
replaced; by default r = 1 and σ = 0.5, a world *with* a frailty), nothing cached, and compares each fit's
interval with the truth: does the estimated frailty fit, cover and win the LOO where there is one?
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from estim.families.border.frequency_loo import compare_frequency_fits
from estim.families.border.report_years import months_by_year, span_text
from estim.io import atomic_path
from estim.run.data import load_data
from estim.run.fit import fit
from estim.run.spec import read_spec
from estim.studies.border_recovery import (
    fit_dataset,
    predictive_verdicts,
    section_year_table,
    simulate_dataset,
)
from estim.studies.sensitivity import design_of, variant_spec

VARIANTS = {
    "no frailty": "spec",
    "frailty 0.5": "frailty_0.5",
    "frailty estimated": "frailty_estimated",
}


def truth_per_year(rows: pd.DataFrame, months: np.ndarray) -> float:
    """The simulator's true whole-border unobserved crossings per year beside the estimates: the truth's
    total over the data's `months` (`section_year_table`'s ``border_period_truth``) × 12 / their number,
    the rate `compare_frequency_fits` gives the estimates (with whole years the mean over the years, to the
    bit; over records that stop mid-year not the part year's months counted as a year)."""
    return int(rows["border_period_truth"].iloc[0]) * 12 / np.asarray(months).size


def estimate_heading(months: np.ndarray) -> str:
    """The heading of the estimates: per year, a mean over the fitted years or a rate over the fitted months
    (`report_years.span_text`)."""
    months = np.asarray(months).astype("datetime64[M]")
    years = np.unique(months.astype("datetime64[Y]").astype(int) + 1970)
    partial = any(len(m) < 12 for m in months_by_year(months, years).values())
    span = span_text(months, years, partial)
    return f"whole-border unobserved crossings per year ({span}), median [90 % interval]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="models/border.toml")
    parser.add_argument("--out", help="write the table and estimates as JSON")
    parser.add_argument(
        "--simulate", type=int, metavar="SEED", help="fit simulated dataset SEED instead"
    )
    parser.add_argument(
        "--sim-retry", type=float, default=1.0, help="the simulator's r (with --simulate)"
    )
    parser.add_argument(
        "--sim-frailty",
        type=float,
        default=0.5,
        help="the simulator's frailty spread σ (with --simulate)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="fits to compare",
    )
    args = parser.parse_args(argv)

    spec = read_spec(args.spec)
    design = design_of(spec)
    truth = None
    if args.simulate is None:
        data = load_data(spec)
    else:
        scratch = tempfile.mkdtemp(prefix="estim-frailty-loo-")
        data, truth = simulate_dataset(
            args.simulate,
            scratch,
            {"retry_probability": args.sim_retry, "apprehension_frailty_sd": args.sim_frailty},
        )
    fits = {}
    checks: dict[str, dict] = {}
    for label in args.variants:
        name = VARIANTS[label]
        vspec = variant_spec(
            spec,
            name,
            design.variants.get(name, {}),
            design.target_accept,
            design.variant_options.get(name, {}),
        )
        if truth is None:
            result = fit(
                vspec,
                out=spec.default_output().parent / f"{vspec.name}.nc",
                progress=lambda m: print(m, file=sys.stderr),
            )
            passed, tree = result.passed, result.idata
        else:
            outcome = fit_dataset(data, seed=args.simulate, spec=vspec)
            passed, tree = outcome.verdict.passed, outcome.tree
            rows = section_year_table(data, truth, tree["posterior"]["unobserved_section_year"])
            years = rows.drop_duplicates("year")
            checks[label] = {
                "gate_passed": bool(passed),
                "gate_failed": list(outcome.verdict.failed),
                "attempts": outcome.attempts,
                "fit_seconds": round(outcome.fit_seconds, 1),
                "predictive_checks": predictive_verdicts(tree),
                "truth_per_year": truth_per_year(rows, data["month"].values),
                "border_years_covered": f"{int(years['border_covered'].sum())}/{len(years)}",
                "border_period_covered": bool(rows["border_period_covered"].iloc[0]),
                "section_years_covered": f"{int(rows['covered'].sum())}/{len(rows)}",
            }
            print(f"{label}: {json.dumps(checks[label])}", file=sys.stderr)
        if not passed:
            print(f"{label}: the fit failed the diagnostics gate; left out", file=sys.stderr)
            continue
        fits[label] = tree
    table, estimates = compare_frequency_fits(fits, data)
    print(table.to_string(float_format=lambda x: f"{x:,.3f}"))
    print(f"\n{estimate_heading(data['month'].values)}:")
    for name, e in estimates.items():
        truth_note = ""
        if truth is not None:
            t = next(iter(checks.values()))["truth_per_year"]
            truth_note = (
                f"  truth {t:,.0f}: {'covered' if e['lower'] <= t <= e['upper'] else 'MISSED'}"
            )
        print(f"  {name:18s} {e['median']:,.0f} [{e['lower']:,.0f}, {e['upper']:,.0f}]{truth_note}")
    for label, c in checks.items():
        print(f"  {label}: {c}")
    if args.out:
        result = {
            "loo": json.loads(table.to_json(orient="index")),
            "estimates": estimates,
            "simulated": None
            if truth is None
            else {"seed": args.simulate, "retry": args.sim_retry, "frailty": args.sim_frailty},
            "fits": checks,
        }
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
