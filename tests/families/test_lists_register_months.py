"""A register whose months do not match the apprehensions': one that ends, starts or breaks inside the period
(deportations stopping in June 2010: N̂ = 40,071 for the 18,005 of the year's whole records), and one dated
early (a year: N̂ = 53,931, read as a delay too small to measure). Both gave exit 0; both are refused now. The
references are the mutations themselves: months removed, dates moved, on the shipped records."""

from __future__ import annotations

import shutil
import warnings

import pandas as pd
import pytest

from estim import paths
from estim.errors import EstimInputError
from estim.families.lists.data import list_table
from estim.records import DEFAULT_KEY, load_records


@pytest.fixture(scope="module")
def registers() -> pd.DataFrame:
    return pd.read_csv(paths.SYNTHETIC_DIR / "registers.csv", dtype=str, keep_default_na=False)


def _records(tmp_path, registers: pd.DataFrame):
    folder = tmp_path / "records"
    shutil.copytree(paths.SYNTHETIC_DIR, folder, ignore=shutil.ignore_patterns("truth.nc"))
    registers.to_csv(folder / "registers.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_records(folder, key=DEFAULT_KEY)


@pytest.mark.parametrize(
    ("register", "first", "last", "said"),
    [
        (
            "deportation",
            "2010-07-01",
            "2099-12-31",
            "'deportation' has no entry in 2010-07 … 2010-12",
        ),
        pytest.param(
            "police_check",
            "2010-01-01",
            "2010-06-30",
            "'police_check' has no entry in 2010-01 … 2010-06",
            marks=pytest.mark.slow,  # the same rule as "ends", from the other side
        ),
        (
            "police_check",
            "2010-06-01",
            "2010-08-31",
            "'police_check' has no entry in 2010-06 … 2010-08",
        ),
    ],
    ids=["ends", "starts", "breaks"],
)
def test_a_register_missing_months_of_the_period_is_refused(
    tmp_path, registers, register, first, last, said
):
    dropped = (registers["register"] == register) & registers["date"].between(first, last)
    records = _records(tmp_path, registers[~dropped])
    with pytest.raises(EstimInputError, match=rf"{said} .*rule register_gap"):
        list_table(records, period="2010")
    # a year the register covers is still fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert int(list_table(records, period="2008")["history_count"].sum()) > 0


def test_registers_dated_a_year_early_are_refused(tmp_path, registers):
    early = registers.assign(
        date=(pd.to_datetime(registers["date"]) - pd.DateOffset(years=1)).dt.strftime("%Y-%m-%d")
    )
    with pytest.raises(EstimInputError, match=r"'police_check' dates 1,153 entries .* before"):
        list_table(_records(tmp_path, early), period="2010")


def test_register_months_declared_empty_are_built_and_said(tmp_path, registers):
    # allow_empty_months excuses a register's months too, says which, and is not called idle
    dropped = (registers["register"] == "deportation") & (registers["date"] >= "2010-07-01")
    records = _records(tmp_path, registers[~dropped])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = list_table(records, period="2010", allow_empty_months=True)
    said = " ".join(str(w.message) for w in caught)
    assert "declared without entries (allow_empty_months): deportation: 2010-07 … 2010-12" in said
    assert "declares nothing" not in said
    assert int(table["history_count"].sum()) > 0
