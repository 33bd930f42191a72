"""`estim forecast`'s refusals of bad input: a start too far beyond the data or before it, an empty measure
list, and --by-category without --out (exit 2, naming the option, the value and what is allowed)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.measures.forecast import MAX_MONTHS_AHEAD, forecast_start
from estim.measures.spec import known_measures, read_measures

DATA_MONTHS = np.arange(np.datetime64("2006-01"), np.datetime64("2018-01")).astype("datetime64[ns]")


def test_the_start_defaults_to_the_month_after_the_data():
    assert forecast_start(DATA_MONTHS, None, 12) == np.datetime64("2018-01")


@pytest.mark.parametrize(
    ("start", "horizon"), [("2018-01", 240), ("2036-01", 24), ("2037-12", 1), ("2037-01", 12)]
)
def test_a_forecast_ending_up_to_240_months_after_the_data_is_allowed(start, horizon):
    assert forecast_start(DATA_MONTHS, start, horizon) == np.datetime64(start)


@pytest.mark.parametrize(
    ("start", "horizon", "latest"),
    [
        ("2018-02", 240, "2018-01"),
        ("2036-02", 24, "2036-01"),
        ("2060-01", 12, "2037-01"),
        ("2100-01", 12, "2037-01"),
        ("2037-02", 12, "2037-01"),
        ("2038-01", 1, "2037-12"),
    ],
)
def test_a_forecast_ending_more_than_240_months_after_the_data_is_refused(start, horizon, latest):
    with pytest.raises(EstimInputError) as e:
        forecast_start(DATA_MONTHS, start, horizon)
    message = str(e.value)
    assert f"--start {start}" in message and f"--horizon {horizon}" in message
    assert "2017-12" in message and f"latest start for this horizon is {latest}" in message
    assert str(MAX_MONTHS_AHEAD) in message


@pytest.mark.parametrize("start", ["1990-01", "2006-01", "2017-12"])
def test_a_start_before_or_inside_the_data_is_refused(start):
    with pytest.raises(EstimInputError) as e:
        forecast_start(DATA_MONTHS, start, 12)
    message = str(e.value)
    assert f"--start {start}" in message
    assert "before or inside the fitted data (2006-01 … 2017-12)" in message
    assert "2018-01 or later" in message


@pytest.mark.parametrize("horizon", [0, 241])
def test_a_horizon_out_of_range_is_refused(horizon):
    with pytest.raises(EstimInputError, match=f"--horizon must be 1 to 240 months, got {horizon}"):
        forecast_start(DATA_MONTHS, None, horizon)


@pytest.mark.parametrize("names", ["", " ", ",", " , "])
def test_an_empty_measure_list_is_refused_with_the_known_measures(names):
    with pytest.raises(EstimInputError) as e:
        read_measures(names)
    message = str(e.value)
    assert "--measures" in message and "no measure given" in message
    assert all(name in message for name in known_measures())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2060-01", "--horizon", "12"], "latest start for this horizon is"),
        (["--start", "2100-01"], "latest start for this horizon is"),
        (["--start", "1990-01"], "before or inside the fitted data"),
        (["--measures", ""], "no measure given"),
        (["--by-category"], "--by-category needs --out"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(fit_path, args, message):
    result = CliRunner().invoke(cli, ["forecast", str(fit_path), "--draws", "10", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "internal error" not in result.output
