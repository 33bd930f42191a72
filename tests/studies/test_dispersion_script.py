"""scripts/border_dispersion.py: the test of the repeat counts on simulated borders, one dataset a cell, passes
without a frailty, fails with one, and gives the z the misspecification study's rows record (the same seed,
the same bytes)."""

from __future__ import annotations

import sys

import pytest

from tests.studies.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("border_dispersion")


def test_one_dataset_with_and_without_a_frailty(script, tmp_path, monkeypatch):
    out = tmp_path / "dispersion.csv"
    argv = ["border_dispersion.py", "--frailty", "0", "0.5", "--seeds", "1", "--seed", "4004"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    script.main()
    import pandas as pd

    rows = pd.read_csv(out).set_index("sim_frailty")
    assert list(rows["sim_seed"]) == [4004, 4004]
    assert bool(rows.loc[0.0, "ppc_repeat_dispersion"]) and abs(rows.loc[0.0, "dispersion_z"]) < 3
    # reproducibility, not correctness (that is tested in test_repeat_dispersion.py): the values the
    # misspecification study's datasets r = 1, seed 4004 recorded (σ 0 and 0.5) in another process
    assert rows.loc[0.0, "dispersion_z"] == pytest.approx(0.633609922179557, rel=1e-9)
    assert rows.loc[0.5, "dispersion_z"] == pytest.approx(106.71945994087083, rel=1e-9)
    assert not bool(rows.loc[0.5, "ppc_repeat_dispersion"])
    table = script.cell_table(rows.reset_index())
    assert list(table["failed"]) == [0, 1] and list(table["datasets"]) == [1, 1]
