"""Write docs/calibration.md: simulated records at the default seed against the public figures.

Usage: `./run python scripts/calibration_table.py --out docs/calibration.md` (or `> docs/calibration.md`).
"""

import argparse
import sys

from estim import simulate as sim
from estim.io import atomic_write_text

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=sim.DEFAULT_SEED)
parser.add_argument("--out", help="file to write (default: standard output)")
args = parser.parse_args()
text = sim.calibration_markdown(sim.simulate(seed=args.seed))
if args.out:
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
else:
    sys.stdout.write(text)
