"""Tables, checks and figures of a fitted border model (`estim summary` / `estim check` on a border fit).

Estimates are posterior medians with equal-tailed intervals of the *counts* of unobserved crossings (drawn given
the data, see `estim.families.border.crossings`). On synthetic data the simulator's truth (``truth.nc``) can be
put beside them: a section is "covered" when the truth lies inside its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import FamilyReport
from estim.intervals import equal_tailed


def truth_by_year(truth_path: str | Path) -> xr.DataArray:
    """The simulator's true unobserved crossings per section × year (``truth.nc``)."""
    path = Path(truth_path)
    if not path.is_file():
        raise EstimInputError(f"{path}: no such truth file")
    with xr.open_dataset(path) as t:
        if "unobserved" not in t:
            raise EstimInputError(f"{path}: no variable 'unobserved' (not a simulator truth file)")
        u = t["unobserved"].load()
    years = u["month"].dt.year.values
    return u.assign_coords(year=("month", years)).groupby("year").sum().sum("category")


def border_tables(
    tree: xr.DataTree, prob: float = 0.9, truth: str | Path | None = None
) -> dict[str, Any]:
    """Per-section and whole-border estimates of unobserved crossings (annual mean over the fitted years, and
    per year), with apprehensions beside them, the truth when given, and the predictive-check coverage."""
    post = tree["posterior"].to_dataset()
    sy = post["unobserved_section_year"]
    years = sy["year"].values
    n_years = len(years)
    table = tree["crossings"].to_dataset()
    app_sy = (
        table["apprehensions"]
        .assign_coords(year=("month", table["month"].dt.year.values))
        .groupby("year")
        .sum()
        .sum("category")
    )
    true_sy = truth_by_year(truth).sel(section=sy["section"], year=years) if truth else None
    annual = equal_tailed(sy.sum("year") / n_years, prob)
    sections = []
    for s in sy["section"].values:
        row: dict[str, Any] = {
            "section": str(s),
            "apprehensions_per_year": float(app_sy.sel(section=s).mean()),
            **{k: float(annual.sel(section=s, quantile=k)) for k in ("median", "lower", "upper")},
        }
        if true_sy is not None:
            t = float(true_sy.sel(section=s).mean())
            row["truth"] = t
            row["covered"] = bool(row["lower"] <= t <= row["upper"])
        sections.append(row)
    border = equal_tailed(post["unobserved_border_year"], prob)
    whole_rows = []
    for y in years:
        row = {
            "year": int(y),
            "apprehensions": float(app_sy.sel(year=y).sum()),
            **{k: float(border.sel(year=y, quantile=k)) for k in ("median", "lower", "upper")},
        }
        if true_sy is not None:
            t = float(true_sy.sel(year=y).sum())
            row["truth"] = t
            row["covered"] = bool(row["lower"] <= t <= row["upper"])
        whole_rows.append(row)
    total = equal_tailed(post["unobserved_border_year"].sum("year") / n_years, prob)
    whole = {k: float(total.sel(quantile=k)) for k in ("median", "lower", "upper")}
    whole["apprehensions_per_year"] = float(app_sy.sum() / n_years)
    out: dict[str, Any] = {
        "what": f"unobserved illegal crossings per year, mean over {years[0]}–{years[-1]}",
        "interval": {"prob": prob, "kind": "equal-tailed"},
        "sections": sections,
        "whole_border": whole,
        "whole_border_by_year": whole_rows,
        "predictive_checks": predictive_coverage(tree, prob),
    }
    if true_sy is not None:
        t = float(true_sy.sum() / n_years)
        whole["truth"] = t
        whole["covered"] = bool(whole["lower"] <= t <= whole["upper"])
        q = equal_tailed(sy, prob)
        inside = (q.sel(quantile="lower") <= true_sy) & (true_sy <= q.sel(quantile="upper"))
        out["truth"] = {
            "file": str(truth),
            "sections_covered": int(sum(r["covered"] for r in sections)),
            "sections": len(sections),
            "section_years_covered": float(inside.mean()),
            "border_years_covered": int(sum(r["covered"] for r in whole_rows)),
        }
    return out


def predictive_coverage(tree: xr.DataTree, prob: float = 0.9) -> dict[str, Any]:
    """Share of observed monthly apprehension totals (per section) and of surveyed repeat-apprehension
    frequencies f_k inside their posterior predictive `prob` intervals."""
    if "posterior_predictive" not in tree.children:
        return {}
    pp = tree["posterior_predictive"].to_dataset()
    obs = tree["observed_data"].to_dataset()
    out: dict[str, Any] = {}
    for name in ("monthly_apprehensions", "frequency"):
        q = equal_tailed(pp[name], prob)
        inside = (q.sel(quantile="lower") <= obs[name]) & (obs[name] <= q.sel(quantile="upper"))
        out[name] = {"cells": int(inside.size), "inside": float(inside.mean())}
    return out


def format_border(tables: dict[str, Any]) -> str:
    """The tables as text."""
    pct = f"{tables['interval']['prob']:.0%}"
    has_truth = "truth" in tables
    head = f"{'section':16s} {'apprehended':>11s} {'unobserved':>10s} {pct + ' interval':>19s}"
    if has_truth:
        head += f" {'truth':>8s}"
    lines = [tables["what"] + ":", head]
    for r in [*tables["sections"], {"section": "WHOLE BORDER", **tables["whole_border"]}]:
        line = (
            f"{r['section']:16s} {r['apprehensions_per_year']:11,.0f} {r['median']:10,.0f} "
            f"{r['lower']:9,.0f} – {r['upper']:7,.0f}"
        )
        if has_truth:
            line += f" {r['truth']:8,.0f}{'' if r['covered'] else '  (outside)'}"
        lines.append(line)
    lines.append(f"whole border by year ({pct} interval):")
    for r in tables["whole_border_by_year"]:
        line = f"  {r['year']}: {r['median']:8,.0f} ({r['lower']:,.0f} – {r['upper']:,.0f})"
        if has_truth:
            line += f"  truth {r['truth']:,.0f}{'' if r['covered'] else '  (outside)'}"
        lines.append(line)
    if has_truth:
        t = tables["truth"]
        lines.append(
            f"truth inside the {pct} interval: {t['sections_covered']} of {t['sections']} sections; "
            f"{t['section_years_covered']:.0%} of section-years; {t['border_years_covered']} of "
            f"{len(tables['whole_border_by_year'])} whole-border years"
        )
    pc = tables.get("predictive_checks") or {}
    for name, v in pc.items():
        lines.append(
            f"posterior predictive check, {name.replace('_', ' ')}: {v['inside']:.0%} of {v['cells']} "
            f"observed values inside their {pct} predictive interval"
        )
    return "\n".join(lines)


def border_figure(tables: dict[str, Any]) -> Any:
    """Unobserved crossings per section (annual mean) and for the whole border by year, with intervals and
    the truth when known. Returns the matplotlib figure (the caller saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = tables["sections"]
    x = np.arange(len(rows))
    med = np.array([r["median"] for r in rows])
    lo = np.array([r["lower"] for r in rows])
    hi = np.array([r["upper"] for r in rows])
    ax1.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o", label="estimate (median, interval)")
    if "truth" in tables:
        ax1.plot(x, [r["truth"] for r in rows], "x", color="k", label="truth (simulator)")
    ax1.set_xticks(x, [r["section"] for r in rows], rotation=60, ha="right")
    ax1.set_yscale("log")
    ax1.set_ylabel("unobserved crossings per year")
    ax1.legend()
    yrs = tables["whole_border_by_year"]
    yy = [r["year"] for r in yrs]
    ax2.fill_between(yy, [r["lower"] for r in yrs], [r["upper"] for r in yrs], alpha=0.3)
    ax2.plot(yy, [r["median"] for r in yrs], "-o", label="estimate")
    if "truth" in tables:
        ax2.plot(yy, [r["truth"] for r in yrs], "x", color="k", label="truth")
    ax2.set_title("whole border")
    ax2.set_ylabel("unobserved crossings")
    ax2.legend()
    fig.tight_layout()
    return fig


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


def ppc_figure(tree: xr.DataTree, prob: float = 0.9) -> Any:
    """Posterior predictive check figure: monthly apprehension totals of each section (observed against the
    predictive band) and the surveyed sections' f_k (log scale). Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pp = tree["posterior_predictive"].to_dataset()
    obs = tree["observed_data"].to_dataset()
    q = equal_tailed(pp["monthly_apprehensions"], prob)
    sections = obs["section"].values
    surveyed = obs["surveyed_section"].values
    n = len(sections) + len(surveyed)
    cols = 4
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(16, 2.6 * -(-n // cols)), squeeze=False)
    months = obs["month"].values
    for ax, s in zip(axes.flat, sections, strict=False):
        qs = q.sel(section=s)
        ax.fill_between(months, qs.sel(quantile="lower"), qs.sel(quantile="upper"), alpha=0.35)
        ax.plot(months, obs["monthly_apprehensions"].sel(section=s), ".", ms=2, color="k")
        ax.set_title(f"{s}: monthly apprehensions", fontsize=8)
        ax.tick_params(labelsize=6)
    qf = equal_tailed(pp["frequency"], prob)
    for ax, s in zip(axes.flat[len(sections) :], surveyed, strict=False):
        k = obs["k"].values
        qs = qf.sel(surveyed_section=s)
        ax.fill_between(
            k, qs.sel(quantile="lower") + 0.5, qs.sel(quantile="upper") + 0.5, alpha=0.35
        )
        ax.plot(k, obs["frequency"].sel(surveyed_section=s) + 0.5, "o", ms=3, color="k")
        ax.set_yscale("log")
        ax.set_title(f"{s}: people apprehended k times (+0.5)", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def predictive_check(tree: xr.DataTree, prob: float = 0.9) -> dict[str, Any]:
    """The border fit's posterior predictive checks: coverage of the monthly totals and repeat frequencies
    by their `prob` predictive intervals, and the surveyed sections' f_k table."""
    return {"coverage": predictive_coverage(tree, prob), "frequency": predictive_table(tree, prob)}


def format_check(check: dict[str, Any]) -> str:
    """`predictive_check`'s result as text."""
    lines = [
        f"{name.replace('_', ' ')}: {v['inside']:.0%} of {v['cells']} observed values inside "
        "their 90 % posterior predictive interval"
        for name, v in check["coverage"].items()
    ]
    lines.append(
        "repeat-apprehension frequencies f_k (surveyed sections): observed, predictive 90 %"
    )
    lines.extend(
        f"  {row['section']:10s} k={row['k']:<3d} {row['observed']:8,d}  "
        f"{row['lower']:8,.0f} – {row['upper']:8,.0f}"
        for row in check["frequency"]
    )
    return "\n".join(lines)


BORDER_REPORT = FamilyReport(
    tables=border_tables,
    format=format_border,
    figure=border_figure,
    check=predictive_check,
    format_check=format_check,
    check_figure=ppc_figure,
)
