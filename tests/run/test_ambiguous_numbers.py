"""A count written like ``2.000`` in a user's table: 2,000 people with a European thousands separator, or 2 with
a decimal point? Before, a comma- or tab-separated file read it as 2.0 and every family fitted 2 people with
exit 0 (the Dutch immigrants' f_1 = 2.000: N-hat 276 instead of 9,712; the Kosovo lists' 306 written 3.000:
N-hat 9,334 instead of 10,805). Now a column that must hold whole numbers (``count``, ``times_seen``,
``trials_column``) refuses a value with a dot before groups of three digits, or grouped by commas or spaces,
naming the file, row, column, value and both readings; ``2.0`` and ``3.00`` (no thousands separator groups
fewer than three digits) still read as 2 and 3, and a covariate's ``1.500`` is still 1.5."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.paths import REPO_ROOT
from estim.run.data import data_hash, read_table, table_data

FREQUENCIES = "nbcap,freq\n1,{f1}\n2,183\n3,37\n4,13\n5,1\n6,1\n"
FK = {"layout": "frequencies", "times_seen": "nbcap", "count": "freq"}
KOSOVO = REPO_ROOT / "data" / "benchmarks" / "kosovo_4lists.csv"
LISTS = {"layout": "patterns", "count": "Freq", "occasions": ["EXH", "ABA", "OSCE", "HRW"]}
PEOPLE = REPO_ROOT / "examples" / "own_file" / "apprehended.csv"
TRIALS = "k,f,nights\n1,2000,6\n2,183,6\n3,37,6\n4,13,6\n1,50,{t}\n2,10,3\n"


def _refusal(path, family, **fields) -> str:
    with pytest.raises(EstimInputError) as err:
        table_data(path, family, **fields)
    return str(err.value)


def _kosovo_with(tmp_path, old: str, new: str, name="k.csv"):
    path = tmp_path / name
    text = KOSOVO.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("family", ["ztpoisson", "ztbinomial", "Mh_poisson2"])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_frequency_written_with_a_dot_before_three_digits_is_refused(tmp_path, family, sep):
    path = tmp_path / ("f.tsv" if sep == "\t" else "f.csv")
    path.write_text(FREQUENCIES.format(f1="2.000").replace(",", sep))
    extra = {"ztbinomial": {"trials": 6}, "Mh_poisson2": {"occasions": 6}}.get(family, {})
    message = _refusal(path, family, **FK, **extra)
    assert (
        f"{path}: column 'freq', row 1: '2.000' may be 2000 written with thousands separators"
        in message
    )
    assert "or 2 with a decimal point" in message and "[data] count" in message
    # the same table written without the separator reads
    path.write_text(FREQUENCIES.format(f1="2000").replace(",", sep))
    observed = table_data(path, family, **FK, **extra)
    assert (
        float(observed["history_count" if family == "Mh_poisson2" else "frequency"].sum()) == 2235
    )


@pytest.mark.parametrize("family", ["M0", "lists_stepwise"])
def test_a_list_or_pattern_count_written_with_a_dot_is_refused(tmp_path, family):
    # before: 306 people on HRW alone written 3.000 read as 3: N-hat 9,334 instead of 10,805 (M0)
    path = _kosovo_with(tmp_path, "0,0,0,1,306", "0,0,0,1,3.000")
    message = _refusal(path, family, **LISTS)
    assert (
        f"{path}: column 'Freq', row 4: '3.000' may be 3000" in message and "or 3 with" in message
    )


def test_times_seen_of_one_row_per_person_written_with_a_dot_is_refused(tmp_path):
    table = pd.read_csv(PEOPLE, dtype=str)
    table.loc[6, "times_apprehended"] = "2.000"  # before: read as 2, exit 0
    table.to_csv(path := tmp_path / "people.csv", index=False)
    fields = {"layout": "individuals", "times_seen": "times_apprehended"}
    message = _refusal(path, "ztpoisson", **fields)
    assert "column 'times_apprehended', row 7: '2.000' may be 2000" in message
    assert "[data] times_seen" in message


def test_a_trials_column_written_with_a_dot_is_refused(tmp_path):
    (path := tmp_path / "t.csv").write_text(TRIALS.format(t="3.000"))  # before: read as 3, exit 0
    fields = {"layout": "frequencies", "times_seen": "k", "count": "f", "trials_column": "nights"}
    message = _refusal(path, "ztbinomial", **fields)
    assert (
        "column 'nights', row 5: '3.000' may be 3000" in message
        and "[data] trials_column" in message
    )
    path.write_text(TRIALS.format(t="3"))
    assert table_data(path, "ztbinomial", **fields)["frequency"].sum() > 0


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("12.500", "'12.500' may be 12500 written with thousands separators (as European spreadsheets "
                   "write it) or 12.5 with a decimal point, not a whole number"),
        ("1.234.567", "'1.234.567' may be 1234567 written with thousands separators, or a mistake"),
        ('"2,000"', "'2,000' may be 2000 written with thousands separators or 2 with a decimal comma"),
        ("2\u00a0000", "'2\\xa0000' may be 2000 written with thousands separators (spaces"),
        ("2\u202f000", "'2\\u202f000' may be 2000"),
        ("2'000", "\"2'000\" may be 2000"),
    ],
)  # fmt: skip
def test_each_way_of_grouping_thousands_names_its_readings(tmp_path, value, says):
    (path := tmp_path / "f.csv").write_text(FREQUENCIES.format(f1=value), encoding="utf-8")
    message = _refusal(path, "ztpoisson", **FK)
    assert f"{path}: column 'freq', row 1: {says}" in message
    assert "save the column without thousands separators" in message


def test_a_semicolon_file_with_a_decimal_elsewhere_in_the_count_column_is_refused(tmp_path):
    # 1.5 in the column made the semicolon rule take its dots for decimal points: 2.000 then read as 2
    (path := tmp_path / "f.csv").write_text(
        FREQUENCIES.format(f1="2.000").replace(",", ";").replace("6;1\n", "6;1.5\n")
    )
    assert "row 1: '2.000' may be 2000" in _refusal(path, "ztpoisson", **FK)


def test_a_semicolon_file_with_a_decimal_comma_count_names_both_readings(tmp_path):
    (path := tmp_path / "f.csv").write_text(
        FREQUENCIES.format(f1="2,000").replace(",", ";").replace("2;000", "2,000")
    )
    assert "'2,000' may be 2000 written with thousands separators or 2 with a decimal comma" in (
        _refusal(path, "ztpoisson", **FK)
    )


@pytest.mark.parametrize("value", ["2000.0", "2000.00", "2e3", " 2000 ", "+2000", "2000.0000"])
def test_unambiguous_ways_of_writing_a_whole_count_read_as_it(tmp_path, value):
    (plain := tmp_path / "plain.csv").write_text(FREQUENCIES.format(f1="2000"))
    (path := tmp_path / "f.csv").write_text(FREQUENCIES.format(f1=value))
    assert data_hash(table_data(path, "ztpoisson", **FK)) == data_hash(
        table_data(plain, "ztpoisson", **FK)
    )


def test_a_count_with_decimals_is_still_refused_as_not_whole(tmp_path):
    (path := tmp_path / "f.csv").write_text(FREQUENCIES.format(f1="2.5"))
    assert re.search(
        r"column 'freq', row 1: 2\.5 is not a whole number", _refusal(path, "ztpoisson", **FK)
    )
    (path := tmp_path / "g.csv").write_text(
        FREQUENCIES.format(f1="2.0")
    )  # 2.0: two people, not ambiguous
    assert float(table_data(path, "ztpoisson", **FK)["frequency"].sum()) == 237


def test_a_covariate_written_with_three_decimals_is_a_decimal(tmp_path):
    table = pd.read_csv(PEOPLE, dtype=str)
    table["weight"] = ["1.500", "2.000", "0.750"] * (len(table) // 3) + ["1.250"] * (len(table) % 3)
    table.to_csv(path := tmp_path / "people.csv", index=False)
    assert read_table(path)["weight"].iloc[:3].tolist() == [1.5, 2.0, 0.75]
    fields = {"layout": "individuals", "times_seen": "times_apprehended", "formula": "sex + weight"}
    assert sorted(set(table_data(path, "ztpoisson", **fields)["weight"].values)) == [
        0.75,
        1.25,
        1.5,
        2.0,
    ]


def test_a_dataframe_or_parquet_with_count_text_is_refused_and_float_counts_pass(tmp_path):
    table = pd.DataFrame({"nbcap": [1, 2, 3], "freq": ["2.000", "183", "37"]})
    message = _refusal(table, "ztpoisson", **FK)
    assert message.startswith("table: column 'freq', row 1: '2.000' may be 2000")
    # a Parquet file's text column: before, read as 2 with exit 0
    table.to_parquet(path := tmp_path / "f.parquet")
    assert _refusal(path, "ztpoisson", **FK).startswith(
        f"{path}: column 'freq', row 1: '2.000' may be"
    )
    table["freq"] = [2.0, 183.0, 37.0]
    assert float(table_data(table, "ztpoisson", **FK)["frequency"].sum()) == 222


def test_shipped_tables_still_read():
    for name, family, fields in [
        ("kosovo_4lists.csv", "M0", LISTS),
        ("hare_freq.csv", "ztpoisson", FK),
        ("netherlands_immigrants_freq.csv", "ztpoisson", FK),
        (
            "uk_modern_slavery_5lists.csv",
            "lists_stepwise",
            {"layout": "patterns", "count": "count", "lists": ["LA", "NG", "PFNCA", "GO", "GP"]},
        ),
    ]:
        assert table_data(REPO_ROOT / "data" / "benchmarks" / name, family, **fields) is not None
