"""The study's own questions — scale, character, routes and causes of illegal crossings — answered from a border
fit alone (`estim report`; docs/questions.md says how each is answered and from which quantities).

`study_questions` returns a dict of pandas DataFrames, one per table, in tidy form: one row per period (a
calendar year, or the whole period, labelled "2006–2017", whose counts are a rate per year — the total over the
fitted months × 12 / their number, with whole years the mean over the years — and whose shares are shares of the
period's totals), category, section, event … and, for every estimated quantity ``x``, the columns
``x_median``, ``x_lower`` and ``x_upper`` (posterior median and the central `prob` interval,
`estim.intervals.equal_tailed`). Shares and ratios are computed draw by draw, then summarised. Each table's
``attrs`` say what it is: ``title``, ``columns`` (the meaning of each column), ``prob``, ``synthetic`` (the
fit's ``data_synthetic``), ``period``, ``years``, ``months`` (the first, the last and the number of fitted
months) and ``partial_years``.

Records that start or stop mid-year (June 2017): a calendar year the fit covers in part keeps its row, the
total over the months it has, labelled with them ("2017 (Jan–Jun)", listed in ``partial_years``: not a year's
total, nor comparable with whole years), and the whole period, labelled with its months ("2006-01 … 2017-06"),
is the rate over the fitted months, not the total of 11½ years divided by 12 (as `estim.families.border.report`).

Tables: ``scale`` (whole border per year: apprehensions, unobserved crossings, attempts, unobserved share),
``character`` (per category), ``routes`` (per section), ``study_sections`` (Omsk + Orenburg against the other
sections), ``bypass`` (waiting time → bypass: η1 and a halving of waits), ``season`` (peak month, peak/trough
ratio), ``season_profile`` (the seasonal factor by month) and ``policy`` (each event on each category).

Counts are the posterior draws a saved fit keeps (``unobserved_*_year``); apprehensions are observed. Section
lengths and the mean wait come from the record folder the fit was made from (the spec's ``[data] records``,
relative to the working folder or the repository), or are given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border.data import harmonics
from estim.families.border.report import surveyed_sections
from estim.families.border.report_years import fitted_months, months_by_year, year_label
from estim.figure_style import events_in_fit, is_synthetic
from estim.intervals import equal_tailed

SAMPLE = ("chain", "draw")
STUDY_SECTIONS = ("omsk", "orenburg")
"""The sections the study surveyed (41 % of the border's length)."""
LAND_CHECKPOINTS = ("road", "rail", "river")  # the checkpoints a bypasser walks or drives around
PER_KM = 100.0  # densities per 100 km of border
PER_FLOW = 10_000.0  # bypass shares per 10,000 foreign land crossings
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NEEDED = ("unobserved_border_year", "unobserved_section_year", "unobserved_category_year")
NEEDED += ("bypass_eta0", "bypass_eta1", "season", "log_policy_effect")


def data_folder(tree: xr.DataTree) -> Path | None:
    """The record folder the fit was made from (its spec's ``[data] records``): absolute, or relative to the
    repository (the shipped fit's ``data/synthetic``), if it is there. Not the current folder: the same fit
    must not read other records from elsewhere (`estim report` resolves the folder from the fit's own place
    and checks its data hash, `estim.run.data.fit_records_folder`)."""
    from estim.paths import REPO_ROOT

    try:
        spec = json.loads(str(tree.attrs.get("spec_json") or "{}"))
    except json.JSONDecodeError:
        return None
    records = (spec.get("data") or {}).get("records")
    if not records:
        return None
    path = Path(records)
    candidates = [path] if path.is_absolute() else [REPO_ROOT / path]
    return next((c for c in candidates if c.is_dir()), None)


def _read_table(folder: Path | None, name: str) -> pd.DataFrame | None:
    """A record table of `folder` (CSV or Parquet), or None when absent."""
    if folder is None:
        return None
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return read(path)
    return None


def section_lengths(
    tree: xr.DataTree, sections: pd.DataFrame | None = None, folder: Path | None = None
) -> pd.Series:
    """Each fitted section's length in km: from `sections` (``section_id``, ``length_km``), else the
    ``sections`` table of the fit's record folder (`folder`, or `data_folder`), else the shipped
    ``data/sections.csv``."""
    from estim.paths import SECTIONS_CSV

    where = "the sections table given"
    if sections is None:
        folder = folder or data_folder(tree)
        sections = _read_table(folder, "sections")
        where = f"{folder}/sections" if sections is not None else str(SECTIONS_CSV)
        if sections is None:
            sections = pd.read_csv(SECTIONS_CSV)
    if not {"section_id", "length_km"} <= set(sections.columns):
        raise EstimInputError(f"{where}: needs the columns section_id and length_km")
    lengths = sections.set_index(sections["section_id"].astype(str))["length_km"].astype(float)
    fitted = [str(s) for s in tree["posterior"]["section"].values]
    missing = [s for s in fitted if s not in lengths.index]
    if missing:
        raise EstimInputError(f"{where}: no length_km for the fitted sections {missing}")
    return lengths.loc[fitted]


def mean_wait(tree: xr.DataTree, folder: Path | None = None) -> float | None:
    """The mean wait (minutes) a foreigner met at the land checkpoints over the fitted months: the waits of the
    fit's record folder (`folder`, or `data_folder`) weighted by foreign crossings. None when the records are
    not at hand."""
    folder = folder or data_folder(tree)
    flows, checkpoints = (_read_table(folder, n) for n in ("checkpoint_records", "checkpoints"))
    if flows is None or checkpoints is None:
        return None
    land = checkpoints.loc[checkpoints["type"].astype(str).isin(LAND_CHECKPOINTS), "checkpoint_id"]
    flows = flows[flows["checkpoint_id"].isin(land)].dropna(subset=["mean_wait_minutes"])
    month = pd.to_datetime(flows["month"].astype(str)).to_numpy().astype("datetime64[M]")
    flows = flows[np.isin(month, _months(tree))]  # not the months of a part year the fit lacks
    weight = flows["crossings_foreigners"].to_numpy(float)
    if weight.sum() <= 0:
        return None
    return float((weight * flows["mean_wait_minutes"].to_numpy(float)).sum() / weight.sum())


def _apprehensions(tree: xr.DataTree) -> xr.DataArray:
    """Recorded apprehensions per section × year (observed)."""
    if "crossings" in tree.children and "apprehensions" in tree["crossings"].dataset:
        k = tree["crossings"]["apprehensions"].sum("category")
    elif (
        "observed_data" in tree.children
        and "monthly_apprehensions" in tree["observed_data"].dataset
    ):
        k = tree["observed_data"]["monthly_apprehensions"]
    else:
        raise EstimInputError("the fit holds no apprehensions (groups crossings or observed_data)")
    k = k.reset_coords(drop=True)
    year = pd.DatetimeIndex(k["month"].values).year.values
    return k.assign_coords(year=("month", year)).groupby("year").sum().astype(float)


def _months(tree: xr.DataTree) -> np.ndarray:
    """The months the fit covers (``datetime64[M]``): those of its ``crossings`` table
    (`report_years.fitted_months`), else of its observed monthly totals."""
    if "crossings" in tree.children and "month" in tree["crossings"].coords:
        return fitted_months(tree)
    if "observed_data" in tree.children and "month" in tree["observed_data"].coords:
        return np.asarray(tree["observed_data"]["month"].values).astype("datetime64[M]")
    raise EstimInputError("the fit holds no months (groups crossings or observed_data)")


class _Periods:
    """The periods of the tables: each calendar year the fit covers, labelled "2016", or with the months it
    has when it covers a part of it ("2017 (Jan–Jun)", `report_years.year_label`), and the whole period
    (`label`: "2006–2017", or "2006-01 … 2017-06" when a year is a part year)."""

    def __init__(self, tree: xr.DataTree, years: np.ndarray) -> None:
        self.months = _months(tree)
        covered = months_by_year(self.months, years)
        lacking = [y for y, m in covered.items() if not m]
        if lacking:
            raise EstimInputError(
                f"the fit's posterior has years {lacking} that none of its months "
                f"({self.months[0]} … {self.months[-1]}) is in"
            )
        self.labels = {y: year_label(y, m) for y, m in covered.items()}
        self.partial = [self.labels[y] for y, m in covered.items() if len(m) < 12]
        first, last = (self.months[0], self.months[-1]) if self.partial else (years[0], years[-1])
        self.label = f"{first} … {last}" if self.partial else f"{first}–{last}"

    def per_year(self, total: Any) -> Any:
        """A total over the fitted months as a rate per year (× 12 first: with whole years, of integer counts,
        the mean over the years to the bit, as `estim.families.border.report`)."""
        return total * 12 / self.months.size

    def __call__(self, x: xr.DataArray) -> xr.DataArray:
        """`x` per calendar year (``period`` "2006", … "2017 (Jan–Jun)": a part year's total over its months)
        and over the whole period (the rate per year over the fitted months)."""
        years = x.assign_coords(year=[self.labels[int(y)] for y in x["year"].values])
        whole = self.per_year(x.sum("year")).expand_dims(period=[self.label])
        return xr.concat([years.rename(year="period"), whole], "period")


def _intervals(draws: dict[str, xr.DataArray], prob: float, dims: list[str]) -> pd.DataFrame:
    """One row per cell of `dims`; for each quantity its posterior median and central `prob` interval."""
    columns = {}
    for name, d in draws.items():
        q = equal_tailed(d, prob)
        for k in ("median", "lower", "upper"):
            columns[f"{name}_{k}"] = q.sel(quantile=k, drop=True).reset_coords(drop=True)
    return xr.Dataset(columns).to_dataframe(dim_order=dims).reset_index()


def _check(tree: xr.DataTree) -> xr.Dataset:
    if "posterior" not in tree.children:
        raise EstimInputError("not a fit: it has no posterior group")
    post = tree["posterior"].to_dataset()
    missing = [v for v in NEEDED if v not in post]
    if missing:
        raise EstimInputError(
            f"the fit's posterior lacks {', '.join(missing)}: not a fit of the border model (refit it "
            "with `estim fit` if it was made by an older estim)"
        )
    return post


def study_questions(
    tree: xr.DataTree,
    prob: float = 0.9,
    *,
    sections: pd.DataFrame | None = None,
    wait_minutes: float | None = None,
    folder: Path | None = None,
) -> dict[str, pd.DataFrame]:
    """The study's questions answered from the border fit `tree`, with central `prob` posterior intervals
    (module docstring for the tables). `sections` (``section_id``, ``length_km``) and `wait_minutes` (the mean
    wait at the land checkpoints) replace what is read from the fit's record folder (`folder`, or
    `data_folder`)."""
    post = _check(tree)
    years = post["year"].values
    k_sy = _apprehensions(tree).sel(year=years, section=post["section"].values)
    periods = _Periods(tree, years)
    label = periods.label
    sections_fit = [str(s) for s in post["section"].values]
    lengths = xr.DataArray(section_lengths(tree, sections, folder).to_numpy(), dims="section")
    lengths = lengths.assign_coords(section=post["section"].values)
    surveyed = surveyed_sections(tree)
    out: dict[str, pd.DataFrame] = {}

    # scale: attempts = apprehensions (observed) + unobserved crossings, per draw
    unobserved = periods(post["unobserved_border_year"].astype(float))
    apprehended = periods(k_sy.sum("section"))
    attempts = unobserved + apprehended
    scale = _intervals(
        {
            "unobserved": unobserved,
            "attempts": attempts,
            "unobserved_share": unobserved / attempts,
        },
        prob,
        ["period"],
    )
    scale.insert(1, "apprehensions", apprehended.values)
    out["scale"] = scale

    # character: each category's unobserved crossings and share of all unobserved crossings
    by_cat = periods(post["unobserved_category_year"].astype(float))
    share = by_cat / by_cat.sum("category")
    character = _intervals({"unobserved": by_cat, "share": share}, prob, ["period", "category"])
    mean_share = share.mean(SAMPLE).to_dataframe(
        name="share_mean", dim_order=["period", "category"]
    )
    out["character"] = character.merge(mean_share.reset_index(), on=["period", "category"])

    # routes: per section, per 100 km, share of the border
    by_sec = periods(post["unobserved_section_year"].astype(float))
    total = by_sec.sum("section")
    routes = _intervals(
        {
            "unobserved": by_sec,
            "per_100km": by_sec / (lengths / PER_KM),
            "share": by_sec / total,
        },
        prob,
        ["period", "section"],
    )
    routes.insert(
        2, "length_km", routes["section"].map(dict(zip(sections_fit, lengths.values, strict=True)))
    )
    routes.insert(3, "surveyed", routes["section"].isin(surveyed))
    routes["study_section"] = routes["section"].isin(STUDY_SECTIONS)
    routes.insert(4, "apprehensions", periods(k_sy).transpose("period", "section").values.ravel())
    out["routes"] = routes

    # Omsk + Orenburg against the other sections
    study = [s for s in STUDY_SECTIONS if s in sections_fit]
    if study:
        others = [s for s in sections_fit if s not in study]
        names = [" + ".join(s.capitalize() for s in study), f"other {len(others)} sections"]
        groups = xr.concat(
            [by_sec.sel(section=study).sum("section"), by_sec.sel(section=others).sum("section")],
            pd.Index(names, name="group"),
        )
        km = xr.DataArray(
            [float(lengths.sel(section=study).sum()), float(lengths.sel(section=others).sum())],
            dims="group",
            coords={"group": names},
        )
        table = _intervals(
            {"unobserved": groups, "share": groups / total, "per_100km": groups / (km / PER_KM)},
            prob,
            ["period", "group"],
        )
        table.insert(2, "length_km", table["group"].map(dict(zip(names, km.values, strict=True))))
        table.insert(3, "length_share", table["length_km"] / float(lengths.sum()))
        out["study_sections"] = table

    out["bypass"] = _bypass(
        post, prob, mean_wait(tree, folder) if wait_minutes is None else wait_minutes
    )
    out["season"], out["season_profile"] = _season(post, prob)
    out["policy"] = _policy(tree, post, prob)
    meta = {"prob": prob, "synthetic": is_synthetic(tree.attrs), "period": label}
    meta["years"] = [int(years[0]), int(years[-1])]
    months = periods.months
    meta["months"] = {"first": str(months[0]), "last": str(months[-1]), "count": int(months.size)}
    meta["partial_years"] = periods.partial
    for name, frame in out.items():
        frame.attrs = {**frame.attrs, **meta, "title": TITLES[name], "columns": _columns(frame)}
    return out


def bypass_share(eta0: Any, eta1: Any, wait: float) -> Any:
    """The model's bypass share at a mean wait of `wait` minutes: expit(η0 + η1 log(max(w, 0.1)/60))."""
    return scipy.special.expit(eta0 + eta1 * np.log(max(wait, 0.1) / 60.0))


def _bypass(post: xr.Dataset, prob: float, wait: float | None) -> pd.DataFrame:
    """Waiting time → bypass: η1, the odds factor 2^(−η1) when waits halve, and at the mean wait the bypass
    share before and after, its change and its relative change."""
    eta0, eta1 = post["bypass_eta0"], post["bypass_eta1"]
    rows: list[tuple[str, str, str, xr.DataArray]] = [
        ("eta1", "elasticity η1 of the bypass odds in the wait", "1", eta1),
        (
            "odds_ratio_halved",
            "bypass odds when waits halve ÷ bypass odds now, 2^(−η1)",
            "×",
            2.0**-eta1,
        ),
    ]
    if wait is not None:
        now, halved = bypass_share(eta0, eta1, wait), bypass_share(eta0, eta1, wait / 2)
        per = f"per {PER_FLOW:,.0f} foreign land crossings"
        rows += [
            ("share_now", f"bypass share at the mean wait, {wait:.0f} min", per, PER_FLOW * now),
            (
                "share_halved",
                f"bypass share at half of it, {wait / 2:.0f} min",
                per,
                PER_FLOW * halved,
            ),
            (
                "share_change",
                "change of the bypass share when waits halve",
                per,
                PER_FLOW * (halved - now),
            ),
            (
                "share_change_relative",
                "relative change of the bypass share",
                "fraction",
                halved / now - 1,
            ),
        ]
    values = xr.concat([r[3] for r in rows], pd.Index([r[0] for r in rows], name="quantity"))
    frame = _intervals({"value": values}, prob, ["quantity"])
    frame.insert(1, "meaning", [r[1] for r in rows])
    frame.insert(2, "unit", [r[2] for r in rows])
    frame.attrs["mean_wait_minutes"] = wait
    return frame


def _season(post: xr.Dataset, prob: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seasonal factor exp(S_c(m)) of each journey category's expected journeys, relative to its
    geometric mean over the year; its peak and trough months (posterior mode, with their probability) and
    the peak/trough ratio exp(max S − min S), draw by draw."""
    month = np.arange(1, 13)
    h = xr.DataArray(harmonics(month), dims=("month", "harmonic"), coords={"month": month})
    s = xr.dot(post["season"], h.assign_coords(harmonic=post["harmonic"].values), dim="harmonic")
    profile = np.exp(s - s.mean("month"))
    peak, trough = s.argmax("month") + 1, s.argmin("month") + 1
    ratio = np.exp(s.max("month") - s.min("month"))
    table = _intervals({"peak_trough_ratio": ratio}, prob, ["journey_category"])
    for what, m in (("peak", peak), ("trough", trough)):
        counts = np.stack(
            [(m == k).mean(SAMPLE).values for k in month], axis=-1
        )  # (category, month)
        table[f"{what}_month"] = [MONTHS[i] for i in counts.argmax(axis=1)]
        table[f"{what}_probability"] = counts.max(axis=1)
    table = table.rename(columns={"journey_category": "category"})
    prof = _intervals({"relative_level": profile}, prob, ["journey_category", "month"])
    prof = prof.rename(columns={"journey_category": "category"})
    prof["month"] = [MONTHS[m - 1] for m in prof["month"]]
    return table, prof


def _policy(tree: xr.DataTree, post: xr.Dataset, prob: float) -> pd.DataFrame:
    """Each policy event's multiplier θ_{e,c} = exp(log_policy_effect) on each category's journeys, its %
    change θ − 1 and P(θ < 1), the posterior probability that the event reduced the journeys."""
    theta = np.exp(post["log_policy_effect"])
    table = _intervals(
        {"multiplier": theta, "change": theta - 1}, prob, ["event", "journey_category"]
    )
    reduced = (
        (theta < 1)
        .mean(SAMPLE)
        .to_dataframe(name="p_reduction", dim_order=["event", "journey_category"])
    )
    table = table.merge(reduced.reset_index(), on=["event", "journey_category"])
    dates = {e["event"]: e["date"] for e in events_in_fit(tree)}
    table.insert(1, "start_date", table["event"].map(dates))
    return table.rename(columns={"journey_category": "category"})


TITLES = {
    "scale": "scale: illegal crossings of the whole border per calendar year",
    "character": "character: unobserved crossings by category",
    "routes": "routes: unobserved crossings by section",
    "study_sections": "routes: the study's sections (Omsk + Orenburg) against the other sections",
    "bypass": "causes: waiting time at the checkpoints and bypassing them",
    "season": "causes: the season of journeys, by category",
    "season_profile": "causes: seasonal factor of expected journeys by month (relative to the year's mean)",
    "policy": "causes: policy events, their effect on journeys by category",
}
MEANINGS = {
    "period": "calendar year (a part year, '2017 (Jan–Jun)': its months only), or the whole period (counts: "
    "a rate per year, the total over the fitted months × 12 / their number, with whole years the mean per "
    "year; shares: of the period's totals)",
    "apprehensions": "apprehensions recorded (observed, no interval)",
    "unobserved": "illegal crossings that succeeded without apprehension",
    "attempts": "illegal crossing attempts: apprehensions + unobserved crossings",
    "unobserved_share": "unobserved crossings ÷ attempts",
    "category": "category of the journey",
    "share": "share of the whole border's unobserved crossings (all categories, or all sections)",
    "share_mean": "posterior mean of the share (the means add up to 1)",
    "section": "border section",
    "length_km": "length of border, km",
    "length_share": "share of the border's length",
    "surveyed": "true: individual apprehension records; false: monthly totals only (inferred)",
    "study_section": "true: one of the sections the study surveyed (Omsk, Orenburg)",
    "per_100km": "unobserved crossings per 100 km of border",
    "group": "the study's sections, or the other sections together",
    "quantity": "what is estimated (see meaning and unit)",
    "meaning": "the quantity in words",
    "unit": "its unit",
    "value": "the quantity, in its unit",
    "peak_trough_ratio": "expected journeys in the peak month ÷ in the trough month",
    "peak_month": "month with the most expected journeys (posterior mode)",
    "peak_probability": "posterior probability that it is the peak month",
    "trough_month": "month with the fewest expected journeys (posterior mode)",
    "trough_probability": "posterior probability that it is the trough month",
    "month": "month of the year",
    "relative_level": "expected journeys that month ÷ their geometric mean over the year",
    "event": "policy event",
    "start_date": "date it came into force",
    "multiplier": "θ: journeys with the event in force ÷ journeys without it",
    "change": "θ − 1: relative change of journeys (−0.2 is 20 % fewer)",
    "p_reduction": "posterior probability that the event reduced the journeys (θ < 1)",
}


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """The meaning of each column of a table (an interval's three columns share their quantity's)."""
    out = {}
    for c in frame.columns:
        base, _, end = c.rpartition("_")
        if end in ("median", "lower", "upper") and base in MEANINGS:
            what = {"median": "posterior median", "lower": "lower end", "upper": "upper end"}[end]
            out[c] = f"{MEANINGS[base]}: {what}" + ("" if end == "median" else " of the interval")
        else:
            out[c] = MEANINGS.get(c, c.replace("_", " "))
    return out


def questions_json(questions: dict[str, pd.DataFrame]) -> str:
    """The tables as JSON: ``prob``, ``synthetic``, ``period``, ``years``, ``months``, ``partial_years``, the
    mean wait used, and per table its title, the meaning of each column and its rows."""
    first = next(iter(questions.values()))
    keys = ("prob", "synthetic", "period", "years", "months", "partial_years")
    payload: dict[str, Any] = {k: first.attrs[k] for k in keys if k in first.attrs}
    payload["interval"] = "equal-tailed (central) posterior interval"
    if "bypass" in questions:
        payload["mean_wait_minutes"] = questions["bypass"].attrs.get("mean_wait_minutes")
    payload["tables"] = {
        name: {
            "title": frame.attrs.get("title", name),
            "columns": frame.attrs.get("columns", {}),
            "rows": json.loads(frame.to_json(orient="records", force_ascii=False)),
        }
        for name, frame in questions.items()
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


# the tables as text and as a figure, in their own module
from estim.families.border.questions_report import (  # noqa: E402
    format_questions,
    questions_figure,
)

__all__ = [
    "STUDY_SECTIONS",
    "bypass_share",
    "format_questions",
    "mean_wait",
    "questions_figure",
    "questions_json",
    "section_lengths",
    "study_questions",
]
