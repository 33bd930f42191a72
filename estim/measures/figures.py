"""Figures of the measures' counterfactual forecasts: a fan chart of the whole border and a scenario × section
heat map of the change each measure (or combination) makes against the baseline.

Both read a forecast dataset ``fc`` (``estim forecast``): integer draws of ``unobserved``, ``apprehensions``
and ``attempts`` by draw × scenario × section × month over the horizon, with the fitted period beside them
(``history_unobserved`` by history_draw × section × history_month, the observed ``history_apprehensions``),
the policy events (``event_start``), the measures' start months (``measure_start``) and which sections are
surveyed (``surveyed``). Scenarios are named by their measures joined with "+"; "baseline" has none.

The change a scenario makes is measured within each posterior draw (`percent_change`): scenario and baseline
share the draw's parameters, so the uncertainty they have in common cancels and what remains is the
uncertainty about the measure's effect. Figures are drawn in the house style (`estim.figure_style`) and
returned, never written (`estim.report.figures.save_figure` writes them).
"""

from __future__ import annotations

import textwrap
import warnings
from typing import Any

import numpy as np
import xarray as xr

from estim import figure_style as fs
from estim.errors import EstimInputError
from estim.intervals import equal_tailed

BASELINE = "baseline"
WHOLE_BORDER = "whole_border"
"""The label `percent_change` gives the whole border along ``section``."""
QUANTITIES = {
    "unobserved": ("unobserved illegal crossings", "unobserved crossings"),
    "apprehensions": ("apprehensions", "apprehensions"),
    "attempts": ("illegal crossing attempts", "crossing attempts"),
}
"""quantity -> (axis wording, short wording for the colour bar)."""
MIN_BASELINE = 1.0
"""A heat-map cell is shown as "–" when the baseline's median total over the horizon is below this: a
percent change of (almost) nothing is undefined or meaningless."""

# Okabe–Ito colours, given to the single measures first, then the combination of all measures, then the
# pairs, so that the default selection of the fan chart gets the most distinct ones; the same scenario has
# the same colour in every figure of one forecast
_PALETTE = ("#E69F00", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#56B4E9", "#B59F00")
_BASELINE_COLOUR = "black"
_HISTORY_BAND = "0.55"
_DATA_PERIOD = "0.93"


def _check(fc: xr.Dataset, quantity: str) -> None:
    if quantity not in QUANTITIES:
        raise EstimInputError(
            f"forecast quantity {quantity!r}: expected one of {', '.join(QUANTITIES)}"
        )
    if quantity not in fc.data_vars:
        raise EstimInputError(f"forecast dataset: no variable {quantity!r}")
    dims = set(fc[quantity].dims) - {"category"}
    if dims != {"draw", "scenario", "section", "month"}:
        raise EstimInputError(
            f"forecast dataset: {quantity!r} has dimensions {tuple(fc[quantity].dims)}, not "
            "draw × scenario × section × month (× category)"
        )
    if BASELINE not in [str(s) for s in fc["scenario"].values]:
        raise EstimInputError(
            f"forecast dataset: no {BASELINE!r} scenario to compare the measures with "
            f"(scenarios: {', '.join(map(str, fc['scenario'].values))})"
        )


def _counts(fc: xr.Dataset, quantity: str) -> xr.DataArray:
    """The quantity's draws (draw, scenario, section, month), summed over categories when a forecast keeps
    them; per-section labels (``surveyed``) dropped, they have no whole-border value."""
    x = fc[quantity].reset_coords(drop=True)
    return x.sum("category") if "category" in x.dims else x


def _synthetic(fc: xr.Dataset) -> bool:
    """Whether the forecast comes from a fit to simulated data (its ``synthetic`` attr, or the fit's own
    ``data_synthetic`` / ``data_source`` carried over)."""
    return str(fc.attrs.get("synthetic", "")).lower() == "true" or fs.is_synthetic(fc.attrs)


def _measures_of(scenario: str) -> list[str]:
    return [] if scenario == BASELINE else scenario.split("+")


def scenario_label(scenario: str) -> str:
    """A scenario's name for a figure: "permits+faster_checks" -> "permits + faster checks"."""
    if scenario == BASELINE:
        return "baseline (no measure)"
    return " + ".join(fs.event_label(m) for m in _measures_of(scenario))


def scenario_colours(scenarios: Any) -> dict[str, str]:
    """A colour per scenario of a forecast (all of them, so that a scenario keeps its colour whichever are
    drawn): baseline black, the single measures, then the combination of all, then the others."""
    names = [str(s) for s in scenarios]
    most = max((len(_measures_of(s)) for s in names), default=0)
    others = [s for s in names if s != BASELINE]
    ranked = sorted(
        others,
        key=lambda s: (
            0 if len(_measures_of(s)) == 1 else 1 if len(_measures_of(s)) == most else 2,
            others.index(s),
        ),
    )
    colours = {BASELINE: _BASELINE_COLOUR}
    for i, s in enumerate(ranked):
        colours[s] = _PALETTE[i % len(_PALETTE)]
    return colours


def default_scenarios(fc: xr.Dataset) -> list[str]:
    """The fan chart's default selection: the baseline, each single measure and the combination of all
    measures (when there is one), in the dataset's order."""
    names = [str(s) for s in fc["scenario"].values]
    most = max(len(_measures_of(s)) for s in names)
    return [s for s in names if len(_measures_of(s)) in (0, 1) or len(_measures_of(s)) == most]


def percent_change(
    fc: xr.Dataset, quantity: str = "unobserved", over: str = "horizon"
) -> xr.DataArray:
    """Posterior draws of the percent change a scenario makes to `quantity` against the baseline.

    For draw d, scenario s (every scenario but the baseline) and section j, with X the quantity's forecast
    counts and T the months summed over::

        change[d, s, j] = 100 · (Σ_{t∈T} X[d, s, j, t] − Σ_{t∈T} X[d, baseline, j, t]) / Σ_{t∈T} X[d, baseline, j, t]

    T is every month of the horizon (`over` = "horizon"; result draw × scenario × section) or the horizon's
    months of each calendar year (`over` = "year"; draw × scenario × section × year, a coordinate ``months``
    saying how many months each year has, fewer at a horizon that does not start in January). The ratio is
    taken within a draw, so scenario and baseline share the draw's parameters. ``section`` gains a last
    entry `WHOLE_BORDER`: the change of the border's total (sections summed before the ratio, so a section
    weighs by its crossings; not the mean of the sections' changes). A draw whose baseline total is 0 gives
    NaN (the change of nothing is undefined). Its median over draws is the heat map's colour; the share of
    draws below 0 the posterior probability that the scenario reduces the quantity."""
    _check(fc, quantity)
    if over not in ("horizon", "year"):
        raise EstimInputError(f"percent_change over={over!r}: expected 'horizon' or 'year'")
    x = _counts(fc, quantity).astype(float)
    whole = x.sum("section").expand_dims(section=[WHOLE_BORDER])
    x = xr.concat([x.assign_coords(section=x["section"].astype(str).values), whole], "section")
    if over == "horizon":
        totals = x.sum("month")
    else:
        years = x["month"].dt.year.values
        totals = x.assign_coords(year=("month", years)).groupby("year").sum()
        totals = totals.assign_coords(months=("year", np.unique(years, return_counts=True)[1]))
    base = totals.sel(scenario=BASELINE)
    rest = totals.sel(scenario=[s for s in totals["scenario"].values if str(s) != BASELINE])
    # 100·(S − B) first, then / B: for a scenario that is an exact multiple of the baseline the result is
    # exact (an integer divided by an integer), not off by rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (100.0 * (rest - base) / base).where(base > 0)
    change.name = "percent_change"
    change.attrs = {
        "quantity": quantity,
        "over": over,
        "description": (
            f"100·(scenario − baseline)/baseline of {quantity} summed over the "
            f"{'horizon' if over == 'horizon' else 'horizon months of each calendar year'}, per draw; "
            "NaN where the baseline total is 0"
        ),
    }
    return change


def change_summary(
    fc: xr.Dataset,
    quantity: str = "unobserved",
    prob: float = 0.9,
    min_baseline: float = MIN_BASELINE,
) -> xr.Dataset:
    """Scenario × section (and whole border) summary of `percent_change` over the horizon: its posterior
    ``median``, ``lower`` and ``upper`` ends of the central `prob` interval, ``p_reduction`` (share of draws
    with a negative change), the baseline's median total ``baseline_total``, and ``defined`` (False where
    that total is below `min_baseline`: those cells are shown as "–"). Draws with a zero baseline are left
    out of the median, interval and probability."""
    change = percent_change(fc, quantity, "horizon")
    x = _counts(fc, quantity).sel(scenario=BASELINE).sum("month")
    x = x.assign_coords(section=x["section"].astype(str).values)
    base = xr.concat([x, x.sum("section").expand_dims(section=[WHOLE_BORDER])], "section").median(
        "draw"
    )
    # a section with no baseline in any draw is all NaN: left undefined, without NumPy's warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = equal_tailed(change, prob, dims=("draw",))  # quantile skips NaN
    valid = change.notnull()
    p = (change < 0).where(valid).sum("draw") / valid.sum("draw")
    defined = (base >= min_baseline) & (valid.sum("draw") > 0)
    out = xr.Dataset(
        {
            "median": q.sel(quantile="median", drop=True).where(defined),
            "lower": q.sel(quantile="lower", drop=True).where(defined),
            "upper": q.sel(quantile="upper", drop=True).where(defined),
            "p_reduction": p.where(defined),
            "baseline_total": base,
            "defined": defined,
        }
    )
    out.attrs = {"quantity": quantity, "prob": prob, "min_baseline": min_baseline}
    return out


def _months(values: Any) -> np.ndarray:
    return np.asarray(values).astype("datetime64[D]")


def _history(fc: xr.Dataset, quantity: str) -> xr.DataArray | None:
    """The fitted period's whole-border monthly series: draws (history_draw × month) or, for apprehensions,
    the observed counts (month)."""
    if quantity == "apprehensions":
        name = "history_apprehensions"
        return fc[name].sum("section") if name in fc else None
    if "history_unobserved" not in fc:
        return None
    h = fc["history_unobserved"].sum("section")
    if quantity == "attempts":
        if "history_apprehensions" not in fc:
            return None
        h = h + fc["history_apprehensions"].sum("section")
    return h


def _measure_starts(fc: xr.Dataset) -> list[tuple[np.datetime64, list[str]]]:
    if "measure_start" not in fc.variables:
        return []
    starts: dict[np.datetime64, list[str]] = {}
    for m, d in zip(fc["measure"].values, fc["measure_start"].values, strict=True):
        starts.setdefault(np.datetime64(d, "D"), []).append(str(m))
    return sorted(starts.items())


def _events(fc: xr.Dataset) -> list[tuple[str, np.datetime64]]:
    if "event_start" not in fc.variables:
        return []
    return fs.policy_events(
        [
            (str(e), str(d)[:10])
            for e, d in zip(fc["event"].values, fc["event_start"].values, strict=True)
        ]
    )


def fan_chart(
    fc: xr.Dataset,
    quantity: str = "unobserved",
    prob: float = 0.9,
    scenarios: list[str] | None = None,
    *,
    annual: bool = True,
) -> Any:
    """Fan chart of the whole border's monthly `quantity` (summed over sections), double-column.

    Panel a: the fitted period, shaded, as the posterior median with its central `prob` interval (for
    apprehensions: the observed counts), the policy events as dashed lines. Panel b, on the same count axis:
    its last year again, then per scenario the forecast's posterior median with its central 50 % and `prob`
    intervals (the fan), the measures' start months as dotted lines. Panel c (`annual`, when the horizon has
    a whole calendar year): each complete forecast year's total per scenario as median with its 50 % and
    `prob` intervals, beside the last whole year of the fitted period. `scenarios`: which to draw (default
    `default_scenarios`: the baseline, the single measures and all combined). Returns the figure (the
    caller saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _check(fc, quantity)
    names = [str(s) for s in fc["scenario"].values]
    chosen = default_scenarios(fc) if scenarios is None else [str(s) for s in scenarios]
    unknown = [s for s in chosen if s not in names]
    if unknown or not chosen:
        raise EstimInputError(
            f"fan chart scenarios {unknown or chosen}: not in the forecast (it has {', '.join(names)})"
        )
    colours = scenario_colours(names)
    label, _ = QUANTITIES[quantity]
    total = _counts(fc, quantity).sum("section")
    months = _months(fc["month"].values)
    inner = equal_tailed(total, 0.5, dims=("draw",))
    outer = equal_tailed(total, prob, dims=("draw",))
    history = _history(fc, quantity)
    years = fc["month"].dt.year.values
    whole_years = [int(y) for y in np.unique(years) if (years == y).sum() == 12]
    annual = annual and bool(whole_years)
    half = np.timedelta64(15, "D")  # half a month: a month's value is drawn at its first day
    with fs.house_style():
        legend_rows = max(len(chosen), 5 if history is not None else 2)
        height = 2.9 + (2.0 if annual else 0.0) + 0.16 * legend_rows
        fig = plt.figure(figsize=(fs.DOUBLE_COLUMN, height), layout="constrained")
        grid = fig.add_gridspec(
            2 if annual else 1,
            2 if history is not None else 1,
            height_ratios=[1.45, 1] if annual else [1],
            width_ratios=[1, 1.15] if history is not None else [1],
        )
        ax = fig.add_subplot(grid[0, -1])
        handles: list[Any] = []
        top = float(outer.sel(scenario=chosen, quantile="upper").max())
        axes = [ax]
        if history is not None:
            axh = fig.add_subplot(grid[0, 0], sharey=ax)
            axes.insert(0, axh)
            hm = _months(history["history_month"].values)
            recent = hm >= hm[-1] - np.timedelta64(365, "D")  # panel b repeats the last year
            for a, keep in ((axh, np.ones_like(recent)), (ax, recent)):
                a.axvspan(hm[keep][0] - half, hm[-1] + half, color=_DATA_PERIOD, lw=0, zorder=0)
            if "history_draw" in history.dims:
                hq = equal_tailed(history, prob, dims=("history_draw",))
                lo, med, hi = (hq.sel(quantile=q).values for q in ("lower", "median", "upper"))
                for a, keep in ((axh, slice(None)), (ax, recent)):
                    a.fill_between(hm[keep], lo[keep], hi[keep], color=_HISTORY_BAND, alpha=0.45,
                                   lw=0, gid="band-history")  # fmt: skip
                    a.plot(hm[keep], med[keep], color="black", lw=0.9, gid="median-history")
                handles += [
                    Line2D([], [], color="black", lw=0.9, label="fitted period, posterior median"),
                    Patch(
                        color=_HISTORY_BAND,
                        alpha=0.45,
                        lw=0,
                        label=f"fitted period, {fs.interval_label(prob)}",
                    ),
                ]
            else:
                hi = history.values
                for a, keep in ((axh, slice(None)), (ax, recent)):
                    a.plot(hm[keep], hi[keep], color="black", lw=0.9, gid="observed-history")
                handles.append(Line2D([], [], color="black", lw=0.9, label=f"observed {label}"))
            top = max(top, float(np.max(hi)))
            handles.append(Patch(color=_DATA_PERIOD, lw=0, label="fitted period (data)"))
            event = fs.mark_events(axh, _events(fc), labels=True)
            axh.set_xlim(hm[0] - half, hm[-1] + half)
            axh.set_ylabel(f"{label}\nper month")
            axh.set_title("a  fitted period")
            ax.tick_params(labelleft=False)
            ax.set_title("b  forecast, by scenario")
        else:
            shown = [(e, d) for e, d in _events(fc) if months[0] <= d <= months[-1]]
            event = fs.mark_events(ax, shown, labels=True)
            ax.set_ylabel(f"{label}\nper month")
            ax.set_title("forecast, by scenario")
        for s in chosen:
            c, z = colours[s], 3 if s == BASELINE else 4
            o, i = outer.sel(scenario=s), inner.sel(scenario=s)
            ax.fill_between(months, o.sel(quantile="lower"), o.sel(quantile="upper"), color=c,
                            alpha=0.12, lw=0, zorder=z, gid=f"band-{prob:g}-{s}")  # fmt: skip
            ax.fill_between(months, i.sel(quantile="lower"), i.sel(quantile="upper"), color=c,
                            alpha=0.25, lw=0, zorder=z, gid=f"band-0.5-{s}")  # fmt: skip
            ax.plot(months, i.sel(quantile="median"), color=c, lw=1.3 if s == BASELINE else 1.1,
                    zorder=z + 1, gid=f"median-{s}")  # fmt: skip
        handles += [
            Patch(color="0.5", alpha=0.45, lw=0, label="forecast, 50 % posterior interval"),
            Patch(color="0.5", alpha=0.2, lw=0, label=f"forecast, {fs.interval_label(prob)}"),
        ]
        starts = _measure_starts(fc)
        for d, ms in starts:
            ax.axvline(d, color="0.25", lw=0.8, ls=":", zorder=2)
            ax.text(d, 0.98, textwrap.fill(", ".join(fs.event_label(m) for m in ms) + " start", 16),
                    transform=ax.get_xaxis_transform(), rotation=90, ha="left", va="top",
                    fontsize=fs.SMALL_FONT_PT, color="0.25", linespacing=1.0)  # fmt: skip
        if starts:
            handles.append(Line2D([], [], color="0.25", lw=0.8, ls=":", label="measure starts"))
        if event is not None:
            handles.append(event)
        ax.set_xlim((hm[recent][0] if history is not None else months[0]) - half, months[-1] + half)
        for a in axes:
            a.set_xlabel("month")
            a.xaxis.set_major_locator(mdates.YearLocator(1 if a is ax else 2))
            a.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
            a.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10) if a is ax else 1))
            fs.count_axis(a, "y")
        if annual:
            axb = fig.add_subplot(grid[1, :])
            _annual_panel(axb, fc, quantity, prob, chosen, colours, history, whole_years)
        lines = [Line2D([], [], color=colours[s], lw=1.3, label=scenario_label(s)) for s in chosen]
        fig.legend(handles=_columns(lines, handles), loc="outside lower center", ncols=3)
        _headroom(fig, axes, top)  # last: the legend and panel c change the axes' heights
        return fs.finish_figure(fig, synthetic=_synthetic(fc))


def _headroom(fig: Any, axes: list[Any], top: float) -> None:
    """Set the (shared) count axis from 0 to a little above `top`, and higher where needed so that the data
    stay below the labels the event and measure lines carry from the top of the axes down (only the data
    under a label count)."""
    fig.canvas.draw()  # the labels' extents, in axes fractions: they do not move with the y limits
    upper = top * 1.05
    for a in axes:
        points = [line.get_xydata() for line in a.lines if line.get_transform() == a.transData]
        points += [p.vertices for c in a.collections for p in c.get_paths()]
        xy = np.concatenate([np.asarray(p, dtype=float).reshape(-1, 2) for p in points])
        for text in a.texts:
            box = text.get_window_extent().get_points()
            y0 = a.transAxes.inverted().transform(box)[0, 1]
            x0, x1 = a.transData.inverted().transform(box)[:, 0]
            under = xy[(xy[:, 0] >= x0 - 20) & (xy[:, 0] <= x1 + 20), 1]  # dates in days: ± 20 days
            if under.size:
                upper = max(upper, float(under.max()) / max(float(y0) - 0.03, 0.3))
    axes[-1].set_ylim(0, upper)


def _columns(first: list[Any], rest: list[Any]) -> list[Any]:
    """Legend handles for three columns filled top to bottom: `first` alone in the first column, `rest` in
    the other two (blank entries pad the columns)."""
    from matplotlib.lines import Line2D

    rows = max(len(first), -(-len(rest) // 2))

    def pad(items: list[Any]) -> list[Any]:
        return items + [Line2D([], [], alpha=0, label=" ")] * (rows - len(items))

    return pad(first) + pad(rest[:rows]) + pad(rest[rows:])


def _annual_panel(
    ax: Any,
    fc: xr.Dataset,
    quantity: str,
    prob: float,
    chosen: list[str],
    colours: dict[str, str],
    history: xr.DataArray | None,
    whole_years: list[int],
) -> None:
    """Each complete forecast year's whole-border total per scenario (median, 50 % and `prob` intervals),
    beside the last complete year of the fitted period."""
    label, _ = QUANTITIES[quantity]
    x = _counts(fc, quantity).sum("section")
    x = x.assign_coords(year=("month", x["month"].dt.year.values)).groupby("year").sum()
    x = x.sel(year=whole_years, scenario=chosen)
    inner, outer = (equal_tailed(x, p, dims=("draw",)) for p in (0.5, prob))
    width = 0.7
    offsets = (np.arange(len(chosen)) - (len(chosen) - 1) / 2) * width / max(len(chosen), 1)
    positions = np.arange(len(whole_years), dtype=float)
    ticks, tick_labels = list(positions), [str(y) for y in whole_years]
    if history is not None:
        hy = history["history_month"].dt.year.values
        full = [y for y in np.unique(hy) if (hy == y).sum() == 12]
        if full:
            last = history.isel(history_month=np.flatnonzero(hy == full[-1])).sum("history_month")
            if "history_draw" in last.dims:
                lo, med, hi = equal_tailed(last, prob, dims=("history_draw",)).values
                ax.vlines(-1, lo, hi, color=_HISTORY_BAND, lw=1.2)
            else:
                med = float(last)
            ax.plot(-1, med, "o", color="black", ms=3.5)
            ax.axvspan(-1.5, -0.5, color=_DATA_PERIOD, lw=0, zorder=0)
            ticks.insert(0, -1.0)
            tick_labels.insert(0, f"{full[-1]}\n(data)")
    for k, s in enumerate(chosen):
        xs = positions + offsets[k]
        o, i = outer.sel(scenario=s), inner.sel(scenario=s)
        c = colours[s]
        ax.vlines(xs, o.sel(quantile="lower"), o.sel(quantile="upper"), color=c, lw=0.8)
        ax.vlines(xs, i.sel(quantile="lower"), i.sel(quantile="upper"), color=c, lw=2.4)
        ax.plot(xs, i.sel(quantile="median"), "o", color=c, mfc="white", mew=1.0, ms=3.5, zorder=3)
    ax.set_xticks(ticks, tick_labels)
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(min(ticks) - 0.5, len(whole_years) - 0.5)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.05)
    ax.set_ylabel(f"{label}\nper year")
    ax.set_xlabel("year")
    fs.count_axis(ax, "y")
    panel = "c" if history is not None else "b"
    ax.set_title(
        f"{panel}  whole border, per year: median (circle), 50 % (thick) and {fs.percent(prob)} (thin) "
        "posterior intervals"
    )


def _format_change(value: float) -> str:
    if round(value, 1) == 0:
        return "0"
    text = f"{value:+.0f}" if abs(value) >= 9.95 else f"{value:+.1f}"
    return text.replace("-", "\u2212")


def change_heatmap(
    fc: xr.Dataset,
    quantity: str = "unobserved",
    prob: float = 0.9,
    min_baseline: float = MIN_BASELINE,
) -> Any:
    """Heat map of the change each scenario makes to `quantity` over the whole horizon, by section and for
    the whole border, double-column: rows the scenarios but the baseline, columns the sections west to east
    and (set apart) the whole border; colour the posterior median of `percent_change` on a diverging scale
    centred at 0; in each cell that median (%) and beneath it the posterior probability of a reduction.
    Cells whose baseline has (almost) nothing to change (`change_summary`'s ``defined``) show "–".
    Surveyed sections are named in bold with a dagger. `prob` is recorded with the summary (the cells show
    no interval). Returns the figure (the caller saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    summary = change_summary(fc, quantity, prob, min_baseline)
    med, p_red = summary["median"], summary["p_reduction"]
    rows = [str(s) for s in med["scenario"].values]
    cols = [str(s) for s in med["section"].values]
    sections = cols[:-1]
    surveyed = set()
    if "surveyed" in fc.coords:
        surveyed = {
            str(s) for s, v in zip(fc["section"].values, fc["surveyed"].values, strict=True) if v
        }
    values = med.transpose("scenario", "section").values
    finite = np.abs(values[np.isfinite(values)])
    limit = float(np.max(finite)) if finite.size and np.max(finite) > 0 else 1.0
    norm = Normalize(-limit, limit)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.9")
    n, gap = len(sections), 0.35
    _, short = QUANTITIES[quantity]
    first, last = (str(np.datetime64(m, "M")) for m in fc["month"].values[[0, -1]])
    with fs.house_style():
        fig, ax = fs.subplots(width=fs.DOUBLE_COLUMN, height=0.9 + 0.36 * len(rows) + 0.9)
        y_edges = np.arange(len(rows) + 1) - 0.5
        mesh = ax.pcolormesh(np.arange(n + 1) - 0.5, y_edges, values[:, :n], cmap=cmap, norm=norm,
                             edgecolors="white", linewidth=0.6)  # fmt: skip
        xw = n - 0.5 + gap
        ax.pcolormesh([xw, xw + 1], y_edges, values[:, n:], cmap=cmap, norm=norm, edgecolors="white",
                      linewidth=0.6)  # fmt: skip
        ax.add_patch(
            plt.Rectangle((xw, -0.5), 1, len(rows), fill=False, lw=0.8, ec="black", zorder=3)
        )
        centres = [*range(n), xw + 0.5]
        for i, s in enumerate(rows):
            for j, (c, x) in enumerate(zip(cols, centres, strict=True)):
                v = float(values[i, j])
                if not np.isfinite(v):
                    ax.text(x, i, "\u2013", ha="center", va="center", fontsize=fs.FONT_PT, color="0.3",
                            gid=f"undefined:{s}:{c}")  # fmt: skip
                    continue
                ink = "white" if abs(norm(v) - 0.5) > 0.32 else "black"
                ax.text(x, i - 0.13, _format_change(v), ha="center", va="center",
                        fontsize=fs.FONT_PT, fontweight="bold" if c == WHOLE_BORDER else "normal",
                        color=ink, gid=f"median:{s}:{c}")  # fmt: skip
                p = float(p_red.sel(scenario=s, section=c))
                ax.text(x, i + 0.24, f"{p:.2f}", ha="center", va="center",
                        fontsize=fs.SMALL_FONT_PT, color=ink, gid=f"p_reduction:{s}:{c}")  # fmt: skip
        ax.set_xlim(-0.5, xw + 1)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        labels = [fs.event_label(c) + ("\u2020" if c in surveyed else "") for c in sections]
        ax.set_xticks(centres, [*labels, "whole border"], rotation=35, ha="right",
                      rotation_mode="anchor")  # fmt: skip
        for text, c in zip(ax.get_xticklabels(), cols, strict=True):
            text.set_fontweight("bold" if c in surveyed or c == WHOLE_BORDER else "normal")
        ax.set_yticks(range(len(rows)), [textwrap.fill(scenario_label(s), 24) for s in rows])
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_xlabel("section (west to east)")
        bar = fig.colorbar(mesh, ax=ax, fraction=0.04, pad=0.015, aspect=15)
        bar.set_label(f"% change in {short}\nover the horizon")
        bar.ax.tick_params(labelsize=fs.SMALL_FONT_PT)
        bar.outline.set_linewidth(0.5)
        note = (
            f"Each cell: the posterior median of the % change of {short} summed over {first} to {last} "
            "against the baseline (per draw), and beneath it the posterior probability of a reduction. "
            "\u2020 surveyed section (individual records); the others are inferred through the hierarchy. "
            f"\u2013 the baseline has almost no {short} there (median total below "
            f"{min_baseline:g}): no % change."
        )
        fig.supxlabel(textwrap.fill(note, 125), x=0.01, ha="left", fontsize=fs.SMALL_FONT_PT,
                      multialignment="left")  # fmt: skip
        return fs.finish_figure(fig, synthetic=_synthetic(fc))
