"""Record folders as researchers hand them over: each case either reads exactly what the same data read in a
clean layout, or is refused with file, row, column and rule. None may give a number with rows lost."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from records_fixtures import CLEAN_CSV, set_cell, write_dataset

from estim.errors import InvalidRecords
from estim.records import load_records, validate_file, validate_path
from estim.statistics import data_summary

KEY = b"test-key"
AP = CLEAN_CSV["apprehensions"]
TOTALS = CLEAN_CSV["apprehension_totals"]
REGISTERS = CLEAN_CSV["registers"]
CR = CLEAN_CSV["checkpoint_records"]


def where(report) -> set[tuple[str, int | None, str | None, str]]:
    return {(Path(v.file).name, v.row, v.column, v.rule) for v in report.violations}


def same_tables(a: Path, b: Path) -> None:
    """The two folders load to identical tables."""
    left, right = load_records(a, key=KEY).tables(), load_records(b, key=KEY).tables()
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


# ------------------------------------------------------------------------------------ line endings


@pytest.mark.parametrize("table", ["apprehension_totals", "registers", "apprehensions"])
def test_classic_mac_line_endings_read_every_row(tmp_path, table):
    """A file saved with lone CR line endings (Excel's "CSV (Macintosh)") was one line: a header and no
    rows. For the optional tables that was valid, and the monthly totals or the registers vanished."""
    clean = write_dataset(tmp_path / "clean")
    mac = write_dataset(tmp_path / "mac")
    (mac / f"{table}.csv").write_bytes("\r".join(CLEAN_CSV[table]).encode() + b"\r")
    assert validate_path(mac).ok
    same_tables(mac, clean)
    assert len(load_records(mac, key=KEY).tables()[table]) == len(CLEAN_CSV[table]) - 1


def test_classic_mac_line_endings_keep_line_numbers(tmp_path):
    folder = write_dataset(tmp_path / "r")
    lines = set_cell(TOTALS, 3, "apprehensions", "-2")
    (folder / "apprehension_totals.csv").write_bytes("\r".join(lines).encode())
    report = validate_path(folder)
    assert where(report) == {("apprehension_totals.csv", 3, "apprehensions", "minimum")}


def test_lone_cr_after_the_header_does_not_hide_the_first_row(tmp_path):
    """The header was read up to the first LF, so a row after a lone CR went with it, unread."""
    clean = write_dataset(tmp_path / "clean")
    odd = write_dataset(tmp_path / "odd")
    text = TOTALS[0] + "\r" + "\n".join(TOTALS[1:]) + "\n"
    (odd / "apprehension_totals.csv").write_bytes(text.encode())
    assert validate_path(odd).ok
    same_tables(odd, clean)
    table = load_records(odd, key=KEY).apprehension_totals
    assert int(table["apprehensions"].sum()) == 4 + 2 + 0  # by hand, from TOTALS


def test_crlf_bom_and_quoted_commas_read_as_the_clean_file(tmp_path):
    clean = write_dataset(tmp_path / "clean")
    excel = write_dataset(tmp_path / "excel")
    for name in ("policy_events", "sections", "apprehensions"):
        text = "\r\n".join(CLEAN_CSV[name]) + "\r\n\r\n"
        (excel / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    same_tables(excel, clean)


@pytest.mark.parametrize("line", ["sep=,", "sep=;"])
def test_excels_delimiter_line_is_refused_as_such(tmp_path, line):
    """'sep=,' above the header was read as a header of two columns 'sep=' and '': every column missing
    and every row of the wrong width, without a word about the line."""
    folder = write_dataset(tmp_path / "r", checkpoints=[line, *CLEAN_CSV["checkpoints"]])
    report = validate_path(folder)
    assert where(report) == {("checkpoints.csv", 1, None, "delimiter")}
    assert "Excel names a file's delimiter" in report.violations[0].message


# ----------------------------------------------------------------------------------------------- quotes

EVENTS = CLEAN_CSV["policy_events"]
"""Line 2 E1 with a quoted description, line 3 E2 unquoted."""


def test_a_quote_never_closed_is_refused_not_read_as_one_cell(tmp_path):
    """E1's source opens a quote never closed: the csv module read E2's line as the rest of that cell,
    and the folder validated with one policy event of two."""
    lines = [EVENTS[0], EVENTS[1].replace(",eurasian treaty", ',"eurasian treaty'), EVENTS[2]]
    report = validate_path(write_dataset(tmp_path / "r", policy_events=lines))
    assert where(report) == {("policy_events.csv", 2, "source", "unclosed_quote")}
    assert "to line 3" in report.violations[0].message


def test_two_quotes_never_closed_do_not_merge_the_lines_between(tmp_path):
    """Two cells each opening a quote never closed: quote parity paired them, so the fast reader read the
    three lines as one event of six cells, the middle one inside a cell, and the file validated."""
    lines = [
        EVENTS[0],
        'E1,customs_union,2010-07-01,*,Customs union,"eurasian treaty',
        "E2,joint_checkpoint_control,2012-03-01,omsk,Joint checks at Isilkul,assumed",
        'E3,other,2013-01-01,omsk,Other,"assumed',
    ]
    report = validate_path(write_dataset(tmp_path / "r", policy_events=lines))
    assert where(report) == {("policy_events.csv", 2, "source", "unclosed_quote")}


def _many_apprehensions(n: int) -> list[str]:
    return [AP[0]] + [
        f"B{i},2010-01-05,omsk,PK{i:010d},KAZ,true,to_russia,no_documents,patrol,border_resident"
        for i in range(n)
    ]


def test_a_quote_never_closed_in_a_long_file_is_reported_not_raised(tmp_path):
    """The rest of the file in one cell passed the csv module's limit of 131,072 characters: 'internal
    error: field larger than field limit', exit 1, instead of the line."""
    lines = _many_apprehensions(3000)
    lines[2] = lines[2].replace(",KAZ,", ',"KAZ,')
    report = validate_path(write_dataset(tmp_path / "r", apprehensions=lines))
    assert where(report) == {("apprehensions.csv", 3, "citizenship", "unclosed_quote")}
    header = _many_apprehensions(3000)
    header[0] = '"' + header[0]
    report = validate_path(write_dataset(tmp_path / "h", apprehensions=header))
    assert ("apprehensions.csv", 1, None, "unclosed_quote") in where(report)


def test_quotes_inside_unquoted_cells_are_text(tmp_path):
    """A quote inside an unquoted cell (an inch sign) is text to CSV readers; two of them, with a quoted cell
    between, upset quote parity: lines 2-4 were one record of 6 fields (rule field_count), left unread."""
    lines = [
        CLEAN_CSV["checkpoints"][0],
        'OMS-1,omsk,Isilkul 5",road,assumed',
        'OMS-2,omsk,Omsk airport,air,"assumed, by hand"',
        'ORE-1,orenburg,Orenburg 3",road,assumed',
    ]
    folder = write_dataset(tmp_path / "r", checkpoints=lines)
    assert validate_path(folder).ok
    names = load_records(folder, key=KEY).checkpoints["name"].tolist()
    assert names == ['Isilkul 5"', "Omsk airport", 'Orenburg 3"']


# ------------------------------------------------------------------------------- files that are not text


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "rule", "said"),
    [
        (_zip, "unreadable", "Excel workbook (.xlsx)"),
        (gzip.compress, "unreadable", "decompress it"),
        (lambda data: data.decode().encode("utf-16-le"), "encoding", "UTF-16"),
        (lambda data: data.decode().encode("utf-16-be"), "encoding", "UTF-16"),
    ],
)
def test_a_file_that_is_not_text_is_refused_saying_what_it_is(tmp_path, make, rule, said):
    """A workbook or an archive named .csv, or UTF-16 without a byte-order mark, was read as one garbled
    header (its bytes printed to the terminal) with every column missing."""
    folder = write_dataset(tmp_path / "r")
    data = ("\n".join(CLEAN_CSV["checkpoints"]) + "\n").encode()
    (folder / "checkpoints.csv").write_bytes(make(data))
    report = validate_path(folder)
    assert where(report) == {("checkpoints.csv", None, None, rule)}
    assert said in report.violations[0].message


def test_a_parquet_file_named_csv_is_refused_saying_so(tmp_path):
    folder = write_dataset(tmp_path / "r")
    frame = pd.read_csv(io.StringIO("\n".join(CLEAN_CSV["checkpoints"])), dtype=str)
    frame.to_parquet(folder / "checkpoints.csv")
    report = validate_path(folder)
    assert where(report) == {("checkpoints.csv", None, None, "unreadable")}
    assert "name it .parquet" in report.violations[0].message


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("cp1251", "Windows-1251 (cp1251)"),
        ("koi8_r", "KOI8-R"),
        ("cp866", "DOS code page 866"),  # Excel's "CSV (MS-DOS)"
    ],
)
def test_an_8_bit_cyrillic_file_is_refused_naming_its_encoding(tmp_path, codec, name):
    """The hint read every such file as Windows-1251: KOI8-R's Исилькуль as 'йУЙМШЛХМШ'."""
    folder = write_dataset(tmp_path / "r")
    lines = set_cell(CLEAN_CSV["checkpoints"], 2, "name", "Исилькуль")
    (folder / "checkpoints.csv").write_bytes(("\n".join(lines) + "\n").encode(codec))
    report = validate_path(folder)
    assert where(report) == {("checkpoints.csv", 2, "name", "encoding")}
    assert f"reads as {name}" in report.violations[0].message
    assert "'Исилькуль'" in report.violations[0].message


def test_a_count_in_other_digits_is_not_called_too_large(tmp_path):
    lines = set_cell(CR, 2, "crossings_citizens", "\uff11\uff12")  # full-width 12
    report = validate_path(write_dataset(tmp_path / "r", checkpoint_records=lines))
    assert where(report) == {("checkpoint_records.csv", 2, "crossings_citizens", "type")}
    assert "is not a whole number" in report.violations[0].message


# ------------------------------------------------------------------------------------ files in a folder


@pytest.mark.parametrize(
    "name", ["apprehension_totals.xlsx", "apprehension_totals.txt", "registers.csv.gz"]
)
def test_a_table_in_a_format_estim_does_not_read_is_refused(tmp_path, name):
    """Was ignored: the folder validated, and the sections behind the totals showed 0 apprehensions."""
    table = name.split(".")[0]
    folder = write_dataset(tmp_path / "r", **{table: None})
    data = ("\n".join(CLEAN_CSV[table]) + "\n").encode()
    (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    report = validate_path(folder)
    assert where(report) == {(name, None, None, "unread_file")}
    assert f"save it as {table}.csv" in report.violations[0].message
    with pytest.raises(InvalidRecords):
        load_records(folder, key=KEY)


@pytest.mark.parametrize(
    "name", ["apprehension_totals", "registers", "Registers", "registers.parquet"]
)
def test_a_table_kept_as_a_folder_of_files_is_refused(tmp_path, name):
    """apprehension_totals/ holding a file per year was skipped: the folder validated, and the sections
    behind the totals had no apprehension data; registers/ likewise left every register out, and so did
    registers.parquet/, a Parquet dataset of part files as Spark and Dask write it."""
    table = name.split(".")[0].lower()
    folder = write_dataset(tmp_path / "r", **{table: None})
    (folder / name).mkdir()
    (folder / name / "part-0.csv").write_text("\n".join(CLEAN_CSV[table]) + "\n")
    report = validate_path(folder)
    assert where(report) == {(name, None, None, "unread_file")}
    assert f"join the files into {table}.csv" in report.violations[0].message


def test_a_pandas_index_in_parquet_is_no_column(tmp_path):
    """pandas writes the index of a filtered frame as a column '__index_level_0__': it is the frame's row
    labels (pandas reads it back as the index), and was refused as an unexpected column."""
    clean = write_dataset(tmp_path / "clean")
    folder = write_dataset(tmp_path / "r", apprehensions=None)
    frame = pd.read_csv(io.StringIO("\n".join(AP)), dtype=str, keep_default_na=False)
    frame.index = [10, 11, 12, 13]  # as after filtering rows
    frame.to_parquet(folder / "apprehensions.parquet")
    assert (
        "__index_level_0__" in pq.ParquetFile(folder / "apprehensions.parquet").schema_arrow.names
    )
    assert validate_path(folder).ok
    same_tables(folder, clean)


def test_a_spreadsheet_beside_its_csv_export_is_fine(tmp_path):
    folder = write_dataset(tmp_path / "r")
    (folder / "apprehension_totals.xlsx").write_bytes(b"PK\x03\x04 not read")
    (folder / "notes.txt").write_text("not a table")
    assert validate_path(folder).ok


# ------------------------------------------------------------------------------------------ person keys


@pytest.mark.parametrize("placeholder", ["NA", "#N/A", "null", "None", "unknown", "-"])
def test_a_placeholder_person_key_is_refused(tmp_path, placeholder):
    """Two rows with person_key NA were one person apprehended twice: distinct people and the
    re-apprehension rate changed without a word."""
    lines = set_cell(set_cell(AP, 2, "person_key", placeholder), 5, "person_key", placeholder)
    report = validate_path(write_dataset(tmp_path / "r", apprehensions=lines))
    assert where(report) == {
        ("apprehensions.csv", 2, "person_key", "placeholder"),
        ("apprehensions.csv", 5, "person_key", "placeholder"),
    }
    assert repr(placeholder) in report.violations[0].message


def test_na_in_a_text_column_is_text(tmp_path):
    lines = set_cell(CLEAN_CSV["checkpoints"], 2, "name", "NA")
    assert validate_path(write_dataset(tmp_path / "r", checkpoints=lines)).ok


def test_person_keys_differing_only_in_case_are_refused(tmp_path):
    """PK0000000001 on line 2 and pk0000000001 on line 4 were two people (3 distinct in omsk, not 2)."""
    lines = set_cell(AP, 4, "person_key", "pk0000000001")
    folder = write_dataset(tmp_path / "r", apprehensions=lines)
    report = validate_path(folder)
    assert where(report) == {("apprehensions.csv", 4, "person_key", "key_case")}
    message = report.violations[0].message
    assert "line 2" in message and "pk0000000001" not in message.lower()  # personal data: not shown


def test_a_register_key_in_other_case_than_the_apprehension_key_is_refused(tmp_path):
    """The link between the register and the apprehension records was lost without a word."""
    lines = set_cell(REGISTERS, 2, "person_key", "pk0000000002")
    report = validate_path(write_dataset(tmp_path / "r", registers=lines))
    assert where(report) == {("registers.csv", 2, "person_key", "key_case")}
    assert "line 3 of" in report.violations[0].message and "apprehensions.csv" in (
        report.violations[0].message
    )


def test_the_same_key_in_the_same_case_in_two_tables_is_one_person(tmp_path):
    assert validate_path(write_dataset(tmp_path / "r")).ok  # PK0000000002 in both: fine


# ------------------------------------------------------------------------------------ checkpoint months


def _flows(checkpoint: str, *months: str, crossings: int = 100, wait: str = "20.0") -> list[str]:
    return [f"{checkpoint},{m},{crossings},{crossings},0,0,{wait}" for m in months]


def test_months_left_out_of_a_checkpoint_are_refused(tmp_path):
    """A checkpoint's rows deleted from the middle validated, and its section's land crossings were summed
    over the checkpoints that reported: fewer foreign crossings, a quieter month to the border model."""
    folder = write_dataset(tmp_path / "r", checkpoint_records=CR + _flows("OMS-1", "2010-05"))
    file = folder / "checkpoint_records.csv"
    gap = {("checkpoint_records.csv", 3, "month", "checkpoint_gap")}  # OMS-1 2010-02, next 2010-05
    assert where(validate_path(folder)) == gap
    assert where(validate_file(file)) == gap
    with pytest.raises(InvalidRecords, match="checkpoint_gap") as caught:
        load_records(folder, key=KEY)
    assert "'OMS-1' has no record for 2010-03 … 2010-04 (2 months)" in str(caught.value)
    from estim.cli import cli

    r = CliRunner().invoke(cli, ["validate", str(folder)])
    assert r.exit_code == 2
    assert f"{file}:3: column 'month': checkpoint_gap: checkpoint 'OMS-1'" in r.output
    # the advice for a closed checkpoint is one the validator accepts
    closed = (
        CR
        + _flows("OMS-1", "2010-03", "2010-04", crossings=0, wait="0")
        + _flows("OMS-1", "2010-05")
    )
    assert validate_path(write_dataset(tmp_path / "closed", checkpoint_records=closed)).ok


def test_a_checkpoint_opened_later_or_closed_earlier_has_no_gap(tmp_path):
    """Only a month missing between a checkpoint's first and last record is a gap, in any row order."""
    lines = [
        CR[0],
        *_flows("OMS-2", "2010-04", "2010-03"),  # opened in March, rows in any order
        *_flows("ORE-1", "2009-11", "2009-12"),  # closed after December
        *_flows("OMS-1", "2010-04", "2010-01", "2010-02", "2010-02"),  # no 2010-03; 02 repeated
    ]
    report = validate_path(write_dataset(tmp_path / "r", checkpoint_records=lines))
    assert where(report) == {
        ("checkpoint_records.csv", 8, "month", "checkpoint_gap"),  # the first row of 2010-02
        ("checkpoint_records.csv", 9, "checkpoint_id, month", "duplicate"),
    }
    assert "no record for 2010-03 between its records of 2010-02 and 2010-04" in str(report)


# -------------------------------------------------------------------------------------------- summary


def test_summary_says_unknown_not_zero_for_a_section_with_no_apprehension_data(tmp_path):
    """Kurgan has no individual records; without its totals the summary said 0 apprehensions."""
    records = load_records(write_dataset(tmp_path / "r", apprehension_totals=None), key=KEY)
    table = data_summary(records)
    assert pd.isna(table.at["kurgan", "apprehensions"])
    assert table.at["omsk", "apprehensions"] == 3  # by hand: A1-A3
    assert table.at["orenburg", "apprehensions"] == 1


def test_summary_counts_a_reported_zero_as_zero(tmp_path):
    lines = [TOTALS[0], "kurgan,2010-01,border_resident,patrol,0"]
    records = load_records(write_dataset(tmp_path / "r", apprehension_totals=lines), key=KEY)
    assert data_summary(records).at["kurgan", "apprehensions"] == 0
    records = load_records(write_dataset(tmp_path / "s"), key=KEY)
    assert data_summary(records).at["kurgan", "apprehensions"] == 6  # 4 + 2 + 0, by hand


@pytest.mark.parametrize(
    "name",
    [
        "apprehensions.to_kazakhstan.csv.gz",
        "apprehensions_2017.xlsx",
        "apprehensions-2017.csv.gz",
        "apprehensions",
        "apprehensions_2017",
    ],
)
def test_part_of_a_table_beside_its_own_file_is_refused(tmp_path, name):
    """The table split in two, by direction or year, with one part in apprehensions.csv: the other part was
    left out without a word (46 % of the shipped apprehensions, `validate` ok), as only a table with no file
    of its own was checked for one in another format or a folder."""
    folder = write_dataset(tmp_path / "r")
    data = ("\n".join(AP) + "\n").encode()
    if "." in name:
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    else:
        (folder / name).mkdir()
        (folder / name / "part-1.csv").write_bytes(data)
    report = validate_path(folder)
    assert where(report) == {(name, None, None, "unread_file")}
    assert "part of the apprehensions table" in report.violations[0].message
    assert "estim reads only apprehensions.csv" in report.violations[0].message


def test_a_folder_of_record_files_is_refused_and_notes_are_not(tmp_path):
    """2017/apprehensions.csv was skipped; a folder of other things, and notes named after a table
    (apprehensions.md), are no records."""
    folder = write_dataset(tmp_path / "r")
    (folder / "2017").mkdir()
    (folder / "2017" / "apprehensions.csv").write_text("\n".join(AP) + "\n")
    report = validate_path(folder)
    assert where(report) == {("2017", None, None, "unread_file")}
    assert "this folder holds record files (apprehensions.csv)" in report.violations[0].message
    clean = write_dataset(tmp_path / "clean")
    (clean / "notes").mkdir()
    (clean / "notes" / "sources.txt").write_text("where the files came from\n")
    (clean / "notes" / "sections_map.png").write_bytes(b"\x89PNG")
    (clean / "registers_notes.txt").write_text("how the registers were exported\n")
    (clean / "apprehensions.md").write_text("# how the apprehensions were exported\n")
    (clean / "registers_map.png").write_bytes(b"\x89PNG")
    # the table compressed beside it: a copy, as a spreadsheet it was exported from is
    (clean / "apprehensions.csv.gz").write_bytes(gzip.compress(("\n".join(AP) + "\n").encode()))
    assert validate_path(clean).ok


def _workbook(path, rows: int) -> None:
    """A minimal .xlsx whose first sheet states its dimension as Excel writes it (header + `rows` rows)."""
    import zipfile

    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:J{rows + 1}"/><sheetData/></worksheet>'
    )
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", sheet)


def test_a_same_named_file_with_other_rows_is_not_taken_for_a_copy(tmp_path):
    # apprehensions.xlsx or apprehensions.csv.gz beside apprehensions.csv was taken for a copy whatever it
    # held: a spreadsheet keeping 2017 beside the 2016 export lost its rows without a word
    records = len(AP) - 1
    same = write_dataset(tmp_path / "same")
    _workbook(same / "apprehensions.xlsx", records)
    (same / "apprehensions.csv.gz").write_bytes(gzip.compress(("\n".join(AP) + "\n\n").encode()))
    assert validate_path(same).ok
    for name in ("apprehensions.xlsx", "apprehensions.csv.gz"):
        folder = write_dataset(tmp_path / name.replace(".", "_"))
        if name.endswith(".xlsx"):
            _workbook(folder / name, records + 40)
        else:
            (folder / name).write_bytes(gzip.compress(("\n".join(AP[:2]) + "\n").encode()))
        report = validate_path(folder)
        assert where(report) == {(name, None, None, "unread_file")}, str(report)
        held = records + 40 if name.endswith(".xlsx") else 1
        assert f"it holds {held:,} rows and apprehensions.csv {records:,}" in str(report)
