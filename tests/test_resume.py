"""Resuming a study (estim.resume): only rows of this study, whole, once each, made with this run's options."""

import gzip

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.resume import StudyRows, refuse_existing, settings_hash, study_rows_so_far

STUDY = StudyRows(
    name="test study",
    columns=("dataset", "seed", "quantity", "value", "covered", "error"),
    unit=("seed",),
    key=("seed", "quantity"),
    options={"family": "ztpoisson", "draws": 100},
    numbers=("seed",),
)
HEADER = "dataset,seed,quantity,value,covered,error,settings\n"
S = STUDY.settings()


def _row(seed, quantity="N", value=1.5, error="", settings=S):
    return f"{seed - 10},{seed},{quantity},{value},True,{error},{settings}\n"


def _write(tmp_path, *lines, name="rows.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(lines))
    return path


def _resume(path, notes=None):
    say = None if notes is None else notes.append
    return study_rows_so_far(path, STUDY, resume=True, say=say)


def test_the_settings_hash_is_stable_and_depends_on_every_option():
    assert settings_hash({"a": 1, "b": [2, 3]}) == settings_hash({"b": [2, 3], "a": 1})
    assert len(S) == 12 and int(S, 16) >= 0
    assert settings_hash({"a": 1, "b": [2, 3]}) != settings_hash({"a": 1, "b": [2, 4]})


def test_rows_made_with_this_runs_options_are_kept(tmp_path):
    path = _write(tmp_path, _row(10), _row(10, "p"), _row(11))
    rows = _resume(path)
    assert list(rows["seed"]) == [10, 10, 11] and set(rows["settings"]) == {S}


def test_rows_made_with_other_options_are_refused_naming_this_runs(tmp_path):
    other = settings_hash({"family": "ztpoisson", "draws": 200})
    path = _write(tmp_path, _row(10), _row(11, settings=other))
    with pytest.raises(EstimInputError, match=r"rows.csv, line 3: made with other options") as e:
        _resume(path)
    assert '"draws": 100' in str(e.value)


def test_a_file_without_settings_or_of_another_study_is_refused(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("dataset,seed,quantity,value,covered,error\n0,10,N,1.5,True,\n")
    with pytest.raises(EstimInputError, match="no 'settings' column.*cannot be resumed safely"):
        _resume(old)
    other = tmp_path / "sbc.csv"
    other.write_text("family,replicate,rank\nMt,0,3\n")
    with pytest.raises(
        EstimInputError, match="columns are not those of a test study.*lacks dataset"
    ):
        _resume(other)
    for name, content in [
        ("notes.md", b"# notes\n\nsome text\n"),
        ("blob.csv", b"\xff\xfe\x00\x01"),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(EstimInputError, match=f"{name}"):
            _resume(path)
    fake = tmp_path / "rows.csv.gz"
    fake.write_text(HEADER)
    with pytest.raises(EstimInputError, match="named .gz but not gzipped"):
        _resume(fake)


def test_a_gzipped_file_is_read(tmp_path):
    path = tmp_path / "rows.csv.gz"
    path.write_bytes(gzip.compress((HEADER + _row(10)).encode()))
    assert list(_resume(path)["seed"]) == [10]


def test_a_cut_last_line_is_dropped_with_a_note(tmp_path):
    notes = []
    path = _write(tmp_path, _row(10), "1,11,N,1.")  # killed while writing: no newline
    assert list(_resume(path, notes)["seed"]) == [10]
    assert "last line (3) was cut off" in notes[0]
    notes.clear()
    path = _write(tmp_path, _row(10), "1,11,N\n")  # a short last row
    assert list(_resume(path, notes)["seed"]) == [10] and notes


def test_damage_before_the_last_line_is_refused_naming_the_line(tmp_path):
    path = _write(tmp_path, _row(10), "1,11,N\n", _row(12))
    with pytest.raises(EstimInputError, match=r"line 3: 3 fields where the header has 7"):
        _resume(path)
    path = _write(tmp_path, _row(10), f"1,,N,1.5,True,,{S}\n", _row(12))
    with pytest.raises(EstimInputError, match=r"line 3: no seed"):
        _resume(path)
    path = _write(tmp_path, _row(10), f"1,eleven,N,1.5,True,,{S}\n", _row(12))
    with pytest.raises(EstimInputError, match=r"line 3: seed 'eleven' is not a number"):
        _resume(path)
    path = _write(tmp_path, _row(10), _row(11, quantity=""))
    with pytest.raises(EstimInputError, match=r"line 3: no quantity"):
        _resume(path)


def test_a_row_twice_is_refused(tmp_path):
    path = _write(tmp_path, _row(10), _row(11), _row(10, value=2.0))
    with pytest.raises(EstimInputError, match=r"lines 2, 4: the same row \(seed, quantity\) twice"):
        _resume(path)


def test_tasks_that_ran_with_an_error_are_run_again(tmp_path):
    notes = []
    path = _write(tmp_path, _row(10), _row(11, quantity="", error="RuntimeError: boom"), _row(12))
    rows = _resume(path, notes)
    assert list(rows["seed"]) == [10, 12]
    assert "1 task(s) ran with an error (seed=11)" in notes[0] and "run again" in notes[0]


def test_without_resume_a_non_empty_file_is_refused_unless_forced(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hours of rows\n")
    with pytest.raises(
        EstimInputError, match="notes.txt exists and is not empty.*--resume.*--force"
    ):
        study_rows_so_far(path, STUDY, resume=False)
    assert path.read_text() == "hours of rows\n"
    assert study_rows_so_far(path, STUDY, resume=False, force=True) is None
    assert not path.exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refuse_existing(empty, resume=False, force=False)
    assert not empty.exists()
    assert study_rows_so_far(None, STUDY, resume=True) is None
    assert study_rows_so_far(tmp_path / "absent.csv", STUDY, resume=True) is None


def test_options_may_depend_on_a_column(tmp_path):
    study = StudyRows(
        name="lists",
        columns=("model", "dataset", "error"),
        unit=("model", "dataset"),
        key=("model", "dataset"),
        options={"a": {"draws": 1}, "b": {"draws": 2}},
        options_by="model",
    )
    path = tmp_path / "rows.csv"
    frame = study.stamp(pd.DataFrame({"model": ["a", "b"], "dataset": [0, 0], "error": ""}))
    assert frame["settings"].nunique() == 2
    frame.to_csv(path, index=False)
    assert len(study_rows_so_far(path, study, resume=True)) == 2
    frame.assign(settings=study.settings("a")).to_csv(path, index=False)
    with pytest.raises(EstimInputError, match=r"line 3: made with other options.*\"draws\": 2"):
        study_rows_so_far(path, study, resume=True)
