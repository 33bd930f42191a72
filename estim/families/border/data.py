"""The border model's data: what it reads from the monthly sufficient statistics, the section table and the
policy events (``border_data``), and the names of its categories, detectors and seasonal harmonics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError

CATEGORIES = ("border_resident", "labour_migrant", "transit_migrant", "smuggler", "bypasser")
JOURNEY_CATEGORIES = CATEGORIES[:4]  # log-linear journeys; bypassers follow the checkpoint flows
RESIDENT = "border_resident"
BYPASSER = "bypasser"
DETECTORS = ("patrol", "technical", "informant")
HARMONICS = ("cos1", "sin1", "cos2", "sin2")


def policy_in_force(events: pd.DataFrame, months: np.ndarray) -> xr.DataArray:
    """I_e(t): the share of the days of month t on or after event e's start date (0 before, 1 after)."""
    first = np.asarray(months).astype("datetime64[M]").astype("datetime64[D]")
    nxt = (np.asarray(months).astype("datetime64[M]") + np.timedelta64(1, "M")).astype(
        "datetime64[D]"
    )
    days = (nxt - first).astype(int)
    rows = []
    for start in events["start_date"]:
        d = np.datetime64(pd.Timestamp(start).date(), "D")
        after = (nxt - np.maximum(first, d)).astype(int)
        rows.append(np.clip(after / days, 0.0, 1.0))
    return xr.DataArray(
        np.array(rows).reshape(len(events), len(first)),
        dims=("event", "month"),
        coords={
            "event": events["kind"].astype(str).tolist(),
            "month": months,
            # the dates, for figures that mark the events on their time axes
            "event_start": (
                "event",
                pd.to_datetime(events["start_date"]).to_numpy().astype("datetime64[ns]"),
            ),
        },
    )


def _refuse_unreported_months(stats: xr.Dataset, surveyed: np.ndarray) -> None:
    """A section without individual records is known only by its monthly totals, which list every month
    (zeros included): a month with no totals row is a month nobody reported, and the model would read it as
    a month without apprehensions, i.e. without crossings caught. So is a month in which no section has any
    apprehension data (records or totals): the span also covers the checkpoint records' months. Refuse
    both, naming the sections and months. A surveyed section's month without records, other sections
    having data, may be a true 0 and is not refused. (Statistics saved before ``apprehensions_reported``
    existed are not checked.)"""
    if "apprehensions_reported" not in stats:
        return
    reported = stats["apprehensions_reported"].transpose("section", "month").values.astype(bool)
    # a month with no apprehension data anywhere (the span stretched by the checkpoint records): every
    # section's count would be 0, the surveyed ones' too
    gaps = (~surveyed[:, None] & ~reported) | ~reported.any(axis=0)[None, :]
    if not gaps.any():
        return
    months = [str(m)[:7] for m in stats["month"].values]
    lines = []
    for s in np.flatnonzero(gaps.any(axis=1)):
        missing = np.flatnonzero(gaps[s])
        runs = np.split(missing, np.flatnonzero(np.diff(missing) > 1) + 1)
        words = [months[r[0]] + ("" if len(r) == 1 else f" … {months[r[-1]]}") for r in runs]
        shown = ", ".join(words[:4]) + (
            f" and {len(words) - 4} more runs" if len(words) > 4 else ""
        )
        lines.append(
            f"{stats['section'].values[s]}: {shown} ({len(missing)} of {len(months)} months)"
        )
    raise EstimInputError(
        "apprehension_totals: months with no monthly total in a section without individual records, or "
        f"no apprehension data in any section, in the records' span {months[0]} … {months[-1]} "
        "(rule month_gap): "
        + "; ".join(lines)
        + ". The border model would read an unreported month as one without apprehensions. If nobody "
        "was apprehended, write that month's rows with 0; if the month was not reported, the records "
        "cannot be fitted as they are (the span runs from the first to the last month of the "
        "apprehensions, apprehension totals and checkpoint records)"
    )


def border_data(
    stats: xr.Dataset,
    sections: pd.DataFrame,
    events: pd.DataFrame,
    *,
    linkage: xr.Dataset | None,
) -> xr.Dataset:
    """The border model's data from the sufficient statistics (``sufficient_statistics(period="month")``),
    the section table and the policy events: totals, repeat-apprehension frequencies of the surveyed
    sections, land flows and waits, section covariates and policy indicators; with ``linkage``
    (`estim.statistics.linkage.linkage_statistics` on the same sections, months and categories) the surveyed
    sections' apprehended journeys linked to the in-country registers, which identify the retry probability.
    With ``linkage=None`` the data say nothing about r (``linked_journeys`` has the one pattern "none", no
    lists): a deliberate choice, hence a required argument. `records_data` makes all of it from records."""
    if stats.attrs.get("period") != "month":
        raise EstimInputError(
            "the border model needs monthly repeat-apprehension frequencies: "
            "sufficient statistics with period='month'"
        )
    missing = [c for c in CATEGORIES if c not in stats["category"].values]
    if missing:
        raise EstimInputError(f"the records lack categories {missing}")
    stats = stats.sel(category=list(CATEGORIES), detector=list(DETECTORS))
    months = stats["month"].values
    by_detector = stats["apprehended"].transpose("section", "month", "category", "detector")
    apprehensions = by_detector.sum("detector")
    surveyed = stats["individual_records"].values.astype(bool)
    _refuse_unreported_months(stats, surveyed)
    freq = stats["frequency"].transpose("section", "period", "category", "k").values
    if freq.shape[1] != len(months):
        raise EstimInputError("frequency periods do not match the months")
    k = stats["k"].values.astype(np.int64)
    journeys_apprehended = freq.sum(axis=3)
    from_freq = (freq * k).sum(axis=3)
    bad = surveyed[:, None, None] & (from_freq != apprehensions.values)
    if bad.any():
        s, t, c = np.argwhere(bad)[0]
        raise EstimInputError(
            f"section {stats['section'].values[s]}, month {str(months[t])[:7]}, category "
            f"{CATEGORIES[c]}: the repeat-apprehension frequencies add up to {from_freq[s, t, c]} "
            f"apprehensions but the totals say {apprehensions.values[s, t, c]}"
        )
    sec = sections.set_index(sections["section_id"].astype(str))
    order = [str(s) for s in stats["section"].values]
    absent = [s for s in order if s not in sec.index]
    if absent:
        raise EstimInputError(f"sections.csv has no row for {absent}")
    sec = sec.loc[order]
    month_index = np.arange(len(months))
    month_of_year = pd.DatetimeIndex(months).month.values
    flow = stats["land_crossings_foreigners"].transpose("section", "month").values
    wait = stats["land_mean_wait_minutes"].transpose("section", "month").values
    if np.isnan(wait).any() or (flow < 0).any():
        raise EstimInputError("land flows/waits missing for some section-month")
    events = events[events["section_id"].astype(str) == "*"]
    data = xr.Dataset(
        {
            "apprehensions": apprehensions.astype(np.int64),
            "apprehensions_by_detector": by_detector.astype(np.int64),
            "apprehended_journeys": (
                ("section", "month", "category"),
                np.where(surveyed[:, None, None], journeys_apprehended, -1).astype(np.int64),
            ),
            "frequency": (("section", "month", "category", "k"), freq.astype(np.int64)),
            "surveyed": ("section", surveyed),
            "length_km": ("section", sec["length_km"].to_numpy(float)),
            "border_population": ("section", sec["border_population"].to_numpy(float)),
            "terrain": ("section", sec["terrain"].astype(str).to_numpy()),
            "land_foreign_crossings": (("section", "month"), flow.astype(np.int64)),
            "land_mean_wait": (("section", "month"), wait.astype(float)),
            "years": ("month", month_index / 12.0),
            "month_of_year": ("month", month_of_year.astype(np.int64)),
            "policy_in_force": policy_in_force(events, months),
        },
        coords={
            "section": order,
            "month": months,
            "category": list(CATEGORIES),
            "detector": list(DETECTORS),
            "k": k,
            "year": ("month", pd.DatetimeIndex(months).year.values.astype(np.int64)),
        },
    )
    if linkage is None:
        shape = data["apprehensions"].shape
        linkage = xr.Dataset(
            {
                "linked_journeys": (
                    ("section", "month", "category", "link_pattern"),
                    np.zeros((*shape, 1), np.int64),
                ),
                "before_journeys": (
                    ("section", "month", "category", "link_pattern"),
                    np.zeros((*shape, 1), np.int64),
                ),
            },
            coords={"link_pattern": ["none"], "in_country_list": np.array([], dtype=str)},
        )
    else:
        linkage = linkage.assign_coords(
            section=data["section"].values, month=data["month"].values
        ).transpose("section", "month", "category", ...)
        if list(linkage["category"].values) != list(CATEGORIES):
            raise EstimInputError("linkage statistics: categories differ from the border model's")
    data["linked_journeys"] = linkage["linked_journeys"].astype(np.int64)
    data["before_journeys"] = linkage["before_journeys"].astype(np.int64)
    data = data.assign_coords(in_country_list=linkage["in_country_list"].values.astype(str))
    data.attrs["link_window_days"] = int(linkage.attrs.get("link_window_days", 0))
    data.attrs["description"] = (
        "border model data: monthly apprehensions, repeat frequencies, flows, register linkage"
    )
    return data


def harmonics(month_of_year: np.ndarray) -> np.ndarray:
    """The seasonal regressors cos/sin of 2πm/12 and 4πm/12 per month (month, harmonic)."""
    w = 2 * np.pi * month_of_year / 12.0
    return np.stack([np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)], axis=1)


def no_bypass_flow(data: xr.Dataset) -> np.ndarray:
    """(section, month, category) True in the bypasser cells of months without foreign land crossings at the
    section's checkpoints: no bypassers can occur there, so those cells carry no likelihood and no draws."""
    no_flow = data["land_foreign_crossings"].values == 0
    return no_flow[:, :, None] & (np.array(CATEGORIES) == BYPASSER)[None, None, :]
