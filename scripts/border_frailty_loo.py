"""Is a person-level frailty of the apprehension hazard supported by the repeat counts? PSIS-LOO of the border
fits without frailty, with σ = 0.5 and with σ estimated, on the surveyed sections' repeat-apprehension
frequencies (one point per section × month), their stacking weights, and what each does to the whole-border
estimate (issue 17).

Usage: `./run python scripts/border_frailty_loo.py [--spec models/border.toml] [--out FILE.json]`. The fits
are those of `estim sensitivity` (spec, frailty_0.5, frailty_estimated; cached beside the spec and reused when
their provenance matches, otherwise fitted: ~4 min each on 2 cores).
"""

import argparse
import json
import sys
from pathlib import Path

from estim.families.border.frequency_loo import compare_frequency_fits
from estim.io import atomic_path
from estim.run.data import load_data
from estim.run.fit import fit
from estim.run.spec import read_spec
from estim.studies.sensitivity import design_of, variant_spec

VARIANTS = {
    "no frailty": "spec",
    "frailty 0.5": "frailty_0.5",
    "frailty estimated": "frailty_estimated",
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--spec", default="models/border.toml")
parser.add_argument("--out", help="write the table and estimates as JSON")
args = parser.parse_args()

spec = read_spec(args.spec)
design = design_of(spec)
data = load_data(spec)
fits = {}
for label, name in VARIANTS.items():
    vspec = variant_spec(
        spec,
        name,
        design.variants.get(name, {}),
        design.target_accept,
        design.variant_options.get(name, {}),
    )
    result = fit(
        vspec,
        out=spec.default_output().parent / f"{vspec.name}.nc",
        progress=lambda m: print(m, file=sys.stderr),
    )
    if not result.passed:
        print(f"{label}: the fit failed the diagnostics gate; left out", file=sys.stderr)
        continue
    fits[label] = result.idata
table, estimates = compare_frequency_fits(fits, data)
print(table.to_string(float_format=lambda x: f"{x:,.3f}"))
print(
    "\nwhole-border unobserved crossings per year (mean over the fitted years), median [90 % interval]:"
)
for name, e in estimates.items():
    print(f"  {name:18s} {e['median']:,.0f} [{e['lower']:,.0f}, {e['upper']:,.0f}]")
if args.out:
    result = {"loo": json.loads(table.to_json(orient="index")), "estimates": estimates}
    with atomic_path(Path(args.out)) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2))
