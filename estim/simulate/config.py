"""Every parameter of the synthetic border process, with its default and where the default comes from.

Each field carries ``metadata={"status": ..., "note": ...}``; the status is one of

* ``sourced``    — a public figure, cited in the note (every source in full: ``docs/sources.md``);
* ``calibrated`` — tuned so that the simulated records reproduce the public figures named in the note
                   (``docs/calibration.md`` shows how close they come at the default seed);
* ``assumed``    — no public figure exists; a plausible value chosen by us;
* ``design``     — a choice about the simulation itself (period, window), not about the border.

`docs/calibration.md` lists the fields by status (from this metadata), and `docs/simulator.md` writes the
process they parameterise as equations, using the symbols given in the notes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from estim.records.schemas import (
    CATEGORIES,
    CHECKPOINT_TYPES,
    DETECTORS,
    RECORDED,
    REGISTERS,
    SECTIONS,
)
from estim.simulate.frailty import check_frailty_sd
from estim.simulate.measures import AppliedMeasure, check_in_period

DEFAULT_SEED: int = 20061
"""Seed of the shipped synthetic dataset (data/synthetic/)."""

MAX_YEARS: int = 25
"""At most this many years are simulated (2006–2030 from the default start: the 12 calibrated years and 13 more
for measures from 2018). The calibrated 2006–2017 trends (journeys, legal flows, the technical detection
hazard's δ) grow exponentially: extrapolated much further, a run takes many minutes (30+ years), then
apprehensions become certain (p = 1, about 80 years) or the journey counts overflow their negative binomial
draws (200 years)."""

POLICY_EVENTS = ("border_residents_agreement", "customs_union", "joint_checkpoint_control")
"""The three regime changes of docs/sources.md, "Policy events" (their kinds in schemas.POLICY_KINDS)."""

LAND_TYPES = ("road", "rail", "river")
"""Checkpoint types a traveller could bypass over land; air checkpoints carry flows but no bypassing."""


def _p(default: Any, status: str, note: str) -> Any:
    """A config field with provenance metadata; mutable defaults get a factory."""
    meta = {"status": status, "note": note}
    if isinstance(default, dict):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata=meta)
    return field(default=default, metadata=meta)


def _sec(**values: float) -> dict[str, float]:
    return {s: float(values[s]) for s in SECTIONS}


def _cat(**values: Any) -> dict[str, Any]:
    return {c: values[c] for c in CATEGORIES}


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the synthetic Russia–Kazakhstan border (see docs/simulator.md for the equations).

    Per-section values are dicts keyed by the section ids of `schemas.SECTIONS`; per-category values by
    `schemas.CATEGORIES`; log-scale effects are natural logarithms. Treat an instance as immutable: build
    variants with `dataclasses.replace`.
    """

    # --- period -----------------------------------------------------------------------------------
    years: int = _p(12, "design", "12 years from 2006-01: 2006-2017 covers the three policy events")
    start_month: str = _p("2006-01", "design", "first simulated month; year t=0 of every trend")

    # --- legal flows at checkpoints (X) -----------------------------------------------------------
    legal_level_citizens: dict[str, float] = _p(
        _sec(
            astrakhan=40_000, volgograd=25_000, saratov=55_000, samara=24_000, orenburg=204_470,
            chelyabinsk=48_000, kurgan=28_000, tyumen=14_000, omsk=79_780, novosibirsk=9_000,
            altai_krai=40_000, altai_republic=5_000,
        ),
        "calibrated",
        "L^cit_s: citizens' legal crossings per month, whole section, at t=0 and seasonal mean; orenburg "
        "and omsk calibrated (oreneda.ru, gtsmi.ru, omsk.infomsk.ru, omskzdes.ru), the others assumed",
    )  # fmt: skip
    legal_level_foreigners: dict[str, float] = _p(
        _sec(
            astrakhan=18_000, volgograd=11_000, saratov=28_000, samara=11_000, orenburg=74_740,
            chelyabinsk=20_000, kurgan=10_000, tyumen=5_000, omsk=79_780, novosibirsk=3_500,
            altai_krai=16_000, altai_republic=2_000,
        ),
        "calibrated",
        "L^for_s: foreigners' legal crossings per month, whole section, at t=0 and seasonal mean; orenburg "
        "calibrated to regnum.ru/news/1613353.html, omsk to omsk.infomsk.ru (50 % foreign assumed), others assumed",
    )  # fmt: skip
    legal_trend_citizens: dict[str, float] = _p(
        _sec(
            astrakhan=0.0, volgograd=0.0, saratov=0.0, samara=0.0, orenburg=-0.0417, chelyabinsk=0.0,
            kurgan=0.0, tyumen=0.0, omsk=0.0123, novosibirsk=0.0, altai_krai=0.0, altai_republic=0.0,
        ),
        "calibrated",
        "τ^cit_s per year; orenburg with τ^for fits all persons 2.7 M (Jan-Sep 2010) and 3.5 M (Jan-Sep 2014); "
        "omsk fits > 2 M (2009) -> > 2.5 M (2019, omsk.infomsk.ru; omskzdes.ru); others assumed flat",
    )  # fmt: skip
    legal_trend_foreigners: dict[str, float] = _p(
        _sec(
            astrakhan=0.05, volgograd=0.05, saratov=0.05, samara=0.05, orenburg=0.1167, chelyabinsk=0.05,
            kurgan=0.05, tyumen=0.05, omsk=0.0123, novosibirsk=0.05, altai_krai=0.05, altai_republic=0.05,
        ),
        "calibrated",
        "τ^for_s per year; orenburg fits foreigners 1.94 M (2011) -> 2.35 M (2012, regnum.ru/news/1613353.html) "
        "and all persons 2010 -> 2014; omsk as τ^cit; others assumed (+5 %/yr)",
    )  # fmt: skip
    legal_seasonal: tuple[float, ...] = _p(
        (0.30, -0.30, -0.25, -0.20, 0.00, 0.15, 0.25, 0.25, 0.05, -0.10, -0.15, 0.40),
        "assumed",
        "λ_m, Jan..Dec log multipliers (centred by the simulator): summer high, New-Year peak; Dec/Feb "
        "ratio 2.0 matches Omsk 8,000 vs 4,000 a day (omskzdes.ru)",
    )
    legal_dispersion: float = _p(
        80.0, "assumed", "φ^L: negative-binomial shape of monthly checkpoint flows"
    )
    checkpoint_type_weight: dict[str, float] = _p(
        {"road": 1.0, "rail": 0.35, "air": 0.15, "river": 0.05},
        "assumed",
        "ω_type: relative size of a checkpoint by type within its section",
    )
    checkpoint_effect_sd: float = _p(
        0.5,
        "assumed",
        "σ_k: sd of the log size of a checkpoint; drawn once, sorted so #1 is the largest",
    )
    citizens_only_checkpoints: tuple[str, ...] = _p(
        ("orenburg-road-5", "orenburg-road-6", "orenburg-road-7"),
        "sourced",
        "three Orenburg road crossings open only to Russian and Kazakh citizens (orenburg-news.net 2023-07-06)",
    )
    customs_union_foreign_flow_effect: float = _p(
        1.20,
        "assumed",
        "θ^for_CU: multiplier of foreigners' legal crossings once the customs union is in force",
    )
    refusal_log_rate: tuple[float, float] = _p(
        (-8.491, 0.3933),
        "calibrated",
        "(ψ0, ψ1): log refusal rate per foreign crossing = ψ0 + ψ1·t; Orenburg ~1,300 (Jan-Sep 2010, "
        "oreneda.ru) and ~12,000 (Jan-Sep 2014, gtsmi.ru)",
    )
    invalid_document_log_rate: tuple[float, float] = _p(
        (-4.774, -0.3496),
        "calibrated",
        "(χ0, χ1): log rate of invalid documents per crossing = χ0 + χ1·t; Orenburg > 4,800 (Jan-Sep 2010, "
        "oreneda.ru) and > 1,500 (Jan-Sep 2014, gtsmi.ru)",
    )

    # --- waiting times (W) --------------------------------------------------------------------------
    wait_base_minutes: dict[str, float] = _p(
        {"road": 65.0, "rail": 70.0, "air": 25.0, "river": 30.0},
        "calibrated",
        "ω^W_type: mean wait at reference load before 2011; Isilkul rail ~1 h (Petropavlovsk.news 2019), road "
        "15-20 min after 2011 (newsland.com), others assumed",
    )
    wait_reference_load: dict[str, float] = _p(
        {"road": 40_000.0, "rail": 12_000.0, "air": 10_000.0, "river": 2_000.0},
        "assumed",
        "C_type: crossings per month at which the base wait applies",
    )
    wait_load_elasticity: float = _p(
        0.6, "assumed", "κ: elasticity of the wait with respect to load"
    )
    wait_road_month_multiplier: tuple[float, ...] = _p(
        (1.4, 1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.15, 1.0, 1.0, 1.0, 3.0),
        "assumed",
        "ν_m, Jan..Dec, road only: the New-Year rush queues (Sagarchin 10-15 h before New Year, 29ru.net)",
    )
    wait_noise_sd: float = _p(
        0.2, "assumed", "σ_W: sd of the log-normal noise of a checkpoint-month mean wait"
    )
    customs_union_wait_effect: float = _p(
        0.5,
        "assumed",
        "θ^W_CU: road-checkpoint wait multiplier once internal customs controls are gone",
    )
    joint_control_wait_effect: float = _p(
        0.55,
        "assumed",
        "θ^W_JC: road-checkpoint wait multiplier under joint control (one-stop posts cut clearance "
        "times by 50-95 %: kra.go.ke, theigc.org)",
    )

    # --- journeys (illegal crossing intentions, J) ---------------------------------------------------
    section_effect: dict[str, float] = _p(
        _sec(
            astrakhan=0.25, volgograd=-0.20, saratov=0.00, samara=-0.30, orenburg=0.00,
            chelyabinsk=-0.15, kurgan=-0.25, tyumen=-0.35, omsk=0.00, novosibirsk=-0.40,
            altai_krai=-0.10, altai_republic=-0.60,
        ),
        "assumed",
        "α_s: log journeys per 1,000 km relative to Orenburg (0 by convention); omsk came out 0 in the "
        "calibration of β; the others assumed: river delta and steppe easier to cross, mountains and forest harder",
    )  # fmt: skip
    category_effect: dict[str, float | None] = _p(
        _cat(
            border_resident=3.78,
            labour_migrant=1.83,
            transit_migrant=1.23,
            smuggler=2.38,
            bypasser=None,
        ),
        "calibrated",
        "β_c: log journeys per month per 1,000 km at t=0 (residents: at 100k border population); "
        "Orenburg and Omsk apprehension figures (oreneda.ru, gtsmi.ru, omskinform.ru); bypasser: unused",
    )
    seasonal_harmonics: dict[str, list[float] | None] = _p(
        _cat(
            border_resident=[0.40, 7.0, 0.0, 0.0],
            labour_migrant=[0.30, 6.0, 0.35, 4.5],
            transit_migrant=[0.30, 7.0, 0.0, 0.0],
            smuggler=[0.35, 8.0, 0.0, 0.0],
            bypasser=None,
        ),
        "assumed",
        "(a1, m1, a2, m2): S_c(m) = a1 cos(2π(m−m1)/12) + a2 cos(4π(m−m2)/12), m = 1..12; warm-season peak, "
        "labour spring (Apr-May) and late-autumn (Oct-Nov) movements (a qualitative pattern; no primary source "
        "located: docs/sources.md, Composition and season)",
    )
    trend: dict[str, float | None] = _p(
        _cat(
            border_resident=-0.15,
            labour_migrant=0.20,
            transit_migrant=0.16,
            smuggler=0.0,
            bypasser=None,
        ),
        "calibrated",
        "τ_c per year: Orenburg regime violators 1,650 -> 850 and violators 500 -> 750+ (2010 -> 2014)",
    )
    dispersion: dict[str, float] = _p(
        _cat(
            border_resident=20.0,
            labour_migrant=10.0,
            transit_migrant=5.0,
            smuggler=8.0,
            bypasser=30.0,
        ),
        "assumed",
        "φ_c: negative-binomial shape (gamma-Poisson over-dispersion) of monthly journeys",
    )
    population_elasticity: float = _p(
        0.8,
        "assumed",
        "γ: elasticity of residents' journeys with respect to the near-border population",
    )
    residents_take_up: float = _p(
        0.4,
        "assumed",
        "take-up of the border-residents agreement: residents' journeys × (1 − take-up); cf. Poland-Kaliningrad "
        "~100k permits of ~940k residents in a year (PISM 2013)",
    )
    customs_union_smuggler_effect: float = _p(
        0.75,
        "assumed",
        "θ_CU,smuggler: smugglers' journeys multiplier once internal customs controls are gone",
    )
    bypass_eta0: float = _p(
        -8.25,
        "calibrated",
        "η0: logit bypass share at a 60-minute wait; Orenburg/Omsk regime violators",
    )
    bypass_eta1: float = _p(
        2.0,
        "calibrated",
        "η1 > 0: slope of the logit bypass share in log(wait / 60 min); Orenburg regime violators 2010 -> 2014",
    )

    # --- apprehension (detection hazards h, repeated trials) ----------------------------------------
    hazard_section: dict[str, float] = _p(
        _sec(
            astrakhan=-0.85, volgograd=-0.60, saratov=-0.65, samara=-0.55, orenburg=-0.70,
            chelyabinsk=-0.65, kurgan=-0.60, tyumen=-0.70, omsk=-0.75, novosibirsk=-0.60,
            altai_krai=-0.70, altai_republic=-0.95,
        ),
        "assumed",
        "a_s: log detection hazard of the section; p in 0.25-0.6 (Massey & Singer 1995: 0.35; DHS 2017: 0.55-0.85)",
    )  # fmt: skip
    hazard_category: dict[str, float] = _p(
        _cat(
            border_resident=0.0,
            labour_migrant=0.0,
            transit_migrant=0.1,
            smuggler=-0.45,
            bypasser=0.30,
        ),
        "assumed",
        "b_c: smugglers know the terrain and evade; bypassers cross near checkpoints and are caught more",
    )
    hazard_detector: dict[str, float] = _p(
        {"patrol": -0.511, "technical": -1.386, "informant": -1.897},
        "assumed",
        "e_d: log hazard shares at t=0 (patrol 0.60, technical 0.25, informant 0.15)",
    )
    technical_trend: float = _p(0.07, "assumed", "δ per year: technical means improve (log hazard)")
    retry_probability: float = _p(
        1.0,
        "design",
        "r: probability of retrying after an apprehension (1 = Espenshade's repeated-trials assumption holds)",
    )
    apprehension_frailty_sd: float = _p(
        0.0,
        "design",
        "σ: person-level frailty: each person's hazards are × Z, log Z ~ N(−σ²/2, σ²) on 5 Gauss–Hermite nodes "
        "(E Z = 1); 0 = every person of a cell has the same p (the border model's assumption)",
    )

    # --- individuals (surveyed sections only) --------------------------------------------------------
    return_probability: dict[str, float] = _p(
        _cat(
            border_resident=0.6,
            labour_migrant=0.3,
            transit_migrant=0.05,
            smuggler=0.5,
            bypasser=0.2,
        ),
        "assumed",
        "ρ_c: a journey is made by a person of the same section and category with a journey in the last window",
    )
    return_window_months: int = _p(
        12, "design", "window (months) in which a person counts as returning"
    )
    citizenship: dict[str, dict[str, float]] = _p(
        _cat(
            border_resident={"RUS": 0.65, "KAZ": 0.35},
            labour_migrant={"UZB": 0.60, "TJK": 0.25, "KGZ": 0.15},
            transit_migrant={
                "AFG": 0.30,
                "PAK": 0.20,
                "IND": 0.15,
                "BGD": 0.15,
                "SYR": 0.10,
                "XXX": 0.10,
            },
            smuggler={"KAZ": 0.55, "RUS": 0.45},
            bypasser={"UZB": 0.45, "KGZ": 0.20, "TJK": 0.20, "CHN": 0.10, "TKM": 0.05},
        ),
        "assumed",
        "citizenship distribution by category (residents RU/KZ; Uzbek labour flow via Orenburg; transit toward "
        "the EU; bypassers are 'other foreigners' as counted in crossings_foreigners)",
    )
    border_zone_share: dict[str, float] = _p(
        _cat(
            border_resident=1.0, labour_migrant=0.0, transit_migrant=0.0, smuggler=0.2, bypasser=0.0
        ),
        "assumed",
        "probability that a person lives in the near-border zone",
    )
    to_russia_probability: dict[str, list[float]] = _p(
        _cat(
            border_resident=[0.5] * 12,
            labour_migrant=[0.45, 0.70, 0.85, 0.90, 0.85, 0.70, 0.55, 0.40, 0.30, 0.15, 0.10, 0.20],
            transit_migrant=[0.9] * 12,
            smuggler=[0.55] * 12,
            bypasser=[0.5] * 12,
        ),
        "assumed",
        "P(direction = to_russia) by category and month Jan..Dec: labour migrants go to Russia in spring and "
        "home in late autumn; transit runs toward the EU",
    )
    recorded_probability: dict[str, dict[str, float]] = _p(
        _cat(
            border_resident={"no_documents": 0.06, "invalid_documents": 0.04, "regime_violation": 0.90, "smuggling": 0.0},
            labour_migrant={"no_documents": 0.50, "invalid_documents": 0.42, "regime_violation": 0.08, "smuggling": 0.0},
            transit_migrant={"no_documents": 0.60, "invalid_documents": 0.36, "regime_violation": 0.04, "smuggling": 0.0},
            smuggler={"no_documents": 0.03, "invalid_documents": 0.02, "regime_violation": 0.05, "smuggling": 0.90},
            bypasser={"no_documents": 0.10, "invalid_documents": 0.0, "regime_violation": 0.90, "smuggling": 0.0},
        ),
        "assumed",
        "what is recorded at an apprehension, by category (mapped to the public figures: regime_violation = "
        "'regime violators', the rest = 'border violators detained')",
    )  # fmt: skip

    # --- registers -------------------------------------------------------------------------------------
    register_completeness: dict[str, float] = _p(
        {"police_check": 0.7, "overstay": 0.6, "deportation": 0.9},
        "assumed",
        "λ_list: share of qualifying events a register actually records (undercount)",
    )
    register_probability: dict[str, dict[str, list[float]]] = _p(
        {
            "police_check": _cat(
                border_resident=[0.03, 0.05], labour_migrant=[0.25, 0.30], transit_migrant=[0.12, 0.15],
                smuggler=[0.06, 0.10], bypasser=[0.04, 0.05],
            ),
            "overstay": _cat(
                border_resident=[0.005, 0.01], labour_migrant=[0.35, 0.35], transit_migrant=[0.12, 0.12],
                smuggler=[0.01, 0.02], bypasser=[0.05, 0.05],
            ),
            "deportation": _cat(
                border_resident=[0.0, 0.02], labour_migrant=[0.03, 0.25], transit_migrant=[0.05, 0.35],
                smuggler=[0.01, 0.05], bypasser=[0.0, 0.02],
            ),
        },
        "assumed",
        "π[list][c] = [never apprehended, apprehended]: probability of qualifying for the list (before "
        "undercount): per journey into Russia for police checks and overstays (apprehended: that journey), "
        "per person for deportations; labour migrants most on overstay, deportations mostly for the apprehended",
    )  # fmt: skip
    legal_entrants_per_year: float = _p(
        1500.0,
        "assumed",
        "mean number per surveyed section and year of people who entered legally and qualify for a register",
    )
    legal_entrant_register_probability: dict[str, float] = _p(
        {"police_check": 0.6, "overstay": 0.5, "deportation": 0.08},
        "assumed",
        "probability that a legal entrant qualifies for each list (before undercount)",
    )
    register_delay_days: dict[str, int] = _p(
        {"police_check": 365, "overstay": 365, "deportation": 60},
        "assumed",
        "an entry is dated uniformly 0..this many days after the crossing into Russia (deportations: the last "
        "apprehension, or the first entry of a person never apprehended)",
    )
    register_dating: str = _p(
        "delay",
        "assumed",
        "how an in-country entry is dated: 'delay', the crossing + U{0..Δ_L} even if the person has left Russia "
        "by then; 'stay', within the person's stay, the crossing + U{0..min(Δ_L, days to their next journey − 1)}",
    )

    # --- policy dates -----------------------------------------------------------------------------------
    policy_start: dict[str, str] = _p(
        {
            "border_residents_agreement": "2009-04-27",
            "customs_union": "2011-07-01",
            "joint_checkpoint_control": "2013-07-30",
        },
        "sourced",
        "dates the changes took effect: Kazakh ratification laws No. 290 of 2007 and No. 117-V of 2013 (dates of "
        "entry into force); customs union: press reports of 1 July 2011 (docs/sources.md, Policy events)",
    )

    # --- measures ----------------------------------------------------------------------------------------
    measures: tuple[AppliedMeasure, ...] = _p(
        (),
        "design",
        "measures applied with known effect sizes (estim.simulate.measures); the truth then also holds the "
        "baseline without them under common random numbers (docs/simulator.md, Measures)",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "measures", tuple(self.measures))  # a list would make it unequal
        _check_config(self)

    def to_json(self) -> str:
        """The configuration as canonical JSON (sorted keys), as stored in truth.nc.

        Without measures the key is left out, so that a configuration without them serialises (and its
        truth.nc is written) exactly as before measures existed; so is ``register_dating`` at its default.
        """
        d = dataclasses.asdict(self)
        if not self.measures:
            del d["measures"]
        if self.register_dating == "delay":  # as before the option existed
            del d["register_dating"]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def provenance(cls) -> list[dict[str, str]]:
        """One row per field: name, status (sourced/calibrated/assumed/design), note."""
        return [
            {"name": f.name, "status": f.metadata["status"], "note": f.metadata["note"]}
            for f in dataclasses.fields(cls)
        ]


def _check_config(c: SimulationConfig) -> None:
    """Fail early, naming the field, when a config is inconsistent with the domain."""

    def keys(name: str, expected: tuple[str, ...]) -> None:
        got = getattr(c, name)
        if set(got) != set(expected):
            raise ValueError(f"SimulationConfig.{name}: keys must be {expected}, got {tuple(got)}")

    def prob(name: str, v: float) -> None:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"SimulationConfig.{name}: {v} is not a probability")

    if not 1 <= c.years <= MAX_YEARS:
        raise ValueError(
            f"SimulationConfig.years: {c.years} is not in 1–{MAX_YEARS} (the calibrated trends are not "
            "extrapolated further)"
        )
    for name in (
        "legal_level_citizens",
        "legal_level_foreigners",
        "legal_trend_citizens",
        "legal_trend_foreigners",
        "section_effect",
        "hazard_section",
    ):
        keys(name, SECTIONS)
    for name in (
        "category_effect",
        "seasonal_harmonics",
        "trend",
        "dispersion",
        "hazard_category",
        "return_probability",
        "citizenship",
        "border_zone_share",
        "to_russia_probability",
        "recorded_probability",
    ):
        keys(name, CATEGORIES)
    keys("checkpoint_type_weight", CHECKPOINT_TYPES)
    keys("wait_base_minutes", CHECKPOINT_TYPES)
    keys("wait_reference_load", CHECKPOINT_TYPES)
    keys("hazard_detector", DETECTORS)
    keys("register_completeness", REGISTERS)
    keys("register_probability", REGISTERS)
    keys("legal_entrant_register_probability", REGISTERS)
    keys("register_delay_days", REGISTERS)
    keys("policy_start", POLICY_EVENTS)
    for name in ("legal_seasonal", "wait_road_month_multiplier"):
        if len(getattr(c, name)) != 12:
            raise ValueError(f"SimulationConfig.{name}: needs 12 values, Jan..Dec")
    for cat in CATEGORIES:
        if cat != "bypasser" and (c.category_effect[cat] is None or c.trend[cat] is None):
            raise ValueError(f"SimulationConfig: category_effect and trend need a value for {cat}")
        if not (math.isfinite(c.dispersion[cat]) and c.dispersion[cat] > 0):
            raise ValueError(f"SimulationConfig.dispersion[{cat}] must be > 0")
        for name in ("citizenship", "recorded_probability"):
            dist = getattr(c, name)[cat]
            if abs(sum(dist.values()) - 1.0) > 1e-9:
                raise ValueError(f"SimulationConfig.{name}[{cat}] must sum to 1")
        if set(c.recorded_probability[cat]) != set(RECORDED):
            raise ValueError(
                f"SimulationConfig.recorded_probability[{cat}]: keys must be {RECORDED}"
            )
        if len(c.to_russia_probability[cat]) != 12:
            raise ValueError(f"SimulationConfig.to_russia_probability[{cat}]: needs 12 values")
        prob(f"return_probability[{cat}]", c.return_probability[cat])
        prob(f"border_zone_share[{cat}]", c.border_zone_share[cat])
        for reg in REGISTERS:
            for v in c.register_probability[reg][cat]:
                prob(f"register_probability[{reg}][{cat}]", v)
    for m in c.measures:
        if not isinstance(m, AppliedMeasure):
            raise ValueError(
                f"SimulationConfig.measures: each is an AppliedMeasure, got {type(m).__name__}"
            )
    names = [m.name for m in c.measures]
    if len(set(names)) != len(names):
        raise ValueError(f"SimulationConfig.measures: names must be unique, got {names}")
    check_in_period(c.measures, c.start_month, c.years)
    if c.register_dating not in ("delay", "stay"):
        raise ValueError(
            f"SimulationConfig.register_dating: 'delay' or 'stay', got {c.register_dating!r}"
        )
    prob("retry_probability", c.retry_probability)
    check_frailty_sd(c.apprehension_frailty_sd, "SimulationConfig.apprehension_frailty_sd")
    prob("residents_take_up", c.residents_take_up)
    if not (math.isfinite(c.legal_dispersion) and c.legal_dispersion > 0):
        raise ValueError(
            f"SimulationConfig.legal_dispersion: {c.legal_dispersion} is not a negative-binomial shape "
            "(finite and > 0)"
        )
    for name in (
        "customs_union_foreign_flow_effect",
        "customs_union_wait_effect",
        "joint_control_wait_effect",
        "customs_union_smuggler_effect",
    ):  # multipliers θ: 0 is a reduction of 100 %, below 0 would make a flow, wait or mean negative
        if not (math.isfinite(getattr(c, name)) and getattr(c, name) >= 0.0):
            raise ValueError(
                f"SimulationConfig.{name}: {getattr(c, name)} is not a multiplier (finite and ≥ 0: "
                "a reduction of more than 100 % would make the quantity negative)"
            )
    for reg in REGISTERS:
        prob(f"register_completeness[{reg}]", c.register_completeness[reg])
        prob(
            f"legal_entrant_register_probability[{reg}]", c.legal_entrant_register_probability[reg]
        )
