"""Where the border model's recovery errors come from, section by section (docs/design.md §4).

Usage:
  ./run python scripts/border_section_errors.py --rows paper/inputs/border_misspecification.csv.gz
  ./run python scripts/border_section_errors.py --rows paper/inputs/border_misspecification.csv.gz \
      --variant TERRAIN_POOLED.csv

Reads a recovery study's rows (one per dataset × section × year, as `scripts/border_recovery.py` and
`scripts/border_misspecification.py` write them; only the design r = 1, σ = 0 is used) and prints:

* per section, the median over the datasets of the section's mean log error, log(median / truth) averaged
  over its years, in per cent, with its section-years' coverage;
* the regression of an unsurveyed section's mean log error on its true journey level's deviation from the
  sections' mean (α_s − mean α, read from `perturbed_config(seed)`, the parameters that dataset was simulated
  from): the slope is the partial pooling's pull, per unit of deviation;
* with ``--variant``, the same per-section errors and coverages for another spec's fits of the same datasets,
  paired on ``sim_seed`` (only the seeds both files hold), and the whole border's years and period totals
  covered by each.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import numpy as np
import pandas as pd

from estim.simulate.perturb import perturbed_config


def baseline(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of datasets simulated under the model's own assumptions (r = 1, no frailty) that were fitted."""
    keep = rows["year"] >= 0  # a dataset that raised has one row, year −1
    if "sim_retry" in rows:
        keep &= (rows["sim_retry"] == 1.0) & (rows["sim_frailty"] == 0.0)
    return rows[keep]


def section_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset (``sim_seed``) × section: the mean over years of log(median / truth), in per cent,
    and whether the section was surveyed."""
    d = rows.assign(log_error=100 * np.log(rows["median"] / rows["truth"]))
    return d.groupby(["sim_seed", "section"], as_index=False).agg(
        log_error=("log_error", "mean"), surveyed=("surveyed", "first")
    )


def by_section(rows: pd.DataFrame) -> pd.DataFrame:
    """Per section: the median over the datasets of its mean log error (%) and its section-years' coverage."""
    errors = (
        section_errors(rows).groupby("section")["log_error"].median().rename("median_error_pct")
    )
    covered = rows.groupby("section")["covered"].mean().rename("coverage")
    return pd.concat([errors, covered], axis=1).sort_values("median_error_pct")


def journey_level_deviations(seeds: Iterable[int]) -> pd.DataFrame:
    """Per simulator seed × section, the true journey level's deviation from the sections' mean, α_s − mean α
    (the recovery datasets draw each α_s within ± 0.2 of its default: `perturbed_config`)."""
    out = []
    for seed in seeds:
        alpha = pd.Series(perturbed_config(int(seed)).section_effect, dtype=float)
        dev = alpha - alpha.mean()
        out.append(
            pd.DataFrame({"sim_seed": int(seed), "section": dev.index, "alpha_dev": dev.to_numpy()})
        )
    return pd.concat(out, ignore_index=True)


def pull_regression(rows: pd.DataFrame) -> dict[str, float]:
    """Least-squares fit of an unsurveyed section's mean log error (%) on its true α_s − mean α over every
    dataset × unsurveyed section: intercept, slope (% per unit of deviation), R² and the number of points."""
    errors = section_errors(rows)
    errors = errors[~errors["surveyed"].astype(bool)]
    joined = errors.merge(
        journey_level_deviations(errors["sim_seed"].unique()), on=["sim_seed", "section"]
    )
    x, y = joined["alpha_dev"].to_numpy(), joined["log_error"].to_numpy()
    design = np.column_stack([np.ones_like(x), x])
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ np.array([intercept, slope])
    r2 = 1.0 - float((residual**2).sum() / ((y - y.mean()) ** 2).sum())
    return {
        "intercept": float(intercept),
        "slope": float(slope),
        "r2": r2,
        "points": int(len(joined)),
    }


def whole_border(rows: pd.DataFrame) -> dict[str, float]:
    """The whole border's years and period totals covered, and the period interval's median width (%)."""
    years = rows.drop_duplicates(["sim_seed", "year"])
    period = rows.drop_duplicates("sim_seed")
    width = (period["border_period_q95"] - period["border_period_q05"]) / period[
        "border_period_median"
    ]
    return {
        "datasets": int(len(period)),
        "section_years_covered": int(rows["covered"].sum()),
        "section_years": int(len(rows)),
        "border_years_covered": int(years["border_covered"].sum()),
        "border_years": int(len(years)),
        "periods_covered": int(period["border_period_covered"].sum()),
        "period_width_pct": float(100 * width.median()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", required=True, help="a recovery or misspecification study's CSV")
    parser.add_argument("--variant", help="another spec's recovery rows, paired on sim_seed")
    args = parser.parse_args(argv)
    base = baseline(pd.read_csv(args.rows))
    frames = {"shipped": base}
    if args.variant:
        variant = baseline(pd.read_csv(args.variant))
        seeds = set(base["sim_seed"]) & set(variant["sim_seed"])
        frames = {
            "shipped": base[base["sim_seed"].isin(seeds)],
            "variant": variant[variant["sim_seed"].isin(seeds)],
        }
    for name, rows in frames.items():
        if rows.empty:  # a clear message, not a traceback from an empty regression
            parser.error(
                f"{name}: no fitted dataset with r = 1 and no frailty"
                + (" shared by --rows and --variant (paired on sim_seed)" if args.variant else "")
            )
    for name, rows in frames.items():
        print(f"== {name}: {whole_border(rows)}")
        print(by_section(rows).round(3).to_string())
    for name, rows in frames.items():  # with --variant, on the paired datasets only
        fit = pull_regression(rows)
        print(
            f"== pull ({name}): an unsurveyed section's mean log error = {fit['intercept']:+.2f} "
            f"{fit['slope']:+.2f} × (α_s − mean α) %, R² {fit['r2']:.2f}, {fit['points']} dataset-sections"
        )


if __name__ == "__main__":
    main()
