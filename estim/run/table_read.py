"""A user's data file read into a pandas DataFrame as written: UTF-8 CSV (comma, semicolon or tab separated)
or Parquet, a header line naming the columns, each column typed from its values (a value with a leading zero
kept as text); what spreadsheets put in a table that is not data refused (`estim.run.table_checks`)."""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.run.table_checks import (
    note_grouped_numbers,
    refuse_binary_file,
    refuse_line_above_header,
    refuse_thousands_separators,
)

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
# a value with a leading zero ("007", "0101") is a code or a capture history, not a number: kept as text
_LEADING_ZERO = re.compile(r"^\s*[+-]?0\d")


def field_columns(fields: Mapping[str, Any]) -> set[str]:
    """Every name a spec's `[data]` fields give (a column's or otherwise): what the header may hold."""
    names: set[str] = set()
    for value in fields.values():
        values = value if isinstance(value, (list, tuple)) else [value]
        names.update(
            str(v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)
        )
    return names


def read_table(path: str | Path, declared: Collection[str] = ()) -> pd.DataFrame:
    """A user's data file as a DataFrame: one row per data row, columns named by the header.

    CSV (``.csv``, ``.tsv``, ``.txt``) must be UTF-8 (a byte-order mark is allowed) with a header line naming
    the columns; the separator is a comma, or the semicolon or tab the header uses. Columns whose every value
    is a number become numeric, except those holding values with a leading zero ("0101", "007"), which stay
    text (capture histories, codes). Empty fields and NA, NaN, null… are missing values. Blank lines in the
    body stay as rows of missing values, so row r of the table is line r + 1 of the file, as the families'
    messages count them. Parquet (``.parquet``, ``.pq``) is read with pyarrow.

    `EstimInputError` naming the file for: no such file, an empty file, no data rows, bytes that are not
    UTF-8 (with the line), a Parquet file or a workbook under a CSV name, a title or comment line above the
    header, a first line that looks like data rather than a header (numbers only, unless the
    spec declares them as column names: ``declared``, e.g. occasions named 2019 … 2024), repeated column names,
    a malformed CSV or an unreadable Parquet file, and any other suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise EstimInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        table = _read_parquet(path, declared)
    elif suffix in CSV_SUFFIXES:
        table = _read_csv(path, declared)
    else:
        hint = (
            " (save it from the spreadsheet as 'CSV UTF-8')"
            if suffix in (".xls", ".xlsx", ".ods")
            else ""
        )
        raise EstimInputError(
            f"{path}: estim reads CSV ({', '.join(CSV_SUFFIXES)}) or Parquet "
            f"({', '.join(PARQUET_SUFFIXES)}) files, not {suffix or 'a file without a suffix'}{hint}"
        )
    if len(table) == 0:
        raise EstimInputError(
            f"{path}: no data rows (only a header naming {', '.join(map(str, table.columns))})"
        )
    return table


def _read_parquet(path: Path, declared: Collection[str] = ()) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401 - pandas reads Parquet through it
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency of estim
        raise EstimInputError(
            f"{path}: reading Parquet needs the pyarrow package, which is not installed "
            "(pip install pyarrow), or save the table as CSV"
        ) from e
    try:
        table = pd.read_parquet(path, engine="pyarrow")
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds for a file it cannot read
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EstimInputError(f"{path}: not a readable Parquet file ({message})") from e
    table.columns = [str(c) for c in table.columns]
    _check_header(path, list(table.columns), declared)
    return table.reset_index(drop=True)


def _read_csv(path: Path, declared: Collection[str] = ()) -> pd.DataFrame:
    data = path.read_bytes()
    if not data.strip():
        raise EstimInputError(
            f"{path}: the file is empty; it needs a header line naming the columns"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise EstimInputError(
            f"{path}: the file is UTF-16 encoded; estim reads UTF-8: save it as UTF-8 (e.g. 'CSV UTF-8')"
        )
    refuse_binary_file(path, data)
    while data.startswith(
        b"\xef\xbb\xbf"
    ):  # a UTF-8 byte-order mark (Excel writes one; a re-save, two)
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise EstimInputError(
            f"{path}: line {line}: byte 0x{data[e.start]:02x} is not valid UTF-8; estim reads UTF-8 "
            "text: save the file as UTF-8 (e.g. 'CSV UTF-8'; a Windows-1251 or Latin-1 file must be "
            "converted)"
        ) from e
    first = text.splitlines()[0] if text.splitlines() else ""
    if re.fullmatch(r"\s*sep=.?\s*", first):
        raise EstimInputError(
            f"{path}: line 1 is {first.strip()!r}, Excel's note of the separator, not the header: delete that "
            "line, so that the first line names the columns"
        )
    sep = "\t" if path.suffix.lower() == ".tsv" else _separator(first)
    header = next(csv.reader([first], delimiter=sep), [])
    _check_header(path, header, declared)
    try:
        # index_col=False: a row with one field more than the header must not make its first field an index
        # (every column then shifts one to the left); a trailing separator on each row is dropped, and a
        # row with a real extra value is refused (pandas warns that it would drop it)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                skip_blank_lines=False,
                skipinitialspace=True,
                index_col=False,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as e:
        refuse_line_above_header(path, text, sep)
        message = str(e).strip().splitlines()[0]
        raise EstimInputError(f"{path}: not a well-formed CSV file ({message})") from e
    # blank lines at the end of a file are not rows; blank lines within it are (rows of missing values)
    filled = table.notna().any(axis=1).to_numpy()
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    table = table.iloc[:last]
    table.columns = [h.strip() for h in header] if len(header) == table.shape[1] else table.columns
    unnamed = [i for i, c in enumerate(table.columns) if not str(c).strip()]
    for (
        i
    ) in unnamed:  # a trailing separator (spreadsheets write them) makes an empty, nameless column
        if table.iloc[:, i].notna().any():
            raise EstimInputError(
                f"{path}: column {i + 1} has values but no name in the header line"
            )
    table = table.drop(columns=table.columns[unnamed]) if unnamed else table
    if sep == ";":
        refuse_thousands_separators(table, path)
    note_grouped_numbers(table)  # before 2.000 becomes 2.0: a count so written is refused
    for column in table.columns:
        table[column] = _typed(table[column])
    return table.reset_index(drop=True)


def _separator(header: str) -> str:
    """The header's separator: a comma, unless the header has none and uses semicolons or tabs."""
    if "," in header:
        return ","
    for sep in (";", "\t"):
        if sep in header:
            return sep
    return ","


def _check_header(path: Path, header: list[str], declared: Collection[str] = ()) -> None:
    names = [h.strip() for h in header]
    numbers = [h for h in names if h and _is_number(h)]
    if (
        names
        and any(names)
        and len(numbers) == len([h for h in names if h])
        and not set(numbers) <= set(declared)
    ):
        raise EstimInputError(
            f"{path}: the first line ({', '.join(names[:6])}{', …' if len(names) > 6 else ''}) looks like "
            "data, not a header: the first line must name the columns"
        )
    repeated = sorted({h for h in names if h and names.count(h) > 1})
    if repeated:
        raise EstimInputError(
            f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than once in the header"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _typed(column: pd.Series) -> pd.Series:
    """A text column as numbers when every value is one and none has a leading zero; else as text."""
    values = column.dropna()
    if len(values) == 0:
        return column
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or values.str.match(_LEADING_ZERO).any():
        return column
    return pd.to_numeric(column)
