"""Coupled draws: the world with measures under common random numbers with the baseline (docs/simulator.md,
Measures).

The baseline is the simulation without measures, drawn exactly as always. The world with measures
(`estim.simulate.measured`) changes the parameters (`estim.simulate.measures`) and reuses the baseline's draws so that every count keeps the
simulator's law under the changed parameters while measure − baseline differences carry little noise:

* journeys: a cell's baseline journeys are each kept with probability min(1, μ_m/μ_b) (binomial thinning of
  a gamma–Poisson count: NegBin(μ_b, φ) thinned by ρ is NegBin(ρ μ_b, φ)); where μ_m > μ_b the gamma rate is
  drawn given the baseline count, Λ | J_b ~ Gamma(φ + J_b, scale μ_b/(φ + μ_b)), and Poisson(Λ (μ_m/μ_b − 1))
  journeys are added, so that given Λ the count is Poisson(Λ μ_m/μ_b): NegBin(μ_m, φ);
* a kept journey's attempts: the baseline outcome fixes the attempts' latent uniforms only to intervals;
  drawing them within those intervals and comparing them with the new p gives the new outcome (fewer
  apprehensions when p falls, more when it rises), so each journey's outcome has exactly the law under p_m;
  where the hazards' shares change, an apprehension's detector is recoupled the same way;
* in the ten sections drawn in aggregate, each changed cell's journeys are first rebuilt from its totals by
  their exact conditional law given the totals (which journeys gave up, a uniform composition of the retried
  apprehensions, a uniform permutation of the detectors), then coupled journey by journey;
* the people of the surveyed sections repeat the baseline's draws until a section and category's journeys
  first differ, then draw on their own; the same person keeps the same key;
* with a frailty (`estim.simulate.frailty`) every journey has a node: a surveyed journey its person's (the
  baseline outcome read under the baseline person's p, the new one under the new person's), an aggregate
  journey the node it was rebuilt in (the totals are kept per node), an added journey a fresh draw.

Cells whose parameters are unchanged (every cell before a measure starts) are copied from the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estim.records.schemas import CATEGORIES, DETECTORS, RECORDED
from estim.simulate.config import SimulationConfig
from estim.simulate.setting import Timeline, negbin


@dataclass
class Attempts:
    """Journeys with their outcomes and one row per apprehension (record fields only where people are)."""

    cell: np.ndarray  # flat (section, month, category) index
    K: np.ndarray  # apprehensions
    success: np.ndarray  # bool: crossed undetected
    app_journey: np.ndarray
    app_detector: np.ndarray
    to_russia: np.ndarray | None = None
    first_day: np.ndarray | None = None
    app_day: np.ndarray | None = None
    app_recorded: np.ndarray | None = None
    node: np.ndarray | None = None  # frailty node of each journey (None: all 0, no frailty)


@dataclass
class Cells:
    """Per flat cell: the baseline's and the measure's p (per frailty node) and detector shares, thinning and
    top-up."""

    p_b: np.ndarray  # (cell, node)
    p_m: np.ndarray  # (cell, node)
    share_b: np.ndarray  # (cell, detector)
    share_m: np.ndarray
    keep: np.ndarray  # probability that a baseline journey is kept
    extra: np.ndarray  # journeys added
    month: np.ndarray
    category: np.ndarray
    frailty_w: np.ndarray  # probabilities of the frailty nodes (one node, 1.0, without frailty)


# ----------------------------------------------------------------------------------------------------------
# coupled draws


def keep_probability(mu_b: np.ndarray, mu_m: np.ndarray) -> np.ndarray:
    """min(1, μ_m/μ_b): the thinning that turns NegBin(μ_b, φ) into NegBin(μ_m, φ) where μ_m ≤ μ_b."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mu_b > 0, np.minimum(mu_m / np.where(mu_b > 0, mu_b, 1.0), 1.0), 1.0)


def top_up(
    rng: np.random.Generator, J_b: np.ndarray, mu_b: np.ndarray, mu_m: np.ndarray, phi: np.ndarray
) -> np.ndarray:
    """Journeys added where μ_m > μ_b: Poisson(Λ (μ_m/μ_b − 1)) with the gamma rate Λ drawn given J_b
    (Gamma(φ + J_b, scale μ_b/(φ + μ_b))), so that J_b + added | Λ ~ Poisson(Λ μ_m/μ_b); where μ_b = 0 an
    independent NegBin(μ_m, φ)."""
    phi = np.broadcast_to(phi, mu_b.shape)
    lam = rng.gamma(phi + J_b, mu_b / (phi + mu_b))
    up = (mu_m > mu_b) & (mu_b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(up, lam * (mu_m / np.where(up, mu_b, 1.0) - 1.0), 0.0)
    added = rng.poisson(rate).astype(np.int64)
    fresh = negbin(rng, np.where(mu_b > 0, 0.0, mu_m), phi)
    return np.where(mu_b > 0, added, fresh)


def fresh_attempts(
    rng: np.random.Generator, p: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """(K, success) of journeys under p and retry probability r (docs/simulator.md, step 4)."""
    q = p * r
    success = rng.random(p.size) < np.clip((1.0 - p) / (1.0 - q), 0.0, 1.0)
    K = rng.geometric(1.0 - q) - 1 + (~success).astype(np.int64)
    return K.astype(np.int64), success


def couple_attempts(
    rng: np.random.Generator,
    K_b: np.ndarray,
    success_b: np.ndarray,
    p_b: np.ndarray,
    p_m: np.ndarray,
    r: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A journey's outcome under p_m coupled to its outcome (K_b, success_b) under p_b (quantile coupling).

    Order a journey's outcomes as (0, success) < (1, gave up) < (1, success) < (2, gave up) < …; with
    q = p r the tail beyond k apprehensions is P(K > k) = p q^k, and (k, success) has the tail interval
    (p q^k, q^k], (k, gave up) (q^k, p q^(k−1)], (0, success) (p, 1]. A uniform V drawn within the baseline
    outcome's interval under p_b is uniform on (0, 1], and the outcome whose interval under p_m holds it has
    exactly the law under p_m; the two are comonotone (the coupling with the least mean squared difference).
    """
    V = _tail_draw(rng, K_b, success_b, p_b, r)
    return _tail_outcome(V, p_m, r)


def _tail_draw(
    rng: np.random.Generator, K: np.ndarray, success: np.ndarray, p: np.ndarray, r: float
) -> np.ndarray:
    """V uniform within the tail interval of the outcome (K, success) under p (`couple_attempts`)."""
    q = p * r
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        qk, qk1 = q**K, p * q ** np.maximum(K - 1, 0)
    lo = np.where(K == 0, p, np.where(success, p * qk, qk))
    hi = np.where(K == 0, 1.0, np.where(success, qk, qk1))
    return hi - (hi - lo) * rng.random(K.size)


def _tail_outcome(V: np.ndarray, p: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """The outcome (K, success) under p whose tail interval holds V: K the least k with p q^k < V."""
    q = p * r
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log(V / p) / np.log(q)) + 1.0
    k = np.where(V > p, 0.0, np.where(np.isfinite(k), np.maximum(k, 1.0), 1.0))
    # floating-point guard: move k by one where the closed form lands beside the interval
    k = np.where((k >= 1) & (p * q**k >= V), k + 1.0, k)
    k = np.where((k >= 2) & (p * q ** (k - 1.0) < V), k - 1.0, k)
    K = k.astype(np.int64)
    return K, (K == 0) | (q**K >= V)


def couple_detector(
    rng: np.random.Generator, d: np.ndarray, share_b: np.ndarray, share_m: np.ndarray
) -> np.ndarray:
    """The detector under shares `share_m` of an apprehension credited to `d` under `share_b` (rows): its
    latent uniform is drawn within d's interval of the baseline's cumulative shares and read against the new
    ones, so the new detector has exactly the law Categorical(share_m)."""
    cum_b = np.concatenate([np.zeros((d.size, 1)), np.cumsum(share_b, axis=-1)], axis=-1)
    rows = np.arange(d.size)
    lo, hi = cum_b[rows, d], cum_b[rows, d + 1]
    u = lo + rng.random(d.size) * (hi - lo)
    cum_m = np.cumsum(share_m, axis=-1)
    return np.minimum((u[:, None] >= cum_m).sum(axis=-1), share_m.shape[-1] - 1)


def _rank_within(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rank (0, 1, …) of each element by `key` within its group."""
    order = np.lexsort((key, group))
    rank = np.empty(group.size, dtype=np.int64)
    g = group[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if g.size else np.empty(0, np.int64)
    start = np.repeat(first, np.diff(np.r_[first, g.size]))
    rank[order] = np.arange(group.size) - start
    return rank


def rebuild(
    rng: np.random.Generator,
    cell_ids: np.ndarray,
    J: np.ndarray,
    success: np.ndarray,
    K: np.ndarray,
    by_detector: np.ndarray,
) -> Attempts:
    """Journeys of cells drawn in aggregate, from their exact conditional law given the cells' totals.

    Given J, the successes S and the apprehensions K, the probability of a cell's journeys is
    (pr)^R (1 − p)^S (p(1 − r))^(J−S) with R = K − (J − S) the apprehensions followed by a retry: the J − S
    journeys that gave up are a uniformly random set and R is spread over the J journeys as a uniformly random
    composition (multinomial on Dirichlet(1, …, 1) weights); given the detector totals, the detectors are a
    uniformly random permutation of them over the cell's apprehensions.
    """
    jcell = np.repeat(cell_ids, J[cell_ids])
    n = jcell.size
    gave_up = _rank_within(jcell, rng.random(n)) < (J - success)[jcell]
    weight = np.cumsum(rng.standard_exponential(n))
    start = np.r_[0, np.cumsum(J[cell_ids])][:-1]
    end = start + J[cell_ids]
    R = K - (J - success)
    ball = np.repeat(np.arange(cell_ids.size), R[cell_ids])
    b_start, b_end = start[ball], end[ball]
    lo = np.where(b_start > 0, weight[np.maximum(b_start - 1, 0)], 0.0)
    hi = weight[b_end - 1]
    slot = np.searchsorted(weight, lo + rng.random(ball.size) * (hi - lo), side="right")
    slot = np.clip(slot, b_start, b_end - 1)
    Kj = np.bincount(slot, minlength=n).astype(np.int64) + gave_up
    app_journey = np.repeat(np.arange(n), Kj)
    labels = np.repeat(
        np.tile(np.arange(len(DETECTORS)), cell_ids.size), by_detector[cell_ids].ravel()
    )
    label_cell = np.repeat(cell_ids, K[cell_ids])
    order = np.lexsort((rng.random(labels.size), label_cell))
    return Attempts(
        cell=jcell, K=Kj, success=~gave_up, app_journey=app_journey, app_detector=labels[order]
    )


def couple_journeys(
    rng: np.random.Generator,
    base: Attempts,
    cells: Cells,
    cell_ids: np.ndarray,
    cfg: SimulationConfig,
    tl: Timeline,
    keep: np.ndarray | None = None,
    kept_node: np.ndarray | None = None,
    extra_node: np.ndarray | None = None,
) -> tuple[Attempts, np.ndarray]:
    """The measure's journeys in `cell_ids` from the baseline's there: kept ones (coupled outcomes) then the
    added ones (fresh). Returns them with each one's baseline journey index (−1: added). Record fields are
    made when the baseline has them (surveyed sections).

    Frailty: a baseline journey's outcome is read under the p of its baseline node (``base.node``) and the
    kept journey's under the p of `kept_node` (per baseline journey; default: the same node); the added
    journeys have `extra_node` (default: drawn from the frailty law). `keep` (which baseline journeys are
    kept) is drawn here unless given, drawn by the caller from the same stream.
    """
    r = cfg.retry_probability
    records = base.app_day is not None
    if keep is None:
        keep = rng.random(base.cell.size) < cells.keep[base.cell]
    node_b = base.node if base.node is not None else np.zeros(base.cell.size, np.int64)
    node_k = node_b if kept_node is None else kept_node
    K, success = couple_attempts(
        rng, base.K, base.success, cells.p_b[base.cell, node_b], cells.p_m[base.cell, node_k], r
    )
    # rows kept: min(K, K_b) of a kept journey's baseline rows, a random subset (their fields are i.i.d.)
    rank = _rank_within(base.app_journey, rng.random(base.app_journey.size))
    row_keep = keep[base.app_journey] & (rank < np.minimum(K, base.K)[base.app_journey])
    detector = base.app_detector[row_keep]
    row_cell = base.cell[base.app_journey[row_keep]]
    moved = (cells.share_b[row_cell] != cells.share_m[row_cell]).any(axis=-1)
    detector[moved] = couple_detector(
        rng, detector[moved], cells.share_b[row_cell[moved]], cells.share_m[row_cell[moved]]
    )
    extra_cell = np.repeat(cell_ids, cells.extra[cell_ids])
    if extra_node is None:
        w = cells.frailty_w
        extra_node = (
            _categorical(rng, np.broadcast_to(w, (extra_cell.size, w.size)))
            if w.size > 1
            else np.zeros(extra_cell.size, np.int64)
        )
    K_x, success_x = fresh_attempts(rng, cells.p_m[extra_cell, extra_node], r)

    kept = np.flatnonzero(keep)
    index = np.full(base.cell.size, -1)
    index[kept] = np.arange(kept.size)
    jcell = np.r_[base.cell[kept], extra_cell]
    jK = np.r_[K[kept], K_x]
    n_old = np.r_[np.minimum(K, base.K)[kept], np.zeros(extra_cell.size, np.int64)]
    new_journey = np.repeat(np.arange(jcell.size), jK - n_old)
    new_detector = _categorical(rng, cells.share_m[jcell[new_journey]])
    out = Attempts(
        cell=jcell,
        K=jK,
        success=np.r_[success[kept], success_x],
        app_journey=np.r_[index[base.app_journey[row_keep]], new_journey],
        app_detector=np.r_[detector, new_detector],
        node=np.r_[node_k[kept], extra_node].astype(np.int64),
    )
    origin = np.r_[kept, np.full(extra_cell.size, -1)]
    if records:
        _fill_records(rng, out, base, row_keep, new_journey, origin, cells, cfg, tl)
    return out, origin


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1])[..., None]
    return np.minimum((u >= cum).sum(axis=-1), probs.shape[-1] - 1)


def _fill_records(
    rng: np.random.Generator,
    out: Attempts,
    base: Attempts,
    row_keep: np.ndarray,
    new_journey: np.ndarray,
    origin: np.ndarray,
    cells: Cells,
    cfg: SimulationConfig,
    tl: Timeline,
) -> None:
    """Days, recorded violations, directions and first days: kept rows and journeys keep the baseline's,
    new ones draw them as step 5 does; rows sorted by day within their journey."""
    assert base.app_day is not None and base.app_recorded is not None
    assert base.to_russia is not None and base.first_day is not None
    month, cat = cells.month[out.cell], cells.category[out.cell]
    days = tl.days[month]
    new_day = 1 + np.floor(rng.random(new_journey.size) * days[new_journey]).astype(np.int64)
    rec_p = np.array([[cfg.recorded_probability[c][x] for x in RECORDED] for c in CATEGORIES])
    new_recorded = _categorical(rng, rec_p[cat[new_journey]])
    to_russia_p = np.array([cfg.to_russia_probability[c] for c in CATEGORIES])
    added = origin < 0
    to_russia = np.empty(origin.size, dtype=bool)
    to_russia[~added] = base.to_russia[origin[~added]]
    moy = tl.month_of_year[month[added]] - 1
    to_russia[added] = rng.random(int(added.sum())) < to_russia_p[cat[added], moy]
    app_day = np.r_[base.app_day[row_keep], new_day]
    app_recorded = np.r_[base.app_recorded[row_keep], new_recorded]
    order = np.lexsort((app_day, out.app_journey))
    out.app_journey, out.app_day = out.app_journey[order], app_day[order]
    out.app_detector, out.app_recorded = out.app_detector[order], app_recorded[order]
    first_day = np.empty(origin.size, dtype=np.int64)
    has = out.K > 0
    starts = np.r_[0, np.cumsum(out.K)[:-1]] if out.K.size else np.empty(0, np.int64)
    first_day[has] = out.app_day[starts[has]]
    # no apprehension: the baseline's own day if it had none either, else a new uniform day
    same = ~has & ~added
    same[same] = base.K[origin[same]] == 0
    first_day[same] = base.first_day[origin[same]]
    fresh = ~has & ~same
    first_day[fresh] = 1 + np.floor(rng.random(int(fresh.sum())) * days[fresh]).astype(np.int64)
    out.to_russia, out.first_day = to_russia, first_day


def subset(a: Attempts, sel: np.ndarray) -> Attempts:
    """The journeys `sel` (bool) with their rows, journey indices renumbered."""
    index = np.full(sel.size, -1)
    index[sel] = np.arange(int(sel.sum()))
    rows = sel[a.app_journey]

    def take(x: np.ndarray | None, where: np.ndarray) -> np.ndarray | None:
        return None if x is None else x[where]

    return Attempts(
        cell=a.cell[sel],
        K=a.K[sel],
        success=a.success[sel],
        app_journey=index[a.app_journey[rows]],
        app_detector=a.app_detector[rows],
        to_russia=take(a.to_russia, sel),
        first_day=take(a.first_day, sel),
        app_day=take(a.app_day, rows),
        app_recorded=take(a.app_recorded, rows),
        node=take(a.node, sel),
    )


def concat(a: Attempts, b: Attempts) -> Attempts:
    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.r_[x, y]

    return Attempts(
        cell=np.r_[a.cell, b.cell],
        K=np.r_[a.K, b.K],
        success=np.r_[a.success, b.success],
        app_journey=np.r_[a.app_journey, b.app_journey + a.cell.size],
        app_detector=np.r_[a.app_detector, b.app_detector],
        to_russia=cat(a.to_russia, b.to_russia),
        first_day=cat(a.first_day, b.first_day),
        app_day=cat(a.app_day, b.app_day),
        app_recorded=cat(a.app_recorded, b.app_recorded),
        node=cat(a.node, b.node),
    )


def sum_cells(a: Attempts, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apprehensions, successes and apprehensions by detector per flat cell."""
    K = np.bincount(a.cell, a.K, size).astype(np.int64)
    S = np.bincount(a.cell, a.success.astype(float), size).astype(np.int64)
    d = len(DETECTORS)
    by_d = np.bincount(a.cell[a.app_journey] * d + a.app_detector, None, size * d)
    return K, S, by_d.astype(np.int64).reshape(size, d)
