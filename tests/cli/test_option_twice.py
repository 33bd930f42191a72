"""An option that takes one value, given twice: click kept the last without a word (`simulate --seed 1 --seed 2`
simulated seed 2; `--years 1 --years 2` two years; `--measure-start` the second month). Refused now, in every
command and subcommand; options that take several values (`forecast --measures`, `simulate --effect`) and
flags are not affected."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from estim.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--seed", "1", "--seed", "2", "--years", "1", "--out", "x"],
        ["simulate", "--years=1", "--years", "2", "--out", "x"],
        ["data", "statistics", "--out", "a.nc", "--out", "b.nc"],
        ["summary", "missing.nc", "--prob", "0.9", "--prob", "0.5"],
    ],
)
def test_an_option_given_twice_is_refused(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "is given 2 times" in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "b.nc").exists()


def test_options_of_several_values_and_flags_may_repeat(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # two --effect values are read as two (and refused for their own reason: no --measure), never as "given twice"
    result = CliRunner().invoke(
        cli, ["simulate", "--effect", "a=1", "--effect", "b=2", "--out", "x"]
    )
    assert "is given 2 times" not in result.output
