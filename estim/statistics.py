"""Records -> sufficient statistics (DESIGN §3–4).

Every model family reads the counts made here, never the records: the cost of fitting depends on the number
of distinct capture histories and frequency cells, not on the number of people or apprehensions.

The aggregation is linear in the records and vectorised. Each label column is turned into integer codes once
(``pd.factorize`` on the few distinct labels; person ids are factorised once), after which every statistic is a
``np.bincount`` over a combined integer index or a single ``np.sort`` of a packed int64 key. There is no Python
loop over people or rows; the only Python loops run over distinct histories, sections or lists.

Vocabulary (closed-population capture–recapture):

* *stratum*: a section × period. Each stratum is treated as a closed population of people who attempted to
  cross there; a person apprehended in two sections belongs to both strata.
* *occasion*: a sub-interval of the period (a quarter or a month); a person is *captured* on an occasion when
  apprehended at least once in it.
* *capture history*: the 0/1 string of captures over the period's occasions, occasion 1 first ("0110").
* *frequency* f_k: the number of people apprehended exactly k times in a stratum (k ≥ 1); f_0, the people
  who crossed and were never apprehended, is what the models estimate.
* *lists* (multiple-systems estimation): the registers and the apprehension records, each a list of people;
  a person's *list history* is the 0/1 string of presence on each list.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xarray as xr

from estim.errors import EstimInputError
from estim.records.recordset import PERSON_ID, RecordSet
from estim.records.schemas import CATEGORIES, DETECTORS, REGISTERS

PERIODS = ("year", "quarter", "month")
OCCASIONS = ("quarter", "month")

# Land checkpoints: the ones a foreigner could bypass on foot or by car between checkpoints. Air checkpoints are
# not an alternative to crossing the green border, so they do not enter the bypass-share inputs.
LAND_CHECKPOINT_TYPES = ("road", "rail", "river")

# (period, occasion) -> occasions per period.
_OCCASIONS_PER_PERIOD = {("year", "quarter"): 4, ("year", "month"): 12, ("quarter", "month"): 3}
_MONTHS_PER = {"year": 12, "quarter": 3, "month": 1}

APPREHENSIONS_LIST = "apprehensions"
"""Name of the apprehension records on the ``list`` dim (after the registers present)."""

_FLOW_COLUMNS = {
    "crossings_citizens": ("legal crossings by Russian and Kazakh citizens", "crossings"),
    "crossings_foreigners": ("legal crossings by other foreigners", "crossings"),
    "refusals_of_entry": ("foreigners refused entry", "persons"),
    "invalid_documents": ("invalid documents detected", "documents"),
}


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
      ``individual_records`` [section]: the section has at least one individual apprehension record.
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
      whole record span, each person once.

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

    lists, list_histories, list_count, list_capture = _list_histories(records, appr)
    data_vars["list_history_count"] = list_count
    data_vars["list_capture"] = list_capture
    coords["list"] = ("list", lists)
    coords["list_history"] = ("list_history", list_histories)

    ds = xr.Dataset(data_vars, coords=coords)
    _coord_attrs(ds, period, occasion)
    ds.attrs = {
        "period": period,
        # netCDF attributes cannot be None: "none" means no capture-history variables.
        "occasion": occasion if occasion is not None else "none",
        "description": (
            "Sufficient statistics of border records for capture-recapture models: apprehensions per "
            "section-month, frequencies f_k and capture histories per section-period stratum, checkpoint "
            "flows, and list histories for multiple-systems estimation. Counts only; no person ids."
        ),
    }
    return ds


def data_summary(records: RecordSet) -> pd.DataFrame:
    """One row per section (sections-table order): what the records hold, in capture–recapture terms.

    Columns:

    * ``apprehension_records``: rows in the apprehension records.
    * ``distinct_people``: distinct persons among them (``<NA>`` for sections without individual records:
      the number of people behind monthly totals is unknown).
    * ``apprehensions``: individual records plus monthly totals (a section-month is in one or the other).
    * ``reapprehension_rate``: Espenshade's repeated-trials estimator of the per-attempt apprehension
      probability, re-apprehensions / apprehensions, where a re-apprehension is a further apprehension of the
      same person in the same section and calendar month (a journey's retries): (apprehensions − distinct
      person-months) / apprehensions. Within the month because people return in later months on new journeys,
      and pooling those would overstate the probability. NaN without individual records.
    * ``legal_crossings``: legal crossings (citizens + foreigners) at all the section's checkpoints, all months.
    * ``mean_wait_minutes``: mean waiting time at the section's checkpoints, weighted by legal crossings (NaN
      when there were none).
    """
    sections = _labels(records.sections, "section_id", "sections")
    checkpoints = _labels(records.checkpoints, "checkpoint_id", "checkpoints")
    n_sections = len(sections)
    appr = _code_apprehensions(records, sections)
    totals = _code_totals(records, sections)
    flows = _code_checkpoint_records(records, checkpoints)

    n_records = np.bincount(appr.section, minlength=n_sections)
    has_records = n_records > 0
    # Distinct (section, person) pairs: one sort of a packed key, then count the first of each run.
    n_people = max(appr.n_people, 1)
    pair = _flat_index((appr.section, n_sections), (appr.person, n_people))
    pair.sort()
    first = np.ones(pair.size, dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    distinct = np.bincount(pair[first] // n_people, minlength=n_sections)
    del pair, first
    total_counts = np.bincount(totals.section, weights=totals.count, minlength=n_sections)
    apprehensions = n_records + total_counts.astype(np.int64)

    # Distinct (section, month, person) triples: the journeys seen, for Espenshade's estimator.
    month0 = int(appr.month.min()) if appr.month.size else 0
    n_months = int(appr.month.max()) - month0 + 1 if appr.month.size else 1
    triple = _flat_index(
        (appr.section, n_sections), (appr.month - month0, n_months), (appr.person, n_people)
    )
    triple.sort()
    first = np.ones(triple.size, dtype=bool)
    first[1:] = triple[1:] != triple[:-1]
    person_months = np.bincount(triple[first] // (n_months * n_people), minlength=n_sections)
    del triple, first
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(has_records, (n_records - person_months) / np.maximum(n_records, 1), np.nan)

    cp_section = _codes(records.checkpoints["section_id"], sections, "checkpoints", "section_id")
    row_section = cp_section[flows.checkpoint]
    legal = flows.values["crossings_citizens"] + flows.values["crossings_foreigners"]
    legal_by_section = np.bincount(row_section, weights=legal, minlength=n_sections)
    wait_sum = np.bincount(row_section, weights=legal * flows.wait, minlength=n_sections)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_wait = np.where(legal_by_section > 0, wait_sum / legal_by_section, np.nan)
    # Exact integer sum for the crossings (float weights could lose units above 2**53).
    legal_int = np.zeros(n_sections, dtype=np.int64)
    np.add.at(legal_int, row_section, legal)

    out = pd.DataFrame(
        {
            "apprehension_records": n_records.astype(np.int64),
            # <NA>, not 0, where the people behind monthly totals are unknown.
            "distinct_people": pd.arrays.IntegerArray(distinct.astype(np.int64), mask=~has_records),
            "apprehensions": apprehensions,
            "reapprehension_rate": rate.astype(np.float64),
            "legal_crossings": legal_int,
            "mean_wait_minutes": mean_wait.astype(np.float64),
        },
        index=pd.Index(list(sections), name="section"),
    )
    return out


# --------------------------------------------------------------------------------------------------------------
# Coding records as integers
# --------------------------------------------------------------------------------------------------------------


def _check_period_occasion(period: str, occasion: str | None) -> int:
    if period not in PERIODS:
        raise EstimInputError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    if occasion is None:
        return 1
    if occasion not in OCCASIONS:
        raise EstimInputError(
            f"occasion must be one of {', '.join(OCCASIONS)} or None; got {occasion!r}"
        )
    n = _OCCASIONS_PER_PERIOD.get((period, occasion))
    if n is None:
        raise EstimInputError(
            f"occasion {occasion!r} must be finer than period {period!r}: use year/quarter, year/month or "
            "quarter/month (or occasion=None for frequencies only)"
        )
    return n


def _labels(frame: pd.DataFrame, column: str, table: str) -> tuple[str, ...]:
    labels = tuple(frame[column].astype(str).tolist())
    if len(set(labels)) != len(labels):
        raise EstimInputError(f"{table}: {column} has repeated values")
    return labels


def _codes(values: pd.Series, labels: Sequence[str], table: str, column: str) -> np.ndarray:
    """Position of each value in `labels`, as the smallest integer type that holds it.

    Arrow-backed text (what the loader makes) is looked up with ``pyarrow.compute.index_in``, one hash probe per
    row against the few labels; other text is factorised. Compact codes keep the memory of 10^7 rows small;
    arithmetic on them goes through `_flat_index`, which widens to int64.
    """
    dtype = np.int8 if len(labels) < 2**7 else np.int32
    arrow = _arrow_strings(values)
    if arrow is not None and len(labels):
        found = pc.index_in(arrow, value_set=pa.array(list(labels), type=arrow.type))
        if found.null_count == 0:
            return found.to_numpy().astype(dtype)
        # fall through to the factorisation, which names the offending values
    codes, uniques = pd.factorize(values)
    if codes.size and codes.min() < 0:
        raise EstimInputError(f"{table}: {column} has missing values")
    index = {label: i for i, label in enumerate(labels)}
    unknown = [str(u) for u in uniques if str(u) not in index]
    if unknown:
        known = ", ".join(labels[:12]) or "(none)"
        raise EstimInputError(
            f"{table}: {column} has values not in {known}: {', '.join(unknown[:5])}"
        )
    lookup = np.array([index[str(u)] for u in uniques], dtype=dtype)
    return lookup[codes]


def _arrow_strings(values: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow data behind a pyarrow-backed string column (zero copy), else None."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arrow = values.array.__arrow_array__()  # the Arrow protocol: no copy
        return (
            arrow
            if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)
            else None
        )
    return None


def _month_ints(values: pd.Series, table: str, column: str) -> np.ndarray:
    """Months since 1970-01 (int32) of a datetime column: month arithmetic is then integer arithmetic."""
    arr = values.to_numpy(dtype="datetime64[s]")
    if np.isnat(arr).any():
        raise EstimInputError(f"{table}: {column} has missing dates")
    return arr.astype("datetime64[M]").view(np.int64).astype(np.int32)


def _flat_index(*parts: tuple[np.ndarray, int]) -> np.ndarray:
    """Row-major index of ``(codes, size)`` parts into a grid of those sizes (int64, built in place).

    The first part's size is not needed; its codes are only widened. Building in place keeps one int64 array
    alive instead of a temporary per operation.
    """
    (first, _), *rest = parts
    index = first.astype(np.int64)
    for codes, size in rest:
        index *= size
        index += codes
    return index


@dataclass
class _Apprehensions:
    """Apprehension records as integer codes: section, absolute month, category, detector, person."""

    section: np.ndarray
    month: np.ndarray
    category: np.ndarray
    detector: np.ndarray
    person: np.ndarray
    """Dense person code 0..n_people-1 (person_id factorised once)."""
    people: pd.Index
    """person_id of each person code, for linking the registers."""

    @property
    def n_people(self) -> int:
        return len(self.people)


def _code_apprehensions(records: RecordSet, sections: Sequence[str]) -> _Apprehensions:
    a = records.apprehensions
    person, people = pd.factorize(a[PERSON_ID])
    if person.size and person.min() < 0:
        raise EstimInputError(f"apprehensions: {PERSON_ID} has missing values")
    person = person.astype(np.int32) if len(people) < 2**31 else person.astype(np.int64)
    return _Apprehensions(
        section=_codes(a["section_id"], sections, "apprehensions", "section_id"),
        month=_month_ints(a["date"], "apprehensions", "date"),
        category=_codes(a["category"], CATEGORIES, "apprehensions", "category"),
        detector=_codes(a["detected_by"], DETECTORS, "apprehensions", "detected_by"),
        person=person,
        people=pd.Index(people),
    )


@dataclass
class _Totals:
    section: np.ndarray
    month: np.ndarray
    category: np.ndarray
    detector: np.ndarray
    count: np.ndarray


def _code_totals(records: RecordSet, sections: Sequence[str]) -> _Totals:
    t = records.apprehension_totals
    count = t["apprehensions"].to_numpy(dtype=np.int64)
    if count.size and count.min() < 0:
        raise EstimInputError("apprehension_totals: apprehensions has negative counts")
    return _Totals(
        section=_codes(t["section_id"], sections, "apprehension_totals", "section_id"),
        month=_month_ints(t["month"], "apprehension_totals", "month"),
        category=_codes(t["category"], CATEGORIES, "apprehension_totals", "category"),
        detector=_codes(t["detected_by"], DETECTORS, "apprehension_totals", "detected_by"),
        count=count,
    )


@dataclass
class _Flows:
    checkpoint: np.ndarray
    month: np.ndarray
    values: dict[str, np.ndarray]
    wait: np.ndarray


def _code_checkpoint_records(records: RecordSet, checkpoints: Sequence[str]) -> _Flows:
    r = records.checkpoint_records
    return _Flows(
        checkpoint=_codes(r["checkpoint_id"], checkpoints, "checkpoint_records", "checkpoint_id"),
        month=_month_ints(r["month"], "checkpoint_records", "month"),
        values={c: r[c].to_numpy(dtype=np.int64) for c in _FLOW_COLUMNS},
        wait=r["mean_wait_minutes"].to_numpy(dtype=np.float64),
    )


# --------------------------------------------------------------------------------------------------------------
# Time axes
# --------------------------------------------------------------------------------------------------------------


def _month_span(*months: np.ndarray) -> tuple[int, int]:
    """First month (months since 1970-01) and number of months of the contiguous span of all monthly data."""
    present = [m for m in months if m.size]
    if not present:
        return 0, 0
    lo = min(int(m.min()) for m in present)
    hi = max(int(m.max()) for m in present)
    return lo, hi - lo + 1


def _month_coord(month0: int, n_months: int) -> np.ndarray:
    return (np.arange(month0, month0 + n_months).astype("datetime64[M]")).astype("datetime64[ns]")


def _period_unit(month: np.ndarray | int, period: str) -> np.ndarray | int:
    """Absolute period number (years, quarters or months since 1970) of absolute month numbers."""
    return month // _MONTHS_PER[period]


def _period_span(month0: int, n_months: int, period: str) -> tuple[int, int]:
    if n_months == 0:
        return 0, 0
    first = int(_period_unit(month0, period))
    last = int(_period_unit(month0 + n_months - 1, period))
    return first, last - first + 1


def _period_label(unit: int, period: str) -> str:
    if period == "year":
        return f"{1970 + unit}"
    if period == "quarter":
        return f"{1970 + unit // 4}Q{unit % 4 + 1}"
    return f"{1970 + unit // 12}-{unit % 12 + 1:02d}"


def _period_labels(period0: int, n_periods: int, period: str) -> list[str]:
    return [_period_label(u, period) for u in range(period0, period0 + n_periods)]


def _period_starts(period0: int, n_periods: int, period: str) -> np.ndarray:
    start_months = np.arange(period0, period0 + n_periods) * _MONTHS_PER[period]
    return start_months.astype("datetime64[M]").astype("datetime64[ns]")


def _month_period_labels(month0: int, n_months: int, period: str) -> list[str]:
    return [
        _period_label(int(_period_unit(m, period)), period)
        for m in range(month0, month0 + n_months)
    ]


def _occasion_index(month: np.ndarray, period: str, occasion: str | None) -> np.ndarray:
    """Occasion number within its period, from 0 (e.g. the quarter of the year)."""
    if occasion is None:
        return np.zeros(month.shape, dtype=np.int8)
    within = month % _MONTHS_PER[period]  # month within the period, from 0
    return within // _MONTHS_PER[occasion]


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
    individual_records = xr.DataArray(
        individual,
        dims=("section",),
        attrs={
            "long_name": "the section's apprehensions come from individual records (f_k and histories exist)",
            "units": "1",
        },
    )
    return {"apprehended": apprehended, "individual_records": individual_records}


# --------------------------------------------------------------------------------------------------------------
# Frequencies and capture histories per section × period stratum
# --------------------------------------------------------------------------------------------------------------


class _Strata:
    def __init__(
        self,
        frequency: xr.DataArray,
        history_count: xr.DataArray,
        capture: xr.DataArray,
        histories: list[str],
    ) -> None:
        self.frequency = frequency
        self.history_count = history_count
        self.capture = capture
        self.histories = histories


def _strata(
    appr: _Apprehensions,
    month0: int,
    period: str,
    occasion: str | None,
    n_occasions: int,
    n_sections: int,
    n_periods: int,
) -> _Strata:
    n_c = len(CATEGORIES)
    n_o = n_occasions
    n_people = max(appr.n_people, 1)
    n_strata = n_sections * n_periods
    period_in_span = _period_unit(appr.month, period) - np.int32(_period_unit(month0, period))
    occ = _occasion_index(appr.month, period, occasion)

    # One int64 key per record packs (section, period, person, category, occasion). Sorting it (numpy's SIMD
    # sort, far faster than hashing 10^7 keys) lines up each person-in-stratum's records, by category then
    # occasion, so every per-person statistic is a computation on runs of equal keys.
    if n_strata * n_people * n_c * n_o >= 2**63:
        raise EstimInputError("too many sections × periods × people to pack into 64-bit keys")
    key = _flat_index(
        (appr.section, n_sections),
        (period_in_span, n_periods),
        (appr.person, n_people),
        (appr.category, n_c),
        (occ, n_o),
    )
    del period_in_span, occ
    key.sort()
    n = key.size

    # Runs of equal (person-in-stratum, category): how often each person was recorded in each category.
    person_cat = key // n_o
    run_start = _run_starts(person_cat)
    run_len = np.diff(np.append(run_start, n))
    run_key = person_cat[run_start]
    del person_cat
    run_cat = run_key % n_c
    run_person = run_key // n_c  # stratum * n_people + person
    del run_key
    # Runs grouped by person-in-stratum (each person's runs are adjacent, categories ascending).
    person_run_start = _run_starts(run_person)
    n_groups = person_run_start.size
    starts = run_start[person_run_start]  # first record of each person-in-stratum
    times = np.add.reduceat(run_len, person_run_start) if n_groups else np.zeros(0, np.int64)
    group_stratum = run_person[person_run_start] // n_people
    del run_person

    # Modal category: the first run (lowest category in CATEGORIES order: the tie rule) whose length is the
    # person's maximum.
    if n_groups:
        longest = np.maximum.reduceat(run_len, person_run_start)
        run_group = np.repeat(
            np.arange(n_groups), np.diff(np.append(person_run_start, run_len.size))
        )
        is_max = np.flatnonzero(run_len == longest[run_group])
        first_max = is_max[_run_starts(run_group[is_max])]
        modal = run_cat[first_max].astype(np.int64)
        del longest, run_group, is_max, first_max
    else:
        modal = np.zeros(0, np.int64)
    del run_cat, run_len, run_start, person_run_start

    k_max = int(times.max()) if n_groups else 0
    freq = np.bincount(
        (group_stratum * n_c + modal) * k_max + (times - 1), minlength=n_strata * n_c * k_max
    )
    frequency = xr.DataArray(
        freq.astype(np.int64).reshape(n_sections, n_periods, n_c, k_max),
        dims=("section", "period", "category", "k"),
        attrs={
            "long_name": "f_k: people apprehended exactly k times in the section-period stratum, by modal category",
            "units": "persons",
        },
    )

    # Capture history as an integer: occasion 1 is the most significant bit, so numeric order is the
    # lexicographic order of the "0110" strings.
    bits = np.left_shift(np.int16(1), (np.int16(n_o - 1) - (key % n_o).astype(np.int16)))
    mask = np.bitwise_or.reduceat(bits, starts) if n_groups else np.zeros(0, np.int16)
    del bits, key
    distinct = _sorted_unique(mask)
    n_h = distinct.size
    history = np.searchsorted(distinct, mask)
    hist = np.bincount(group_stratum * n_h + history, minlength=n_strata * n_h)
    histories = [format(int(h), f"0{n_o}b") for h in distinct]
    capture = np.array([[int(ch) for ch in h] for h in histories], dtype=np.int8).reshape(n_h, n_o)
    history_count = xr.DataArray(
        hist.astype(np.int64).reshape(n_sections, n_periods, n_h),
        dims=("section", "period", "history"),
        attrs={
            "long_name": "people with this capture history over the period's occasions (observed histories only)",
            "units": "persons",
        },
    )
    capture_da = xr.DataArray(
        capture,
        dims=("history", "occasion"),
        attrs={"long_name": "captured (apprehended at least once) on the occasion", "units": "1"},
    )
    return _Strata(frequency, history_count, capture_da, histories)


def _run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values begins in a sorted array."""
    if sorted_values.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    return np.concatenate(([0], change))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # np.unique hashes in numpy ≥ 2.3 and is much slower than a sort here.
    s = np.sort(values)
    keep = np.ones(s.size, dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


# --------------------------------------------------------------------------------------------------------------
# Checkpoint flows
# --------------------------------------------------------------------------------------------------------------


def _checkpoint_flows(
    records: RecordSet,
    flows: _Flows,
    checkpoints: Sequence[str],
    sections: Sequence[str],
    month0: int,
    n_months: int,
) -> dict[str, xr.DataArray]:
    n_cp = len(checkpoints)
    n_s = len(sections)
    flow_month = flows.month - np.int32(month0)
    cell = _flat_index((flows.checkpoint, n_cp), (flow_month, n_months))
    if np.bincount(cell, minlength=n_cp * n_months).max(initial=0) > 1:
        raise EstimInputError("checkpoint_records: a checkpoint and month appear more than once")

    out: dict[str, xr.DataArray] = {}
    dims = ("checkpoint", "month")
    for column, (long_name, units) in _FLOW_COLUMNS.items():
        grid = np.zeros(n_cp * n_months, dtype=np.int64)
        grid[cell] = flows.values[column]
        out[column] = xr.DataArray(
            grid.reshape(n_cp, n_months),
            dims=dims,
            attrs={
                "long_name": f"{long_name} (0 where not reported: see checkpoint_reported)",
                "units": units,
            },
        )
    reported = np.zeros(n_cp * n_months, dtype=bool)
    reported[cell] = True
    out["checkpoint_reported"] = xr.DataArray(
        reported.reshape(n_cp, n_months),
        dims=dims,
        attrs={
            "long_name": "a checkpoint record exists for this checkpoint and month",
            "units": "1",
        },
    )
    wait = np.full(n_cp * n_months, np.nan)
    wait[cell] = flows.wait
    out["mean_wait_minutes"] = xr.DataArray(
        wait.reshape(n_cp, n_months),
        dims=dims,
        attrs={
            "long_name": "mean waiting time at control (NaN where not reported)",
            "units": "minutes",
        },
    )

    # Bypass-share inputs: the same records summed to section-month over the land checkpoints.
    cp_section = _codes(records.checkpoints["section_id"], sections, "checkpoints", "section_id")
    cp_land = records.checkpoints["type"].astype(str).isin(LAND_CHECKPOINT_TYPES).to_numpy()
    land = cp_land[flows.checkpoint]
    sm = _flat_index((cp_section[flows.checkpoint], n_s), (flow_month, n_months))[land]
    size = n_s * n_months
    foreigners = np.zeros(size, dtype=np.int64)
    np.add.at(foreigners, sm, flows.values["crossings_foreigners"][land])
    # The wait foreigners meet (docs/simulator.md §1, the bypass share's input): weighted by foreign crossings,
    # the plain mean of the land checkpoints' waits in a month without foreign crossings.
    foreign = flows.values["crossings_foreigners"][land].astype(np.float64)
    weight = np.bincount(sm, weights=foreign, minlength=size)
    weighted_wait = np.bincount(sm, weights=foreign * flows.wait[land], minlength=size)
    reporting = np.bincount(sm, minlength=size)
    plain_wait = np.bincount(sm, weights=flows.wait[land], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        land_wait = np.where(
            weight > 0,
            weighted_wait / weight,
            np.where(reporting > 0, plain_wait / reporting, np.nan),
        )
    out["land_crossings_foreigners"] = xr.DataArray(
        foreigners.reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "legal crossings by foreigners at the section's road, rail and river checkpoints "
            "that reported (see land_checkpoints_reporting)",
            "units": "crossings",
        },
    )
    out["land_mean_wait_minutes"] = xr.DataArray(
        land_wait.reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "mean waiting time at the section's road, rail and river checkpoints, weighted by "
            "foreign crossings (their plain mean in a month without; NaN where none reported)",
            "units": "minutes",
        },
    )
    out["land_checkpoints_reporting"] = xr.DataArray(
        np.bincount(sm, minlength=size).astype(np.int64).reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "road, rail and river checkpoints of the section with a record for the month",
            "units": "checkpoints",
        },
    )
    return out


# --------------------------------------------------------------------------------------------------------------
# Multiple-systems estimation: presence on each list
# --------------------------------------------------------------------------------------------------------------


def _list_histories(
    records: RecordSet, appr: _Apprehensions
) -> tuple[list[str], list[str], xr.DataArray, xr.DataArray]:
    reg = records.registers
    reg_codes = _codes(reg["register"], REGISTERS, "registers", "register")
    present = sorted(set(reg_codes.tolist()))
    lists = [REGISTERS[i] for i in present] + [APPREHENSIONS_LIST]
    n_lists = len(lists)
    position = np.full(len(REGISTERS), -1, dtype=np.int64)
    position[present] = np.arange(len(present))

    # Person codes over the union of lists: the apprehended people keep their codes 0..n_people-1 (the
    # factorisation of apprehensions is reused); register people not apprehended get the next codes.
    if len(reg):
        reg_ids = reg[PERSON_ID]
        if reg_ids.isna().any():
            raise EstimInputError(f"registers: {PERSON_ID} has missing values")
        combined, _ = pd.factorize(
            pd.concat([pd.Series(appr.people, dtype=reg_ids.dtype), reg_ids], ignore_index=True)
        )
        reg_person = combined[appr.n_people :].astype(np.int64)
        n_people = int(combined.max()) + 1 if combined.size else 0
    else:
        reg_person = np.zeros(0, dtype=np.int64)
        n_people = appr.n_people

    # List 1 is the most significant bit, so numeric order is the order of the pattern strings.
    mask = np.zeros(n_people, dtype=np.int64)
    mask[: appr.n_people] = 1  # everyone apprehended is on the last list
    if reg_person.size:
        np.bitwise_or.at(
            mask, reg_person, np.left_shift(np.int64(1), (n_lists - 1) - position[reg_codes])
        )
    distinct = _sorted_unique(mask)
    counts = np.bincount(np.searchsorted(distinct, mask), minlength=distinct.size).astype(np.int64)
    patterns = [format(int(h), f"0{n_lists}b") for h in distinct]
    capture = np.array([[int(ch) for ch in p] for p in patterns], dtype=np.int8).reshape(
        len(patterns), n_lists
    )
    count_da = xr.DataArray(
        counts,
        dims=("list_history",),
        attrs={
            "long_name": "people with this pattern of presence on the lists, whole record span (each person once)",
            "units": "persons",
        },
    )
    capture_da = xr.DataArray(
        capture,
        dims=("list_history", "list"),
        attrs={"long_name": "present on the list", "units": "1"},
    )
    return lists, patterns, count_da, capture_da


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
    }
    for name, (long_name, units) in names.items():
        if name in ds.coords:
            ds.coords[name].attrs["long_name"] = long_name
            # No `units` on datetime coords: xarray's netCDF encoding owns that attribute there.
            if units:
                ds.coords[name].attrs["units"] = units
