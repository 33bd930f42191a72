"""`sufficient_statistics`: the records summed into one xarray Dataset, and the apprehensions per cell."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.records.recordset import RecordSet
from estim.records.schemas import CATEGORIES, DETECTORS
from estim.statistics.coding import (
    _Apprehensions,
    _code_apprehensions,
    _code_checkpoint_records,
    _code_totals,
    _flat_index,
    _labels,
    _Totals,
)
from estim.statistics.flows import _checkpoint_flows
from estim.statistics.histories import (
    _list_histories,
    _period_list_histories,
    _Registers,
    _strata,
    unplaced_register_entries,
)
from estim.statistics.periods import (
    _check_period_occasion,
    _month_coord,
    _month_period_labels,
    _month_span,
    _period_labels,
    _period_span,
    _period_starts,
)

# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def sufficient_statistics(
    records: RecordSet, *, period: str = "year", occasion: str | None = "quarter"
) -> xr.Dataset:
    """The sufficient statistics of a record set, as one ``xarray.Dataset`` with domain-named dims.

    Parameters
    ----------
    records:
        Validated, typed, pseudonymised records (``estim.records.load_records``).
    period:
        Length of a closed-population stratum in time: ``"year"``, ``"quarter"`` or ``"month"``. Frequencies
        f_k and capture histories are counted per section × period.
    occasion:
        Capture occasion within a period: ``"quarter"`` or ``"month"``, finer than `period`; ``None`` for no
        capture-history variables (frequency models only need f_k).

    Variables (dims in brackets):

    * ``apprehended`` [section, month, category, detector]: apprehensions per cell, counted from individual
      records (by the month of the date) where they exist and from ``apprehension_totals`` elsewhere. With
      ``individual_records`` [section]: the section has at least one individual apprehension record. With
      ``apprehensions_reported`` [section, month]: the section-month has individual records or a row of
      ``apprehension_totals`` (of any count, 0 included); where it is False, ``apprehended`` is 0 because
      nothing was reported, not because nothing happened. With ``totals_row`` [section, month, category,
      detector]: ``apprehension_totals`` has a row for the cell (of any count, 0 included); a cell of a
      month the section reports by totals without one is read as 0 in ``apprehended``.
    * ``frequency`` [section, period, category, k]: f_k, people apprehended exactly k times in the stratum. A
      person's category in a stratum is their most frequent recorded category there (ties: the first in
      ``CATEGORIES`` order). Zero for sections without individual records.
    * ``history_count`` [section, period, history] and ``capture`` [history, occasion] (only when `occasion`
      is given): people per observed capture history; ``capture`` spells each history out as 0/1 per
      occasion. The all-zero history (the unobserved people) never appears.
    * checkpoint flows [checkpoint, month]: ``crossings_citizens``, ``crossings_foreigners``,
      ``refusals_of_entry``, ``invalid_documents`` (int64, 0 where not reported), ``checkpoint_reported``
      (bool: a checkpoint record exists for that month; read the counts only where it is true) and
      ``mean_wait_minutes`` (NaN where not reported).
    * bypass-share inputs [section, month]: ``land_crossings_foreigners`` (sum over the road, rail and river
      checkpoints that reported), ``land_mean_wait_minutes`` (mean wait weighted by foreign crossings at
      those checkpoints; NaN where there are none) and ``land_checkpoints_reporting``.
    * multiple-systems input: ``list_history_count`` [list_history] and ``list_capture`` [list_history, list]:
      people by their pattern of presence on each register present and on the apprehension records, over the
      whole record span, each person once. Register entries dated outside the ``month`` span (a register
      running on after the apprehension records stop, or starting before them) are left out of every list
      table, this one and those below, with a warning; the ``registers_out_of_span`` attribute counts them.
    * the same per period: ``list_period_count`` [period, list_pattern] (whole border) and, when every register
      entry carries a ``section_id``, ``list_section_count`` [section, period, list_pattern], with
      ``list_pattern_capture`` [list_pattern, list]. A person is on a list in a period when they have an entry
      (an apprehension record) dated in it; in a section-period, an entry of that section dated in it (a person
      recorded in two sections is in both tables). ``list_pattern`` holds all 2^K − 1 patterns of the K lists,
      zeros included, in numeric order. The apprehension list holds only the sections with individual records
      (the surveyed ones): the whole-border table is the people individually recorded anywhere. Registers
      carry no section unless their optional ``section_id`` says so: without it, a section's table cannot be
      made (register-only people cannot be placed); the ``registers_unplaced`` attribute counts the entries
      without a section. A period covered only in part by the ``month`` span (below) holds the register
      entries of its months in the span only, as the apprehension list does.

    Time axes: ``month`` is the contiguous span from the first to the last month in the apprehension dates,
    ``apprehension_totals`` and ``checkpoint_records``; ``period`` holds every period overlapping it (labels
    "2006", "2006Q1" or "2006-01", with the ``period_start`` coord), and ``month_period`` on ``month`` names
    the period of each month. A period at either end of the span may be covered only in part: its first or
    last occasions then hold structural, not sampling, zeros.

    Absent optional tables: without ``apprehension_totals`` the sections without individual records have
    zero ``apprehended``; without ``registers`` the ``list`` dim is just ``"apprehensions"``. Without any
    individual apprehension records the ``k``, ``history`` and ``list_history`` dims have length zero.

    Raises `EstimInputError` for an invalid period/occasion, labels not in the sections/checkpoints tables or
    the fixed vocabularies, and a section-month present both as individual records and as a monthly total
    (it would be counted twice). A section with individual records in some months and totals in others is
    counted from both, with a warning (its f_k and histories cover only the months with records).
    """
    n_occasions = _check_period_occasion(period, occasion)
    sections = _labels(records.sections, "section_id", "sections")
    checkpoints = _labels(records.checkpoints, "checkpoint_id", "checkpoints")

    appr = _code_apprehensions(records, sections)
    totals = _code_totals(records, sections)
    flows = _code_checkpoint_records(records, checkpoints)

    month0, n_months = _month_span(appr.month, totals.month, flows.month)
    months = _month_coord(month0, n_months)
    period0, n_periods = _period_span(month0, n_months, period)

    coords: dict[str, object] = {
        "section": ("section", list(sections)),
        "month": ("month", months),
        "category": ("category", list(CATEGORIES)),
        "detector": ("detector", list(DETECTORS)),
        "period": ("period", _period_labels(period0, n_periods, period)),
        "period_start": ("period", _period_starts(period0, n_periods, period)),
        "month_period": ("month", _month_period_labels(month0, n_months, period)),
    }
    data_vars: dict[str, xr.DataArray] = {}

    data_vars.update(_apprehended(appr, totals, len(sections), month0, n_months, sections, months))

    strata = _strata(appr, month0, period, occasion, n_occasions, len(sections), n_periods)
    data_vars["frequency"] = strata.frequency
    coords["k"] = ("k", np.arange(1, strata.frequency.shape[-1] + 1, dtype=np.int64))
    if occasion is not None:
        data_vars["history_count"] = strata.history_count
        data_vars["capture"] = strata.capture
        coords["occasion"] = ("occasion", np.arange(1, n_occasions + 1, dtype=np.int64))
        coords["history"] = ("history", strata.histories)

    data_vars.update(_checkpoint_flows(records, flows, checkpoints, sections, month0, n_months))
    coords["checkpoint"] = ("checkpoint", list(checkpoints))
    coords["checkpoint_section"] = (
        "checkpoint",
        records.checkpoints["section_id"].astype(str).tolist(),
    )
    coords["checkpoint_type"] = ("checkpoint", records.checkpoints["type"].astype(str).tolist())

    regs = _Registers(records, appr, month0, n_months)
    if regs.out_of_span:
        warnings.warn(regs.out_of_span_message(), UserWarning, stacklevel=2)
    lists, list_histories, list_count, list_capture = _list_histories(appr, regs)
    data_vars["list_history_count"] = list_count
    data_vars["list_capture"] = list_capture
    coords["list"] = ("list", lists)
    coords["list_history"] = ("list_history", list_histories)
    by_period = _period_list_histories(records, appr, regs, sections, month0, n_periods, period)
    data_vars["list_period_count"] = by_period.period_count
    data_vars["list_pattern_capture"] = by_period.capture
    if by_period.section_count is not None:
        data_vars["list_section_count"] = by_period.section_count
    coords["list_pattern"] = ("list_pattern", by_period.patterns)

    ds = xr.Dataset(data_vars, coords=coords)
    _coord_attrs(ds, period, occasion)
    ds.attrs = {
        "period": period,
        # netCDF attributes cannot be None: "none" means no capture-history variables.
        "occasion": occasion if occasion is not None else "none",
        # register entries without a section: while any exist there is no list_section_count
        "registers_unplaced": unplaced_register_entries(records.registers),
        # register entries dated outside the month span, left out of every list table (with a warning)
        "registers_out_of_span": regs.out_of_span,
        "description": (
            "Sufficient statistics of border records for capture-recapture models: apprehensions per "
            "section-month, frequencies f_k and capture histories per section-period stratum, checkpoint "
            "flows, and list histories (whole span, per period, per section-period) for multiple-systems "
            "estimation. Counts only; no person ids."
        ),
    }
    return ds


# --------------------------------------------------------------------------------------------------------------
# Apprehensions per cell
# --------------------------------------------------------------------------------------------------------------


def _apprehended(
    appr: _Apprehensions,
    totals: _Totals,
    n_sections: int,
    month0: int,
    n_months: int,
    sections: Sequence[str],
    months: np.ndarray,
) -> dict[str, xr.DataArray]:
    n_c, n_d = len(CATEGORIES), len(DETECTORS)
    shape = (n_sections, n_months, n_c, n_d)
    size = int(np.prod(shape))

    def flat(t: _Apprehensions | _Totals) -> np.ndarray:
        month = t.month - np.int32(month0)
        return _flat_index(
            (t.section, n_sections), (month, n_months), (t.category, n_c), (t.detector, n_d)
        )

    from_records = np.bincount(flat(appr), minlength=size).reshape(shape)
    totals_index = flat(totals)
    from_totals = np.zeros(size, dtype=np.int64)
    np.add.at(from_totals, totals_index, totals.count)  # exact integer sums (a small table)
    from_totals = from_totals.reshape(shape)

    # A section-month counted both ways would be counted twice (the validator's rule `double_count`); the
    # records may also have been built in code without validation, so check here on the aggregated grid.
    # A totals row counts as present even when its count is 0.
    rec_sm = from_records.sum(axis=(2, 3)).ravel()
    tot_sm = np.bincount(totals_index // (n_c * n_d), minlength=n_sections * n_months)
    both = np.flatnonzero((rec_sm > 0) & (tot_sm > 0))
    if both.size:
        where = ", ".join(
            f"{sections[i // n_months]} {np.datetime_as_string(months[i % n_months], unit='M')}"
            for i in both[:5]
        )
        raise EstimInputError(
            "apprehension_totals: section-months also covered by individual apprehension records would be "
            f"counted twice (rule double_count): {where}" + (" …" if both.size > 5 else "")
        )
    individual = np.bincount(appr.section, minlength=n_sections) > 0
    if np.any(individual & (np.bincount(totals.section, minlength=n_sections) > 0)):
        mixed = [sections[i] for i in np.flatnonzero(individual) if np.any(totals.section == i)]
        warnings.warn(
            f"sections {', '.join(mixed)} have individual apprehension records in some months and monthly "
            "totals in others; f_k and capture histories cover only the months with individual records",
            UserWarning,
            stacklevel=3,
        )

    apprehended = xr.DataArray(
        (from_records + from_totals).astype(np.int64),
        dims=("section", "month", "category", "detector"),
        attrs={
            "long_name": "apprehensions between checkpoints (individual records or monthly totals)",
            "units": "apprehensions",
        },
    )
    # whether the section-month has any apprehension data at all (a totals row, even of 0, or a record):
    # a section reported by totals lists every month, and a month it left out is not a month without
    # apprehensions, though it is counted as 0 in ``apprehended``
    reported = xr.DataArray(
        ((rec_sm > 0) | (tot_sm > 0)).reshape(n_sections, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "the section-month has apprehension records or a monthly total (of any count)",
            "units": "1",
        },
    )
    # which cells apprehension_totals lists: a totals month missing some of its rows reads them as 0
    totals_row = xr.DataArray(
        (np.bincount(totals_index, minlength=size) > 0).reshape(shape),
        dims=("section", "month", "category", "detector"),
        attrs={
            "long_name": "apprehension_totals has a row for the cell (of any count)",
            "units": "1",
        },
    )
    individual_records = xr.DataArray(
        individual,
        dims=("section",),
        attrs={
            "long_name": "the section's apprehensions come from individual records (f_k and histories exist)",
            "units": "1",
        },
    )
    return {
        "apprehended": apprehended,
        "individual_records": individual_records,
        "apprehensions_reported": reported,
        "totals_row": totals_row,
    }


def _coord_attrs(ds: xr.Dataset, period: str, occasion: str | None) -> None:
    names = {
        "section": ("border section", ""),
        "month": ("calendar month (first day)", ""),
        "category": ("kind of illegal crossing", ""),
        "detector": ("who detected the crossing", ""),
        "period": (f"closed-population period ({period})", ""),
        "period_start": ("first day of the period", ""),
        "month_period": ("period containing the month", ""),
        "k": ("times apprehended in the stratum", "apprehensions"),
        "occasion": (f"capture occasion ({occasion}) within the period, from 1", ""),
        "history": ("capture history over the occasions, occasion 1 first", ""),
        "checkpoint": ("checkpoint", ""),
        "checkpoint_section": ("section of the checkpoint", ""),
        "checkpoint_type": ("checkpoint type", ""),
        "list": ("list (register or apprehension records)", ""),
        "list_history": ("pattern of presence on the lists, in list order", ""),
        "list_pattern": ("pattern of presence on the lists within a period, in list order", ""),
    }
    for name, (long_name, units) in names.items():
        if name in ds.coords:
            ds.coords[name].attrs["long_name"] = long_name
            # No `units` on datetime coords: xarray's netCDF encoding owns that attribute there.
            if units:
                ds.coords[name].attrs["units"] = units
