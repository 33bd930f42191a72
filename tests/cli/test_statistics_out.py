"""`estim data statistics --out` over a file that is not a statistics file: `--out truth.nc` in a simulated folder
replaced the ground truth with exit 0. Refused now unless --force; a statistics file is replaced as before."""

from __future__ import annotations

import numpy as np
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli


def test_statistics_do_not_replace_another_netcdf_unless_forced(tmp_path):
    truth = tmp_path / "truth.nc"
    xr.Dataset(
        {"true_crossings": ("month", np.arange(3))}, attrs={"description": "truth"}
    ).to_netcdf(truth)
    before = truth.read_bytes()
    result = CliRunner().invoke(cli, ["data", "statistics", "--out", str(truth)])
    assert result.exit_code == 2, result.output
    assert "is not a statistics file (described as 'truth')" in result.output
    assert truth.read_bytes() == before
    stats = tmp_path / "stats.nc"
    assert CliRunner().invoke(cli, ["data", "statistics", "--out", str(stats)]).exit_code == 0
    again = CliRunner().invoke(cli, ["data", "statistics", "--out", str(stats)])
    assert again.exit_code == 0, again.output  # a statistics file is replaced, as before
    forced = CliRunner().invoke(cli, ["data", "statistics", "--out", str(truth), "--force"])
    assert forced.exit_code == 0 and truth.read_bytes() != before


def test_a_record_file_given_for_a_folder_is_answered_in_the_commands_words(tmp_path):
    # the message named load_records and validate_file, functions a command-line user has not met
    from estim.paths import SYNTHETIC_DIR

    one = SYNTHETIC_DIR / "apprehensions.csv"
    for args in (
        ["data", "summary", str(one)],
        ["data", "statistics", str(one), "--out", str(tmp_path / "s.nc")],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert f"give the folder of record files it belongs to ({SYNTHETIC_DIR})" in result.output
        assert f"`estim validate {one}` checks one file" in result.output
        assert "load_records" not in result.output
