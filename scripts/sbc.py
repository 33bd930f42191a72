"""Simulation-based calibration of the single-register, closed and multiple-list families (docs/sbc.md).

Usage: `nice -n 19 .venv/bin/python scripts/sbc.py --families ztpoisson Mt lists_latent_class --replicates 200
--out paper/inputs/sbc/sbc.csv --report paper/inputs/sbc/report.json --plots paper/generated/figures/sbc
--workers 1` (one row per replicate × ranked quantity, written as replicates finish; see
`estim.studies.sbc`). ``--resume`` keeps the replicates already in ``--out``, refusing a file whose rows were
made with other options (families, seed, sampler: each row records a hash of them in its ``settings`` column;
more replicates may be asked for); with every replicate there it only rewrites the report and the plots.
Without ``--resume`` a non-empty ``--out`` is refused unless ``--force``. The report (``.json``, or Markdown for
``.md``) gives the pass/fail of each family and quantity under the rule of `estim.studies.sbc_ranks`; the plots
are ArviZ's ECDF-difference (PIT) plots, one file per family. ``--families border`` calibrates the border model
on its reduced design (`estim.studies.sbc_border`; docs/sbc.md, "The border model").
"""

import argparse
import json
import sys
import time
from pathlib import Path

from estim.errors import EstimInputError
from estim.io import atomic_write_text
from estim.studies.distributed import (
    add_arguments,
    add_resume_arguments,
    check_arguments,
    optional_client,
    positive_int,
)
from estim.studies.rows import write_rows
from estim.studies.sbc import SEED, sbc_study, study_families, study_report
from estim.studies.sbc_ranks import ALPHA, rank_plot, verdict_markdown

MAIN = ("ztpoisson", "Mt", "lists_latent_class")


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        nargs="+",
        default=list(MAIN),
        choices=study_families(),
        help=f"families to calibrate (default: {' '.join(MAIN)})",
    )
    parser.add_argument("--replicates", type=positive_int, default=200)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", help="CSV of the rows, written as replicates finish")
    add_resume_arguments(
        parser, "keep the replicates already in --out (made with the same options)"
    )
    parser.add_argument("--plots", help="folder for the ECDF-difference plots (sbc_FAMILY.png)")
    parser.add_argument("--report", help="report file: .json, or .md for Markdown")
    parser.add_argument(
        "--backend", choices=["jax", "numba"], default=None, help="nutpie backend (default numba)"
    )
    parser.add_argument(
        "--alpha", type=_level, default=ALPHA, help="family-wise level of the test, in (0, 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line per replicate")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="fit nothing: write --report and --plots from the rows in --out as they are (a committed study's, "
        "say, which may predate the rows' settings column)",
    )
    add_arguments(parser)
    args = parser.parse_args()
    twice = sorted({f for f in args.families if args.families.count(f) > 1})
    if twice:
        parser.error(
            f"--families: {', '.join(twice)} given twice (each replicate would count twice)"
        )
    check_arguments(parser, args, "out", "report", "plots")

    start = time.perf_counter()
    if args.report_only:
        df = _rows_as_they_are(parser, args)
    else:
        df = _study(parser, args)
        if args.out:
            write_rows(df, args.out)
            print(f"wrote {args.out}", file=sys.stderr)
    _report(args, df, start)


def _rows_as_they_are(parser, args):
    import pandas as pd

    if args.resume or args.force or not args.out or not Path(args.out).is_file():
        parser.error(
            "--report-only reads the rows of an existing --out, without --resume or --force"
        )
    rows = pd.read_csv(args.out, low_memory=False)
    if "family" not in rows or "rank" not in rows:
        parser.exit(
            2, f"{parser.prog}: error: {args.out}: not the rows of an SBC (no family, rank)\n"
        )
    absent = [f for f in args.families if f not in set(rows["family"])]
    if absent:
        parser.exit(2, f"{parser.prog}: error: {args.out} has no rows of {', '.join(absent)}\n")
    return rows[rows["family"].isin(args.families)]


def _study(parser, args):
    try:
        with optional_client(args.workers, args.scheduler) as client:
            df = sbc_study(
                args.families,
                replicates=args.replicates,
                seed=args.seed,
                out=args.out,
                resume=args.resume,
                force=args.force,
                client=client,
                progress=not args.quiet,
                backend=args.backend,
            )
    except EstimInputError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return df


def _report(args, df, start):
    plots = {}
    if args.plots:
        from estim.report.figures import save_figure

        for family in args.families:
            rows = df[df["family"] == family]
            if rows.empty:
                continue
            pc = rank_plot(rows, args.alpha, title=f"SBC: {family}")
            path = Path(args.plots) / f"sbc_{family}.png"
            plots[family] = str(save_figure(pc.viz["figure"].item(), path))
            print(f"wrote {path}", file=sys.stderr)
    report = study_report(df, alpha=args.alpha, plots=plots, backend=args.backend)
    report.update(
        replicates_requested=args.replicates,
        seed=args.seed,
        wall_seconds=round(time.perf_counter() - start, 1),
        families_requested=list(args.families),
    )
    text = json.dumps(report, indent=2)
    if args.report:
        body = verdict_markdown(report) if args.report.endswith(".md") else text + "\n"
        atomic_write_text(args.report, body)
        print(f"wrote {args.report}", file=sys.stderr)
    print(text)


if __name__ == "__main__":  # a LocalCluster spawns its workers
    main()
