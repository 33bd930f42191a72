"""Steps 4–5 of the generative process: the people of the surveyed sections, their apprehensions, registers.

Also the raw person keys that name them in the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from estim.records.schemas import (
    CATEGORIES,
    DETECTORS,
    IN_COUNTRY_REGISTERS,
    RECORDED,
    REGISTERS,
)
from estim.simulate.config import SimulationConfig
from estim.simulate.crossings import Journeys, Outcomes
from estim.simulate.frailty import frailty_law, frailty_p
from estim.simulate.setting import Timeline, rng_for

# ----------------------------------------------------------------------------------------------------------
# step 4: individuals in the surveyed sections


@dataclass
class People:
    """Persons and journeys of the surveyed sections, and one row per apprehension."""

    person_section: np.ndarray  # section index
    person_category: np.ndarray  # category index
    person_citizenship: np.ndarray  # str
    person_border_zone: np.ndarray  # bool
    # frailty node: an index into `frailty_law`'s values (0 without frailty)
    person_frailty: np.ndarray
    journey_person: np.ndarray
    journey_month: np.ndarray  # month index
    journey_day: np.ndarray  # day of the first attempt
    journey_apprehensions: np.ndarray
    journey_success: np.ndarray  # bool
    journey_to_russia: np.ndarray  # bool
    app_journey: np.ndarray  # journey index of each apprehension
    app_day: np.ndarray
    app_detector: np.ndarray  # detector index
    app_recorded: np.ndarray  # recorded index
    # with measures: the same person's index in the baseline, or -1 for a person the baseline lacks
    base_person: np.ndarray | None = None
    # (section, category) -> (state of the individuals stream, people made so far) when its draws begin
    marks: dict = field(default_factory=dict)


@dataclass
class Persons:
    """The people behind the surveyed sections' journeys, journeys in the order (section, category, month)."""

    section: np.ndarray
    category: np.ndarray
    citizenship: np.ndarray
    border_zone: np.ndarray
    frailty: np.ndarray  # frailty node
    journey_person: np.ndarray
    journey_month: np.ndarray
    base_person: np.ndarray
    marks: dict


@dataclass
class Replay:
    """How to draw the people of a world with measures from the baseline's draws.

    Each (section, category) starts from the baseline's stream state (``marks``) and repeats its draws up to
    the first month whose journeys differ (``first_change``); from there on it draws from ``after``.
    """

    marks: dict
    first_change: dict
    after: np.random.Generator


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of `probs` (rows sum to 1) by inverting the cumulative distribution."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1])[..., None]
    return np.minimum((u >= cum).sum(axis=-1), probs.shape[-1] - 1)


def simulate_people(
    seed: int,
    cfg: SimulationConfig,
    tl: Timeline,
    jr: Journeys,
    surveyed: list[int],
    progress: bool,
) -> People:
    """The persons behind the journeys of the surveyed sections and their apprehensions, attempt by attempt.

    A journey is made by a returning person with probability ρ_c — drawn uniformly, without replacement, from
    the people of the same section and category whose last journey was in the previous `return_window_months`
    months — else by a new person; so a person has at most one journey a month. A new person draws their
    frailty node once (`frailty_law`), and each of their journeys is drawn with its p.
    """
    persons = assign_people(rng_for(seed, "individuals"), cfg, tl, jr.journeys, surveyed, progress)
    return _attempts(rng_for(seed, "records"), cfg, tl, jr, persons)


def assign_people(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    tl: Timeline,
    journeys: np.ndarray,
    surveyed: list[int],
    progress: bool,
    replay: Replay | None = None,
) -> Persons:
    """Who makes each journey of the surveyed sections (`simulate_people`); with `replay`, a world with
    measures that repeats the baseline's draws until its journeys differ, then draws on its own."""
    per_sec, per_cat, citz, bzr, frail, base = [], [], [], [], [], []
    _, frailty_w = frailty_law(cfg.apprehension_frailty_sd)
    j_person, j_month = [], []
    marks = {}
    n_people = 0
    steps = [(s, c) for s in surveyed for c in range(len(CATEGORIES))]
    bar = tqdm(
        total=len(steps) * tl.months.size,
        desc="simulating people",
        disable=not progress,
        leave=False,
    )
    for s, c in steps:
        cat = CATEGORIES[c]
        codes = np.array(list(cfg.citizenship[cat]))
        cprobs = np.array(list(cfg.citizenship[cat].values()))
        ids = np.empty(0, dtype=np.int64)  # people of this section and category
        last = np.empty(0, dtype=np.int64)  # month index of their last journey
        if replay is None:
            marks[(s, c)] = (rng.bit_generator.state, n_people)
            base_start, change = n_people, tl.months.size
        else:
            state, base_start = replay.marks[(s, c)]
            rng.bit_generator.state = state
            change = replay.first_change[(s, c)]
        made = 0  # people made in this (section, category) before its journeys change
        for t in range(tl.months.size):
            n = int(journeys[s, t, c])
            bar.update(1)
            if n == 0:
                continue
            g = rng if t < change else replay.after  # type: ignore[union-attr]
            want = int(g.binomial(n, cfg.return_probability[cat]))
            eligible = np.flatnonzero(last >= t - cfg.return_window_months)
            m = min(want, eligible.size)
            chosen = g.choice(eligible, size=m, replace=False) if m else np.empty(0, dtype=np.int64)
            new = n - m
            new_ids = np.arange(n_people, n_people + new)
            n_people += new
            per_sec.append(np.full(new, s))
            per_cat.append(np.full(new, c))
            citz.append(codes[_categorical(g, np.broadcast_to(cprobs, (new, cprobs.size)))])
            bzr.append(g.random(new) < cfg.border_zone_share[cat])
            # drawn only with a frailty, so that a simulation without one keeps its draws
            frail.append(
                _categorical(g, np.broadcast_to(frailty_w, (new, frailty_w.size)))
                if frailty_w.size > 1
                else np.zeros(new, dtype=np.int64)
            )
            if t < change:
                base.append(base_start + made + np.arange(new))
                made += new
            else:
                base.append(np.full(new, -1))
            last[chosen] = t
            ids = np.concatenate([ids, new_ids])
            last = np.concatenate([last, np.full(new, t)])
            j_person.append(np.concatenate([ids[chosen], new_ids]))
            j_month.append(np.full(n, t))
    bar.close()
    return Persons(
        section=_cat(per_sec, np.int64),
        category=_cat(per_cat, np.int64),
        citizenship=_cat(citz, object),
        border_zone=_cat(bzr, bool),
        frailty=_cat(frail, np.int64),
        journey_person=_cat(j_person, np.int64),
        journey_month=_cat(j_month, np.int64),
        base_person=_cat(base, np.int64),
        marks=marks if replay is None else replay.marks,
    )


def _cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
    return np.concatenate(xs).astype(dt) if xs else np.empty(0, dtype=dt)


def _attempts(
    rec: np.random.Generator, cfg: SimulationConfig, tl: Timeline, jr: Journeys, persons: Persons
) -> People:
    """Each journey's attempts within its month, and one row per apprehension."""
    journey_person, journey_month = persons.journey_person, persons.journey_month
    js, jc = persons.section[journey_person], persons.category[journey_person]

    # Attempts within the journey's month (see simulate_outcomes_aggregate for the same law in aggregate), with
    # the p of the person's frailty node: p_i = 1 − exp(−H Z_i), H = −log(1 − p) the cell's hazard.
    z, _ = frailty_law(cfg.apprehension_frailty_sd)
    p = frailty_p(jr.p, z)[js, journey_month, jc, persons.frailty[journey_person]]
    q = p * cfg.retry_probability
    retried = rec.geometric(1.0 - q) - 1
    success = rec.random(p.size) < np.clip((1.0 - p) / (1.0 - q), 0.0, 1.0)
    K = retried + (~success).astype(np.int64)
    moy = tl.month_of_year[journey_month] - 1
    to_russia_p = np.array([cfg.to_russia_probability[c] for c in CATEGORIES])[jc, moy]
    to_russia = rec.random(p.size) < to_russia_p
    days = tl.days[journey_month]

    # One row per apprehension: days sorted within the journey (retries on non-decreasing days), the detector
    # in proportion to the hazards, the recorded violation by category.
    app_journey = np.repeat(np.arange(K.size), K)
    app_day = 1 + np.floor(rec.random(app_journey.size) * days[app_journey]).astype(np.int64)
    order = np.lexsort((app_day, app_journey))
    app_day = app_day[order]
    h = jr.hazard[js[app_journey], journey_month[app_journey], jc[app_journey]]
    app_detector = _categorical(rec, h / h.sum(axis=-1, keepdims=True))
    rec_p = np.array([[cfg.recorded_probability[c][r] for r in RECORDED] for c in CATEGORIES])
    app_recorded = _categorical(rec, rec_p[jc[app_journey]])
    first_day = np.ones(K.size, dtype=np.int64)
    has = K > 0
    starts = np.concatenate([[0], np.cumsum(K)[:-1]])
    first_day[has] = app_day[starts[has]]
    # A journey without apprehension crossed on a day of its own.
    first_day[~has] = 1 + np.floor(rec.random(int((~has).sum())) * days[~has]).astype(np.int64)
    return People(
        person_section=persons.section,
        person_category=persons.category,
        person_citizenship=persons.citizenship,
        person_border_zone=persons.border_zone,
        person_frailty=persons.frailty,
        journey_person=journey_person,
        journey_month=journey_month,
        journey_day=first_day,
        journey_apprehensions=K,
        journey_success=success,
        journey_to_russia=to_russia,
        app_journey=app_journey,
        app_day=app_day,
        app_detector=app_detector,
        app_recorded=app_recorded,
        base_person=persons.base_person,
        marks=persons.marks,
    )


def people_outcomes(people: People, shape: tuple[int, ...], surveyed: list[int]) -> Outcomes:
    """Aggregate the surveyed sections' journeys to the truth's cells (other sections left at zero)."""
    n_s, n_t, n_c = shape
    js = people.person_section[people.journey_person]
    jc = people.person_category[people.journey_person]
    t = people.journey_month
    flat = (js * n_t + t) * n_c + jc
    size = n_s * n_t * n_c
    K = np.bincount(flat, people.journey_apprehensions, size).astype(np.int64).reshape(shape)
    S = (
        np.bincount(flat, people.journey_success.astype(float), size)
        .astype(np.int64)
        .reshape(shape)
    )
    J = np.bincount(flat, None, size).astype(np.int64).reshape(shape)
    a_flat = flat[people.app_journey] * len(DETECTORS) + people.app_detector
    by_d = (
        np.bincount(a_flat, None, size * len(DETECTORS))
        .astype(np.int64)
        .reshape(*shape, len(DETECTORS))
    )
    return Outcomes(apprehensions=K, unobserved=S, abandoned=J - S, by_detector=by_d)


# ----------------------------------------------------------------------------------------------------------
# step 5: registers


@dataclass
class Registers:
    person: np.ndarray  # person index (crossers first, then legal entrants)
    register: np.ndarray  # register index
    date: np.ndarray  # datetime64[D]
    section: np.ndarray  # section index of the entry: the crosser's section, or the legal entrant's
    n_crossers: int
    legal_entrant_section: np.ndarray  # section index of each kept legal entrant


def crossing_days(tl: Timeline, people: People) -> np.ndarray:
    """Day number (days since 1970-01-01) of each journey's crossing or end: its last apprehension's day if it
    was apprehended (retries are on non-decreasing days, so the crossing is on or after it), else its own day."""
    month_start = tl.months[people.journey_month].astype("datetime64[D]").astype(np.int64)
    day = month_start + people.journey_day - 1
    last = np.full(day.size, np.iinfo(np.int64).min)
    np.maximum.at(last, people.app_journey, month_start[people.app_journey] + people.app_day - 1)
    return np.where(people.journey_apprehensions > 0, last, day)


def _days_to_next_journey(
    tl: Timeline, people: People, crossing: np.ndarray, journeys: np.ndarray
) -> np.ndarray:
    """Days from each of ``journeys``' crossing to the start of its person's next journey (its first
    apprehension, or its day when never apprehended); a large number when there is none."""
    month_start = tl.months[people.journey_month].astype("datetime64[D]").astype(np.int64)
    start = month_start + people.journey_day - 1
    first = np.full(start.size, np.iinfo(np.int64).max)
    np.minimum.at(first, people.app_journey, month_start[people.app_journey] + people.app_day - 1)
    start = np.where(people.journey_apprehensions > 0, first, start)
    span = np.int64(1 << 24)  # > any day number's range: person-major packed keys
    packed = np.sort(people.journey_person.astype(np.int64) * span + start)
    key = people.journey_person[journeys].astype(np.int64) * span + crossing[journeys]
    at = np.searchsorted(packed, key, "right")
    following = packed[np.minimum(at, packed.size - 1)]
    same = (at < packed.size) & (following // span == people.journey_person[journeys])
    return np.where(same, following % span - crossing[journeys], np.iinfo(np.int32).max)


def simulate_registers(
    seed: int, cfg: SimulationConfig, tl: Timeline, people: People, surveyed: list[int]
) -> Registers:
    """Register entries of the surveyed sections' people and of legal entrants (docs/simulator.md, step 6).

    The in-country lists (`IN_COUNTRY_REGISTERS`: police checks, overstays) can see a person only in Russia:
    each journey that crossed undetected into Russia puts its person on list L with probability
    λ_L·π_L[c][a], a = 1 if that journey was apprehended at least once, independently over lists and
    journeys, dated at the crossing + U{0, …, Δ_L} (``register_dating = "stay"``: + U{0, …, min(Δ_L, t − 1)},
    t days from the crossing to the person's next journey, which they begin outside Russia); so a person may
    be on a list several times. Deportation is
    per person: an apprehended person with probability λ·π[c][1], dated at their last apprehension + U{0..Δ};
    a never-apprehended person only if they entered Russia, with λ·π[c][0], dated at their first entry + U.
    Legal entrants are on each list with probability λ_L·π^legal_L. Entries dated after the last simulated
    day are not observed (dropped); legal entrants on no list are never seen and get no key.
    """
    rng = rng_for(seed, "registers")
    n_p = people.person_section.size
    never = np.iinfo(np.int64).max
    apprehended_journey = people.journey_apprehensions > 0
    apprehended = np.bincount(people.journey_person, people.journey_apprehensions, n_p) > 0
    crossing = crossing_days(tl, people)
    # journeys into Russia: crossed undetected (not given up) toward Russia
    entry = np.flatnonzero(people.journey_success & people.journey_to_russia)
    entry_person = people.journey_person[entry]
    first_entry = np.full(n_p, never)
    np.minimum.at(first_entry, entry_person, crossing[entry])
    # an apprehended journey's crossing day is its last apprehension's, so this is the person's last one
    last_app = np.full(n_p, np.iinfo(np.int64).min)
    np.maximum.at(
        last_app,
        people.journey_person[apprehended_journey],
        crossing[apprehended_journey],
    )
    end = tl.end.astype(np.int64)
    # the longest an entry of each entry journey can follow its crossing
    span = {reg: np.full(entry.size, cfg.register_delay_days[reg]) for reg in IN_COUNTRY_REGISTERS}
    if cfg.register_dating == "stay":
        left = _days_to_next_journey(tl, people, crossing, entry) - 1
        span = {reg: np.clip(left, 0, days) for reg, days in span.items()}

    persons, regs, dates = [], [], []
    for r_i, reg in enumerate(REGISTERS):
        pi = np.array([cfg.register_probability[reg][c] for c in CATEGORIES])  # (c, 2)
        lam = cfg.register_completeness[reg]
        if reg in IN_COUNTRY_REGISTERS:
            who = entry_person
            prob = lam * pi[people.person_category[who], apprehended_journey[entry].astype(int)]
            base = crossing[entry]
        else:
            who = np.arange(n_p)
            seen = apprehended | (first_entry < never)
            prob = np.where(seen, lam * pi[people.person_category, apprehended.astype(int)], 0.0)
            base = np.where(apprehended, last_app, np.where(seen, first_entry, 0))
        on = rng.random(who.size) < prob
        if reg in IN_COUNTRY_REGISTERS and cfg.register_dating == "stay":
            d = base + rng.integers(0, span[reg] + 1)
        else:
            d = base + rng.integers(0, cfg.register_delay_days[reg] + 1, who.size)
        keep = on & (d <= end)
        persons.append(who[keep])
        regs.append(np.full(int(keep.sum()), r_i))
        dates.append(d[keep])
    sections = [people.person_section[who] for who in persons]

    # Legal entrants: people who entered at a checkpoint and never crossed illegally.
    start = tl.months[0].astype("datetime64[D]").astype(np.int64)
    n_days = end - start + 1
    le_sec, le_p, le_r, le_d, le_s = [], [], [], [], []
    offset = n_p
    for s in surveyed:
        n = int(rng.poisson(cfg.legal_entrants_per_year * tl.months.size / 12.0))
        entered = start + rng.integers(0, n_days, n)
        on_any = np.zeros(n, dtype=bool)
        cand = []
        for r_i, reg in enumerate(REGISTERS):
            on = (
                rng.random(n)
                < cfg.register_completeness[reg] * cfg.legal_entrant_register_probability[reg]
            )
            d = entered + rng.integers(0, cfg.register_delay_days[reg] + 1, n)
            on &= d <= end
            on_any |= on
            cand.append((r_i, on, d))
        kept = np.flatnonzero(on_any)
        new_index = np.full(n, -1)
        new_index[kept] = offset + np.arange(kept.size)
        offset += kept.size
        le_sec.append(np.full(kept.size, s))
        for r_i, on, d in cand:
            le_p.append(new_index[on])
            le_r.append(np.full(int(on.sum()), r_i))
            le_d.append(d[on])
            le_s.append(np.full(int(on.sum()), s))
    return Registers(
        person=np.concatenate(persons + le_p).astype(np.int64),
        register=np.concatenate(regs + le_r).astype(np.int64),
        date=np.concatenate(dates + le_d).astype("datetime64[D]"),
        section=np.concatenate(sections + le_s).astype(np.int64),
        n_crossers=n_p,
        legal_entrant_section=np.concatenate(le_sec).astype(np.int64)
        if le_sec
        else np.empty(0, np.int64),
    )


def person_keys(seed: int, n: int) -> np.ndarray:
    """Raw person keys "PK" + 10 digits, distinct (sampled without replacement), one per person index."""
    draws = rng_for(seed, "keys").choice(10**10, size=n, replace=False)
    return np.array([f"PK{v:010d}" for v in draws], dtype=object)
