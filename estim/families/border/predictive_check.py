"""The border fit's posterior predictive checks: coverage of the monthly totals, the repeat frequencies and the
linked journeys' sighting patterns by their predictive intervals, with a verdict per statistic
(`estim check` on a border fit, through `estim.families.border.report`)."""

from __future__ import annotations

import json
from typing import Any

import xarray as xr

from estim.intervals import equal_tailed


def predictive_coverage(tree: xr.DataTree, prob: float = 0.9) -> dict[str, Any]:
    """Share of observed monthly apprehension totals (per section), of surveyed repeat-apprehension
    frequencies f_k and (fits with the register linkage) of the linked journeys per window × surveyed
    section × sighting pattern inside their posterior predictive `prob` intervals; for the linkage also the
    posterior predictive p-value of its χ² discrepancy (``p_value``, `generated.replicate_linkage`)."""
    if "posterior_predictive" not in tree.children:
        return {}
    pp = tree["posterior_predictive"].to_dataset()
    obs = tree["observed_data"].to_dataset()
    out: dict[str, Any] = {}
    for name in ("monthly_apprehensions", "frequency", "linkage"):
        if name not in pp or name not in obs:
            continue  # a fit without linkage, or saved before the linkage was checked
        q = equal_tailed(pp[name], prob)
        inside = (q.sel(quantile="lower") <= obs[name]) & (obs[name] <= q.sel(quantile="upper"))
        out[name] = {"cells": int(inside.size), "inside": float(inside.mean())}
    if "linkage" in out and "linkage_chi2_observed" in pp:
        exceeds = pp["linkage_chi2_replicated"] >= pp["linkage_chi2_observed"]
        out["linkage"]["p_value"] = float(exceeds.mean())
    return out


def predictive_table(tree: xr.DataTree, prob: float = 0.9) -> list[dict[str, Any]]:
    """Observed repeat-apprehension frequencies f_k of the surveyed sections beside their posterior predictive
    median and `prob` interval."""
    pp = tree["posterior_predictive"].to_dataset()["frequency"]
    obs = tree["observed_data"].to_dataset()["frequency"]
    q = equal_tailed(pp, prob)
    rows = []
    for s in obs["surveyed_section"].values:
        for k in obs["k"].values:
            o = int(obs.sel(surveyed_section=s, k=k))
            qq = q.sel(surveyed_section=s, k=k)
            if o == 0 and float(qq.sel(quantile="upper")) == 0:
                continue
            rows.append(
                {
                    "section": str(s),
                    "k": int(k),
                    "observed": o,
                    **{n: float(qq.sel(quantile=n)) for n in ("median", "lower", "upper")},
                }
            )
    return rows


CHECKED = {
    "monthly_apprehensions": "monthly apprehension totals (section × month)",
    "frequency": "repeat-apprehension frequencies f_k (surveyed sections)",
    "linkage": "linked journeys by register sighting pattern (window × surveyed section × pattern)",
}
LINKAGE_P_MIN = 0.01
"""The linkage check fails when the posterior predictive p-value of its χ² discrepancy is below this: the
linkage is what identifies r, and a wrong r (fixed by a spec, or pushed by a wrong frailty) passes the totals'
and the repeat counts' checks (the repeats pin pr, and p moves to match)."""


def predictive_check(tree: xr.DataTree, prob: float = 0.9) -> dict[str, Any]:
    """The border fit's posterior predictive checks: coverage of the monthly totals, repeat frequencies and
    linked journeys' sighting patterns by their `prob` predictive intervals, the surveyed sections' f_k
    table, and a verdict per statistic: the totals and repeats fail when fewer than ``prob − 0.1`` of the
    observed values lie inside their intervals (a calibrated model puts about `prob` of them inside); the
    linkage, a few large cells that move together, fails when its χ² discrepancy's posterior predictive
    p-value is below `LINKAGE_P_MIN`; and, when the fit records it, the exact test of the repeat counts'
    geometric law made on the data before sampling (`estim.families.border.repeat_dispersion`)."""
    coverage = predictive_coverage(tree, prob)
    verdicts = {}
    for name, v in coverage.items():
        what = CHECKED.get(name, name.replace("_", " "))
        if "p_value" in v:
            passed = v["p_value"] >= LINKAGE_P_MIN
            verdicts[name] = {
                "passed": bool(passed),
                "text": (
                    f"{'ok' if passed else 'MISFIT'}: {what}: posterior predictive p-value of the χ² "
                    f"discrepancy {v['p_value']:.3f} ({'below ' if not passed else ''}{LINKAGE_P_MIN} "
                    f"fails); {v['inside']:.0%} of {v['cells']} cells inside their {prob:.0%} "
                    f"predictive interval"
                ),
            }
            continue
        passed = v["inside"] >= prob - 0.1
        verdicts[name] = {
            "passed": bool(passed),
            "text": (
                f"{'ok' if passed else 'MISFIT'}: {v['inside']:.0%} of {v['cells']} observed {what} inside "
                f"their {prob:.0%} predictive interval (a calibrated model: about {prob:.0%}"
                f"{'' if passed else f'; fewer than {prob - 0.1:.0%} fails'})"
            ),
        }
    # the test of the data made before sampling (`estim.run.fit`)
    before = tree.attrs.get("precheck_json")
    if before:
        test = json.loads(str(before))
        verdicts[test["name"]] = {"passed": bool(test["passed"]), "text": test["text"]}
    return {
        "prob": prob,
        "coverage": coverage,
        "verdicts": verdicts,
        "frequency": predictive_table(tree, prob),
    }


def format_check(check: dict[str, Any]) -> str:
    """`predictive_check`'s result as text."""
    pct = f"{check.get('prob', 0.9):.0%}"
    lines = [
        f"verdict, {name.replace('_', ' ')}: {v['text']}" for name, v in check["verdicts"].items()
    ]
    lines.append(
        f"repeat apprehensions (surveyed sections): people apprehended k times in a month, summed over "
        f"months and categories; observed against the predictive median and {pct} interval"
    )
    lines.append(
        f"  {'section':10s} {'k':>3s} {'observed':>9s} {'predicted':>10s} {pct + ' interval':>19s}"
    )
    lines.extend(
        f"  {row['section']:10s} {row['k']:>3d} {row['observed']:9,d} {row['median']:10,.0f} "
        f"{row['lower']:8,.0f} – {row['upper']:8,.0f}"
        f"{'' if row['lower'] <= row['observed'] <= row['upper'] else '  outside'}"
        for row in check["frequency"]
    )
    return "\n".join(lines)
