"""`estim fit` on what is not a spec, and `estim fit --mle` on data it must refuse or not report as a number:
exit 2 for bad input (named), exit 3 for a fit with no estimate, never an internal error (exit 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from click.testing import CliRunner

from estim.benchmarks import load_benchmark
from estim.cli import cli
from estim.paths import REPO_ROOT


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _spec(folder, text: str, table: pd.DataFrame):
    table.to_csv(folder / "d.csv", index=False)
    (folder / "s.toml").write_text(text, encoding="utf-8")
    return str(folder / "s.toml")


ZTPOISSON = """family = "ztpoisson"
seed = 1
[data]
file = "d.csv"
layout = "individuals"
times_seen = "capture"
covariates = {covariates}
"""


def test_a_binary_file_given_as_spec_is_bad_input(tmp_path):
    junk = tmp_path / "junk.toml"
    junk.write_bytes(bytes([0xFA, 0x00, 0x81, 0xFF]) * 25)
    result = _run("fit", str(junk), "--mle")
    assert result.exit_code == 2, result.output
    assert "not a model spec: not UTF-8 text" in result.output


def test_a_fit_file_given_as_spec_is_named_a_fit(tmp_path):
    fit = tmp_path / "model.nc"
    xr.Dataset({"x": ("i", np.arange(3))}).to_netcdf(fit, engine="netcdf4")
    result = _run("fit", str(fit), "--mle")
    assert result.exit_code == 2, result.output
    assert "a fit (a netCDF file), not a model spec" in result.output


def test_a_data_table_given_as_spec_says_the_spec_names_it(tmp_path):
    table = tmp_path / "hare.csv"
    table.write_text("c1,c2,c3\n1,0,1\n0,1,1\n", encoding="utf-8")
    result = _run("fit", str(table), "--mle")
    assert result.exit_code == 2, result.output
    assert "looks like a data table" in result.output and 'file = "hare.csv"' in result.output


def test_a_toml_slip_under_a_comment_with_commas_is_named_as_toml(tmp_path):
    # the shipped spec's opening comment holds commas: a slip below it was called "a data table"
    text = (REPO_ROOT / "models" / "border_lists_stepwise.toml").read_text(encoding="utf-8")
    spec = tmp_path / "s.toml"
    spec.write_text(text.replace('period = "2010"', 'period = "2010"x'), encoding="utf-8")
    result = _run("fit", str(spec), "--mle")
    assert result.exit_code == 2, result.output
    assert "looks like a data table" not in result.output and "TOML" in result.output


def test_mle_with_out_is_refused_not_ignored(tmp_path):
    table = load_benchmark("netherlands_immigrants")
    spec = _spec(tmp_path, ZTPOISSON.format(covariates="[]"), table)
    result = _run("fit", spec, "--mle", "--out", str(tmp_path / "fit.nc"))
    assert result.exit_code == 2, result.output
    assert "--out is for a Bayesian fit" in result.output
    assert not (tmp_path / "fit.nc").exists()


def test_an_inf_covariate_is_bad_input(tmp_path):
    table = load_benchmark("netherlands_immigrants")
    table["weight"] = np.linspace(50.0, 90.0, len(table))
    table.loc[4, "weight"] = np.inf
    result = _run("fit", _spec(tmp_path, ZTPOISSON.format(covariates='["weight"]'), table), "--mle")
    assert result.exit_code == 2, result.output
    assert "column 'weight', row 5: inf is not a finite number" in result.output


def test_collinear_covariates_are_bad_input_not_a_fit_without_standard_errors(tmp_path):
    table = load_benchmark("netherlands_immigrants")
    years = np.arange(len(table)) % 50 + 18
    table["age_y"], table["age_m"] = years, 12 * years
    spec = _spec(tmp_path, ZTPOISSON.format(covariates='["age_y", "age_m"]'), table)
    result = _run("fit", spec, "--mle", "--format", "json")
    assert result.exit_code == 2, result.output
    assert "'age_m' is a linear combination of 'age_y'" in result.output


def test_mt_with_an_occasion_that_caught_everyone_exits_3(tmp_path):
    table = pd.DataFrame(
        [(1, 0, 0, 60), (1, 1, 0, 20), (1, 0, 1, 10), (1, 1, 1, 5)],
        columns=["A", "B", "C", "count"],
    )
    text = (
        'family = "Mt"\nseed = 1\n[data]\nfile = "d.csv"\nlayout = "patterns"\ncount = "count"\n'
        'occasions = ["A", "B", "C"]\n'
    )
    result = _run("fit", _spec(tmp_path, text, table), "--mle")
    assert result.exit_code == 3, result.output
    assert "'A' caught everyone seen" in result.output
    assert "N-hat          95" not in result.output


def test_non_finite_numbers_are_printed_as_words_not_quoted_strings():
    from estim.report.summary import _full

    assert _full("inf") == "inf"
    assert _full(20.5) == "20.5"
