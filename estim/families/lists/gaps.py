"""Months missing from the apprehension list of a period's list table (`estim.families.lists.data.list_table`).

A person is on the apprehension list of a period by an individual apprehension record dated in it, and on a
register by an entry dated in it. A month inside the records' span (the apprehension totals or checkpoint
records run through it) that is missing from the apprehension file leaves the registers covering the whole
period and the apprehension list the other months only: the people apprehended only in that month drop off the
apprehension list, those of them on a register are counted as people the apprehensions missed, and N̂ describes
neither the period nor the months with records. The registers cannot be cut to match, as they are for a period
covered in part: they date an entry some time after its event, so an entry dated in the missing month is not
the month's event, and the month's events are dated in the months after it.

Unlike an occasion of the closed families, a month nobody was in fact apprehended in harms nothing: the list is
still the people apprehended in the period. What matters is whether a month without records is missing, and
the records say so when the table's sections are busy: with m records in the median month of the span, a month
with none comes by chance about e^(−m) of the time.

* A month of the period in the span with no individual apprehension record in any section the table covers
  (the surveyed sections for the whole border, the section for a section's table) is refused when
  e^(−m) < `QUIET_MONTH_CHANCE` (m ≥ 7; `EstimInputError`, rule `APPREHENSION_GAP`, naming the file and the
  months), and warned of when the records are too sparse to tell. ``allow_empty_months=True`` declares such
  months truly without apprehensions (in a spec, ``[data] allow_empty_months = true``), and the table is
  built with a warning (and it is warned of where no such month would be refused: it declares nothing).
* For the whole border, a month with records in some surveyed sections and none in others is warned of,
  naming the sections and months: the whole border's apprehension list covers only the surveyed sections by
  design, and a section's month missing narrows it further, as a section's own table shows (refused).

See docs/multiple_lists.md, "Months missing from the apprehension file".
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.record_periods import period_months, runs

APPREHENSION_GAP = "apprehension_gap"
"""The rule a month of the period without any apprehension record in the table's sections breaks."""
GAPS_DOC = 'docs/multiple_lists.md, "Months missing from the apprehension file"'
QUIET_MONTH_CHANCE = 1e-3
"""A month of the table's sections without a record is taken for one missing from the file, not a month nobody
was apprehended in, when a month as quiet would come by chance less often than this, the months' counts Poisson
with the span's median month m: e^(−m) < 0.001, m ≥ 7 records."""


def _file(records: Any) -> str:
    """The apprehension file, by its path when the records say where they were read from."""
    source = getattr(records, "source", None)
    if source is not None:
        for suffix in (".csv", ".parquet"):
            path = Path(source) / f"apprehensions{suffix}"
            if path.exists():
                return f"apprehensions ({path})"
    return "apprehensions"


def median_month(records: Any, stats: xr.Dataset, sections: list[str]) -> float:
    """The median, over the months of the records' span (those without a record included), of the number of
    individual apprehension records of `sections` dated in the month."""
    span = stats["month"].values.astype("datetime64[M]")
    a = records.apprehensions
    chosen = np.isin(np.asarray(a["section_id"].astype(str).values), sections)
    seen = np.asarray(a["date"].values).astype("datetime64[M]")[chosen]
    seen = np.sort(seen)
    counts = np.searchsorted(seen, span, side="right") - np.searchsorted(seen, span, side="left")
    return float(np.median(counts)) if counts.size else 0.0


def _idle(allow_empty_months: bool, where: str) -> None:
    """A declaration with no month to excuse changes nothing: said, as the border data say it."""
    if allow_empty_months:
        warnings.warn(
            f"{where}: allow_empty_months = true declares nothing here ([data] allow_empty_months, or "
            "list_table's keyword): no month of the period in the records' span is without an apprehension "
            f"record in the table's sections, so it changes nothing; remove it. See {GAPS_DOC}",
            UserWarning,
            stacklevel=4,
        )


def register_gaps(
    records: Any,
    stats: xr.Dataset,
    *,
    period: str,
    section: str | None,
    where: str,
    allow_empty_months: bool = False,
) -> list[str]:
    """Refuse a register with no entry in a month of `period` inside the records' span where its busy months
    make a quiet one implausible (the median of its months with entries m: e^(−m) < `QUIET_MONTH_CHANCE`),
    rule ``register_gap``, unless ``allow_empty_months``. A register that ends or starts inside the period, or
    misses some of its months, holds only the other months' people while the apprehensions hold the whole
    period: deportations stopping in June 2010 gave N̂ = 40,071 for the 18,005 of the year's whole records,
    with exit 0. Only the apprehension file was checked for missing months. Returns the registers' months
    that ``allow_empty_months`` declared empty ("deportation: 2010-07 … 2010-12"), said in a warning."""
    registers = records.registers
    declared: list[str] = []
    if not len(registers):
        return declared
    pm = period_months(records, stats, period, [])
    months = np.array(pm.months, dtype="datetime64[M]")[pm.in_span]
    span = stats["month"].values.astype("datetime64[M]")
    chosen = registers
    if section is not None and "section_id" in registers.columns:
        chosen = registers[registers["section_id"].astype(str) == section]
    dated = np.asarray(chosen["date"].values).astype("datetime64[M]")
    names = np.asarray(chosen["register"].astype(str).values)
    for name in sorted(set(names.tolist())):
        seen = np.sort(dated[names == name])
        counts = np.searchsorted(seen, span, side="right") - np.searchsorted(
            seen, span, side="left"
        )
        busy = float(np.median(counts[counts > 0])) if (counts > 0).any() else 0.0
        here = np.searchsorted(seen, months, side="right") - np.searchsorted(
            seen, months, side="left"
        )
        quiet = months[here == 0]
        if quiet.size and np.exp(-busy) < QUIET_MONTH_CHANCE:
            shown = runs([str(m) for m in months], here == 0)
            if allow_empty_months:
                declared.append(f"{name}: {shown}")
                continue
            raise EstimInputError(
                f"{where}: the register {name!r} has no entry in {shown} ({quiet.size} of the period's "
                f"{len(pm.months)} months), though its months with entries hold a median {busy:,.0f} (rule "
                "register_gap): a month with none would come by chance less than once in "
                f"{1 / QUIET_MONTH_CHANCE:,.0f}, so its entries are missing (the register ends, starts or "
                "breaks inside the period). Its list would hold only the other months' people and the "
                "apprehensions the whole period's: N̂ inflated. Fit a period the register covers, or restore "
                "its entries; if it truly recorded nobody then, declare it ([data] allow_empty_months = "
                f"true). See {GAPS_DOC}"
            )
    if declared:
        warnings.warn(
            f"{where}: declared without entries (allow_empty_months): {'; '.join(declared)}. If the registers "
            f"were kept then and their entries are missing, N̂ is inflated. See {GAPS_DOC}",
            UserWarning,
            stacklevel=4,
        )
    return declared


def apprehension_gaps(
    records: Any,
    stats: xr.Dataset,
    *,
    period: str,
    section: str | None,
    where: str,
    allow_empty_months: bool = False,
) -> dict[str, Any]:
    """Check the months of `period` inside the records' span for the table's apprehension records; the attrs
    ``apprehension_months_missing`` (JSON: section -> the months in the span without a record),
    ``apprehension_median_month`` and ``apprehension_months_declared_empty`` of `list_table`'s table.

    `stats` are `sufficient_statistics` of the period's length; `where` starts the messages. Sections without
    individual apprehension records (monthly totals only) are not checked: their tables are refused
    elsewhere, and the whole border's apprehension list never covers them."""
    excused = register_gaps(
        records, stats, period=period, section=section, where=where,
        allow_empty_months=allow_empty_months,
    )  # fmt: skip
    # a declaration that excused a register's months declares something
    allow_idle = allow_empty_months and not excused
    individual = stats["individual_records"]
    if section is not None:
        sections = [section] if bool(individual.sel(section=section)) else []
    else:
        sections = [str(s) for s in individual["section"].values[individual.values.astype(bool)]]
    attrs: dict[str, Any] = {
        "apprehension_months_missing": "{}",
        "apprehension_median_month": 0.0,
        "apprehension_months_declared_empty": "",
    }
    if not sections:
        _idle(allow_idle, where)
        return attrs
    pm = period_months(records, stats, period, sections)
    missing = {s: pm.in_span & ~pm.recorded[s] for s in sections}
    median = median_month(records, stats, sections)
    attrs["apprehension_months_missing"] = json.dumps(
        {s: [pm.months[i] for i in np.flatnonzero(m)] for s, m in missing.items() if m.any()}
    )
    attrs["apprehension_median_month"] = median
    none = np.logical_and.reduce([missing[s] for s in sections])
    one = int(none.sum()) == 1
    it, they = ("it", "it is") if one else ("them", "they are")
    which = (
        f"section {section}"
        if section is not None
        else f"any surveyed section ({', '.join(sections)})"
    )
    gap = (
        f"{_file(records)} holds no record of {which} in {runs(pm.months, none)} ({int(none.sum())} of "
        f"the period's {len(pm.months)} months), though the records' span covers {it}"
    )
    whose = "the section's" if section is not None else "the surveyed sections'"
    rate = f"the median month of the span holds {median:,.0f} of {whose} records"
    lost = (
        "the people apprehended only then are missing from the apprehension list, and those of them on a "
        "register are counted as people the apprehensions missed: N̂ is inflated"
    )
    said = []
    if none.any() and np.exp(-median) < QUIET_MONTH_CHANCE and not allow_empty_months:
        raise EstimInputError(
            f"{where}: {gap} (rule {APPREHENSION_GAP}). As {rate}, a month with none would come by chance "
            f"less than once in {1 / QUIET_MONTH_CHANCE:,.0f}: {they} missing from the file, not "
            f"{'a month' if one else 'months'} nobody was apprehended in. The registers would cover the "
            "whole period and the apprehension list the other months only: the people apprehended only then "
            "would be missing from the apprehension list, those of them on a register counted as people the "
            "apprehensions missed, N̂ inflated, and the table would describe neither the period nor the "
            "months with records (the registers date their entries after the "
            f"events, so they cannot be cut to those months). Restore {it} or fit a period without the "
            "gap; if nobody was in fact apprehended then, declare it ([data] allow_empty_months = true in "
            f"the spec, or list_table(..., allow_empty_months=True) from Python). See {GAPS_DOC}"
        )
    if not none.any():
        _idle(allow_idle, where)
    if none.any():
        if allow_empty_months:
            attrs["apprehension_months_declared_empty"] = runs(pm.months, none)
            why = "declared months nobody was apprehended in (allow_empty_months)"
        else:
            why = (
                f"and {rate}: too few to tell a month nobody was apprehended in from one missing from "
                "the file"
            )
        said.append(f"{gap}, {why}. If {they} missing from the file, {lost}")
    some = {s: missing[s] & ~none for s in sections if (missing[s] & ~none).any()}
    if some:
        single = len(some) == 1
        month = "a month" if single and int(next(iter(some.values())).sum()) == 1 else "months"
        parts = "; ".join(f"section {s} in {runs(pm.months, m)}" for s, m in some.items())
        said.append(
            f"{_file(records)} holds no record of {parts}, {month} in which the other surveyed sections "
            f"have records (inside the records' span: {month} nobody there was apprehended in, or missing "
            "from the file). The whole border's apprehension list then holds only the other sections' people "
            f"apprehended in {'it' if month == 'a month' else 'them'}, while the registers hold everyone's "
            f"entries: if records are missing, {lost}. A section's own table is refused when its records "
            "show a month missing"
        )
    if said:
        warnings.warn(f"{where}: {'; and '.join(said)}. See {GAPS_DOC}", UserWarning, stacklevel=3)
    return attrs
