"""Simulation-based calibration of the single-register, closed and multiple-list families (docs/sbc.md).

Usage: `nice -n 19 .venv/bin/python scripts/sbc.py --families ztpoisson Mt lists_latent_class --replicates 200
--out paper/inputs/sbc/sbc.csv --report paper/inputs/sbc/report.json --plots paper/generated/figures/sbc
--workers 1` (one row per replicate × ranked quantity, written as replicates finish; see
`estim.studies.sbc`). ``--resume`` keeps the replicates already in ``--out`` (same family, number and seed);
with every replicate there it only rewrites the report and the plots. The report (``.json``, or Markdown for
``.md``) gives the pass/fail of each family and quantity under the rule of `estim.studies.sbc_ranks`; the plots
are ArviZ's ECDF-difference (PIT) plots, one file per family. ``--families border`` calibrates the border model
on its reduced design (`estim.studies.sbc_border`; docs/sbc.md, "The border model").
"""

import argparse
import json
import sys
import time
from pathlib import Path

from estim.io import atomic_write_text
from estim.studies.distributed import add_arguments, optional_client
from estim.studies.rows import write_rows
from estim.studies.sbc import SEED, sbc_study, study_families, study_report
from estim.studies.sbc_ranks import ALPHA, rank_plot, verdict_markdown

MAIN = ("ztpoisson", "Mt", "lists_latent_class")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        nargs="+",
        default=list(MAIN),
        choices=study_families(),
        help=f"families to calibrate (default: {' '.join(MAIN)})",
    )
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", help="CSV of the rows, written as replicates finish")
    parser.add_argument(
        "--resume", action="store_true", help="keep the replicates already in --out"
    )
    parser.add_argument("--plots", help="folder for the ECDF-difference plots (sbc_FAMILY.png)")
    parser.add_argument("--report", help="report file: .json, or .md for Markdown")
    parser.add_argument(
        "--backend", choices=["jax", "numba"], default=None, help="nutpie backend (default numba)"
    )
    parser.add_argument("--alpha", type=float, default=ALPHA, help="family-wise level of the test")
    parser.add_argument("--quiet", action="store_true", help="no progress line per replicate")
    add_arguments(parser)
    args = parser.parse_args()

    start = time.perf_counter()
    with optional_client(args.workers, args.scheduler) as client:
        df = sbc_study(
            args.families,
            replicates=args.replicates,
            seed=args.seed,
            out=args.out,
            resume=args.resume,
            client=client,
            progress=not args.quiet,
            backend=args.backend,
        )
    if args.out:
        write_rows(df, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
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
