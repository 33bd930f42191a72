"""Rule codes of the cell checks, and the parsers that read text cells (each distinct value once) into types."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from estim.records.schemas import EARLIEST_DATE, Column

_OK, _EMPTY, _WHITESPACE, _TYPE, _NOT_INTEGER, _DATE, _FUTURE, _MINIMUM, _MAXIMUM, _PLAUSIBLE = (
    range(10)
)
_CHOICE, _PATTERN, _UNKNOWN, _PLACEHOLDER, _SCIENTIFIC = 10, 11, 12, 13, 14
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
    "placeholder",
    "scientific",
)
_TEXT_KINDS = ("id", "text", "choice", "code")
_INT_RE = r"^[+-]?[0-9]{1,18}$"  # 18 digits always fit int64; longer ones are checked one by one
_DIGITS_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SCIENTIFIC_RE = r"^[+-]?[0-9]+([.,][0-9]+)?[eE][+-][0-9]{1,3}$"
"""A number as a spreadsheet writes a long one in a narrow column (``1.23457E+11``): its digits are lost."""
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MONTH_RE = r"^[0-9]{4}-[0-9]{2}$"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_EARLIEST = np.datetime64(EARLIEST_DATE, "s")
_EARLIEST_MONTH = np.datetime64(EARLIEST_DATE[:7], "M").astype("datetime64[s]")


def _to_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _match(values: pa.Array, pattern: str) -> np.ndarray:
    return _to_numpy(pc.match_substring_regex(values, pattern)).astype(bool)


PLACEHOLDERS = (
    "na",
    "n/a",
    "#n/a",
    "null",
    "none",
    "nan",
    "nil",
    "-",
    "--",
    "?",
    "unknown",
    "missing",
)
"""Words that spreadsheets, R and pandas write for a missing value (compared in lower case). In an id column
they are refused: every row holding one would share the id, e.g. all people without a person key would be
counted as one person apprehended many times."""


def _parse_id(values: pa.Array, col: Column) -> tuple[np.ndarray, None]:
    """Ids: a word for a missing value is rule ``placeholder``; a number in scientific notation (a
    spreadsheet's rounding of a long numeric id: ``100000000001`` and ``100000000002`` both ``1.00000E+11``)
    is rule ``scientific``, since the ids it stands for can no longer be told apart."""
    if col.kind != "id" or len(values) == 0:
        return np.zeros(len(values), np.int8), None
    missing = _to_numpy(pc.is_in(pc.utf8_lower(values), value_set=pa.array(PLACEHOLDERS)))
    rules = np.where(missing.astype(bool), _PLACEHOLDER, _OK).astype(np.int8)
    rules[(rules == _OK) & _match(values, _SCIENTIFIC_RE)] = _SCIENTIFIC
    return rules, None


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
