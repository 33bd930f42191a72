"""Record tables coded as integers: labels to compact codes, dates to month numbers, flat grid indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.errors import EstimInputError
from estim.records.recordset import PERSON_ID, RecordSet
from estim.records.schemas import CATEGORIES, DETECTORS

_FLOW_COLUMNS = {
    "crossings_citizens": ("legal crossings by Russian and Kazakh citizens", "crossings"),
    "crossings_foreigners": ("legal crossings by other foreigners", "crossings"),
    "refusals_of_entry": ("foreigners refused entry", "persons"),
    "invalid_documents": ("invalid documents detected", "documents"),
}


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
