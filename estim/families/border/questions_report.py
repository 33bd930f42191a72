"""`estim report`'s output: the study's questions (`estim.families.border.questions.study_questions`) as
plain-text tables and as a 2 × 2 figure in the house style (`estim.figure_style`)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd

from estim import figure_style as fs
from estim.families.border.data import CATEGORIES
from estim.families.border.report_years import months_by_year

CATEGORY_NAMES = {c: c.replace("_", " ") for c in CATEGORIES}


def _ci(row: Any, name: str, fmt: str = "{:,.0f}") -> str:
    """Quantity `name` of `row` as "median (lower – upper)"."""
    m, lo, hi = (row[f"{name}_{k}"] for k in ("median", "lower", "upper"))
    return f"{fmt.format(m)} ({fmt.format(lo)} – {fmt.format(hi)})"


def _pct(row: Any, name: str, digits: int = 1) -> str:
    """A share as "41.2 % (39.0 – 43.5 %)"."""
    m, lo, hi = (100 * row[f"{name}_{k}"] for k in ("median", "lower", "upper"))
    return f"{m:.{digits}f} % ({lo:.{digits}f} – {hi:.{digits}f} %)"


def _sign(x: float, fmt: str) -> str:
    """A signed number with a true minus; zero after rounding unsigned."""
    text = fmt.format(x)
    if float(fmt.format(abs(x)).replace(",", "")) == 0:
        return fmt.format(0.0)
    return ("+" if x > 0 else "−") + text.lstrip("-")


def _signed(
    row: Any, name: str, fmt: str = "{:.0f}", scale: float = 100.0, unit: str = " %"
) -> str:
    """A change as "−12 % (−25 – +3 %)" (in % of a share, by default)."""
    m, lo, hi = (_sign(scale * row[f"{name}_{k}"], fmt) for k in ("median", "lower", "upper"))
    return f"{m}{unit} ({lo} – {hi}{unit})"


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    width = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [(str.ljust if i == 0 else str.rjust) for i in range(len(header))]
    return [
        indent + "  ".join(f(c, w) for f, c, w in zip(fmt, r, width, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _notes(items: list[tuple[str, str]], indent: str = "  ", width: int = 110) -> list[str]:
    """What each column means, one entry a line (wrapped, hanging under the text)."""
    key = max(len(k) for k, _ in items)
    lines = []
    for k, v in items:
        hang = indent + " " * (key + 2)
        lines += textwrap.wrap(
            v, width, initial_indent=f"{indent}{k:{key}s}  ", subsequent_indent=hang
        )
    return lines


def _year_months(meta: dict[str, Any]) -> dict[int, int]:
    """The number of fitted months in each calendar year of the tables (their attrs' ``months``; {} for tables
    made before they said)."""
    span = meta.get("months")
    if not span:
        return {}
    months = np.arange(
        np.datetime64(span["first"], "M"), np.datetime64(span["last"], "M") + np.timedelta64(1, "M")
    )
    years = np.unique(months.astype("datetime64[Y]").astype(int) + 1970)
    return {y: len(m) for y, m in months_by_year(months, years).items()}


def _over(meta: dict[str, Any]) -> str:
    """How the whole period's counts are made: "mean per year" (whole years), else "rate per year"."""
    return "rate per year" if meta.get("partial_years") else "mean per year"


def _part_notes(meta: dict[str, Any], what: str) -> list[tuple[str, str]]:
    """A note for each part year: its row holds `what` of its months only."""
    months = _year_months(meta)
    return [
        (p, f"PART YEAR: {what} of its {months[int(p[:4])]} months, not a year's (not comparable with "
            "whole years)")
        for p in meta.get("partial_years") or []
    ]  # fmt: skip


def _whole_note(meta: dict[str, Any]) -> str:
    """What the whole period's row is."""
    if not meta.get("partial_years"):
        return "the mean per year over the period; shares of the period's totals"
    n = meta["months"]["count"]
    return f"a rate per year: the total over its {n} months × 12/{n}; shares of the period's totals"


def format_questions(questions: dict[str, pd.DataFrame]) -> str:
    """`study_questions`' tables as text a researcher reads: one block per question, units in the headers,
    each column explained beneath its table."""
    scale = questions["scale"]
    meta = scale.attrs
    pct, whole = f"{100 * meta['prob']:.4g} %", meta["period"]
    synthetic = " (SYNTHETIC data)" if meta.get("synthetic") else ""
    out = [
        f"The study's questions answered by the border model{synthetic}, {whole}",
        f"Posterior medians, with the central {pct} posterior interval in brackets; shares and ratios are "
        "computed draw by draw.",
        "Unobserved crossings: the journeys never apprehended and the apprehended ones that got through in "
        "the end (after an apprehension a person tries again with the fit's retry probability r).",
        "",
        "1. SCALE: illegal crossings of the whole border, per calendar year",
    ]
    out += _table(
        ["period", "apprehensions", "unobserved crossings", "attempts", "unobserved share of attempts"],
        [
            [r["period"], f"{r['apprehensions']:,.0f}", _ci(r, "unobserved"), _ci(r, "attempts"),
             _pct(r, "unobserved_share")]
            for r in scale.to_dict("records")
        ],
    )  # fmt: skip
    out += _notes(
        [
            ("apprehensions", "apprehensions recorded, per year (observed: no interval)"),
            ("unobserved", "illegal crossings that succeeded without apprehension, per year"),
            (
                "attempts",
                "illegal crossing attempts = apprehensions + unobserved crossings, per year",
            ),
            ("unobserved share", "unobserved crossings ÷ attempts"),
            (whole, _whole_note(meta)),
            *_part_notes(meta, "the crossings and apprehensions"),
        ]
    )
    char = questions["character"]
    out += ["", "2. CHARACTER: unobserved crossings by category", f"a) {whole}, {_over(meta)}"]
    rows = char[char["period"] == whole]
    out += _table(
        ["category", "unobserved crossings per year", "share of all unobserved crossings"],
        [[CATEGORY_NAMES.get(r["category"], r["category"]), _ci(r, "unobserved"), _pct(r, "share")]
         for r in rows.to_dict("records")],
    )  # fmt: skip
    out.append(
        "b) share of each year's unobserved crossings, % (posterior median; intervals: --format json)"
    )
    wide = char.pivot(index="period", columns="category", values="share_median")
    cats = [c for c in CATEGORIES if c in wide.columns]
    out += _table(
        ["period", *(CATEGORY_NAMES[c] for c in cats)],
        [[p, *(f"{100 * wide.loc[p, c]:.1f}" for c in cats)] for p in char["period"].unique()],
    )
    out += _notes(
        [
            ("border resident", "residents of the border zone crossing outside a checkpoint"),
            (
                "bypasser",
                "law-abiding foreigners who cross outside a checkpoint (e.g. to avoid a queue)",
            ),
            # the categories' seasons differ: a part year's shares are those of its season
            *_part_notes(meta, "the shares"),
        ]
    )
    out += _routes(questions, whole)
    out += _causes(questions, pct)
    return "\n".join(out)


def _routes(questions: dict[str, pd.DataFrame], whole: str) -> list[str]:
    routes = questions["routes"]
    meta = routes.attrs
    out = ["", "3. ROUTES: unobserved crossings by section", f"a) {whole}, {_over(meta)}"]
    rows = routes[routes["period"] == whole]
    out += _table(
        ["section", "records", "length km", "apprehensions", "unobserved crossings",
         "per 100 km", "share of the border"],
        [[r["section"], "surveyed" if r["surveyed"] else "inferred", f"{r['length_km']:,.0f}",
          f"{r['apprehensions']:,.0f}", _ci(r, "unobserved"), _ci(r, "per_100km"), _pct(r, "share")]
         for r in rows.to_dict("records")],
    )  # fmt: skip
    out += _notes(
        [
            ("records", "surveyed: individual apprehension records, whose repeat apprehensions identify "
             "the apprehension probability; inferred: monthly totals only, estimated through the "
             "sections' hierarchy and the bypass block"),
            ("per 100 km", "unobserved crossings per 100 km of border, per year"),
            ("share", "the section's share of the whole border's unobserved crossings"),
        ]
    )  # fmt: skip
    if "study_sections" in questions:
        study = questions["study_sections"]
        names = list(study["group"].unique())
        first = study[study["group"] == names[0]].iloc[0]
        out.append(
            f"b) {names[0]} against the {names[1]}: {names[0]} are {100 * first['length_share']:.1f} % of "
            f"the border's length ({first['length_km']:,.0f} km)"
        )
        wide = study.set_index(["period", "group"])
        out += _table(
            ["period", f"{names[0]}: share of unobserved crossings", f"per 100 km: {names[0]}",
             f"per 100 km: {names[1]}"],
            [[p, _pct(wide.loc[(p, names[0])], "share"), _ci(wide.loc[(p, names[0])], "per_100km"),
              _ci(wide.loc[(p, names[1])], "per_100km")] for p in study["period"].unique()],
        )  # fmt: skip
    out.append(
        "c) unobserved crossings per section and year (posterior median; intervals: --format json)"
    )
    wide = routes[routes["period"] != whole].pivot(
        index="section", columns="period", values="unobserved_median"
    )
    periods = [p for p in routes["period"].unique() if p != whole]
    out += _table(
        ["section", *periods],
        [[s, *(f"{wide.loc[s, p]:,.0f}" for p in periods)] for s in routes["section"].unique()],
    )
    parts = _part_notes(meta, "the crossings")
    return out + (_notes(parts) if parts else [])


def _causes(questions: dict[str, pd.DataFrame], pct: str) -> list[str]:
    out = ["", "4. CAUSES"]
    bypass = questions["bypass"]
    out.append("a) waiting time at the checkpoints -> bypassing them")
    rows = []
    for r in bypass.to_dict("records"):
        unit = "" if r["unit"] in ("1", "×", "fraction") else f", {r['unit']}"
        if r["quantity"] == "share_change_relative":
            value = _signed(r, "value", "{:.1f}")
        elif r["quantity"] == "share_change":
            value = _signed(r, "value", "{:.2f}", 1.0, "")
        else:
            value = _ci(r, "value", "{:.3f}" if r["unit"] == "×" else "{:,.2f}")
        rows.append([r["meaning"] + unit, value])
    out += _table(["quantity", f"median ({pct} interval)"], rows)
    wait = bypass.attrs.get("mean_wait_minutes")
    out += _notes(
        [
            ("model", "bypass share = expit(η0 + η1 log(wait/60)): the odds of bypassing a land checkpoint "
             "grow as wait^η1, so halving every wait multiplies them by 2^(−η1)"),
            ("mean wait", f"{wait:.1f} min, the mean wait a foreigner met at the land checkpoints, "
             "weighted by crossings" if wait is not None
             else "not at hand (the fit's record folder was not found): no shares"),
        ]
    )  # fmt: skip
    season = questions["season"]
    out.append(
        "b) season of journeys (bypassers follow the checkpoint flows: no season of their own)"
    )
    out += _table(
        ["category", "peak month (probability)", "trough month (probability)", "peak ÷ trough"],
        [[CATEGORY_NAMES.get(r["category"], r["category"]), f"{r['peak_month']} ({r['peak_probability']:.0%})",
          f"{r['trough_month']} ({r['trough_probability']:.0%})", _ci(r, "peak_trough_ratio", "{:.2f}")]
         for r in season.to_dict("records")],
    )  # fmt: skip
    out += _notes(
        [
            (
                "peak month",
                "the month with the most expected journeys: posterior mode, and its probability",
            ),
            (
                "peak ÷ trough",
                "expected journeys in the peak month ÷ in the trough month (two harmonics)",
            ),
        ]
    )
    policy = questions["policy"]
    out.append("c) policy events: change of each category's journeys once the event is in force")
    out += _table(
        ["event (in force from)", "category", "change of journeys", "P(reduction)"],
        [[f"{r['event'].replace('_', ' ')} ({r['start_date']})" if isinstance(r["start_date"], str)
          else r["event"].replace("_", " "), CATEGORY_NAMES.get(r["category"], r["category"]),
          _signed(r, "change"), f"{r['p_reduction']:.2f}"]
         for r in policy.to_dict("records")],
    )  # fmt: skip
    out += _notes(
        [
            ("change", "θ − 1, θ = journeys with the event in force ÷ journeys without it (−20 % is a "
             "fifth fewer)"),
            ("P(reduction)", "posterior probability that the event reduced the journeys (θ < 1)"),
        ]
    )  # fmt: skip
    return out


# Okabe–Ito colours for the categories (colour-blind safe; blue stays the estimates' colour)
CATEGORY_COLOURS = {
    "border_resident": "#E69F00",
    "labour_migrant": "#56B4E9",
    "transit_migrant": "#009E73",
    "smuggler": "#CC79A7",
    "bypasser": "#F0E442",
}
STUDY_COLOUR = "#E69F00"


def questions_figure(questions: dict[str, pd.DataFrame]) -> Any:
    """The four questions in a 2 × 2 figure: a scale (the whole border's unobserved crossings and attempts
    per year, with bands, and the apprehensions), b character (each category's share of the year's
    unobserved crossings, stacked posterior means), c routes (unobserved crossings per 100 km per section,
    with intervals; Omsk and Orenburg highlighted), d causes (the policy events' effects as a forest plot,
    with the halving-wait bypass effect in the legend). Returns the matplotlib figure (the caller saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    meta = questions["scale"].attrs
    prob, whole = meta["prob"], meta["period"]
    with fs.house_style():
        fig, axes = fs.subplots(2, 2, width=fs.DOUBLE_COLUMN, height=6.4)
        _scale_panel(axes[0, 0], questions, whole)
        _character_panel(axes[0, 1], questions, whole)
        _routes_panel(axes[1, 0], questions, whole)
        _policy_panel(axes[1, 1], questions)
        blue = fs.COLOURS["estimate"]
        band = {"alpha": fs.BAND_ALPHA, "lw": 0}
        handles = [
            Patch(color=blue, **band, label=fs.interval_label(prob)),
            Line2D([], [], color=blue, lw=1.2, label="posterior median"),
            Line2D([], [], ls="", marker="o", ms=4, mfc=blue, mec=blue,
                   label="surveyed section (individual records)"),
            Line2D([], [], ls="", marker="o", ms=4, mfc="white", mec=blue,
                   label="section inferred through the hierarchy"),
        ]  # fmt: skip
        study = questions.get("study_sections")
        if study is not None:
            r = study[study["period"] == whole].iloc[0]
            label = (
                f"the study's sections ({r['group']}): {100 * r['length_share']:.0f} % of the\n"
                f"length, {_pct(r, 'share', 0)} of unobserved crossings"
            )
            handles.append(Patch(color=STUDY_COLOUR, alpha=0.2, lw=0, label=label))
        bypass = questions["bypass"].set_index("quantity")
        if "share_change_relative" in bypass.index:
            r = bypass.loc["share_change_relative"]
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    label=f"causes, waits halved:\nbypass share {_signed(r, 'value')}",
                )
            )
        if meta.get("partial_years"):
            handles.append(Patch(**PART_YEAR, label="part year: its months' total × 12/months"))
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        return fs.finish_figure(fig, synthetic=bool(meta.get("synthetic", False)))


PART_YEAR = {"facecolor": "none", "edgecolor": fs.COLOURS["event"], "hatch": "////", "lw": 0}
"""How a part year is marked in the figure (as in `estim.families.border.report.border_figure`)."""


def _years(frame: pd.DataFrame, whole: str) -> pd.DataFrame:
    """The rows of the calendar years (a part year's period, "2017 (Jan–Jun)", gives its year), with their
    ``year`` and ``months`` (the fitted months in the year)."""
    rows = frame[frame["period"] != whole].copy()
    rows["year"] = rows["period"].str[:4].astype(int)
    months = _year_months(frame.attrs)
    rows["months"] = [months.get(y, 12) for y in rows["year"]]
    return rows


def _scale_panel(ax: Any, questions: dict[str, pd.DataFrame], whole: str) -> None:
    """The whole border per calendar year: a part year over its months only, at their rate per year (its
    total × 12/months, hatched: its total would read as a fall)."""
    scale = _years(questions["scale"], whole)
    years, n = scale["year"].to_numpy(), scale["months"].to_numpy()
    start, end = float(years[0]), float(years[-1] + 1)
    span = questions["scale"].attrs.get("months")
    # the months are contiguous: only the first and the last year can be part years
    if span and (n < 12).any():
        start = years[0] + (np.datetime64(span["first"], "M").astype(int) % 12) / 12
        end = years[-1] + (np.datetime64(span["last"], "M").astype(int) % 12 + 1) / 12
    edges = np.array([start, *years[1:], end], dtype=float)
    rate = 12 / n
    styles = (
        ("attempts", "#009E73", "attempts"),
        ("unobserved", fs.COLOURS["estimate"], "unobserved"),
    )
    for name, colour, label in styles:
        ax.stairs(scale[f"{name}_upper"] * rate, edges, baseline=scale[f"{name}_lower"] * rate,
                  fill=True, color=colour, alpha=fs.BAND_ALPHA, lw=0)  # fmt: skip
        ax.stairs(scale[f"{name}_median"] * rate, edges, baseline=None, color=colour, lw=1.2,
                  label=label)  # fmt: skip
    ax.stairs(scale["apprehensions"] * rate, edges, baseline=None, color=fs.COLOURS["observed"], lw=1,
              ls=(0, (3, 1.5)), label="apprehensions (recorded)")  # fmt: skip
    for i in np.flatnonzero(n < 12):
        ax.axvspan(edges[i], edges[i + 1], zorder=0, **PART_YEAR)
    events = fs.policy_events(
        [{"event": r["event"], "date": r["start_date"]}
         for r in questions["policy"].drop_duplicates("event").to_dict("records")
         if isinstance(r["start_date"], str)]
    )  # fmt: skip
    events = [(e, d) for e, d in events if edges[0] <= fs.decimal_year(d) <= edges[-1]]
    fs.mark_events(ax, events, years=True)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, float((scale["attempts_upper"] * rate).max()) * 1.1)
    mids = (edges[:-1] + edges[1:]) / 2
    ticks = [(m, y) for m, y in zip(mids, years, strict=True) if (y - years[0]) % 2 == 0]
    ax.set_xticks([m for m, _ in ticks], [str(y) for _, y in ticks])
    ax.set_xticks(edges, minor=True)
    ax.tick_params(axis="x", which="major", length=0)
    ax.set_xlabel("year (dashed grey: policy events)")
    ax.set_ylabel("illegal crossings per year")
    fs.count_axis(ax, "y")
    ax.legend(loc="lower left")
    ax.set_title("a  scale: whole border")


def _character_panel(ax: Any, questions: dict[str, pd.DataFrame], whole: str) -> None:
    char = _years(questions["character"], whole)
    wide = char.pivot(index="year", columns="category", values="share_mean")
    bottom = np.zeros(len(wide))
    for c in [c for c in CATEGORY_COLOURS if c in wide.columns]:
        ax.bar(wide.index, 100 * wide[c], bottom=bottom, width=0.85,
               color=CATEGORY_COLOURS[c], label=c.replace("_", " "))  # fmt: skip
        bottom += 100 * wide[c].to_numpy()
    part = sorted(set(char.loc[char["months"] < 12, "year"]))
    if part:  # its months' shares: the categories' seasons differ
        ax.bar(part, 100, width=0.85, zorder=3, **PART_YEAR)
    ax.set_ylim(0, 100)
    ax.set_xlim(wide.index[0] - 0.6, wide.index[-1] + 0.6)
    ticks = [int(t) for t in wide.index if (t - wide.index[0]) % 2 == 0]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("year")
    ax.set_ylabel("% of the year's unobserved crossings")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="category\n(posterior mean)")
    ax.set_title("b  character: by category")


def _routes_panel(ax: Any, questions: dict[str, pd.DataFrame], whole: str) -> None:
    rows = questions["routes"]
    rows = rows[rows["period"] == whole].reset_index(drop=True)
    blue = fs.COLOURS["estimate"]
    y = np.arange(len(rows))
    surveyed = rows["surveyed"].to_numpy(bool)
    study = rows["study_section"].to_numpy(bool)
    for i in y[study]:
        ax.axhspan(i - 0.5, i + 0.5, color=STUDY_COLOUR, alpha=0.2, lw=0, zorder=0)
    ax.hlines(
        y, rows["per_100km_lower"], rows["per_100km_upper"], lw=4, color=blue, alpha=fs.BAND_ALPHA
    )
    dot = {"ls": "", "marker": "o", "ms": 4, "mew": 1, "mec": blue, "zorder": 3}
    med = rows["per_100km_median"].to_numpy()
    ax.plot(med[surveyed], y[surveyed], mfc=blue, **dot)
    ax.plot(med[~surveyed], y[~surveyed], mfc="white", **dot)
    ax.set_yticks(y, [s.replace("_", " ") for s in rows["section"]])
    for label, s in zip(ax.get_yticklabels(), surveyed, strict=True):
        label.set_fontweight("bold" if s else "normal")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("unobserved crossings per 100 km per year")
    fs.count_axis(ax, "x", "log")
    over = "rate" if questions["routes"].attrs.get("partial_years") else "mean"
    ax.set_title(f"c  routes: by section, {over} {whole}")


def _policy_panel(ax: Any, questions: dict[str, pd.DataFrame]) -> None:
    from matplotlib.ticker import NullLocator

    policy = questions["policy"]
    y, labels, pos = 0.0, [], []
    for event, rows in policy.groupby("event", sort=False):
        date = rows["start_date"].iloc[0]
        head = event.replace("_", " ") + (f" ({date[:4]})" if isinstance(date, str) else "")
        ax.text(0.0, y, head, transform=ax.get_yaxis_transform(), ha="left", va="center",
                fontsize=fs.SMALL_FONT_PT, fontweight="bold")  # fmt: skip
        y += 1
        for r in rows.to_dict("records"):
            colour = CATEGORY_COLOURS.get(r["category"], fs.COLOURS["estimate"])
            ax.hlines(y, r["multiplier_lower"], r["multiplier_upper"], color=colour, lw=1.6)
            ax.plot(r["multiplier_median"], y, "o", ms=3.5, color=colour, mec="black", mew=0.4)
            pos.append(y)
            labels.append(r["category"].replace("_", " "))
            y += 1
        y += 0.4
    ax.axvline(1.0, color=fs.COLOURS["event"], lw=0.7)
    ax.set_xscale("log")
    lo = min(policy["multiplier_lower"].min(), 0.5)
    hi = max(policy["multiplier_upper"].max(), 1.5)
    ax.set_xlim(lo / 1.1, hi * 1.1)
    ticks = [t for t in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0) if lo / 1.1 <= t <= hi * 1.1]
    ax.set_xticks(ticks, [_sign(100 * (t - 1), "{:.0f}") + " %" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(pos, labels)
    ax.set_ylim(y - 0.4, -0.7)
    ax.set_xlabel("change of journeys with the event in force (log scale)")
    ax.set_title("d  causes: policy events")
