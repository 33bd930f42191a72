"""The row-by-row checks of a capture-history (or list) table against its declared layout: counts that are
non-negative integers, 0/1 history columns, and the two ways a table contradicts its layout (a patterns table
declared as individuals, a patterns table with a history on two rows). Each error names the column and the
1-based data row (the CSV line minus the header), never a silent misreading. The single-register tables use
the same rules, and the checks for a table of counts split by a column it does not declare (`hidden_stratum`:
a region coded 1, 2, 3, each times seen once per region), or by several together (`hidden_strata`: a region and
an age group). An occasion column nobody was caught on is refused too (`refuse_empty_occasions`); an individuals
table whose rows are not people is `estim.families.closed.table_people`'s."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.families.base import DataFieldError

# Above 2^53 a float no longer holds every integer, and above 2^63 − 1 an int64 wraps to a negative count.
MAX_COUNT = 2**53
# A patterns table has one row per history and stratum; people share histories in an individuals table. Fewer
# rows than this per distinct (history × category column) group, beside a count-like column, reads as the former.
ROWS_PER_GROUP_MIN = 2
# a whole capture history in one cell ("010101"), and what to do with it
_HISTORY = re.compile(r"^\s*[01]{2,}\s*$")
HISTORY_HINT = (
    "a whole capture history in one cell: give one 0/1 column per occasion or list (split the history into "
    "columns, one character each, in time order) and name them in occasions (lists)"
)


def show_value(value: Any) -> str:
    # numpy scalars as plain numbers
    return repr(value.item() if isinstance(value, np.generic) else value)


def where(column: str, row: int) -> str:
    # the 1-based data row: the CSV line minus the header
    return f"column {column!r}, row {row + 1}"


def counts_column(table: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A column of non-negative integers (people per row), naming the first bad value's row."""
    raw = table[column]
    yes_no = raw.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if yes_no.any():  # True would be read as 1 person: a yes/no column is not a count
        row = int(np.flatnonzero(yes_no)[0])
        raise EstimInputError(
            f"{where(column, row)}: {show_value(raw.iloc[row])} is true/false, not a number of people (the "
            f"{what}; a count must be stored as whole numbers)"
        )
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = raw.iloc[row]
        shown = (
            "the cell is empty"
            if pd.isna(value)
            else f"{show_value(value)} is not a non-negative integer"
        )
        raise EstimInputError(f"{where(column, row)}: {shown} (the {what})")
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


def binary_columns(table: pd.DataFrame, occasions: Sequence[str]) -> np.ndarray:
    """The 0/1 occasion (or list) columns as an int8 matrix, naming the column and row of the first other
    value."""
    out = np.zeros((len(table), len(occasions)), dtype=np.int8)
    for j, c in enumerate(occasions):
        raw = table[c]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = raw.iloc[row]
            what = "the cell is empty" if pd.isna(value) else f"{show_value(value)} is not 0 or 1"
            if isinstance(value, str) and _HISTORY.match(value):
                what += f" ({HISTORY_HINT})"
            raise EstimInputError(
                f"{where(c, row)}: {what} (a capture occasion's or list's column holds 1 for seen, 0 for "
                "not seen, in every row)"
            )
        out[:, j] = values.astype(np.int8)
    return out


def is_binary(raw: pd.Series) -> bool:
    """Every value 0 or 1 (no missing value): a column that could be an occasion or a list."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    return bool(np.isin(values, (0.0, 1.0)).all())


def undeclared_occasions(
    table: pd.DataFrame, layout: str, declared: set[Any], lists: bool = False
) -> DataFieldError:
    """The refusal of an individuals or patterns table whose occasion (or, with ``lists``, list) columns are
    not declared. Every other column is not taken for one: a 0/1 column that is not an occasion (sex,
    urban) would be read as one more and move N̂ with no error. Names the undeclared 0/1 columns in file
    order, for the spec to keep the occasions among them, the others, and a column that looks like a count
    (individuals)."""
    field, what, a = ("lists", "list", "a") if lists else ("occasions", "occasion", "an")
    undeclared = [c for c in table.columns if c not in declared]
    binary = [str(c) for c in undeclared if is_binary(table[c])]
    others = [str(c) for c in undeclared if not is_binary(table[c])]
    counts = [c for c in others if layout == "individuals" and looks_like_count(table[c])]
    order = "" if lists else ", in time order"
    seen = (
        f"The table's undeclared 0/1 columns, in file order: {', '.join(binary)}"
        if binary
        else "The table has no undeclared 0/1 column"
    )
    if others:
        seen += f" (not 0/1, so not {what}s: {', '.join(others)})"
    keep = (
        ""
        if lists
        else ", and covariates = [...] for any individual covariates among the rest (M0, Mt, Mb)"
    )
    message = (
        f'missing: layout "{layout}" reads each history from the declared 0/1 {what} columns{order}, '
        f"and does not take every other column for one (a 0/1 column that is not {a} {what}, such as sex "
        f"or urban, would be read as one more {what} and change N̂). {seen}. Declare {field} = "
        f"{json.dumps(binary, ensure_ascii=False) if binary else '[...]'}, keeping only the {what} "
        f"columns{order}{keep}; an undeclared column is left out of the model"
    )
    if counts:
        message += f"; column {counts[0]!r}: {count_hint(counts[0])}"
    return DataFieldError(field, message)


def refuse_hidden_counts(
    table: pd.DataFrame, codes: np.ndarray, declared: set[Any], covariates: Sequence[Any] = ()
) -> None:
    """An individuals table that reads as a patterns table whose count column was not declared: beside a
    column of integers > 1, fewer than `ROWS_PER_GROUP_MIN` rows on average per distinct history (within the
    strata of the other columns with repeated values, e.g. a region). People share histories, so an
    individuals table has many rows per history; a patterns table has one per history and stratum (estim
    once gave N̂ = 16 for 4,400 Kosovo deaths this way, and N̂ = 17 for 14,342 with one pattern on two rows).
    ``codes``: each row's history code.

    The strata may also be a region coded 1, 2 (which looks like a count itself) or a declared covariate
    (``covariates``: a patterns table has one row per history and covariate pattern), each of whose values
    crosses the histories (`_crossed_strata`): then no (history, strata) cell may repeat either, as people
    would repeat them, for the largest count-like column to be named (a region coded 1, 2 and the people per
    row in n once gave N̂ = 16 for 551 people)."""
    undeclared = [c for c in table.columns if c not in declared]
    counts = [c for c in undeclared if looks_like_count(table[c])]
    if not counts:
        return
    # stratum-like columns: values repeated across rows (an id or a measurement is not a stratum)
    strata = repeated_values(table, [c for c in undeclared if c not in counts])
    groups, _ = _history_groups(table, codes, strata)
    if len(table) < ROWS_PER_GROUP_MIN * groups:
        _refuse_hidden_count(table, counts[0], strata, groups)
    # the largest counts first, so that a region's code is not taken for the count
    for column in sorted(counts, key=lambda c: -pd.to_numeric(table[c]).max()):
        crossed = _crossed_strata(
            table, codes, [*covariates, *(c for c in undeclared if c != column)]
        )
        if not crossed or crossed == strata:
            continue
        groups, repeats = _history_groups(table, codes, crossed)
        if len(table) < ROWS_PER_GROUP_MIN * groups and not repeats:
            _refuse_hidden_count(table, column, crossed, groups)


def _history_groups(
    table: pd.DataFrame, codes: np.ndarray, strata: Sequence[Any]
) -> tuple[int, bool]:
    # the distinct (history, strata) cells, and whether any repeats
    keys = pd.DataFrame({"_h": codes})
    for i, c in enumerate(strata):
        keys[f"_s{i}"] = table[c].to_numpy()
    repeated = keys.duplicated()
    return int(len(keys) - repeated.sum()), bool(repeated.any())


def _crossed_strata(table: pd.DataFrame, codes: np.ndarray, columns: Sequence[Any]) -> list[Any]:
    """The ``columns`` that could split a patterns table into strata crossed with its histories: repeated
    values (`repeated_values`), fewest first, as many as every history in every combination of their values
    would fill at most `ROWS_PER_GROUP_MIN` times the rows (a region of 2 or 10 values, with some cells left
    out; not an age in years or a weight in a table of people, whose values with the histories far outnumber
    the rows)."""
    cells = len(np.unique(codes))
    kept = []
    repeated = repeated_values(table, list(dict.fromkeys(columns)))
    for c in sorted(repeated, key=lambda c: table[c].nunique(dropna=False)):
        cells *= table[c].nunique(dropna=False)
        if cells > ROWS_PER_GROUP_MIN * len(table):
            break
        kept.append(c)
    return kept


def _refuse_hidden_count(
    table: pd.DataFrame, column: Any, strata: Sequence[Any], groups: int
) -> None:
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


def repeated_values(table: pd.DataFrame, columns: Sequence[Any]) -> list[Any]:
    """The columns whose values repeat (at most one distinct value per `ROWS_PER_GROUP_MIN` rows): a region
    or a year, not an id or a measurement per person."""
    return [c for c in columns if table[c].nunique(dropna=False) * ROWS_PER_GROUP_MIN <= len(table)]


def hidden_stratum(cells: pd.DataFrame, table: pd.DataFrame, columns: Sequence[Any]) -> Any | None:
    """The first of ``columns`` (undeclared, with repeated values) that splits the repeated cells of a table of
    counts: ``cells`` (one row per row of ``table``, its declared cell columns) repeat a cell, and with the
    column beside them no cell repeats. Such a table holds one table of counts per value of the column (a
    region coded 1, 2, 3: each times seen or history once per region), which read without it is summed or
    double counted. None when no column explains the repeats."""
    if not cells.duplicated().any():
        return None
    for c in repeated_values(table, columns):
        keyed = cells.assign(_stratum=table[c].to_numpy())
        if not keyed.duplicated().any():
            return c
    return None


def hidden_strata(
    cells: pd.DataFrame, table: pd.DataFrame, columns: Sequence[Any]
) -> list[Any] | None:
    """The fewest of ``columns`` (those with repeated values, in their order) that together split the repeated
    cells of a table of counts, as `hidden_stratum` does one: a table of counts by region and age, neither
    declared, repeats each times seen across regions and ages, and neither alone tells the rows apart. Each
    column whose removal leaves the rest still splitting the cells is left out. None when the columns together
    do not split them."""
    if not cells.duplicated().any():
        return None
    chosen = repeated_values(table, columns)
    if not chosen or not _splits(cells, table, chosen):
        return None
    for c in list(chosen):
        rest = [d for d in chosen if d != c]
        if rest and _splits(cells, table, rest):
            chosen = rest
    return chosen


def _splits(cells: pd.DataFrame, table: pd.DataFrame, columns: Sequence[Any]) -> bool:
    # no cell repeats with the columns beside it
    keyed = cells.assign(**{f"_stratum{i}": table[c].to_numpy() for i, c in enumerate(columns)})
    return not keyed.duplicated().any()


def chance_pairs(cells: np.ndarray, strata: np.ndarray) -> float:
    """How many pairs of rows would share both their cell (``cells``: each row's code) and their stratum
    (``strata``: each row's code) if the strata were shuffled over the rows: the pairs that share a cell times
    the chance that two rows drawn without replacement share a stratum. With none at all, the chance of that in
    a table of people is about e^(−this)."""
    n = len(cells)
    if n < 2:
        return 0.0
    in_cell = np.bincount(cells).astype(float)
    in_stratum = np.bincount(strata).astype(float)
    pairs = float((in_cell * (in_cell - 1)).sum() / 2)
    return pairs * float((in_stratum * (in_stratum - 1)).sum() / (n * (n - 1)))


def _codes(table: pd.DataFrame, columns: Sequence[Any]) -> np.ndarray:
    # each row's code of its values in ``columns`` (missing values a value too)
    keys = pd.DataFrame({f"x{i}": table[c].to_numpy() for i, c in enumerate(columns)})
    return keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()


def _names(columns: Sequence[Any]) -> str:
    # 'region', or 'age' and 'region'
    shown = [repr(str(c)) for c in columns]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def stratum_hint(columns: Any, cell: str, fit_by: str | None = "", apart: bool = False) -> str:
    """What to do with a column (or several: a sequence) that splits a table of counts (`hidden_stratum`,
    `hidden_strata`). ``fit_by``: said after "to fit by it" (which models take covariates, say; "{each}" there
    reads "value", or "combination" for several columns), or None for a family that takes no covariates (the
    lists): then that advice is left out; ``apart``: also offer to fit each value's rows as a table of its own
    (a family whose tables declare no strata)."""
    several = isinstance(columns, list | tuple) and len(columns) > 1
    each = "combination" if several else "value"
    columns = (
        list(columns) if several else [columns[0] if isinstance(columns, list | tuple) else columns]
    )
    it, them = ("them", "columns") if several else ("it", "column")
    listed = ", ".join(f'"{c}"' for c in columns)
    codes = (
        "[...] naming those whose numbers are codes"
        if several
        else f'["{columns[0]}"] if its numbers are codes'
    )
    options = [
        f"fit each {each}'s rows as a table of its own" if apart else "",
        f"add up the counts over {it} (one row per {cell}) and leave {it} out of the file",
    ]
    if fit_by is not None:
        options.insert(
            0,
            f"declare {it} as {'covariates' if several else 'a covariate'} (covariates = [..., {listed}], with "
            f"categorical = {codes}) to fit by {it}{fit_by.replace('{each}', each)}",
        )
    options = [o for o in options if o]
    told = ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 else options[0]
    return f"{them} {_names(columns)} {'are' if several else 'is'} not declared: {told}"


def refuse_hidden_stratum(
    cells: pd.DataFrame,
    undeclared: pd.DataFrame,
    cell: str,
    fit_by: str | None = "",
    apart: bool = False,
) -> None:
    """A table of counts with a ``cell`` (``cells``: its declared columns, one row per row of the table) on two
    rows, told apart by an ``undeclared`` column (`hidden_stratum`), or by several together (`hidden_strata`:
    a region and an age): named, with what to do about it (`stratum_hint`, given ``fit_by`` and ``apart``)."""
    stratum = hidden_stratum(cells, undeclared, list(undeclared.columns))
    strata = (
        [stratum]
        if stratum is not None
        else hidden_strata(cells, undeclared, list(undeclared.columns))
    )
    if strata is None:
        return
    again = int(np.flatnonzero(cells.duplicated().to_numpy())[0])
    # the row it repeats (a missing value equal to a missing value, as `duplicated` has it)
    group = cells.groupby(list(cells.columns), dropna=False, sort=False).ngroup().to_numpy()
    first = int(np.flatnonzero(group == group[again])[0])
    hint = stratum_hint(strata if len(strata) > 1 else strata[0], cell, fit_by, apart)
    if len(strata) == 1:
        column = strata[0]
        raise EstimInputError(
            f"column {str(column)!r}, rows {first + 1} and {again + 1}: the same {cell}, with "
            f"{show_value(undeclared[column].iloc[first])} and {show_value(undeclared[column].iloc[again])} "
            f"in {str(column)!r}: the table holds one table of counts per value of {str(column)!r}; {hint}"
        )

    def values(row: int) -> str:
        return f"({', '.join(show_value(undeclared[c].iloc[row]) for c in strata)})"

    raise EstimInputError(
        f"columns {_names(strata)}, rows {first + 1} and {again + 1}: the same {cell}, with {values(first)} "
        f"and {values(again)} in ({', '.join(repr(str(c)) for c in strata)}): the table holds one table of "
        f"counts per combination of {_names(strata)}; {hint}"
    )


# Pairs of rows that a table of people would have sharing their cell and their values in several columns (or in
# a declared measurement, an age, beside an undeclared one) by chance (`chance_pairs`), at least: with fewer, a
# table of people with none is not rare enough (the chance of none is about e^(−pairs): 1 in 1,000 here) to be
# taken for one table of counts per combination of them.
CHANCE_PAIRS_MIN = float(np.log(1000.0))


def refuse_stratified_counts(
    table: pd.DataFrame,
    cells: np.ndarray,
    candidates: Sequence[Any],
    others: Sequence[Any],
    layout: str,
    cell: str,
    measured: Sequence[Any] = (),
) -> None:
    """A table of counts declared one row per person, split by an undeclared column with repeated values (a
    region coded 1, 2, 3) that the other checks leave out: no cell (``cells``: each row's code) repeats within
    one value of it among the rows with people on them in one of the ``candidates`` (columns that look like
    counts), as people, who share their cells, would. ``others``: the undeclared columns that may split it.
    The largest counts are tried first, so that a region's code is not taken for the count.

    Or split by several such columns together (a region and an age), or by one beside a declared covariate
    outside ``cells`` (``measured``: an age in years, continuous; `hidden_strata`): then the columns together
    must have repeated values, and a table of people would have shared cell and values on at least
    `CHANCE_PAIRS_MIN` pairs of rows (`chance_pairs`), so that a few people who happen to differ are not
    taken for a table of counts."""
    for column in sorted(candidates, key=lambda c: -pd.to_numeric(table[c]).max()):
        values = pd.to_numeric(table[column]).to_numpy(dtype=float)
        people = values > 0
        split = [c for c in others if c != column]
        base = pd.DataFrame({"cell": cells[people]})
        stratum = hidden_stratum(base, table[people], split)
        row = int(np.flatnonzero(values > 1)[0])
        start = f"{where(str(column), row)}: {show_value(table[column].iloc[row])}: no two of its "
        end = f"{str(column)!r} holds whole numbers up to {int(values.max()):,}: this looks like one table of"
        if stratum is not None:
            raise EstimInputError(
                f"{start}{int(people.sum()):,} rows with people share their {cell} and {str(stratum)!r}, "
                f"which one row per person would repeat, and {end} counts per value of {str(stratum)!r}, "
                f'with the people per row in {str(column)!r}; declare layout = "{layout}", count = '
                f'"{column}", and {stratum_hint(stratum, cell)}'
            )
        strata = hidden_strata(base, table[people], [*measured, *split])
        hidden = [c for c in strata or () if c in split]
        if not hidden:
            continue
        codes = _codes(table[people], strata)
        expected = chance_pairs(cells[people], codes)
        if codes.max() + 1 > people.sum() / ROWS_PER_GROUP_MIN or expected < CHANCE_PAIRS_MIN:
            continue
        kept = " and ".join([cell, *(repr(str(c)) for c in strata if c not in hidden)])
        per = "value" if len(hidden) == 1 else "combination"
        raise EstimInputError(
            f"{start}{int(people.sum()):,} rows with people share their {cell} and {_names(strata)}, "
            f"which one row per person would repeat (a table of people would have about {expected:,.0f} "
            f"pairs of rows sharing them by chance), and {end} counts per {per} of {_names(hidden)}, with the "
            f'people per row in {str(column)!r}; declare layout = "{layout}", count = "{column}", and '
            f"{stratum_hint(hidden, kept)}"
        )


def history_string_column(raw: pd.Series) -> str | None:
    """The first value of a column that holds each history as one string of 0s and 1s ("010101"; a history
    starting with 1 may have been read as a number), or None."""
    values = raw.dropna()
    if len(values) == 0 or pd.api.types.is_bool_dtype(raw):
        return None
    text = [
        str(int(v)) if isinstance(v, int | float | np.number) and v == int(v) else str(v)
        for v in values
    ]
    if (
        all(re.fullmatch(r"\s*[01]+\s*", t) for t in text)
        and max(len(t.strip()) for t in text) >= 2
    ):
        return text[0].strip()
    return None


def refuse_empty_occasions(x: np.ndarray, n: np.ndarray, occasions: Sequence[str]) -> None:
    """An occasion column nobody was caught on (all 0 on the rows with people): read as an occasion with a
    capture probability of 0, it moves N̂ (M0's capture probability falls, Mt's effect runs to −∞) and says
    nothing about the population, as records refuse an occasion without records (rule occasion_gap)."""
    caught = n.astype(np.int64) @ x.astype(np.int64)
    empty = [str(c) for c, k in zip(occasions, caught.tolist(), strict=True) if k == 0]
    if empty:
        also = f" (nor on {', '.join(map(repr, empty[1:]))})" if len(empty) > 1 else ""
        raise EstimInputError(
            f"column {empty[0]!r}: nobody was caught on this occasion{also}: every row with people has 0 "
            "in it. An occasion nobody was caught on is read as one with a capture probability of 0 (M0's "
            "capture probability falls and N̂ rises; Mt's effect of that occasion runs to −∞), though it "
            "says nothing about the population (as records refuse an occasion without records, rule "
            "occasion_gap): leave it out of occasions; if its captures are missing from the file, add them"
        )
