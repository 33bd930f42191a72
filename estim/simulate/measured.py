"""The world with measures: its parameters, its coupled draws, its people, keys and truth.

`simulate_measured` changes the parameters as `estim.simulate.measures` says (waits, μ with displacement,
hazards), draws the counts and outcomes coupled to the baseline (`estim.simulate.coupling`), redraws the
surveyed sections' people from the baseline's streams (`estim.simulate.individuals.Replay`) and their
registers, and keeps the baseline's person keys for the same people. `with_measure_truth` adds the baseline
counts and the measures to the truth.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from estim.records.schemas import DETECTORS
from estim.simulate.config import SimulationConfig
from estim.simulate.coupling import (
    Attempts,
    Cells,
    concat,
    couple_journeys,
    keep_probability,
    rebuild,
    subset,
    sum_cells,
    top_up,
)
from estim.simulate.crossings import (
    Flows,
    Journeys,
    Outcomes,
    dispersion,
    expected_journeys,
    flows_with_waits,
    p_of,
)
from estim.simulate.frailty import check_journeys_end, frailty_law, frailty_p
from estim.simulate.individuals import (
    People,
    Persons,
    Registers,
    Replay,
    assign_people,
    people_outcomes,
    simulate_registers,
)
from estim.simulate.measures import Multipliers, displaced_journeys, multipliers, strength
from estim.simulate.setting import Timeline, rng_for

GUARDS = np.array([d in ("patrol", "technical") for d in DETECTORS])
"""The detectors a guard_hazard effect scales; informant_hazard scales the others."""


@dataclass
class Measured:
    """The world with measures, and the baseline counts it is coupled to."""

    flows: Flows
    journeys: Journeys
    outcomes: Outcomes
    people: People
    registers: Registers
    keys: np.ndarray
    baseline_journeys: Journeys
    baseline_outcomes: Outcomes


# ----------------------------------------------------------------------------------------------------------
# the world with measures


def measured_hazards(hazard: np.ndarray, mult: Multipliers) -> np.ndarray:
    """h under the measures: patrol and technical × the guard_hazard multipliers, informant × the
    informant_hazard ones (section, month, category, detector)."""
    factor = np.where(GUARDS, mult.guard_hazard[..., None], mult.informant_hazard[..., None])
    return hazard * factor


def simulate_measured(
    seed: int,
    cfg: SimulationConfig,
    tl: Timeline,
    sections: pd.DataFrame,
    flows: Flows,
    jr: Journeys,
    agg: Outcomes,
    out: Outcomes,
    people: People,
    keys: np.ndarray,
    in_force: dict[str, np.ndarray],
    surveyed: list[int],
    progress: bool,
) -> Measured:
    """The world with `cfg.measures`, coupled to the baseline (`flows` … `keys`, drawn without them)."""
    mult = multipliers(cfg.measures, tl.months)
    flows_m = flows_with_waits(flows, mult.wait)
    mu0, share = expected_journeys(cfg, tl, sections, flows_m, in_force)
    mu_m = displaced_journeys(mu0, mult)
    h_m = measured_hazards(jr.hazard, mult)
    p_m = p_of(h_m)
    z, w = frailty_law(cfg.apprehension_frailty_sd)
    check_journeys_end(
        p_m,
        cfg.apprehension_frailty_sd,
        cfg.retry_probability,
        f"measures {', '.join(m.name for m in cfg.measures)} (lower the multiplier)",
    )
    shape = jr.journeys.shape
    n_s, n_t, n_c = shape
    flat_cell = np.arange(n_s * n_t * n_c)
    share_b = (jr.hazard / jr.hazard.sum(axis=-1, keepdims=True)).reshape(-1, len(DETECTORS))
    share_m = (h_m / h_m.sum(axis=-1, keepdims=True)).reshape(-1, len(DETECTORS))
    changed = ((mu_m != jr.expected) | (h_m != jr.hazard).any(axis=-1)).ravel()
    extra = top_up(
        rng_for(seed, "measure_journeys"),
        jr.journeys,
        jr.expected,
        mu_m,
        dispersion(cfg),
    ).ravel()
    cells = Cells(
        p_b=frailty_p(jr.p, z).reshape(-1, z.size),
        p_m=frailty_p(p_m, z).reshape(-1, z.size),
        share_b=share_b,
        share_m=share_m,
        keep=keep_probability(jr.expected, mu_m).ravel(),
        extra=np.where(changed, extra, 0),
        month=(flat_cell // n_c) % n_t,
        category=flat_cell % n_c,
        frailty_w=w,
    )
    section = flat_cell // (n_t * n_c)
    in_surveyed = np.isin(section, surveyed)
    size = flat_cell.size
    J_flat = jr.journeys.ravel()
    rng = rng_for(seed, "measure_attempts")

    # surveyed sections: the journeys of changed cells, coupled; the others copied
    js = people.person_section[people.journey_person]
    jc = people.person_category[people.journey_person]
    jcell = (js * n_t + people.journey_month) * n_c + jc
    base_all = Attempts(
        cell=jcell,
        K=people.journey_apprehensions,
        success=people.journey_success,
        app_journey=people.app_journey,
        app_detector=people.app_detector,
        to_russia=people.journey_to_russia,
        first_day=people.journey_day,
        app_day=people.app_day,
        app_recorded=people.app_recorded,
        node=people.person_frailty[people.journey_person],
    )
    coupled_cell = changed
    if z.size > 1:
        # A frailty belongs to a person. From the first month a section and category's parameters change, its
        # people may differ from the baseline's, and a journey's frailty with them: those months' journeys
        # are coupled under their new person's node rather than copied (unchanged ones come out the same
        # where the person is the same).
        started = np.logical_or.accumulate(changed.reshape(shape), axis=1).ravel()
        coupled_cell = changed | (started & in_surveyed)
    sel = coupled_cell[jcell]
    base_sv = subset(base_all, sel)
    sv_ids = np.flatnonzero(coupled_cell & in_surveyed)
    # which journeys are kept, then the people who make the world's journeys, then their outcomes (under
    # each person's frailty node)
    keep_sv = rng.random(base_sv.cell.size) < cells.keep[base_sv.cell]
    extra_sv = np.repeat(sv_ids, cells.extra[sv_ids])
    J_sv = np.where(
        coupled_cell,
        np.bincount(base_sv.cell[keep_sv], minlength=size) + np.bincount(extra_sv, minlength=size),
        J_flat,
    ).reshape(shape)
    persons = _measured_persons(seed, cfg, tl, people, J_sv, jr, surveyed, progress)
    order = _journey_order(base_all.cell, sel, np.flatnonzero(keep_sv), extra_sv, shape)
    node = np.empty(order.size, np.int64)
    node[order] = persons.frailty[persons.journey_person]
    n_copied, n_kept = int((~sel).sum()), int(keep_sv.sum())
    kept_node = np.zeros(base_sv.cell.size, np.int64)
    kept_node[keep_sv] = node[n_copied : n_copied + n_kept]
    coupled_sv, _ = couple_journeys(
        rng,
        base_sv,
        cells,
        sv_ids,
        cfg,
        tl,
        keep=keep_sv,
        kept_node=kept_node,
        extra_node=node[n_copied + n_kept :],
    )

    # the other sections: rebuild the changed cells' journeys from their totals per frailty node, couple,
    # sum up
    ag_ids = np.flatnonzero(changed & ~in_surveyed)
    assert agg.by_node is not None
    units = (ag_ids[:, None] * z.size + np.arange(z.size)).ravel()
    rebuilt = rebuild(
        rng,
        units,
        agg.by_node.journeys.ravel(),
        agg.by_node.unobserved.ravel(),
        agg.by_node.apprehensions.ravel(),
        agg.by_node.by_detector.reshape(-1, len(DETECTORS)),
    )
    rebuilt = dataclasses.replace(rebuilt, cell=rebuilt.cell // z.size, node=rebuilt.cell % z.size)
    coupled_ag, _ = couple_journeys(rng, rebuilt, cells, ag_ids, cfg, tl)

    J_m = np.where(
        changed,
        np.bincount(coupled_sv.cell, minlength=size) + np.bincount(coupled_ag.cell, minlength=size),
        J_flat,
    ).reshape(shape)
    people_m = _measured_people(persons, base_all, sel, coupled_sv, order, shape)
    ind = people_outcomes(people_m, shape, surveyed)
    ag = sum_cells(coupled_ag, size)
    K_m = np.where(changed, ag[0], agg.apprehensions.ravel()).reshape(shape)
    S_m = np.where(changed, ag[1], agg.unobserved.ravel()).reshape(shape)
    D_m = np.where(changed[:, None], ag[2], agg.by_detector.reshape(-1, len(DETECTORS))).reshape(
        agg.by_detector.shape
    )
    is_sv = np.isin(np.arange(n_s), surveyed)

    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(is_sv.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    out_m = Outcomes(
        apprehensions=pick(ind.apprehensions, K_m),
        unobserved=pick(ind.unobserved, S_m),
        abandoned=pick(ind.abandoned, J_m - S_m),
        by_detector=pick(ind.by_detector, D_m),
    )
    regs_m = simulate_registers(seed, cfg, tl, people_m, surveyed)
    keys_m = measured_keys(seed, keys, people, people_m, regs_m)
    jr_m = Journeys(expected=mu_m, journeys=J_m, bypass_share=share, hazard=h_m, p=p_m)
    return Measured(flows_m, jr_m, out_m, people_m, regs_m, keys_m, jr, out)


def _measured_persons(
    seed: int,
    cfg: SimulationConfig,
    tl: Timeline,
    people: People,
    J_m: np.ndarray,
    jr: Journeys,
    surveyed: list[int],
    progress: bool,
) -> Persons:
    """The surveyed sections' people under the measures: replayed from the baseline until their section and
    category's journeys `J_m` first differ from the baseline's, then drawn on their own."""
    n_t, n_c = J_m.shape[1:]
    first_change = {}
    for s in surveyed:
        for c in range(n_c):
            diff = np.flatnonzero(J_m[s, :, c] != jr.journeys[s, :, c])
            first_change[(s, c)] = int(diff[0]) if diff.size else n_t
    replay = Replay(people.marks, first_change, rng_for(seed, "measure_individuals"))
    return assign_people(
        rng_for(seed, "individuals"), cfg, tl, J_m, surveyed, progress, replay=replay
    )


def _journey_order(
    cell: np.ndarray,
    sel: np.ndarray,
    kept: np.ndarray,
    extra_cell: np.ndarray,
    shape: tuple[int, ...],
) -> np.ndarray:
    """The world's surveyed journeys — the copied ones (``~sel``), the kept coupled ones (`kept` of ``sel``)
    and the added ones, in that order — sorted into the people's order: (section, category, month), within a
    cell the baseline's journeys in their order and then the added ones."""
    n_t, n_c = shape[1:]
    world = np.r_[cell[~sel], cell[sel][kept], extra_cell]
    position = np.r_[
        np.flatnonzero(~sel), np.flatnonzero(sel)[kept], sel.size + np.arange(extra_cell.size)
    ]
    s_, t_, c_ = world // (n_t * n_c), (world // n_c) % n_t, world % n_c
    return np.lexsort((position, t_, c_, s_))


def _measured_people(
    persons: Persons,
    base_all: Attempts,
    sel: np.ndarray,
    coupled: Attempts,
    order: np.ndarray,
    shape: tuple[int, ...],
) -> People:
    """The surveyed sections' people under the measures, each journey paired with its (copied or coupled)
    outcome; `order` (`_journey_order`) puts the outcomes in the people's order."""
    n_t, n_c = shape[1:]
    copied = subset(base_all, ~sel)
    both = concat(copied, coupled)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    row_order = np.argsort(rank[both.app_journey], kind="stable")
    assert both.to_russia is not None and both.first_day is not None
    assert both.app_day is not None and both.app_recorded is not None
    month = persons.journey_month
    cell = (persons.section[persons.journey_person] * n_t + month) * n_c + persons.category[
        persons.journey_person
    ]
    assert np.array_equal(cell, both.cell[order]), "people and outcomes out of step"
    assert both.node is not None
    assert np.array_equal(persons.frailty[persons.journey_person], both.node[order]), (
        "journeys and their people's frailty out of step"
    )
    return People(
        person_section=persons.section,
        person_category=persons.category,
        person_citizenship=persons.citizenship,
        person_border_zone=persons.border_zone,
        person_frailty=persons.frailty,
        journey_person=persons.journey_person,
        journey_month=month,
        journey_day=both.first_day[order],
        journey_apprehensions=both.K[order],
        journey_success=both.success[order],
        journey_to_russia=both.to_russia[order],
        app_journey=rank[both.app_journey][row_order],
        app_day=both.app_day[row_order],
        app_detector=both.app_detector[row_order],
        app_recorded=both.app_recorded[row_order],
        base_person=persons.base_person,
        marks=persons.marks,
    )


def measured_keys(
    seed: int, keys: np.ndarray, people: People, people_m: People, regs_m: Registers
) -> np.ndarray:
    """Person keys of the world with measures: a person the baseline also has keeps its key, the k-th legal
    entrant on a register takes the baseline's k-th one's; everyone else gets a new key, distinct from all."""
    n_cross, n_base_cross = people_m.person_section.size, people.person_section.size
    n_legal, n_base_legal = regs_m.legal_entrant_section.size, keys.size - n_base_cross
    out = np.full(n_cross + n_legal, None, dtype=object)
    assert people_m.base_person is not None
    shared = people_m.base_person >= 0
    out[:n_cross][shared] = keys[people_m.base_person[shared]]
    reuse = min(n_legal, n_base_legal)
    out[n_cross : n_cross + reuse] = keys[n_base_cross : n_base_cross + reuse]
    missing = np.flatnonzero([k is None for k in out])
    used = set(keys.tolist())
    rng = rng_for(seed, "measure_keys")
    fresh: list[str] = []
    while len(fresh) < missing.size:
        for v in rng.integers(0, 10**10, size=missing.size - len(fresh)):
            key = f"PK{v:010d}"
            if key not in used:
                used.add(key)
                fresh.append(key)
    out[missing] = np.array(fresh, dtype=object)
    return out


# ----------------------------------------------------------------------------------------------------------
# truth


def with_measure_truth(truth: xr.Dataset, cfg: SimulationConfig, world: Measured) -> xr.Dataset:
    """The truth of the world with measures plus the baseline's counts (same dims) and the measures."""
    stc = ("section", "month", "category")
    jr, out = world.baseline_journeys, world.baseline_outcomes
    base = {
        "baseline_journeys": (jr.journeys, "journeys without the measures (common random numbers)"),
        "baseline_apprehensions": (out.apprehensions, "apprehensions without the measures"),
        "baseline_unobserved": (out.unobserved, "unobserved crossings without the measures"),
        "baseline_attempts": (out.apprehensions + out.unobserved, "attempts without the measures"),
    }
    months = truth["month"].values.astype("datetime64[M]")
    variables = {
        name: xr.Variable(stc, np.asarray(v).astype(np.int32), attrs={"description": d})
        for name, (v, d) in base.items()
    }
    variables["baseline_expected_journeys"] = xr.Variable(
        stc, jr.expected, attrs={"description": "μ without the measures"}
    )
    variables["measure_strength"] = xr.Variable(
        ("measure", "month"),
        np.stack([strength(m, months) for m in cfg.measures]),
        attrs={"description": "r(t): the share of its full strength a measure has in the month"},
    )
    described = [
        {
            "name": m.name,
            "start_month": m.start_month,
            "lag_months": m.lag_months,
            "ramp_months": m.ramp_months,
            "sections": list(m.sections),
            "displacement": m.displacement,
            "effects": [
                {"target": e.target, "multiplier": e.multiplier, "categories": list(e.categories)}
                for e in m.effects
            ],
        }
        for m in cfg.measures
    ]
    return (
        truth.assign(variables)
        .assign_coords(measure=[m.name for m in cfg.measures])
        .assign_attrs(
            measures=json.dumps(described, separators=(",", ":")),
            measures_note="records and the unprefixed variables are the world with the measures; baseline_* "
            "the same seed without them (docs/simulator.md, Measures)",
        )
    )
