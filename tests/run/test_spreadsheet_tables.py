"""What spreadsheets put into a user's table that is not data: a totals row, thousands separators and decimal
commas. Each passed every check of the values and changed the estimate with exit 0; now each is refused,
naming the file, the row or column, and what to do."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.registry import load_all
from estim.paths import REPO_ROOT
from estim.run.data import read_table, table_data

EXAMPLE = REPO_ROOT / "examples" / "own_file" / "apprehended.csv"
PEOPLE = {"layout": "individuals", "times_seen": "times_apprehended"}
KOSOVO = REPO_ROOT / "data" / "benchmarks" / "kosovo_4lists.csv"
LISTS = {"layout": "patterns", "count": "Freq", "occasions": ["EXH", "ABA", "OSCE", "HRW"]}


def _n_hat(path, family="ztpoisson", **fields) -> float:
    return load_all()[family].mle(table_data(path, family, **fields)).n_hat


def _with_last_line(tmp_path, source, line: str, name="t.csv"):
    path = tmp_path / name
    path.write_text(source.read_text().rstrip("\n") + "\n" + line + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "says"),
    [
        # before: one more person, seen 1,375 times: N-hat 1,237 instead of 2,631, exit 0
        ("Total,1375,,,", "row 1110 looks like a totals row (its first cell reads 'Total')"),
        ("TOTAL:,1375,,,", "its first cell reads 'TOTAL:'"),
        ("Итого,1375,,,", "its first cell reads 'Итого'"),
        # no label: the sum of the rows above, with the person's cell empty
        (",1440,,,", "its 'times_apprehended' (1440) is the sum of the rows above and its 'person' is empty"),
    ],
)  # fmt: skip
def test_a_totals_row_under_one_row_per_person_is_refused(tmp_path, line, says):
    path = _with_last_line(tmp_path, EXAMPLE, line)
    with pytest.raises(EstimInputError) as err:
        table_data(path, "ztpoisson", **PEOPLE)
    assert str(path) in str(err.value) and says in str(err.value)
    assert "delete the totals row" in str(err.value)


def test_a_totals_row_under_a_patterns_table_is_refused(tmp_path):
    for line, says in [("Total,,,,4400", "'Total'"), (",,,,4400", "'Freq' (4400) is the sum")]:
        with pytest.raises(
            EstimInputError, match=f"row 16 looks like a totals row.*{re.escape(says)}"
        ):
            table_data(_with_last_line(tmp_path, KOSOVO, line), "M0", **LISTS)


def test_total_as_a_value_elsewhere_and_a_last_row_that_is_data_pass(tmp_path):
    table = pd.read_csv(EXAMPLE)
    table.loc[3, "region"] = "total"  # a category's level, not the row's label
    table.to_csv(path := tmp_path / "t.csv", index=False)
    assert _n_hat(path, **PEOPLE) > 0
    # a last row with every cell filled is data, whatever its count
    path = _with_last_line(tmp_path, KOSOVO, "1,1,1,1,5", "k.csv")
    with pytest.raises(
        EstimInputError, match="same history"
    ):  # the family's own rule, not a totals row
        table_data(path, "M0", **LISTS)


def test_thousands_separators_in_a_semicolon_file_are_refused(tmp_path):
    path = tmp_path / "f.csv"
    # before: 2.000 (two thousand, in a European spreadsheet) read as 2: N-hat 276 with exit 0
    path.write_text("nbcap;freq\n1;2.000\n2;183\n3;37\n4;13\n5;1\n6;1\n")
    fields = {"layout": "frequencies", "times_seen": "nbcap", "count": "freq"}
    with pytest.raises(EstimInputError) as err:
        table_data(path, "ztpoisson", **fields)
    message = str(err.value)
    assert f"{path}: column 'freq', row 1: '2.000'" in message and "2000" in message
    # the same counts without separators read as they are
    path.write_text("nbcap;freq\n1;2000\n2;183\n3;37\n4;13\n5;1\n6;1\n")
    assert _n_hat(path, **fields) > 2000
    # a column whose dots are decimal points (1.5) says so, and passes
    path.write_text("k;n;w\n1;20;1.500\n2;8;2.5\n3;2;1.250\n")
    assert read_table(path)["w"].tolist() == [1.5, 2.5, 1.25]


@pytest.mark.parametrize("sep", [";", ","])
def test_a_covariate_with_decimal_commas_is_refused_not_made_categorical(tmp_path, sep):
    table = pd.read_csv(EXAMPLE)
    groups = pd.cut(table["age"], [0, 25, 40, 200], labels=["20,5", "32,5", "55,5"])
    table["age"] = groups.astype(str)
    table.to_csv(path := tmp_path / "t.csv", sep=sep, index=False)
    fields = {**PEOPLE, "formula": "sex + age + region"}
    # before: age read as text, so categorical with three levels: N-hat 2,903 instead of 2,890, exit 0
    with pytest.raises(EstimInputError) as err:
        table_data(path, "ztpoisson", **fields)
    message = str(err.value)
    assert "column 'age', row 1: '32,5' is a number written with a decimal comma" in message
    assert "(32.5)" in message and "C(age)" in message
    # declared categorical, the labels are labels
    assert _n_hat(path, **{**PEOPLE, "formula": "sex + C(age) + region"}) > 0


def test_excel_s_separator_line_above_the_header_is_named(tmp_path):
    # before: "column 2 has values but no name in the header line", which did not say why
    path = tmp_path / "t.csv"
    path.write_text("sep=,\n" + KOSOVO.read_text())
    with pytest.raises(EstimInputError, match=r"line 1 is 'sep=,', Excel's note of the separator"):
        read_table(path)


def test_two_byte_order_marks_are_read_as_one(tmp_path):
    # before: "no column 'Freq'; it has \ufeffEXH, …", the invisible mark making the names look the same
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + KOSOVO.read_bytes())
    assert _n_hat(path, "lists_stepwise", **LISTS) == pytest.approx(
        _n_hat(KOSOVO, "lists_stepwise", **LISTS)
    )
