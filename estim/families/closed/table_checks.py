"""The row-by-row checks of a capture-history (or list) table against its declared layout: counts that are
non-negative integers, 0/1 history columns, and the two ways a table contradicts its layout (a patterns table
declared as individuals, a patterns table with a history on two rows). Each error names the column and the
1-based data row (the CSV line minus the header), never a silent misreading."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError

# Above 2^53 a float no longer holds every integer, and above 2^63 − 1 an int64 wraps to a negative count.
MAX_COUNT = 2**53
# A patterns table has one row per history and stratum; people share histories in an individuals table. Fewer
# rows than this per distinct (history × category column) group, beside a count-like column, reads as the former.
ROWS_PER_GROUP_MIN = 2


def show_value(value: Any) -> str:
    # numpy scalars as plain numbers
    return repr(value.item() if isinstance(value, np.generic) else value)


def where(column: str, row: int) -> str:
    # the 1-based data row: the CSV line minus the header
    return f"column {column!r}, row {row + 1}"


def counts_column(table: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A column of non-negative integers (people per row), naming the first bad value's row."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EstimInputError(
            f"{where(column, row)}: {show_value(raw.iloc[row])} is not a non-negative integer (the {what})"
        )
    huge = values > MAX_COUNT
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise EstimInputError(
            f"{where(column, row)}: {show_value(raw.iloc[row])} is too large for a count of people (the "
            f"{what}; at most 2^53 = {MAX_COUNT:,})"
        )
    return values.astype(np.int64)


def people_per_row(table: pd.DataFrame, count: str | None) -> np.ndarray:
    """People per row: the count column, or one each."""
    if count is None:
        return np.ones(len(table), dtype=np.int64)
    return counts_column(table, count, "number of people on the row")


def looks_like_count(raw: pd.Series) -> bool:
    """Non-negative integers with some > 1 and not an index 1, 2, 3, …: what a count column looks like."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    if len(values) == 0 or not np.isfinite(values).all():
        return False
    if (values < 0).any() or (values != np.round(values)).any() or values.max() <= 1:
        return False
    ordered = np.sort(values)
    return not (len(values) > 1 and np.all(np.diff(ordered) == 1))


def count_hint(column: str) -> str:
    return (
        f"it holds integers > 1 and looks like a count column (people per capture pattern): declare "
        f'layout = "patterns", count = "{column}"'
    )


def binary_columns(table: pd.DataFrame, occasions: Sequence[str], hint: bool = False) -> np.ndarray:
    """The 0/1 occasion (or list) columns as an int8 matrix, naming the column and row of the first other
    value; with ``hint`` (the columns were not declared, so a count column may have been taken for one) a
    column that looks like counts is named as such."""
    out = np.zeros((len(table), len(occasions)), dtype=np.int8)
    for j, c in enumerate(occasions):
        raw = table[c]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            message = (
                f"{where(c, row)}: {show_value(raw.iloc[row])} is not 0 or 1 (a capture occasion's or "
                "list's column holds 1 for seen, 0 for not seen)"
            )
            if hint and looks_like_count(raw):
                message += f"; {count_hint(c)}"
            raise EstimInputError(message)
        out[:, j] = values.astype(np.int8)
    return out


def refuse_hidden_counts(table: pd.DataFrame, codes: np.ndarray, declared: set[Any]) -> None:
    """An individuals table that reads as a patterns table whose count column was not declared: beside a
    column of integers > 1, fewer than `ROWS_PER_GROUP_MIN` rows on average per distinct history (within the
    strata of the other columns with repeated values, e.g. a region). People share histories, so an
    individuals table has many rows per history; a patterns table has one per history and stratum (estim
    once gave N̂ = 16 for 4,400 Kosovo deaths this way, and N̂ = 17 for 14,342 with one pattern on two rows).
    ``codes``: each row's history code."""
    undeclared = [c for c in table.columns if c not in declared]
    counts = [c for c in undeclared if looks_like_count(table[c])]
    if not counts:
        return
    # stratum-like columns: values repeated across rows (an id or a measurement is not a stratum)
    strata = [
        c
        for c in undeclared
        if c not in counts and table[c].nunique(dropna=False) <= len(table) / 2
    ]
    keys = pd.DataFrame({"_h": codes})
    for c in strata:
        keys[str(c)] = table[c].to_numpy()
    groups = int(keys.drop_duplicates().shape[0])
    if len(table) >= ROWS_PER_GROUP_MIN * groups:
        return
    column = counts[0]
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    row = int(np.flatnonzero(values > 1)[0])
    what = (
        f"(0/1 history, {', '.join(map(repr, strata))}) combinations" if strata else "0/1 histories"
    )
    raise EstimInputError(
        f"{where(str(column), row)}: {show_value(table[column].iloc[row])}, beside {len(table)} rows for "
        f"{groups} distinct {what} (one row per person would repeat them): "
        f"{count_hint(str(column))} (if it is something else, leave it out of the file)"
    )


def refuse_repeats(table: pd.DataFrame, codes: np.ndarray, covariates: Sequence[str]) -> None:
    """A patterns table has one row per distinct history (per covariate pattern): name a repeated one."""
    keys = pd.DataFrame({"_h": codes})
    for c in covariates:
        keys[c] = table[c].to_numpy()
    group = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
    repeat = pd.Series(group).duplicated().to_numpy()
    if repeat.any():
        row = int(np.flatnonzero(repeat)[0])
        other = int(np.flatnonzero(group == group[row])[0])
        what = "history and covariates" if len(covariates) else "history"
        raise EstimInputError(
            f"rows {other + 1} and {row + 1} have the same {what}: a patterns table has one row per "
            "distinct one (sum their counts first)"
        )
