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
from estim.families.border.predictive_check import (
    format_check,
    predictive_check,
    predictive_coverage,
)
from estim.families.border.repeated_trials import AT_ONE, retry_summary
from estim.families.border.report_years import (
    fitted_months,
    months_by_year,
    span_text,
    truth_on_months,
    year_label,
)
from estim.families.border.truth_file import refuse_other_truth
from estim.figure_style import events_in_fit
from estim.intervals import equal_tailed


def border_tables(
    tree: xr.DataTree, prob: float = 0.9, truth: str | Path | None = None
) -> dict[str, Any]:
    """Per-section and whole-border estimates of unobserved crossings (a yearly rate over the fitted months,
    and per calendar year), with apprehensions beside them, the truth when given, and the predictive-check
    coverage.

    The per-year numbers of sections and of the whole border are the total over the fitted months × 12 / their
    number: with whole years the mean over the years, with records that start or stop mid-year (June 2017) a
    rate per year, not a total of 11½ years divided by 12. A calendar year the fit covers in part keeps its
    row in ``whole_border_by_year``, its total over the months covered, labelled with them (``"label"``:
    "2017 (Jan–Jun)", ``"months"``: 6), and is listed in ``"partial_years"``: it is not a year's total."""
    post = tree["posterior"].to_dataset()
    sy = post["unobserved_section_year"]
    years = sy["year"].values
    table = tree["crossings"].to_dataset()
    months = fitted_months(tree)
    n_months = months.size
    covered = months_by_year(months, years)
    labels = {y: year_label(y, m) for y, m in covered.items()}
    partial = [labels[y] for y, m in covered.items() if len(m) < 12]

    def per_year(total: Any) -> Any:
        """A total over the fitted months as a rate per year (×12 first: with whole years exactly the
        mean over the years, as before)."""
        return total * 12 / n_months

    app_sy = (
        table["apprehensions"]
        .assign_coords(year=("month", table["month"].dt.year.values))
        .groupby("year")
        .sum()
        .sum("category")
    )
    true_sy = None
    if truth:
        try:
            true_sy, comparable = truth_on_months(truth, sy["section"], years, months)
        except KeyError as e:
            raise EstimInputError(
                f"{truth}: the truth does not cover the fit's sections and years ({e}): is it the truth "
                "of the simulation the fit was made from?"
            ) from e
        if comparable:
            refuse_other_truth(truth, app_sy.sel(year=comparable))
    annual = equal_tailed(per_year(sy.sum("year")), prob)
    surveyed = surveyed_sections(tree)
    sections = []
    for s in sy["section"].values:
        row: dict[str, Any] = {
            "section": str(s),
            "surveyed": str(s) in surveyed,
            "apprehensions_per_year": per_year(float(app_sy.sel(section=s).sum())),
            **{k: float(annual.sel(section=s, quantile=k)) for k in ("median", "lower", "upper")},
        }
        if true_sy is not None:
            t = per_year(float(true_sy.sel(section=s).sum()))
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
        row["months"] = len(covered[int(y)])
        row["label"] = labels[int(y)]
        whole_rows.append(row)
    total = equal_tailed(per_year(post["unobserved_border_year"].sum("year")), prob)
    whole = {k: float(total.sel(quantile=k)) for k in ("median", "lower", "upper")}
    whole["apprehensions_per_year"] = per_year(float(app_sy.sum()))
    out: dict[str, Any] = {
        "retry": retry_summary(post, prob, months=months),
        "what": f"unobserved illegal crossings per year, {span_text(months, years, bool(partial))}",
        "years": [int(years[0]), int(years[-1])],
        "months": {"first": str(months[0]), "last": str(months[-1]), "count": int(n_months)},
        "partial_years": partial,
        "interval": {"prob": prob, "kind": "equal-tailed"},
        "synthetic": tree.attrs.get("data_synthetic") == "true" or truth is not None,
        "sections": sections,
        "whole_border": whole,
        "whole_border_by_year": whole_rows,
        "predictive_checks": predictive_coverage(tree, prob),
        "policy_events": events_in_fit(tree),
    }
    if true_sy is not None:
        t = per_year(float(true_sy.sum()))
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


def surveyed_sections(tree: xr.DataTree) -> set[str]:
    """The sections with individual apprehension records (their repeat apprehensions were checked)."""
    if (
        "observed_data" not in tree.children
        or "surveyed_section" not in tree["observed_data"].coords
    ):
        return set()
    return {str(s) for s in tree["observed_data"]["surveyed_section"].values}


def format_border(tables: dict[str, Any]) -> str:
    """The tables as text, each column explained beneath them."""
    pct = f"{tables['interval']['prob']:.0%}"
    first, last = tables.get("years", ["", ""])
    has_truth = "truth" in tables
    synthetic = tables.get("synthetic", False)
    partial = tables.get("partial_years") or []
    months = tables.get("months") or {}
    span = f"mean over {first}–{last}"
    if partial:
        n = months["count"]
        span = f"rate over the {n} months {months['first']} … {months['last']}"
    title = "Unobserved illegal crossings of the border, per year"
    lines = [f"{title}{' (SYNTHETIC data)' if synthetic else ''}, {span}:", ""]
    head = (
        f"{'section':16s} {'records':>9s} {'apprehended':>11s} {'unobserved':>10s} "
        f"{pct + ' interval':>19s}"
    )
    if has_truth:
        head += f" {'truth':>8s}"
    lines.append(head)
    whole = {"section": "WHOLE BORDER", "surveyed": None, **tables["whole_border"]}
    for r in [*tables["sections"], whole]:
        kind = {True: "surveyed", False: "inferred", None: ""}[r.get("surveyed")]
        line = (
            f"{r['section']:16s} {kind:>9s} {r['apprehensions_per_year']:11,.0f} {r['median']:10,.0f} "
            f"{r['lower']:9,.0f} – {r['upper']:7,.0f}"
        )
        if has_truth:
            line += f" {r['truth']:8,.0f}{'' if r['covered'] else '  outside'}"
        lines.append(line)
    if partial:
        lines += [
            "",
            f"apprehended  apprehensions recorded per year: their total over the {n} months × 12/{n}",
            "unobserved   illegal crossings that succeeded without apprehension, per year: posterior median of",
            f"             their total over the {n} months × 12/{n} (a part year counts as its months, not "
            "as a year);",
            f"             {pct} interval: the central (equal-tailed) {pct} posterior interval",
        ]
    else:
        lines += [
            "",
            "apprehended  apprehensions recorded per year (mean over the years)",
            "unobserved   illegal crossings that succeeded without apprehension, per year: posterior median "
            "of the",
            f"             yearly mean; {pct} interval: the central (equal-tailed) {pct} posterior interval",
        ]
    lines += [
        "records      surveyed: individual apprehension records, whose repeat apprehensions identify the",
        "             apprehension probability there; inferred: monthly totals only, estimated through the",
        "             sections' hierarchy and the bypass block",
    ]
    retry = tables.get("retry") or {"source": "fixed", "median": 1.0}
    if retry["source"] == "fixed":
        lines += [
            f"assumption   after an apprehension a person tries again with probability {retry['median']:g} "
            "(fixed by the spec;",
            "             1 is Espenshade's repeated trials: every journey ends in an unobserved crossing)",
        ]
    else:
        lines += [
            f"retry        probability of trying again after an apprehension: {retry['median']:.2f} "
            f"({retry['lower']:.2f} – {retry['upper']:.2f}), "
            + {
                "linkage": "learnt from apprehended journeys seen later on the in-country registers",
                "one_list": "bounded below by apprehended journeys seen later on the ONE in-country "
                "register, which cannot say how complete it is; above that bound r rests on its PRIOR and "
                "on the prior of the register's coverage, and so do the estimates",
            }.get(
                retry["source"],
                "from its PRIOR alone: no apprehended journey could be linked to in-country registers, "
                "so the estimates rest on that prior",
            ),
        ]
        if "repeated_trials" in retry:
            rt = retry["repeated_trials"]
            lines.append(
                f"             P(r = 1, repeated trials | data) = {rt['posterior_probability']:.2f} (prior "
                f"{rt['prior_probability']:.2f}, Bayes factor {rt['bayes_factor']:.2g}); the estimates "
                "average the two"
            )
        if retry.get("lower", 0.0) >= AT_ONE:
            lines.append(
                "             r rests on 1: the whole-border interval then lacks the width r's "
                "uncertainty gives it, and in the recovery study it was too narrow (docs/design.md §4)"
            )
        if "abandoned_per_year" in retry:
            lines.append(
                f"             journeys given up after an apprehension: {retry['abandoned_per_year']:,.0f} "
                "a year (whole border, median)"
            )
    if has_truth:
        lines.append(
            f"truth        the simulator's true value; 'outside': not inside the {pct} interval"
        )
    lines += ["", f"whole border by year (posterior median, {pct} interval):"]
    by_year = tables["whole_border_by_year"]
    width = max((len(r.get("label", str(r["year"]))) for r in by_year), default=4)
    for r in by_year:
        label = r.get("label", str(r["year"])) + ":"
        line = f"  {label:{width + 1}s} {r['median']:8,.0f} ({r['lower']:,.0f} – {r['upper']:,.0f})"
        if has_truth:
            line += f"  truth {r['truth']:,.0f}{'' if r['covered'] else '  outside'}"
        if r.get("months", 12) < 12:
            line += (
                f"  PART YEAR: the crossings of its {r['months']} months, not a year's "
                "(not comparable with whole years)"
            )
        lines.append(line)
    if has_truth:
        t = tables["truth"]
        lines.append(
            f"truth inside the {pct} interval: {t['sections_covered']} of {t['sections']} sections; "
            f"{t['section_years_covered']:.0%} of section-years; {t['border_years_covered']} of "
            f"{len(tables['whole_border_by_year'])} whole-border years"
            + (f" ({', '.join(partial)} over its months only)" if partial else "")
        )
    pc = tables.get("predictive_checks") or {}
    for name, v in pc.items():
        lines.append(
            f"posterior predictive check, {name.replace('_', ' ')}: {v['inside']:.0%} of {v['cells']} "
            f"observed values inside their {pct} predictive interval"
        )
    return "\n".join(lines)


def border_figure(tables: dict[str, Any], *, events: Any = None) -> Any:
    """Unobserved crossings per section (annual mean) and for the whole border by year, with their
    intervals, the truth when known, the surveyed sections marked and the policy events on the time axis, in
    the house style (`estim.report.figures`). A year the records cover in part is drawn over its months only,
    at their rate per year (its total × 12 / its months), hatched, with a legend entry: its total would read
    as a fall. Only the events inside the fitted months are marked. `events`: the policy events (a records
    table ``policy_events.csv``, a mapping name -> date, ...; see `policy_events`), else
    ``tables["policy_events"]``. Returns the matplotlib figure (the caller saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from estim import figure_style as fs

    prob = tables["interval"]["prob"]
    marks = fs.policy_events(events if events is not None else tables.get("policy_events"))
    has_truth = "truth" in tables
    blue, band = fs.COLOURS["estimate"], {"color": fs.COLOURS["estimate"], "alpha": fs.BAND_ALPHA}
    rows = tables["sections"]
    yrs = tables["whole_border_by_year"]
    first, last = yrs[0]["year"], yrs[-1]["year"]
    dot = {"ls": "", "marker": "o", "ms": 4.5, "mew": 1, "mec": blue, "zorder": 3}
    cross = {"ls": "", "marker": "x", "ms": 4, "color": fs.COLOURS["truth"], "zorder": 4}
    with fs.house_style():
        fig, (ax1, ax2) = fs.subplots(
            1, 2, width=fs.DOUBLE_COLUMN, height=3.7, gridspec_kw={"width_ratios": [1, 1.15]}
        )
        # a: sections in the order of the fit (west to east) from the top; surveyed filled, inferred open
        y = np.arange(len(rows))
        med = np.array([r["median"] for r in rows])
        surveyed = np.array([bool(r.get("surveyed", False)) for r in rows])
        ax1.hlines(y, [r["lower"] for r in rows], [r["upper"] for r in rows], lw=4, **band)
        ax1.plot(med[surveyed], y[surveyed], mfc=blue, **dot)
        ax1.plot(med[~surveyed], y[~surveyed], mfc="white", **dot)
        if has_truth:
            ax1.plot([r["truth"] for r in rows], y, **cross)
        ax1.set_yticks(y, [r["section"].replace("_", " ") for r in rows])
        for label, s in zip(ax1.get_yticklabels(), surveyed, strict=True):
            label.set_fontweight("bold" if s else "normal")
        ax1.set_ylim(len(rows) - 0.5, -0.5)
        span = tables.get("months") if tables.get("partial_years") else None
        over = f"rate {span['first']} … {span['last']}" if span else f"mean {first}–{last}"
        ax1.set_xlabel(f"unobserved crossings per year ({over})")
        fs.count_axis(ax1, "x", "log")
        ax1.set_title("a  by section (posterior median)")
        # b: the whole border, one step per calendar year (a part year over its months, at their rate per
        # year), policy events where they fall
        start, end = float(first), float(last + 1)
        if span:  # the months are contiguous: only the first and the last year can be part years
            start = first + (np.datetime64(span["first"], "M").astype(int) % 12) / 12
            end = last + (np.datetime64(span["last"], "M").astype(int) % 12 + 1) / 12
        edges = np.array([start, *range(first + 1, last + 1), end], dtype=float)
        rate = np.array([12 / r.get("months", 12) for r in yrs])
        upper = [r["upper"] * f for r, f in zip(yrs, rate, strict=True)]
        lower = [r["lower"] * f for r, f in zip(yrs, rate, strict=True)]
        ax2.stairs(upper, edges, baseline=lower, fill=True, lw=0, **band)
        ax2.stairs([r["median"] * f for r, f in zip(yrs, rate, strict=True)], edges, baseline=None,
                   color=blue, lw=1.2)  # fmt: skip
        mids = (edges[:-1] + edges[1:]) / 2
        if has_truth:
            ax2.plot(mids, [r["truth"] * f for r, f in zip(yrs, rate, strict=True)], **cross)
        part = {"facecolor": "none", "edgecolor": fs.COLOURS["event"], "hatch": "////", "lw": 0}
        for i in np.flatnonzero(rate > 1):
            ax2.axvspan(edges[i], edges[i + 1], zorder=0, **part)
        # an event outside the fitted months would put its label far off the axes (and collapse the layout)
        marks = [(n, d) for n, d in marks if edges[0] <= fs.decimal_year(d) <= edges[-1]]
        event_handle = fs.mark_events(ax2, marks, years=True, labels=True)
        ax2.set_xlim(edges[0], edges[-1])
        ax2.set_ylim(0, max(upper) * (1.3 if marks else 1.05))
        ticks = [
            (m, r["year"]) for m, r in zip(mids, yrs, strict=True) if (r["year"] - first) % 2 == 0
        ]
        ax2.set_xticks([m for m, _ in ticks], [str(t) for _, t in ticks])
        ax2.set_xticks(edges, minor=True)
        ax2.tick_params(axis="x", which="major", length=0)
        ax2.set_xlabel("year")
        ax2.set_ylabel("unobserved crossings per year")
        fs.count_axis(ax2, "y")
        ax2.set_title("b  whole border")
        handles = [
            Line2D([], [], mfc=blue, label="surveyed section (individual records)", **dot),
            Line2D([], [], mfc="white", label="section inferred through the hierarchy", **dot),
            Patch(**band, lw=0, label=fs.interval_label(prob)),
            Line2D([], [], color=blue, lw=1.2, label="whole border, posterior median"),
        ]
        if has_truth:
            handles.append(Line2D([], [], label="truth (simulator)", **cross))
        if (rate > 1).any():
            handles.append(Patch(**part, label="part year: its months' mean × 12"))
        if event_handle is not None:
            handles.append(event_handle)
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        return fs.finish_figure(fig, synthetic=bool(tables.get("synthetic", False)))


def ppc_figure(tree: xr.DataTree, prob: float = 0.9, *, events: Any = None) -> Any:
    """Posterior predictive check figure, in the house style (`estim.report.figures`): the monthly
    apprehension totals of each section (observed against the predictive `prob` band, the policy events
    marked) and the surveyed sections' repeat apprehensions f_k. `events`: the policy events (see
    `policy_events`), else those the fit records (`events_in_fit`). Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from estim import figure_style as fs

    pp = tree["posterior_predictive"].to_dataset()
    obs = tree["observed_data"].to_dataset()
    marks = fs.policy_events(events if events is not None else fs.events_in_fit(tree))
    q = equal_tailed(pp["monthly_apprehensions"], prob)
    qf = equal_tailed(pp["frequency"], prob)
    sections = [str(s) for s in obs["section"].values]
    surveyed = [str(s) for s in obs["surveyed_section"].values]
    months = obs["month"].values
    k = obs["k"].values
    blue, outside = fs.COLOURS["estimate"], fs.COLOURS["outside"]
    cols = 4
    start = -(-len(sections) // cols) * cols  # the f_k panels begin a row
    rows = -(-(start + len(surveyed) + 1) // cols)

    def observed(ax: Any, x: Any, values: Any, lower: Any, upper: Any, ms: float) -> None:
        inside = (values >= lower) & (values <= upper)
        ax.plot(x[inside], values[inside], "o", color="black", ms=ms, mew=0, zorder=3)
        ax.plot(x[~inside], values[~inside], "o", color=outside, ms=ms, mew=0, zorder=3)

    with fs.house_style():
        fig = plt.figure(figsize=(fs.DOUBLE_COLUMN, 1.45 * rows + 0.6), layout="constrained")
        grid = fig.add_gridspec(rows, cols, height_ratios=[1] * (rows - 1) + [1.3])
        first = None
        for i, s in enumerate(sections):
            ax = fig.add_subplot(grid[i // cols, i % cols], sharex=first)
            first = first or ax
            qs = q.sel(section=s)
            lo, hi = qs.sel(quantile="lower").values, qs.sel(quantile="upper").values
            ax.fill_between(months, lo, hi, color=blue, alpha=fs.BAND_ALPHA, lw=0, step="mid")
            observed(ax, months, obs["monthly_apprehensions"].sel(section=s).values, lo, hi, 2)
            fs.mark_events(ax, marks)
            ax.set_ylim(bottom=0)
            fs.count_axis(ax, "y")
            ax.set_title(f"{s.replace('_', ' ')}{' (surveyed)' if s in surveyed else ''}",
                         fontweight="bold" if s in surveyed else "normal")  # fmt: skip
            if i % cols == 0:
                ax.set_ylabel("apprehensions\nper month")
            if i + cols < len(sections):
                ax.tick_params(labelbottom=False)
            else:
                ax.set_xlabel("year")
        first.xaxis.set_major_locator(mdates.YearLocator(max(1, round(len(months) / 36))))
        first.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        first.xaxis.set_minor_locator(mdates.YearLocator(1))
        note = str(pp.attrs.get("note", ""))
        top = f"≥{k[-1]}" if note.startswith(f"k = {k[-1]} collects") else str(k[-1])
        for j, s in enumerate(surveyed, start=start):
            ax = fig.add_subplot(grid[j // cols, j % cols])
            qs = qf.sel(surveyed_section=s)
            lo, hi = qs.sel(quantile="lower").values, qs.sel(quantile="upper").values
            ax.vlines(k, lo, hi, color=blue, lw=2.5, alpha=0.35)
            ax.plot(k, qs.sel(quantile="median"), "_", color=blue, ms=4, mew=1)
            observed(ax, k, obs["frequency"].sel(surveyed_section=s).values, lo, hi, 3)
            fs.count_axis(ax, "y", "symlog")
            ax.set_ylim(bottom=-0.2)
            ticks = [t for t in (1, 5, 10, 15, 20) if t < k[-1] - 3] + [int(k[-1])]
            ax.set_xticks(ticks, [*map(str, ticks[:-1]), top])
            ax.set_title(f"{s.replace('_', ' ')} (surveyed)", fontweight="bold")
            ax.set_xlabel("times apprehended, k")
            if j % cols == 0:
                ax.set_ylabel("people apprehended\nk times")
        legend_ax = fig.add_subplot(grid[rows - 1, (start + len(surveyed)) % cols :])
        legend_ax.axis("off")
        handles = [
            Patch(
                color=blue,
                alpha=fs.BAND_ALPHA,
                lw=0,
                label=fs.interval_label(prob, "posterior predictive"),
            ),
            Line2D(
                [], [], color=blue, ls="", marker="_", ms=4, mew=1, label="predictive median (f_k)"
            ),
            Line2D([], [], color="black", ls="", marker="o", ms=3, mew=0, label="observed, inside"),
            Line2D(
                [], [], color=outside, ls="", marker="o", ms=3, mew=0, label="observed, outside"
            ),
        ]
        handles += [
            Line2D(
                [],
                [],
                color=fs.COLOURS["event"],
                lw=0.7,
                ls=(0, (4, 2)),
                label=f"{fs.event_label(name)}, {date}",
            )
            for name, date in marks
        ]
        legends = [legend_ax.legend(handles=handles[:4], loc="upper left", borderaxespad=0)]
        if marks:
            legend_ax.add_artist(legends[0])
            legends.append(
                legend_ax.legend(
                    handles=handles[4:],
                    loc="lower left",
                    title="policy events",
                    alignment="left",
                    borderaxespad=0,
                )
            )
        for legend in legends:
            legend.set_in_layout(False)  # the slot is sized for them; keep the panels' grid even
        return fs.finish_figure(fig, synthetic=fs.is_synthetic(tree.attrs))


BORDER_REPORT = FamilyReport(
    tables=border_tables,
    format=format_border,
    figure=border_figure,
    check=predictive_check,
    format_check=format_check,
    check_figure=ppc_figure,
)
