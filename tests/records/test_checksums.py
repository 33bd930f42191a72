"""A records folder's SHA256SUMS: a record file changed after the folder was written is warned of."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
from records_fixtures import write_dataset

from estim.records import validate_path
from estim.records.checksums import checksum_warning


def _with_sums(folder: Path, *extra: str) -> Path:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}"
        for p in sorted(folder.iterdir())
        if p.is_file()
    ]
    (folder / "SHA256SUMS").write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return folder


def _warnings_of(folder: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = validate_path(folder)
    assert report.ok, str(report)
    return [str(w.message) for w in caught if "SHA256SUMS" in str(w.message)]


def test_matching_checksums_say_nothing(tmp_path):
    folder = _with_sums(write_dataset(tmp_path / "records"))
    assert _warnings_of(folder) == []


def test_a_record_file_cut_short_after_writing_is_named(tmp_path):
    # A file cut at a line boundary still validates; only the checksum tells it was changed.
    folder = _with_sums(write_dataset(tmp_path / "records"))
    lines = (folder / "apprehensions.csv").read_text(encoding="utf-8").splitlines()
    (folder / "apprehensions.csv").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    [message] = _warnings_of(folder)
    assert message.startswith("apprehensions.csv differs from its checksum")
    assert "registers.csv" not in message


def test_a_listed_record_file_that_is_gone_is_named(tmp_path):
    folder = _with_sums(write_dataset(tmp_path / "records"))
    (folder / "registers.csv").unlink()
    [message] = _warnings_of(folder)
    assert "lists registers.csv, which the folder no longer has" in message


def test_notes_and_truth_may_change(tmp_path):
    folder = write_dataset(tmp_path / "records")
    (folder / "README.md").write_text("made by hand\n", encoding="utf-8")
    _with_sums(folder)
    (folder / "README.md").write_text("edited\n", encoding="utf-8")
    assert _warnings_of(folder) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not a checksum line\n", "line 1 is not 'DIGEST  NAME'"),
        (b"\xff\xfe\x00", "could not be read as checksums"),
    ],
)
def test_a_sums_file_that_cannot_be_read_is_said(tmp_path, content, expected):
    folder = write_dataset(tmp_path / "records")
    target = folder / "SHA256SUMS"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    message = checksum_warning(folder, "records", sorted(folder.glob("*.csv")))
    assert message is not None and expected in message


def test_binary_mode_lines_and_upper_case_digests_are_read(tmp_path):
    folder = write_dataset(tmp_path / "records")
    digest = hashlib.sha256((folder / "sections.csv").read_bytes()).hexdigest().upper()
    (folder / "SHA256SUMS").write_text(f"{digest} *sections.csv\n", encoding="utf-8")
    assert checksum_warning(folder, "records", sorted(folder.glob("*.csv"))) is None
