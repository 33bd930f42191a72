"""Effect recovery of the measures' forecasts (estim.measures.recovery): simulate, fit before the measures,
forecast, compare with the simulated truth; per measure the coverage of the 90 % interval of the whole-border
change in unobserved crossings, with and without a mechanism the forecast lacks (displacement).

    ./run python scripts/effect_recovery.py --seeds 30 --out effect_recovery.csv [--draws 500 --tune 300]
"""

from __future__ import annotations

import argparse

import pandas as pd

from estim.measures.recovery import (
    DEFAULT_STUDY_SEED,
    effect_recovery,
    format_summary,
    summarise,
)
from estim.studies.distributed import add_resume_arguments, check_arguments, run_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=DEFAULT_STUDY_SEED)
    parser.add_argument("--draws", type=int, default=None, help="posterior draws per chain")
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--forecast-draws", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=None)
    parser.add_argument("--measures", default="all")
    parser.add_argument("--out", default="effect_recovery.csv")
    add_resume_arguments(parser, "skip the datasets already in --out (made with the same options)")
    parser.add_argument("--summary-only", action="store_true", help="summarise --out as it is")
    args = parser.parse_args()
    check_arguments(parser, args, *([] if args.summary_only else ["out"]))
    if args.summary_only:
        rows = pd.read_csv(args.out)
    else:
        rows = effect_recovery(
            args.seeds,
            args.seed,
            measures=args.measures,
            draws=args.draws,
            tune=args.tune,
            forecast_draws=args.forecast_draws,
            target_accept=args.target_accept,
            out=args.out,
            resume=args.resume,
            force=args.force,
            progress=True,
        )
    print(format_summary(summarise(rows)))


if __name__ == "__main__":
    run_script(main)
