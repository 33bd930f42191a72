"""Cell checks of one column: kinds, emptiness, spaces, ranges, and the sentence for each broken rule."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.records.parse import (
    _CHOICE,
    _DATE,
    _DATE_RE,
    _EARLIEST,
    _EARLIEST_MONTH,
    _EMPTY,
    _FUTURE,
    _MAXIMUM,
    _MINIMUM,
    _MONTH_RE,
    _NOT_INTEGER,
    _OK,
    _PARSERS,
    _PATTERN,
    _PLACEHOLDER,
    _PLAUSIBLE,
    _SCIENTIFIC,
    _TEXT_KINDS,
    _TYPE,
    _WHITESPACE,
    _to_numpy,
)
from estim.records.schemas import EARLIEST_DATE, Column


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
    if col.kind == "id" and (pa.types.is_floating(t) or pa.types.is_decimal(t)):
        whole = _whole_numbers(arr)
        if whole is None:
            return _column_type_issue(arr, col, _FLOAT_IDS)
        arr, t = whole, whole.type
    if col.kind in _TEXT_KINDS or _is_text(t):
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            try:
                arr = arr.cast(pa.string())
            except pa.ArrowException:
                return _column_type_issue(arr, col)
        return _check_text(arr, col, today)
    return _check_native(arr, col, today)


_FLOAT_IDS = (
    "the column holds floating-point numbers, some with a fraction or too large to be held exactly "
    "(above 2^53, or 2^24 in 32-bit floats): ids are text; store the column as text (pandas makes a column of whole numbers with "
    "a gap floating-point)"
)


def _whole_numbers(arr: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A Parquet id column stored as floating-point numbers (pandas turns whole numbers with a gap into
    floats), as the text of the whole numbers (``123456789012``, as an integer column or a CSV file writes
    it, not Arrow's ``1.23456789012e+11``); None when some value is not a whole number held exactly."""
    # whole numbers a float holds exactly: 2^53 in float64, only 2^24 in float32 (7527527091 is stored as
    # 7527526912: two people's keys become one)
    exact = (
        2.0 ** {16: 11, 32: 24}.get(arr.type.bit_width, 53)
        if pa.types.is_floating(arr.type)
        else 2.0**53
    )
    f = _to_numpy(arr.cast(pa.float64())).astype(np.float64)
    known = ~np.isnan(f)
    if not (np.isfinite(f[known]).all() and (np.abs(f[known]) < exact).all()):
        return None
    if (np.floor(f[known]) != f[known]).any():
        return None
    whole = pa.array(np.where(known, f, 0).astype(np.int64), mask=~known).cast(pa.string())
    return pa.chunked_array([whole])


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


_INVISIBLE = r"[\p{Z}\x{85}\x{180E}\x{200B}-\x{200D}\x{2060}\x{FEFF}]"
"""Unicode spaces (no-break space, thin space, …) and invisible characters (zero-width space and joiners,
word joiner, byte-order mark) that spreadsheets, web pages and databases leave at the ends of cells."""


def _invisible_edges(values: pa.Array) -> np.ndarray:
    """Which strings start or end with a non-ASCII space or an invisible character (`_INVISIBLE`)."""
    if len(values) == 0 or pc.all(pc.string_is_ascii(values)).as_py() is not False:
        return np.zeros(len(values), bool)
    pattern = f"^{_INVISIBLE}|{_INVISIBLE}$"
    return _to_numpy(pc.match_substring_regex(values, pattern).fill_null(False)).astype(bool)


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
        rules[spaced | _invisible_edges(values)] = _WHITESPACE
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
        elif t.tz is not None:
            # A timestamp with a time zone is a date where its own clock shows midnight: 2017-04-03
            # 00:00+06:00 is the 3rd (in UTC the 2nd, 18:00), and 2017-04-03 00:00 UTC written in
            # New York is 2017-04-02 19:00 there, a time of day, not a date.
            typed = _to_numpy(pc.local_timestamp(arr)).astype("datetime64[s]")
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


def _column_type_issue(arr: pa.ChunkedArray, col: Column, issue: str | None = None) -> _Checked:
    n = len(arr)
    return _Checked(
        rules=np.full(n, _TYPE, np.int8),
        typed=None,
        null=np.zeros(n, bool),
        text=lambda i: "",
        column_issue=issue
        or f"the column holds {arr.type} values; it needs {_KIND_WORDS[col.kind]}",
    )


def _message(rule: int, col: Column, text: str, personal: bool) -> str:
    """A sentence for one broken cell rule: the value and what is allowed."""
    v = "the value (not shown: personal data)" if personal else repr(_clip(text))
    unit = f" {col.unit}" if col.unit else ""
    kind = col.kind
    if rule == _EMPTY:
        return "the cell is empty; a value is required"
    if rule == _WHITESPACE:
        if text == text.strip(" \t\n\r\v\f"):
            return (
                f"{v} starts or ends with a non-ASCII space or an invisible character (a no-break "
                "space, a zero-width space, a byte-order mark, as spreadsheets and web pages leave "
                "them): values are compared exactly, so it would not match the same value without it"
            )
        return f"{v} has leading or trailing spaces"
    if rule == _TYPE:
        if kind == "int":
            if re.fullmatch(r"[+-]?[0-9]+", text.strip()):
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
        hint = _date_hint(text, what, form)
        if hint:
            return f"{v} is not a {what} written {form}: {hint}"
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
        meant, hint = _spelled(text), ""
        if meant in col.choices:
            hint = f" (did you mean {meant!r}? values are written as listed)"
        elif _spelled(_latin(text)) in col.choices:
            hint = f" (did you mean {_spelled(_latin(text))!r}? {_CYRILLIC_HINT})"
        return f"{v} is not one of: {', '.join(col.choices)}{hint}"
    if rule == _PATTERN:
        return f"{v} does not match the pattern {col.pattern} ({col.description})"
    if rule == _PLACEHOLDER:  # one of a fixed list of words: no personal data to hide
        return (
            f"{text!r} stands for a missing value, but an id is required: rows sharing it would count "
            "as one (people without a person key as one person seen many times): fill in the id"
        )
    if rule == _SCIENTIFIC:
        return (
            f"{v} is a number in scientific notation, as a spreadsheet writes a long number (a "
            "person key, an id) in a column formatted as a number: its last digits are lost, so "
            "different ids become one (different people, one person); format the column as text "
            "and export again"
        )
    raise AssertionError(rule)


LOOKALIKES = dict(zip("АВЕКМНОРСТУХІЈЅҺаеорсухіјѕһк", "ABEKMHOPCTYXIJSHaeopcyxijshk", strict=True))
"""Cyrillic letters (Russian, Kazakh, Ukrainian) that look like Latin ones: a keyboard switched to the
Russian or Kazakh layout types them in a Latin id (``РК123`` for ``PK123``), and the two look the same."""

_TO_LATIN = str.maketrans(LOOKALIKES)

_CYRILLIC_HINT = (
    "it holds Cyrillic letters that look like Latin ones, as a keyboard switched to the Russian or "
    "Kazakh layout types them"
)


def _latin(text: str) -> str:
    """`text` with the Cyrillic letters of `LOOKALIKES` written as the Latin ones they look like."""
    return text.translate(_TO_LATIN)


def _spelled(text: str) -> str:
    """`text` as the lower-case, underscored names of choices and columns (``Labour migrant``,
    ``labour-migrant`` and ``Labour Migrant`` with a no-break space are all ``labour_migrant``)."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[\s\-.]+", "_", folded)


def _date_hint(text: str, what: str, form: str) -> str:
    """Why a cell is not a date, for the formats spreadsheets and databases write instead."""
    if re.fullmatch(r"[0-9]{5}", text) and what == "date":
        day = dt.date(1899, 12, 30) + dt.timedelta(days=int(text))
        return (
            f"it looks like a spreadsheet's day number ({day.isoformat()} in Excel's count): "
            f"format the column as a date {form} and export again"
        )
    if re.fullmatch(r"[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}", text):
        return (
            "in this order day, month and year cannot be told apart (03/04/2017: 3 April or "
            "4 March? 17-04-03: which is the year?)"
        )
    padded = re.fullmatch(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?", text)
    if not padded and re.fullmatch(r"[0-9]{4}-[0-9]{1,2}(-[0-9]{1,2})?", text):
        return "months and days are written with two digits"
    return ""


def _looks_like(text: str, kind: str) -> bool:
    return re.fullmatch(_DATE_RE[1:-1] if kind == "date" else _MONTH_RE[1:-1], text) is not None


def _number(x: float | None) -> str:
    assert x is not None
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
