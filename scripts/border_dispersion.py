"""The test of the repeat counts' geometric law (`estim.families.border.repeat_dispersion`) on simulated
borders: its size without a frailty and its power with one (docs/design.md §6).

Usage:
  ./run python scripts/border_dispersion.py --retry 1.0 0.8 0.6 --frailty 0 0.5 --seeds 20 --out dispersion.csv
  ./run python scripts/border_dispersion.py --retry 1.0 --frailty 0.1 0.2 --seeds 5

Dataset i of a cell is the misspecification study's (`estim.studies.border_recovery.simulate_dataset`:
`perturbed_config(seed + i)`, simulator seed seed + i, r and σ replaced), so its z is the one that study's row
records. Nothing is fitted: ~1–3 s a dataset. Prints z, p and the variance ratio per dataset, then per cell the
z's mean, sd and range and how many datasets failed.
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from estim.studies.border_recovery import (
    DEFAULT_STUDY_SEED,
    dispersion_before_fit,
    simulate_dataset,
)
from estim.studies.rows import write_rows


def dispersion_rows(
    retries: list[float], frailties: list[float], seeds: int, first: int = DEFAULT_STUDY_SEED
) -> pd.DataFrame:
    """One row per simulated border: its design and the test's ``dispersion_*`` columns."""
    rows = []
    for r in retries:
        for sigma in frailties:
            for seed in range(first, first + seeds):
                with tempfile.TemporaryDirectory(prefix="dispersion_") as folder:
                    data, _ = simulate_dataset(
                        seed, folder, {"retry_probability": r, "apprehension_frailty_sd": sigma}
                    )
                row = {"sim_retry": r, "sim_frailty": sigma, "sim_seed": seed}
                rows.append({**row, **dispersion_before_fit(data)})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def cell_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell (r, σ): datasets, z's mean, sd, min and max, the median variance ratio, and the failures."""
    return rows.groupby(["sim_retry", "sim_frailty"]).agg(
        datasets=("dispersion_z", "size"),
        z_mean=("dispersion_z", "mean"),
        z_sd=("dispersion_z", "std"),
        z_min=("dispersion_z", "min"),
        z_max=("dispersion_z", "max"),
        ratio_median=("dispersion_ratio", "median"),
        failed=("ppc_repeat_dispersion", lambda v: int((~v.astype(bool)).sum())),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retry", type=float, nargs="+", default=[1.0], help="simulated r")
    parser.add_argument("--frailty", type=float, nargs="+", default=[0.0], help="simulated σ")
    parser.add_argument("--seeds", type=int, default=5, help="datasets per cell")
    parser.add_argument("--seed", type=int, default=DEFAULT_STUDY_SEED, help="first simulator seed")
    parser.add_argument("--out", help="CSV of the rows")
    args = parser.parse_args()
    rows = dispersion_rows(args.retry, args.frailty, args.seeds, args.seed)
    if args.out:
        write_rows(rows, args.out)
    print(cell_table(rows).round(3).to_string())


if __name__ == "__main__":
    main()
