"""A forecast's memory grows as 2^n scenarios × draws × sections × months × categories: twelve measures at
1,000 draws would need ~300 GB, and used to start allocating it with no warning. Now the forecast estimates its
peak memory before allocating anything and refuses (exit 2) one above the budget (`--max-memory`, default half
of the machine's memory), saying what would fit; `--scenarios each` draws the baseline, each measure alone
and all together instead of every combination.

The estimate is checked against references outside its own formula: the bytes of the count arrays a forecast
returns, and the peak memory `tracemalloc` measures while it runs."""

from __future__ import annotations

import json
import re
import tracemalloc

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.measures import scenarios as memory
from estim.measures.forecast import forecast
from estim.measures.scenarios import (
    ForecastPlan,
    parse_size,
    scenario_count,
    scenario_names,
)
from estim.measures.spec import parse_measure

SECTIONS, CATEGORIES, DATA_MONTHS = 12, 5, 144  # the shipped synthetic data


def measure(name, value=0.5):
    """Every category's journeys × ``value`` from the first forecast month, at full strength at once."""
    prior = {"distribution": "Uniform", "lower": value - 1e-9, "upper": value + 1e-9}
    effect = {"name": "cut", "target": "journeys", "prior": prior}
    return parse_measure({"name": name, "start": "2018-01", "ramp_months": 1, "effects": [effect]})


def plan(n, draws, months=12, *, scenarios="combinations", by_category=True, r1=True, history=0):
    return ForecastPlan(
        n, scenarios, draws, SECTIONS, months, CATEGORIES, r1, by_category, history, DATA_MONTHS
    )


def peak_of(call):
    """The peak memory (bytes) numpy and Python allocate during ``call()``, and its result."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def posteriors(true_posterior):
    """120 draws (three chunks of draws), at r = 1 (the fixture's) and at r = 0.8."""
    more = xr.concat([true_posterior] * 3, dim="draw").assign_coords(draw=np.arange(120))
    retry = more.assign(retry_probability=(("chain", "draw"), np.full((1, 120), 0.8)))
    return {True: more, False: retry}


# ------------------------------------------------------------------------------------------------------
# the scenario sets


def test_combinations_are_2_to_the_n_and_each_is_n_plus_2():
    specs = [measure(x) for x in "abc"]
    names = [s for s, _ in scenario_names(specs)]
    assert names == ["baseline", "a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]
    each = scenario_names(specs, "each")
    assert each == [("baseline", ()), ("a", (0,)), ("b", (1,)), ("c", (2,)), ("a+b+c", (0, 1, 2))]
    assert [s for s, _ in scenario_names(specs[:1], "each")] == ["baseline", "a"]
    for n in range(5):
        assert scenario_count(n) == len(scenario_names([measure(f"m{i}") for i in range(n)]))
        assert scenario_count(n, "each") == len(
            scenario_names([measure(f"m{i}") for i in range(n)], "each")
        )
    assert scenario_count(12) == 4096 and scenario_count(12, "each") == 14
    with pytest.raises(EstimInputError, match="--scenarios 'pairs'"):
        scenario_names(specs, "pairs")


def test_each_draws_the_single_measures_and_all_together(shipped_data, true_posterior):
    specs = [measure("a", 0.5), measure("b", 0.8), measure("c", 0.9)]
    kw = {"horizon": 12, "draws": 40, "seed": 3, "history": False}
    fc = forecast(shipped_data, true_posterior, specs, scenarios="each", **kw)
    assert list(fc["scenario"].values) == ["baseline", "a", "b", "c", "a+b+c"]
    assert fc.attrs["scenarios"] == "each"
    every = forecast(shipped_data, true_posterior, specs, **kw)
    assert every.attrs["scenarios"] == "combinations" and every.sizes["scenario"] == 8
    assert np.array_equal(fc["effect_size"].values, every["effect_size"].values)
    # each scenario's count is a binomial thinning of the baseline's: the ratio of totals is the multiplier
    # up to binomial noise
    u = fc["unobserved"].sum(["draw", "section", "month"]).astype(float)
    base = float(u.sel(scenario="baseline"))
    for name, expected in (("a", 0.5), ("b", 0.8), ("c", 0.9), ("a+b+c", 0.36)):
        sd = np.sqrt(expected * (1 - expected) / base)
        assert abs(float(u.sel(scenario=name)) / base - expected) <= 5 * sd, name


# ------------------------------------------------------------------------------------------------------
# the estimate against references


def test_the_estimate_counts_the_cells_and_bytes_of_the_returned_arrays(
    shipped_data, true_posterior
):
    specs = [measure("a"), measure("b")]
    fc = forecast(
        shipped_data, true_posterior, specs, horizon=12, draws=20, by_category=True, history=False
    )
    expected = plan(2, 20)
    counts = sum(fc[v].data.nbytes for v in ("unobserved", "apprehensions", "attempts"))
    assert fc["unobserved"].size == expected.cells == 4 * 20 * 12 * 12 * 5
    assert counts == expected.count_bytes  # 12 bytes a cell: three int32 counts


@pytest.mark.parametrize(
    ("n", "draws", "scenarios", "by_category", "r1"),
    [
        (0, 120, "combinations", False, True),
        (1, 40, "combinations", True, False),
        (2, 120, "combinations", False, False),
        (3, 40, "combinations", True, True),
        (3, 120, "each", False, False),
    ],
)
def test_the_estimate_is_the_measured_peak_memory_within_30_percent(
    shipped_data, posteriors, n, draws, scenarios, by_category, r1
):
    specs = [measure(x) for x in "abc"[:n]]
    forecast(shipped_data, posteriors[r1], specs, horizon=6, draws=10)  # imports and caches first
    peak, fc = peak_of(
        lambda: forecast(
            shipped_data,
            posteriors[r1],
            specs,
            horizon=12,
            draws=draws,
            by_category=by_category,
            scenarios=scenarios,
            history=False,
            max_memory=1e12,
        )
    )
    assert fc.sizes["draw"] == draws
    estimate = plan(n, draws, scenarios=scenarios, by_category=by_category, r1=r1).peak_bytes
    assert peak <= estimate <= 1.3 * peak, (peak, estimate)


def test_the_estimate_with_the_history_is_the_measured_peak_within_30_percent(
    shipped_data, true_posterior
):
    forecast(shipped_data, true_posterior, [], horizon=6, draws=10)  # imports and caches first
    peak, _ = peak_of(
        lambda: forecast(shipped_data, true_posterior, [measure("a")], horizon=12, draws=40)
    )
    estimate = plan(1, 40, by_category=False, history=40).peak_bytes
    assert peak <= estimate <= 1.3 * peak, (peak, estimate)


# ------------------------------------------------------------------------------------------------------
# the refusal


def test_the_refusal_fires_above_the_estimate_and_not_at_it(shipped_data, true_posterior):
    specs = [measure("a"), measure("b")]
    kw = {"horizon": 12, "draws": 20, "by_category": True, "history": False}
    need = plan(2, 20).peak_bytes
    with pytest.raises(EstimInputError) as e:
        forecast(shipped_data, true_posterior, specs, max_memory=need - 1, **kw)
    message = str(e.value)
    assert "4 scenarios (the baseline and every combination of 2 measures, 2^2)" in message
    assert (
        "× 20 draws × 12 sections × 12 months" in message
        and "× 5 categories = 57,600 cells" in message
    )
    assert "(--max-memory)" in message and "a larger --max-memory" in message
    fc = forecast(shipped_data, true_posterior, specs, max_memory=need, **kw)
    assert fc.sizes["scenario"] == 4


def test_the_refusal_names_the_draws_that_fit_and_they_do(shipped_data, posteriors):
    specs = [measure(x) for x in "abc"]
    kw = {"horizon": 12, "by_category": True, "history": False}
    budget = plan(3, 60, r1=False).peak_bytes
    with pytest.raises(EstimInputError) as e:
        forecast(shipped_data, posteriors[False], specs, draws=120, max_memory=budget, **kw)
    message = str(e.value)
    assert "--draws 60 or fewer" in message, message
    each = plan(3, 120, scenarios="each", r1=False)
    assert (
        "--scenarios each (the baseline, each measure alone and all together: 5 scenarios"
        in message
    )
    assert ("still too large" if each.peak_bytes > budget else ": fits)") in message
    fc = forecast(shipped_data, posteriors[False], specs, draws=60, max_memory=budget, **kw)
    assert fc.sizes["draw"] == 60


def test_twelve_measures_are_refused_before_anything_is_allocated(shipped_data, true_posterior):
    """4,096 scenarios × 40 draws × 12 sections × 36 months × 5 categories: 354 million cells, ~33 GB."""
    specs = [measure(f"m{i:02d}") for i in range(12)]

    def call():
        return forecast(shipped_data, true_posterior, specs, horizon=36, draws=40, max_memory=4e9)

    with pytest.raises(EstimInputError) as e:
        peak_of(call)
    message = str(e.value)
    assert message.startswith(
        "the forecast would need about 33.3 GB of memory, more than the 4.0 GB"
    )
    assert "4,096 scenarios (the baseline and every combination of 12 measures, 2^12)" in message
    assert "× 40 draws × 12 sections × 36 months" in message and "353,894,400 cells" in message
    fewer = int(re.search(r"at most (\d+) measures", message).group(1))
    assert fewer == 8  # 256 scenarios: 2.1 GB; 9 measures would need 4.2 GB
    assert (
        "--scenarios each (the baseline, each measure alone and all together: 14 scenarios"
        in message
    )
    assert ": fits)" in message
    tracemalloc.start()  # refused with next to nothing allocated
    try:
        with pytest.raises(EstimInputError):
            call()
        assert tracemalloc.get_traced_memory()[1] < 20e6
    finally:
        tracemalloc.stop()
    fc = forecast(
        shipped_data, true_posterior, specs, horizon=36, draws=10, scenarios="each", history=False
    )
    assert fc.sizes["scenario"] == 14


def test_the_default_budget_is_half_the_machine_memory(shipped_data, true_posterior, monkeypatch):
    total = memory.physical_memory()
    assert total is None or memory.default_max_memory() == total / 2
    monkeypatch.setattr(memory, "default_max_memory", lambda: 2e6)
    with pytest.raises(EstimInputError, match=r"more than the 2\.0 MB allowed \(the default"):
        forecast(shipped_data, true_posterior, [measure("a")], horizon=12, draws=10)


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8e9), ("500 MB", 5e8), ("16", 16e9), ("1.5t", 1.5e12), ("100b", 100.0), ("2k", 2e3)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1", "lots", "8 GiB", "1e9"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(EstimInputError, match="--max-memory"):
        parse_size(text)


# ------------------------------------------------------------------------------------------------------
# the command line


def _run(fit, *args):
    return CliRunner().invoke(
        cli, ["forecast", str(fit), "--horizon", "12", "--draws", "10", *args]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-memory", "5MB"], "more than the 5.0 MB allowed (--max-memory): 8 scenarios"),
        (["--max-memory", "5MB", "--scenarios", "each"], "5 scenarios (the baseline, each of 3"),
        (["--max-memory", "lots"], "--max-memory 'lots': give a size above 0"),
        (["--scenarios", "pairs"], "'pairs' is not one of 'combinations', 'each'"),
    ],
)
def test_the_command_refuses_a_forecast_too_large_with_exit_2(fit_path, args, message):
    result = _run(fit_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "internal error" not in result.output


def test_the_command_draws_each_measure_alone_and_all_together(fit_path):
    result = _run(fit_path, "--scenarios", "each", "--format", "json", "--max-memory", "1GB")
    assert result.exit_code == 0, result.output
    assert "forecasting 5 scenarios" in result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert out["attrs"]["scenarios"] == "each"
    assert [r["scenario"] for r in out["changes"] if r["area"] == "whole border"][:4] == [
        "coordination",
        "faster_checks",
        "permits",
        "coordination+faster_checks+permits",
    ]
