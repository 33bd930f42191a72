"""The border studies' intervals against the simulator's truth: per section × year, for the whole border per
year and over the whole period (`section_year_table`)."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from estim.intervals import equal_tailed

INTERVAL = 0.9  # probability of the central intervals whose coverage is measured


def _year_coords(x: xr.DataArray, data: xr.Dataset) -> xr.DataArray:
    return x.assign_coords(year=("month", data["year"].values))


def _per_section_year(x: xr.DataArray, data: xr.Dataset) -> xr.DataArray:
    """Counts (or draws) summed to section × year: over the months of each year and over the categories."""
    if "month" in x.dims:
        x = _year_coords(x, data).groupby("year").sum()
    return x.sum("category") if "category" in x.dims else x


def section_year_table(
    data: xr.Dataset, truth: xr.Dataset, unobserved: xr.DataArray
) -> pd.DataFrame:
    """One row per section × year: the true unobserved crossings, the posterior median and 5 %/95 % quantiles
    of the draws ``unobserved`` — per (chain, draw, section, month, category), or already per (chain, draw,
    section, year) as a fit's ``unobserved_section_year`` — and ``covered``; the whole border's per year
    (``border_*`` columns, repeated across the sections of a year) and over the whole period
    (``border_period_*``, repeated on every row)."""
    u = _per_section_year(unobserved, data)
    t = truth["unobserved"].sel(section=data["section"].values, month=data["month"].values)
    t = _per_section_year(t, data).transpose("section", "year")
    u = u.sel(section=t["section"].values, year=t["year"].values)  # the truth's order
    q = equal_tailed(u, INTERVAL).transpose("quantile", "section", "year")
    ub = u.sum("section")
    tb = t.sum("section")
    qb = equal_tailed(ub, INTERVAL).transpose("quantile", "year")
    plo, pmed, phi = (float(v) for v in equal_tailed(ub.sum("year"), INTERVAL).values)
    ptr = int(tb.sum())
    period = {
        "border_period_truth": ptr,
        "border_period_median": pmed,
        "border_period_q05": plo,
        "border_period_q95": phi,
        "border_period_covered": bool(plo <= ptr <= phi),
    }
    rows = []
    surveyed = dict(zip(data["section"].values, data["surveyed"].values, strict=True))
    for i, s in enumerate(t["section"].values):
        for j, y in enumerate(t["year"].values):
            lo, med, hi = (float(v) for v in q.values[:, i, j])
            tr = int(t.values[i, j])
            blo, bmed, bhi = (float(v) for v in qb.values[:, j])
            btr = int(tb.values[j])
            rows.append(
                {
                    "section": str(s),
                    "surveyed": bool(surveyed[s]),
                    "year": int(y),
                    "truth": tr,
                    "median": med,
                    "q05": lo,
                    "q95": hi,
                    "covered": bool(lo <= tr <= hi),
                    "border_truth": btr,
                    "border_median": bmed,
                    "border_q05": blo,
                    "border_q95": bhi,
                    "border_covered": bool(blo <= btr <= bhi),
                    **period,
                }
            )
    return pd.DataFrame(rows)
