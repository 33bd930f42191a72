"""Arrow's threaded CSV reader is given nothing Python owns, so no run aborts at interpreter exit.

The abort (exit 134, "terminate called without an active exception") came from an Arrow worker thread
releasing the Python ``invalid_row_handler`` while the interpreter was shutting down: see
`estim.records.read`. It showed on files with rows of the wrong width, e.g. a cp1251 file whose Cyrillic
text held a comma, in about 1 run in 100-300.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from estim.records import read
from estim.records.schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]


def _stress_module():
    spec = importlib.util.spec_from_file_location(
        "stress_cp1251", ROOT / "scripts/stress_cp1251.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def arrow_calls(monkeypatch):
    """Every call of Arrow's CSV reader, checked: no Python callback, input in Arrow's own memory."""
    calls = []
    real = read.pa_csv.read_csv

    def checked(source, **kwargs):
        assert kwargs["parse_options"].invalid_row_handler is None
        assert isinstance(source, pa.BufferReader)
        calls.append(kwargs)
        return real(source, **kwargs)

    def never(*args):
        raise AssertionError("fell back to the csv module")

    monkeypatch.setattr(read.pa_csv, "read_csv", checked)
    monkeypatch.setattr(read, "_parse_csv_slowly", never)
    return calls


def test_rows_of_the_wrong_width_are_found_without_a_python_callback(tmp_path, arrow_calls):
    folder = _stress_module().make_cp1251_folder(tmp_path / "records")
    schema = SCHEMAS["apprehensions"]
    raw = read.read_table(
        folder / "apprehensions.csv", "apprehensions.csv", list(schema.names), schema.personal
    )
    assert arrow_calls  # read by Arrow (twice: the fast path fails, then the scanned records)
    assert raw.records == 59_944
    every_other = list(range(52, 59_946, 100))  # the rows whose Cyrillic text holds a comma
    assert raw.bad_field_rows.tolist() == every_other
    assert raw.bad_field_counts.tolist() == [11] * len(every_other)
    assert raw.n_rows == raw.records - len(every_other)
    assert raw.rows[:3].tolist() == [2, 3, 4]
    assert 52 not in raw.rows.tolist()
    # Line 2: the cp1251 bytes are replaced and the row is kept, for the other checks.
    assert raw.columns["recorded"][0].as_py() == "\ufffd" * 9 + "_" + "\ufffd" * 6
    assert [i.rule for i in raw.issues] == ["encoding"]


def test_quoted_records_of_the_wrong_width_are_left_out_of_arrows_input(tmp_path, arrow_calls):
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b,c\n1,"x\ny",3\n2,too,many,fields\n"4,4",5,"6\n"\nshort\n7,8,9')
    raw = read.read_csv(path, "t.csv", ["a", "b", "c"], coded=("b",))
    assert raw.rows.tolist() == [2, 5, 8]
    assert raw.bad_field_rows.tolist() == [4, 7]
    assert raw.bad_field_counts.tolist() == [4, 1]
    assert raw.columns["a"].to_pylist() == ["1", "4,4", "7"]
    assert raw.columns["c"].to_pylist() == ["3", "6\n", "9"]


def test_without_removes_byte_ranges():
    arr = np.frombuffer(b"0123456789", np.uint8)
    out = read._without(arr, np.array([0, 3, 4, 8]), np.array([2, 4, 6, 11]))
    assert out.tobytes() == b"267"


@pytest.mark.slow
def test_validate_never_aborts_on_a_cp1251_folder():
    """200 runs of `estim validate` on a folder with a cp1251 file: each exits 2 naming the file."""
    stress = _stress_module()
    estim = Path(sys.executable).with_name("estim")
    if not estim.exists():
        estim = ROOT / ".venv" / "bin" / "estim"
    assert stress.main(["-n", "200", "-j", "2", "--estim", str(estim)]) == 0
