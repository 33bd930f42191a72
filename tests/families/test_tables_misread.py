"""Capture-history and list tables that a wrong layout would misread with exit 0: a table of counts split by
a column coded in numbers (a region 1, 2: itself count-like) or by a declared covariate, read as one row per
person (N̂ = 16 for 279 people, 32 for 4,400); the count column declared as a covariate too; people keyed by
name on several rows; a count stored as true/false. Each was fitted before and is refused now; the tables of
people beside them, with the same kinds of columns, still load (the reference: what was put in)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families.base import DataFieldError
from estim.families.closed import table_histories
from estim.families.single_register.data import frequency_data

ABC = ["A", "B", "C"]
KOSOVO_LISTS = ["EXH", "ABA", "OSCE", "HRW"]
HISTORIES = [h for h in itertools.product([0, 1], repeat=3) if any(h)]


def _two_regions(region: tuple) -> pd.DataFrame:
    """The 7 histories of 3 lists in two regions, one row each with its people in n (279 in all)."""
    counts = [40, 38, 35, 41, 12, 10, 30, 33, 9, 11, 8, 7, 3, 2]
    rows = [(*h, r) for h in HISTORIES for r in region]
    return pd.DataFrame(rows, columns=[*ABC, "region"]).assign(n=counts)


@pytest.mark.parametrize("lists", [False, True], ids=["occasions", "lists"])
def test_a_table_of_counts_by_a_region_coded_1_2_read_as_people_is_refused(lists):
    # the region, 1 or 2, looked like a count itself and was left out of the strata: 14 rows read as 14 people
    table = _two_regions((1, 2))
    with pytest.raises(
        EstimInputError,
        match=r"column 'n', row 1: 40, beside 14 rows for 14 distinct \(0/1 history, 'region'\)",
    ) as e:
        table_histories(table, layout="individuals", occasions=ABC, takes_covariates=not lists)
    assert 'declare layout = "patterns", count = "n"' in str(e.value)
    summed = table.groupby(ABC, as_index=False)["n"].sum()
    data = table_histories(summed, layout="patterns", occasions=ABC, count="n")
    assert int(data["history_count"].sum()) == 279


@pytest.mark.parametrize("codes", [(1, 2), (2019, 2020)], ids=["sex", "year"])
def test_kosovo_split_in_two_by_a_number_read_as_people_is_refused(codes):
    # 4,400 deaths as 30 rows, by sex 1/2 or by year: N̂ = 32 with exit 0 (lists_bma: gate passed)
    table = load_benchmark("kosovo_4lists")
    first = table.assign(Freq=table["Freq"] // 2, split=codes[0])
    second = table.assign(Freq=table["Freq"] - table["Freq"] // 2, split=codes[1])
    split = pd.concat([first, second], ignore_index=True)
    with pytest.raises(EstimInputError, match=r"column 'Freq'.*\(0/1 history, 'split'\)"):
        table_histories(split, layout="individuals", occasions=KOSOVO_LISTS, takes_covariates=False)
    # with a few cells left out of one half the table still crosses its histories
    sparse = split.drop(index=[16, 20, 25])
    with pytest.raises(EstimInputError, match=r"column 'Freq'"):
        table_histories(
            sparse, layout="individuals", occasions=KOSOVO_LISTS, takes_covariates=False
        )


@pytest.mark.parametrize("region", [("north", "south"), (1, 2)], ids=["text", "coded"])
def test_a_table_of_counts_by_a_declared_covariate_read_as_people_is_refused(region):
    # Huggins' cells: the covariate was left out of the strata, so 2 rows per history passed (N̂ = 16)
    table = _two_regions(region)
    with pytest.raises(
        EstimInputError, match=r"column 'n', row 1: 40, .*\(0/1 history, 'region'\)"
    ):
        table_histories(table, layout="individuals", occasions=ABC, covariates=["region"])
    data = table_histories(
        table, layout="patterns", occasions=ABC, count="n", covariates=["region"]
    )
    assert int(data["history_count"].sum()) == 279


def _people(n: int, seed: int, occasions: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = (rng.random((n, occasions)) < 0.3).astype(int)
    x = x[x.sum(axis=1) > 0]
    return pd.DataFrame(x, columns=[f"c{i}" for i in range(1, occasions + 1)])


@pytest.mark.parametrize("n", [70, 300])
def test_tables_of_people_with_coded_strata_and_measurements_still_load(n):
    # one row per animal: sex coded 1/2, a weight in grams and an age in years, none declared; or sex declared
    table = _people(n, seed=n, occasions=4)
    rng = np.random.default_rng(1)
    rows = len(table)
    table = table.assign(
        sex=rng.integers(1, 3, rows),
        weight=rng.integers(1500, 3500, rows),
        age=rng.integers(1, 9, rows),
    )
    occasions = [f"c{i}" for i in range(1, 5)]
    data = table_histories(table, layout="individuals", occasions=occasions)
    assert int(data["history_count"].sum()) == rows
    data = table_histories(
        table, layout="individuals", occasions=occasions, covariates=["sex"], categorical=["sex"]
    )
    assert int(data["history_count"].sum()) == rows


def test_the_count_column_cannot_also_be_a_covariate():
    # Mt with covariates = ["n"]: N̂ = 90,555 for 279 (552.7 without it)
    table = _two_regions(("north", "south")).groupby(ABC, as_index=False)["n"].sum()
    with pytest.raises(DataFieldError, match="'n' is the number of people per row: it cannot also"):
        table_histories(table, layout="patterns", occasions=ABC, count="n", covariates=["n"])
    with pytest.raises(DataFieldError, match="'n' is the number of people per row"):
        table_histories(table, layout="patterns", occasions=ABC, count="n", formula="~ n")


def _named_records() -> pd.DataFrame:
    """Kosovo's 4,400 deaths one row per person with a name, and the 300 first people seen on two or more
    lists written as one row per list (the way a victim list keyed by name arrives)."""
    table = load_benchmark("kosovo_4lists")
    people = table.loc[table.index.repeat(table["Freq"]), KOSOVO_LISTS].reset_index(drop=True)
    people["full_name"] = [f"Person {i} (b. {1930 + i % 60})" for i in range(len(people))]
    several = people[people[KOSOVO_LISTS].sum(axis=1) >= 2].head(300)
    rows = [people.drop(index=several.index)]
    for _, person in several.iterrows():
        for name in KOSOVO_LISTS:
            if person[name]:
                one = person.copy()
                one[KOSOVO_LISTS] = [int(c == name) for c in KOSOVO_LISTS]
                rows.append(one.to_frame().T)
    return pd.concat(rows, ignore_index=True).astype({c: int for c in KOSOVO_LISTS})


def test_people_keyed_by_name_on_several_rows_are_refused():
    # N̂ = 30,405 for Kosovo's 14,342 (lists_stepwise) with exit 0: a name did not read as an identifier
    table = _named_records()
    with pytest.raises(
        EstimInputError, match=r"300 values of 'full_name'.* appear on more than one row"
    ):
        table_histories(table, layout="individuals", occasions=KOSOVO_LISTS, takes_covariates=False)
    # one row per person, named: the 4,400 people
    merged = table.groupby("full_name", as_index=False)[KOSOVO_LISTS].max()
    data = table_histories(
        merged, layout="individuals", occasions=KOSOVO_LISTS, takes_covariates=False
    )
    assert int(data["history_count"].sum()) == 4400


def test_a_region_name_that_repeats_is_not_taken_for_a_person():
    table = _people(300, seed=3)
    rng = np.random.default_rng(2)
    table = table.assign(
        region_name=rng.choice(["Omsk", "Orenburg"], len(table)),
        list_name=rng.choice(["police", "overstays"], len(table)),
    )
    data = table_histories(table, layout="individuals", occasions=[f"c{i}" for i in range(1, 7)])
    assert int(data["history_count"].sum()) == len(table)


def test_a_count_stored_as_true_false_is_refused():
    # True was read as 1 person: Kosovo's patterns as 15 people (N̂ = 16), Netherlands' f_k as 6 (N̂ = 6.2)
    table = load_benchmark("kosovo_4lists")
    flags = table.assign(Freq=table["Freq"] > 0)
    with pytest.raises(
        EstimInputError, match=r"column 'Freq', row 1: True is true/false, not a number"
    ):
        table_histories(flags, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")
    as_objects = table.assign(Freq=pd.Series([True] + [5] * (len(table) - 1), dtype=object))
    with pytest.raises(EstimInputError, match="true/false"):
        table_histories(as_objects, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")
    fk = pd.DataFrame({"k": [1, 2, 3], "people": [True, True, True]})
    with pytest.raises(EstimInputError, match=r"column 'people', row 1: True is true/false"):
        frequency_data(fk, times_seen="k", count="people")
    assert (
        int(
            frequency_data(fk.assign(people=[50, 9, 2]), times_seen="k", count="people")[
                "frequency"
            ].sum()
        )
        == 61
    )
