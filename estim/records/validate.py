"""Validation of record files against their schemas (DESIGN §3; the schemas are `estim.records.schemas`).

Every rule is driven by the schema: cell kinds, ``nullable``, ``minimum``/``maximum``, ``plausible``,
``choices``, ``pattern``, ``not_after_today``, ``references``, ``unique``. The one rule that spans tables
is written out here: a (section, month) must not be counted both in ``apprehensions`` (one row per
apprehension) and in ``apprehension_totals`` (monthly counts), rule ``double_count``.

Each violation names the file, the row as the user counts it (CSV: the line, the header being line 1;
Parquet: the 1-based row), the column and the rule, and says what the value was and what is allowed. All
files are checked to the end; the report lists the first `cap` violations and counts all of them.

Checks are vectorised: a text column is factorised once (Arrow dictionary encoding) and every test runs on
its distinct values, then is broadcast back to the rows; there is no Python loop over rows except to word
the violations that are listed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.errors import EstimInputError
from estim.records.read import RawTable, read_table
from estim.records.recordset import PERSON_ID, typed_columns
from estim.records.schemas import EARLIEST_DATE, SCHEMAS, Column, Schema

RECORD_SUFFIXES = (".csv", ".parquet")

_FALLBACK_TABLES = {"sections": "SECTIONS_CSV"}
"""A referenced table absent from the folder is looked up here (attribute of `estim.paths`)."""

_DOUBLE_COUNT = (
    ("apprehensions", "section_id", "date"),
    ("apprehension_totals", "section_id", "month"),
)
"""Cross-table rule: individual records and monthly totals must not both count a (section, month)."""


# ------------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (file, row, column), which rule, and a sentence for people."""

    file: str
    row: int | None
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            parquet = self.file.lower().endswith(".parquet")
            where = f"{self.file}: row {self.row}" if parquet else f"{self.file}:{self.row}"
        column = f" column '{self.column}':" if self.column is not None else ""
        return f"{where}:{column} {self.rule}: {self.message}"


@dataclass
class ValidationReport:
    """The violations found (the first `cap` of them), how many in all, and how much was checked."""

    violations: list[Violation] = field(default_factory=list)
    total: int = 0
    files: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return self.total == 0

    def describe_checked(self) -> str:
        """E.g. ``7 files, 81,234 rows checked``."""
        return f"{_plural(self.files, 'file')}, {_plural(self.rows, 'row')} checked"

    def __str__(self) -> str:
        lines = [str(v) for v in self.violations]
        if self.total > len(self.violations):
            more = self.total - len(self.violations)
            lines.append(f"… and {_plural(more, 'more violation')} ({self.total:,} in all)")
        lines.append(f"{_plural(self.total, 'violation')} ({self.describe_checked()})")
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass
class _Batch:
    """Violations of one rule in one column of one file, worded only when listed."""

    file: str
    rule: str
    column: str | None
    labels: np.ndarray
    """Row of each violation as the user counts it; 0 for none (sorts first)."""
    index: np.ndarray
    """Argument given to `message` for each violation (usually the data-row index)."""
    message: Callable[[int], str]

    def __len__(self) -> int:
        return int(self.labels.size)

    def violation(self, k: int) -> Violation:
        row = int(self.labels[k])
        return Violation(
            self.file, row or None, self.column, self.rule, self.message(int(self.index[k]))
        )


def _single(file: str, row: int | None, column: str | None, rule: str, message: str) -> _Batch:
    return _Batch(
        file, rule, column, np.array([row or 0]), np.zeros(1, np.int64), lambda _: message
    )


class _Collector:
    """Counts every violation, keeps the first `cap` (by file, then row, then column)."""

    def __init__(self, cap: int) -> None:
        self.cap = max(cap, 0)
        self.listed: list[Violation] = []
        self.total = 0

    def add(self, batches: list[_Batch]) -> None:
        sizes = [len(b) for b in batches]
        n = sum(sizes)
        self.total += n
        room = self.cap - len(self.listed)
        if n == 0 or room <= 0:
            return
        labels = np.concatenate([b.labels for b in batches])
        which = np.repeat(np.arange(len(batches)), sizes)
        within = np.concatenate([np.arange(s) for s in sizes])
        order = np.argsort(labels, kind="stable")[:room]  # ties keep batch order: column order
        self.listed.extend(batches[which[o]].violation(within[o]) for o in order)


# ------------------------------------------------------------------------------------------ cell checks

_OK, _EMPTY, _WHITESPACE, _TYPE, _NOT_INTEGER, _DATE, _FUTURE, _MINIMUM, _MAXIMUM, _PLAUSIBLE = (
    range(10)
)
_CHOICE, _PATTERN, _UNKNOWN = 10, 11, 12
_RULE_NAMES = (
    "",
    "empty",
    "whitespace",
    "type",
    "not_integer",
    "date",
    "future",
    "minimum",
    "maximum",
    "plausible",
    "choice",
    "pattern",
    "unknown",
)
_TEXT_KINDS = ("id", "text", "choice", "code")
_INT_RE = r"^[+-]?[0-9]{1,18}$"  # 18 digits always fit int64; longer ones are checked one by one
_DIGITS_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MONTH_RE = r"^[0-9]{4}-[0-9]{2}$"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_EARLIEST = np.datetime64(EARLIEST_DATE, "s")
_EARLIEST_MONTH = np.datetime64(EARLIEST_DATE[:7], "M").astype("datetime64[s]")


@dataclass
class _Checked:
    """One column after its cell checks."""

    rules: np.ndarray
    """Rule broken by each row's cell (int8, 0 when fine)."""
    typed: np.ndarray | pa.ChunkedArray | None
    """Typed values (numpy), or the text (Arrow) for text kinds; meaningful where `rules` is 0."""
    null: np.ndarray
    """Rows whose cell is empty (allowed only in nullable columns)."""
    text: Callable[[int], str]
    """The cell as written, for messages."""
    codes: np.ndarray | None = None
    """Text kinds: index of each row's value in `uniques` (order of first appearance; -1 when null)."""
    uniques: pa.Array | None = None
    unique_ok: np.ndarray | None = None
    column_issue: str | None = None
    """A problem with the column as a whole (a Parquet column of an unusable type)."""
    ordered: bool = False
    """`codes` are numbered in order of first appearance."""

    @property
    def ok(self) -> np.ndarray:
        return self.rules == _OK

    def factorised(self) -> np.ndarray:
        """Codes of the row values (-1 for null)."""
        if self.codes is not None:
            return self.codes
        assert isinstance(self.typed, np.ndarray)
        self.codes = pd.factorize(self.typed)[0]
        return self.codes


def _to_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _match(values: pa.Array, pattern: str) -> np.ndarray:
    return _to_numpy(pc.match_substring_regex(values, pattern)).astype(bool)


def _check_column(arr: pa.ChunkedArray, col: Column, today: np.datetime64) -> _Checked:
    t = arr.type
    if pa.types.is_dictionary(t):
        if col.kind in _TEXT_KINDS and (
            pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
        ):
            return _check_text(arr, col, today)  # already factorised: check the dictionary
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        arr = arr.cast(pa.string())
        t = arr.type
    if col.kind in _TEXT_KINDS or _is_text(t):
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            try:
                arr = arr.cast(pa.string())
            except pa.ArrowException:
                return _column_type_issue(arr, col)
        return _check_text(arr, col, today)
    return _check_native(arr, col, today)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _check_text(arr: pa.ChunkedArray, col: Column, today: np.datetime64) -> _Checked:
    """Check text cells: each test runs once per distinct value, then is broadcast to the rows."""
    ordered = not pa.types.is_dictionary(arr.type)
    if ordered:  # codes numbered in order of first appearance, one dictionary for all chunks
        encoded = pc.dictionary_encode(arr, null_encoding="mask")
    else:  # read dictionary-encoded: one dictionary per chunk, to merge
        encoded = arr.unify_dictionaries()
    if encoded.num_chunks:
        uniques = encoded.chunk(encoded.num_chunks - 1).dictionary
        codes = np.concatenate(
            [_to_numpy(c.indices.fill_null(-1)).astype(np.int32) for c in encoded.chunks]
        )
    else:
        uniques, codes = pa.array([], pa.string()), np.zeros(0, np.int32)
    if pa.types.is_large_string(uniques.type):
        uniques = uniques.cast(pa.string())
    rules_u, typed_u, null_u = _check_distinct(uniques, col, today)
    # Index -1 (a missing cell) picks the appended last entry: "empty".
    rules = np.append(rules_u, np.array([_OK if col.nullable else _EMPTY], np.int8))[codes]
    null = np.append(null_u, True)[codes]
    typed: np.ndarray | pa.ChunkedArray | None
    if typed_u is None:
        typed = arr
    else:
        filler = np.zeros(1, typed_u.dtype)
        if typed_u.dtype.kind == "M":
            filler[:] = np.datetime64("NaT", "s")
        elif typed_u.dtype.kind == "f":
            filler[:] = np.nan
        typed = np.append(typed_u, filler)[codes]
    return _Checked(
        rules=rules,
        typed=typed,
        null=null,
        text=lambda i: _cell_text(uniques, codes, i),
        codes=codes,
        uniques=uniques,
        unique_ok=rules_u == _OK,
        ordered=ordered,
    )


_SPACE = np.zeros(256, bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True


def _edges(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Which strings are empty, and which start or end with an ASCII space (read off Arrow's buffers)."""
    n = len(values)
    _, offsets_buffer, data_buffer = values.buffers()
    if n == 0 or offsets_buffer is None:
        return np.zeros(n, bool), np.zeros(n, bool)
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, values.offset * 4)
    empty = offsets[1:] == offsets[:-1]
    spaced = np.zeros(n, bool)
    full = np.flatnonzero(~empty)
    if full.size:
        data = np.frombuffer(data_buffer, np.uint8)
        spaced[full] = _SPACE[data[offsets[full]]] | _SPACE[data[offsets[full + 1] - 1]]
    return empty, spaced


def _cell_text(uniques: pa.Array, codes: np.ndarray, i: int) -> str:
    code = int(codes[i])
    return "" if code < 0 else str(uniques[code].as_py())


def _check_distinct(
    values: pa.Array, col: Column, today: np.datetime64
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Rules broken by each distinct text value, its typed value and whether it is empty."""
    n = len(values)
    rules = np.zeros(n, np.int8)
    empty, spaced = _edges(values)
    if not col.nullable:
        rules[empty] = _EMPTY
    if col.kind != "text":
        rules[spaced] = _WHITESPACE
    todo = np.flatnonzero((rules == _OK) & ~empty)
    subset = values.take(pa.array(todo)) if todo.size < n else values
    sub_rules, sub_typed = _PARSERS[col.kind](subset, col)
    rules[todo] = sub_rules
    typed = None
    if sub_typed is not None:
        typed = np.zeros(n, sub_typed.dtype)
        if typed.dtype.kind == "M":
            typed[:] = np.datetime64("NaT", "s")
        elif typed.dtype.kind == "f":
            typed[:] = np.nan
        typed[todo] = sub_typed
        _check_values(typed, rules, col, today, skip=empty)
    return rules, typed, empty


def _parse_id(values: pa.Array, col: Column) -> tuple[np.ndarray, None]:
    return np.zeros(len(values), np.int8), None


def _parse_choice(values: pa.Array, col: Column) -> tuple[np.ndarray, None]:
    assert col.choices is not None
    ok = _to_numpy(pc.is_in(values, value_set=pa.array(col.choices, pa.string()))).astype(bool)
    return np.where(ok, _OK, _CHOICE).astype(np.int8), None


def _parse_code(values: pa.Array, col: Column) -> tuple[np.ndarray, None]:
    assert col.pattern is not None
    ok = _match(values, f"^(?:{col.pattern})$") if len(values) else np.zeros(0, bool)
    return np.where(ok, _OK, _PATTERN).astype(np.int8), None


def _strip_plus(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(values, r"^\+", "")


def _parse_int(values: pa.Array, col: Column) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    rules = np.full(n, _TYPE, np.int8)
    typed = np.zeros(n, np.int64)
    if n == 0:
        return rules, typed
    short = _match(values, _INT_RE)
    if short.any():
        typed[short] = _to_numpy(pc.cast(_strip_plus(values.filter(pa.array(short))), pa.int64()))
        rules[short] = _OK
    rest = np.flatnonzero(~short)
    if rest.size:
        others = values.take(pa.array(rest))
        for j in np.flatnonzero(_match(others, _DIGITS_RE)):  # more than 18 digits: rare
            v = int(others[j].as_py())
            if -(2**63) <= v < 2**63:
                typed[rest[j]], rules[rest[j]] = v, _OK
        rules[rest[(rules[rest] == _TYPE) & _match(others, _FLOAT_RE)]] = _NOT_INTEGER
    return rules, typed


def _parse_float(values: pa.Array, col: Column) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    typed = np.full(n, np.nan)
    ok = _match(values, _FLOAT_RE) if n else np.zeros(0, bool)
    if ok.any():
        typed[ok] = _to_numpy(pc.cast(_strip_plus(values.filter(pa.array(ok))), pa.float64()))
    ok &= np.isfinite(typed)
    return np.where(ok, _OK, _TYPE).astype(np.int8), typed


def _parse_bool(values: pa.Array, col: Column) -> tuple[np.ndarray, np.ndarray]:
    lower = pc.utf8_lower(values)
    true = _to_numpy(pc.is_in(lower, value_set=pa.array(_TRUE))).astype(bool)
    false = _to_numpy(pc.is_in(lower, value_set=pa.array(_FALSE))).astype(bool)
    return np.where(true | false, _OK, _TYPE).astype(np.int8), true


def _digits(values: pa.Array, start: int, stop: int) -> np.ndarray:
    return _to_numpy(pc.cast(pc.utf8_slice_codeunits(values, start, stop), pa.int64()))


def _parse_date(values: pa.Array, col: Column) -> tuple[np.ndarray, np.ndarray]:
    return _parse_calendar(values, day=True)


def _parse_month(values: pa.Array, col: Column) -> tuple[np.ndarray, np.ndarray]:
    return _parse_calendar(values, day=False)


def _parse_calendar(values: pa.Array, day: bool) -> tuple[np.ndarray, np.ndarray]:
    """``YYYY-MM-DD`` (or ``YYYY-MM``) to datetime64[s], vectorised; impossible dates are rule ``date``."""
    n = len(values)
    rules = np.full(n, _DATE, np.int8)
    typed = np.full(n, np.datetime64("NaT", "s"), "datetime64[s]")
    shaped = np.flatnonzero(_match(values, _DATE_RE if day else _MONTH_RE)) if n else []
    if len(shaped) == 0:
        return rules, typed
    s = values.take(pa.array(shaped))
    year, month = _digits(s, 0, 4), _digits(s, 5, 7)
    good = (month >= 1) & (month <= 12)
    first = (np.where(good, (year - 1970) * 12 + month - 1, 0)).astype("datetime64[M]")
    first_day = first.astype("datetime64[D]")
    if day:
        d = _digits(s, 8, 10)
        days_in_month = (
            (first + np.timedelta64(1, "M")).astype("datetime64[D]") - first_day
        ).astype(np.int64)
        good &= (d >= 1) & (d <= days_in_month)
        value = first_day + (d - 1)
    else:
        value = first_day
    rules[shaped[good]] = _OK
    typed[shaped[good]] = value[good].astype("datetime64[s]")
    return rules, typed


_PARSERS: dict[str, Callable[[pa.Array, Column], tuple[np.ndarray, np.ndarray | None]]] = {
    "id": _parse_id,
    "text": _parse_id,
    "choice": _parse_choice,
    "code": _parse_code,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "date": _parse_date,
    "month": _parse_month,
}


def _check_values(
    typed: np.ndarray, rules: np.ndarray, col: Column, today: np.datetime64, skip: np.ndarray
) -> None:
    """Range rules on parsed values (in place, only where no rule is broken yet and not `skip`)."""
    todo = (rules == _OK) & ~skip
    if not todo.any():
        return

    def flag(bad: np.ndarray, rule: int) -> None:
        hit = todo & bad
        rules[hit] = rule
        todo[hit] = False

    if col.kind in ("int", "float"):
        if col.minimum is not None:
            flag(typed < col.minimum, _MINIMUM)
        if col.maximum is not None:
            flag(typed > col.maximum, _MAXIMUM)
        if col.plausible is not None:
            low, high = col.plausible
            flag((typed < low) | (typed > high), _PLAUSIBLE)
    elif col.kind in ("date", "month"):
        month = col.kind == "month"
        if col.not_after_today:
            limit = today.astype("datetime64[M]").astype("datetime64[s]") if month else today
            flag(typed > limit, _FUTURE)
        flag(typed < (_EARLIEST_MONTH if month else _EARLIEST), _MINIMUM)


def _check_native(arr: pa.ChunkedArray, col: Column, today: np.datetime64) -> _Checked:
    """Check a Parquet column stored in a non-text type (numbers, booleans, dates, timestamps)."""
    t = arr.type
    n = len(arr)
    null = _to_numpy(arr.is_null()).astype(bool) if arr.null_count else np.zeros(n, bool)
    rules = np.zeros(n, np.int8)
    typed: np.ndarray
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if col.kind == "int" and numeric:
        if pa.types.is_integer(t) and not pa.types.is_uint64(t):
            typed = _to_numpy(arr.cast(pa.int64()).fill_null(0))
        else:  # floats: NaN is how pandas writes a missing int
            f = _to_numpy(arr.cast(pa.float64()).fill_null(np.nan))
            null |= np.isnan(f)
            whole = np.isfinite(f) & (np.floor(f) == f)
            fits = (f >= -(2.0**63)) & (f < 2.0**63)
            rules[~null & ~whole] = _NOT_INTEGER
            rules[~null & whole & ~fits] = _TYPE
            typed = np.where(whole & fits, f, 0).astype(np.int64)
    elif col.kind == "float" and numeric:
        typed = _to_numpy(arr.cast(pa.float64()).fill_null(np.nan))
        null |= np.isnan(typed)
        rules[~null & ~np.isfinite(typed)] = _TYPE
    elif col.kind == "bool" and (pa.types.is_boolean(t) or pa.types.is_integer(t)):
        if pa.types.is_boolean(t):
            typed = _to_numpy(arr.fill_null(False)).astype(bool)
        else:
            v = _to_numpy(arr.cast(pa.int64()).fill_null(0))
            rules[~null & (v != 0) & (v != 1)] = _TYPE
            typed = v == 1
    elif col.kind in ("date", "month") and (pa.types.is_date(t) or pa.types.is_timestamp(t)):
        if pa.types.is_date(t):
            typed = _to_numpy(arr.cast(pa.date32())).astype("datetime64[s]")
        else:
            typed = _to_numpy(arr).astype("datetime64[s]")
        day = typed.astype("datetime64[D]")
        rules[~null & (typed != day)] = _DATE  # a time of day where a date is needed
        if col.kind == "month":
            rules[~null & (day != day.astype("datetime64[M]"))] = _DATE  # not the first of a month
    else:
        return _column_type_issue(arr, col)
    rules[null] = _OK if col.nullable else _EMPTY
    _check_values(typed, rules, col, today, skip=null)
    return _Checked(rules=rules, typed=typed, null=null, text=lambda i: _native_text(arr, i))


def _native_text(arr: pa.ChunkedArray, i: int) -> str:
    value = arr[i].as_py()
    if isinstance(value, dt.datetime) and value == dt.datetime.combine(value.date(), dt.time()):
        value = value.date()
    return "" if value is None else str(value)


_KIND_WORDS = {
    "id": "text",
    "text": "text",
    "choice": "text",
    "code": "text",
    "int": "whole numbers",
    "float": "numbers",
    "bool": "booleans",
    "date": "dates",
    "month": "months (YYYY-MM text or dates on the first of the month)",
}


def _column_type_issue(arr: pa.ChunkedArray, col: Column) -> _Checked:
    n = len(arr)
    return _Checked(
        rules=np.full(n, _TYPE, np.int8),
        typed=None,
        null=np.zeros(n, bool),
        text=lambda i: "",
        column_issue=f"the column holds {arr.type} values; it needs {_KIND_WORDS[col.kind]}",
    )


def _message(rule: int, col: Column, text: str, personal: bool) -> str:
    """A sentence for one broken cell rule: the value and what is allowed."""
    v = "the value (not shown: personal data)" if personal else repr(_clip(text))
    unit = f" {col.unit}" if col.unit else ""
    kind = col.kind
    if rule == _EMPTY:
        return "the cell is empty; a value is required"
    if rule == _WHITESPACE:
        return f"{v} has leading or trailing spaces"
    if rule == _TYPE:
        if kind == "int":
            if text.strip().lstrip("+-").isdigit():
                return f"{v} is too large for a whole number"
            return f"{v} is not a whole number"
        if kind == "float":
            return f"{v} is not a finite number"
        if kind == "bool":
            return f"{v} is not a boolean; use true/false, 1/0 or yes/no"
        return f"{v} is not {_KIND_WORDS[kind]}"
    if rule == _NOT_INTEGER:
        return f"{v} is not a whole number; counts are written as integers such as 12 (not 12.0 or 1e3)"
    if rule == _DATE:
        what, form = ("date", "YYYY-MM-DD") if kind == "date" else ("month", "YYYY-MM")
        if len(text) > 10 and text[:10].count("-") == 2:
            return f"{v} has a time of day; a {what} is needed ({form})"
        if kind == "month" and len(text) == 10:
            return (
                f"{v} is not a month: write {form} (in Parquet, a date on the first of the month)"
            )
        if _looks_like(text, kind):
            return f"{v} is not a real {what}"
        return f"{v} is not a {what} written {form}"
    if rule == _FUTURE:
        return f"{v} is in the future (today is {dt.date.today().isoformat()})"
    if rule == _MINIMUM:
        if kind in ("date", "month"):
            return f"{v} is before the Russia–Kazakhstan border existed ({EARLIEST_DATE})"
        return f"{v} is below the minimum {_number(col.minimum)}{unit}"
    if rule == _MAXIMUM:
        return f"{v} is above the maximum {_number(col.maximum)}{unit}"
    if rule == _PLAUSIBLE:
        assert col.plausible is not None
        low, high = col.plausible
        return f"{v} is implausible: outside {_number(low)} to {_number(high)}{unit}"
    if rule == _CHOICE:
        assert col.choices is not None
        return f"{v} is not one of: {', '.join(col.choices)}"
    if rule == _PATTERN:
        return f"{v} does not match the pattern {col.pattern} ({col.description})"
    raise AssertionError(rule)


def _looks_like(text: str, kind: str) -> bool:
    return re.fullmatch(_DATE_RE[1:-1] if kind == "date" else _MONTH_RE[1:-1], text) is not None


def _number(x: float | None) -> str:
    assert x is not None
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------------------------ references


class _References:
    """Valid values of referenced columns (``table.column``), from this dataset or a fallback file."""

    def __init__(self, folder: Path, display: str, *, look_beside: bool) -> None:
        self.folder = folder
        self.display = display
        self.look_beside = look_beside
        """Single-file mode: read a referenced table from the file's folder."""
        self.known: dict[str, tuple[pa.Array, str] | None] = {}

    @staticmethod
    def targets(table: str) -> set[str]:
        """Columns of `table` that some schema refers to."""
        return {
            c.references.split(".", 1)[1]
            for s in SCHEMAS.values()
            for c in s.columns
            if c.references and c.references.split(".", 1)[0] == table
        }

    def record(self, table: str, raw: RawTable, columns: dict[str, _Checked]) -> None:
        # A table that could not be read whole would make every id it lost look unknown: skip it.
        whole = raw.readable and not raw.issues and not raw.bad_field_rows.size and raw.n_rows > 0
        for name in self.targets(table):
            checked = columns.get(name)
            if not whole or checked is None or checked.uniques is None or checked.unique_ok is None:
                self.known[f"{table}.{name}"] = None
            else:
                valid = checked.uniques.filter(pa.array(checked.unique_ok))
                self.known[f"{table}.{name}"] = (valid, raw.file)

    def get(self, target: str) -> tuple[pa.Array, str] | None:
        if target not in self.known:
            self.known[target] = self._look_up(target)
        return self.known[target]

    def _look_up(self, target: str) -> tuple[pa.Array, str] | None:
        table, column = target.split(".", 1)
        candidates: list[tuple[Path, str]] = []
        if self.look_beside:
            for suffix in RECORD_SUFFIXES:
                candidates.append(
                    (self.folder / f"{table}{suffix}", _join(self.display, table + suffix))
                )
        if table in _FALLBACK_TABLES:
            from estim import paths

            fallback = Path(getattr(paths, _FALLBACK_TABLES[table]))
            candidates.append((fallback, str(fallback)))
        for path, shown in candidates:
            if path.is_file():
                raw = read_table(path, shown, [column])
                if column not in raw.columns:
                    return None
                col = SCHEMAS[table].column(column)
                checked = _check_column(raw.columns[column], col, _today())
                self.record(table, raw, {column: checked})
                return self.known.get(target)
        return None


def _coded(schema: Schema) -> tuple[str, ...]:
    """Columns with few distinct values by nature: read dictionary-encoded."""
    return tuple(c.name for c in schema.columns if c.kind in ("choice", "code"))


def _join(folder: str, name: str) -> str:
    return str(Path(folder) / name)


def _today() -> np.datetime64:
    return np.datetime64(dt.date.today(), "D").astype("datetime64[s]")


# ----------------------------------------------------------------------------------------------- tables


@dataclass
class _TableResult:
    name: str
    raw: RawTable
    columns: dict[str, _Checked]
    batches: list[_Batch]


def _labels(raw: RawTable, index: np.ndarray) -> np.ndarray:
    return raw.rows[index] if raw.rows is not None else index + 1


def _row_word(raw: RawTable) -> str:
    return "line" if raw.fmt == "csv" else "row"


def _check_table(raw: RawTable, schema: Schema, refs: _References) -> _TableResult:
    """Every rule of `schema` on one file."""
    file = raw.file
    batches = [_single(file, i.row, i.column, i.rule, i.message) for i in raw.issues]
    result = _TableResult(schema.name, raw, {}, batches)
    if not raw.readable:
        return result
    batches.extend(_header_batches(raw, schema))
    if raw.bad_field_rows.size:
        width, counts = len(raw.header), raw.bad_field_counts
        batches.append(
            _Batch(
                file,
                "field_count",
                None,
                raw.bad_field_rows,
                np.arange(raw.bad_field_rows.size),
                lambda k: (
                    f"the line has {_plural(int(counts[k]), 'field')}; the header has {width}"
                ),
            )
        )
    if raw.records == 0 and not schema.may_be_empty:
        batches.append(_single(file, None, None, "no_rows", "the file has a header but no rows"))
    today = _today()
    for col in schema.columns:
        if col.name not in raw.columns:
            continue
        checked = _check_column(raw.columns[col.name], col, today)
        result.columns[col.name] = checked
        if checked.column_issue is not None:
            batches.append(_single(file, raw.header_row, col.name, "type", checked.column_issue))
            continue
        batches.extend(_cell_batches(raw, col, checked, personal=col.name in schema.personal))
        if col.references:
            batches.extend(_reference_batches(raw, col, checked, refs))
    for key_columns in schema.unique:
        batches.extend(_duplicate_batches(raw, key_columns, result.columns))
    return result


def _header_batches(raw: RawTable, schema: Schema) -> Iterable[_Batch]:
    row = raw.header_row
    first: dict[str, int] = {}
    for i, name in enumerate(raw.header):
        if name in first:
            yield _single(
                raw.file,
                row,
                name,
                "duplicate_column",
                f"the column name appears again (columns {first[name] + 1} and {i + 1}); "
                "only the first is read",
            )
            continue
        first[name] = i
        if name not in schema.names:
            hint = ""
            near = [c for c in schema.names if c == name.strip().lower()]
            if near:
                hint = f" (did you mean '{near[0]}'? names are lower case without spaces)"
            elif name == "":
                hint = " (an empty header cell: a trailing comma?)"
            yield _single(
                raw.file,
                row,
                name,
                "unexpected_column",
                f"{schema.name} has no column {name!r}{hint}; its columns are: "
                + ", ".join(schema.names),
            )
    for c in schema.columns:
        if c.required and c.name not in first:
            yield _single(
                raw.file, row, c.name, "missing_column", f"the column is missing ({c.description})"
            )


def _cell_batches(raw: RawTable, col: Column, checked: _Checked, *, personal: bool) -> list[_Batch]:
    rules = checked.rules
    if not rules.any():
        return []
    out = []
    for rule in np.unique(rules[rules != _OK]):
        index = np.flatnonzero(rules == rule)
        out.append(
            _Batch(
                raw.file,
                _RULE_NAMES[rule],
                col.name,
                _labels(raw, index),
                index,
                lambda i, r=int(rule): _message(r, col, checked.text(i), personal),
            )
        )
    return out


def _reference_batches(
    raw: RawTable, col: Column, checked: _Checked, refs: _References
) -> list[_Batch]:
    assert col.references is not None
    target = refs.get(col.references)
    if target is None or checked.uniques is None or checked.codes is None:
        return []  # no referenced table to check against (a folder without it is reported apart)
    valid, source = target
    unknown_u = ~_to_numpy(pc.is_in(checked.uniques, value_set=valid)).astype(bool)
    unknown_u &= _to_numpy(pc.not_equal(checked.uniques, "*")).astype(bool)  # "*": the whole border
    bad = checked.ok & ~checked.null & np.append(unknown_u, False)[checked.codes]
    if not bad.any():
        return []
    index = np.flatnonzero(bad)
    checked.rules[index] = _UNKNOWN  # no longer a valid cell: keeps it out of key checks
    ref_table, ref_column = col.references.split(".", 1)
    return [
        _Batch(
            raw.file,
            "unknown",
            col.name,
            _labels(raw, index),
            index,
            lambda i: f"{_clip(checked.text(i))!r} is not a {ref_column} in {source}",
        )
    ]


def _first_occurrences(codes: np.ndarray) -> np.ndarray:
    """For codes numbered in order of first appearance: whether each row is the first of its code."""
    if codes.size == 0:
        return np.zeros(0, bool)
    before = np.maximum.accumulate(codes)
    return np.concatenate(([True], codes[1:] > before[:-1]))


def _duplicate_batches(
    raw: RawTable, key_columns: tuple[str, ...], columns: dict[str, _Checked]
) -> list[_Batch]:
    if any(c not in columns or columns[c].column_issue for c in key_columns):
        return []
    checked = [columns[c] for c in key_columns]
    valid = np.logical_and.reduce([c.ok & ~c.null for c in checked])
    rows = np.flatnonzero(valid)
    if len(checked) == 1 and valid.all() and checked[0].ordered:
        codes = checked[0].codes  # already numbered in order of appearance
    else:
        combined = checked[0].factorised()[rows].astype(np.int64)
        for c in checked[1:]:
            part = c.factorised()[rows]
            combined = combined * (int(part.max(initial=0)) + 1) + part
            combined = pd.factorize(combined)[0].astype(np.int64)
        codes = pd.factorize(combined)[0] if combined.size else combined
    is_first = _first_occurrences(codes)
    if is_first.all():
        return []
    dup = np.flatnonzero(~is_first)
    first_rows = rows[np.flatnonzero(is_first)[codes[dup]]]
    dup_rows = rows[dup]
    first_labels = _labels(raw, first_rows)
    word = _row_word(raw)

    def message(k: int) -> str:
        i = int(dup_rows[k])
        values = ", ".join(repr(_clip(c.text(i))) for c in checked)
        names = ", ".join(key_columns)
        return f"{names} = {values} repeats {word} {int(first_labels[k])}; it must be unique"

    return [
        _Batch(
            raw.file,
            "duplicate",
            ", ".join(key_columns),
            _labels(raw, dup_rows),
            np.arange(dup.size),
            message,
        )
    ]


def _typed_frame(
    raw: RawTable, schema: Schema, columns: dict[str, _Checked], key: bytes
) -> pd.DataFrame:
    """The loaded table: dtypes of `typed_columns(schema)`, person keys replaced by ``person_id``.

    Consumes `columns` and ``raw.columns`` as it goes, so that each raw column is freed once typed.
    """
    from estim.records.pseudonymise import pseudonymise_codes

    dtypes = typed_columns(schema)
    data: dict[str, pd.Series] = {}
    n = raw.n_rows
    for col in schema.columns:
        checked = columns.pop(col.name, None)
        raw.columns.pop(col.name, None)
        if col.name in schema.personal:
            assert checked is not None and checked.codes is not None and checked.uniques is not None
            data[PERSON_ID] = pseudonymise_codes(checked.codes, checked.uniques, key)
            continue
        dtype = dtypes[col.name]
        if checked is None:  # an optional column the file lacks
            data[col.name] = pd.Series(pd.array([None] * n, dtype=_nullable(dtype)))
        elif col.kind in _TEXT_KINDS:
            text = checked.typed
            assert isinstance(text, pa.ChunkedArray)
            series = pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.string())))
            if checked.null.any():
                series[checked.null] = pd.NA
            data[col.name] = series
        else:
            values = checked.typed
            assert isinstance(values, np.ndarray)
            if checked.null.any():
                series = pd.Series(values).astype(_nullable(dtype))
                series[checked.null] = pd.NA if dtype in ("int64", "bool") else np.nan
                data[col.name] = series
            else:
                data[col.name] = pd.Series(values.astype(dtype, copy=False))
    return pd.DataFrame(data, copy=False)


def _nullable(dtype: str) -> str:
    return {"int64": "Int64", "bool": "boolean"}.get(dtype, dtype)


# ---------------------------------------------------------------------------------------------- folders


@dataclass
class DatasetCheck:
    """What `check_dataset` found: the report, and the typed tables when asked for and all was valid."""

    report: ValidationReport
    frames: dict[str, pd.DataFrame]


def _record_files(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Record files by type, and .csv/.parquet files whose name is no record type."""
    found: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in RECORD_SUFFIXES:
            continue
        if p.stem in SCHEMAS:
            found.setdefault(p.stem, []).append(p)
        else:
            unknown.append(p)
    return found, unknown


def check_dataset(
    folder: Path,
    display: str,
    *,
    cap: int = 200,
    key: bytes | None = None,
    progress: bool = False,
) -> DatasetCheck:
    """Validate every record file of `folder`; with `key`, also build the typed tables.

    `display` is how the folder is named in messages (the path as the user gave it).
    """
    collector = _Collector(cap)
    found, unknown = _record_files(folder)
    names = ", ".join(f"{n}.csv" for n in SCHEMAS)
    folder_batches = [
        _single(
            _join(display, p.name),
            None,
            None,
            "unknown_file",
            f"{p.stem!r} is not a record type; record files are named {names} (or .parquet)",
        )
        for p in unknown
    ]
    for name, schema in SCHEMAS.items():
        paths = found.get(name, [])
        if len(paths) > 1:
            folder_batches.append(
                _single(
                    _join(display, paths[0].name),
                    None,
                    None,
                    "ambiguous_table",
                    f"both {' and '.join(p.name for p in paths)} exist; keep one",
                )
            )
        if not paths and not schema.optional:
            users = sorted(
                s.name
                for s in SCHEMAS.values()
                if s.name in found
                and any(c.references and c.references.startswith(f"{name}.") for c in s.columns)
            )
            why = (
                f"; without it the {name} ids in {', '.join(users)} cannot be checked"
                if users
                else ""
            )
            folder_batches.append(
                _single(
                    _join(display, f"{name}.csv"),
                    None,
                    None,
                    "missing_table",
                    f"the dataset has no {name} table ({name}.csv or {name}.parquet){why}",
                )
            )
    collector.add(folder_batches)

    refs = _References(folder, display, look_beside=False)
    files, rows = 0, 0
    frames: dict[str, pd.DataFrame] = {}
    recorded: set[str] = set()
    pairs: dict[str, tuple[dict[tuple[str, int], int], RawTable]] = {}
    wanted_pairs = all(t in found for t, _, _ in _DOUBLE_COUNT)
    todo = [(name, p) for name in SCHEMAS for p in found.get(name, [])]
    for name, path in _progress(todo, progress):
        schema = SCHEMAS[name]
        raw = read_table(
            path, _join(display, path.name), list(schema.names), schema.personal, _coded(schema)
        )
        result = _check_table(raw, schema, refs)
        files += 1
        rows += raw.records
        if name not in recorded:  # with two files of one type, the first one serves
            recorded.add(name)
            refs.record(name, raw, result.columns)
        for table, section, when in _DOUBLE_COUNT:
            if wanted_pairs and table == name and name not in pairs:
                pairs[name] = (_section_months(result, section, when), raw)
                if len(pairs) == len(_DOUBLE_COUNT):  # listed with the file they are found in
                    result.batches.extend(_double_count_batches(pairs))
        collector.add(result.batches)
        if key is not None and collector.total == 0 and name not in frames:
            # Only while everything is valid: otherwise loading fails and the tables are not needed.
            frames[name] = _typed_frame(raw, schema, result.columns, key)
        del result, raw
    report = ValidationReport(collector.listed, collector.total, files, rows)
    return DatasetCheck(report, frames)


def _progress(items: list[tuple[str, Path]], show: bool) -> Iterable[tuple[str, Path]]:
    if not show:
        return items
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, pipes, captured output)
    return tqdm(
        items, desc="checking records", unit="file", file=sys.stderr, leave=False, disable=None
    )


def _section_months(result: _TableResult, section: str, when: str) -> dict[tuple[str, int], int]:
    """Distinct (section, month) of a table's valid rows -> index of the first row with it."""
    s, w = result.columns.get(section), result.columns.get(when)
    if s is None or w is None or s.codes is None or s.uniques is None:
        return {}
    if not isinstance(w.typed, np.ndarray):
        return {}
    ok = s.ok & w.ok & ~s.null & ~w.null
    rows = np.flatnonzero(ok)
    months = w.typed[rows].astype("datetime64[M]").astype(np.int64)
    combined = s.codes[rows].astype(np.int64) * (1 << 32) + (months + (1 << 31))
    codes = pd.factorize(combined)[0]
    firsts = np.flatnonzero(_first_occurrences(codes))
    sections = s.uniques.take(pa.array(s.codes[rows[firsts]])).to_pylist()
    return {
        (sec, int(m)): int(r)
        for sec, m, r in zip(sections, months[firsts], rows[firsts], strict=True)
    }


def _double_count_batches(
    pairs: dict[str, tuple[dict[tuple[str, int], int], RawTable]],
) -> list[_Batch]:
    (records_name, _, _), (totals_name, _, _) = _DOUBLE_COUNT
    records, records_raw = pairs[records_name]
    totals, totals_raw = pairs[totals_name]
    both = sorted((totals[p], p) for p in totals.keys() & records.keys())
    if not both:
        return []
    index = np.array([i for i, _ in both], np.int64)
    word = _row_word(records_raw)

    def message(k: int) -> str:
        section, month = both[k][1]
        first = records_raw.row_label(records[(section, month)])
        label = str(np.datetime64(month, "M"))
        return (
            f"section '{section}' in {label} also has individual records in "
            f"{records_raw.file} (first on {word} {first}); counting both would count those "
            "apprehensions twice: keep that month in one table only"
        )

    return [
        _Batch(
            totals_raw.file,
            "double_count",
            "section_id, month",
            _labels(totals_raw, index),
            np.arange(index.size),
            message,
        )
    ]


# ------------------------------------------------------------------------------------------- public API


def validate_file(
    path: str | os.PathLike[str], record_type: str | None = None, *, cap: int = 200
) -> ValidationReport:
    """Check one record file; its type is its name's stem (``NAME.csv``/``NAME.parquet``) unless given.

    References to other tables are checked against the tables beside it (and, for sections, against the
    shipped ``data/sections.csv`` when there is none); cross-table rules need a folder (`validate_path`).
    """
    p = Path(path)
    if not p.exists():
        raise EstimInputError(f"no such file: {path}")
    if p.is_dir():
        raise EstimInputError(f"{path} is a folder; validate_file checks one record file")
    if record_type is not None and record_type not in SCHEMAS:
        raise EstimInputError(
            f"unknown record type {record_type!r}; record types: {', '.join(SCHEMAS)}"
        )
    name = record_type or p.stem
    shown = str(path)
    collector = _Collector(cap)
    if name not in SCHEMAS or p.suffix.lower() not in RECORD_SUFFIXES:
        problem = (
            f"{p.stem!r} is not a record type; record types: {', '.join(SCHEMAS)}"
            if name not in SCHEMAS
            else f"estim reads .csv and .parquet files, not {p.suffix or 'files without a suffix'}"
        )
        collector.add([_single(shown, None, None, "unknown_file", problem)])
        return ValidationReport(collector.listed, collector.total, 0, 0)
    schema = SCHEMAS[name]
    refs = _References(p.parent, str(Path(shown).parent), look_beside=True)
    raw = read_table(p, shown, list(schema.names), schema.personal, _coded(schema))
    collector.add(_check_table(raw, schema, refs).batches)
    return ValidationReport(collector.listed, collector.total, 1, raw.records)


def validate_path(path: str | os.PathLike[str], *, cap: int = 200) -> ValidationReport:
    """Check a record file, or every record file of a folder (with the folder-level rules)."""
    p = Path(path)
    if not p.exists():
        raise EstimInputError(f"no such file or folder: {path}")
    if p.is_dir():
        return check_dataset(p, str(path), cap=cap).report
    return validate_file(path, cap=cap)
