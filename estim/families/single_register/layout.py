"""A single register's table layouts (one row per person, or a frequency table: one row per times seen and
covariate pattern), how its values are shown in errors, and a frequency table declared one row per person
(the people per row in an undeclared column): refused, with the layout to declare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.families.closed import table_checks, table_people
from estim.families.closed.table_checks import ROWS_PER_GROUP_MIN, looks_like_count

LAYOUTS = ("individuals", "frequencies")
# A frequency table has one row per (times seen, covariate pattern); people share them in an individuals table
# (times seen takes a handful of values). Fewer rows than this per distinct (times seen × categorical columns),
# beside a column that looks like counts, reads as the former: the closed families' rule for patterns tables
# (`refuse_frequency_table_read_as_people` has a second one).
ROWS_PER_CELL_MIN = ROWS_PER_GROUP_MIN


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _shown(value: Any) -> str:
    # a value as the table gave it: text quoted, a huge float in full (1e+20 as 100000000000000000000)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and value == np.round(value):
        return str(int(value))
    return _label(value)


def _label(value: Any) -> str:
    # shortest round-trip text: distinct values give distinct labels
    if isinstance(value, (float, np.floating)):
        return str(float(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return str(value)


def refuse_frequency_table_read_as_people(
    table: pd.DataFrame,
    times_seen: str,
    *,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    declared: Sequence[str] = (),
) -> None:
    """A frequency table declared one row per person, beside an undeclared column that looks like counts (whole
    numbers ≥ 0, some above 1, not an index 1, 2, 3, …). Read as people it would make a population of a handful
    (``times,people`` / ``1,1645`` / ``2,183`` gave N̂ = 2.5; with a covariate sex, N̂ = 7.5 for 2,000 people).

    A frequency table has one row per cell (times seen × the values of its other columns), so it is refused
    when either

    * no two rows with people on them (a non-zero count) share a cell, the cell made of the times seen, the
      covariates (and ``declared``) and the undeclared text columns, each with repeated values (at most one
      distinct value per two rows: a region or an age in years, not an id or a distance per person). People
      share their times seen (a handful of values), so an individuals table repeats cells even with an age
      among them; undeclared numeric columns are left out (a year, a number of children and a number of
      nights made each of 150 people a cell of their own); or
    * there are fewer than `ROWS_PER_CELL_MIN` rows on average per cell of the times seen and the categorical
      columns only (declared categorical, or undeclared text with repeated values): the closed families'
      rule for a patterns table (`estim.families.closed.table_checks`), which catches a frequency table with
      a cell on two rows. Continuous covariates are left out of this one: with an age in years, an
      individuals table of a few hundred people has under two rows per cell; or
    * one undeclared numeric column with repeated values (a region coded 1, 2, 3) makes those cells distinct
      (`table_checks.refuse_stratified_counts`): one frequency table per region, 18 rows read as 18 people;
      or several together, or one beside a continuous covariate (a region and an age in years: 42 rows read
      as 42 people, N̂ = 45 for 2,028), when people would share them on enough pairs of rows by chance.

    ``declared``: other columns the spec names (the binomial's number of occasions), never taken for the
    count but part of the cells."""
    named = {times_seen, *covariates, *declared}
    table_people.refuse_register_rows_not_people(table, times_seen, named)
    n = len(table)
    k = table[times_seen].to_numpy()
    candidates = [c for c in table.columns if c not in named and looks_like_count(table[c])]
    if not candidates:
        return
    # the columns the spec names and the undeclared text columns, each with repeated values (a sex, a region,
    # an age in years; not an id or a distance per person, which would make every row a cell of its own): an
    # undeclared number (a year, a number of children) may be anything, and several of them make the cells
    # of a few hundred people unique
    strata = [
        c
        for c in table.columns
        if c != times_seen
        and (c in named or not _numeric(table[c]))
        and (c in categorical or table[c].nunique(dropna=False) <= n / 2)
    ]
    # the categorical ones: declared so, or undeclared text
    categories = [c for c in strata if c in categorical or c not in named]
    cells = _cells(table, k, strata)
    coarse = len(np.unique(_cells(table, k, categories)))
    for column in candidates:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        people = values > 0
        distinct = not pd.Series(cells[people]).duplicated().any()
        if not distinct and n >= ROWS_PER_CELL_MIN * coarse:
            continue
        row = int(np.flatnonzero(values > 1)[0])
        if distinct:
            what = ", ".join(map(repr, [times_seen, *strata]))
            evidence = f"no two of its {int(people.sum()):,} rows with people share ({what})"
        else:
            what = ", ".join(map(repr, [times_seen, *categories]))
            evidence = (
                f"its {n:,} rows fall in {coarse:,} distinct ({what}) combinations, under "
                f"{ROWS_PER_CELL_MIN} rows each on average"
            )
        raise EstimInputError(
            f"column {column!r}, row {row + 1}: {_shown(table[column].iloc[row])}: {evidence}, which one row "
            f"per person would repeat, and column {column!r} holds whole numbers up to {int(values.max()):,}: "
            f"this looks like a frequency table with the people per row in {column!r}; declare layout = "
            f'"frequencies", count = "{column}" (if it is something else, leave it out of the file)'
        )
    numbers = [c for c in table.columns if c not in named and _numeric(table[c])]
    cell = " and ".join(["times seen", *map(repr, categories)])
    measured = [c for c in [*covariates, *declared] if c not in categorical]
    table_checks.refuse_stratified_counts(
        table, _cells(table, k, categories), candidates, numbers, LAYOUTS[1], cell, measured
    )


def _cells(table: pd.DataFrame, k: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """Each row's cell: a code per distinct (times seen, columns) combination (missing values a value too)."""
    keys = pd.DataFrame({"k": k}, index=range(len(table)))
    for i, c in enumerate(columns):
        keys[f"x{i}"] = table[c].to_numpy()
    return keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
