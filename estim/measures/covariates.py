"""The border model's covariates beyond the data: projected paths of the foreign land crossings F and their mean
wait w per section (the bypassers' flow and share depend on them), and the journeys' damped trend clock.

The model conditions on F and w, so a forecast needs their future, with uncertainty. Each section's log F and
log w follow a **seasonal random walk with a damped drift** (Hyndman & Athanasopoulos, *Forecasting: Principles
and Practice*, §5.2 and §8.2):

    x_{T+h} = x_{T+h−12k} + Σ_{j=1..k} (ρ^j g̃ + ε_j),   k = ⌈h/12⌉,  ε_j ~ N(0, σ²),  g̃ ~ N(g, σ²/n)

where x_{T+h−12k} is the same month of the last observed year, g and σ the mean and standard deviation of the
n year-on-year changes x_t − x_{t−12} in the last ``window`` months (only pairs of months with the same policy
regime: a change of regime is not a drift), and ρ the yearly damping of the drift. One shock ε_j per year
ahead and section, shared by the months of that year: a year that runs high runs high all year, which is
the conservative choice for annual totals. The drift's own uncertainty enters through g̃. Sections without
foreign land crossings in their last observed year get none.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from estim.errors import EstimInputError

WAIT_FLOOR_MINUTES = 0.1  # as in the model: log(max(w, 0.1))
MIN_CHANGES = (
    6  # fewer year-on-year changes than this: no drift, the noise of all changes in the window
)


class Covariates(NamedTuple):
    """Projected paths, (draw, section, month ahead)."""

    flow: np.ndarray
    wait: np.ndarray


def damped_years(last_years: float, horizon: int, damping: float) -> np.ndarray:
    """The trend clock y(T+h) of the model's log-linear trends beyond the data: each month ahead adds
    ρ^{h/12}/12 years instead of 1/12, so a trend's slope decays by the factor ρ a year (ρ = 1: a straight
    line)."""
    h = np.arange(1, horizon + 1)
    return last_years + np.cumsum(damping ** (h / 12.0)) / 12.0


def trend_reach(months_ahead: int, damping: float) -> float:
    """How many years' worth a damped trend has moved ``months_ahead`` months beyond the data (`damped_years`);
    ρ = 1: months_ahead / 12. It increases with ρ and with the months ahead."""
    return float(damped_years(0.0, months_ahead, damping)[-1]) if months_ahead > 0 else 0.0


def check_trend_reach(data_years: float, months_ahead: int, dampings: tuple[float, ...]) -> None:
    """Refuse a forecast whose trends, even at their most damped ρ, would move further beyond the data than the
    data's own span (``data_years``, the years the trends were fitted on).

    Why refuse (not warn or cap): the log-linear trends are straight lines fitted to the data's years; carried
    further than that span with ρ near 1 they multiply the volumes beyond anything the data support (the shipped
    fit, ρ = 1 over 240 months: unobserved crossings from 13,000 to 578,000 a year, ×44, and apprehensions ×150),
    and since every draw then shares the assumption, the interval is narrow around that number ([296,000,
    898,000] in year 20): a confident number that rests on the assumption alone. A warning would leave that
    number printed with exit 0; a cap would silently replace the stated ρ by another. With the default spread
    over ρ the damped draws stay within the data's reach and the straight-line ones widen the interval, which
    then says how much rests on whether the trend persists; so the rule applies to the most damped ρ given."""
    rho = min(dampings)
    reach = trend_reach(months_ahead, rho)
    if reach <= data_years + 1e-9:
        return
    longest = max(
        (n for n in range(1, months_ahead + 1) if trend_reach(n, rho) <= data_years + 1e-9),
        default=0,
    )
    lo, hi = 0.0, 1.0  # the largest ρ whose trend stays within the data's span at this horizon
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if trend_reach(months_ahead, mid) <= data_years else (lo, mid)
    given = f"--trend-damping {rho:g}" if len(dampings) == 1 else f"trend_damping {dampings}"
    raise EstimInputError(
        f"{given}: by the forecast's last month, {months_ahead} months after the data, the fitted trends "
        f"would have moved {reach:.1f} years' worth (ρ = 1 is a straight line), further than the "
        f"{data_years:.1f} years of data they were fitted on; every draw would then carry the trends into "
        f"years without evidence, and the interval would hide it. With ρ = {rho:g} a forecast may end at most "
        f"{longest} months after the data (shorten --horizon, or --start earlier); at this horizon give "
        f"--trend-damping {np.floor(lo * 100) / 100:.2f} or less, or leave it out (the default spreads the "
        "draws over 0.6 to 1, so the interval carries whether the trends persist)"
    )


def _yearly_changes(x: np.ndarray, regime: np.ndarray, window: int) -> tuple[np.ndarray, bool]:
    """Year-on-year changes x_t − x_{t−12} over the last ``window`` months: those between months of the same
    policy regime, and True; or, when fewer than `MIN_CHANGES` are, all of them, and False (no drift)."""
    t = np.arange(max(12, len(x) - window), len(x))
    changes = x[t] - x[t - 12]
    same = np.all(regime[:, t] == regime[:, t - 12], axis=0) & np.isfinite(changes)
    if same.sum() >= MIN_CHANGES:
        return changes[same], True
    return changes[np.isfinite(changes)], False


def project_series(
    x: np.ndarray,
    regime: np.ndarray,
    horizon: int,
    draws: int,
    rng: np.random.Generator,
    *,
    damping: float,
    window: int,
) -> np.ndarray:
    """Draws (draw, month ahead) of a log-scale monthly series ``x`` (at least 24 months) by the seasonal
    random walk with damped drift of the module docstring; ``regime`` (event, month) is the policy
    indicator, so that changes across a regime change do not count as drift."""
    changes, drift_known = _yearly_changes(x, regime, window)
    n = changes.size
    g = float(changes.mean()) if drift_known else 0.0
    sigma = float(changes.std(ddof=1)) if n > 1 else 0.0
    drift = g + (sigma / np.sqrt(max(n, 1)) * drift_known) * rng.standard_normal(draws)
    years_ahead = int(np.ceil(horizon / 12))
    shocks = sigma * rng.standard_normal((draws, years_ahead))
    h = np.arange(1, horizon + 1)
    k = np.ceil(h / 12).astype(int)
    base = x[len(x) - 12 + (h - 1) % 12]  # the same month of the last observed year
    damp = np.cumsum(damping ** np.arange(1, years_ahead + 1))  # Σ_{j ≤ k} ρ^j
    walk = np.cumsum(shocks, axis=1)  # Σ_{j ≤ k} ε_j
    return base[None, :] + drift[:, None] * damp[k - 1][None, :] + walk[:, k - 1]


def project_covariates(
    data: xr.Dataset,
    horizon: int,
    draws: int,
    rng: np.random.Generator,
    *,
    damping: float,
    window: int,
) -> Covariates:
    """Draws of every section's foreign land crossings and mean land wait for ``horizon`` months after the
    data (module docstring)."""
    flow = data["land_foreign_crossings"].transpose("section", "month").values.astype(float)
    wait = data["land_mean_wait"].transpose("section", "month").values.astype(float)
    regime = data["policy_in_force"].values
    if flow.shape[1] < 24:
        raise EstimInputError("a forecast needs at least 24 months of data (two years of seasons)")
    n_sections = flow.shape[0]
    out_flow = np.zeros((draws, n_sections, horizon))
    out_wait = np.zeros((draws, n_sections, horizon))
    for s in range(n_sections):
        w = project_series(
            np.log(np.maximum(wait[s], WAIT_FLOOR_MINUTES)),
            regime,
            horizon,
            draws,
            rng,
            damping=damping,
            window=window,
        )
        out_wait[:, s] = np.exp(w)
        if (flow[s, -12:] <= 0).all():
            continue  # no foreign land crossings lately: no bypassers
        x = np.log(np.maximum(flow[s], 1.0))
        out_flow[:, s] = np.exp(
            project_series(x, regime, horizon, draws, rng, damping=damping, window=window)
        )
    return Covariates(out_flow, out_wait)
