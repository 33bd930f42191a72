"""Whether an individuals table's rows are people: records under a repeated identifier (`refuse_repeated_ids`:
a person on two lists written as two rows, keyed by an id, a code or a name), a single register's f_k counts
declared as the times seen (`refuse_counts_as_times_seen`). Each is refused naming the column and the rows,
since read as people they give a wrong N̂ with no error."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.families.closed.table_checks import ROWS_PER_GROUP_MIN, show_value, where

# Whole words of a column's name that say it identifies a person or a record (person_id, PersonID, key, code)
ID_WORDS = frozenset(
    {"id", "ids", "key", "person", "code", "identifier", "uuid", "guid", "pid", "uid"}
    # a name identifies its person (victim lists are keyed by name; not a region's or a list's name, whose
    # values repeat or whose words say it names a group)
    | {"name", "names", "fullname", "surname"}
)
# A column whose name says only that it identifies people or animals (person_id, PersonID, id, pid, tag_id,
# person_key; not country_id, clinic_id or person_age, which group or measure them), with more distinct values
# than a stratum has levels (`MANY_PEOPLE`), identifies them however often they repeat
PERSON_WORDS = ID_WORDS - {"code", "key"}
PERSON_NAME_WORDS = PERSON_WORDS | {"key", "individual", "subject", "animal", "tag"}
MANY_PEOPLE = 50
# … and words that say the thing it identifies is a group of people, whose members share it
GROUP_WORDS = frozenset(
    {
        "household",
        "hh",
        "family",
        "group",
        "cluster",
        "team",
        "site",
        "trap",
        "area",
        "region",
        "village",
    }
)
# a code such as P1, ID00001, A-17 or 007 (digits, with letters or a leading zero), not a date (2019-03-12)
_CODE = re.compile(r"^(?=.*\d)(?=[A-Za-z0-9_.:/#-]*[A-Za-z]|0)[A-Za-z0-9_.:/#-]{1,40}$")
_DATE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$")


def _name_words(name: Any) -> set[str]:
    # PersonID -> {"person", "id"}; person_id -> {"person", "id"}
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+", text) if w}


def looks_like_identifier(raw: pd.Series, name: Any) -> bool:
    """A column that identifies people or records: its name says so (`ID_WORDS`, and no `GROUP_WORDS`: a
    household's id is shared by its people) and its values are whole numbers or text, or its values are codes
    (P1, ID00001, 007: text with digits, no date); either way mostly distinct (fewer than `ROWS_PER_GROUP_MIN`
    rows per value: a region or a sex is a stratum, not an id), unless its name says only that it identifies
    people (`PERSON_NAME_WORDS`) and it has more than `MANY_PEOPLE` values (each person on k rows, k ≥ 2 on
    average)."""
    values = raw.dropna()
    if len(values) < 2 or pd.api.types.is_bool_dtype(raw):
        return False
    words = _name_words(name)
    if words & GROUP_WORDS:
        return False
    distinct = values.nunique()
    # a person seen k times on k rows averages 2 or more rows per value when most are seen twice or more
    named = bool(words & PERSON_WORDS) and words <= PERSON_NAME_WORDS and distinct > MANY_PEOPLE
    if distinct * ROWS_PER_GROUP_MIN <= len(values) and not named:
        return False
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.astype(str).str.strip()
    if pd.api.types.is_numeric_dtype(raw) or (
        numbers.notna().all() and not text.str.match(r"0\d").any()
    ):
        # numbers: an id only by name, and only whole numbers (not a measurement)
        return bool(words & ID_WORDS) and bool((numbers == np.round(numbers)).all())
    if words & ID_WORDS:
        return True
    return bool(text.str.match(_CODE).all() and not text.str.match(_DATE).any())


def refuse_repeated_ids(table: pd.DataFrame, declared: set[Any], merge: str) -> None:
    """An individuals table with an undeclared identifier (`looks_like_identifier`) whose values repeat: its
    rows are records (a person on two lists written as two rows), not people, and each is read as one more
    person (20 people on both of two lists, on two rows each: Lincoln–Petersen's 210 became 630). Names the
    column, how many values repeat and the first pair of rows; ``merge``: how to make one row of a person's."""
    for column in [c for c in table.columns if c not in declared]:
        raw = table[column]
        if not looks_like_identifier(raw, column):
            continue
        filled = raw.notna().to_numpy()
        repeated = raw.duplicated(keep=False).to_numpy() & filled
        if not repeated.any():
            continue
        first = int(np.flatnonzero(repeated)[0])
        second = int(np.flatnonzero(repeated & (raw == raw.iloc[first]).to_numpy())[1])
        values = int(raw[repeated].nunique())
        raise EstimInputError(
            f"column {str(column)!r}, rows {first + 1} and {second + 1}: both {show_value(raw.iloc[first])}; "
            f"{values:,} value{'s' if values > 1 else ''} of {str(column)!r}, which looks like an identifier of "
            f"people, {'appear' if values > 1 else 'appears'} on more than one row ({int(repeated.sum()):,} "
            'rows): layout "individuals" reads each row as one more person, so a person on two rows is '
            f"counted twice and N̂ is wrong. Give one row per person: {merge}; if {str(column)!r} does not "
            "identify people, leave it out of the file"
        )


def refuse_counts_as_times_seen(table: pd.DataFrame, times_seen: str, declared: set[Any]) -> None:
    """An individuals table whose times seen exceed its rows, beside an undeclared column of whole numbers from 0
    or 1 (k): a frequency table (``nbcap,freq``) with its counts declared as the times seen, read as six people
    seen 1,645, 183, … times (N̂ = 6 for 1,880 people seen). Someone seen more often than the table has people
    is what an f_k table's counts look like, read as people."""
    times = pd.to_numeric(table[times_seen], errors="coerce")
    rows = len(table)
    if rows < 2 or times.isna().any() or times.max() <= rows:
        return
    for column in [c for c in table.columns if c not in declared and c != times_seen]:
        raw = table[column]
        if pd.api.types.is_bool_dtype(raw):
            continue
        k = pd.to_numeric(raw, errors="coerce")
        if k.isna().any() or (k != np.round(k)).any() or k.min() not in (0, 1) or k.nunique() < 2:
            continue
        row = int(np.flatnonzero(times.to_numpy() == times.max())[0])
        shown = ", ".join(f"{int(v):,}" for v in times.iloc[:3])
        raise EstimInputError(
            f"{where(times_seen, row)}: {int(times.max()):,} times seen, more than the table's {rows:,} rows, "
            f"and column {str(column)!r} holds whole numbers from {int(k.min())} to {int(k.max())}: this "
            f"looks like a frequency table, with the times seen k in {str(column)!r} and the people seen k "
            f"times in {times_seen!r}, which one row per person reads as {rows:,} people seen {shown}, … "
            f'times; declare layout = "frequencies", times_seen = "{column}", count = "{times_seen}" (if '
            f"{str(column)!r} is something else, leave it out of the file)"
        )


def refuse_register_rows_not_people(
    table: pd.DataFrame, times_seen: str, declared: set[Any]
) -> None:
    """A single register's individuals table whose rows are not people: records of a person under a repeated
    identifier (`refuse_repeated_ids`), or a frequency table's counts declared as the times seen
    (`refuse_counts_as_times_seen`). ``declared``: the columns the spec names."""
    merge = (
        "merge each person's rows into one holding the number of times the person was seen (when each row "
        "already gives the person's total, keep one of them; when each row is one sighting, count them)"
    )
    refuse_repeated_ids(table, declared | {times_seen}, merge)
    refuse_counts_as_times_seen(table, times_seen, declared)
