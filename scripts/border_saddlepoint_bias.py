"""What the saddlepoint approximation of the unsurveyed totals' law does to a border fit's posterior (issue 18):
the fit's draws importance-weighted from the likelihood it was fitted with to the other one (exact law
everywhere, or the saddlepoint above its threshold), and the estimates compared.

Usage: `./run python scripts/border_saddlepoint_bias.py FIT.nc [--spec models/border.toml] [--fitted-above N]
[--out F.json]`. ``--fitted-above`` is the threshold the fit was made with (default: the spec's
``saddlepoint_above``, else the model's default); the fit is compared with the exact law everywhere, or, if it
was fitted with the exact law, with the default threshold.

Per raw draw, log w = ℓ_target − ℓ_fitted of the unsurveyed totals' term (the only term that differs);
the weights' effective sample size says whether the two posteriors overlap enough for the comparison. The
averaged posterior (r = 1 averaged in, `estim.families.border.repeated_trials`) takes the weight of the raw
draw each of its draws comes from. Reported: the shift of every parameter's posterior mean in posterior sd,
and the whole-border unobserved crossings over the period (median and 90 % interval), weighted against not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import xarray as xr

from estim.families.border.kernels import SADDLEPOINT_ABOVE
from estim.families.border.model import OBSERVED, build_border
from estim.families.border.repeated_trials import SOURCE
from estim.run.data import load_data
from estim.run.spec import read_spec
from estim.run.store import load


def totals_loglik(model: pm.Model, posterior: xr.Dataset) -> np.ndarray:
    """Σ over cells of the unsurveyed totals' log-likelihood, per (chain, draw)."""
    names = [rv.name for rv in model.free_RVs]
    tree = xr.DataTree.from_dict({"posterior": posterior[names]})
    ll = pm.compute_log_likelihood(
        tree, var_names=[OBSERVED], model=model, extend_inferencedata=False, progressbar=False
    )
    da = ll[OBSERVED]
    return da.sum([d for d in da.dims if d not in ("chain", "draw")]).values


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: list[float]) -> list[float]:
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) - 0.5 * weights[order]
    return [float(np.interp(q, cdf, values[order])) for q in qs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", help="a saved border fit (.nc)")
    parser.add_argument("--spec", default="models/border.toml")
    parser.add_argument(
        "--fitted-above",
        type=int,
        help="the saddlepoint threshold the fit was made with (0: exact law)",
    )
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args(argv)

    spec = read_spec(args.spec)
    data = load_data(spec)
    tree = load(args.fit)
    posterior = tree["posterior"].to_dataset()
    fitted_with = spec.options.get("saddlepoint_above", SADDLEPOINT_ABOVE)
    if args.fitted_above is not None:
        fitted_with = args.fitted_above or False
    options = {k: v for k, v in spec.options.items() if k != "saddlepoint_above"}
    target = False if fitted_with is not False else SADDLEPOINT_ABOVE
    ll = {}
    for name, above in (("fitted", fitted_with), ("target", target)):
        model = build_border(data, dict(spec.priors), **options, saddlepoint_above=above)
        ll[name] = totals_loglik(model, posterior)
    log_w = (ll["target"] - ll["fitted"]).reshape(-1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    shifts = {}
    for name in (rv.name for rv in model.free_RVs):
        values = posterior[name].values.reshape(w.size, -1)
        sd = values.std(axis=0)
        moved = (w @ values - values.mean(axis=0)) / np.where(sd > 0, sd, np.inf)
        shifts[name] = float(np.max(np.abs(moved)))
    # the averaged posterior's draws carry the weight of the raw draw they come from
    source = posterior[SOURCE].values.reshape(-1) if SOURCE in posterior else None
    take = np.arange(w.size) if source is None else np.where(source >= 0, source, np.arange(w.size))
    wa = w[take] / w[take].sum()
    period = posterior["unobserved_border_year"].sum("year").values.reshape(-1).astype(float)
    plain = [float(x) for x in np.quantile(period, [0.05, 0.5, 0.95])]
    weighted = weighted_quantiles(period, wa, [0.05, 0.5, 0.95])
    report = {
        "fit": args.fit,
        "fitted_with_saddlepoint_above": fitted_with,
        "target_saddlepoint_above": target,
        "loglik_difference_mean": float(log_w.mean()),
        "loglik_difference_sd": float(log_w.std()),
        "importance_ess": ess,
        "draws": int(w.size),
        "largest_mean_shift_in_sd": max(shifts.values()),
        "parameter_of_largest_shift": max(shifts, key=shifts.get),
        "period_unobserved": {"fitted": plain, "reweighted": weighted},
    }
    print(
        f"log-likelihood of the totals, target − fitted: mean {log_w.mean():.4f}, sd {log_w.std():.4f}; "
        f"importance ESS {ess:.0f} of {w.size}"
    )
    print(
        f"largest shift of a posterior mean: {report['largest_mean_shift_in_sd']:.4f} sd "
        f"({report['parameter_of_largest_shift']})"
    )
    print(
        "whole-border unobserved over the period, 5 / 50 / 95 %: fitted "
        + " / ".join(f"{x:,.0f}" for x in plain)
        + "; reweighted "
        + " / ".join(f"{x:,.0f}" for x in weighted)
    )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
