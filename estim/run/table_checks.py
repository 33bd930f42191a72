"""What spreadsheets put into a user's table that is not data, refused before the family reads it.

Two things pass every check of the columns' values and change the estimate with exit 0:

* a **totals row** at the bottom (``Total,1440`` under one row per person is one more person, seen 1,440
  times; under a patterns table, one more history): refused when a row's first filled cell says "Total" (or
  "Sum", "Итого", …), or when the last row leaves a cell empty that every other row fills and its number
  equals the sum of the rows above it;
* **thousands separators** in a semicolon-separated file (European spreadsheets write 2000 as ``2.000``, which
  reads as 2): refused when a column's numbers are all written with a dot before groups of three digits.
"""

from __future__ import annotations

import re
from pathlib import Path

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
