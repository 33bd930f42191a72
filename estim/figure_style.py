"""The house style of every figure estim makes (re-exported by `estim.report.figures`).

It sits in the base stage so that a family's own report (rank 3) and `estim.report` (rank 6) draw alike.
The rules:

* **size**: made at print size for a journal column, `SINGLE_COLUMN` (3.5 in) or `DOUBLE_COLUMN` (7.2 in)
  wide, so that nothing is scaled down when the figure is placed;
* **fonts**: DejaVu Sans, `FONT_PT` (8 pt) for labels and titles, `SMALL_FONT_PT` (7 pt) for ticks, legends
  and notes; nothing below `MIN_FONT_PT` (7 pt) — `finish_figure` enforces it;
* **axes**: every axis says what it counts and per what ("unobserved crossings per year", "apprehensions per
  month"); counts are shown as counts: thousands separators (12,345) and, on log axes, 1, 10, 100, 1,000
  rather than powers of ten (`count_axis`);
* **intervals**: a legend entry states the level, from the probability used (`interval_label`: "90 %
  posterior interval"), never a hard-coded one;
* **SYNTHETIC**: a figure of simulated data carries a SYNTHETIC watermark (`stamp_synthetic`);
* **time axes**: policy events as dashed vertical lines (`mark_events`);
* **sections**: the surveyed ones (individual records) filled and named in bold, those inferred through the
  hierarchy open, and the legend says which is which;
* **colours**: the colour-blind-safe `COLOURS`; estimates blue, truth black, values outside their interval
  vermilion, events grey.

A function that makes a figure draws it inside ``with house_style():``, ends with `finish_figure` and returns
it; `estim.report.figures.save_figure` writes it (also inside the style, so that ticks made at save time
follow it).
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

SINGLE_COLUMN = 3.5
"""Width of a single journal column, inches."""
DOUBLE_COLUMN = 7.2
"""Width of a full page (two columns), inches."""
FONT_PT = 8
"""Axis labels, titles, body text."""
SMALL_FONT_PT = 7
"""Tick labels, legends, annotations."""
MIN_FONT_PT = 7
"""No text of a figure is smaller, at its print size."""

COLOURS = {
    "estimate": "#0072B2",
    "truth": "black",
    "observed": "black",
    "outside": "#D55E00",
    "event": "0.45",
}
BAND_ALPHA = 0.3
SYNTHETIC_GID = "synthetic-stamp"

STYLE_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.titlelocation": "left",
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": SMALL_FONT_PT,
    "ytick.labelsize": SMALL_FONT_PT,
    "legend.fontsize": SMALL_FONT_PT,
    "legend.title_fontsize": SMALL_FONT_PT,
    "legend.frameon": False,
    "figure.titlesize": FONT_PT,
    "figure.labelsize": FONT_PT,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "errorbar.capsize": 0,
    "axes.formatter.use_mathtext": False,
    "figure.dpi": 150,
    "figure.constrained_layout.use": True,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}
"""matplotlib rcParams of the house style (`house_style` applies them)."""


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Draw (and save) figures in the house style inside this block."""
    import matplotlib

    with matplotlib.rc_context(STYLE_RC):
        yield


def subplots(
    nrows: int = 1, ncols: int = 1, *, width: float = SINGLE_COLUMN, height: float, **kwargs: Any
) -> tuple[Any, Any]:
    """`plt.subplots` at a column width (inches), constrained layout; call inside `house_style`."""
    import matplotlib.pyplot as plt

    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def format_count(value: float, pos: Any = None) -> str:
    """A count as a reader writes it: 12345 -> "12,345"; fractions below 1 as they are (0.5)."""
    if value != 0 and abs(value) < 1:
        return f"{value:g}"
    return f"{value:,.0f}"


def count_formatter() -> Any:
    """A tick formatter for count axes (thousands separators); one per axis."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(format_count)


def count_axis(ax: Any, axis: str = "y", scale: str = "linear") -> None:
    """Make `axis` ("x" or "y") of `ax` a count axis: `scale` linear, log or symlog (0 shown, linear up to 1),
    ticks labelled as counts with thousands separators, minor ticks unlabelled. Call it after plotting: a
    log axis that spans less than 3 decades (symlog: up to 200) is also labelled at 2 and 5 (1, 2, 5, 10, …)."""
    from matplotlib.ticker import LogLocator, NullFormatter, SymmetricalLogLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    set_scale = ax.set_yscale if axis == "y" else ax.set_xscale
    if scale == "symlog":
        set_scale("symlog", linthresh=1, linscale=0.5)
    elif scale != "linear":
        set_scale(scale)
    target.set_major_formatter(count_formatter())
    if scale == "linear":
        return
    target.set_minor_formatter(NullFormatter())
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    if (scale == "symlog" and hi < 200) or (scale == "log" and lo > 0 and hi / lo < 1000):
        subs = (1.0, 2.0, 5.0)
        locator = (
            SymmetricalLogLocator(linthresh=1, base=10, subs=subs)
            if scale == "symlog"
            else LogLocator(base=10, subs=subs)
        )
        target.set_major_locator(locator)


def percent(prob: float) -> str:
    """0.9 -> "90 %" (0.975 -> "97.5 %")."""
    return f"{100 * prob:.4g} %"


def interval_label(prob: float, kind: str = "posterior") -> str:
    """The legend entry of an interval: "90 % posterior interval" (`kind` "" -> "90 % interval")."""
    return " ".join(p for p in (percent(prob), kind, "interval") if p)


def event_label(name: str) -> str:
    """A policy event's name for a figure: "customs_union" -> "customs union"."""
    return str(name).replace("_", " ")


def policy_events(events: Any) -> list[tuple[str, np.datetime64]]:
    """Policy events as (name, date) pairs, sorted by date, from any of: None; a mapping name -> date; a
    records table (``policy_events.csv``: ``kind``, ``start_date``, rows of ``section_id`` "*" only);
    dicts with ``event``/``kind`` and ``date``/``start_date``; (name, date) pairs; a JSON list of dicts."""
    if events is None:
        return []
    if isinstance(events, str):
        events = json.loads(events)
    if hasattr(events, "to_dict") and hasattr(events, "columns"):  # a DataFrame
        if "section_id" in events.columns:
            events = events[events["section_id"].astype(str) == "*"]
        events = events.to_dict("records")
    items = events.items() if isinstance(events, Mapping) else events
    out = []
    for item in items:
        if isinstance(item, Mapping):
            name = item.get("event", item.get("kind"))
            date = item.get("date", item.get("start_date"))
        else:
            name, date = item
        out.append((str(name), np.datetime64(str(date)[:10], "D")))
    return sorted(out, key=lambda e: e[1])


def events_in_fit(tree: Any) -> list[dict[str, str]]:
    """The policy events a saved fit records: a coordinate or variable ``event_start`` along ``event`` in
    any of its groups (none when the fit has no dates for its events)."""
    for node in tree.subtree:
        ds = node.dataset
        if "event_start" in ds.variables and "event" in ds["event_start"].dims:
            starts = ds["event_start"]
            return [
                {"event": str(e), "date": str(np.datetime64(str(d)[:10], "D"))}
                for e, d in zip(starts["event"].values, starts.values, strict=True)
            ]
    return []


def decimal_year(date: np.datetime64) -> float:
    """2009-07-02 -> 2009.5: a date on an axis of years."""
    day = np.datetime64(date, "D")
    year = day.astype("datetime64[Y]")
    start = year.astype("datetime64[D]")
    length = ((year + np.timedelta64(1, "Y")).astype("datetime64[D]") - start).astype(int)
    return float(year.astype(int) + 1970 + (day - start).astype(int) / length)


def mark_events(
    ax: Any, events: list[tuple[str, np.datetime64]], *, years: bool = False, labels: bool = False
) -> Any:
    """Dashed vertical lines at the policy events on the time axis (x) of `ax`; `years` when x is in
    (decimal) years rather than dates; `labels` writes each event's name and date down the right of its
    line, from the top (leave room there). Returns a legend
    handle for "policy event", or None when there are none."""
    from matplotlib.lines import Line2D

    for name, date in events:
        x = decimal_year(date) if years else date
        ax.axvline(x, color=COLOURS["event"], lw=0.7, ls=(0, (4, 2)), zorder=1)
        if labels:
            ax.text(
                x,
                0.98,
                "\n".join([*textwrap.wrap(event_label(name), 16), str(date)]),
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="left",
                va="top",
                linespacing=1.0,
                fontsize=SMALL_FONT_PT,
                color="0.3",
            )
    if not events:
        return None
    return Line2D([], [], color=COLOURS["event"], lw=0.7, ls=(0, (4, 2)), label="policy event")


def is_synthetic(attrs: Mapping[str, Any]) -> bool:
    """Whether a saved fit's data were simulated (its ``data_synthetic`` attr, or, in a fit saved before that
    attr, a ``data_source`` that says SYNTHETIC)."""
    if "data_synthetic" in attrs:
        return str(attrs["data_synthetic"]).lower() == "true"
    return str(attrs.get("data_source", "")).startswith("SYNTHETIC")


def stamp_synthetic(figure: Any, synthetic: bool = True) -> Any:
    """Watermark `figure` SYNTHETIC (large, faint, diagonal, behind the data) when `synthetic`."""
    if synthetic:
        figure.text(
            0.5,
            0.5,
            "SYNTHETIC",
            ha="center",
            va="center",
            rotation=25,
            fontsize=5 * FONT_PT,
            fontweight="bold",
            color="0.5",
            alpha=0.15,
            zorder=0,
            gid=SYNTHETIC_GID,
        )
    return figure


def finish_figure(figure: Any, *, synthetic: bool = False) -> Any:
    """The last step of every figure: tick labels at `SMALL_FONT_PT` (also those made when it is saved), no
    text below `MIN_FONT_PT`, and the SYNTHETIC watermark when the data were simulated."""
    from matplotlib.text import Text

    for ax in figure.axes:
        ax.tick_params(labelsize=SMALL_FONT_PT)
    for text in figure.findobj(Text):
        if text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    return stamp_synthetic(figure, synthetic)


def figure_texts(figure: Any) -> list[Any]:
    """Every visible, non-empty text of a drawn figure (tick labels included), for checks of the style."""
    from matplotlib.text import Text

    figure.canvas.draw()
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
