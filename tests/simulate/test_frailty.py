"""Person-level frailty in the apprehension hazard (`apprehension_frailty_sd`, docs/simulator.md step 4): the
finite law on Gauss–Hermite nodes, the journey-by-journey and the aggregate draws against its closed forms,
a person's frailty kept over their journeys, and the world with measures under a frailty."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from estim import simulate as sim
from estim.errors import EstimInputError
from estim.records.schemas import CATEGORIES, DETECTORS, SECTIONS
from estim.simulate import process as P
from estim.simulate.crossings import p_of
from estim.simulate.frailty import FRAILTY_NODES, frailty_law, frailty_p
from estim.simulate.measures import AppliedMeasure, MeasureEffect
from estim.simulate.perturb import perturbed_config

OMSK, LABOUR = SECTIONS.index("omsk"), CATEGORIES.index("labour_migrant")
SHARES = np.array([0.6, 0.25, 0.15])  # detector shares of the hazard


# ---------------------------------------------------------------------------------------------------------
# the law


@pytest.mark.parametrize("sd", [0.05, 0.3, 0.5, 1.0])
def test_frailty_law_is_a_distribution_with_mean_one_and_the_stated_log_moments(sd):
    z, w = frailty_law(sd)
    assert z.size == w.size == FRAILTY_NODES == 5 and (w > 0).all() and (z > 0).all()
    assert abs(w.sum() - 1) < 1e-12
    # E Z = 1: Gauss–Hermite's error on the exponential grows with σ (3e-8 at 0.5, 3e-5 at 1)
    assert abs((w * z).sum() - 1) < (1e-7 if sd <= 0.5 else 1e-4)
    # Gauss–Hermite is exact for low-degree polynomials of log Z: its mean and variance are the normal's
    log_z = np.log(z)
    assert (w * log_z).sum() == pytest.approx(-(sd**2) / 2, abs=1e-12)
    assert (w * (log_z + sd**2 / 2) ** 2).sum() == pytest.approx(sd**2, rel=1e-10)


def test_no_frailty_is_one_node_and_leaves_p_as_it_is():
    z, w = frailty_law(0.0)
    assert z.tolist() == [1.0] and w.tolist() == [1.0]
    p = np.array([[0.2, 0.45], [0.7, 0.0]])
    assert np.array_equal(frailty_p(p, z)[..., 0], p)  # bit for bit: no frailty draws nothing new
    # and with a frailty: p_q = 1 − (1 − p)^z_q
    z, _ = frailty_law(0.4)
    assert np.allclose(frailty_p(p, z), 1 - (1 - p[..., None]) ** z, rtol=1e-12, atol=0)


def test_config_checks_the_frailty():
    with pytest.raises(ValueError, match="apprehension_frailty_sd"):
        sim.SimulationConfig(apprehension_frailty_sd=-0.1)
    with pytest.raises(ValueError, match="apprehension_frailty_sd"):
        sim.SimulationConfig(apprehension_frailty_sd=float("nan"))
    with pytest.raises(ValueError, match="sd"):
        frailty_law(-1.0)
    # the recovery studies' worlds have none (the misspecification study adds it)
    assert all(perturbed_config(s).apprehension_frailty_sd == 0.0 for s in range(3))
    # too frail for r = 1: the frailest people's journeys would not end; refused, naming the parameter (at
    # σ = 1.2 the 5 nodes still keep E Z = 1 to 1e-4: the hazards, not the law, refuse it)
    with pytest.raises(EstimInputError, match="apprehension_frailty_sd"):
        sim.simulate(seed=1, config=sim.SimulationConfig(years=1, apprehension_frailty_sd=1.2))


@pytest.mark.parametrize("sd", [1.6, 2.0, 5.0, 10.0, 50.0, 1e6])
def test_config_refuses_a_frailty_its_five_nodes_cannot_describe(sd):
    # reference: the log-normal law asked for has E Z = exp(−σ²/2 + σ²/2) = 1 exactly; its 5-node
    # discretisation drifts from it as σ grows (E Z = 0.068 at σ = 5; at σ = 10 the largest node is 5e-10, and
    # at σ ≥ 5 the hazard check no longer refused it: a border with no apprehension at all, exit 0)
    z, w = frailty_law(sd)
    assert abs(float(np.dot(z, w)) - 1.0) > 1e-3
    with pytest.raises(ValueError, match=r"apprehension_frailty_sd: .* is too large: .* E Z = "):
        sim.SimulationConfig(apprehension_frailty_sd=sd)


@pytest.mark.parametrize("sd", [0.0, 0.5, 1.0, 1.45])
def test_config_accepts_a_frailty_whose_nodes_keep_the_mean(sd):
    z, w = frailty_law(sd)
    assert abs(float(np.dot(z, w)) - 1.0) <= 1e-3  # the log-normal's E Z = 1, within the tolerance
    assert sim.SimulationConfig(apprehension_frailty_sd=sd).apprehension_frailty_sd == sd


# ---------------------------------------------------------------------------------------------------------
# the two paths against the closed forms


def _journeys(J: np.ndarray, p: float) -> P.Journeys:
    """Journeys of a given count per cell, every cell with apprehension probability `p`."""
    hazard = np.broadcast_to(-np.log1p(-p) * SHARES, (*J.shape, len(DETECTORS))).copy()
    return P.Journeys(
        expected=J.astype(float),
        journeys=J,
        bypass_share=np.zeros(J.shape[:2]),
        hazard=hazard,
        p=p_of(hazard),
    )


def _conditional_k(p: float, r: float, sd: float, kmax: int) -> np.ndarray:
    """P(K = k | K ≥ 1), k = 1..kmax−1, then P(K ≥ kmax | K ≥ 1): Σ_q w_q p_q (p_q r)^(k−1) (1 − p_q r) / Σ w_q p_q."""
    z, w = frailty_law(sd)
    pq = frailty_p(np.array(p), z)
    k = np.arange(1, kmax)[:, None]
    head = (w * pq * (pq * r) ** (k - 1) * (1 - pq * r)).sum(axis=1)
    tail = (w * pq * (pq * r) ** (kmax - 1)).sum()
    return np.r_[head, tail] / (w * pq).sum()


def _chi2_p(observed: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 5
    chi = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    return float(stats.chi2.sf(chi, keep.sum() - 1))


@pytest.mark.parametrize(("sd", "r"), [(0.5, 1.0), (0.4, 0.6)])
def test_journey_by_journey_repeat_counts_have_the_mixture_law(sd, r):
    """One cell, 150,000 journeys of new people: among the apprehended, K has the mixture law
    Σ_q w_q p_q (p_q r)^(k−1) (1 − p_q r) / Σ w_q p_q, and not the geometric law of σ = 0 (heavier tail)."""
    cfg = sim.SimulationConfig(years=1, apprehension_frailty_sd=sd, retry_probability=r)
    cfg = dataclasses.replace(cfg, return_probability=dict.fromkeys(CATEGORIES, 0.0))
    tl = P.Timeline.make(cfg.start_month, cfg.years)
    J = np.zeros((len(SECTIONS), tl.months.size, len(CATEGORIES)), dtype=np.int64)
    J[OMSK, 0, LABOUR] = 150_000
    p = 0.4
    people = P.simulate_people(3, cfg, tl, _journeys(J, p), [OMSK], False)
    K = people.journey_apprehensions
    z, w = frailty_law(sd)
    # each person drew their node from the frailty law
    assert _chi2_p(np.bincount(people.person_frailty, minlength=z.size), K.size * w) > 1e-3
    kmax = 12
    observed = np.bincount(np.minimum(K[K > 0], kmax), minlength=kmax + 1)[1:]
    n = int((K > 0).sum())
    assert n / K.size == pytest.approx(
        (w * frailty_p(np.array(p), z)).sum(), abs=4 * 0.5 / np.sqrt(K.size)
    )
    assert _chi2_p(observed, n * _conditional_k(p, r, sd, kmax)) > 1e-3
    assert _chi2_p(observed, n * _conditional_k(p, r, 0.0, kmax)) < 1e-6
    # the heavier tail: more people apprehended four times or more than under one p
    assert observed[3:].sum() > 1.2 * n * _conditional_k(p, r, 0.0, kmax)[3:].sum()


def _k_moments(p: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of a journey's apprehensions K under p and r: K = (1 − S) + R with S ~ Bernoulli(s),
    s = (1 − p)/(1 − pr), independent of the geometric retries R (mean pr/(1 − pr), variance pr/(1 − pr)²)."""
    s, q = (1 - p) / (1 - p * r), p * r
    return p / (1 - q), s * (1 - s) + q / (1 - q) ** 2


def test_k_moments_are_those_of_the_law_of_step_4():
    k = np.arange(3000)
    for p, r in ((0.45, 1.0), (0.3, 0.6)):
        q = p * r
        law = np.where(k == 0, 1 - p, q ** np.maximum(k - 1, 0) * p * (1 - q))  # P(K = k)
        mean, var = _k_moments(np.array(p), r)
        assert (k * law).sum() == pytest.approx(mean, rel=1e-12)
        assert (k**2 * law).sum() - mean**2 == pytest.approx(var, rel=1e-10)


@pytest.mark.parametrize(("sd", "r"), [(0.4, 1.0), (0.6, 0.5)])
def test_aggregate_draws_have_the_mixture_law(sd, r):
    """Cells drawn in aggregate: journeys split over the nodes as w, mean K per journey
    Σ_q w_q p_q/(1 − p_q r) (within 4 standard errors of the mixture's variance), totals consistent."""
    cfg = sim.SimulationConfig(years=1, apprehension_frailty_sd=sd, retry_probability=r)
    J = np.full((1, 4000, 1), 50, dtype=np.int64)
    p = 0.45
    out = P.simulate_outcomes_aggregate(9, cfg, _journeys(J, p))
    z, w = frailty_law(sd)
    nodes = out.by_node
    assert nodes is not None
    assert (nodes.journeys.sum(axis=-1) == J).all()
    assert (nodes.apprehensions.sum(axis=-1) == out.apprehensions).all()
    assert (nodes.by_detector.sum(axis=(-2, -1)) == out.apprehensions).all()
    assert _chi2_p(nodes.journeys.sum(axis=(0, 1, 2)), J.sum() * w) > 1e-3
    pq = frailty_p(np.array(p), z)
    mean_q, var_q = _k_moments(pq, r)  # mean_q = p_q/(1 − p_q r)
    mean = (w * mean_q).sum()
    var = (w * (var_q + mean_q**2)).sum() - mean**2
    n = J.sum()
    assert abs(out.apprehensions.sum() / n - mean) < 4 * np.sqrt(var / n), (
        out.apprehensions.sum() / n,
        mean,
    )
    # σ = 0 would be far off (the frailty raises the mean when r = 1, lowers it here when r = 0.5)
    mean0 = _k_moments(np.array(p), r)[0]
    assert abs(mean - mean0) > 10 * np.sqrt(var / n)
    # the successes: Binomial(J_q, (1 − p_q)/(1 − p_q r)) per node
    success = (w * (1 - pq) / (1 - pq * r)).sum()
    if r == 1.0:
        assert (out.unobserved == J).all()
    else:
        assert abs(out.unobserved.sum() / n - success) < 4 * np.sqrt(success * (1 - success) / n)


def test_a_person_keeps_their_frailty_over_their_journeys():
    """Pairs of journeys of the same person: P(both apprehended) is Σ_q w_q p_q(1) p_q(2) (one node for the
    person), not Σ w p_q(1) · Σ w p_q(2) (a node drawn per journey)."""
    sd = 0.5
    s = sim.simulate(seed=7, config=sim.SimulationConfig(apprehension_frailty_sd=sd))
    assert float(s.truth["apprehension_frailty_sd"]) == sd
    cfg = s.config
    tl = P.Timeline.make(cfg.start_month, cfg.years)
    people = _people(7, cfg, tl)
    p_cell = s.truth["apprehension_probability"].values
    js = people.person_section[people.journey_person]
    jc = people.person_category[people.journey_person]
    df = pd.DataFrame(
        {
            "person": people.journey_person,
            "K": people.journey_apprehensions,
            "p": p_cell[js, people.journey_month, jc],
        }
    )
    df["n"] = df.groupby("person").cumcount()
    pairs = df[df["n"] == 0].merge(df[df["n"] == 1], on="person", suffixes=("1", "2"))
    assert len(pairs) > 10_000
    z, w = frailty_law(sd)
    p1, p2 = frailty_p(pairs["p1"].to_numpy(), z), frailty_p(pairs["p2"].to_numpy(), z)
    persistent = (w * p1 * p2).sum(axis=1)
    fresh = (w * p1).sum(axis=1) * (w * p2).sum(axis=1)
    both = int(((pairs["K1"] > 0) & (pairs["K2"] > 0)).sum())
    sd_both = np.sqrt((persistent * (1 - persistent)).sum())
    assert abs(both - persistent.sum()) < 4 * sd_both
    assert both - fresh.sum() > 3 * sd_both


def _people(seed: int, cfg: sim.SimulationConfig, tl: P.Timeline) -> P.People:
    from estim.paths import SECTIONS_CSV
    from estim.simulate.config import POLICY_EVENTS

    raw, sections = P.read_sections(SECTIONS_CSV)
    surveyed = [i for i, s in enumerate(SECTIONS) if sections.at[s, "surveyed"]]
    checkpoints = P.build_checkpoints(sections, raw, cfg.citizens_only_checkpoints)
    in_force = {ev: tl.in_force(cfg.policy_start[ev]) for ev in POLICY_EVENTS}
    flows = P.simulate_flows(seed, cfg, tl, checkpoints, in_force)
    jr = P.simulate_journeys(seed, cfg, tl, sections, flows, in_force)
    return P.simulate_people(seed, cfg, tl, jr, surveyed, False)


# ---------------------------------------------------------------------------------------------------------
# the world with measures under a frailty

SEED, YEARS, START, SD = 11, 3, "2007-01", 0.4


def _measured(*measures: AppliedMeasure) -> sim.Simulation:
    return sim.simulate(
        seed=SEED,
        config=sim.SimulationConfig(years=YEARS, apprehension_frailty_sd=SD, measures=measures),
    )


@pytest.fixture(scope="module")
def frail_base() -> sim.Simulation:
    return _measured()


def test_a_world_with_measures_keeps_the_frail_baseline_and_its_accounting(frail_base):
    mixed = AppliedMeasure(
        "mixed",
        START,
        (
            MeasureEffect("journeys", 0.5, ("border_resident", "bypasser")),
            MeasureEffect("guard_hazard", 1.5, ("labour_migrant",)),
            MeasureEffect("informant_hazard", 0.7),
        ),
        ramp_months=4,
        sections=("orenburg", "kurgan", "omsk", "altai_krai"),
        displacement=0.4,
    )
    s = _measured(mixed)
    t, b = s.truth, frail_base.truth
    for name in ("journeys", "apprehensions", "unobserved", "attempts"):
        assert (t[f"baseline_{name}"].values == b[name].values).all(), name
    assert (t["attempts"] == t["apprehensions"] + t["unobserved"]).all()
    assert (t["apprehensions"] == t["apprehensions_by_detector"].sum("detector")).all()
    a = s.records["apprehensions"]
    assert len(a) == int(t["apprehensions_by_detector"].sel(section=["omsk", "orenburg"]).sum())
    before = a[a["date"] < START].reset_index(drop=True)
    base_before = frail_base.records["apprehensions"]
    assert before.equals(base_before[base_before["date"] < START].reset_index(drop=True))
    again = _measured(mixed)
    for name, frame in s.records.items():
        assert frame.equals(again.records[name]), name


def test_under_a_guard_measure_apprehensions_follow_the_mixture_law(frail_base):
    """Given J, E K = J Σ_q w_q p_q/(1 − p_q) under the measure's p (r = 1), in the surveyed sections (coupled
    journey by journey under each person's node) and in the aggregate ones (rebuilt per node)."""
    s = _measured(AppliedMeasure("guards", START, (MeasureEffect("guard_hazard", 1.6),)))
    t = s.truth
    after = t["month"].values >= np.datetime64(START)
    J = t["journeys"].values[:, after]
    K = t["apprehensions"].values[:, after]
    p = t["apprehension_probability"].values[:, after]
    assert (p > frail_base.truth["apprehension_probability"].values[:, after]).all()
    z, w = frailty_law(SD)
    mean_q, var_q = _k_moments(frailty_p(p, z), 1.0)  # (section, month, category, node)
    mean = (w * mean_q).sum(axis=-1)
    var = (w * (var_q + mean_q**2)).sum(axis=-1) - mean**2
    mean0 = p / (1 - p)
    surveyed = np.isin(SECTIONS, ["omsk", "orenburg"])
    for part in (surveyed, ~surveyed):
        sd = np.sqrt((J * var)[part].sum())
        assert abs(K[part].sum() - (J * mean)[part].sum()) < 4 * sd
        assert (J * (mean - mean0))[part].sum() > 3 * sd  # σ = 0 would be off
    assert (J == t["baseline_journeys"].values[:, after]).all()
    assert (K >= 0).all() and K.sum() > t["baseline_apprehensions"].values[:, after].sum()
