"""Recovery study of the multiple-list models (dga's BMA, LCMCR's latent classes): coverage of N's 90 % interval.

Usage: `.venv/bin/python scripts/lists_recovery.py --out /work/lists_recovery/rows.csv` runs (or resumes: rows
already in the CSV are not redone; a CSV made with other options — seed, latent-class sampler — or that is not
this study's is refused, untouched: each row records a hash of its options in its ``settings`` column) every
design × model, BMA first, then prints the summary per design ×
model (`estim.studies.lists_recovery`). `--summary-only` prints the summary of the rows so far.
`--tables DIR` writes the simulated tables of datasets 0…--datasets − 1 of every design as CSV files
(DESIGN__DATASET.csv) and fits nothing: `Rscript scripts/lists_recovery_lcmcr.R DIR` fits LCMCR to them, so
that the latent-class rows can be compared with the R package on the same tables.
"""

import argparse
import sys
import time

import pandas as pd

from estim.errors import EstimInputError
from estim.io import unwritable
from estim.studies.distributed import positive_int
from estim.studies.lists_recovery import (
    MODELS,
    SEED,
    STUDY_DESIGNS,
    LatentClassSettings,
    read_rows,
    run_study,
    summary,
    write_tables,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="CSV of the rows (appended to, resumed from)")
parser.add_argument("--datasets", type=positive_int, default=100)
parser.add_argument("--seed", type=int, default=SEED, help="dataset i uses seed + i")
parser.add_argument("--design", action="append", choices=list(STUDY_DESIGNS), help="default: all")
parser.add_argument(
    "--model", action="append", choices=list(MODELS), help="default: all, BMA first"
)
parser.add_argument(
    "--draws", type=positive_int, default=1000, help="latent class: draws per chain"
)
parser.add_argument("--tune", type=int, default=1000, help="latent class: warm-up draws per chain")
parser.add_argument("--chains", type=positive_int, default=4, help="latent class: chains")
parser.add_argument(
    "--cores", type=positive_int, default=1, help="latent class: threads for the chains"
)
parser.add_argument(
    "--summary-only", action="store_true", help="summarise the rows so far, fit nothing"
)
parser.add_argument("--tables", help="write the simulated tables as CSV files here, fit nothing")
args = parser.parse_args()
if not args.summary_only and not args.tables and unwritable(args.out):
    parser.error(f"--out {args.out}: cannot be written: {unwritable(args.out)}")


def fail(error: Exception) -> None:
    parser.exit(2, f"{parser.prog}: error: {error}\n")


start = time.perf_counter()
if args.tables:
    written = write_tables(
        args.tables,
        designs=args.design or list(STUDY_DESIGNS),
        n_datasets=args.datasets,
        seed=args.seed,
    )
    print(f"{len(written)} tables in {args.tables}", file=sys.stderr)
    sys.exit(0)
if args.summary_only:
    try:
        rows = read_rows(args.out)
    except EstimInputError as e:
        fail(e)
else:
    settings = LatentClassSettings(
        draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores
    )
    print(f"latent class: {settings}", file=sys.stderr, flush=True)
    try:
        rows = run_study(
            args.out,
            designs=args.design or list(STUDY_DESIGNS),
            models=args.model or list(MODELS),
            n_datasets=args.datasets,
            seed=args.seed,
            settings=settings,
            progress=lambda line: print(
                f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True
            ),
        )
    except EstimInputError as e:
        fail(e)
with pd.option_context("display.width", 200, "display.max_columns", 20):
    print(summary(rows).round(4).to_string(index=False))
print(f"{len(rows)} rows, {time.perf_counter() - start:.0f} s", file=sys.stderr)
