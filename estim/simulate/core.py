"""`simulate()`: run the generative process and assemble the record tables and the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from estim.paths import SECTIONS_CSV
from estim.records.schemas import (
    CATEGORIES,
    CHECKPOINT_TYPES,
    DETECTORS,
    DIRECTIONS,
    RECORDED,
    REGISTERS,
    SCHEMAS,
    SECTIONS,
)
from estim.simulate import process as P
from estim.simulate.config import DEFAULT_SEED, POLICY_EVENTS, SimulationConfig
from estim.simulate.frailty import FRAILTY_NODES, check_journeys_end
from estim.simulate.measured import simulate_measured, with_measure_truth


@dataclass
class Simulation:
    """One synthetic dataset: the records as they would be handed over, and the truth that made them."""

    seed: int
    config: SimulationConfig
    records: dict[str, pd.DataFrame]
    """Record type name -> table with exactly the schema's columns, values ready to write."""
    truth: xr.Dataset
    """Latent states (journeys, attempts, apprehensions, unobserved, …) and every parameter, named dims."""


def simulate(
    seed: int = DEFAULT_SEED, config: SimulationConfig | None = None, *, progress: bool = False
) -> Simulation:
    """Simulate every record type of the Russia–Kazakhstan border and its ground truth (SYNTHETIC).

    The process is written out as equations in docs/simulator.md. The same seed and config give the same
    records and truth, bit for bit. With `config.measures` the records and truth are those of the world with
    the measures, and the truth also holds the same seed's baseline without them (``baseline_*``), drawn
    under common random numbers (docs/simulator.md, Measures).
    """
    cfg = config if config is not None else SimulationConfig()
    tl = P.Timeline.make(cfg.start_month, cfg.years)
    sections_raw, sections = P.read_sections(SECTIONS_CSV)
    surveyed = [i for i, s in enumerate(SECTIONS) if sections.at[s, "surveyed"]]
    checkpoints = P.build_checkpoints(sections, sections_raw, cfg.citizens_only_checkpoints)
    in_force = {ev: tl.in_force(cfg.policy_start[ev]) for ev in POLICY_EVENTS}

    flows = P.simulate_flows(seed, cfg, tl, checkpoints, in_force)
    jr = P.simulate_journeys(seed, cfg, tl, sections, flows, in_force)
    check_journeys_end(jr.p, cfg.apprehension_frailty_sd, cfg.retry_probability, "SimulationConfig")
    agg = P.simulate_outcomes_aggregate(seed, cfg, jr)
    people = P.simulate_people(seed, cfg, tl, jr, surveyed, progress)
    ind = P.people_outcomes(people, jr.journeys.shape, surveyed)
    is_surveyed = np.isin(np.arange(len(SECTIONS)), surveyed)

    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Surveyed sections from the journey-level draws `a`, the others from the aggregate draws `b`."""
        return np.where(is_surveyed.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    out = P.Outcomes(
        apprehensions=pick(ind.apprehensions, agg.apprehensions),
        unobserved=pick(ind.unobserved, agg.unobserved),
        abandoned=pick(ind.abandoned, agg.abandoned),
        by_detector=pick(ind.by_detector, agg.by_detector),
    )
    regs = P.simulate_registers(seed, cfg, tl, people, surveyed)
    keys = P.person_keys(seed, regs.n_crossers + regs.legal_entrant_section.size)
    world = None
    if cfg.measures:
        # the records and truth are the world with the measures; the baseline drawn above stays in the truth
        world = simulate_measured(
            seed, cfg, tl, sections, flows, jr, agg, out, people, keys, in_force, surveyed, progress
        )
        flows, jr, out, people = world.flows, world.journeys, world.outcomes, world.people
        regs, keys = world.registers, world.keys

    records = {
        "sections": sections_raw,
        "checkpoints": checkpoints,
        "checkpoint_records": _checkpoint_records(checkpoints, tl, flows),
        "apprehensions": _apprehension_records(cfg, tl, people, keys),
        "apprehension_totals": _apprehension_totals(tl, out, surveyed),
        "registers": _register_records(regs, keys),
        "policy_events": P.policy_events_table(cfg),
    }
    for name, frame in records.items():
        assert tuple(frame.columns) == SCHEMAS[name].names, name
    truth = _truth(
        seed, cfg, tl, sections, checkpoints, flows, jr, out, people, regs, in_force, surveyed
    )
    if world is not None:
        truth = with_measure_truth(truth, cfg, world)
    return Simulation(seed=seed, config=cfg, records=records, truth=truth)


# ----------------------------------------------------------------------------------------------------------
# records


def _bool_text(x: np.ndarray) -> np.ndarray:
    return np.where(x, "true", "false").astype(object)


def _checkpoint_records(checkpoints: pd.DataFrame, tl: P.Timeline, f: P.Flows) -> pd.DataFrame:
    n_k, n_t = f.citizens.shape
    return pd.DataFrame(
        {
            "checkpoint_id": np.repeat(checkpoints["checkpoint_id"].to_numpy(), n_t),
            "month": np.tile(tl.months.astype(str), n_k),
            "crossings_citizens": f.citizens.ravel(),
            "crossings_foreigners": f.foreigners.ravel(),
            "refusals_of_entry": f.refusals.ravel(),
            "invalid_documents": f.invalid.ravel(),
            "mean_wait_minutes": f.wait.ravel(),
        }
    )


def _apprehension_records(
    cfg: SimulationConfig, tl: P.Timeline, pp: P.People, keys: np.ndarray
) -> pd.DataFrame:
    person = pp.journey_person[pp.app_journey]
    sec = pp.person_section[person]
    month = pp.journey_month[pp.app_journey]
    date = tl.months[month].astype("datetime64[D]") + (pp.app_day - 1).astype("timedelta64[D]")
    # Chronological, then by section, then in the order the process generated them (stable, seed-only).
    order = np.lexsort((np.arange(date.size), sec, date))
    person, sec, date = person[order], sec[order], date[order]
    journey = pp.app_journey[order]
    n = date.size
    return pd.DataFrame(
        {
            "apprehension_id": [f"AP{i:07d}" for i in range(1, n + 1)],
            "date": date.astype(str),
            "section_id": np.array(SECTIONS, dtype=object)[sec],
            "person_key": keys[person],
            "citizenship": pp.person_citizenship[person],
            "border_zone_resident": _bool_text(pp.person_border_zone[person]),
            "direction": np.where(
                pp.journey_to_russia[journey], DIRECTIONS[0], DIRECTIONS[1]
            ).astype(object),
            "recorded": np.array(RECORDED, dtype=object)[pp.app_recorded[order]],
            "detected_by": np.array(DETECTORS, dtype=object)[pp.app_detector[order]],
            "category": np.array(CATEGORIES, dtype=object)[pp.person_category[person]],
        }
    )


def _apprehension_totals(tl: P.Timeline, out: P.Outcomes, surveyed: list[int]) -> pd.DataFrame:
    others = [i for i in range(len(SECTIONS)) if i not in surveyed]
    sub = out.by_detector[others]  # (s, t, c, d)
    s, t, c, d = (a.ravel() for a in np.meshgrid(*(np.arange(n) for n in sub.shape), indexing="ij"))
    return pd.DataFrame(
        {
            "section_id": np.array(SECTIONS, dtype=object)[np.array(others, dtype=int)[s]]
            if others
            else [],
            "month": tl.months.astype(str)[t],
            "category": np.array(CATEGORIES, dtype=object)[c],
            "detected_by": np.array(DETECTORS, dtype=object)[d],
            "apprehensions": sub.ravel(),
        }
    )


def _register_records(r: P.Registers, keys: np.ndarray) -> pd.DataFrame:
    order = np.lexsort((r.person, r.register, r.date))
    n = order.size
    return pd.DataFrame(
        {
            "entry_id": [f"RE{i:07d}" for i in range(1, n + 1)],
            "register": np.array(REGISTERS, dtype=object)[r.register[order]],
            "person_key": keys[r.person[order]],
            "date": r.date[order].astype(str),
            "section_id": np.array(SECTIONS, dtype=object)[r.section[order]],
        }
    )


# ----------------------------------------------------------------------------------------------------------
# truth


def _i32(a: object) -> np.ndarray:
    return np.asarray(a).astype(np.int32)


def _vector(d: dict, keys: tuple[str, ...] | list[str]) -> np.ndarray:
    """Values of `d` in the order of `keys` as floats; None (parameter not used) becomes NaN."""
    return np.array([np.nan if d[k] is None else d[k] for k in keys], dtype=float)


def _truth(
    seed: int,
    cfg: SimulationConfig,
    tl: P.Timeline,
    sections: pd.DataFrame,
    checkpoints: pd.DataFrame,
    f: P.Flows,
    jr: P.Journeys,
    out: P.Outcomes,
    pp: P.People,
    regs: P.Registers,
    in_force: dict[str, np.ndarray],
    surveyed: list[int],
) -> xr.Dataset:
    """Latent states and every parameter, with named dims. Counts int32 and no bools (netCDF3)."""
    stc, st = ("section", "month", "category"), ("section", "month")
    i32, nan_if_none = _i32, _vector
    surveyed_ids = [SECTIONS[i] for i in surveyed]
    citizenships = sorted({code for c in CATEGORIES for code in cfg.citizenship[c]})

    n_sv, n_c = len(surveyed), len(CATEGORIES)
    persons = np.zeros((n_sv, n_c), dtype=np.int64)
    persons_app = np.zeros((n_sv, n_c), dtype=np.int64)
    apprehended = (
        np.bincount(pp.journey_person, pp.journey_apprehensions, pp.person_section.size) > 0
    )
    pos = {s: i for i, s in enumerate(surveyed)}
    for sec_i, cat_i, a in zip(pp.person_section, pp.person_category, apprehended, strict=True):
        persons[pos[sec_i], cat_i] += 1
        persons_app[pos[sec_i], cat_i] += int(a)
    legal = np.array([(regs.legal_entrant_section == s).sum() for s in surveyed])

    data = {
        # latent states
        "journeys": (
            stc,
            i32(jr.journeys),
            "illegal-crossing journeys J (one intention to cross in the month)",
        ),
        "attempts": (
            stc,
            i32(out.apprehensions + out.unobserved),
            "attempts = apprehensions + unobserved",
        ),
        "apprehensions": (stc, i32(out.apprehensions), "apprehensions K between checkpoints"),
        "unobserved": (stc, i32(out.unobserved), "successful undetected crossings"),
        "abandoned": (
            stc,
            i32(out.abandoned),
            "journeys given up after an apprehension (0 when r = 1)",
        ),
        "apprehensions_by_detector": (
            (*stc, "detector"),
            i32(out.by_detector),
            "apprehensions by detector",
        ),
        "expected_journeys": (stc, jr.expected, "μ: mean of the negative-binomial journeys"),
        "apprehension_probability": (
            stc,
            jr.p,
            "p = 1 − exp(−Σ_d h): per-attempt apprehension probability",
        ),
        "detection_hazard": ((*stc, "detector"), jr.hazard, "h: detection hazard per attempt"),
        "bypass_share": (
            st,
            jr.bypass_share,
            "share of land foreign crossings that bypass a checkpoint",
        ),
        "land_mean_wait": (
            st,
            f.land_wait,
            "w: foreign-crossing-weighted mean wait at land checkpoints",
            "minutes",
        ),
        "land_foreign_crossings": (
            st,
            i32(f.land_foreigners),
            "F: legal foreign crossings at land checkpoints",
        ),
        "policy_in_force": (
            ("event", "month"),
            np.stack([in_force[e] for e in POLICY_EVENTS]),
            "I_e(t): share of the month in force",
        ),
        "persons": (
            ("surveyed_section", "category"),
            i32(persons),
            "people with at least one journey",
        ),
        "persons_apprehended": (
            ("surveyed_section", "category"),
            i32(persons_app),
            "people apprehended at least once",
        ),
        "legal_entrants_on_registers": (
            ("surveyed_section",),
            i32(legal),
            "legal entrants on at least one register",
        ),
        "expected_crossings_citizens": (
            ("checkpoint", "month"),
            f.expected_citizens,
            "mean legal crossings, citizens",
        ),
        "expected_crossings_foreigners": (
            ("checkpoint", "month"),
            f.expected_foreigners,
            "mean legal crossings, foreigners",
        ),
        # section properties
        "length_km": (("section",), sections["length_km"].to_numpy(), "section length", "km"),
        "border_population": (
            ("section",),
            i32(sections["border_population"]),
            "near-border population",
        ),
        # journeys
        "section_effect": (("section",), nan_if_none(cfg.section_effect, SECTIONS), "α_s"),
        "category_effect": (
            ("category",),
            nan_if_none(cfg.category_effect, CATEGORIES),
            "β_c (NaN: bypassers, not used)",
        ),
        "seasonal_effect": (("category", "month_of_year"), P.seasonal_effect(cfg), "S_c(m)"),
        "trend": (("category",), nan_if_none(cfg.trend, CATEGORIES), "τ_c per year"),
        "dispersion": (
            ("category",),
            nan_if_none(cfg.dispersion, CATEGORIES),
            "φ_c, negative-binomial shape",
        ),
        "population_elasticity": ((), cfg.population_elasticity, "γ"),
        "policy_effect_journeys": (
            ("event", "category"),
            P.journey_policy_effects(cfg),
            "θ_{e,c}: multiplier of journeys",
        ),
        "bypass_eta0": ((), cfg.bypass_eta0, "η0: logit bypass share at a 60-minute wait"),
        "bypass_eta1": (
            (),
            cfg.bypass_eta1,
            "η1: slope of logit bypass share in log(wait / 60 min)",
        ),
        # apprehension
        "hazard_section": (("section",), nan_if_none(cfg.hazard_section, SECTIONS), "a_s"),
        "hazard_category": (("category",), nan_if_none(cfg.hazard_category, CATEGORIES), "b_c"),
        "hazard_detector": (("detector",), nan_if_none(cfg.hazard_detector, DETECTORS), "e_d"),
        "technical_trend": ((), cfg.technical_trend, "δ per year"),
        "retry_probability": ((), cfg.retry_probability, "r"),
        "apprehension_frailty_sd": (
            (),
            cfg.apprehension_frailty_sd,
            f"σ: person frailty, hazards × Z, log Z ~ N(−σ²/2, σ²) on {FRAILTY_NODES} Gauss–Hermite nodes (0: none)",
        ),
        # individuals
        "return_probability": (
            ("category",),
            nan_if_none(cfg.return_probability, CATEGORIES),
            "ρ_c",
        ),
        "return_window_months": ((), np.int32(cfg.return_window_months), "returning-person window"),
        "citizenship_probability": (
            ("category", "citizenship"),
            np.array(
                [[cfg.citizenship[c].get(code, 0.0) for code in citizenships] for c in CATEGORIES]
            ),
            "citizenship distribution",
        ),
        "border_zone_share": (
            ("category",),
            nan_if_none(cfg.border_zone_share, CATEGORIES),
            "border-zone residents",
        ),
        "to_russia_probability": (
            ("category", "month_of_year"),
            np.array([cfg.to_russia_probability[c] for c in CATEGORIES], dtype=float),
            "P(direction = to_russia)",
        ),
        "recorded_probability": (
            ("category", "recorded"),
            np.array([[cfg.recorded_probability[c][r] for r in RECORDED] for c in CATEGORIES]),
            "what is recorded at an apprehension",
        ),
        # legal flows and waits
        "legal_level_citizens": (
            ("section",),
            nan_if_none(cfg.legal_level_citizens, SECTIONS),
            "L^cit_s per month",
        ),
        "legal_level_foreigners": (
            ("section",),
            nan_if_none(cfg.legal_level_foreigners, SECTIONS),
            "L^for_s per month",
        ),
        "legal_trend_citizens": (
            ("section",),
            nan_if_none(cfg.legal_trend_citizens, SECTIONS),
            "τ^cit_s per year",
        ),
        "legal_trend_foreigners": (
            ("section",),
            nan_if_none(cfg.legal_trend_foreigners, SECTIONS),
            "τ^for_s per year",
        ),
        "legal_seasonal": (("month_of_year",), f.seasonal, "λ_m (centred)"),
        "legal_dispersion": ((), cfg.legal_dispersion, "φ^L"),
        "checkpoint_type_weight": (
            ("checkpoint_type",),
            nan_if_none(cfg.checkpoint_type_weight, CHECKPOINT_TYPES),
            "ω_type",
        ),
        "checkpoint_effect_sd": ((), cfg.checkpoint_effect_sd, "σ_k"),
        "checkpoint_effect": (
            ("checkpoint",),
            f.checkpoint_effect,
            "u_k: log size of the checkpoint",
        ),
        "checkpoint_share_citizens": (
            ("checkpoint",),
            f.share_citizens,
            "checkpoint's share of its section's citizens",
        ),
        "checkpoint_share_foreigners": (
            ("checkpoint",),
            f.share_foreigners,
            "checkpoint's share of its section's foreigners",
        ),
        "policy_effect_foreign_flow": (
            ("event",),
            np.array(
                [
                    cfg.customs_union_foreign_flow_effect if e == "customs_union" else 1.0
                    for e in POLICY_EVENTS
                ]
            ),
            "θ^for_e: multiplier of foreigners' legal crossings",
        ),
        "refusal_log_rate": (
            ("coefficient",),
            np.array(cfg.refusal_log_rate, dtype=float),
            "(ψ0, ψ1)",
        ),
        "invalid_document_log_rate": (
            ("coefficient",),
            np.array(cfg.invalid_document_log_rate, dtype=float),
            "(χ0, χ1)",
        ),
        "wait_base_minutes": (
            ("checkpoint_type",),
            nan_if_none(cfg.wait_base_minutes, CHECKPOINT_TYPES),
            "ω^W_type",
            "minutes",
        ),
        "wait_reference_load": (
            ("checkpoint_type",),
            nan_if_none(cfg.wait_reference_load, CHECKPOINT_TYPES),
            "C_type",
        ),
        "wait_load_elasticity": ((), cfg.wait_load_elasticity, "κ"),
        "wait_road_month_multiplier": (
            ("month_of_year",),
            np.array(cfg.wait_road_month_multiplier, dtype=float),
            "ν_m",
        ),
        "wait_noise_sd": ((), cfg.wait_noise_sd, "σ_W"),
        "policy_effect_wait": (
            ("event",),
            np.array(
                [
                    {
                        "customs_union": cfg.customs_union_wait_effect,
                        "joint_checkpoint_control": cfg.joint_control_wait_effect,
                    }.get(e, 1.0)
                    for e in POLICY_EVENTS
                ]
            ),
            "θ^W_e: multiplier of land-checkpoint waits",
        ),
        # registers
        "register_completeness": (
            ("register",),
            nan_if_none(cfg.register_completeness, REGISTERS),
            "λ_list",
        ),
        "register_probability": (
            ("register", "category", "apprehended"),
            np.array(
                [[cfg.register_probability[r][c] for c in CATEGORIES] for r in REGISTERS],
                dtype=float,
            ),
            "π[list][c][apprehended]",
        ),
        "legal_entrants_per_year": (
            (),
            cfg.legal_entrants_per_year,
            "mean legal entrants per surveyed section and year",
        ),
        "legal_entrant_register_probability": (
            ("register",),
            nan_if_none(cfg.legal_entrant_register_probability, REGISTERS),
            "π^legal[list]",
        ),
        "register_delay_days": (
            ("register",),
            i32([cfg.register_delay_days[r] for r in REGISTERS]),
            "maximum delay",
        ),
    }
    variables = {}
    for name, spec in data.items():
        dims, values, desc = spec[:3]
        attrs = {"description": desc}
        if len(spec) > 3:
            attrs["units"] = spec[3]
        variables[name] = xr.Variable(dims, values, attrs=attrs)
    coords = {
        "section": list(SECTIONS),
        "month": tl.months.astype("datetime64[ns]"),
        "category": list(CATEGORIES),
        "detector": list(DETECTORS),
        "event": list(POLICY_EVENTS),
        "event_start": ("event", [cfg.policy_start[e] for e in POLICY_EVENTS]),
        "surveyed_section": surveyed_ids,
        "checkpoint": checkpoints["checkpoint_id"].tolist(),
        "checkpoint_section": ("checkpoint", checkpoints["section_id"].tolist()),
        "checkpoint_kind": ("checkpoint", checkpoints["type"].tolist()),
        "checkpoint_type": list(CHECKPOINT_TYPES),
        "month_of_year": np.arange(1, 13, dtype=np.int32),
        "register": list(REGISTERS),
        "recorded": list(RECORDED),
        "citizenship": citizenships,
        "apprehended": ["never_apprehended", "apprehended"],
        "coefficient": ["intercept", "trend_per_year"],
    }
    return xr.Dataset(
        variables,
        coords=coords,
        attrs={
            "title": "Ground truth of the SYNTHETIC Russia-Kazakhstan border dataset (estim simulate)",
            "synthetic": "true",
            "seed": np.int32(seed) if seed < 2**31 else str(seed),
            "config": cfg.to_json(),
            "equations": "docs/simulator.md",
        },
    )
