"""Counterfactual forecasts: the border model's counts over a horizon under the baseline (no measure), each
measure and every combination (or each measure alone and all together: `estim.measures.scenarios`, which also
refuses a forecast too large for the memory), drawn from the fitted posterior with common random numbers.

At each of ``draws`` posterior draws of the parameters (evenly spaced over the chains):

1. **the world without measures** — the rates μ, p of every section × month × category beyond the data, from
   the model's equations (`estim.families.border.rates`) with the policy events of the data still in force;
   the log-linear trends τ_c and δ continue on a damped clock (`covariates.damped_years`: the slope decays by
   a factor ρ a year instead of running on as a straight line); whether a trend persists is itself uncertain,
   so the draws are spread evenly over ρ ∈ ``trend_damping`` (by default 0.6, 0.7, 0.8, 0.9 and 1, the
   last a straight line); each journey category's log level
   adds a random walk with standard deviation ``level_sd`` per √year (shared by the sections: what moves a
   category's flows moves them everywhere); the foreign land crossings and waits that drive the bypassers
   follow projected paths (`covariates.project_covariates`);
2. **each measure's effect sizes** from their priors (`estim.measures.spec`), one draw per posterior draw,
   the same in every scenario that contains the measure;
3. **each scenario's rates** — the baseline's changed by its measures' mechanisms (`estim.simulate.measures`):
   journeys × m(t) (and displacement), guard and informant hazards × m(t), waits × m(t) → bypass share;
4. **the counts**, from the model's predictive law with the draw's retry probability r: journeys
   J ~ NegBin(μ, φ), each never apprehended (1 − p), apprehended and through in the end (p·s, with
   s = r(1 − p)/(1 − pr)) or apprehended and given up (p(1 − s)): given the gamma rate G, three independent
   Poisson counts; unobserved = never apprehended + through; apprehensions K = A + NegBin(A, 1 − pr) for the
   A apprehended journeys (their further attempts go on with pr); attempts = K + unobserved. With r = 1 (a
   fit with r fixed) no journey is given up, unobserved = J and K | J ~ NegBin(J, 1 − p), drawn so.

Common random numbers: a scenario differs from the baseline only through its rates. The gamma mixing
variable of each cell is shared (φ does not change), and the Poisson counts of the scenarios are coupled by
nested binomial thinning (rates sorted per cell: N at the largest rate, then each smaller rate's count a
binomial thinning of the previous one), which keeps every scenario's law exact while making a difference of
scenarios as small as the difference of their rates allows. The apprehensions' gamma rates are coupled the
same way (nested beta splits of a gamma variable). So a change against the baseline is the measure's effect
plus only the noise the measure itself creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border import crossings
from estim.families.border.data import CATEGORIES, DETECTORS, JOURNEY_CATEGORIES, policy_in_force
from estim.families.border.rates import posterior_parameters, rates, retry_draws
from estim.families.border.repeated_trials import with_repeated_trials
from estim.measures.covariates import (
    WAIT_FLOOR_MINUTES,
    check_trend_reach,
    damped_years,
    project_covariates,
)
from estim.measures.scenarios import CHUNK, ForecastPlan, check_counts, check_memory, scenario_names
from estim.measures.spec import BASELINE, MeasureSpec, measures_digest  # noqa: F401 (BASELINE: re-exported)
from estim.simulate.measures import section_mask, strength

# the forecast's last month lies at most this many months after the data's last (the --horizon cap)
MAX_MONTHS_AHEAD = 240
# random streams: [seed, stream] (effects use their own crc32 stream ids, `MeasureSpec.stream`)
_STREAM_COVARIATES, _STREAM_LEVEL, _STREAM_COUNTS, _STREAM_HISTORY = 1, 2, 3, 4


@dataclass(frozen=True)
class ForecastSettings:
    """How the world without measures is projected beyond the data (module docstring)."""

    trend_damping: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0)
    """ρ: a log-linear trend's slope is multiplied by ρ for every year beyond the data (1: straight line); the
    draws are spread evenly over these values (one value: ρ known)."""
    level_sd: float = 0.05
    """sd of the random walk of each journey category's log level, per √year (0: none)."""
    covariate_window: int = 36
    """months of year-on-year changes that give the flows' and waits' drift and noise."""
    history_draws: int = 200
    """posterior draws of the unobserved crossings kept for the data period (figures)."""

    def __post_init__(self) -> None:
        if isinstance(self.trend_damping, int | float):
            object.__setattr__(self, "trend_damping", (float(self.trend_damping),))
        values = tuple(self.trend_damping)
        if not values or not all(0.0 < v <= 1.0 for v in values):
            raise EstimInputError(f"trend_damping values must lie in (0, 1], got {values}")
        object.__setattr__(self, "trend_damping", values)
        if self.level_sd < 0:
            raise EstimInputError(f"level_sd must be >= 0, got {self.level_sd}")
        if self.covariate_window < 13:
            raise EstimInputError("covariate_window must be at least 13 months")


def _months_after(last: np.datetime64, n: int) -> np.ndarray:
    first = np.datetime64(last, "M") + np.timedelta64(1, "M")
    return np.arange(first, first + np.timedelta64(n, "M")).astype("datetime64[ns]")


def future_data(data: xr.Dataset, months: np.ndarray, damping: float) -> xr.Dataset:
    """The model's data for future months: the damped trend clock, months of the year, the policy events in
    force, and the sections' covariates (flows and waits are placeholders: the forecast draws them)."""
    events = pd.DataFrame(
        {
            "kind": data["event"].values,
            "start_date": pd.to_datetime(data["event_start"].values),
        }
    )
    n = len(months)
    return xr.Dataset(
        {
            "years": ("month", damped_years(float(data["years"].values[-1]), n, damping)),
            "month_of_year": ("month", pd.DatetimeIndex(months).month.values.astype(np.int64)),
            "policy_in_force": policy_in_force(events, months),
            "length_km": data["length_km"],
            "border_population": data["border_population"],
            "land_foreign_crossings": (("section", "month"), np.ones((data.sizes["section"], n))),
            "land_mean_wait": (("section", "month"), np.full((data.sizes["section"], n), 60.0)),
        },
        coords={"section": data["section"].values, "month": months},
    )


def nested_poisson(rate: np.ndarray, rng: np.random.Generator, axis: int) -> np.ndarray:
    """Poisson counts with the given rates, coupled along ``axis``: sorted by rate, the largest is drawn and
    each smaller one is a binomial thinning of the next larger (each count's law exactly Poisson(rate))."""
    rate = np.moveaxis(rate, axis, 0)
    order = np.argsort(-rate, axis=0, kind="stable")
    sorted_rate = np.take_along_axis(rate, order, axis=0)
    counts = np.empty(rate.shape, dtype=np.int64)
    counts[0] = rng.poisson(sorted_rate[0])
    for i in range(1, rate.shape[0]):
        with np.errstate(invalid="ignore", divide="ignore"):
            keep = np.where(sorted_rate[i - 1] > 0, sorted_rate[i] / sorted_rate[i - 1], 0.0)
        counts[i] = rng.binomial(counts[i - 1], np.clip(keep, 0.0, 1.0))
    out = np.empty_like(counts)
    np.put_along_axis(out, order, counts, axis=0)
    return np.moveaxis(out, 0, axis)


def nested_gamma(shape: np.ndarray, rng: np.random.Generator, axis: int) -> np.ndarray:
    """Gamma(shape, 1) variables coupled along ``axis``: sorted by shape, the largest is drawn and each
    smaller one is the previous times a Beta(a_small, a_large − a_small) split (exactly Gamma(a_small))."""
    shape = np.moveaxis(np.asarray(shape, dtype=float), axis, 0)
    order = np.argsort(-shape, axis=0, kind="stable")
    a = np.take_along_axis(shape, order, axis=0)
    out_sorted = np.empty(a.shape)
    out_sorted[0] = np.where(a[0] > 0, rng.gamma(np.maximum(a[0], 1e-300)), 0.0)
    for i in range(1, a.shape[0]):
        rest = a[i - 1] - a[i]
        split = np.where(
            (a[i] > 0) & (rest > 0),
            rng.beta(np.maximum(a[i], 1e-300), np.maximum(rest, 1e-300)),
            (a[i] > 0).astype(float),
        )
        out_sorted[i] = out_sorted[i - 1] * split
    out = np.empty_like(out_sorted)
    np.put_along_axis(out, order, out_sorted, axis=0)
    return np.moveaxis(out, 0, axis)


def _merge_rates(parts: list[Any], which: np.ndarray) -> Any:
    """The rates of draw groups (group k holds the draws with ``which == k``) back in draw order."""
    out = []
    for field in range(4):
        first = parts[0][field]
        merged = np.empty((len(which), *first.shape[1:]), dtype=first.dtype)
        for k, part in enumerate(parts):
            merged[which == k] = part[field]
        out.append(merged)
    return type(parts[0])(*out)


def _guard_share(parameters: dict[str, np.ndarray], years: np.ndarray) -> np.ndarray:
    """(draw, month) share of the detection hazard that is the guards' (patrol and technical), the rest the
    informants': the split a guard or informant effect rescales. ``years``: (draw, month) trend clocks."""
    other = parameters["hazard_detector"]  # (draw, other_detector): technical, informant
    e = np.concatenate([np.zeros((other.shape[0], 1)), other], axis=1)
    technical = np.array([d == "technical" for d in DETECTORS], float)
    detector = np.exp(
        e[:, :, None]
        + parameters["technical_trend"][:, None, None]
        * technical[None, :, None]
        * years[:, None, :]
    )  # (draw, detector, month)
    informant = DETECTORS.index("informant")
    return 1.0 - detector[:, informant] / detector.sum(axis=1)


def forecast(
    data: xr.Dataset,
    posterior: xr.Dataset,
    measures: Sequence[MeasureSpec],
    *,
    start: str | None = None,
    horizon: int = 36,
    draws: int = 1000,
    seed: int = 0,
    settings: ForecastSettings | None = None,
    by_category: bool = False,
    history: bool = True,
    scenarios: str = "combinations",
    max_memory: float | None = None,
) -> xr.Dataset:
    """Draws of the unobserved crossings, apprehensions and attempts per scenario × section × month over
    ``horizon`` months from ``start`` (module docstring).

    ``data`` is the border model's data of the fit (`border_data`), ``posterior`` its posterior (dims chain,
    draw, …). ``start`` (YYYY-MM, default the month after the data) is the first forecast month and, when
    given, every measure's start; otherwise each measure starts at its spec's month. Returns a Dataset with
    integer ``unobserved``, ``apprehensions``, ``attempts`` (draw, scenario, section, month[, category]), the
    effect sizes drawn (draw, effect), the data period's unobserved crossings (``history_unobserved``,
    history_draw × section × history_month) and apprehensions, and provenance in its attributes.

    ``scenarios``: "combinations" (the baseline and every combination of the measures, 2^n) or "each" (the
    baseline, each measure alone and all together). A forecast whose estimated peak memory passes
    ``max_memory`` bytes (default: half of the machine's memory) is refused before anything is drawn
    (`estim.measures.scenarios`)."""
    settings = settings or ForecastSettings()
    # a fit averaged with repeated trials (r = 1) is read as averaged, before any thinning of its draws
    posterior = with_repeated_trials(posterior)
    last = data["month"].values[-1]
    first = np.datetime64(last, "M") + np.timedelta64(1, "M")
    begin = forecast_start(data["month"].values, start, horizon)
    gap = int((begin - first).astype(int))
    months = _months_after(last, gap + horizon)
    years = data["years"].values
    check_trend_reach(float(years[-1] - years[0]) + 1 / 12, gap + horizon, settings.trend_damping)
    applied = [m.applied(start=None if start is None else str(begin)) for m in measures]
    for m in applied:
        if np.datetime64(m.start_month, "M") < first:
            raise EstimInputError(
                f"measure {m.name} starts {m.start_month}, before or inside the fitted data "
                f"({str(data['month'].values[0])[:7]} … {str(last)[:7]}); give --start"
            )
    latest = first + np.timedelta64(MAX_MONTHS_AHEAD - 1, "M")  # the farthest any forecast reaches
    partial = _check_in_horizon(applied, months[gap:], latest)
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    plan = ForecastPlan(
        measures=len(measures),
        scenarios=scenarios,
        draws=min(draws, total),
        sections=data.sizes["section"],
        months=len(months),
        categories=len(CATEGORIES),
        repeated_trials=bool(np.all(retry_draws(posterior) == 1.0)),
        by_category=by_category,
        history_draws=min(settings.history_draws, total) if history else 0,
        data_months=data.sizes["month"],
    )
    check_memory(plan, max_memory)  # before anything is allocated

    parameters, (n_chain, n_draw) = posterior_parameters(posterior)
    total = n_chain * n_draw
    draws = min(draws, total)
    pick = np.unique(np.linspace(0, total - 1, draws).round().astype(int))
    draws = len(pick)
    parameters = {k: v[pick] for k, v in parameters.items()}

    # the trend clock of each draw: the draws spread evenly over the damping values
    dampings = settings.trend_damping
    which = np.arange(draws) % len(dampings)
    years = np.empty((draws, len(months)))
    parts = []
    for k, rho in enumerate(dampings):
        future = future_data(data, months, rho)
        years[which == k] = future["years"].values
        parts.append(rates(future, {n: v[which == k] for n, v in parameters.items()}))
    base_rates = _merge_rates(parts, which)  # (draw, section, month, category)
    n_sec, n_month = data.sizes["section"], len(months)
    sections = [str(s) for s in data["section"].values]

    # the world without measures: level random walk, covariate paths
    rng_level = np.random.default_rng([seed, _STREAM_LEVEL])
    steps = rng_level.standard_normal((draws, len(JOURNEY_CATEGORIES), n_month))
    level = np.cumsum(steps, axis=-1) * settings.level_sd / np.sqrt(12.0)  # (draw, category, month)
    covariates = project_covariates(
        data,
        n_month,
        draws,
        np.random.default_rng([seed, _STREAM_COVARIATES]),
        damping=float(np.median(dampings)),
        window=settings.covariate_window,
    )
    log_mu = base_rates.log_mu.copy()
    log_mu[..., : len(JOURNEY_CATEGORIES)] += np.moveaxis(level, 1, 2)[:, None]
    hazard = -base_rates.log_1mp  # H = −log(1 − p)
    phi = base_rates.phi  # (draw, category)
    guard = _guard_share(parameters, years)  # (draw, month)
    eta0 = parameters["bypass_eta0"][:, None, None]
    eta1 = parameters["bypass_eta1"][:, None, None]

    # effect sizes: one draw per posterior draw and effect, from the effect's own stream
    effect_names, effect_values = [], []
    for spec in measures:
        for e in spec.effects:
            effect_names.append(f"{spec.name}.{e.name}")
            effect_values.append(e.draw(np.random.default_rng([seed, spec.stream(e.name)]), draws))
    values = dict(zip(effect_names, effect_values, strict=True))

    drawn = scenario_names(measures, scenarios)
    shape = (draws, len(drawn), n_sec, n_month, len(CATEGORIES))
    mu_all = np.empty(shape, dtype=np.float64)
    hazard_all = np.empty(shape, dtype=np.float64)
    for j, (_, combo) in enumerate(drawn):
        mu_all[:, j], hazard_all[:, j] = _scenario_rates(
            log_mu,
            hazard,
            guard,
            covariates,
            eta0,
            eta1,
            [(measures[i], applied[i]) for i in combo],
            values,
            months,
            sections,
        )

    why = f"--level-sd {settings.level_sd:g} over {len(months)} months beyond the data"
    counts = _draw_counts(mu_all, hazard_all, phi, seed, retry_draws(posterior)[pick], why)
    keep = slice(gap, gap + horizon)
    dims = ("draw", "scenario", "section", "month", "category")
    out = xr.Dataset(
        {name: (dims, x[:, :, :, keep]) for name, x in counts.items()},
        coords={
            "draw": np.arange(draws),
            "scenario": [s for s, _ in drawn],
            "section": sections,
            "month": months[keep],
            "category": list(CATEGORIES),
        },
    )
    if not by_category:
        out = out.sum("category").astype(np.int32)
    out["effect_size"] = (
        ("draw", "effect"),
        np.stack(effect_values, axis=1) if effect_values else np.zeros((draws, 0)),
    )
    out = out.assign_coords(effect=effect_names)
    out = out.assign_coords(
        surveyed=("section", data["surveyed"].values),
        event_start=("event", data["event_start"].values),
        measure_start=(
            "measure",
            np.array([np.datetime64(m.start_month, "M") for m in applied], "datetime64[ns]"),
        ),
    )
    out = out.assign_coords(event=data["event"].values, measure=[m.name for m in measures])
    if history:
        out = out.merge(_history(data, posterior, settings.history_draws, seed))
    out.attrs.update(
        {
            "description": "counterfactual forecasts of the border model: draws per scenario",
            "start": str(months[keep][0])[:7],
            "horizon": horizon,
            "draws": draws,
            "fit_draws": total,
            "seed": seed,
            "measures_hash": measures_digest(measures),
            "scenarios": scenarios,
            "partial_measures": partial,
            "settings_json": pd.Series(asdict(settings)).to_json(),
            "retry_probability": "the fit's posterior draws of r (the probability of trying again after "
            "an apprehension), one per forecast draw",
        }
    )
    for name, desc in _DESCRIPTIONS.items():
        if name in out:
            out[name].attrs["description"] = desc
    return out


_DESCRIPTIONS = {
    "unobserved": "unobserved (undetected, successful) illegal crossings: forecast draws",
    "apprehensions": "apprehensions (apprehended illegal crossing attempts): forecast draws",
    "attempts": "illegal crossing attempts = apprehensions + unobserved crossings: forecast draws",
    "effect_size": "the measures' effect sizes drawn from their priors, one per posterior draw",
    "history_unobserved": "unobserved crossings in the data period: posterior draws given the data",
    "history_apprehensions": "apprehensions in the data period (observed)",
}


def _check_in_horizon(applied: Sequence[Any], months: np.ndarray, latest: Any = None) -> str:
    """Refuse a measure that would not act in any month of the horizon (``months``): its change would print
    as exactly 0 with P(reduction) 0, a statement about the timing, not about the measure. Returns the
    measures still building up at the horizon's end ("name (full strength YYYY-MM)", comma-separated; "" if
    none): their change is of a measure not yet at full strength, which the summary says."""
    end = str(months[-1])[:7]
    partial = []
    for m in applied:
        r = strength(m, months)
        begins = np.datetime64(m.start_month, "M") + np.timedelta64(m.lag_months, "M")
        full = begins + np.timedelta64(max(m.ramp_months, 1) - 1, "M")
        if r.max() <= 0 and latest is not None and begins > np.datetime64(latest, "M"):
            raise EstimInputError(
                f"measure {m.name} starts {m.start_month} with a lag of {m.lag_months} months, so it begins "
                f"to act in {begins}, after {np.datetime64(latest, 'M')}, the latest month any forecast "
                f"reaches ({MAX_MONTHS_AHEAD} months after the data): it would show no change at all. Give "
                "its spec an earlier start or a shorter lag, or an earlier --start"
            )
        if r.max() <= 0:
            need = int((begins - np.datetime64(months[0], "M")).astype(int)) + 1
            raise EstimInputError(
                f"measure {m.name} starts {m.start_month} with a lag of {m.lag_months} months, so it begins "
                f"to act in {begins}, after the forecast's last month {end}: it would show no change at "
                f"all. Give --horizon {need} or more (it reaches full strength at --horizon "
                f"{need + max(m.ramp_months, 1) - 1}), or an earlier --start"
            )
        if r[-1] < 1:
            partial.append(f"{m.name} (full strength {full})")
    return ", ".join(partial)


def forecast_start(data_months: np.ndarray, start: str | None, horizon: int) -> np.datetime64:
    """The first forecast month (``start``, YYYY-MM, default the month after the data), checked: after the
    fitted data, and the forecast's last month at most ``MAX_MONTHS_AHEAD`` months after the data's last (the
    model's trends and random walks are not meant to be carried further; beyond it the counts explode)."""
    if not 1 <= horizon <= MAX_MONTHS_AHEAD:
        raise EstimInputError(f"--horizon must be 1 to {MAX_MONTHS_AHEAD} months, got {horizon}")
    data_first = str(data_months[0])[:7]
    data_last = np.datetime64(data_months[-1], "M")
    first = data_last + np.timedelta64(1, "M")
    latest = first + np.timedelta64(MAX_MONTHS_AHEAD - horizon, "M")
    begin = first if start is None else _month(start)
    if begin < first:
        raise EstimInputError(
            f"--start {begin}: the forecast would start before or inside the fitted data "
            f"({data_first} … {data_last}); a forecast starts at {first} or later"
        )
    if begin > latest:
        raise EstimInputError(
            f"--start {begin}: with --horizon {horizon} the forecast would end "
            f"{int((begin - first).astype(int)) + horizon} months after the fitted data (which end "
            f"{data_last}); a forecast ends at most {MAX_MONTHS_AHEAD} months after the data, so the "
            f"latest start for this horizon is {latest} (allowed: {first} to {latest})"
        )
    return begin


def _month(text: str) -> np.datetime64:
    try:
        if len(str(text)) != 7:
            raise ValueError
        return np.datetime64(str(text), "M")
    except ValueError as e:
        raise EstimInputError(f"--start must be a month YYYY-MM, got {text!r}") from e


def _scenario_rates(
    log_mu: np.ndarray,
    hazard: np.ndarray,
    guard: np.ndarray,
    covariates: Any,
    eta0: np.ndarray,
    eta1: np.ndarray,
    active: list[tuple[MeasureSpec, Any]],
    values: dict[str, np.ndarray],
    months: np.ndarray,
    sections: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """μ and the detection hazard H (draw, section, month, category) of one scenario: the baseline's with the
    mechanisms of its measures (`estim.simulate.measures`) at the drawn effect sizes."""
    from estim.simulate.measures import neighbours

    mu = np.exp(log_mu)
    n_draw = mu.shape[0]
    wait_factor = np.ones((n_draw, len(sections), len(months)))
    guard_factor = np.ones(mu.shape)
    informant_factor = np.ones(mu.shape)
    journeys_factor = np.ones(mu.shape)
    displaced = []  # (share, prevented-journey factor) for displacement
    for spec, applied in active:
        r = strength(applied, months)  # (month,)
        where = section_mask(applied, sections)  # (section,)
        measure_factor = np.ones(mu.shape)
        for e in spec.effects:
            m = 1.0 + (e.multiplier_of(values[f"{spec.name}.{e.name}"])[:, None] - 1.0) * r
            if e.target == "wait":
                wait_factor[:, where] *= m[:, None, :]
                continue
            cats = np.isin(CATEGORIES, e.categories)
            cell = m[:, None, :, None] * np.ones((1, 1, 1, len(CATEGORIES)))
            cell = np.where(where[None, :, None, None] & cats[None, None, None, :], cell, 1.0)
            if e.target == "journeys":
                measure_factor *= cell
            elif e.target == "guard_hazard":
                guard_factor *= cell
            else:
                informant_factor *= cell
        journeys_factor *= measure_factor
        if applied.displacement > 0:
            displaced.append((applied.displacement, measure_factor))
    # bypassers: flow × expit(η0 + η1 log(w/60)) on the projected paths, waits rescaled
    wait = np.maximum(covariates.wait * wait_factor, WAIT_FLOOR_MINUTES)
    share = 1.0 / (1.0 + np.exp(-(eta0 + eta1 * np.log(wait / 60.0))))
    bypass = CATEGORIES.index("bypasser")
    mu[..., bypass] = covariates.flow * share
    base_mu = mu
    mu = base_mu * journeys_factor
    for share_moved, factor in displaced:  # prevented journeys of a section move to its neighbours
        prevented = base_mu * np.maximum(
            1.0 - factor, 0.0
        )  # a multiplier above 1 displaces nothing
        mu = mu + share_moved * np.einsum("ns,dsmc->dnmc", neighbours(sections), prevented)
    g = guard[:, None, :, None]
    hazard = hazard * (guard_factor * g + informant_factor * (1.0 - g))
    return mu, hazard


def _draw_counts(
    mu: np.ndarray,
    hazard: np.ndarray,
    phi: np.ndarray,
    seed: int,
    retry: np.ndarray,
    why: str = "",
) -> dict[str, Any]:
    """Unobserved crossings, apprehensions and attempts (draw, scenario, section, month, category) under
    common random numbers across the scenario axis (module docstring), in chunks of `CHUNK` draws; ``retry``
    the retry probability r of each draw. Counts an int32 cannot hold are refused (`check_counts`, ``why``
    naming the settings), not stored wrapped round to negative numbers."""
    n_draw = mu.shape[0]
    unobserved = np.empty(mu.shape, dtype=np.int32)
    apprehensions = np.empty(mu.shape, dtype=np.int32)
    for index, lo in enumerate(range(0, n_draw, CHUNK)):
        sl = slice(lo, min(n_draw, lo + CHUNK))
        rng = np.random.default_rng([seed, _STREAM_COUNTS, index])
        phi_c = phi[sl][:, None, None, None, :]  # (draw, 1, 1, 1, category)
        # gamma mixing variable per cell, shared by the scenarios (φ is the same in all)
        cell_shape = (mu[sl].shape[0], 1, *mu.shape[2:])
        gamma = rng.gamma(np.broadcast_to(phi_c, cell_shape)) / phi_c
        rate = mu[sl] * gamma
        check_counts(rate.sum(axis=-1).max(), why)  # before Poisson draws of such rates
        if np.all(retry[sl] == 1.0):
            # repeated trials: every journey gets through, so unobserved = J exactly (a scenario that changes
            # only the hazards keeps the baseline's unobserved crossings, draw for draw); K | J ~ NegBin(J, 1 − p)
            journeys = nested_poisson(rate, rng, axis=1)
            q = np.expm1(hazard[sl])  # p/(1 − p) = e^H − 1
            caught = nested_poisson(nested_gamma(journeys, rng, axis=1) * q, rng, axis=1)
            check_counts(_most_in_a_cell(journeys, caught), why)
            unobserved[sl], apprehensions[sl] = journeys, caught
            continue
        miss = np.exp(-hazard[sl])  # 1 − p
        p = -np.expm1(-hazard[sl])
        r = retry[sl].reshape(-1, 1, 1, 1, 1)
        through = np.clip(r * miss / (1.0 - p * r), 0.0, 1.0)  # s
        never = nested_poisson(rate * miss, rng, axis=1)
        got_through = nested_poisson(rate * p * through, rng, axis=1)
        given_up = nested_poisson(rate * p * (1.0 - through), rng, axis=1)
        apprehended = got_through + given_up
        # further apprehensions of the apprehended journeys: NegBin(A, 1 − pr) as a gamma–Poisson count
        further_odds = p * r / np.clip(1.0 - p * r, 1e-12, None)
        further = nested_poisson(nested_gamma(apprehended, rng, axis=1) * further_odds, rng, axis=1)
        check_counts(_most_in_a_cell(never, got_through, apprehended, further), why)
        unobserved[sl] = never + got_through
        apprehensions[sl] = apprehended + further
    return {
        "unobserved": unobserved,
        "apprehensions": apprehensions,
        "attempts": unobserved + apprehensions,
    }


def _most_in_a_cell(*counts: np.ndarray) -> int:
    """An upper bound of a cell's counts summed over the categories (the attempts), without a temporary of
    the counts' size: the sum of each count's largest category sum."""
    return sum(int(c.sum(axis=-1).max(initial=0)) for c in counts)


def _history(data: xr.Dataset, posterior: xr.Dataset, n: int, seed: int) -> xr.Dataset:
    """Posterior draws of the data period's unobserved crossings per section × month (summed over
    categories) at ``n`` evenly spaced draws, and the observed apprehensions."""
    stacked = posterior.stack(sample=("chain", "draw"))
    total = stacked.sizes["sample"]
    pick = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))
    thinned = (
        stacked.isel(sample=pick)
        .drop_vars(["sample", "chain", "draw"])
        .rename({"sample": "draw"})
        .expand_dims(chain=[0])
        .transpose("chain", "draw", ...)
    )
    thinned = thinned[[v for v in thinned.data_vars if "draw" in thinned[v].dims]]
    u = crossings(data, thinned, np.random.default_rng([seed, _STREAM_HISTORY]))["unobserved"]
    u = u.sum("category").isel(chain=0).astype(np.int32)
    return xr.Dataset(
        {
            "history_unobserved": (
                ("history_draw", "section", "history_month"),
                u.transpose("draw", "section", "month").values,
            ),
            "history_apprehensions": (
                ("section", "history_month"),
                data["apprehensions"].sum("category").transpose("section", "month").values,
            ),
        },
        coords={"history_month": data["month"].values, "history_draw": np.arange(len(pick))},
    )
