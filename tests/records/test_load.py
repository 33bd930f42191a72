"""Loading records: typed tables in file order, absent optional tables empty, invalid data refused."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records_fixtures import CLEAN_CSV, set_cell, write_dataset

from estim.errors import EstimInputError, InvalidRecords
from estim.records import SCHEMAS, RecordSet, empty_frame, load_records
from estim.records.recordset import typed_columns

KEY = b"test-key"


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def _expected_dtypes(name: str) -> dict[str, str]:
    return {c: str(pd.api.types.pandas_dtype(t)) for c, t in typed_columns(SCHEMAS[name]).items()}


def test_load_clean_dataset(clean_dataset_dir):
    records = load_records(clean_dataset_dir, key=KEY)
    assert isinstance(records, RecordSet) and records.source == clean_dataset_dir
    for name, table in records.tables().items():
        assert _dtypes(table) == _expected_dtypes(name), name
        assert list(table.columns) == list(typed_columns(SCHEMAS[name]))
        assert len(table) == len(CLEAN_CSV[name]) - 1
    cr = records.checkpoint_records
    assert cr["month"].tolist() == [
        pd.Timestamp(m) for m in ("2010-01", "2010-02", "2010-01", "2010-01")
    ]
    assert cr["crossings_citizens"].tolist() == [12000, 11000, 4000, 25000]
    assert cr["mean_wait_minutes"].tolist() == [25.5, 30.0, 12.0, 45.25]
    ap = records.apprehensions
    assert ap["apprehension_id"].tolist() == ["A1", "A2", "A3", "A4"]  # file order
    assert ap["border_zone_resident"].tolist() == [True, False, True, False]  # true, false, TRUE, 0
    assert ap["date"].iloc[2] == pd.Timestamp("2010-02-03")
    assert records.sections["surveyed"].tolist() == [True, True, False]
    assert records.sections["length_km_source"].iloc[0] == "derived: 41 % of 7,512.8 km"
    assert records.policy_events["section_id"].tolist() == ["*", "omsk"]


def test_absent_optional_tables_are_empty_frames(tmp_path):
    folder = write_dataset(
        tmp_path / "r", apprehension_totals=None, registers=None, policy_events=None
    )
    records = load_records(folder, key=KEY)
    for name in ("apprehension_totals", "registers", "policy_events"):
        table = records.tables()[name]
        assert table.empty
        pd.testing.assert_frame_equal(table, empty_frame(SCHEMAS[name]))


def test_header_only_optional_table_loads_typed(tmp_path):
    folder = write_dataset(tmp_path / "r", registers=CLEAN_CSV["registers"][:1])
    registers = load_records(folder, key=KEY).registers
    assert registers.empty and _dtypes(registers) == _expected_dtypes("registers")


def test_invalid_records_raise_with_the_report(tmp_path):
    folder = write_dataset(
        tmp_path / "r",
        checkpoint_records=set_cell(CLEAN_CSV["checkpoint_records"], 4, "crossings_citizens", "-5"),
    )
    with pytest.raises(InvalidRecords) as caught:
        load_records(folder, key=KEY)
    report = caught.value.report
    assert [(v.row, v.column, v.rule) for v in report.violations] == [
        (4, "crossings_citizens", "minimum")
    ]
    assert f"{folder / 'checkpoint_records.csv'}:4:" in str(caught.value)


def test_bad_paths_are_input_errors(tmp_path, clean_dataset_dir):
    with pytest.raises(EstimInputError, match="no such folder"):
        load_records(tmp_path / "missing", key=KEY)
    with pytest.raises(EstimInputError, match="folder"):
        load_records(clean_dataset_dir / "sections.csv", key=KEY)


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    )


def test_load_writes_nothing(clean_dataset_dir):
    before = _listing(clean_dataset_dir)
    load_records(clean_dataset_dir, key=KEY, progress=True)
    assert _listing(clean_dataset_dir) == before


def test_progress_goes_to_stderr(clean_dataset_dir, capsys):
    load_records(clean_dataset_dir, key=KEY, progress=True)
    out = capsys.readouterr()
    assert out.out == ""


def test_parquet_dataset_loads_like_csv(clean_dataset_dir, tmp_path):
    from_csv = load_records(clean_dataset_dir, key=KEY)
    folder = tmp_path / "parquet"
    folder.mkdir()
    for name in SCHEMAS:
        text = (clean_dataset_dir / f"{name}.csv").read_bytes()
        # Arrow's own type inference: ints, floats, bools, dates
        table = pa_csv.read_csv(io.BytesIO(text))
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=2)  # several chunks
    from_parquet = load_records(folder, key=KEY)
    for name, table in from_csv.tables().items():
        pd.testing.assert_frame_equal(
            from_parquet.tables()[name], table, check_exact=True, obj=name
        )


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_table_round_trips_through_parquet_as_text(clean_dataset_dir, tmp_path, name):
    # Parquet holding every column as text is read like CSV
    text = (clean_dataset_dir / f"{name}.csv").read_bytes()
    width = len(CLEAN_CSV[name][0].split(","))
    options = pa_csv.ConvertOptions(
        column_types={c: pa.string() for c in CLEAN_CSV[name][0].split(",")[:width]}
    )
    folder = write_dataset(tmp_path / "r", **{name: None})
    pq.write_table(
        pa_csv.read_csv(io.BytesIO(text), convert_options=options), folder / f"{name}.parquet"
    )
    loaded = load_records(folder, key=KEY).tables()[name]
    pd.testing.assert_frame_equal(loaded, load_records(clean_dataset_dir, key=KEY).tables()[name])


# --------------------------------------------------------------------------------------------- property


counts = st.integers(min_value=0, max_value=20_000)  # within every plausible range of the counts


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(counts, counts, counts, counts), min_size=1, max_size=30),
    signed=st.booleans(),
)
def test_written_counts_load_unchanged(tmp_path_factory, rows, signed):
    folder = tmp_path_factory.mktemp("prop")
    lines = [CLEAN_CSV["checkpoint_records"][0]]
    for i, (a, b, c, d) in enumerate(rows):
        month = f"{2000 + i // 12}-{i % 12 + 1:02d}"
        plus = "+" if signed else ""
        lines.append(f"OMS-1,{month},{plus}{a},{b},{c},{d},1.5")
    write_dataset(folder, checkpoint_records=lines)
    cr = load_records(folder, key=KEY).checkpoint_records
    got = cr[
        ["crossings_citizens", "crossings_foreigners", "refusals_of_entry", "invalid_documents"]
    ]
    assert got.to_numpy().tolist() == [list(r) for r in rows]


free_text = st.text(alphabet=st.sampled_from(list('ab ,"\nЖ;\t')), min_size=1, max_size=12).filter(
    lambda s: s.strip() != "" or s != ""
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(free_text, min_size=1, max_size=8), bad_at=st.integers(min_value=0, max_value=7)
)
def test_free_text_round_trips_and_lines_stay_right(tmp_path_factory, texts, bad_at):
    """Commas, quotes and newlines in text cells: values come back unchanged, and a broken cell after them
    is reported on the line where its record starts."""
    folder = tmp_path_factory.mktemp("text")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CLEAN_CSV["policy_events"][0].split(","))
    start_lines = []
    line = 2
    for i, text in enumerate(texts):
        start_lines.append(line)
        kind = "war" if i == bad_at else "other"
        writer.writerow([f"E{i}", kind, "2012-01-01", "omsk", text, "src"])
        line += text.count("\n") + 1
    (folder / "policy_events.csv").write_text(buffer.getvalue())
    write_dataset(folder, {k: v for k, v in CLEAN_CSV.items() if k != "policy_events"})
    if bad_at < len(texts):
        with pytest.raises(InvalidRecords) as caught:
            load_records(folder, key=KEY)
        assert [(v.row, v.column, v.rule) for v in caught.value.report.violations] == [
            (start_lines[bad_at], "kind", "choice")
        ]
    else:
        events = load_records(folder, key=KEY).policy_events
        assert events["description"].tolist() == texts
        assert np.array_equal(
            events["event_id"].to_numpy(), np.array([f"E{i}" for i in range(len(texts))], object)
        )
