"""Inputs of `estim forecast` that used to give a confident number (exit 0) or an internal error, and now give
a refusal naming the option and the rule, or a note in the output: a straight trend carried further than the
data reach, a measure that does not act inside the horizon (or has not reached full strength), a measure named
like the baseline, an improper prior or one reaching a negative multiplier, a negative seed, and an --out that
would replace the fit or another file.
Also the forecast's numbers against an independent reference: a multiplier of 0.5 halves the journeys from
start + lag + ramp − 1 on, by the model's equations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.measures.covariates import check_trend_reach, trend_reach
from estim.measures.forecast import ForecastSettings, forecast
from estim.measures.spec import parse_measure
from estim.measures.summary import forecast_table, format_forecast

STRAIGHT = ForecastSettings(trend_damping=1.0, level_sd=0.0)


def measure(name="m", effects=(), **top):
    return parse_measure({"name": name, "start": "2018-01", "effects": list(effects), **top})


def fixed(value):
    return {"distribution": "Uniform", "lower": value - 1e-9, "upper": value + 1e-9}


def normal(mu, sigma):
    return {"distribution": "Normal", "mu": mu, "sigma": sigma}


HALF = {"name": "cut", "target": "journeys", "prior": fixed(0.5)}


# ------------------------------------------------------------------------------------------------------
# trends carried beyond the data's span


@pytest.mark.parametrize(("n", "rho"), [(1, 1.0), (240, 1.0), (36, 0.8), (240, 0.6), (145, 0.95)])
def test_the_trend_reach_is_the_damped_geometric_sum(n, rho):
    q = rho ** (1 / 12)  # Σ_{h=1..n} q^h / 12, closed form
    expected = n / 12 if rho == 1 else q * (1 - q**n) / (1 - q) / 12
    assert trend_reach(n, rho) == pytest.approx(expected, rel=1e-12)


def test_a_straight_trend_beyond_the_data_span_is_refused_with_the_limits():
    check_trend_reach(12.0, 144, (1.0,))  # 12 years ahead of 12 years of data: allowed
    with pytest.raises(EstimInputError) as e:
        check_trend_reach(12.0, 145, (1.0,))
    assert "--trend-damping 1" in str(e.value) and "at most 144 months" in str(e.value)
    with pytest.raises(EstimInputError) as e:
        check_trend_reach(12.0, 240, (1.0,))
    message = str(e.value)
    assert "20.0 years' worth" in message and "12.0 years of data" in message
    rho = float(message.split("give --trend-damping ")[1].split()[0])
    assert (
        trend_reach(240, rho) <= 12.0 < trend_reach(240, rho + 0.01)
    )  # the largest allowed, 2 digits
    check_trend_reach(12.0, 240, (rho,))


def test_the_default_spread_over_damping_is_allowed_to_the_horizon_cap():
    check_trend_reach(
        12.0, 240, ForecastSettings().trend_damping
    )  # its most damped ρ stays within reach


def test_the_forecast_refuses_a_straight_trend_past_the_data_span(shipped_data, true_posterior):
    span = shipped_data.sizes["month"]  # 144 months of data
    with pytest.raises(EstimInputError, match="--trend-damping 1"):
        forecast(shipped_data, true_posterior, [], horizon=span + 1, draws=10, settings=STRAIGHT)
    with pytest.raises(EstimInputError, match="--trend-damping 1"):  # --start moves the end too
        forecast(
            shipped_data,
            true_posterior,
            [],
            start="2019-01",
            horizon=span - 11,
            draws=10,
            settings=STRAIGHT,
        )


# ------------------------------------------------------------------------------------------------------
# a measure inside the horizon


def test_a_measure_that_would_not_act_inside_the_horizon_is_refused(shipped_data, true_posterior):
    late = measure(effects=[HALF], lag_months=12, ramp_months=3)  # begins 2019-01
    with pytest.raises(EstimInputError) as e:
        forecast(shipped_data, true_posterior, [late], horizon=12, draws=10, history=False)
    message = str(e.value)
    assert "begins to act in 2019-01, after the forecast's last month 2018-12" in message
    assert "--horizon 13 or more" in message and "--horizon 15" in message
    far = measure(effects=[HALF], start="2030-01")
    with pytest.raises(EstimInputError, match="begins to act in 2030-01"):
        forecast(shipped_data, true_posterior, [far], horizon=36, draws=10, history=False)


def test_a_measure_still_building_up_is_named_in_the_output(shipped_data, true_posterior):
    ramping = measure(effects=[HALF], lag_months=11, ramp_months=3)  # acts in the 12th month only
    fc = forecast(
        shipped_data, true_posterior, [ramping], horizon=12, draws=10, seed=1, history=False
    )
    assert fc.attrs["partial_measures"] == "m (full strength 2019-02)"
    text = format_forecast(fc, forecast_table(fc))
    assert "Not at full strength by the horizon's end: m (full strength 2019-02)" in text
    full = forecast(
        shipped_data, true_posterior, [ramping], horizon=14, draws=10, seed=1, history=False
    )
    assert full.attrs["partial_measures"] == ""


def test_the_output_states_the_trend_damping(shipped_data, true_posterior):
    fc = forecast(
        shipped_data,
        true_posterior,
        [measure(effects=[HALF])],
        horizon=6,
        draws=10,
        settings=STRAIGHT,
    )
    text = format_forecast(fc, forecast_table(fc))
    assert "damped by ρ = 1 a year (a straight line), fixed (--trend-damping)" in text


# ------------------------------------------------------------------------------------------------------
# numbers against the model's equations


def test_half_the_journeys_from_start_plus_lag_plus_ramp(shipped_data, true_posterior):
    """Multiplier 0.5 on every category's journeys from 2018-04, lag 2, ramp 3: strength k/3 in the k-th month
    from 2018-06, so ratios 1 (to 2018-05), 5/6, 2/3, then 1/2. Under common random numbers each scenario
    count is a binomial thinning of the baseline's, so the ratio of totals deviates from the rate ratio by
    binomial noise only."""
    half = measure(effects=[HALF], start="2018-04", lag_months=2, ramp_months=3)
    fc = forecast(shipped_data, true_posterior, [half], horizon=12, draws=40, seed=3, history=False)
    u = fc["unobserved"].sum(["draw", "section"]).astype(float)
    base, scen = u.sel(scenario="baseline").values, u.sel(scenario="m").values
    expected = np.array([1, 1, 1, 1, 1, 5 / 6, 2 / 3] + [0.5] * 5)
    sd = np.sqrt(expected * (1 - expected) / base)
    assert np.all(np.abs(scen / base - expected) <= 5 * sd + 1e-12)
    assert np.array_equal(scen[:5], base[:5])  # before the effect: the baseline, draw for draw


# ------------------------------------------------------------------------------------------------------
# specs


def test_a_measure_named_baseline_is_refused():
    with pytest.raises(EstimInputError, match="'baseline' is the scenario without measures"):
        measure(name="baseline", effects=[HALF])


@pytest.mark.parametrize(
    ("prior", "reason"),
    [
        ({"distribution": "Uniform", "lower": 0.5, "upper": 0.5}, "needs lower < upper"),
        ({"distribution": "LogNormal", "mu": float("nan"), "sigma": 0.1}, "mu must be finite"),
    ],
)
def test_an_improper_prior_is_refused_as_such(prior, reason):
    # refused as improper (by the prior itself, estim.priors), not for a negative multiplier
    with pytest.raises(EstimInputError) as e:
        measure(effects=[{"name": "x", "target": "journeys", "prior": prior}])
    assert str(e.value).startswith("<measure>: effects[0] (x): ") and reason in str(e.value)
    assert "negative" not in str(e.value)


# ------------------------------------------------------------------------------------------------------
# the command line


def _run_cli(fit, *args):
    return CliRunner().invoke(
        cli, ["forecast", str(fit), "--measures", "coordination", "--draws", "10", *args]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trend-damping", "1", "--horizon", "240"], "--trend-damping 0.94 or less"),
        (["--seed", "-1"], "--seed"),
        (["--horizon", "6"], "measure coordination starts 2018-01 with a lag of 6 months"),
    ],
)
def test_the_command_refuses_with_exit_2(fit_path, args, message):
    result = _run_cli(fit_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "internal error" not in result.output


def test_out_never_replaces_the_fit(tmp_path, fit_path):
    before = fit_path.read_bytes()
    for extra in ([], ["--force"]):
        result = _run_cli(fit_path, "--horizon", "12", "--out", str(fit_path), *extra)
        assert result.exit_code == 2, result.output
        assert "that is the fit the forecast reads" in result.output
    assert fit_path.read_bytes() == before


def test_out_replaces_a_forecast_but_another_file_only_with_force(tmp_path, fit_path):
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", [1, 2])}).to_netcdf(other)
    result = _run_cli(fit_path, "--horizon", "12", "--out", str(other))
    assert result.exit_code == 2 and "not a forecast estim wrote" in result.output
    assert "--force" in result.output and xr.load_dataset(other)["x"].size == 2
    result = _run_cli(fit_path, "--horizon", "12", "--out", str(other), "--force")
    assert result.exit_code == 0, result.output
    first = other.read_bytes()
    result = _run_cli(fit_path, "--horizon", "12", "--out", str(other))  # a forecast: replaced
    assert result.exit_code == 0, result.output
    assert other.read_bytes() == first  # same seed, same bytes
    result = _run_cli(fit_path, "--horizon", "12", "--out", str(other), "--seed", "12")
    assert result.exit_code == 0 and other.read_bytes() != first


# ------------------------------------------------------------------------------------------------------
# no negative multiplier: a prior reaching one is refused (it used to pass when its 99.95 % quantile did not)


EDGE = normal(0.6709, 0.1)  # 99.95 % quantile 0.99995: accepted before, yet P(value > 1) = 0.0005


@pytest.mark.parametrize(
    "effect",
    [
        # accepted before; at seed 0 one of 1000 forecast draws had the multiplier -0.003, and for that draw
        # the forecast (exit 0) gave 0 unobserved crossings (journeys; baseline 12,232), 10,646 (wait, cut to
        # its floor) or 946 apprehensions (guard hazard; baseline 12,562)
        {"target": "journeys", "multiplier": "1 - value", "prior": EDGE},
        {"target": "wait", "multiplier": "1 - value", "prior": EDGE},
        {"target": "guard_hazard", "multiplier": "1 - value", "prior": EDGE},
        {"target": "guard_hazard", "multiplier": "value", "prior": normal(1.0, 0.3)},
        {
            "target": "informant_hazard",
            "multiplier": "value",
            "prior": {"distribution": "StudentT", "nu": 30.0, "mu": 1.2, "sigma": 0.01},
        },
    ],
)
def test_a_prior_on_every_real_number_is_refused(effect):
    with pytest.raises(EstimInputError) as e:
        measure(effects=[{"name": "x", **effect}])
    text = str(e.value)
    law = effect["prior"]["distribution"]
    assert text.startswith(
        f"<measure>: effects[0] (x): a {law} prior puts mass on every real number"
    ), text
    assert "Beta" in text and "LogNormal" in text  # what to use instead


@pytest.mark.parametrize(
    ("effect", "message"),
    [
        (  # a 150 % reduction at the top of a uniform prior (refused before too, by its quantiles)
            {
                "target": "journeys",
                "multiplier": "1 - value",
                "prior": {"distribution": "Uniform", "lower": 0.0, "upper": 1.5},
            },
            "above 1 (its support: 0 to 1.5)",
        ),
        (
            {
                "target": "journeys",
                "multiplier": "1 - value",
                "prior": {"distribution": "LogNormal", "mu": -3.0, "sigma": 0.1},
            },
            "above 1",
        ),
        (
            {
                "target": "guard_hazard",
                "multiplier": "value",
                "prior": {"distribution": "Uniform", "lower": -0.1, "upper": 2.0},
            },
            "below 0",
        ),
    ],
)
def test_a_prior_reaching_a_negative_multiplier_is_refused(effect, message):
    with pytest.raises(EstimInputError) as e:
        measure(effects=[{"name": "x", **effect}])
    text = str(e.value)
    assert text.startswith("<measure>: effects[0] (x): the prior ") and message in text, text
    assert f"puts mass on effect sizes {message}" in text, text
    assert f"multiplier M = {effect['multiplier']} of {effect['target']} would be negative" in text


def test_priors_within_the_domain_are_accepted_up_to_its_bound():
    for effect in (  # a hair beyond the bound: 1 + 1e-9, -1e-9
        {"target": "journeys", "multiplier": "1 - value", "prior": fixed(1.0)},
        {"target": "journeys", "multiplier": "value", "prior": fixed(0.0)},
    ):
        with pytest.raises(EstimInputError, match="would be negative"):
            measure(effects=[{"name": "x", **effect}])
    bounded = [
        {
            "multiplier": "1 - value",
            "prior": {"distribution": "Uniform", "lower": 0.2, "upper": 1.0},
        },
        {"multiplier": "1 - value", "prior": {"distribution": "Beta", "alpha": 2.0, "beta": 3.0}},
        {"multiplier": "value", "prior": {"distribution": "Gamma", "alpha": 4.0, "beta": 4.0}},
        {"multiplier": "value", "prior": {"distribution": "HalfNormal", "sigma": 1.0}},
    ]
    for effect in bounded:
        spec = measure(effects=[{"name": "x", "target": "journeys", **effect}])
        e = spec.effects[0]
        drawn = e.multiplier_of(e.draw(np.random.default_rng(0), 20_000))
        assert drawn.min() >= 0.0


def test_an_effect_built_in_python_is_refused_alike():
    from estim.measures.spec import EffectSpec
    from estim.priors import Prior

    with pytest.raises(EstimInputError, match="effect x: the prior Uniform.*above 1"):
        EffectSpec(
            "x",
            "journeys",
            ("smuggler",),
            "1 - value",
            Prior("Uniform", lower=0.5, upper=1.2),
            None,
            "",
        )
    with pytest.raises(EstimInputError, match='effect x: multiplier is "value" or "1 - value"'):
        EffectSpec(
            "x", "journeys", ("smuggler",), "2 - value", Prior("Beta", alpha=2, beta=2), None, ""
        )
