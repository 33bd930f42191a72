"""Tables whose rows are not what their layout says, found by a probe, each once read with exit 0 and a wrong N̂:
a person on two rows under a repeated identifier (one row per record read as one row per person: Mt's N̂ 630
for Lincoln–Petersen's 210), a frequency table's counts declared as the times seen (six people seen 1,645, 183,
… times: N̂ = 6), and an occasion column of zeros (Mt's effect of it −25, M0's N̂ moved). Each is now an error
naming the column and rows; the same people laid out right give N̂ equal to a reference computed by hand
(Lincoln–Petersen; the zero-truncated Poisson's ML from its score equation), and tables that are laid out
right (unique identifiers, a region, a row number) are read as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.registry import load_all
from estim.run.data import table_data

load_all()

# Two lists: 60 people on A only, 40 on B only, 30 on both: Lincoln–Petersen 90 · 70 / 30 = 210.
ONLY_A, ONLY_B, BOTH = 60, 40, 30
LINCOLN_PETERSEN = (ONLY_A + BOTH) * (ONLY_B + BOTH) / BOTH
# The Netherlands f_k table (data/benchmarks/netherlands_immigrants_freq.csv)
NETHERLANDS = {1: 1645, 2: 183, 3: 37, 4: 13, 5: 1, 6: 1}


def _people() -> pd.DataFrame:
    """One row per person, with a unique identifier."""
    rows = [(1, 0)] * ONLY_A + [(0, 1)] * ONLY_B + [(1, 1)] * BOTH
    table = pd.DataFrame(rows, columns=["A", "B"])
    table.insert(0, "person_id", [f"P{i + 1}" for i in range(len(table))])
    return table


def _records(split: int = 20) -> pd.DataFrame:
    """The same people with ``split`` of those on both lists written as two rows (one per list), as a
    table of records is: 170 rows for 130 people."""
    people = _people()
    both = people.index[people["A"] + people["B"] == 2][:split]
    second = people.loc[both].assign(A=0)
    people.loc[both, "B"] = 0
    return pd.concat([people, second]).sort_index(kind="stable").reset_index(drop=True)


def _ztpoisson_n(f: dict[int, int]) -> float:
    """The zero-truncated Poisson's ML N̂ by hand: λ solves mean k = λ / (1 − e^−λ), N̂ = n / (1 − e^−λ)."""
    n = sum(f.values())
    mean = sum(k * v for k, v in f.items()) / n
    lam = scipy.optimize.brentq(lambda x: x / (1 - np.exp(-x)) - mean, 1e-9, 50)
    return n / (1 - np.exp(-lam))


def test_the_people_one_row_each_give_lincoln_petersen() -> None:
    """The reference: unique identifiers are left alone, and Mt's N̂ of two lists is Lincoln–Petersen's."""
    data = table_data(_people(), "Mt", layout="individuals", occasions=["A", "B"])
    assert FAMILIES["Mt"].mle(data).n_hat == pytest.approx(LINCOLN_PETERSEN, rel=1e-6)


@pytest.mark.parametrize("family", ["Mt", "M0", "lists_stepwise"])
def test_a_repeated_identifier_is_refused(family: str) -> None:
    """Before: the 170 rows read as 170 people, 90 · 70 / 10 = 630 (exit 0). Now refused, naming the column,
    how many identifiers repeat, a pair of rows and the remedy."""
    records = _records()
    fields = {"lists" if family.startswith("lists") else "occasions": ["A", "B"]}
    if family == "lists_stepwise":  # three lists: the stepwise model needs them
        records = records.assign(C=(np.arange(len(records)) % 3 == 0).astype(int))
        fields = {"lists": ["A", "B", "C"]}
    with pytest.raises(EstimInputError) as e:
        table_data(records, family, layout="individuals", **fields)
    message = str(e.value)
    first = int(np.flatnonzero(records["person_id"].duplicated(keep=False))[0])
    assert f"column 'person_id', rows {first + 1} and {first + 2}" in message
    assert "20 values of 'person_id'" in message and "(40 rows)" in message
    assert "one row per person" in message


def test_a_repeated_numeric_id_is_refused_and_a_region_is_not() -> None:
    """An integer identifier is one by its name; a region (or a region's code) repeats on purpose."""
    records = _records().assign(person_id=lambda t: t["person_id"].str[1:].astype(int))
    with pytest.raises(EstimInputError, match="column 'person_id'"):
        table_data(records, "Mt", layout="individuals", occasions=["A", "B"])
    people = _people().drop(columns="person_id")
    people["region_code"] = np.where(np.arange(len(people)) % 2 == 0, "R01", "R02")
    people["household_id"] = [f"H{i // 2}" for i in range(len(people))]  # two people to a household
    data = table_data(people, "Mt", layout="individuals", occasions=["A", "B"])
    assert FAMILIES["Mt"].mle(data).n_hat == pytest.approx(LINCOLN_PETERSEN, rel=1e-6)


def _register_people(per_row: bool) -> pd.DataFrame:
    """The Netherlands people, one row each (``per_row`` False), or a person seen k times on k rows, each
    giving their times seen k (True)."""
    rows, i = [], 0
    for k, f in NETHERLANDS.items():
        for _ in range(f):
            i += 1
            rows += [(f"ID{i:05d}", k)] * (k if per_row else 1)
    return pd.DataFrame(rows, columns=["person_id", "times"])


def test_a_single_register_with_a_person_on_several_rows_is_refused() -> None:
    """Before: N̂ 4,543.7 for the 7,079.9 of the same people as an f_k table (exit 0)."""
    reference = _ztpoisson_n(NETHERLANDS)
    assert reference == pytest.approx(7080, abs=1)  # the probe's f_k table's N̂
    people = table_data(
        _register_people(False), "ztpoisson", layout="individuals", times_seen="times"
    )
    assert FAMILIES["ztpoisson"].mle(people).n_hat == pytest.approx(reference, rel=1e-5)
    with pytest.raises(EstimInputError) as e:
        table_data(_register_people(True), "ztpoisson", layout="individuals", times_seen="times")
    message = str(e.value)
    assert "column 'person_id', rows 1646 and 1647: both 'ID01646'" in message
    assert f"{sum(NETHERLANDS.values()) - NETHERLANDS[1]} values" in message
    assert "number of times the person was seen" in message


def test_people_averaging_two_rows_or_more_are_refused_and_a_coded_stratum_is_not() -> None:
    """Everyone seen at least twice, each on k rows (540 rows for 235 people, 2.3 rows per identifier) had
    passed as a stratum; a column named only as an identifier with more values than a stratum has levels is
    refused, while a code of a stratum (sex_code), an "id" of 30 groups, a country_id of 80 and a person_age
    are left alone."""
    seen_twice = {k: f for k, f in NETHERLANDS.items() if k >= 2}
    table = _register_people(True)
    table = table[table["times"] >= 2].reset_index(drop=True)
    assert len(table) == 540 and table["person_id"].nunique() == sum(seen_twice.values()) == 235
    with pytest.raises(EstimInputError, match="column 'person_id', rows 1 and 2: both 'ID01646'"):
        table_data(table, "ztpoisson", layout="individuals", times_seen="times")
    people = table.drop_duplicates("person_id").drop(columns="person_id").reset_index(drop=True)
    people["sex_code"] = np.where(np.arange(len(people)) % 2 == 0, "1", "2")
    people["id"] = [f"G{i % 30}" for i in range(len(people))]  # 30 groups of about 8
    data = table_data(people, "ztpoisson", layout="individuals", times_seen="times")
    assert FAMILIES["ztpoisson"].mle(data).n_hat == pytest.approx(
        _ztpoisson_n(seen_twice), rel=1e-5
    )
    # names that group or measure people: many values, repeated, and not identifiers of them
    others = {
        "country_id": [f"C{i % 80}" for i in range(len(people))],
        "person_age": 15 + np.arange(len(people)) % 70,
    }
    for name, values in others.items():
        table = people[["times"]].assign(**{name: values})
        data = table_data(table, "ztpoisson", layout="individuals", times_seen="times")
        assert int(data["frequency"].sum()) == 235, name


def test_counts_declared_as_times_seen_are_refused() -> None:
    """Before: ``nbcap,freq`` with times_seen = "freq" read as 6 people seen 1,645, 183, … times: N̂ = 6. Now
    refused with the fields to declare, which give the reference N̂."""
    table = pd.DataFrame({"nbcap": list(NETHERLANDS), "freq": list(NETHERLANDS.values())})
    with pytest.raises(EstimInputError) as e:
        table_data(table, "ztpoisson", layout="individuals", times_seen="freq")
    message = str(e.value)
    assert "column 'freq', row 1: 1,645 times seen, more than the table's 6 rows" in message
    assert 'layout = "frequencies", times_seen = "nbcap", count = "freq"' in message
    data = table_data(table, "ztpoisson", layout="frequencies", times_seen="nbcap", count="freq")
    assert FAMILIES["ztpoisson"].mle(data).n_hat == pytest.approx(
        _ztpoisson_n(NETHERLANDS), rel=1e-5
    )


def test_a_row_number_beside_a_table_of_people_is_left_alone() -> None:
    """A row number 1, 2, … (distinct whole numbers from 1) beside people seen a few times each is no k."""
    people = _register_people(False).drop(columns="person_id")
    people.insert(0, "row", np.arange(1, len(people) + 1))
    data = table_data(people, "ztpoisson", layout="individuals", times_seen="times")
    assert FAMILIES["ztpoisson"].mle(data).n_hat == pytest.approx(
        _ztpoisson_n(NETHERLANDS), rel=1e-5
    )


@pytest.mark.parametrize("family", ["M0", "Mt"])
def test_an_occasion_nobody_was_caught_on_is_refused(family: str) -> None:
    """Before: hare data with a 7th column of zeros: Mt's occasion[c7] −25.24, M0's N̂ 76.32 for 75.43
    (exit 0). Now refused naming the column."""
    people = _people().drop(columns="person_id").assign(C=0)
    with pytest.raises(EstimInputError, match=r"column 'C': nobody was caught on this occasion"):
        table_data(people, family, layout="individuals", occasions=["A", "B", "C"])
    patterns = pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "C": [0, 0, 0], "n": [60, 40, 30]})
    with pytest.raises(EstimInputError, match=r"column 'C': nobody was caught"):
        table_data(patterns, family, layout="patterns", occasions=["A", "B", "C"], count="n")


def test_blank_cells_and_histories_in_one_cell_are_named() -> None:
    """Before: "nan is not 0 or 1", and "capture–recapture needs at least 2 occasion columns"."""
    people = _people().drop(columns="person_id").astype(float)
    people.loc[4, "B"] = np.nan
    with pytest.raises(EstimInputError, match=r"column 'B', row 5: the cell is empty"):
        table_data(people, "Mt", layout="individuals", occasions=["A", "B"])
    histories = pd.DataFrame({"hist": ["010101", "110000", "001100"]})
    with pytest.raises(
        EstimInputError, match=r"'hist' holds '010101', a whole capture history in one cell"
    ):
        table_data(histories, "Mt", layout="individuals", occasions=["hist"])
    histories["other"] = [0, 1, 1]
    with pytest.raises(
        EstimInputError, match=r"row 1: '010101' is not 0 or 1 \(a whole capture history"
    ):
        table_data(histories, "Mt", layout="individuals", occasions=["hist", "other"])
