"""The forecast backtest (issue 12): the data split, the two baselines, the CRPS (fast), and the whole backtest
on the shipped data (slow: `pytest -m slow tests/measures/test_backtest.py`; one fit, 2–3 minutes)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border.data_kind import records_data
from estim.measures import backtest as B
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records


@pytest.fixture(scope="module")
def data() -> xr.Dataset:
    return records_data(load_records(SYNTHETIC_DIR, key=DEFAULT_KEY))


# --------------------------------------------------------------------------------------------------------------
# the split


def test_months_before_keeps_exactly_the_months_before_the_split(data):
    cut = np.datetime64("2016-01", "M")
    fitted = B.months_before(data, "2016-01")
    months = data["month"].values.astype("datetime64[M]")
    expected = data["month"].values[months < cut]
    assert len(expected) == 120  # 2006–2015
    np.testing.assert_array_equal(fitted["month"].values, expected)
    for name in list(data.data_vars) + list(data.coords):
        v = data[name]
        if "month" in v.dims:
            # every month-dimensioned variable: the same values on the kept months, nothing after the split
            want = v.isel(month=np.flatnonzero(months < cut))
            assert fitted[name].sizes["month"] == 120, name
            xr.testing.assert_equal(fitted[name], want)
        else:
            xr.testing.assert_equal(fitted[name], v)
    # the trend's clock is not restarted: years since the data's first month, as in the full data
    assert fitted["years"].values[0] == 0.0
    assert fitted["years"].values[-1] == pytest.approx(119 / 12)


def test_months_before_refuses_a_split_before_the_data(data):
    with pytest.raises(EstimInputError, match="before 2005-01"):
        B.months_before(data, "2005-01")
    with pytest.raises(EstimInputError, match="month YYYY-MM"):
        B.months_before(data, "not a month")


# --------------------------------------------------------------------------------------------------------------
# the baselines


def _seasonal_series(
    seed: int, n: int, level: float = 200.0, amplitude: float = 30.0, sd: float = 5.0
):
    t = np.arange(n)
    mean = level + amplitude * np.sin(2 * np.pi * t / 12)
    return mean, mean + np.random.default_rng(seed).normal(0.0, sd, n)


def test_seasonal_naive_median_is_last_years_value_and_spread_grows_with_the_years():
    _, y = _seasonal_series(1, 60)
    draws = 4000
    ens = B.seasonal_naive(y, 24, draws, seed=3)
    assert ens.shape == (24, draws)
    last_year = np.concatenate([y[-12:], y[-12:]])
    # σ computed here from its definition: root mean square of the seasonal differences y_t − y_{t−12}
    sigma = math.sqrt(np.mean([(y[t] - y[t - 12]) ** 2 for t in range(12, 60)]))
    k = np.repeat([1, 2], 12)
    # the sample median of M normal draws has sd ≈ 1.2533 σ_h/√M: 4 of them
    tol = 4 * 1.2533 * sigma * np.sqrt(k) / np.sqrt(draws)
    assert np.all(np.abs(np.median(ens, axis=1) - last_year) < tol)
    # σ_h = σ√k: the second year's spread is √2 the first's (sd of a sample sd ≈ σ_h/√(2M); 5 of them)
    sd = ens.std(axis=1)
    np.testing.assert_allclose(sd, sigma * np.sqrt(k), rtol=5 / np.sqrt(2 * draws))
    # deterministic in the seed
    assert B.seasonal_naive(y, 24, draws, seed=3).tobytes() == ens.tobytes()


def test_auto_ets_recovers_a_known_seasonal_level():
    sd = 5.0
    mean, y = _seasonal_series(0, 144, sd=sd)
    ens = B.auto_ets(y[:120], 24, 2000, seed=11)
    assert ens.shape == (24, 2000)
    err = np.median(ens, axis=1) - mean[120:]
    # The median forecast is the estimated level + season; from 120 months of noise σ = 5 the level's error has
    # sd ≤ σ√(α/(2−α)) ≤ σ and each seasonal state's less. 3σ per month is far inside the seasonal amplitude
    # (30): a forecast that missed the season, or the level by 3σ, fails. The level alone (mean over the 24
    # months, where the season cancels) within σ.
    assert np.all(np.abs(err) < 3 * sd), err
    assert abs(err.mean()) < sd
    # the one-step spread is the noise's (its ML estimate from 120 months has ~7 % relative sd)
    assert 0.7 * sd < ens[0].std() < 1.3 * sd
    assert B.auto_ets(y[:120], 24, 2000, seed=11).tobytes() == ens.tobytes()


def test_baselines_refuse_short_series():
    with pytest.raises(EstimInputError, match="at least 24"):
        B.seasonal_naive(np.arange(20.0), 12, 10, seed=0)
    with pytest.raises(EstimInputError, match="at least 24"):
        B.auto_ets(np.arange(20.0), 12, 10, seed=0)


# --------------------------------------------------------------------------------------------------------------
# the score


def test_crps_equals_the_energy_form():
    rng = np.random.default_rng(5)
    ens = rng.normal(10.0, 3.0, (4, 7))
    obs = np.array([10.0, 2.0, 14.5, 30.0])
    want = [
        np.mean(np.abs(e - y)) - 0.5 * np.mean(np.abs(e[:, None] - e[None, :]))
        for e, y in zip(ens, obs, strict=True)
    ]
    np.testing.assert_allclose(B.crps(obs, ens), want, rtol=1e-12)
    # a one-member ensemble is a point forecast: CRPS = absolute error
    np.testing.assert_allclose(B.crps(obs, obs[:, None] + 2.5), 2.5)


def test_crps_prefers_an_ensemble_on_the_truth():
    rng = np.random.default_rng(6)
    obs = rng.poisson(50, 24).astype(float)
    on = obs[:, None] + rng.normal(0, 5, (24, 500))
    assert B.crps(obs, on).mean() < B.crps(obs, on + 10).mean()
    assert B.crps(obs, on).mean() < B.crps(obs, on * 3 - 2 * obs[:, None]).mean()  # too wide


def test_coverage_counts_the_months_inside_the_interval():
    ens = np.tile(np.arange(101.0), (4, 1))  # 5 % and 95 % quantiles: 5 and 95
    assert B.coverage([5.0, 95.0, 4.9, 95.1], ens) == 0.5


def test_format_backtest_puts_the_whole_border_first():
    rows = []
    for name, ratio in (("astrakhan", 0.8), ("border", 0.474), ("omsk", 1.2)):
        rows.append(
            {
                "series": name,
                "months": 24,
                "estim_crps": ratio * 10,
                "ets_crps": 10.0,
                "snaive_crps": 12.0,
                "ratio_ets": ratio,
                "ratio_snaive": ratio * 10 / 12,
                "estim_coverage": 0.9,
                "ets_coverage": 0.8,
                "snaive_coverage": 0.7,
                "ets_model": "ETS(A,N,A)",
                "unobserved_crps": 3.0,
                "unobserved_coverage": 0.875,
                "gate": "diagnostics gate passed",
            }
        )
    text = B.format_backtest(pd.DataFrame(rows))
    assert "CRPS" in text and "AutoETS" in text and "SeasonalNaive" in text
    assert "Whole border: estim/ETS = 0.474" in text
    body = [
        line.split()[0]
        for line in text.splitlines()
        if line.split()[:1] in (["border"], ["astrakhan"])
    ]
    assert body == ["border", "astrakhan"]


# --------------------------------------------------------------------------------------------------------------
# the whole backtest


@pytest.mark.slow
def test_backtest_on_the_shipped_data(data):
    truth = xr.load_dataset(SYNTHETIC_DIR / "truth.nc")
    table = B.backtest(
        data,
        truth,
        split="2016-01",
        horizon=24,
        draws=400,
        seed=20061,
        target_accept=0.95,
        tune=1000,
    )
    sections = [str(s) for s in data["section"].values]
    assert table["series"].tolist() == ["border", *sections]
    for col in (
        "estim_crps",
        "ets_crps",
        "snaive_crps",
        "ratio_ets",
        "ratio_snaive",
        "unobserved_crps",
    ):
        assert np.isfinite(table[col]).all() and (table[col] >= 0).all(), col
    for col in ("estim_coverage", "ets_coverage", "snaive_coverage", "unobserved_coverage"):
        assert table[col].between(0, 1).all(), col
    # coverage over 24 months is a multiple of 1/24
    np.testing.assert_allclose((table["unobserved_coverage"] * 24) % 1, 0, atol=1e-9)
    # the gate's verdict is recorded, whatever it is
    assert table["gate_passed"].map(lambda v: isinstance(v, bool)).all()
    from estim.families.border.revision import MODEL_REVISION

    assert (table["model_revision"] == MODEL_REVISION).all() and (table["attempts"] >= 1).all()
    assert table["gate"].str.startswith("diagnostics gate").all()
    # the observed totals are the 2016–2017 records and the truth's, computed here independently
    months = pd.DatetimeIndex(data["month"].values)
    later = (months >= "2016-01-01") & (months < "2018-01-01")
    assert table.loc[0, "apprehensions"] == int(data["apprehensions"].values[:, later].sum())
    t = truth["unobserved"].sel(month=(truth["month"] >= np.datetime64("2016-01-01")))
    assert table.loc[0, "unobserved_truth"] == int(t.sum())
    assert table.loc[1:, "unobserved_truth"].sum() == table.loc[0, "unobserved_truth"]
    print("\n" + B.format_backtest(table))


# --------------------------------------------------------------------------------------------------------------
# the fit retries a failed gate as `estim fit` does


def test_fit_border_retries_a_failed_gate_as_estim_fit_does(monkeypatch):
    """Two failed gates (mixing, then divergences) and a pass: three fits, the second with the draws and warm-up
    doubled at the same target (mixing), the third also at a higher target (divergences); the last fit is
    returned with ``attempts`` = 3. With ``retries=0`` one fit, whatever its verdict."""
    import types

    import estim.families.border as border_family
    import estim.run.sampler as sampler_module
    from estim.run.fit import retry_settings

    calls = []

    def fake_nuts(model, sampler, seed, cores=None):
        calls.append(sampler)
        return xr.DataTree.from_dict({"posterior": xr.Dataset()})

    verdicts = iter(
        [
            types.SimpleNamespace(passed=False, failed=("ess_bulk",)),
            types.SimpleNamespace(passed=False, failed=("divergences",)),
            types.SimpleNamespace(passed=True, failed=()),
        ]
    )
    monkeypatch.setattr(sampler_module, "nuts", fake_nuts)
    monkeypatch.setattr(border_family, "build_border", lambda data, priors, **options: None)
    monkeypatch.setattr(B, "border_gate", lambda fit: next(verdicts))
    fit = B.fit_border(xr.Dataset(), seed=1, retries=3)
    assert len(calls) == 3 and fit["posterior"].attrs["attempts"] == 3
    first = calls[0]
    assert calls[1] == retry_settings(first, 1, ("ess_bulk",), first)
    assert calls[1].draws == 2 * first.draws and calls[1].target_accept == first.target_accept
    assert calls[2] == retry_settings(first, 2, ("divergences",), calls[1])
    assert calls[2].target_accept > calls[1].target_accept

    calls.clear()
    monkeypatch.setattr(
        B, "border_gate", lambda fit: types.SimpleNamespace(passed=False, failed=("ess_bulk",))
    )
    fit = B.fit_border(xr.Dataset(), seed=1, retries=0)
    assert len(calls) == 1 and fit["posterior"].attrs["attempts"] == 1
