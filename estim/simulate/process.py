"""The generative process of the synthetic border, step by step (docs/simulator.md has it as equations).

Order of the steps, each drawing from its own random sub-stream so that changing one step's code leaves the
draws of the others unchanged:

1. checkpoints and their legal flows, refusals, invalid documents and waiting times;
2. illegal-crossing journeys per section × month × category (bypassers from flows and waits);
3. per-attempt apprehension under detection hazards, with repeated trials within a month;
4. for the surveyed sections, the people behind the journeys and one record per apprehension;
5. registers (police checks, overstays, deportations) over the surveyed sections' people and legal entrants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from estim.errors import EstimInputError
from estim.records.schemas import (
    CATEGORIES,
    CHECKPOINT_TYPES,
    DETECTORS,
    RECORDED,
    REGISTERS,
    SCHEMAS,
    SECTIONS,
)
from estim.simulate.config import LAND_TYPES, POLICY_EVENTS, SimulationConfig

# Sub-stream ids: fixed integers, never derived from dict or set order.
_STREAMS = {
    "checkpoints": 1,
    "legal": 2,
    "waits": 3,
    "journeys": 4,
    "apprehensions": 5,
    "individuals": 6,
    "records": 7,
    "registers": 8,
    "keys": 9,
}

# Real checkpoint names given in facts/border.md, with the source that names them.
_NAMED_CHECKPOINTS = {
    "orenburg-road-1": (
        "Sagarchin",
        "29ru.net (name); type count: time56.ru; orenburg-news.net 2023-07-06",
    ),
    "omsk-rail-1": (
        "Isilkul",
        "Petropavlovsk.news 2019 (name); type count: tass.ru/obschestvo/25745513",
    ),
    "saratov-road-1": ("Ozinki", "fn-volga.ru (name); type: assumed"),
}

_POLICY_TEXT = {
    "border_residents_agreement": (
        "Agreement between Russia and Kazakhstan on crossings by residents of border territories (signed "
        "2006-10-03) in force: residents may cross at simplified crossing points, e.g. Novoshkatovka-Naidorf (Omsk)",
        "facts/border.md, Policy history (agreement signed 3 Oct 2006, in force 27 Apr 2009); primary citation not recorded",
    ),
    "customs_union": (
        "Customs Union of Russia, Belarus and Kazakhstan removes internal customs controls at the border",
        "facts/border.md, Policy history (July 2011); primary citation not recorded",
    ),
    "joint_checkpoint_control": (
        "Agreement on joint control at checkpoints (signed 2009-09-11) in force",
        "facts/border.md, Policy history (in force 30 Jul 2013); primary citation not recorded",
    ),
}


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """The random generator of one named sub-stream: PCG64 seeded by SeedSequence(seed, spawn_key=(id,))."""
    if seed < 0:
        raise EstimInputError(f"seed must be a non-negative integer, got {seed}")
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)))
    )


def negbin(rng: np.random.Generator, mean: np.ndarray, shape: float | np.ndarray) -> np.ndarray:
    """Gamma-Poisson counts with the given mean and shape φ (variance mean + mean²/φ)."""
    mean = np.asarray(mean, dtype=float)
    shape = np.broadcast_to(np.asarray(shape, dtype=float), mean.shape)
    return rng.negative_binomial(shape, shape / (shape + mean)).astype(np.int64)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------------------------------
# time


@dataclass(frozen=True)
class Timeline:
    """Calendar of the simulation: months, trend time t (years since the start), month of year, days."""

    months: np.ndarray  # datetime64[M]
    t: np.ndarray  # years since the first month: 0, 1/12, 2/12, …
    month_of_year: np.ndarray  # 1..12
    days: np.ndarray  # days in the month
    end: np.datetime64  # last day, datetime64[D]

    @classmethod
    def make(cls, start: str, years: int) -> Timeline:
        months = np.datetime64(start, "M") + np.arange(12 * years).astype("timedelta64[M]")
        first = months.astype("datetime64[D]")
        nxt = (months + np.timedelta64(1, "M")).astype("datetime64[D]")
        return cls(
            months=months,
            t=np.arange(months.size) / 12.0,
            month_of_year=(months.astype(int) % 12) + 1,
            days=(nxt - first).astype(int),
            end=nxt[-1] - np.timedelta64(1, "D"),
        )

    def in_force(self, start_date: str) -> np.ndarray:
        """I_e(t): the share of the days of month t on or after `start_date` (0 before, 1 after)."""
        first = self.months.astype("datetime64[D]")
        d = np.datetime64(start_date, "D")
        after = (first + self.days.astype("timedelta64[D]") - np.maximum(first, d)).astype(int)
        return np.clip(after / self.days, 0.0, 1.0)


def policy_multiplier(effect: float, in_force: np.ndarray) -> np.ndarray:
    """1 + (θ − 1)·I(t): the effect θ applied to the share of the month the change was in force."""
    return 1.0 + (effect - 1.0) * in_force


# ----------------------------------------------------------------------------------------------------------
# sections and checkpoints


def read_sections(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """sections.csv as a record table (numbers typed, bools as text) and indexed by section for the process.

    Rows come out in SECTIONS order.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    schema = SCHEMAS["sections"]
    if tuple(raw.columns) != schema.names:
        raise EstimInputError(f"{path}: columns must be {schema.names}")
    if sorted(raw["section_id"]) != sorted(SECTIONS):
        raise EstimInputError(f"{path}: needs one row for each of {SECTIONS}")
    raw = raw.set_index("section_id", drop=False).loc[list(SECTIONS)].reset_index(drop=True)
    for col in schema.columns:
        if col.kind == "int":
            raw[col.name] = raw[col.name].astype(np.int64)
        elif col.kind == "float":
            raw[col.name] = raw[col.name].astype(float)
        elif col.kind == "bool":
            raw[col.name] = np.where(
                raw[col.name].str.lower().isin(("true", "1", "yes")), "true", "false"
            )
    typed = raw.set_index("section_id")[[]].copy()
    typed["name"] = raw["name"].to_numpy()
    typed["length_km"] = raw["length_km"].astype(float).to_numpy()
    typed["border_population"] = raw["border_population"].astype(np.int64).to_numpy()
    typed["surveyed"] = (raw["surveyed"] == "true").to_numpy()
    typed["terrain"] = raw["terrain"].to_numpy()
    for kind in CHECKPOINT_TYPES:
        typed[kind] = raw[f"checkpoints_{kind}"].astype(np.int64).to_numpy()
    return raw, typed


def _short_name(section_name: str) -> str:
    return section_name.removesuffix(" Oblast")


def build_checkpoints(
    sections: pd.DataFrame, sections_raw: pd.DataFrame, citizens_only: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per checkpoint: id SECTION-TYPE-i, section, name, type, source; real names where known.

    Checkpoints in `citizens_only` (open to Russian and Kazakh citizens only) say so in their name, since the
    checkpoints table has no column for it and their foreign crossings are always 0.
    """
    rows = []
    src = dict(zip(sections_raw["section_id"], sections_raw["checkpoints_source"], strict=True))
    for s in SECTIONS:
        for kind in CHECKPOINT_TYPES:
            for i in range(1, int(sections.at[s, kind]) + 1):
                cid = f"{s}-{kind}-{i}"
                if cid in _NAMED_CHECKPOINTS:
                    name, source = _NAMED_CHECKPOINTS[cid]
                else:
                    name = f"{_short_name(sections.at[s, 'name'])} {kind} {i}"
                    source = (
                        src[s]
                        if src[s].startswith("assumed")
                        else f"type count: {src[s]}; name assumed"
                    )
                if cid in citizens_only:
                    name += " (citizens only)"
                    source += (
                        "; open to Russian and Kazakh citizens only: orenburg-news.net 2023-07-06"
                    )
                rows.append((cid, s, name, kind, source))
    return pd.DataFrame(rows, columns=list(SCHEMAS["checkpoints"].names))


# ----------------------------------------------------------------------------------------------------------
# step 1: legal flows and waits


@dataclass
class Flows:
    """Checkpoint × month legal flows and what control found; section × month land aggregates."""

    citizens: np.ndarray  # (k, t) int
    foreigners: np.ndarray
    refusals: np.ndarray
    invalid: np.ndarray
    wait: np.ndarray  # (k, t) minutes, rounded to 0.1 as recorded
    expected_citizens: np.ndarray  # (k, t)
    expected_foreigners: np.ndarray
    checkpoint_effect: np.ndarray  # (k,)
    share_citizens: np.ndarray  # (k,) checkpoint's share of its section's citizens' flow
    share_foreigners: np.ndarray
    land_foreigners: np.ndarray  # (s, t) F
    land_wait: np.ndarray  # (s, t) crossing-weighted mean wait of the land checkpoints
    seasonal: np.ndarray  # (12,) centred λ_m


def simulate_flows(
    seed: int,
    cfg: SimulationConfig,
    tl: Timeline,
    checkpoints: pd.DataFrame,
    in_force: dict[str, np.ndarray],
) -> Flows:
    """Monthly legal crossings (negative binomial), refusals and invalid documents (binomial), mean waits."""
    rng_cp, rng_legal, rng_wait = (rng_for(seed, n) for n in ("checkpoints", "legal", "waits"))
    sec_idx = checkpoints["section_id"].map({s: i for i, s in enumerate(SECTIONS)}).to_numpy()
    kinds = checkpoints["type"].to_numpy()
    n_k = len(checkpoints)

    # Checkpoint sizes: drawn once, then sorted within section and type so that #1 is the largest (the
    # named crossings, e.g. Sagarchin, are the big ones).
    effect = rng_cp.normal(0.0, cfg.checkpoint_effect_sd, n_k)
    group = checkpoints["section_id"] + "/" + checkpoints["type"]
    for g in pd.unique(group):
        idx = np.flatnonzero((group == g).to_numpy())
        effect[idx] = np.sort(effect[idx])[::-1]
    weight = np.array([cfg.checkpoint_type_weight[k] for k in kinds]) * np.exp(effect)
    w_for = np.where(checkpoints["checkpoint_id"].isin(cfg.citizens_only_checkpoints), 0.0, weight)
    share_cit = weight / np.bincount(sec_idx, weight, len(SECTIONS))[sec_idx]
    share_for = w_for / np.bincount(sec_idx, w_for, len(SECTIONS))[sec_idx]

    lam = np.asarray(cfg.legal_seasonal, dtype=float)
    lam = lam - lam.mean()
    season = np.exp(lam[tl.month_of_year - 1])

    def by_k(d: dict[str, float]) -> np.ndarray:
        """A per-section parameter as a (checkpoint, 1) column."""
        return np.array([d[s] for s in SECTIONS])[sec_idx][:, None]

    cu = policy_multiplier(cfg.customs_union_foreign_flow_effect, in_force["customs_union"])
    mu_cit = (
        by_k(cfg.legal_level_citizens)
        * share_cit[:, None]
        * season
        * np.exp(by_k(cfg.legal_trend_citizens) * tl.t)
    )
    mu_for = (
        by_k(cfg.legal_level_foreigners)
        * share_for[:, None]
        * season
        * np.exp(by_k(cfg.legal_trend_foreigners) * tl.t)
        * cu
    )
    cit = negbin(rng_legal, mu_cit, cfg.legal_dispersion)
    fore = negbin(rng_legal, mu_for, cfg.legal_dispersion)

    q_ref = np.minimum(np.exp(cfg.refusal_log_rate[0] + cfg.refusal_log_rate[1] * tl.t), 1.0)
    q_inv = np.minimum(
        np.exp(cfg.invalid_document_log_rate[0] + cfg.invalid_document_log_rate[1] * tl.t), 1.0
    )
    refusals = rng_legal.binomial(fore, q_ref[None, :]).astype(np.int64)
    invalid = rng_legal.binomial(cit + fore, q_inv[None, :]).astype(np.int64)

    # Waits: base by type × (load / reference load)^κ × New-Year rush × policy × noise. The rush and the
    # policies act on road queues only: rail and river control times follow the timetable, air is apart.
    base = np.array([cfg.wait_base_minutes[k] for k in kinds])[:, None]
    ref = np.array([cfg.wait_reference_load[k] for k in kinds])[:, None]
    land = np.isin(kinds, LAND_TYPES)
    road = kinds == "road"
    nu = np.asarray(cfg.wait_road_month_multiplier, dtype=float)[tl.month_of_year - 1]
    rush = np.where(road[:, None], nu[None, :], 1.0)
    pol = policy_multiplier(
        cfg.customs_union_wait_effect, in_force["customs_union"]
    ) * policy_multiplier(cfg.joint_control_wait_effect, in_force["joint_checkpoint_control"])
    pol = np.where(road[:, None], pol[None, :], 1.0)
    noise = np.exp(rng_wait.normal(0.0, cfg.wait_noise_sd, (n_k, tl.months.size)))
    wait = np.round(base * ((cit + fore) / ref) ** cfg.wait_load_elasticity * rush * pol * noise, 1)

    # Section land aggregates: F and the foreign-crossing-weighted mean wait (the recorded, rounded waits,
    # so that a model reading the records sees exactly the covariate that generated the bypassers).
    n_s = len(SECTIONS)
    land_for = np.zeros((n_s, tl.months.size))
    land_wf = np.zeros((n_s, tl.months.size))
    land_w = np.zeros((n_s, tl.months.size))
    land_n = np.zeros(n_s)
    for k in np.flatnonzero(land):
        land_for[sec_idx[k]] += fore[k]
        land_wf[sec_idx[k]] += fore[k] * wait[k]
        land_w[sec_idx[k]] += wait[k]
        land_n[sec_idx[k]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        land_wait = np.where(
            land_for > 0, land_wf / land_for, land_w / np.maximum(land_n, 1)[:, None]
        )
    return Flows(
        citizens=cit,
        foreigners=fore,
        refusals=refusals,
        invalid=invalid,
        wait=wait,
        expected_citizens=mu_cit,
        expected_foreigners=mu_for,
        checkpoint_effect=effect,
        share_citizens=share_cit,
        share_foreigners=share_for,
        land_foreigners=land_for,
        land_wait=land_wait,
        seasonal=lam,
    )


# ----------------------------------------------------------------------------------------------------------
# step 2-3: journeys and apprehension


WAIT_FLOOR_MINUTES = 0.1
"""Waits are floored here before the log in the bypass share (a month with no land crossings has wait 0)."""


def seasonal_effect(cfg: SimulationConfig) -> np.ndarray:
    """S_c(m), (category, 12): two harmonics per category; NaN for bypassers (their season comes from F, w)."""
    m = np.arange(1, 13)
    out = np.full((len(CATEGORIES), 12), np.nan)
    for i, c in enumerate(CATEGORIES):
        h = cfg.seasonal_harmonics[c]
        if h is not None:
            a1, m1, a2, m2 = h
            out[i] = a1 * np.cos(2 * np.pi * (m - m1) / 12) + a2 * np.cos(4 * np.pi * (m - m2) / 12)
    return out


def journey_policy_effects(cfg: SimulationConfig) -> np.ndarray:
    """θ_{e,c}, (event, category): multiplicative effect of each policy event on each category's journeys."""
    theta = np.ones((len(POLICY_EVENTS), len(CATEGORIES)))
    theta[
        POLICY_EVENTS.index("border_residents_agreement"), CATEGORIES.index("border_resident")
    ] = 1.0 - cfg.residents_take_up
    theta[POLICY_EVENTS.index("customs_union"), CATEGORIES.index("smuggler")] = (
        cfg.customs_union_smuggler_effect
    )
    return theta


@dataclass
class Journeys:
    expected: np.ndarray  # (s, t, c) μ
    journeys: np.ndarray  # (s, t, c) J
    bypass_share: np.ndarray  # (s, t)
    hazard: np.ndarray  # (s, t, c, d)
    p: np.ndarray  # (s, t, c)


def simulate_journeys(
    seed: int,
    cfg: SimulationConfig,
    tl: Timeline,
    sections: pd.DataFrame,
    flows: Flows,
    in_force: dict[str, np.ndarray],
) -> Journeys:
    """J[s,t,c] ~ NegBin(μ, φ_c), log-linear μ; bypassers μ = share(w)·F. Detection hazards and p."""
    n_s, n_t, n_c = len(SECTIONS), tl.months.size, len(CATEGORIES)
    log_len = np.log(sections["length_km"].to_numpy() / 1000.0)
    alpha = np.array([cfg.section_effect[s] for s in SECTIONS])
    beta = np.array(
        [np.nan if cfg.category_effect[c] is None else cfg.category_effect[c] for c in CATEGORIES]
    )
    tau = np.array([np.nan if cfg.trend[c] is None else cfg.trend[c] for c in CATEGORIES])
    seas = seasonal_effect(cfg)[:, tl.month_of_year - 1].T  # (t, c)
    theta = journey_policy_effects(cfg)
    log_pol = sum(
        np.log(policy_multiplier(theta[e][None, :], in_force[ev][:, None]))
        for e, ev in enumerate(POLICY_EVENTS)
    )
    log_pop = np.log(sections["border_population"].to_numpy() / 1e5)
    resident = np.array([c == "border_resident" for c in CATEGORIES], dtype=float)
    log_mu = (
        (log_len + alpha)[:, None, None]
        + beta[None, None, :]
        + seas[None, :, :]
        + (tau[None, :] * tl.t[:, None])[None, :, :]
        + log_pol[None, :, :]
        + cfg.population_elasticity * log_pop[:, None, None] * resident[None, None, :]
    )
    mu = np.exp(log_mu)
    w = np.maximum(flows.land_wait, WAIT_FLOOR_MINUTES)
    share = expit(cfg.bypass_eta0 + cfg.bypass_eta1 * np.log(w / 60.0))
    b = CATEGORIES.index("bypasser")
    mu[:, :, b] = share * flows.land_foreigners
    phi = np.array([cfg.dispersion[c] for c in CATEGORIES])
    J = negbin(rng_for(seed, "journeys"), mu, np.broadcast_to(phi, mu.shape))

    a = np.array([cfg.hazard_section[s] for s in SECTIONS])
    bc = np.array([cfg.hazard_category[c] for c in CATEGORIES])
    e = np.array([cfg.hazard_detector[d] for d in DETECTORS])
    tech = np.array([d == "technical" for d in DETECTORS], dtype=float)
    log_h = (
        a[:, None, None, None]
        + bc[None, None, :, None]
        + e[None, None, None, :]
        + (cfg.technical_trend * tl.t[:, None] * tech[None, :])[None, :, None, :]
    )
    h = np.broadcast_to(np.exp(log_h), (n_s, n_t, n_c, len(DETECTORS))).copy()
    p = 1.0 - np.exp(-h.sum(axis=-1))
    return Journeys(expected=mu, journeys=J, bypass_share=share, hazard=h, p=p)


@dataclass
class Outcomes:
    apprehensions: np.ndarray  # (s, t, c)
    unobserved: np.ndarray  # successful undetected crossings
    abandoned: np.ndarray  # journeys given up after an apprehension (only when r < 1)
    by_detector: np.ndarray  # (s, t, c, d)


def simulate_outcomes_aggregate(seed: int, cfg: SimulationConfig, jr: Journeys) -> Outcomes:
    """Repeated trials summed over a cell's journeys, without individuals.

    Each attempt is apprehended with probability p; after an apprehension the person retries with
    probability r. A journey ends in a success (probability (1−p)/(1−pr)) or in giving up; the apprehensions
    followed by a retry are geometric with continuation probability pr, independently of how it ends. So
    given J: S ~ Binomial(J, (1−p)/(1−pr)), K = (J − S) + NegBin(J, 1 − pr), and K splits over detectors
    multinomially with probabilities h_d / Σh.
    """
    rng = rng_for(seed, "apprehensions")
    J, p, r = jr.journeys, jr.p, cfg.retry_probability
    q = p * r
    success = rng.binomial(J, np.clip((1.0 - p) / (1.0 - q), 0.0, 1.0)).astype(np.int64)
    retried = np.where(J > 0, rng.negative_binomial(np.maximum(J, 1), 1.0 - q), 0).astype(np.int64)
    K = (J - success) + retried
    share = jr.hazard / jr.hazard.sum(axis=-1, keepdims=True)
    by_d = rng.multinomial(K, share).astype(np.int64)
    return Outcomes(apprehensions=K, unobserved=success, abandoned=J - success, by_detector=by_d)


# ----------------------------------------------------------------------------------------------------------
# step 4: individuals in the surveyed sections


@dataclass
class People:
    """Persons and journeys of the surveyed sections, and one row per apprehension."""

    person_section: np.ndarray  # section index
    person_category: np.ndarray  # category index
    person_citizenship: np.ndarray  # str
    person_border_zone: np.ndarray  # bool
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
    months — else by a new person; so a person has at most one journey a month.
    """
    rng = rng_for(seed, "individuals")
    per_sec, per_cat, citz, bzr = [], [], [], []
    j_person, j_month, j_s, j_c = [], [], [], []
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
        for t in range(tl.months.size):
            n = int(jr.journeys[s, t, c])
            bar.update(1)
            if n == 0:
                continue
            want = int(rng.binomial(n, cfg.return_probability[cat]))
            eligible = np.flatnonzero(last >= t - cfg.return_window_months)
            m = min(want, eligible.size)
            chosen = (
                rng.choice(eligible, size=m, replace=False) if m else np.empty(0, dtype=np.int64)
            )
            new = n - m
            new_ids = np.arange(n_people, n_people + new)
            n_people += new
            per_sec.append(np.full(new, s))
            per_cat.append(np.full(new, c))
            citz.append(codes[_categorical(rng, np.broadcast_to(cprobs, (new, cprobs.size)))])
            bzr.append(rng.random(new) < cfg.border_zone_share[cat])
            last[chosen] = t
            ids = np.concatenate([ids, new_ids])
            last = np.concatenate([last, np.full(new, t)])
            j_person.append(np.concatenate([ids[chosen], new_ids]))
            j_month.append(np.full(n, t))
            j_s.append(np.full(n, s))
            j_c.append(np.full(n, c))
    bar.close()

    def cat_(xs: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(xs).astype(dt) if xs else np.empty(0, dtype=dt)

    journey_person, journey_month = cat_(j_person, np.int64), cat_(j_month, np.int64)
    js, jc = cat_(j_s, np.int64), cat_(j_c, np.int64)

    # Attempts within the journey's month (see simulate_outcomes_aggregate for the same law in aggregate).
    rec = rng_for(seed, "records")
    p = jr.p[js, journey_month, jc]
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
        person_section=cat_(per_sec, np.int64),
        person_category=cat_(per_cat, np.int64),
        person_citizenship=cat_(citz, object),
        person_border_zone=cat_(bzr, bool),
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
    n_crossers: int
    legal_entrant_section: np.ndarray  # section index of each kept legal entrant


def simulate_registers(
    seed: int, cfg: SimulationConfig, tl: Timeline, people: People, surveyed: list[int]
) -> Registers:
    """Each crosser is on each list with probability λ_list·π[list][c][apprehended]; legal entrants too.

    Entries dated after the last simulated day are not observed (dropped). Legal entrants who end up on no list
    are never seen and get no key.
    """
    rng = rng_for(seed, "registers")
    n_p = people.person_section.size
    apprehended = np.bincount(people.journey_person, people.journey_apprehensions, n_p) > 0
    first = np.full(n_p, np.iinfo(np.int64).max)
    jdate = (
        tl.months[people.journey_month].astype("datetime64[D]").astype(np.int64)
        + people.journey_day
        - 1
    )
    np.minimum.at(first, people.journey_person, jdate)
    app_date = (
        tl.months[people.journey_month[people.app_journey]].astype("datetime64[D]").astype(np.int64)
        + people.app_day
        - 1
    )
    last_app = np.full(n_p, np.iinfo(np.int64).min)
    np.maximum.at(last_app, people.journey_person[people.app_journey], app_date)
    end = tl.end.astype(np.int64)

    persons, regs, dates = [], [], []
    for r_i, reg in enumerate(REGISTERS):
        pi = np.array([cfg.register_probability[reg][c] for c in CATEGORIES])  # (c, 2)
        prob = cfg.register_completeness[reg] * pi[people.person_category, apprehended.astype(int)]
        on = rng.random(n_p) < prob
        base = np.where((reg == "deportation") & apprehended, last_app, first)
        delay = rng.integers(0, cfg.register_delay_days[reg] + 1, n_p)
        d = base + delay
        keep = on & (d <= end)
        persons.append(np.flatnonzero(keep))
        regs.append(np.full(int(keep.sum()), r_i))
        dates.append(d[keep])

    # Legal entrants: people who entered at a checkpoint and never crossed illegally.
    start = tl.months[0].astype("datetime64[D]").astype(np.int64)
    n_days = end - start + 1
    le_sec, le_p, le_r, le_d = [], [], [], []
    offset = n_p
    for s in surveyed:
        n = int(rng.poisson(cfg.legal_entrants_per_year * tl.months.size / 12.0))
        entry = start + rng.integers(0, n_days, n)
        on_any = np.zeros(n, dtype=bool)
        cand = []
        for r_i, reg in enumerate(REGISTERS):
            on = (
                rng.random(n)
                < cfg.register_completeness[reg] * cfg.legal_entrant_register_probability[reg]
            )
            d = entry + rng.integers(0, cfg.register_delay_days[reg] + 1, n)
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
    return Registers(
        person=np.concatenate(persons + le_p).astype(np.int64),
        register=np.concatenate(regs + le_r).astype(np.int64),
        date=np.concatenate(dates + le_d).astype("datetime64[D]"),
        n_crossers=n_p,
        legal_entrant_section=np.concatenate(le_sec).astype(np.int64)
        if le_sec
        else np.empty(0, np.int64),
    )


def person_keys(seed: int, n: int) -> np.ndarray:
    """Raw person keys "PK" + 10 digits, distinct (sampled without replacement), one per person index."""
    draws = rng_for(seed, "keys").choice(10**10, size=n, replace=False)
    return np.array([f"PK{v:010d}" for v in draws], dtype=object)


def policy_events_table(cfg: SimulationConfig) -> pd.DataFrame:
    rows = []
    for ev in POLICY_EVENTS:
        desc, src = _POLICY_TEXT[ev]
        rows.append((f"{ev}-{cfg.policy_start[ev][:4]}", ev, cfg.policy_start[ev], "*", desc, src))
    return pd.DataFrame(rows, columns=list(SCHEMAS["policy_events"].names))
