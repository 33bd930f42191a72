"""Backtest of the border model's forecasts against two standard forecasters (issue 12).

The border model is fitted to the months before ``split`` only (2006–2015 of the shipped data), with the priors,
options and sampler settings of ``models/border.toml``, and its baseline forecast (`estim.measures.forecast`,
no measure) of the next ``horizon`` months is scored against what happened:

* **monthly apprehensions** (summed over the categories), per section and for the whole border, against two
  baselines fitted to the same monthly series:

  - **AutoETS** (`auto_ets`): exponential smoothing state-space models with additive seasonality of period 12,
    chosen by AICc among errors {additive, multiplicative (only for strictly positive series)} × trends {none,
    additive, additive damped} — statsforecast's ``AutoETS`` search restricted to additive seasonality (it
    also tries no and multiplicative seasonality); fitted by statsmodels' ``ETSModel`` (statsforecast needs
    pandas < 3); its predictive ensemble is ``draws`` simulated paths of the chosen model;
  - **SeasonalNaive** (`seasonal_naive`): statsforecast's definition — the forecast of month T + h is the
    value of the same month of the last observed year, y_{T+h−12k} with k = ⌈h/12⌉, and its predictive law is
    Normal(y_{T+h−12k}, σ²k) with σ² = Σ (y_t − y_{t−12})² / (n − 12), the mean square of the seasonal
    differences (not centred); the ensemble is ``draws`` independent draws from that normal law;

* **monthly unobserved crossings** (summed over the categories), against the simulator's truth (``truth.nc``):
  only the border model forecasts what no register records.

The score is the continuous ranked probability score (CRPS, Gneiting & Raftery 2007) of each ensemble, in the
units of the counts: CRPS(F, y) = E|X − y| − ½ E|X − X'| with X, X' independent draws of F, estimated from the
ensemble (`crps`; `scoringrules`' energy form). It rewards a predictive law both for being near the truth and
for being sharp; for a point forecast it is the absolute error. A series' score is the mean over the horizon's
months; the ratio estim/baseline below 1 means the border model forecast that series better. Every
forecaster's ensemble has the same number of members (the estimator's small-ensemble bias is then alike).
The 90 % equal-tailed interval of each ensemble (`estim.intervals`) is checked against each month's count.

The baselines' ensembles are censored at zero before scoring (a count is never negative, and their normal or
additive-error laws put mass below zero for small series). Censoring at a bound the observation respects can
only lower the CRPS (the integrand (F(z) − 1{y ≤ z})² becomes 0 below zero and is unchanged above), and leaves
the interval coverage unchanged: it favours the baselines, never the border model.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.intervals import equal_tailed_array
from estim.run.sampler import seeds

SEASON = 12  # months in a seasonal cycle
INTERVAL = 0.9  # probability of the central intervals whose coverage is reported
BORDER = "border"  # the whole border's series name
MIN_YEARS = 2  # full seasonal cycles a baseline needs (ETS's seasonal initial states)


# --------------------------------------------------------------------------------------------------------------
# the data


def _month(value: Any, what: str) -> np.datetime64:
    try:
        return np.datetime64(pd.Timestamp(str(value)).to_datetime64(), "M")
    except (ValueError, TypeError) as e:
        raise EstimInputError(f"{what} must be a month YYYY-MM, got {value!r}") from e


def months_before(data: xr.Dataset, month: str) -> xr.Dataset:
    """The border model's data restricted to the months before ``month`` (YYYY-MM): every variable and
    coordinate with a month dimension keeps those months only. The ``years`` variable keeps its values (years
    since the first month of the data), so the trend's origin is the same as in the full data."""
    cut = _month(month, "the split month")
    months = data["month"].values.astype("datetime64[M]")
    keep = months < cut
    if not keep.any():
        raise EstimInputError(
            f"no month of the data ({str(months[0])} – {str(months[-1])}) lies before {cut}"
        )
    return data.isel(month=np.flatnonzero(keep))


def apprehension_series(data: xr.Dataset) -> pd.DataFrame:
    """Monthly apprehensions summed over the categories: one column per section and ``border`` (their sum),
    indexed by month (month starts, frequency ``MS``)."""
    a = data["apprehensions"].sum("category").transpose("month", "section")
    frame = pd.DataFrame(
        a.values.astype(float),
        index=_month_index(data["month"].values),
        columns=[str(s) for s in data["section"].values],
    )
    frame.insert(0, BORDER, frame.sum(axis=1))
    return frame


def _month_index(months: np.ndarray) -> pd.DatetimeIndex:
    start = pd.Timestamp(np.datetime64(months[0], "M"))
    return pd.date_range(start, periods=len(months), freq="MS")


# --------------------------------------------------------------------------------------------------------------
# the baselines


def _series(series: Any, what: str) -> pd.Series:
    """A monthly series as statsmodels wants it: float values on a month-start index with frequency MS (an
    array gets an arbitrary one; only the order of the months matters to the baselines)."""
    if isinstance(series, pd.Series) and isinstance(series.index, pd.DatetimeIndex):
        values = series.to_numpy(dtype=float)
        index = _month_index(series.index.values)
    else:
        values = np.asarray(series, dtype=float)
        index = pd.date_range("2000-01-01", periods=values.size, freq="MS")
    if values.ndim != 1:
        raise EstimInputError(f"{what}: a series has one dimension, got shape {values.shape}")
    if values.size < MIN_YEARS * SEASON:
        raise EstimInputError(
            f"{what}: {values.size} months; the seasonal baselines need at least {MIN_YEARS * SEASON}"
        )
    if not np.isfinite(values).all():
        raise EstimInputError(f"{what}: the series has missing or infinite values")
    return pd.Series(values, index=index)


def _check_sizes(horizon: int, draws: int) -> None:
    if horizon < 1 or draws < 1:
        raise EstimInputError(f"horizon and draws must be at least 1, got {horizon} and {draws}")


def select_ets(series: Any, what: str = "series") -> Any:
    """The ETS model with additive seasonality (period 12) of lowest AICc among errors {additive,
    multiplicative} × trends {none, additive, additive damped}, fitted by maximum likelihood (statsmodels
    ``ETSModel``); multiplicative errors only for a strictly positive series. Returns the fitted results."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = _series(series, what)
    errors = ("add", "mul") if (y > 0).all() else ("add",)
    best = None
    with warnings.catch_warnings():
        # the optimiser's convergence chatter: a candidate that fits badly loses on AICc anyway
        warnings.simplefilter("ignore")
        for error in errors:
            for trend in (None, "add"):
                for damped in (False,) if trend is None else (False, True):
                    model = ETSModel(
                        y,
                        error=error,
                        trend=trend,
                        damped_trend=damped,
                        seasonal="add",
                        seasonal_periods=SEASON,
                    )
                    try:
                        res = model.fit(disp=False)
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                    if np.isfinite(res.aicc) and (best is None or res.aicc < best.aicc):
                        best = res
    if best is None:
        raise EstimInputError(f"{what}: no ETS model could be fitted")
    return best


def ets_name(res: Any) -> str:
    """Hyndman's label of a fitted ETS model, e.g. ETS(A,Ad,A)."""
    m = res.model
    error = "A" if m.error == "add" else "M"
    trend = "N" if m.trend is None else ("Ad" if m.damped_trend else "A")
    season = "N" if m.seasonal is None else ("A" if m.seasonal == "add" else "M")
    return f"ETS({error},{trend},{season})"


def _ets_draws(res: Any, horizon: int, draws: int, seed: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = res.simulate(
            nsimulations=horizon,
            repetitions=draws,
            anchor="end",
            rng=np.random.default_rng(seed),
        )
    return np.asarray(sim, dtype=float).reshape(horizon, draws)


def auto_ets(series: Any, horizon: int, draws: int, seed: int) -> np.ndarray:
    """Predictive ensemble (horizon, draws) of the next ``horizon`` months from the AICc-best ETS model with
    additive seasonality (`select_ets`): ``draws`` simulated paths of the fitted model from the end of the
    series (its parameters held at their estimates)."""
    _check_sizes(horizon, draws)
    return _ets_draws(select_ets(series), horizon, draws, seed)


def seasonal_naive(series: Any, horizon: int, draws: int, seed: int) -> np.ndarray:
    """Predictive ensemble (horizon, draws) of statsforecast's SeasonalNaive with its normal prediction law:
    month T + h is Normal(y_{T+h−12k}, σ²k), k = ⌈h/12⌉, σ² = Σ_t (y_t − y_{t−12})² / (n − 12) (the mean square
    of the seasonal differences), each month drawn independently."""
    _check_sizes(horizon, draws)
    y = _series(series, "series").to_numpy()
    n = y.size
    h = np.arange(1, horizon + 1)
    k = np.ceil(h / SEASON).astype(int)
    point = y[n + h - 1 - SEASON * k]
    diff = y[SEASON:] - y[:-SEASON]
    sigma = math.sqrt(float(np.sum(diff**2)) / (n - SEASON))
    rng = np.random.default_rng(seed)
    return point[:, None] + sigma * np.sqrt(k)[:, None] * rng.standard_normal((horizon, draws))


# --------------------------------------------------------------------------------------------------------------
# scores


def crps(observed: Any, ensemble: Any) -> np.ndarray:
    """The CRPS of each ensemble (T, M) against its observation (T,): E|X − y| − ½ E|X − X'| over the members
    (the energy form with the 1/M² normalisation, `scoringrules.crps_ensemble`)."""
    import scoringrules as sr

    obs = np.asarray(observed, dtype=float)
    ens = np.asarray(ensemble, dtype=float)
    if ens.ndim != 2 or obs.shape != ens.shape[:1]:
        raise EstimInputError(
            f"crps needs observations (T,) and an ensemble (T, M), got {obs.shape} and {ens.shape}"
        )
    return np.asarray(sr.crps_ensemble(obs, ens, m_axis=-1, estimator="nrg"), dtype=float)


def coverage(observed: Any, ensemble: Any, prob: float = INTERVAL) -> float:
    """The share of months whose count lies in the ensemble's central ``prob`` interval (ends included)."""
    obs = np.asarray(observed, dtype=float)
    lo, _, hi = equal_tailed_array(np.asarray(ensemble, dtype=float), prob, axis=1)
    return float(np.mean((lo <= obs) & (obs <= hi)))


# --------------------------------------------------------------------------------------------------------------
# the border model


def _shipped_spec() -> Any:
    from estim.paths import REPO_ROOT
    from estim.run.spec import read_spec

    return read_spec(REPO_ROOT / "models" / "border.toml")


def fit_border(
    data: xr.Dataset,
    seed: int,
    cores: int = 2,
    *,
    draws: int | None = None,
    tune: int | None = None,
    target_accept: float | None = None,
    retries: int | None = None,
) -> xr.DataTree:
    """Build the border model on ``data`` with ``models/border.toml``'s priors and options and sample it with
    its sampler settings (nutpie, as ``estim fit`` does; ``draws``, ``tune``, ``target_accept`` override
    them), seeded by ``seed``. While the diagnostics gate fails, the fit is retried as ``estim fit`` retries
    (`estim.run.fit.retry_settings`: more draws, or smaller steps after divergences), up to ``retries`` times
    (default: the spec's); the posterior's ``attempts`` attribute counts the fits, and the last is returned
    whatever its verdict (the caller reads the gate)."""
    import dataclasses

    from estim.families.border import build_border
    from estim.run.fit import retry_settings
    from estim.run.sampler import nuts

    spec = _shipped_spec()
    overrides = {"draws": draws, "tune": tune, "target_accept": target_accept}
    first = dataclasses.replace(
        spec.sampler, **{k: v for k, v in overrides.items() if v is not None}
    )
    n_retries = first.retries if retries is None else retries
    model = build_border(data, dict(spec.priors), **spec.options)
    sampler, failed = first, ()
    for attempt in range(1, n_retries + 2):
        if attempt > 1:
            sampler = retry_settings(first, attempt - 1, failed, sampler)
        fit = nuts(model, sampler, seed, cores=cores)
        verdict = border_gate(fit)
        if verdict.passed:
            break
        failed = verdict.failed
    fit["posterior"].attrs["attempts"] = attempt
    return fit


def estim_forecast(
    data: xr.Dataset, posterior: xr.Dataset, start: str, horizon: int, draws: int, seed: int
) -> xr.Dataset:
    """The border model's baseline forecast (no measure): ``apprehensions`` and ``unobserved`` draws
    (draw, section, month), summed over the categories — the one call of `estim.measures.forecast`."""
    from estim.measures.forecast import forecast

    fc = forecast(
        data, posterior, [], start=start, horizon=horizon, draws=draws, seed=seed, history=False
    )
    fc = fc.sel(scenario="baseline")
    return fc[["apprehensions", "unobserved"]].transpose("draw", "section", "month")


def _posterior(fit: xr.DataTree | xr.Dataset) -> xr.Dataset:
    if isinstance(fit, xr.DataTree):
        return fit["posterior"].to_dataset()
    return fit


def border_gate(fit: xr.DataTree) -> Any:
    """The diagnostics gate's verdict on a border fit, over the variables `estim fit` reads (not the sign of
    r's auxiliary, which is not identified)."""
    from estim.families.border import BORDER
    from estim.run.diagnostics import check
    from estim.run.fit import gate_names

    return check(fit, var_names=gate_names(BORDER, fit))


def _gate(fit: xr.DataTree | xr.Dataset) -> tuple[bool | None, str]:
    """(passed, description) of the diagnostics gate on a border fit, reading what `estim fit` reads; (None, …)
    for a bare posterior, which it cannot check."""
    if isinstance(fit, xr.DataTree) and "sample_stats" in fit.children:
        verdict = border_gate(fit)
        return bool(verdict.passed), verdict.describe()
    return None, "not checked: a posterior without sample_stats"


# --------------------------------------------------------------------------------------------------------------
# the backtest


def backtest(
    data_full: xr.Dataset,
    truth: xr.Dataset,
    *,
    split: str = "2016-01",
    horizon: int = 24,
    draws: int = 1000,
    seed: int,
    fit: xr.DataTree | xr.Dataset | None = None,
    cores: int = 2,
    target_accept: float | None = None,
    tune: int | None = None,
) -> pd.DataFrame:
    """Fit the border model on the months before ``split``, forecast the next ``horizon`` months and score the
    forecasts (module docstring). ``fit`` (a fit's DataTree, or its posterior alone) skips the fitting; it must
    have been fitted on ``months_before(data_full, split)``.

    One row per series — ``border`` (the whole border) first, then the sections: ``series``, ``surveyed``,
    ``apprehensions`` and ``unobserved_truth`` (totals over the horizon); the mean CRPS over the horizon's
    months of estim, AutoETS and SeasonalNaive on the monthly apprehensions (``estim_crps``, ``ets_crps``,
    ``snaive_crps``), ``ratio_ets`` = estim/ETS and ``ratio_snaive`` = estim/SeasonalNaive, the 90 %
    interval coverage of each (``*_coverage``), the ETS model chosen (``ets_model``); estim's mean CRPS and
    coverage on the monthly unobserved crossings (``unobserved_crps``, ``unobserved_coverage``); the gate's
    verdict (``gate_passed``: True, False, or None when not checkable, and ``gate``) and the fits it took
    (``attempts``: a failed gate is retried as ``estim fit`` retries). Settings and timings
    are in the frame's ``attrs``."""
    from estim.families.border.revision import MODEL_REVISION

    _check_sizes(horizon, draws)
    cut = _month(split, "split")
    start = str(cut)
    target = cut + np.arange(horizon).astype("timedelta64[M]")
    have = data_full["month"].values.astype("datetime64[M]")
    missing = np.setdiff1d(target, have)
    if missing.size:
        raise EstimInputError(
            f"the data lack the forecast months {', '.join(str(m) for m in missing[:3])}"
            f"{' …' if missing.size > 3 else ''} (data end {have[-1]})"
        )
    truth_months = truth["month"].values.astype("datetime64[M]")
    if np.setdiff1d(target, truth_months).size:
        raise EstimInputError(f"truth.nc lacks some of the months {target[0]} – {target[-1]}")
    seed_fit, seed_forecast, seed_baselines = seeds(seed, 3)
    timings: dict[str, float] = {}

    data_fit = months_before(data_full, start)
    t0 = time.perf_counter()
    if fit is None:
        fit = fit_border(data_fit, seed_fit, cores=cores, target_accept=target_accept, tune=tune)
    timings["fit_seconds"] = time.perf_counter() - t0
    posterior = _posterior(fit)
    if "month" in posterior.coords:
        last = posterior["month"].values.astype("datetime64[M]").max()
        if last >= cut:
            raise EstimInputError(
                f"the fit given covers {last}, not only the months before the split {start}"
            )
    gate_passed, gate = _gate(fit)
    attempts = int(fit["posterior"].attrs.get("attempts", 1)) if isinstance(fit, xr.DataTree) else 1

    t0 = time.perf_counter()
    fc = estim_forecast(data_fit, posterior, start, horizon, draws, seed_forecast)
    timings["forecast_seconds"] = time.perf_counter() - t0
    fc_months = fc["month"].values.astype("datetime64[M]")
    if not np.array_equal(fc_months, target):
        raise EstimInputError(f"the forecast's months {fc_months[0]} … are not {target[0]} …")
    sections = [str(s) for s in data_full["section"].values]
    fc_app = (
        fc["apprehensions"].sel(section=sections).values.astype(float)
    )  # (draw, section, month)
    fc_un = fc["unobserved"].sel(section=sections).values.astype(float)

    observed = apprehension_series(data_full)
    history = observed.loc[observed.index < pd.Timestamp(cut)]
    future = observed.loc[pd.DatetimeIndex(target.astype("datetime64[ns]"))]
    true_un = (
        truth["unobserved"]
        .sel(month=target.astype("datetime64[ns]"), section=sections)
        .sum("category")
        .transpose("section", "month")
        .values.astype(float)
    )
    surveyed = dict(zip(sections, data_full["surveyed"].values.astype(bool), strict=True))

    t0 = time.perf_counter()
    rows = []
    series_seeds = seeds(seed_baselines, len(sections) + 1)
    for i, name in enumerate([BORDER, *sections]):
        if name == BORDER:
            app_ens, un_ens, un_true = fc_app.sum(axis=1).T, fc_un.sum(axis=1).T, true_un.sum(0)
        else:
            j = sections.index(name)
            app_ens, un_ens, un_true = fc_app[:, j].T, fc_un[:, j].T, true_un[j]
        y = future[name].to_numpy()
        ets_fit = select_ets(history[name], what=f"apprehensions of {name}")
        seed_ets, seed_snaive = seeds(series_seeds[i], 2)
        # same ensemble size as the border model's (the estimator's bias alike); censored at zero (docstring)
        m = app_ens.shape[1]
        ets = np.maximum(_ets_draws(ets_fit, horizon, m, seed_ets), 0.0)
        snaive = np.maximum(seasonal_naive(history[name], horizon, m, seed_snaive), 0.0)
        scores = {k: float(crps(y, e).mean()) for k, e in (("estim", app_ens), ("ets", ets))}
        scores["snaive"] = float(crps(y, snaive).mean())
        rows.append(
            {
                "series": name,
                "surveyed": None if name == BORDER else surveyed[name],
                "months": horizon,
                "apprehensions": int(y.sum()),
                "estim_crps": scores["estim"],
                "ets_crps": scores["ets"],
                "snaive_crps": scores["snaive"],
                "ratio_ets": scores["estim"] / scores["ets"],
                "ratio_snaive": scores["estim"] / scores["snaive"],
                "estim_coverage": coverage(y, app_ens),
                "ets_coverage": coverage(y, ets),
                "snaive_coverage": coverage(y, snaive),
                "ets_model": ets_name(ets_fit),
                "unobserved_truth": int(un_true.sum()),
                "unobserved_crps": float(crps(un_true, un_ens).mean()),
                "unobserved_coverage": coverage(un_true, un_ens),
                "gate_passed": gate_passed,
                "gate": gate,
                "attempts": attempts,
                "model_revision": MODEL_REVISION,
            }
        )
    timings["baselines_seconds"] = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    table.attrs.update(
        split=start,
        horizon=horizon,
        draws=int(fc.sizes["draw"]),
        seed=seed,
        fitted_months=f"{have[0]} – {cut - np.timedelta64(1, 'M')}",
        gate_passed=gate_passed,
        gate=gate,
        attempts=attempts,
        **{k: round(v, 1) for k, v in timings.items()},
    )
    return table


def format_backtest(table: pd.DataFrame) -> str:
    """The backtest as a plain-text table: what is compared, the whole border's ratios first, then one line
    per series."""
    a = table.attrs
    border = table[table["series"] == BORDER]
    head = [
        "Backtest: the border model (estim) against AutoETS and SeasonalNaive, mean CRPS over "
        f"{a.get('horizon', '?')} forecast months from {a.get('split', '?')} "
        f"(fitted on {a.get('fitted_months', 'the months before')}; {a.get('draws', '?')} draws, "
        f"seed {a.get('seed', '?')}).",
        "Monthly apprehensions (all categories): ratio < 1 means estim forecast better. "
        "Unobserved crossings: estim against the simulator's truth (no baseline can forecast them).",
        f"Diagnostics gate: {a.get('gate', table['gate'].iloc[0] if len(table) else '?')}",
    ]
    if len(border):
        b = border.iloc[0]
        head.append(
            f"Whole border: estim/ETS = {b['ratio_ets']:.3f}, estim/SNaive = {b['ratio_snaive']:.3f}; "
            f"unobserved 90 % coverage {b['unobserved_coverage']:.2f} over {int(b['months'])} months."
        )
    cols = [
        ("series", "series", "{}"),
        ("estim_crps", "estim", "{:,.1f}"),
        ("ets_crps", "ETS", "{:,.1f}"),
        ("snaive_crps", "SNaive", "{:,.1f}"),
        ("ratio_ets", "/ETS", "{:.3f}"),
        ("ratio_snaive", "/SNaive", "{:.3f}"),
        ("estim_coverage", "cov estim", "{:.2f}"),
        ("ets_coverage", "cov ETS", "{:.2f}"),
        ("snaive_coverage", "cov SNaive", "{:.2f}"),
        ("ets_model", "ETS model", "{}"),
        ("unobserved_crps", "unobs CRPS", "{:,.1f}"),
        ("unobserved_coverage", "unobs cov", "{:.2f}"),
    ]
    ordered = pd.concat([border, table[table["series"] != BORDER]])
    cells = [[label for _, label, _ in cols]]
    cells += [[fmt.format(r[c]) for c, _, fmt in cols] for _, r in ordered.iterrows()]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*head, "", *lines])
