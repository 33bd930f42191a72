"""`estim forecast` end to end on a small saved fit (40 draws at the simulator's true parameters of the shipped
data), and its refusals."""

from __future__ import annotations

import json

import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.measures.store import load_forecast


def test_forecast_prints_the_scenario_table_writes_figures_and_a_file(tmp_path, fit_path):
    out, figure = tmp_path / "fc.nc", tmp_path / "fan.png"
    result = CliRunner().invoke(
        cli,
        [
            "forecast",
            str(fit_path),
            "--horizon",
            "24",
            "--draws",
            "40",
            "--out",
            str(out),
            "--figure",
            str(figure),
            "--analogues",
        ],
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "SYNTHETIC" in text and "2018-01 to 2019-12" in text
    for scenario in (
        "permits",
        "coordination",
        "faster_checks",
        "coordination+faster_checks+permits",
    ):
        assert scenario in text
    assert "P(red.)" in text and "orenburg*" in text
    assert "border_residents_agreement on border_resident journeys" in text  # the analogues
    assert figure.exists() and (tmp_path / "fan_heatmap.png").exists()
    fc = load_forecast(out)
    assert fc["unobserved"].dims == ("draw", "scenario", "section", "month")
    assert fc.sizes["scenario"] == 8 and fc["unobserved"].dtype.kind == "i"
    for key in ("fit_hash", "measures_hash", "seed", "version_estim"):
        assert key in fc.attrs
    assert int(fc.attrs["seed"]) == 11  # the fit's seed by default
    with pytest.raises(Exception, match="another measures"):
        load_forecast(out, expect={"measures_hash": "0" * 16})


def test_same_seed_same_numbers_and_json(fit_path):
    args = ["forecast", str(fit_path), "--horizon", "12", "--draws", "20", "--format", "json"]
    a = CliRunner().invoke(cli, args)
    b = CliRunner().invoke(cli, args)
    assert a.exit_code == 0, a.output
    assert json.loads(a.stdout)["changes"] == json.loads(b.stdout)["changes"]
    rows = json.loads(a.stdout)["changes"]
    assert {r["quantity"] for r in rows} == {"unobserved", "attempts"}
    whole = [r for r in rows if r["area"] == "whole border" and r["quantity"] == "unobserved"]
    assert len(whole) == 7 and all(0.0 <= r["p_reduction"] <= 1.0 for r in whole)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--measures", "nonsense"], "unknown measure"),
        (["--start", "2017-01"], "inside the fitted data"),
        (["--start", "2018-13"], "YYYY-MM"),
        (["--figure", "fan.txt"], "a figure is saved as"),
    ],
)
def test_bad_input_exits_2(fit_path, args, message):
    result = CliRunner().invoke(cli, ["forecast", str(fit_path), "--draws", "10", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_changed_data_and_failed_fits_are_refused(
    tmp_path, shipped_data, true_posterior, write_fit
):
    stale = write_fit(tmp_path / "stale.nc", true_posterior, shipped_data, data_hash_value="0" * 64)
    result = CliRunner().invoke(cli, ["forecast", str(stale), "--draws", "10"])
    assert result.exit_code == 2 and "changed since the fit" in result.output
    failed = write_fit(tmp_path / "failed.nc", true_posterior, shipped_data, passed=False)
    result = CliRunner().invoke(cli, ["forecast", str(failed), "--draws", "10"])
    assert result.exit_code == 3


def test_a_fit_of_another_family_is_refused(tmp_path, shipped_data, true_posterior, write_fit):
    path = write_fit(tmp_path / "other.nc", true_posterior, shipped_data)
    tree = xr.open_datatree(path)
    tree.attrs["family"] = "ztpoisson"
    other = tmp_path / "other2.nc"
    tree.load().to_netcdf(other)
    result = CliRunner().invoke(cli, ["forecast", str(other), "--draws", "10"])
    assert result.exit_code == 2 and "border model fit" in result.output


def test_draws_beyond_the_fit_are_said_and_the_advice_is_one_the_fit_allows(fit_path):
    """--draws 100 of a 40-draw fit gave 40 forecast draws with nothing said, and --prob 0.99's few-draws
    note advised "--draws 200 or more", which the forecast would cap at 40 again. Now the cap is said, and
    the advice is a longer fit or the widest interval with one draw beyond each end: 1 − 2/40 = 0.95."""
    args = ["forecast", str(fit_path), "--horizon", "12", "--measures", "permits", "--prob", "0.99"]
    result = CliRunner().invoke(cli, [*args, "--draws", "100"])
    assert result.exit_code == 0, result.output
    assert "--draws 100: the fit has 40 posterior draws, so the forecast has 40" in result.output
    assert "(12 months, 40 draws)" in result.output and "at 100 draws" not in result.output
    assert (
        "the fit has only 40 posterior draws: refit with more ([sampler] draws × chains ≥ 200)"
        in result.output
    )
    assert (
        "or give --prob 0.95 or less" in result.output and "give --draws 200" not in result.output
    )
