"""A user's file that is not the table its spec says, found by a probe: once read with exit 0 and a wrong N̂
(one row per record under a repeated identifier), or refused in the reader's words (a title or comment line
above the header: "Length of header or names does not match …"; Parquet bytes in a .csv: "not valid UTF-8";
a DataFrame with two columns of one name: NotImplementedError). Each is now an error naming the file, the line
or column, and what to do.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.run.data import load_data, read_table, table_data
from estim.run.spec import read_spec

NETHERLANDS = "nbcap,freq\n1,1645\n2,183\n3,37\n4,13\n5,1\n6,1\n"


@pytest.mark.parametrize(
    ("above", "what"),
    [("Netherlands data 1995", "a title or a comment"), ("# my data", "a comment")],
)
def test_a_line_above_the_header_is_named(tmp_path: Path, above: str, what: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"{above}\n{NETHERLANDS}", encoding="utf-8")
    with pytest.raises(EstimInputError) as e:
        read_table(path)
    message = str(e.value)
    assert message.startswith(f"{path}: line 1 ({above!r}) has 1 field(s) and line 2 has 2")
    assert f"looks like {what} above the header" in message
    assert "Length of header" not in message


def test_a_row_too_long_is_still_the_readers_error(tmp_path: Path) -> None:
    """The first line is the header when most lines are as long as it: a long row is no title above it."""
    path = tmp_path / "d.csv"
    path.write_text("nbcap,freq\n1,1645,9\n2,183\n3,37\n", encoding="utf-8")
    with pytest.raises(EstimInputError, match="not a well-formed CSV file"):
        read_table(path)


def test_parquet_or_a_workbook_named_csv_is_said_to_be_one(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"nbcap": [1, 2], "freq": [1645, 183]}).to_parquet(path)
    with pytest.raises(EstimInputError, match=r"d\.csv: the file is a Parquet file, not CSV text"):
        read_table(path)
    with zipfile.ZipFile(path, "w") as z:  # an .xlsx is a ZIP archive
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(EstimInputError, match=r"the file is a ZIP archive .*'CSV UTF-8'"):
        read_table(path)


def test_a_dataframe_with_a_repeated_column_name_is_refused() -> None:
    """Before: NotImplementedError from pandas."""
    table = pd.DataFrame([[1, 0, 1], [1, 1, 0], [0, 1, 1]], columns=["A", "B", "A"])
    with pytest.raises(EstimInputError, match=r"table: column name\(s\) 'A' appear more than once"):
        table_data(table, "Mt", layout="individuals", occasions=["A", "B"])


def test_a_spec_on_a_file_of_records_is_refused_naming_the_file(tmp_path: Path) -> None:
    """The probe's u_longid: 20 of the 30 people on both lists on two rows each: N̂ 630 (exit 0), where
    Lincoln–Petersen on the people is 90 · 70 / 30 = 210."""
    rows = ["person_id,A,B"]
    rows += [f"P{i},1,0" for i in range(60)] + [f"Q{i},0,1" for i in range(40)]
    rows += [f"R{i},1,1" for i in range(10)] + [
        f"S{i},{a},{1 - a}" for i in range(20) for a in (1, 0)
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "s.toml").write_text(
        'family = "Mt"\nseed = 1\n[data]\nfile = "d.csv"\nlayout = "individuals"\noccasions = ["A", "B"]\n',
        encoding="utf-8",
    )
    with pytest.raises(EstimInputError) as e:
        load_data(read_spec(tmp_path / "s.toml"))
    message = str(e.value)
    assert "d.csv: column 'person_id', rows 111 and 112: both 'S0'" in message
    assert "20 values" in message and "one row per person" in message
