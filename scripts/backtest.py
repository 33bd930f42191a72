"""Backtest of the border model's forecasts against AutoETS and SeasonalNaive, scored by CRPS (issue 12).

Usage: `.venv/bin/python scripts/backtest.py --out /tmp/backtest.csv` fits the border model on 2006–2015 of the
shipped data (data/synthetic, models/border.toml's settings; one fit, a minute or two), forecasts 2016–2017 and
prints the table (`estim.measures.backtest.format_backtest`); the CSV has one row per series (the whole border
and each section, see `estim.measures.backtest.backtest`).
"""

import argparse
import sys
import time

import xarray as xr

from estim.families.border.data_kind import records_data
from estim.io import atomic_path
from estim.measures.backtest import backtest, format_backtest
from estim.paths import REPO_ROOT, SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.run.spec import read_spec

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", help="CSV file for the per-series results")
parser.add_argument("--draws", type=int, default=1000, help="forecast draws of every forecaster")
parser.add_argument(
    "--seed", type=int, default=None, help="seed (default: models/border.toml's, 20061)"
)
parser.add_argument("--split", default="2016-01", help="first forecast month (YYYY-MM)")
parser.add_argument("--horizon", type=int, default=24, help="forecast months")
parser.add_argument("--cores", type=int, default=2)
parser.add_argument(
    "--target-accept",
    type=float,
    default=None,
    help="NUTS target acceptance (default: the spec's; the 2006-2015 fit needs 0.95 to pass the gate)",
)
parser.add_argument("--tune", type=int, default=None, help="warm-up draws (default: the spec's)")
args = parser.parse_args()

start = time.perf_counter()
seed = args.seed if args.seed is not None else read_spec(REPO_ROOT / "models" / "border.toml").seed
records = load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)
data = records_data(records)
truth = xr.load_dataset(SYNTHETIC_DIR / "truth.nc")
table = backtest(
    data,
    truth,
    split=args.split,
    horizon=args.horizon,
    draws=args.draws,
    seed=seed,
    cores=args.cores,
    target_accept=args.target_accept,
    tune=args.tune,
)
if args.out:
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"wrote {args.out}", file=sys.stderr)
print(format_backtest(table))
print(
    f"({time.perf_counter() - start:.0f} s: fit {table.attrs['fit_seconds']:.0f} s, forecast "
    f"{table.attrs['forecast_seconds']:.0f} s, baselines {table.attrs['baselines_seconds']:.0f} s)",
    file=sys.stderr,
)
