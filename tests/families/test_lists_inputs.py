"""Bad input to the multiple-list families is refused with a message naming what is wrong, never fitted into
a confident wrong number: a list that shares nobody with the others (in a table, or in records whose person
keys do not match across files), [options] of the wrong type or range, and counts the log-linear fit cannot
handle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from lists_fixtures import SMALL
from records_fixtures import CLEAN_CSV, TOTALS_TO_DECEMBER, write_dataset

from estim.errors import EstimInputError, InvalidRecords
from estim.families.base import FAMILIES
from estim.families.closed import history_data
from estim.families.lists import build_latent_class, stepwise
from estim.families.lists.bma_family import bma_posterior
from estim.families.lists.data import LISTS, list_table
from estim.families.lists.shrinkage import build_shrinkage
from estim.paths import BENCHMARKS_DIR
from estim.records import load_records

KOSOVO = ["EXH", "ABA", "OSCE", "HRW"]


def _fields(**given):
    fields = {
        f.name: (tuple(f.default) if f.many and f.default else f.default) for f in LISTS.fields
    }
    return {**fields, **given}


def _kosovo() -> pd.DataFrame:
    return pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")


def _kosovo_data():
    return history_data(_kosovo(), occasions=KOSOVO, count="Freq")


# --------------------------------------------------------------------------------------------------------------
# 1. A list that shares nobody with the others


DISJOINT = pd.DataFrame(
    [(1, 0, 0, 300), (0, 1, 0, 200), (1, 1, 0, 60), (0, 0, 1, 400)], columns=["A", "B", "C", "n"]
)
ABC = _fields(layout="patterns", count="n", lists=("A", "B", "C"))


def test_a_table_with_a_list_that_overlaps_no_other_is_refused_naming_it():
    # lists_stepwise gave N-hat 1,960 = Lincoln–Petersen on A, B (1,560) + the 400 on C, as if C saw all its
    # people; lists_bma a median of 1,752
    with pytest.raises(
        EstimInputError, match=r"the table: nobody on the list 'C' is on any other list"
    ) as e:
        LISTS.from_benchmark(DISJOINT, ABC)
    assert "no multiple-list model can estimate" in str(e.value)
    # one person on A and C links C to the others: the table is read
    linked = pd.concat([DISJOINT, pd.DataFrame([(1, 0, 1, 1)], columns=DISJOINT.columns)])
    assert int(LISTS.from_benchmark(linked, ABC)["history_count"].sum()) == 961


def test_the_fit_of_such_a_table_is_refused_not_computed(tmp_path):
    from estim.cli import cli

    DISJOINT.to_csv(tmp_path / "disjoint.csv", index=False)
    for family in ("lists_stepwise", "lists_bma"):
        spec = tmp_path / f"{family}.toml"
        spec.write_text(
            f'family = "{family}"\nseed = 1\n[data]\nfile = "disjoint.csv"\nlayout = "patterns"\n'
            'count = "n"\nlists = ["A", "B", "C"]\n'
        )
        args = ["fit", str(spec)] + (["--mle"] if family == "lists_stepwise" else [])
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, r.output
        assert "nobody on the list 'C' is on any other list" in r.output


def test_lists_in_groups_with_nobody_in_common_are_refused_naming_the_groups():
    table = pd.DataFrame(
        [(1, 0, 0, 0, 3), (0, 1, 0, 0, 2), (1, 1, 0, 0, 6), (0, 0, 1, 0, 4), (0, 0, 0, 1, 4)]
        + [(0, 0, 1, 1, 4)],
        columns=["A", "B", "C", "D", "n"],
    )
    fields = _fields(layout="patterns", count="n", lists=("A", "B", "C", "D"))
    with pytest.raises(
        EstimInputError, match=r"groups with nobody in common: \{A, B\} and \{C, D\}"
    ):
        LISTS.from_benchmark(table, fields)
    # the benchmarks are linked (UK: LA and GP share nobody, but each shares people with the others)
    uk = pd.read_csv(BENCHMARKS_DIR / "uk_modern_slavery_5lists.csv")
    uk_fields = _fields(layout="patterns", count="count", lists=("LA", "NG", "PFNCA", "GO", "GP"))
    assert int(LISTS.from_benchmark(uk, uk_fields)["history_count"].sum()) == 2744
    assert (
        int(
            LISTS.from_benchmark(
                _kosovo(), _fields(layout="patterns", count="Freq", lists=tuple(KOSOVO))
            )["history_count"].sum()
        )
        == 4400
    )


def _registers(*rows: str) -> list[str]:
    return [CLEAN_CSV["registers"][0], *rows]


UNLINKED = (
    r"records, period 2010, whole border: nobody on the list 'apprehensions' is on any "
    r"other list.*person keys do not match across the files"
)


def test_records_whose_register_keys_match_no_apprehended_person_are_refused(tmp_path):
    fields = _fields(period="2010", period_kind="year")
    # the register keys match the apprehensions': every list shares someone with another
    # (a Kurgan total of December runs the records to the end of 2010: the register entries are in their span)
    same = write_dataset(
        tmp_path / "same",
        apprehension_totals=TOTALS_TO_DECEMBER,
        registers=_registers(
            "R1,police_check,PK0000000002,2010-03-01",
            "R2,overstay,PK0000000001,2010-04-11",
            "R3,overstay,PK0000000002,2010-05-02",
        ),
    )
    data = LISTS.from_records(load_records(same, key=b"k"), fields)
    assert list(data.occasion.values) == ["police_check", "overstay", "apprehensions"]
    got = {
        str(h): int(n)
        for h, n in zip(data.history.values, data.history_count.values[0], strict=True)
    }
    assert got == {"111": 1, "011": 1, "001": 1}
    # the same registers with lower-cased keys: once nobody apprehended was on a register and the fit described
    # two unrelated populations as one; now validation refuses keys that differ only in letter case
    lower = write_dataset(tmp_path / "lower", registers=_registers(*_LOWER))
    with pytest.raises(InvalidRecords, match=r"registers\.csv:2: column 'person_key': key_case"):
        load_records(lower, key=b"k")
    # keys of another scheme (the registers' own numbers): valid records, but nobody apprehended is on a register
    other = write_dataset(
        tmp_path / "other",
        apprehension_totals=TOTALS_TO_DECEMBER,
        registers=_registers(*_OTHER_SCHEME),
    )
    with pytest.raises(EstimInputError, match=UNLINKED):
        LISTS.from_records(load_records(other, key=b"k"), fields)


_LOWER = (
    "R1,police_check,pk0000000002,2010-03-01",
    "R2,overstay,pk0000000001,2010-04-11",
    "R3,overstay,pk0000000002,2010-05-02",
)
_OTHER_SCHEME = (
    "R1,police_check,RK0000000002,2010-03-01",
    "R2,overstay,RK0000000001,2010-04-11",
    "R3,overstay,RK0000000002,2010-05-02",
)


def test_list_table_from_python_refuses_unlinked_lists_as_the_spec_does(tmp_path):
    """`list_table` returned the table of register keys that match nobody apprehended without a word, while
    the spec refused it; asked for explicitly (``allow_unlinked``), it describes the records, as counted by
    hand."""
    records = load_records(
        write_dataset(
            tmp_path / "other",
            apprehension_totals=TOTALS_TO_DECEMBER,
            registers=_registers(*_OTHER_SCHEME),
        ),
        key=b"k",
    )
    with pytest.raises(EstimInputError, match=UNLINKED):
        list_table(records, period="2010")
    # the 3 apprehended people (as in the linked table) and the registers' 2 (RK2 checked and overstaying, RK1
    # overstaying), shared with nobody
    table = list_table(records, period="2010", allow_unlinked=True)
    got = {
        str(h): int(n)
        for h, n in zip(table.history.values, table.history_count.values[0], strict=True)
    }
    assert got == {"110": 1, "010": 1, "001": 3}


def test_a_section_with_an_unlinked_list_is_refused_naming_the_section(tmp_path):
    folder = write_dataset(
        tmp_path / "r",
        apprehension_totals=TOTALS_TO_DECEMBER,
        registers=[
            "entry_id,register,person_key,date,section_id",
            "R1,police_check,PK0000000002,2010-03-01,omsk",
            "R2,overstay,PK0000000001,2010-04-11,omsk",
            "R3,overstay,PK0000000003,2010-04-12,orenburg",
            "R4,police_check,PK0000000009,2010-04-13,orenburg",
        ],
    )
    records = load_records(folder, key=b"k")
    # Omsk: PK1 apprehended and overstaying, PK2 apprehended and checked
    omsk = LISTS.from_records(records, _fields(period="2010", section="omsk"))
    assert int(omsk["history_count"].sum()) == 2
    # Orenburg: PK3 apprehended and overstaying, PK9 checked only: the police check shares nobody
    with pytest.raises(
        EstimInputError,
        match=r"records, period 2010, section orenburg: nobody on the list 'police_check'",
    ):
        LISTS.from_records(records, _fields(period="2010", section="orenburg"))


# --------------------------------------------------------------------------------------------------------------
# 2. [options]: a number where a number is meant


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.05", "'0.05'"),
        ("abc", "'abc'"),
        (True, "true"),
        (1.5, "1.5"),
        (-0.1, "-0.1"),
        (float("nan"), "nan"),
    ],
)
def test_stepwise_threshold_must_be_a_p_value(value, shown):
    # "0.05" ended in "internal error: ValueError: Unknown format code 'g'", "abc" in a ValueError, and true
    # was read as 1.0 (every pair added)
    message = rf"\[options\] threshold: .*a number in \[0, 1\], got {shown}"
    with pytest.raises(EstimInputError, match=message):
        FAMILIES["lists_stepwise"].mle(_kosovo_data(), threshold=value)
    with pytest.raises(EstimInputError, match=message):
        stepwise(_kosovo_data(), threshold=value)


def test_stepwise_threshold_of_a_number_is_used():
    fit = FAMILIES["lists_stepwise"].mle(_kosovo_data(), threshold=0)
    assert fit.extra["interactions"] == [] and "p < 0" in fit.message
    assert FAMILIES["lists_stepwise"].mle(_kosovo_data(), threshold=1).converged


def test_a_quoted_threshold_in_a_spec_exits_2(tmp_path):
    from estim.cli import cli

    spec = tmp_path / "s.toml"
    spec.write_text(
        f'family = "lists_stepwise"\nseed = 1\n[data]\nfile = "{BENCHMARKS_DIR / "kosovo_4lists.csv"}"\n'
        'layout = "patterns"\ncount = "Freq"\nlists = ["EXH", "ABA", "OSCE", "HRW"]\n'
        '[options]\nthreshold = "0.05"\n'
    )
    r = CliRunner().invoke(cli, ["fit", str(spec), "--mle"])
    assert r.exit_code == 2, r.output
    assert "[options] threshold" in r.output and "internal error" not in r.output


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"delta": True}, r"\[options\] delta: .*a number > 0, got true"),
        ({"delta": "0.0625"}, r"\[options\] delta: .*a number > 0, got '0.0625'"),
        ({"delta": 0}, r"\[options\] delta: .*a number > 0, got 0"),
        ({"delta": float("inf")}, r"\[options\] delta: .*a number > 0, got inf"),
        (
            {"prior_n": 1},
            r"\[options\] prior_n: the prior on N, one of 'inverse', 'rissanen', got 1",
        ),
        ({"prior_n": "flat"}, r"\[options\] prior_n: .*got 'flat'"),
        ({"grid_multiple": True}, r"\[options\] grid_multiple: .*a whole number ≥ 1, got true"),
        ({"grid_multiple": "12"}, r"\[options\] grid_multiple: .*a whole number ≥ 1, got '12'"),
        ({"grid_multiple": 2.5}, r"\[options\] grid_multiple: .*a whole number ≥ 1, got 2.5"),
        ({"grid_multiple": 0}, r"\[options\] grid_multiple: .*a whole number ≥ 1, got 0"),
        (
            {"grid_multiple": 10**9},
            r"\[options\] grid_multiple: .*more than the .* that fit in memory",
        ),
    ],
)
def test_bma_options_are_checked(options, says):
    # delta = true was read as δ = 1: Kosovo's median 4,618 instead of 12,595
    with pytest.raises(EstimInputError, match=says):
        bma_posterior(_kosovo_data(), **options)
    with pytest.raises(EstimInputError, match=says):
        FAMILIES["lists_bma"].exact(_kosovo_data(), {}, np.random.default_rng(0), 10, 1, **options)


def test_bma_numbers_of_either_type_are_read():
    assert bma_posterior(_kosovo_data(), delta=1).delta == 1.0
    a = bma_posterior(_kosovo_data(), delta=1 / 16, grid_multiple=3)
    b = bma_posterior(_kosovo_data(), delta=1 / 16, grid_multiple=3.0)
    assert a.median == b.median


@pytest.mark.parametrize(
    ("classes", "shown"),
    [(True, "true"), ("3", "'3'"), (2.5, "2.5"), (1, "1"), (10**6, "1000000")],
)
def test_latent_class_classes_must_be_a_whole_number(classes, shown):
    with pytest.raises(
        EstimInputError, match=rf"\[options\] classes: .*a whole number in \[2, 500\], got {shown}"
    ):
        build_latent_class(_kosovo_data(), classes=classes)
    with pytest.raises(EstimInputError, match=r"\[options\] classes"):
        FAMILIES["lists_latent_class"].build(_kosovo_data(), {}, classes=classes)


def test_latent_class_builds_with_a_whole_float():
    assert len(build_latent_class(_kosovo_data(), classes=3.0).coords["class"]) == 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "true"), ("2", "'2'"), ("abc", "'abc'"), (0, "0"), (3, "3"), (float("nan"), "nan")],
)
def test_shrinkage_expected_pairs_must_be_a_number_in_range(value, shown):
    # "2" was read as 2.0 by float() and true as 1.0; "abc" ended in a ValueError
    data = history_data(SMALL, occasions=["A", "B", "C"], count="n")
    message = rf"\[options\] expected_pairs: .*of the 3 pairs.*a number in \(0, 3\), got {shown}"
    with pytest.raises(EstimInputError, match=message):
        build_shrinkage(data, expected_pairs=value)
    with pytest.raises(EstimInputError, match=message):
        FAMILIES["lists_shrinkage"].build(data, {}, expected_pairs=value)


# --------------------------------------------------------------------------------------------------------------
# 3. Counts the fit cannot handle


def test_a_numerical_breakdown_of_the_stepwise_fit_is_no_estimate():
    # two cells of 5e18 people (held by the dataset, past the table's own check) ended in "internal error:
    # LinAlgError: SVD did not converge" (exit 1)
    data = _kosovo_data()
    counts = data["history_count"].values.astype(np.int64)
    counts[0, [1, 2]] = 5 * 10**18
    huge = data.assign(history_count=(data["history_count"].dims, counts))
    with np.errstate(all="ignore"):
        fit = FAMILIES["lists_stepwise"].mle(huge)
    assert not fit.converged and np.isnan(fit.n_hat)
    assert "failed numerically (LinAlgError" in fit.message
    assert "interactions" in fit.extra


# --------------------------------------------------------------------------------------------------------------
# A patterns table split by a column it does not declare: named, and no covariates advised (the lists take none)


def test_a_patterns_table_split_by_an_undeclared_region_names_it_without_covariates():
    table = _kosovo()
    by_region = pd.concat(
        [table.assign(region=r, Freq=table["Freq"] // 3 + r) for r in (1, 2, 3)], ignore_index=True
    )
    fields = _fields(layout="patterns", count="Freq", lists=tuple(KOSOVO))
    with pytest.raises(EstimInputError) as e:
        LISTS.from_benchmark(by_region, fields)
    message = str(e.value)
    assert message == (
        "column 'region', rows 1 and 16: the same history, with 1 and 2 in 'region': the table holds one "
        "table of counts per value of 'region'; column 'region' is not declared: fit each value's rows as a "
        "table of its own, or add up the counts over it (one row per history) and leave it out of the file"
    )
    # each region's rows on their own are read
    one = LISTS.from_benchmark(by_region[by_region["region"] == 2].drop(columns="region"), fields)
    assert int(one["history_count"].sum()) == int(
        by_region.loc[by_region["region"] == 2, "Freq"].sum()
    )
