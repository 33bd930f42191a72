"""Steps 1–3 of the generative process: legal flows and waits, illegal-crossing journeys, apprehension.

All per cell (checkpoint × month, section × month × category); no individuals (`estim.simulate.individuals`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from estim.records.schemas import CATEGORIES, DETECTORS, SECTIONS
from estim.simulate.config import LAND_TYPES, POLICY_EVENTS, SimulationConfig
from estim.simulate.frailty import frailty_law, frailty_p
from estim.simulate.setting import Timeline, expit, negbin, policy_multiplier, rng_for

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
    mean_wait: np.ndarray  # (k, t) the wait before rounding (a wait measure scales it)
    checkpoint_section: np.ndarray  # (k,) section index
    checkpoint_land: np.ndarray  # (k,) road, rail or river


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
    raw = base * ((cit + fore) / ref) ** cfg.wait_load_elasticity * rush * pol * noise
    wait = np.round(raw, 1)
    land_for, land_wait = _land_aggregates(fore, wait, sec_idx, land)
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
        mean_wait=raw,
        checkpoint_section=sec_idx,
        checkpoint_land=land,
    )


def _land_aggregates(
    fore: np.ndarray, wait: np.ndarray, sec_idx: np.ndarray, land: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Section land aggregates: F and the foreign-crossing-weighted mean wait (of the recorded, rounded waits,
    so that a model reading the records sees exactly the covariate that generated the bypassers)."""
    n_s, n_t = len(SECTIONS), wait.shape[1]
    land_for = np.zeros((n_s, n_t))
    land_wf = np.zeros((n_s, n_t))
    land_w = np.zeros((n_s, n_t))
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
    return land_for, land_wait


def flows_with_waits(flows: Flows, multiplier: np.ndarray) -> Flows:
    """The same flows with the mean wait of every land checkpoint × `multiplier` (section, month).

    Only the waits' scale changes: the noise and the loads are the flows' own, so W = round₁(mean·m) has
    the simulator's law with the wait's mean × m, and a multiplier of exactly 1 leaves a wait bit for bit
    as it was. F is unchanged; the land mean wait follows the new recorded waits.
    """
    m = np.where(flows.checkpoint_land[:, None], multiplier[flows.checkpoint_section], 1.0)
    raw = flows.mean_wait * m
    wait = np.round(raw, 1)
    _, land_wait = _land_aggregates(
        flows.foreigners, wait, flows.checkpoint_section, flows.checkpoint_land
    )
    return dataclasses.replace(flows, wait=wait, mean_wait=raw, land_wait=land_wait)


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
    mu, share = expected_journeys(cfg, tl, sections, flows, in_force)
    J = negbin(rng_for(seed, "journeys"), mu, np.broadcast_to(dispersion(cfg), mu.shape))
    h = detection_hazards(cfg, tl)
    return Journeys(expected=mu, journeys=J, bypass_share=share, hazard=h, p=p_of(h))


def dispersion(cfg: SimulationConfig) -> np.ndarray:
    """φ_c, (category,)."""
    return np.array([cfg.dispersion[c] for c in CATEGORIES])


def p_of(hazard: np.ndarray) -> np.ndarray:
    """p = 1 − exp(−Σ_d h): the per-attempt apprehension probability under competing hazards."""
    return 1.0 - np.exp(-hazard.sum(axis=-1))


def expected_journeys(
    cfg: SimulationConfig,
    tl: Timeline,
    sections: pd.DataFrame,
    flows: Flows,
    in_force: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """μ (section, month, category) and the bypass share b (section, month) given the realised flows."""
    log_len = np.log(sections["length_km"].to_numpy() / 1000.0)
    alpha = np.array([cfg.section_effect[s] for s in SECTIONS])
    beta = np.array(
        [np.nan if cfg.category_effect[c] is None else cfg.category_effect[c] for c in CATEGORIES]
    )
    tau = np.array([np.nan if cfg.trend[c] is None else cfg.trend[c] for c in CATEGORIES])
    seas = seasonal_effect(cfg)[:, tl.month_of_year - 1].T  # (t, c)
    theta = journey_policy_effects(cfg)
    # a multiplier of 0 (a reduction of 100 %) is meant: log 0 = −inf, so μ = 0
    with np.errstate(divide="ignore"):
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
    return mu, share


def detection_hazards(cfg: SimulationConfig, tl: Timeline) -> np.ndarray:
    """h (section, month, category, detector): log-linear detection hazards per attempt."""
    n_s, n_t, n_c = len(SECTIONS), tl.months.size, len(CATEGORIES)
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
    return np.broadcast_to(np.exp(log_h), (n_s, n_t, n_c, len(DETECTORS))).copy()


@dataclass
class NodeOutcomes:
    """A cell's journeys and outcomes split by the frailty node of the journey (last axis before detector)."""

    journeys: np.ndarray  # (s, t, c, node)
    unobserved: np.ndarray  # (s, t, c, node)
    apprehensions: np.ndarray  # (s, t, c, node)
    by_detector: np.ndarray  # (s, t, c, node, d)


@dataclass
class Outcomes:
    apprehensions: np.ndarray  # (s, t, c)
    unobserved: np.ndarray  # successful undetected crossings
    abandoned: np.ndarray  # journeys given up after an apprehension (only when r < 1)
    by_detector: np.ndarray  # (s, t, c, d)
    # the aggregate draws by frailty node (a world with measures rebuilds journeys from them)
    by_node: NodeOutcomes | None = None


def simulate_outcomes_aggregate(seed: int, cfg: SimulationConfig, jr: Journeys) -> Outcomes:
    """Repeated trials summed over a cell's journeys, without individuals.

    Each attempt is apprehended with probability p; after an apprehension the person retries with
    probability r. A journey ends in a success (probability (1−p)/(1−pr)) or in giving up; the apprehensions
    followed by a retry are geometric with continuation probability pr, independently of how it ends. So
    given J: S ~ Binomial(J, (1−p)/(1−pr)), K = (J − S) + NegBin(J, 1 − pr), and K splits over detectors
    multinomially with probabilities h_d / Σh.

    With a frailty (`apprehension_frailty_sd` σ > 0) the J journeys first split multinomially over the frailty
    nodes (probabilities w_q, `frailty_law`), and each node's journeys follow the law above with
    p_q = 1 − exp(−H z_q), H = −log(1 − p); with σ = 0 there is one node and nothing extra is drawn.
    """
    rng = rng_for(seed, "apprehensions")
    z, w = frailty_law(cfg.apprehension_frailty_sd)
    J, r = jr.journeys, cfg.retry_probability
    Jq = J[..., None] if w.size == 1 else rng.multinomial(J, w).astype(np.int64)
    p = frailty_p(jr.p, z)  # (s, t, c, node)
    q = p * r
    success = rng.binomial(Jq, np.clip((1.0 - p) / (1.0 - q), 0.0, 1.0)).astype(np.int64)
    retried = np.where(Jq > 0, rng.negative_binomial(np.maximum(Jq, 1), 1.0 - q), 0).astype(
        np.int64
    )
    K = (Jq - success) + retried
    share = jr.hazard / jr.hazard.sum(axis=-1, keepdims=True)
    by_d = rng.multinomial(K, share[..., None, :]).astype(np.int64)
    return Outcomes(
        apprehensions=K.sum(axis=-1),
        unobserved=success.sum(axis=-1),
        abandoned=(Jq - success).sum(axis=-1),
        by_detector=by_d.sum(axis=-2),
        by_node=NodeOutcomes(journeys=Jq, unobserved=success, apprehensions=K, by_detector=by_d),
    )
