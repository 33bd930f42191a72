"""What spreadsheets put into a user's table that is not data, refused before the family reads it.

Three things pass every check of the columns' values and change the estimate with exit 0:

* a **totals row** at the bottom (``Total,1440`` under one row per person is one more person, seen 1,440
  times; under a patterns table, one more history): refused when a row's first filled cell says "Total" (or
  "Sum", "Итого", …), or when the last row leaves a cell empty that every other row fills and its number
  equals the sum of the rows above it;
* **thousands separators** in a semicolon-separated file (European spreadsheets write 2000 as ``2.000``, which
  reads as 2): refused when a column's numbers are all written with a dot before groups of three digits;
* **a count written like** ``2.000`` in a file of any separator (2,000 or 2 people?): in a column that must hold
  whole numbers (the ``count``, ``times_seen`` and ``trials_column`` fields) a value with a dot before each
  group of three digits (``2.000``, ``12.500``, ``1.234.567``) is refused naming both readings, as is one
  grouped by commas, spaces or apostrophes (``2,000``, ``2 000``). The reader turns ``2.000`` into 2.0 before
  any family sees it, so `note_grouped_numbers` keeps, for each column, the rows so written (in the table's
  ``attrs``) and `refuse_ambiguous_counts` reads them with the spec's fields. ``2.0`` and ``3.00`` (a
  spreadsheet's decimals; no thousands separator groups fewer than three digits) read as 2 and 3; ``2.5``
  is refused by the family as not a whole number.

And what the reader would report in its own words: a title or comment line above the header
(`refuse_line_above_header`), a Parquet file or a workbook saved under a CSV name (`refuse_binary_file`), and a
DataFrame from Python with two columns of one name (`refuse_repeated_names`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError

# The words a spreadsheet's totals row starts with (English, German, French, Italian, Spanish, Russian, Kazakh).
TOTAL_WORDS = frozenset(
    {
        "total",
        "totals",
        "grand total",
        "subtotal",
        "sub-total",
        "sum",
        "summe",
        "gesamt",
        "insgesamt",
        "somme",
        "totale",
        "suma",
        "итого",
        "всего",
        "барлығы",
    }
)
# 2.000, 12.500, 1.234.567: a dot before each group of three digits, none before a fraction
_THOUSANDS = re.compile(r"^\s*[+-]?[1-9]\d{0,2}(\.\d{3})+\s*$")
# 2,000, 2 000 (a space, no-break space, narrow or thin space), 2'000: other thousands separators, kept as text
_GROUPED = re.compile(r"^\s*[+-]?[1-9]\d{0,2}([,\u00a0\u202f\u2009 '\u2019]\d{3})+\s*$")
# the fields naming a column of whole numbers (people per row, times seen, occasions per row)
WHOLE_FIELDS = ("count", "times_seen", "trials_column")
# the key in a table's attrs under which `note_grouped_numbers` keeps {column: {row: text}}
GROUPED_ATTR = "estim_grouped_numbers"


def refuse_totals_row(table: pd.DataFrame, where: object) -> None:
    """`EstimInputError` naming the row (rows numbered as the families count them, from 1) when the table
    holds a spreadsheet's totals row: a row whose first filled cell is a total's label (`TOTAL_WORDS`), or a
    last row with an empty cell that every other row fills and a number equal to the sum of the rows above."""
    if len(table) == 0:
        return
    first = pd.Series(np.nan, index=table.index, dtype=object)
    for column in table.columns:  # each row's first filled cell, left to right
        first = first.where(first.notna(), table[column])
    text = first.dropna().astype(str)
    label = text.str.strip().str.rstrip(":.").str.strip().str.lower().isin(TOTAL_WORDS)
    if label.any():
        row = int(np.flatnonzero(table.index == label.index[label.to_numpy()][0])[0])
        _refuse(where, row, f"its first cell reads {text[label].iloc[0].strip()!r}")
    filled = table.notna().any(axis=1).to_numpy()
    if filled.sum() < 4:
        return
    last = int(np.flatnonzero(filled)[-1])
    above, row = table.iloc[:last][filled[:last]], table.iloc[last]
    gaps = [c for c in table.columns if pd.isna(row[c]) and above[c].notna().all()]
    if not gaps:
        return
    for column in table.columns:
        values = above[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        total = values.sum()
        if not pd.isna(row[column]) and total > 0 and (values != 0).sum() >= 2:
            if np.isclose(float(row[column]), float(total), rtol=0, atol=1e-9):
                _refuse(
                    where,
                    last,
                    f"its {column!r} ({row[column]:g}) is the sum of the rows above and its "
                    f"{gaps[0]!r} is empty",
                )


def _refuse(where: object, row: int, why: str) -> None:
    raise EstimInputError(
        f"{where}: row {row + 1} looks like a totals row ({why}); every row must be data (one person, "
        "history or count each): delete the totals row and save the file again"
    )


def refuse_thousands_separators(table: pd.DataFrame, path: Path) -> None:
    """In a semicolon-separated file (as European spreadsheets save CSV) a number such as ``2.000`` is
    ambiguous: 2000 with a thousands separator, or 2.0. A column whose every value is a number and whose
    numbers with a dot all have it before groups of three digits is refused, naming the first such value;
    a column with one decimal such as ``1.5`` says its dots are decimal points, and passes."""
    for column in table.columns:
        values = table[column].dropna().astype(str)
        dotted = values[values.str.contains(".", regex=False)]
        if len(dotted) == 0 or pd.to_numeric(values.str.strip(), errors="coerce").isna().any():
            continue
        if dotted.str.match(_THOUSANDS).all():
            row = int(dotted.index[0])
            value = dotted.iloc[0].strip()
            raise EstimInputError(
                f"{path}: column {column!r}, row {row + 1}: {value!r} in a semicolon-separated file may be "
                f"{value.replace('.', '')} written with a thousands separator (as European spreadsheets "
                f"write it) or {float(value):g}; save the numbers without thousands separators and with a "
                "decimal point (in the spreadsheet: format the cells as numbers without a 1000 separator)"
            )


def note_grouped_numbers(table: pd.DataFrame) -> None:
    """Keep in ``table.attrs[GROUPED_ATTR]``, for each column of a CSV read as text, the rows (from 0) and
    text of the values written like a number with a dot before groups of three digits (``2.000``), which
    become numbers (2.0) when the columns are typed: `refuse_ambiguous_counts` refuses them in a count."""
    grouped: dict[str, dict[int, str]] = {}
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        text = values.astype(object).where(values.notna(), "").astype(str)
        hits = np.flatnonzero(text.str.match(_THOUSANDS).to_numpy(dtype=bool))
        if len(hits):
            grouped[str(column)] = {int(i): text.iloc[i].strip() for i in hits}
    table.attrs[GROUPED_ATTR] = grouped


def refuse_ambiguous_counts(table: pd.DataFrame, fields: Mapping[str, Any], where: object) -> None:
    """`EstimInputError` naming the file, column, row, value and its readings when a column that must hold
    whole numbers (`WHOLE_FIELDS`) holds a value written with thousands separators: ``2.000`` (noted by
    `note_grouped_numbers` before it became 2.0, or text in a table from Python), ``2,000``, ``2 000``."""
    noted = table.attrs.get(GROUPED_ATTR, {})
    for field in WHOLE_FIELDS:
        column = fields.get(field)
        if not isinstance(column, str) or column not in table.columns:
            continue
        found = dict(noted.get(column, {}))
        values = table[column]
        if not pd.api.types.is_numeric_dtype(
            values
        ):  # text: a table from Python, or a column kept as text
            for row in np.flatnonzero([isinstance(v, str) for v in values]):
                text = str(values.iloc[row])
                if _THOUSANDS.match(text) or _GROUPED.match(text):
                    found.setdefault(int(row), text.strip())
        if found:
            row = min(found)
            raise EstimInputError(
                f"{where}: column {column!r}, row {row + 1}: {found[row]!r} {_readings(found[row])}; "
                f"[data] {field} names a column of whole numbers, written with digits only, and estim does "
                "not guess which was meant: save the column without thousands separators (in the "
                "spreadsheet: format the cells as numbers with 0 decimal places and no 1000 separator)"
            )


def _readings(text: str) -> str:
    """The readings of a whole number written with separators: with thousands separators, and with the one
    separator as a decimal point or comma (2.000 may be 2000 or 2; 12.500 may be 12500 or 12.5)."""
    body = text.strip()
    digits = re.sub(r"\D", "", body)
    thousands = f"{'-' if body.startswith('-') else ''}{int(digits)}"
    separators = {c for c in body.lstrip("+-") if not c.isdigit()}
    point = {".": "a decimal point", ",": "a decimal comma"}.get(next(iter(separators)))
    if len(separators) != 1 or point is None:  # 2 000, 2'000: thousands separators only
        return (
            f"may be {thousands} written with thousands separators (spaces or apostrophes between groups "
            "of three digits), or a mistake"
        )
    if len(body) - len(body.replace(next(iter(separators)), "")) > 1:  # 1.234.567
        return (
            f"may be {thousands} written with thousands separators, or a mistake (with {point} it is no "
            "number)"
        )
    decimal = float(body.replace(",", "."))
    whole = "" if decimal == round(decimal) else ", not a whole number"
    european = " (as European spreadsheets write it)" if point == "a decimal point" else ""
    return f"may be {thousands} written with thousands separators{european} or {decimal:g} with {point}{whole}"


# The first bytes of files that are not text: what each is, and what to do
_MAGIC = (
    (
        b"PAR1",
        "a Parquet file",
        "name it with the suffix .parquet (estim reads Parquet), or save it as CSV",
    ),
    (
        b"PK\x03\x04",
        "a ZIP archive (an Excel .xlsx or OpenDocument .ods workbook is one)",
        "save the sheet from the spreadsheet as 'CSV UTF-8'",
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an old Excel .xls workbook",
        "save the sheet from the spreadsheet as 'CSV UTF-8'",
    ),
)


def refuse_binary_file(path: Path, data: bytes) -> None:
    """A file named as CSV whose bytes are another format (Parquet, a workbook): said so, not reported as text
    in a wrong encoding."""
    for magic, what, advice in _MAGIC:
        if data.startswith(magic):
            raise EstimInputError(
                f"{path}: the file is {what}, not CSV text (its bytes start as one does): {advice}"
            )


def refuse_line_above_header(path: Path, text: str, sep: str) -> None:
    """A CSV the reader cannot split into the header's columns, whose first line has fewer fields than the next
    filled line: a title or comment above the header (``Netherlands data 1995`` or ``# my data``), named with
    its line and what to do, rather than the reader's words. Nothing when the first line is not shorter, or
    the second is not as long as most lines below it (then a row is too long, which the reader names)."""
    lines = [(i, line) for i, line in enumerate(text.splitlines()[:50], start=1) if line.strip()]
    if len(lines) < 2:
        return
    fields = [len(next(csv.reader([line], delimiter=sep), [])) for _, line in lines]
    # the second line as long as most lines below it (the header of the data), the first shorter
    if fields[0] >= fields[1] or fields[1] != max(set(fields[1:]), key=fields[1:].count):
        return
    number, first = lines[0]
    what = "a comment" if first.lstrip().startswith(("#", "//", "%")) else "a title or a comment"
    raise EstimInputError(
        f"{path}: line {number} ({first.strip()[:60]!r}) has {fields[0]} field(s) and line {lines[1][0]} has "
        f"{fields[1]}: line {number} looks like {what} above the header; the first line of the file must be "
        "the header naming the columns: delete the lines above it"
    )


def refuse_repeated_names(table: pd.DataFrame, where: object) -> None:
    """A table (a DataFrame from Python) with two columns of one name: which of them a field names is
    ambiguous, so both are refused by name (a file's header is checked as it is read)."""
    names = [str(c) for c in table.columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise EstimInputError(
            f"{where}: column name(s) {', '.join(map(repr, repeated))} appear more than once; give each "
            "column a name of its own (rename or drop the repeated ones)"
        )
