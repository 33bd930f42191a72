"""Parameter recovery study: coverage of the 90 % interval for N over simulated datasets of one family.

Usage: `.venv/bin/python scripts/recovery.py --family ztpoisson --datasets 100 --out ztpoisson.csv`
(prints the coverage summary; the CSV has one row per dataset, see `estim.studies.recovery.recovery_study`).
Single-register families and the closed-population ones (M0, Mt, Mb, Mh_logitnormal, Mh_mixture, Mth, Mtbh).
``--resume`` skips the seeds already in ``--out`` (refused when its rows were made with other options: each row
records a hash of them in its ``settings`` column); without it a non-empty ``--out`` is refused unless
``--force``. ``--workers N`` fits the datasets on a LocalCluster of N
one-thread workers (each compiles the model once), ``--scheduler ADDRESS`` on a running dask scheduler.
"""

import argparse
import json
import sys
import time

from estim.errors import EstimInputError
from estim.studies.distributed import (
    add_arguments,
    add_resume_arguments,
    check_arguments,
    optional_client,
    positive_int,
)
from estim.studies.recovery import recovery_study, study_families, study_report
from estim.studies.rows import write_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=study_families())
    parser.add_argument("--datasets", type=positive_int, default=100)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--population-size",
        type=positive_int,
        default=None,
        help="true N (default: 2000 for single-register families, 150 for closed-population ones)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="true parameter (e.g. lambda, alpha, omega; p, c, p1…p6, sigma_h, behaviour), e.g. --param "
        "lambda=1.0; repeatable",
    )
    parser.add_argument(
        "--covariate-effect",
        type=float,
        default=None,
        help="simulate and fit a binary covariate with this log rate ratio",
    )
    parser.add_argument(
        "--draws", type=positive_int, default=None, help="draws per chain (default: per family)"
    )
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--chains", type=positive_int, default=2)
    parser.add_argument(
        "--backend",
        choices=["jax", "numba"],
        default="numba",
        help="nutpie backend (numba, the default: ~30 s compile, then 3-4x faster sampling than jax)",
    )
    parser.add_argument(
        "--target-accept", type=float, default=None, help="default: per family (0.9 unless listed)"
    )
    parser.add_argument("--out", help="CSV file for the per-dataset results")
    parser.add_argument("--quiet", action="store_true", help="no progress line per dataset")
    add_resume_arguments(parser, "skip the seeds already in --out (made with the same options)")
    add_arguments(parser)
    args = parser.parse_args()
    check_arguments(parser, args, "out")

    true_params = {}
    for item in args.param:
        name, equals, value = item.partition("=")
        try:
            true_params[name.strip()] = float(value)
        except ValueError:
            parser.error(f"--param {item!r}: give NAME=VALUE with a number, e.g. lambda=1.0")
        if not equals or not name.strip():
            parser.error(f"--param {item!r}: give NAME=VALUE with a number, e.g. lambda=1.0")

    try:
        df = _run(args, true_params)
    except (EstimInputError, ValueError) as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    if args.out:
        write_rows(df, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    print(json.dumps({**study_report(df), "wall_seconds": df.attrs["wall"]}, indent=2))


def _run(args, true_params):
    start = time.perf_counter()
    with optional_client(args.workers, args.scheduler) as client:
        df = recovery_study(
            args.family,
            n_datasets=args.datasets,
            seed=args.seed,
            true_params=true_params,
            population_size=args.population_size,
            covariate_effect=args.covariate_effect,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            progress=not args.quiet,
            backend=args.backend,
            target_accept=args.target_accept,
            partial_out=args.out,
            resume=args.resume,
            force=args.force,
            client=client,
        )
    df.attrs["wall"] = time.perf_counter() - start
    return df


if __name__ == "__main__":  # a LocalCluster spawns its workers
    main()
