"""Recovery study of the border model (issue 4): coverage of section-year unobserved crossings.

Usage: `./run python scripts/border_recovery.py --seeds 30 --out /tmp/borderrec_30.csv` (prints the coverage
summary as JSON; the CSV has one row per dataset × section × year, written after every dataset, see
`estim.studies.border_recovery.recovery_study`). ``--resume`` skips the datasets already in ``--out``. Each
dataset is fitted as ``estim fit`` fits models/border.toml (gate, retries, predictive checks); the sampler
options override the spec's first attempt; ``--spec`` fits another border spec on the same datasets;
``--workers N`` runs the datasets on a LocalCluster of N one-thread workers, ``--scheduler ADDRESS`` on a
running dask scheduler.
"""

import argparse
import json
import sys
import time

from estim.studies.border_fit import add_known_failure_argument, parse_known_failures
from estim.studies.border_recovery import DEFAULT_STUDY_SEED, coverage_summary, recovery_study
from estim.studies.distributed import (
    add_arguments,
    add_resume_arguments,
    check_arguments,
    optional_client,
    run_script,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30, help="number of simulated datasets")
    parser.add_argument("--seed", type=int, default=DEFAULT_STUDY_SEED, help="first simulator seed")
    parser.add_argument(
        "--draws", type=int, default=None, help="draws per chain (default: models/border.toml's)"
    )
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--target-accept", type=float, default=None)
    parser.add_argument(
        "--out", help="CSV file for the per-section-year results (written as it goes)"
    )
    add_resume_arguments(parser, "skip the datasets already in --out (made with the same options)")
    parser.add_argument("--quiet", action="store_true", help="no line per dataset")
    parser.add_argument(
        "--spec",
        help="fit this border spec instead of models/border.toml (e.g. another terrain pooling)",
    )
    add_known_failure_argument(parser)
    add_arguments(parser)
    args = parser.parse_args()
    check_arguments(parser, args, "out")

    start = time.perf_counter()
    with optional_client(args.workers, args.scheduler) as client:
        df = recovery_study(
            args.seeds,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            out=args.out,
            resume=args.resume,
            force=args.force,
            progress=not args.quiet,
            spec=args.spec,
            client=client,
            known_failures=parse_known_failures(args.known_failure),
        )
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    summary = coverage_summary(df)
    summary["settings"] = {
        "spec": args.spec or "models/border.toml",
        "seeds": args.seeds,
        "seed": args.seed,
        **{k: df.attrs[k] for k in ("draws", "tune", "chains", "target_accept")},
        "wall_seconds": time.perf_counter() - start,
    }
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":  # a LocalCluster spawns its workers
    run_script(main)
