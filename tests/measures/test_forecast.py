"""The forecast engine: the coupling's laws against their exact distributions, the future against the
simulator's own continuation, the mechanisms against what they must do, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border.rates import posterior_parameters, rates
from estim.measures.covariates import damped_years, project_series
from estim.measures.forecast import (
    ForecastSettings,
    forecast,
    future_data,
    nested_gamma,
    nested_poisson,
)
from estim.measures.spec import parse_measure

STRAIGHT = ForecastSettings(trend_damping=1.0, level_sd=0.0)


def measure(name="m", effects=(), **top):
    return parse_measure({"name": name, "start": "2018-01", "effects": list(effects), **top})


def fixed(value):
    """A prior concentrated at `value` (width 2e-9; a Normal would reach negative multipliers, refused)."""
    return {"distribution": "Uniform", "lower": value - 1e-9, "upper": value + 1e-9}


# ------------------------------------------------------------------------------------------------------
# the coupling keeps each law exact


def test_nested_poisson_keeps_each_rate_poisson_and_orders_the_counts():
    rng = np.random.default_rng(1)
    rates_ = np.array([5.0, 0.7, 8.0, 0.0])
    n = 200_000
    counts = nested_poisson(np.broadcast_to(rates_[:, None], (4, n)).copy(), rng, axis=0)
    for lam, x in zip(rates_, counts, strict=True):
        assert abs(x.mean() - lam) < 4 * np.sqrt(max(lam, 1e-9) / n) + 1e-12
        assert abs(x.var() - lam) < 0.03 * max(lam, 0.1)
        assert abs(np.mean(x == 0) - np.exp(-lam)) < 0.005
    assert (counts[1] <= counts[0]).all() and (counts[0] <= counts[2]).all()
    assert (counts[3] == 0).all()


def test_nested_gamma_keeps_each_shape_gamma():
    rng = np.random.default_rng(2)
    shapes = np.array([4.0, 1.5, 7.0, 0.0])
    n = 200_000
    g = nested_gamma(np.broadcast_to(shapes[:, None], (4, n)), rng, axis=0)
    for a, x in zip(shapes[:3], g[:3], strict=True):
        assert scipy.stats.kstest(x[:20_000], scipy.stats.gamma(a).cdf).pvalue > 1e-3
    assert (g[1] <= g[0]).all() and (g[0] <= g[2]).all() and (g[3] == 0).all()


def test_apprehensions_given_journeys_follow_the_negative_binomial():
    # K | J ~ NegBin(J, 1 − p), drawn as Poisson(Gamma(J) q): brute-force frequencies against the pmf
    rng = np.random.default_rng(3)
    j, p, n = 3, 0.4, 100_000
    q = p / (1 - p)
    k = nested_poisson(nested_gamma(np.full((1, n), j), rng, axis=0) * q, rng, axis=0)[0]
    observed = np.bincount(k, minlength=40)[:15]
    expected = scipy.stats.nbinom(j, 1 - p).pmf(np.arange(15)) * n
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < scipy.stats.chi2(14).ppf(0.999)


@pytest.mark.parametrize("retry", [1.0, 0.6])
def test_forecast_counts_have_the_models_moments_when_people_give_up(retry):
    # one cell, two scenarios (hazards 0.5 and 1.0), 100,000 draws: E U = μ(1 − p + p s) with
    # s = r(1 − p)/(1 − pr) and E K = μ p/(1 − pr) (each journey: K = 0 w.p. 1 − p, else 1 + Geometric(pr))
    from estim.measures.forecast import _draw_counts

    n, mu, phi = 100_000, 20.0, 3.0
    hazard = np.array([0.5, 1.0])
    counts = _draw_counts(
        np.full((n, 2, 1, 1, 1), mu),
        np.broadcast_to(hazard[None, :, None, None, None], (n, 2, 1, 1, 1)),
        np.full((n, 1), phi),
        seed=4,
        retry=np.full(n, retry),
    )
    p = 1 - np.exp(-hazard)
    s = retry * (1 - p) / (1 - p * retry)
    u = counts["unobserved"].reshape(n, 2)
    k = counts["apprehensions"].reshape(n, 2)
    np.testing.assert_allclose(u.mean(0), mu * (1 - p + p * s), rtol=0.01)
    np.testing.assert_allclose(k.mean(0), mu * p / (1 - p * retry), rtol=0.01)
    # common random numbers: the scenario with the larger hazard never has more never-apprehended journeys,
    # so its unobserved crossings are close to the other's (strongly correlated)
    assert np.corrcoef(u[:, 0], u[:, 1])[0, 1] > 0.8


# ------------------------------------------------------------------------------------------------------
# the world without measures


def test_the_model_rates_at_the_true_parameters_are_the_simulators(shipped_data, true_posterior):
    # the conftest's translation of the simulator's parameters is right, so the references below hold
    truth = xr.load_dataset(_synthetic() / "truth.nc")
    parameters, _ = posterior_parameters(true_posterior.isel(draw=[0]))
    mu = np.exp(rates(shipped_data, parameters).log_mu[0])
    expected = truth["expected_journeys"].transpose("section", "month", "category").values
    np.testing.assert_allclose(mu, expected, rtol=1e-10)


def test_straight_trends_continue_the_simulators_journeys(shipped_data, true_posterior):
    # With no damping and no level walk, the forecast's expected journeys of the log-linear categories in
    # 2018-2019 are the simulator's own continuation (simulated for 14 years at the same parameters).
    from estim.simulate import SimulationConfig, simulate

    longer = simulate(seed=5, config=SimulationConfig(years=14)).truth
    months = longer["month"].values[144:]
    future = future_data(shipped_data, months.astype("datetime64[ns]"), 1.0)
    parameters, _ = posterior_parameters(true_posterior.isel(draw=[0]))
    mu = np.exp(rates(future, parameters).log_mu[0])[..., :4]
    expected = longer["expected_journeys"].isel(month=slice(144, None))
    expected = expected.transpose("section", "month", "category").values[..., :4]
    np.testing.assert_allclose(mu, expected, rtol=1e-9)


def test_forecast_counts_match_their_expectation(shipped_data, true_posterior):
    fc = forecast(
        shipped_data,
        true_posterior,
        [],
        horizon=12,
        draws=40,
        seed=1,
        settings=STRAIGHT,
        by_category=True,
        history=False,
    )
    months = fc["month"].values
    future = future_data(shipped_data, months, 1.0)
    parameters, _ = posterior_parameters(true_posterior.isel(draw=[0]))
    mu = np.exp(rates(future, parameters).log_mu[0])[..., :4].sum()
    observed = fc["unobserved"].isel(category=slice(0, 4)).sum(["section", "month", "category"])
    # 40 draws of a sum of ~5,000 journeys a year: the mean within 4 standard errors (variance ≥ Poisson)
    sd = float(observed.std()) / np.sqrt(40)
    assert abs(float(observed.mean()) - mu) < 4 * sd + 0.01 * mu


def test_damped_clock():
    assert np.allclose(damped_years(2.0, 24, 1.0), 2.0 + np.arange(1, 25) / 12)
    steps = np.diff(damped_years(0.0, 36, 0.5), prepend=0.0)
    assert np.isclose(steps[12] / steps[0], 0.5) and np.isclose(steps[24] / steps[12], 0.5)


def test_projected_series_carries_the_last_year_and_the_drift_not_the_regime_change():
    rng = np.random.default_rng(4)
    months = 72
    season = np.tile(np.sin(2 * np.pi * np.arange(12) / 12), 6)
    x = 5.0 + season + 0.1 * np.arange(months) / 12  # drift 0.1 a year
    regime = np.zeros((1, months))
    draws = project_series(x, regime, 24, 4000, rng, damping=1.0, window=36)
    median = np.median(draws, axis=0)
    np.testing.assert_allclose(median[:12], x[-12:] + 0.1, atol=1e-9)
    np.testing.assert_allclose(median[12:], x[-12:] + 0.2, atol=1e-9)
    # a level shift 20 months before the end: the changes across it are not drift
    shifted = x + np.where(np.arange(months) >= months - 20, 1.0, 0.0)
    regime = np.where(np.arange(months) >= months - 20, 1.0, 0.0)[None, :]
    draws = project_series(shifted, regime, 12, 4000, rng, damping=1.0, window=36)
    np.testing.assert_allclose(np.median(draws, axis=0), shifted[-12:] + 0.1, atol=1e-9)


# ------------------------------------------------------------------------------------------------------
# measures


def _run(data, posterior, measures, **kw):
    kw = {"horizon": 24, "draws": 40, "seed": 7, "settings": STRAIGHT, "history": False} | kw
    return forecast(data, posterior, measures, by_category=True, **kw)


def test_a_measure_that_changes_nothing_gives_the_baseline_exactly(shipped_data, true_posterior):
    noop = measure(
        effects=[{"name": "flow", "target": "journeys", "prior": fixed(1.0)}], ramp_months=6
    )
    fc = _run(shipped_data, true_posterior, [noop])
    assert (fc["unobserved"].sel(scenario="m") == fc["unobserved"].sel(scenario="baseline")).all()
    assert (fc["attempts"].sel(scenario="m") == fc["attempts"].sel(scenario="baseline")).all()


def test_journeys_effect_thins_only_its_categories(shipped_data, true_posterior):
    half = measure(
        effects=[
            {
                "name": "take_up",
                "target": "journeys",
                "categories": ["border_resident"],
                "multiplier": "1 - value",
                "prior": fixed(0.5),
            }
        ]
    )
    fc = _run(shipped_data, true_posterior, [half])
    u = fc["unobserved"]
    others = u.sel(category=["labour_migrant", "transit_migrant", "smuggler", "bypasser"])
    assert (others.sel(scenario="m") == others.sel(scenario="baseline")).all()
    res = u.sel(category="border_resident")
    assert (res.sel(scenario="m") <= res.sel(scenario="baseline")).all()  # nested: a thinning
    ratio = float(res.sel(scenario="m").sum() / res.sel(scenario="baseline").sum())
    n = float(res.sel(scenario="baseline").sum())
    assert abs(ratio - 0.5) < 4 * np.sqrt(0.25 / n)


def test_detection_uplift_changes_attempts_not_unobserved(shipped_data, true_posterior):
    guard = measure(
        effects=[
            {
                "name": "uplift",
                "target": "guard_hazard",
                "categories": ["smuggler"],
                "prior": fixed(1.5),
            }
        ]
    )
    fc = _run(shipped_data, true_posterior, [guard])
    assert (fc["unobserved"].sel(scenario="m") == fc["unobserved"].sel(scenario="baseline")).all()
    k = fc["apprehensions"].sel(category="smuggler")
    assert float(k.sel(scenario="m").sum()) > 1.2 * float(k.sel(scenario="baseline").sum())
    other = fc["apprehensions"].sel(category="labour_migrant")
    assert (other.sel(scenario="m") == other.sel(scenario="baseline")).all()


def test_shorter_waits_mean_fewer_bypassers_through_the_elasticity(shipped_data, true_posterior):
    faster = measure(
        effects=[{"name": "cut", "target": "wait", "multiplier": "1 - value", "prior": fixed(0.5)}]
    )
    fc = _run(shipped_data, true_posterior, [faster])
    b = fc["unobserved"].sel(category="bypasser").sum(["draw", "section", "month"])
    eta1 = float(true_posterior["bypass_eta1"][0, 0])
    # the bypass odds fall by 0.5^η1; at shares of a few per cent the share falls by about as much
    ratio = float(b.sel(scenario="m") / b.sel(scenario="baseline"))
    assert abs(ratio - 0.5**eta1) < 0.05
    others = fc["unobserved"].sel(category="smuggler")
    assert (others.sel(scenario="m") == others.sel(scenario="baseline")).all()


def test_displacement_moves_prevented_journeys_to_the_neighbours(shipped_data, true_posterior):
    def blocked(displacement):
        return measure(
            name="block",
            sections=["omsk"],
            displacement=displacement,
            effects=[
                {
                    "name": "keep",
                    "target": "journeys",
                    "categories": ["smuggler"],
                    "prior": fixed(0.2),
                }
            ],
        )

    totals = {}
    for d in (0.0, 0.5):
        fc = _run(shipped_data, true_posterior, [blocked(d)], draws=40)
        s = fc["unobserved"].sel(category="smuggler").sum(["draw", "month"])
        totals[d] = s
    change = {d: t.sel(scenario="block") - t.sel(scenario="baseline") for d, t in totals.items()}
    neighbours = ["tyumen", "novosibirsk"]
    assert float(change[0.0].sel(section=neighbours).sum()) == 0
    assert float(change[0.5].sel(section=neighbours).sum()) > 0
    whole = {d: float(c.sum()) for d, c in change.items()}
    assert whole[0.0] < 0 and abs(whole[0.5] / whole[0.0] - 0.5) < 0.15


def test_ramp_and_lag(shipped_data, true_posterior):
    late = measure(
        lag_months=6,
        ramp_months=6,
        effects=[
            {
                "name": "flow",
                "target": "journeys",
                "prior": {"distribution": "Uniform", "lower": 0.0, "upper": 1e-9},
            }
        ],
    )
    fc = _run(shipped_data, true_posterior, [late], horizon=18)
    u = fc["unobserved"].sel(category="labour_migrant").sum(["draw", "section"])
    ratio = (u.sel(scenario="m") / u.sel(scenario="baseline")).values
    assert np.allclose(ratio[:6], 1.0)  # the lag
    assert np.all(np.diff(ratio[5:12]) < 0)  # the ramp
    assert np.allclose(ratio[12:], 0.0)  # full strength: none left


def test_same_seed_same_draws_and_a_measure_does_not_move_the_baseline(
    shipped_data, true_posterior
):
    a = measure(name="a", effects=[{"name": "x", "target": "journeys", "prior": fixed(0.9)}])
    b = measure(name="b", effects=[{"name": "x", "target": "wait", "prior": fixed(0.5)}])
    one = _run(shipped_data, true_posterior, [a])
    again = _run(shipped_data, true_posterior, [a])
    both = _run(shipped_data, true_posterior, [a, b])
    assert one.identical(again)
    # effect sizes come from each effect's own stream: adding a measure leaves a's draws as they were
    np.testing.assert_array_equal(
        one["effect_size"].sel(effect="a.x"), both["effect_size"].sel(effect="a.x")
    )


def test_bad_start_and_horizon_are_refused(shipped_data, true_posterior):
    with pytest.raises(EstimInputError, match="inside the fitted data"):
        forecast(shipped_data, true_posterior, [], start="2017-06", history=False)
    with pytest.raises(EstimInputError, match="YYYY-MM"):
        forecast(shipped_data, true_posterior, [], start="June 2018", history=False)
    with pytest.raises(EstimInputError, match="horizon"):
        forecast(shipped_data, true_posterior, [], horizon=0, history=False)


def test_a_later_start_keeps_only_the_horizon(shipped_data, true_posterior):
    fc = _run(shipped_data, true_posterior, [], start="2019-03", horizon=10)
    assert str(fc["month"].values[0])[:7] == "2019-03" and fc.sizes["month"] == 10


def _synthetic():
    from estim.paths import SYNTHETIC_DIR

    return SYNTHETIC_DIR


def test_uncertain_damping_spreads_the_draws_over_its_values(shipped_data, true_posterior):
    # identical parameters at every draw: the draws on the straight clock (ρ = 1, odd draws) forecast more
    # labour migrants (a rising trend) in the third year than those on a damped one (ρ = 0.5, even draws)
    settings = ForecastSettings(trend_damping=(0.5, 1.0), level_sd=0.0)
    fc = forecast(
        shipped_data,
        true_posterior,
        [],
        horizon=36,
        draws=40,
        seed=3,
        settings=settings,
        by_category=True,
        history=False,
    )
    third = fc["unobserved"].sel(category="labour_migrant").isel(month=slice(24, 36))
    per_draw = third.sum(["scenario", "section", "month"]).values
    damped, straight = per_draw[0::2].mean(), per_draw[1::2].mean()
    trend = float(true_posterior["trend"].sel(journey_category="labour_migrant")[0, 0])
    assert trend > 0.1 and straight > 1.1 * damped
    with pytest.raises(EstimInputError, match="trend_damping"):
        ForecastSettings(trend_damping=(0.5, 1.5))
