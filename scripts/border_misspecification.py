"""Misspecification study of the border model (issue 17): coverage and refusals over the simulator's retry
probability r × frailty spread σ.

Usage: `./run python scripts/border_misspecification.py --retry 0.6 0.8 1.0 --frailty 0 0.5 --seeds 20
--out /tmp/border_misspec.csv --resume` (~120 fits of 2–3 min each: run it in the background; the CSV, one row
per dataset × section × year, is rewritten after every dataset and ``--resume`` skips the (cell, seed) already
in it; ``--workers N`` runs the datasets on a LocalCluster of N one-thread workers, ``--scheduler ADDRESS`` on
a running dask scheduler). Prints the cell table as markdown (`estim.studies.border_misspecification.format_summary`) and the
issue's done-when; ``--summary CSV`` also writes the table; ``--summary-only`` only summarises ``--out``.
``--register-dating stay`` simulates registers that date an entry within the person's stay in Russia (the
default dates it a delay after the crossing): a further misspecification of the linkage's background, written
to its own ``--out`` (a file holds one dating).
"""

import argparse
import sys
import time

import pandas as pd

from estim.studies.border_fit import add_known_failure_argument, parse_known_failures
from estim.studies.border_misspecification import (
    DATINGS,
    FRAILTIES,
    N_SEEDS,
    REGISTER_DATING,
    RETRIES,
    format_summary,
    misspecification_study,
    misspecification_summary,
    requirements,
)
from estim.studies.border_recovery import DEFAULT_STUDY_SEED
from estim.studies.distributed import (
    add_arguments,
    add_resume_arguments,
    check_arguments,
    optional_client,
    run_script,
)
from estim.studies.rows import write_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retry", type=float, nargs="+", default=list(RETRIES), help="simulated r")
    parser.add_argument(
        "--frailty", type=float, nargs="+", default=list(FRAILTIES), help="simulated frailty sd σ"
    )
    parser.add_argument("--seeds", type=int, default=N_SEEDS, help="datasets per cell")
    parser.add_argument("--seed", type=int, default=DEFAULT_STUDY_SEED, help="first simulator seed")
    parser.add_argument(
        "--register-dating",
        choices=DATINGS,
        default=REGISTER_DATING,
        help="how the simulator dates register entries: a delay after the crossing (the default), or "
        "within the person's stay (a further misspecification; write it to its own --out)",
    )
    parser.add_argument("--out", help="CSV of the per-section-year results (written as it goes)")
    add_resume_arguments(
        parser, "skip the (cell, seed) already in --out (made with the same options)"
    )
    parser.add_argument("--summary", help="also write the cell table to this CSV")
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise --out without fitting anything"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per dataset")
    add_known_failure_argument(parser, "; the seed is matched in every cell this run fits")
    add_arguments(parser)
    args = parser.parse_args()
    check_arguments(parser, args, "summary", *([] if args.summary_only else ["out"]))

    start = time.perf_counter()
    if args.summary_only:
        if not args.out:
            parser.error("--summary-only reads --out")
        df = pd.read_csv(args.out, low_memory=False)
    else:
        failures = parse_known_failures(args.known_failure)
        known = {"known_failures": failures} if failures else {}
        with optional_client(args.workers, args.scheduler) as client:
            df = misspecification_study(
                args.retry,
                args.frailty,
                args.seeds,
                args.seed,
                register_dating=args.register_dating,
                out=args.out,
                resume=args.resume,
                force=args.force,
                progress=not args.quiet,
                client=client,
                **known,
            )
        if args.out:
            print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    summary = misspecification_summary(df)
    if "register_dating" in summary:
        print(f"register entries dated: {summary['register_dating'].iloc[0]}")
    if args.summary:
        write_rows(summary, args.summary)
    print(format_summary(summary))
    print()
    for requirement, met in requirements(summary).items():
        print(f"- {requirement}: {'not in this run' if met is None else 'yes' if met else 'NO'}")


if __name__ == "__main__":  # a LocalCluster spawns its workers
    run_script(main)
