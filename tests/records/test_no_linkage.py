"""Registers that share no person key with the apprehensions: the files key people in two ways, which the
spelling rules do not fold (a PK prefix dropped in one file; a spreadsheet's leading apostrophe; another
identity document). Validated before, with every register person read as never apprehended (4,048 linked
people on the shipped records became 0); refused now, rule ``no_linkage``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from estim import paths
from estim.records import validate_path
from estim.records.keys import LINKED_MIN_KEYS


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "records"
    shutil.copytree(paths.SYNTHETIC_DIR, folder, ignore=shutil.ignore_patterns("truth.nc"))
    return folder


def _rekey(folder: Path, name: str, key) -> None:
    path = folder / f"{name}.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["person_key"] = table["person_key"].map(key)
    table.to_csv(path, index=False)


def _rules(report) -> set[tuple[str, str]]:
    return {(Path(v.file).name, v.rule) for v in report.violations}


@pytest.mark.parametrize(
    ("apprehended", "registered"),
    [
        (lambda k: k[2:], lambda k: "'" + k[2:]),  # an apostrophe before the register's numbers
        # the PK prefix dropped in one file only: the same rule as the apostrophe's
        pytest.param(lambda k: k[2:], lambda k: k, marks=pytest.mark.slow),
    ],
    ids=["apostrophe", "prefix"],
)
def test_registers_keyed_otherwise_are_refused_with_the_digits_that_agree(
    tmp_path, apprehended, registered
):
    folder = _copy(tmp_path)
    assert validate_path(folder).ok  # the shipped records link 4,048 people
    _rekey(folder, "apprehensions", apprehended)
    _rekey(folder, "registers", registered)
    report = validate_path(folder)
    assert _rules(report) == {("registers.csv", "no_linkage")}
    message = report.violations[0].message
    assert "none of the 27,104 people in this file has a person_key of any of the" in message
    assert (
        "4,048 of them agree with an apprehended person's key once all but the digits are dropped"
        in (message)
    )


def test_registers_under_another_document_are_refused_and_a_few_people_are_not(tmp_path):
    folder = _copy(tmp_path)
    _rekey(folder, "registers", lambda k: "R" + k[::-1])  # no digits in common order
    report = validate_path(folder)
    assert _rules(report) == {("registers.csv", "no_linkage")}
    assert "agree" not in report.violations[0].message
    # below LINKED_MIN_KEYS people a side no overlap may be chance: not refused
    registers = pd.read_csv(folder / "registers.csv", dtype=str, keep_default_na=False)
    few = registers["person_key"].drop_duplicates().head(LINKED_MIN_KEYS - 1)
    registers[registers["person_key"].isin(few)].to_csv(folder / "registers.csv", index=False)
    assert "no_linkage" not in {v.rule for v in validate_path(folder).violations}
