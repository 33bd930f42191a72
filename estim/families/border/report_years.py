"""The calendar years of a border fit: the months it covers in each year, a part year's label ("2017 (Jan–Jun)"),
and the simulator's truth summed over the fitted months only (`estim.families.border.report`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from estim.families.border.truth_file import truth_by_year

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def year_label(year: int, months_of_year: list[int]) -> str:
    """A calendar year's label: ``"2016"`` when the fit covers its 12 months, else the months it covers,
    ``"2017 (Jan–Jun)"`` (the border model fits a contiguous span of months: a part year is its first or
    its last)."""
    if len(months_of_year) == 12:
        return str(year)
    first, last = MONTH_NAMES[months_of_year[0] - 1], MONTH_NAMES[months_of_year[-1] - 1]
    return f"{year} ({first})" if first == last else f"{year} ({first}–{last})"


def fitted_months(tree: xr.DataTree) -> np.ndarray:
    """The months the border fit covers (``datetime64[M]``, the span of its ``crossings`` table)."""
    return np.asarray(tree["crossings"]["month"].values).astype("datetime64[M]")


def months_by_year(months: np.ndarray, years: np.ndarray) -> dict[int, list[int]]:
    """Calendar months (1–12) of each fitted year that the fit covers."""
    cal_year = months.astype("datetime64[Y]").astype(int) + 1970
    moy = months.astype(int) % 12 + 1
    return {int(y): sorted(int(m) for m in moy[cal_year == y]) for y in years}


def span_text(months: np.ndarray, years: np.ndarray, partial: bool) -> str:
    """What the per-year numbers average over: ``"mean over 2006–2017"`` (whole years) or ``"rate over the
    138 months 2006-01 … 2017-06 (total × 12/138)"``."""
    if not partial:
        return f"mean over {years[0]}–{years[-1]}"
    n = months.size
    return f"rate over the {n} months {months[0]} … {months[-1]} (total × 12/{n})"


def truth_on_months(
    truth: str | Path, sections: xr.DataArray, years: np.ndarray, months: np.ndarray
) -> tuple[xr.DataArray, list[int]]:
    """The simulator's true unobserved crossings per section × year over the fitted `months` only (a truth
    that runs past records cut mid-year is summed over the same months as the fit), and the years in which
    the truth holds no month the fit lacks (whose yearly apprehensions can be compared with the fit's)."""
    truth_by_year(truth)  # the file's checks, naming it
    with xr.open_dataset(truth, engine="netcdf4") as t:
        u = t["unobserved"].load()
    held = np.asarray(u["month"].values).astype("datetime64[M]")
    missing = np.setdiff1d(months, held)
    if missing.size:
        raise KeyError(f"months {missing[0]} … {missing[-1]} not in the truth")
    u = u.isel(month=np.flatnonzero(np.isin(held, months)))
    true_sy = (
        u.assign_coords(year=("month", u["month"].dt.year.values))
        .groupby("year")
        .sum()
        .sum("category")
        .sel(section=sections, year=years)
    )
    truth_years = held.astype("datetime64[Y]").astype(int) + 1970
    fit_years = months.astype("datetime64[Y]").astype(int) + 1970
    same = [int(y) for y in years if (truth_years == y).sum() == (fit_years == y).sum()]
    return true_sy, same
