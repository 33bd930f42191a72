"""What a forecast says: per scenario, the change in illegal crossings against the baseline, per year, for the
whole border and per section, with intervals and the probability of a reduction; and each measure's prior
beside what the fitted data say about its in-sample analogue.

A change is computed draw by draw (common random numbers make a scenario's draw and the baseline's draw the
same world but for the measure), then summarised: median, equal-tailed interval, P(reduction) = the share of
draws in which the scenario has fewer crossings than the baseline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.figure_style import is_synthetic
from estim.intervals import equal_tailed_array
from estim.measures.forecast import BASELINE
from estim.measures.spec import MeasureSpec
from estim.records.schemas import CATEGORIES, SECTIONS

WHOLE_BORDER = "whole border"
QUANTITIES = {
    "unobserved": "unobserved illegal crossings",
    "attempts": "illegal crossing attempts (apprehensions + unobserved)",
    "apprehensions": "apprehensions",
}


def area_totals(fc: xr.Dataset, quantity: str) -> xr.DataArray:
    """Draws of the quantity per year of the horizon (its total over the horizon ÷ its length in years), per
    scenario and area: every section and the whole border (area, draw, scenario)."""
    years = fc.sizes["month"] / 12.0
    x = fc[quantity].reset_coords(
        drop=True
    )  # per-section labels (surveyed) have no whole-border value
    if "category" in x.dims:
        x = x.sum("category")
    per_section = x.sum("month").astype(np.float64) / years
    whole = per_section.sum("section").expand_dims(section=[WHOLE_BORDER])
    return xr.concat([whole, per_section], dim="section").rename(section="area")


def changes(fc: xr.Dataset, quantity: str = "unobserved", prob: float = 0.9) -> pd.DataFrame:
    """One row per scenario (not the baseline) × area: the baseline's level per year (median), the change per
    year against the baseline and the % change (median and `prob` interval), and P(reduction)."""
    totals = area_totals(fc, quantity)
    base = totals.sel(scenario=BASELINE)
    rows = []
    for scenario in fc["scenario"].values:
        if scenario == BASELINE:
            continue
        diff = (totals.sel(scenario=scenario) - base).transpose("area", "draw").values
        b = base.transpose("area", "draw").values
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(b > 0, 100.0 * diff / b, np.nan)
        d_lo, d_med, d_hi = equal_tailed_array(diff, prob, axis=-1)
        p_lo, p_med, p_hi = equal_tailed_array(pct, prob, axis=-1)
        for i, area in enumerate(totals["area"].values):
            rows.append(
                {
                    "scenario": str(scenario),
                    "area": str(area),
                    "quantity": quantity,
                    "baseline_per_year": float(np.median(b[i])),
                    "change_per_year": float(d_med[i]),
                    "change_lower": float(d_lo[i]),
                    "change_upper": float(d_hi[i]),
                    "percent_change": float(p_med[i]),
                    "percent_lower": float(p_lo[i]),
                    "percent_upper": float(p_hi[i]),
                    "p_reduction": float(np.mean(diff[i] < 0)),
                }
            )
    return pd.DataFrame(rows)


def forecast_table(fc: xr.Dataset, prob: float = 0.9) -> pd.DataFrame:
    """`changes` of the unobserved crossings and of the attempts, one table."""
    return pd.concat([changes(fc, q, prob) for q in ("unobserved", "attempts")], ignore_index=True)


def _signed(x: float, unit: str = "") -> str:
    return f"{x:+,.0f}{unit}".replace("-", "−")


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:+.1f}".replace("-", "−")


def format_forecast(fc: xr.Dataset, table: pd.DataFrame, prob: float = 0.9) -> str:
    """The scenario table a researcher reads: the whole border first (both quantities), then the % change of
    the unobserved crossings per section and scenario, each column explained."""
    level = f"{round(100 * prob, 1):g} %"  # 99.9 %, not "100 %"
    synthetic = is_synthetic({"data_synthetic": fc.attrs.get("synthetic", "false")})
    start = str(fc.attrs.get("start"))
    months = fc.sizes["month"]
    end = str(fc["month"].values[-1])[:7]
    lines = [
        f"Forecast of the measures, {start} to {end} ({months} months, {fc.sizes['draw']:,} draws)"
        + (" — SYNTHETIC data" if synthetic else ""),
        "Changes are per year (the horizon's total ÷ its years) against the baseline (no measure), computed",
        f"draw by draw with common random numbers; median [{level} interval]; P(red.) = probability of a",
        "reduction. Under the model's repeated trials every journey ends in an unobserved crossing, so a",
        "measure changes unobserved crossings only through fewer journeys; more detection shows in attempts.",
        *_assumption_lines(fc),
        *_few_draws_line(fc.sizes["draw"], prob, fc.attrs.get("fit_draws")),
    ]
    for quantity in ("unobserved", "attempts"):
        t = table[(table["quantity"] == quantity) & (table["area"] == WHOLE_BORDER)]
        if t.empty:
            continue
        base = t["baseline_per_year"].iloc[0]
        lines += [
            "",
            f"Whole border: {QUANTITIES[quantity]} per year (baseline median {base:,.0f})",
            f"  {'scenario':<36} {'change per year':>28} {'% change':>24} {'P(red.)':>8}",
        ]
        for _, r in t.iterrows():
            change = (
                f"{_signed(r.change_per_year)} [{_signed(r.change_lower)}, "
                f"{_signed(r.change_upper)}]"
            )
            pct = f"{_pct(r.percent_change)} [{_pct(r.percent_lower)}, {_pct(r.percent_upper)}]"
            lines.append(f"  {r.scenario:<36} {change:>28} {pct:>24} {r.p_reduction:>8.2f}")
    t = table[(table["quantity"] == "unobserved") & (table["area"] != WHOLE_BORDER)]
    if not t.empty:
        scenarios = list(dict.fromkeys(t["scenario"]))
        letters = _abbreviations([p for s in scenarios for p in s.split("+")])
        short = {s: "+".join(letters[p] for p in s.split("+")) for s in scenarios}
        surveyed = dict(
            zip(fc["section"].values.tolist(), fc["surveyed"].values.tolist(), strict=True)
        )
        lines += [
            "",
            "Per section: % change in unobserved crossings per year, median (P(red.)); * surveyed "
            "section (individual records)",
            "  "
            + "  ".join(f"{k} = {s}" for s, k in short.items() if "+" not in s)
            + "; + combines them",
            f"  {'section':<16} {'baseline':>8} " + " ".join(f"{short[s]:>13}" for s in scenarios),
        ]
        for area, rows in t.groupby("area", sort=False):
            rows = rows.set_index("scenario")
            name = f"{area}{'*' if surveyed.get(area) else ''}"
            cells = [
                f"{_pct(rows.at[s, 'percent_change']):>6} ({rows.at[s, 'p_reduction']:.2f})"
                for s in scenarios
            ]
            base = rows["baseline_per_year"].iloc[0]
            lines.append(f"  {name:<16} {base:>8,.0f} " + " ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def _assumption_lines(fc: xr.Dataset) -> list[str]:
    """What the numbers rest on beyond the model: how the trends run on, and any measure whose ramp the horizon
    cuts short (its change is of a measure still building up, not of the measure at full strength)."""
    lines = []
    settings = json.loads(str(fc.attrs.get("settings_json", "{}")))
    rho = settings.get("trend_damping")
    if rho:
        if len(rho) == 1:
            shape = " (a straight line)" if rho[0] == 1 else ""
            lines.append(
                f"Trends beyond the data: damped by ρ = {rho[0]:g} a year{shape}, fixed (--trend-damping): "
                "the intervals leave out whether the trends persist."
            )
        else:
            lines.append(
                "Trends beyond the data: the draws spread over a damping ρ = "
                f"{', '.join(f'{r:g}' for r in rho)} a year (1: a straight line)."
            )
    partial = str(fc.attrs.get("partial_measures", ""))
    if partial:
        lines.append(
            f"Not at full strength by the horizon's end: {partial}; their change here is of a measure still "
            "building up."
        )
    return lines


def _few_draws_line(draws: int, prob: float, fit_draws: int | None = None) -> list[str]:
    """A note when fewer than one draw lies beyond each end of the interval: its ends are then the extreme
    draws, interpolated, and cover far less than ``prob`` (10 draws: a "99.9 %" interval is their range, which
    holds about 9/11 of the law; a "90 %" one about 3/4). A forecast has at most one draw per posterior draw
    of the fit (``fit_draws``), so where the draws needed exceed those, the advice is a longer fit or a
    narrower interval, not a --draws the forecast would cap."""
    tail = draws * (1 - prob) / 2
    if tail >= 1 - 1e-9:  # 20 × (1 − 0.9) / 2 is 0.999… in floating point
        return []
    need = int(np.ceil(2 / (1 - prob) - 1e-9))
    head = (
        f"Few draws: {draws:,} draws leave {tail:.2g} beyond each end of a {round(100 * prob, 1):g} % interval, "
        "so its ends are the extreme draws and it covers less than it says; "
    )
    if fit_draws is not None and need > int(fit_draws):
        widest = np.floor((1 - 2 / int(fit_draws)) * 1000) / 1000
        narrower = f" or give --prob {widest:g} or less" if widest >= 0.5 else ""
        return [
            head
            + f"it needs {need:,} draws, but the fit has only {int(fit_draws):,} posterior draws: refit "
            f"with more ([sampler] draws × chains ≥ {need:,}){narrower}."
        ]
    return [head + f"give --draws {need:,} or more."]


def _abbreviations(measures: Sequence[str]) -> dict[str, str]:
    """Each measure's column header: its first letter, capitalised (permits -> P), or as many letters as tell
    it from the others (coordination, curfew -> Co, Cu): one letter each used to head two columns "C", and
    their combination "C+C", with nothing to say which was which."""
    names = list(dict.fromkeys(measures))
    out = {}
    for name in names:
        others = [n for n in names if n != name]
        k = 1
        while k < len(name) and any(o[:k] == name[:k] for o in others):
            k += 1
        out[name] = name[:k].capitalize()
    return out


def forecast_json(
    fc: xr.Dataset,
    table: pd.DataFrame,
    analogue_table: pd.DataFrame | None,
    effect_table: pd.DataFrame | None = None,
    prob: float = 0.9,
    warned: Sequence[str] = (),
) -> str:
    """The forecast's table (and the analogues, and each effect at full strength) with its provenance, the
    probability of its central intervals (``prob``: the `_lower`/`_upper` columns), the notes the text
    prints on them (too few draws for the interval) and the warnings given on the way (`warned`: a measure
    that more than doubles journeys, say), as JSON."""
    out: dict[str, Any] = {
        "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in fc.attrs.items()},
        "interval_prob": prob,
        "notes": _few_draws_line(fc.sizes["draw"], prob, fc.attrs.get("fit_draws")),
        "warnings": list(warned),
        "changes": json.loads(table.to_json(orient="records")),
    }
    if effect_table is not None:
        out["effects"] = json.loads(effect_table.to_json(orient="records"))
    if analogue_table is not None:
        out["analogues"] = json.loads(analogue_table.to_json(orient="records"))
    return json.dumps(out, indent=2, default=str)


# ------------------------------------------------------------------------------------------------------
# priors beside the data


def analogues(
    measures: Sequence[MeasureSpec], posterior: xr.Dataset, data: xr.Dataset, prob: float = 0.9
) -> pd.DataFrame:
    """One row per effect (and analogue category): the prior of the effect size (5 %, 50 %, 95 % for
    prob 0.9) beside the fitted posterior of its in-sample analogue in the same units, when the data have one.

    * a journeys effect naming a policy event: 1 − θ_{e,c} or θ_{e,c} (as the effect's multiplier form says)
      for each of its categories — e.g. the 2009 residents' agreement's effect on residents' journeys;
    * a wait effect: the elasticity η1 of the bypass odds in the wait, and the observed ratio of the mean land
      waits in the year after and the year before the last policy event that changed them, if any;
    * guard and informant hazard effects: no analogue in the data (prior only)."""
    q = ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2)
    rows = []
    events = [str(e) for e in data["event"].values] if "event" in data.coords else []
    theta = np.exp(posterior["log_policy_effect"]) if "log_policy_effect" in posterior else None
    for spec in measures:
        for e in spec.effects:
            prior = e.quantiles(q)
            base = {
                "measure": spec.name,
                "effect": e.name,
                "prior": f"{e.prior.distribution}({', '.join(f'{k}={v:g}' for k, v in e.prior.parameters.items())})",
                "prior_lower": prior[0],
                "prior_median": prior[1],
                "prior_upper": prior[2],
            }
            before = len(rows)
            if e.target == "journeys" and e.analogue in events and theta is not None:
                for c in e.categories:
                    if c not in theta["journey_category"].values:
                        continue
                    draws = e.value_of(
                        theta.sel(event=e.analogue, journey_category=c).values.ravel()
                    )
                    lo, med, hi = np.quantile(draws, q)
                    rows.append(
                        base
                        | {
                            "analogue": f"{e.analogue} on {c} journeys, as θ = "
                            f"{e.multiplier.replace('value', e.name)}",
                            "data_lower": lo,
                            "data_median": med,
                            "data_upper": hi,
                        }
                    )
                if len(rows) > before:
                    continue
            if e.target == "wait" and "bypass_eta1" in posterior:
                draws = posterior["bypass_eta1"].values.ravel()
                lo, med, hi = np.quantile(draws, q)
                rows.append(
                    base
                    | {
                        "analogue": "elasticity η1 of the bypass odds in the wait (acts through it)",
                        "data_lower": lo,
                        "data_median": med,
                        "data_upper": hi,
                    }
                )
                ratio, event = _wait_ratio(data, e.analogue)
                if ratio is None and e.analogue is not None:
                    rows.append(
                        _none_row(base, f"observed: no year of waits either side of {e.analogue}")
                    )
                if ratio is not None:
                    rows.append(
                        base
                        | {
                            "analogue": f"observed: land waits in the year after / before {event}, "
                            f"as {e.multiplier.replace('value', e.name)} = that ratio",
                            "data_lower": np.nan,
                            "data_median": float(e.value_of(ratio)),
                            "data_upper": np.nan,
                        }
                    )
                continue
            # an analogue named but without an estimate for these categories (bypassers have no θ): said so
            missing = f"{e.analogue}: no estimate for these journeys; " if e.analogue else ""
            rows.append(_none_row(base, f"{missing}none in the data (prior only)"))
    return pd.DataFrame(rows)


def _none_row(base: dict[str, Any], analogue: str) -> dict[str, Any]:
    return base | {
        "analogue": analogue,
        "data_lower": np.nan,
        "data_median": np.nan,
        "data_upper": np.nan,
    }


def _wait_ratio(data: xr.Dataset, analogue: str | None = None) -> tuple[float | None, str]:
    """Foreign-crossing-weighted mean land wait over the whole border in the 12 months after a policy event
    with a year of data either side (``analogue``, the effect's own; or else the latest), over the 12 months
    before it."""
    if "event_start" not in data.coords:
        return None, ""
    months = data["month"].values.astype("datetime64[M]")
    flow = data["land_foreign_crossings"].values.astype(float)
    wait = data["land_mean_wait"].values
    for event, start in sorted(
        zip(data["event"].values, data["event_start"].values, strict=True),
        key=lambda x: x[1],
        reverse=True,
    ):
        if analogue is not None and str(event) != analogue:
            continue
        m = np.datetime64(start, "M")
        before = (months >= m - np.timedelta64(12, "M")) & (months < m)
        after = (months > m) & (months <= m + np.timedelta64(12, "M"))
        if before.sum() == 12 and after.sum() == 12:
            w_before = (flow[:, before] * wait[:, before]).sum() / flow[:, before].sum()
            w_after = (flow[:, after] * wait[:, after]).sum() / flow[:, after].sum()
            return float(w_after / w_before), str(event)
    return None, ""


def format_analogues(table: pd.DataFrame, prob: float = 0.9) -> str:
    """The priors beside the data, one line per row of `analogues`."""
    level = f"{round(100 * prob, 1):g} %"
    lines = [
        f"Each measure's prior beside what the fitted data say about its in-sample analogue: median [{level}]",
        f"  {'measure.effect':<28} {'prior':<34} {'prior median [interval]':>24}   "
        f"{'data median [interval]':>24}  analogue",
    ]
    for _, r in table.iterrows():
        prior = f"{r.prior_median:.2f} [{r.prior_lower:.2f}, {r.prior_upper:.2f}]"
        if np.isfinite(r.data_lower):
            data = f"{r.data_median:.2f} [{r.data_lower:.2f}, {r.data_upper:.2f}]"
        elif np.isfinite(r.data_median):
            data = f"{r.data_median:.2f}"
        else:
            data = "–"
        lines.append(
            f"  {r.measure + '.' + r.effect:<28} {r.prior:<34} {prior:>24}   {data:>24}  {r.analogue}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------
# what each effect does at full strength


def effects_table(measures: Sequence[MeasureSpec], prob: float = 0.9) -> pd.DataFrame:
    """One row per effect: what it multiplies (target, categories, sections) and its full-strength multiplier
    M from its prior (median and `prob` interval), with the % change M makes. Printed with the forecast so a
    reader sees the spec as the forecast read it: a share written as "value" where "1 - value" was meant
    (0.2: −80 %, not −20 %) shows here, where the forecast cannot refuse it."""
    q = ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2)
    rows = []
    for spec in measures:
        where = "all sections" if set(spec.sections) == set(SECTIONS) else ", ".join(spec.sections)
        for e in spec.effects:
            lo, med, hi = np.sort(e.multiplier_of(e.quantiles(q)))  # M is monotone in the value
            if e.target == "wait":
                what = "waits at the land checkpoints"
            elif set(e.categories) == set(CATEGORIES):
                what = f"{e.target} of all categories"
            else:
                what = f"{e.target} of {', '.join(e.categories)}"
            rows.append(
                {
                    "measure": spec.name,
                    "effect": e.name,
                    "acts_on": f"{what}; {where}",
                    "multiplier_form": e.multiplier,
                    "multiplier_median": med,
                    "multiplier_lower": lo,
                    "multiplier_upper": hi,
                    "percent_median": 100 * (med - 1),
                    "percent_lower": 100 * (lo - 1),
                    "percent_upper": 100 * (hi - 1),
                }
            )
    return pd.DataFrame(rows)


def format_effects(table: pd.DataFrame, prob: float = 0.9) -> str:
    """`effects_table` as text: the multiplier M at full strength and the % change it makes."""
    level = f"{round(100 * prob)} %"
    lines = [
        f"Each effect at full strength, from its prior: the multiplier M of what it acts on, median [{level}],",
        "and the change it makes (M = 0.8 is a 20 % cut); the ramp and lag reach it gradually.",
    ]
    for _, r in table.iterrows():
        m = f"× {r.multiplier_median:.3g} [{r.multiplier_lower:.3g}, {r.multiplier_upper:.3g}]"
        pct = f"{_pct(r.percent_median)} % [{_pct(r.percent_lower)}, {_pct(r.percent_upper)}]"
        lines.append(f"  {r.measure + '.' + r.effect:<28} {m:<24} {pct:<26} {r.acts_on}")
    return "\n".join(lines)
