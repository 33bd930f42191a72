"""The simulator with measures (docs/simulator.md, Measures): the mechanism applied as specified, the laws of the
counts under the measure checked against their analytic form, the baseline under common random numbers."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from estim import simulate as sim
from estim.paths import SYNTHETIC_DIR
from estim.records.schemas import CATEGORIES, DETECTORS, SCHEMAS, SECTIONS
from estim.simulate.coupling import (
    couple_attempts,
    couple_detector,
    fresh_attempts,
    keep_probability,
    rebuild,
    top_up,
)
from estim.simulate.measures import AppliedMeasure, MeasureEffect
from estim.simulate.output import table_csv

SEED, YEARS, START = 11, 3, "2007-01"  # 2006-2008; the measures start in the second year
COUNTS = ("journeys", "apprehensions", "unobserved", "attempts")


def _simulate(*measures: AppliedMeasure, seed: int = SEED) -> sim.Simulation:
    return sim.simulate(seed=seed, config=sim.SimulationConfig(years=YEARS, measures=measures))


def _after(truth, month: str = START):
    return truth["month"].values >= np.datetime64(month)


@pytest.fixture(scope="module")
def base() -> sim.Simulation:
    return _simulate()


@pytest.fixture(scope="module")
def mixed() -> sim.Simulation:
    """Every target at once, in some sections (both surveyed ones among them), with a ramp and displacement."""
    return _simulate(
        AppliedMeasure(
            "mixed",
            START,
            (
                MeasureEffect("journeys", 0.5, ("border_resident", "bypasser")),
                MeasureEffect("guard_hazard", 1.5, ("labour_migrant",)),
                MeasureEffect("informant_hazard", 0.7),
                MeasureEffect("wait", 0.6),
            ),
            ramp_months=4,
            sections=("orenburg", "kurgan", "omsk", "altai_krai"),
            displacement=0.4,
        )
    )


# ---------------------------------------------------------------------------------------------------------
# what must not change


def test_without_measures_the_shipped_data_are_reproduced(tmp_path):
    assert "measures" not in json.loads(sim.SimulationConfig().to_json())
    sim.write_simulation(sim.simulate(seed=sim.DEFAULT_SEED), tmp_path)
    assert sim.compare_folders(tmp_path, SYNTHETIC_DIR) == []


def test_the_baseline_in_the_truth_is_the_simulation_without_measures(base, mixed):
    for name in COUNTS:
        assert (mixed.truth[f"baseline_{name}"].values == base.truth[name].values).all(), name
    assert (mixed.truth["baseline_expected_journeys"] == base.truth["expected_journeys"]).all()


def test_months_before_the_start_equal_the_baseline(base, mixed):
    before = ~_after(mixed.truth)
    for name in (
        *COUNTS,
        "apprehensions_by_detector",
        "expected_journeys",
        "apprehension_probability",
    ):
        assert (mixed.truth[name][:, before].values == base.truth[name][:, before].values).all(), (
            name
        )
        assert (
            mixed.truth[name][:, ~before].values != base.truth[name][:, ~before].values
        ).any(), name
    # records of those months too: apprehension rows (ids and person keys included), totals, checkpoints
    a, b = mixed.records["apprehensions"], base.records["apprehensions"]
    a, b = a[a["date"] < START], b[b["date"] < START]
    assert len(b) > 1000 and a.reset_index(drop=True).equals(b.reset_index(drop=True))
    for name, col in (("apprehension_totals", "month"), ("checkpoint_records", "month")):
        a, b = mixed.records[name], base.records[name]
        early = a[col] < START
        assert a[early].equals(b[early]) and not a[~early].equals(b[~early]), name


def test_a_measure_with_multiplier_one_is_the_baseline(base):
    one = _simulate(
        AppliedMeasure(
            "nothing",
            START,
            tuple(
                MeasureEffect(t, 1.0)
                for t in ("journeys", "guard_hazard", "informant_hazard", "wait")
            ),
            displacement=0.5,
        )
    )
    for name, schema in SCHEMAS.items():
        assert table_csv(one.records[name], schema) == table_csv(base.records[name], schema), name
    for name in base.truth.data_vars:
        assert one.truth[name].equals(base.truth[name]), name
    for name in COUNTS:
        assert (one.truth[f"baseline_{name}"] == one.truth[name]).all(), name


def test_same_seed_same_bytes_and_the_measures_are_described(mixed, tmp_path):
    sim.write_simulation(mixed, tmp_path / "a")
    again = _simulate(*mixed.config.measures)
    sim.write_simulation(again, tmp_path / "b")
    assert sim.compare_folders(tmp_path / "a", tmp_path / "b") == []
    assert "with the measures mixed" in (tmp_path / "a" / "README.md").read_text()
    described = json.loads(mixed.truth.attrs["measures"])
    assert [e["multiplier"] for e in described[0]["effects"]] == [0.5, 1.5, 0.7, 0.6]
    assert "mixed" in json.loads(mixed.truth.attrs["config"])["measures"][0]["name"]
    r = mixed.truth["measure_strength"].sel(measure="mixed").values
    assert list(r[11:16]) == [0.0, 0.25, 0.5, 0.75, 1.0]  # Dec 2006 .. Apr 2007, 4-month ramp


def test_records_and_truth_agree_under_a_measure(mixed):
    t = mixed.truth
    assert (t["attempts"] == t["apprehensions"] + t["unobserved"]).all()
    assert (t["apprehensions"] == t["apprehensions_by_detector"].sum("detector")).all()
    assert (t["journeys"] == t["unobserved"] + t["abandoned"]).all()
    by_d = t["apprehensions_by_detector"]
    surveyed = ["omsk", "orenburg"]
    a = mixed.records["apprehensions"]
    assert len(a) == int(by_d.sel(section=surveyed).sum())
    month = a["date"].str[:7]
    for (sec, m, c, d), n in (
        a.groupby([a["section_id"], month, "category", "detected_by"]).size().items()
    ):
        assert by_d.sel(section=sec, month=np.datetime64(m), category=c, detector=d) == n
    totals = mixed.records["apprehension_totals"]
    assert totals["apprehensions"].sum() == int(by_d.drop_sel(section=surveyed).sum())
    # a person's fixed attributes stay fixed, and keys are distinct per person
    per_person = a.groupby("person_key")[["section_id", "category", "citizenship"]].nunique()
    assert (per_person == 1).all().all()


# ---------------------------------------------------------------------------------------------------------
# the mechanism and the laws under the measure


def test_a_journeys_effect_of_half_halves_residents_journeys(base):
    s = _simulate(
        AppliedMeasure(
            "half", START, (MeasureEffect("journeys", 0.5, ("border_resident",)),), ramp_months=3
        )
    )
    t, b = s.truth, base.truth
    ratio = (t["expected_journeys"] / b["expected_journeys"]).values
    i = CATEGORIES.index("border_resident")
    months = t["month"].values.astype("datetime64[M]")
    r = np.clip(((months - np.datetime64(START, "M")).astype(int) + 1) / 3, 0, 1)
    assert np.allclose(ratio[:, :, i], 1 - 0.5 * r[None, :], rtol=1e-12)
    assert (np.delete(ratio, i, axis=2) == 1).all()
    # realised residents' journeys after the ramp: the negative binomial law with the halved mean
    full = r == 1
    mu = t["expected_journeys"].values[:, full, i]
    J = t["journeys"].values[:, full, i]
    phi = float(t["dispersion"].sel(category="border_resident"))
    var = mu + mu**2 / phi
    assert abs(J.sum() - mu.sum()) < 4 * np.sqrt(var.sum())
    z = (J - mu) / np.sqrt(var)
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and 0.7 < z.var() < 1.35
    assert J.sum() < 0.6 * t["baseline_journeys"].values[:, full, i].sum()


def test_the_two_worlds_are_coupled(base):
    s = _simulate(
        AppliedMeasure("m08", START, (MeasureEffect("journeys", 0.8, ("border_resident",)),))
    )
    t = s.truth.sel(category="border_resident").isel(month=_after(s.truth))

    def deviation(prefix: str):
        return (t[f"{prefix}journeys"] - t[f"{prefix}expected_journeys"]).values.ravel()

    assert np.corrcoef(deviation(""), deviation("baseline_"))[0, 1] > 0.9
    # an independent draw (another seed) is not: the correlation comes from the coupling
    other = sim.simulate(seed=SEED + 1, config=sim.SimulationConfig(years=YEARS)).truth
    o = other.sel(category="border_resident").isel(month=_after(other))
    indep = (o["journeys"] - o["expected_journeys"]).values.ravel()
    assert abs(np.corrcoef(indep, deviation("baseline_"))[0, 1]) < 0.3
    # thinning only removes journeys
    assert (t["journeys"] <= t["baseline_journeys"]).all()


def test_displacement_moves_prevented_journeys_to_the_neighbours(base):
    m, d = 0.6, 0.5
    everywhere = _simulate(
        AppliedMeasure(
            "all", START, (MeasureEffect("journeys", m, ("border_resident",)),), displacement=d
        )
    ).truth
    after = _after(everywhere)
    total = (
        everywhere["expected_journeys"].sel(category="border_resident").sum("section").values[after]
    )
    baseline = (
        base.truth["expected_journeys"].sel(category="border_resident").sum("section").values[after]
    )
    assert np.allclose(total / baseline, 1 - (1 - d) * (1 - m), rtol=1e-12)

    one = _simulate(
        AppliedMeasure(
            "tyumen",
            START,
            (MeasureEffect("journeys", m, ("border_resident",)),),
            sections=("tyumen",),
            displacement=d,
        )
    ).truth
    mu = one["expected_journeys"].sel(category="border_resident").values[:, after]
    mu_b = base.truth["expected_journeys"].sel(category="border_resident").values[:, after]
    idx = {s: i for i, s in enumerate(SECTIONS)}
    prevented = (1 - m) * mu_b[idx["tyumen"]]
    for n in ("kurgan", "omsk"):
        assert np.allclose(mu[idx[n]] - mu_b[idx[n]], d * prevented / 2, rtol=1e-12)
    others = [i for s, i in idx.items() if s not in ("tyumen", "kurgan", "omsk")]
    assert (mu[others] == mu_b[others]).all()
    # realised: the neighbours' journeys are topped up (Omsk's people included), never thinned
    J = one["journeys"].sel(category="border_resident").values[:, after]
    J_b = one["baseline_journeys"].sel(category="border_resident").values[:, after]
    gain = J[[idx["kurgan"], idx["omsk"]]] - J_b[[idx["kurgan"], idx["omsk"]]]
    assert (gain >= 0).all() and gain.sum() > 0


def test_a_wait_effect_scales_the_land_waits_of_treated_sections_after_the_start(base):
    m = 0.6
    s = _simulate(
        AppliedMeasure("wait", START, (MeasureEffect("wait", m),), sections=("orenburg", "omsk"))
    )
    cp = s.records["checkpoint_records"].merge(s.records["checkpoints"], on="checkpoint_id")
    w = cp["mean_wait_minutes"].to_numpy()
    w_b = base.records["checkpoint_records"]["mean_wait_minutes"].to_numpy()
    treated = (cp["section_id"].isin(["orenburg", "omsk"]) & (cp["type"] != "air")).to_numpy()
    after = (cp["month"] >= START).to_numpy()
    assert np.all(np.abs(w[treated & after] - m * w_b[treated & after]) <= 0.05 * (1 + m) + 1e-9)
    assert (w[~(treated & after)] == w_b[~(treated & after)]).all()
    share, share_b = s.truth["bypass_share"], base.truth["bypass_share"]
    t_after = _after(s.truth)
    for sec in SECTIONS:
        a, b = share.sel(section=sec).values, share_b.sel(section=sec).values
        if sec in ("orenburg", "omsk"):
            assert (a[t_after] < b[t_after]).all() and (a[~t_after] == b[~t_after]).all()
        else:
            assert (a == b).all()


def test_a_guard_effect_raises_p_and_the_apprehensions_follow_their_law(base):
    s = _simulate(
        AppliedMeasure("guards", START, (MeasureEffect("guard_hazard", 1.6, ("labour_migrant",)),))
    )
    t, b = s.truth, base.truth
    after = _after(t)
    h, h_b = t["detection_hazard"].values, b["detection_hazard"].values
    i = CATEGORIES.index("labour_migrant")
    guards = [DETECTORS.index("patrol"), DETECTORS.index("technical")]
    assert np.allclose(h[:, after, i][..., guards], 1.6 * h_b[:, after, i][..., guards], rtol=1e-12)
    assert (
        h[:, after, i, DETECTORS.index("informant")]
        == h_b[:, after, i, DETECTORS.index("informant")]
    ).all()
    p, p_b = t["apprehension_probability"].values, b["apprehension_probability"].values
    assert (p[:, after, i] > p_b[:, after, i]).all() and (
        np.delete(p, i, axis=2) == np.delete(p_b, i, axis=2)
    ).all()
    # r = 1: given J, E K = J p/(1 − p), Var K = J p/(1 − p)²; in the surveyed and in the aggregate sections
    J, K = t["journeys"].values[:, after, i], t["apprehensions"].values[:, after, i]
    q = p[:, after, i]
    surveyed = np.isin(SECTIONS, ["omsk", "orenburg"])
    for part in (surveyed, ~surveyed):
        expected = (J * q / (1 - q))[part].sum()
        assert abs(K[part].sum() - expected) < 4 * np.sqrt((J * q / (1 - q) ** 2)[part].sum())
    # coupled: the same journeys, never fewer apprehensions (the quantile coupling is monotone)
    assert (J == t["baseline_journeys"].values[:, after, i]).all()
    assert (K >= t["baseline_apprehensions"].values[:, after, i]).all()


# ---------------------------------------------------------------------------------------------------------
# the coupled draws against their analytic laws


def _chi2_p(observed: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 5
    chi = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    return float(stats.chi2.sf(chi, keep.sum() - 1))


@pytest.mark.parametrize(
    ("mu_b", "mu_m", "phi"), [(20.0, 12.0, 5.0), (20.0, 31.0, 5.0), (3.0, 7.0, 2.0)]
)
def test_thinning_and_top_up_give_the_negative_binomial_law(mu_b, mu_m, phi):
    rng = np.random.default_rng(1)
    n = 200_000
    J_b = rng.negative_binomial(phi, phi / (phi + mu_b), n)
    mu, mm = np.full(n, mu_b), np.full(n, mu_m)
    J_m = rng.binomial(J_b, keep_probability(mu, mm)) + top_up(rng, J_b, mu, mm, np.full(n, phi))
    law = stats.nbinom(phi, phi / (phi + mu_m))
    k = np.arange(100)
    assert (
        _chi2_p(
            np.bincount(np.minimum(J_m, 99), minlength=100), n * np.r_[law.pmf(k[:-1]), law.sf(98)]
        )
        > 1e-3
    )
    assert np.corrcoef(J_b, J_m)[0, 1] > 0.85


def _outcome_pmf(p: float, r: float, kmax: int = 8) -> np.ndarray:
    """P(K = k, gave up), P(K = k, crossed) for k < kmax, then the rest: (pr)^(k−1) p (1−r) and (pr)^k (1−p)."""
    q, out = p * r, []
    for k in range(kmax):
        out += [q ** (k - 1) * p * (1 - r) if k else 0.0, q**k * (1 - p)]
    return np.r_[out, 1 - sum(out)]


def _outcome_counts(K: np.ndarray, success: np.ndarray, kmax: int = 8) -> np.ndarray:
    cell = np.where(K < kmax, 2 * K + success, 2 * kmax)
    return np.bincount(cell, minlength=2 * kmax + 1)


@pytest.mark.parametrize("r", [1.0, 0.6])
@pytest.mark.parametrize(("p_b", "p_m"), [(0.5, 0.3), (0.3, 0.55)])
def test_coupled_attempts_have_exactly_the_law_under_the_new_p(r, p_b, p_m):
    rng = np.random.default_rng(2)
    n = 200_000
    K_b, S_b = fresh_attempts(rng, np.full(n, p_b), r)
    assert (
        _chi2_p(_outcome_counts(K_b, S_b), n * _outcome_pmf(p_b, r)) > 1e-3
    )  # the reference draw itself
    K_m, S_m = couple_attempts(rng, K_b, S_b, np.full(n, p_b), np.full(n, p_m), r)
    assert _chi2_p(_outcome_counts(K_m, S_m), n * _outcome_pmf(p_m, r)) > 1e-3
    assert (K_m <= K_b).all() if p_m < p_b else (K_m >= K_b).all()
    assert np.corrcoef(K_b, K_m)[0, 1] > 0.8
    same = couple_attempts(rng, K_b, S_b, np.full(n, p_b), np.full(n, p_b), r)
    assert (same[0] == K_b).all() and (same[1] == S_b).all()


def test_coupled_detectors_follow_the_new_shares():
    rng = np.random.default_rng(3)
    n = 100_000
    old, new = np.array([0.6, 0.25, 0.15]), np.array([0.5, 0.2, 0.3])
    d = rng.choice(3, size=n, p=old)
    moved = couple_detector(rng, d, np.tile(old, (n, 1)), np.tile(new, (n, 1)))
    assert _chi2_p(np.bincount(moved, minlength=3), n * new) > 1e-3
    assert (moved[d == 2] == 2).all()  # the informant's share grew: its apprehensions stay its own


@pytest.mark.parametrize("r", [1.0, 0.5])
def test_journeys_rebuilt_from_totals_have_the_per_journey_law(r):
    """Draw journeys one by one, keep only the cells' totals, rebuild: the rebuilt journeys must have the
    per-journey law again (the rebuild samples the exact conditional law given the totals)."""
    rng = np.random.default_rng(4)
    p, n_cells = 0.45, 4000
    J = rng.integers(0, 12, n_cells)
    cell = np.repeat(np.arange(n_cells), J)
    K, S = fresh_attempts(rng, np.full(cell.size, p), r)
    K_tot = np.bincount(cell, K, n_cells).astype(np.int64)
    S_tot = np.bincount(cell, S, n_cells).astype(np.int64)
    det = rng.multinomial(K_tot, [0.6, 0.25, 0.15])
    out = rebuild(rng, np.arange(n_cells), J, S_tot, K_tot, det)
    assert (np.bincount(out.cell, out.K, n_cells) == K_tot).all()
    assert (np.bincount(out.cell, out.success, n_cells) == S_tot).all()
    assert (
        np.bincount(out.cell[out.app_journey] * 3 + out.app_detector, None, 3 * n_cells)
        == det.ravel()
    ).all()
    assert _chi2_p(_outcome_counts(out.K, out.success), cell.size * _outcome_pmf(p, r)) > 1e-3


# ---------------------------------------------------------------------------------------------------------
# command line


def _cli():
    from estim.cli import cli

    return cli


@pytest.mark.skipif(
    importlib.util.find_spec("estim.measures.spec") is None,
    reason="estim.measures.spec not written yet",
)
def test_cli_simulates_a_measure_and_rejects_bad_input(tmp_path):
    runner = CliRunner()
    args = ["simulate", "--quiet", "--years", "2", "--out", str(tmp_path / "sim")]
    r = runner.invoke(
        _cli(),
        [*args, "--measure", "permits", "--measure-start", "2007-01", "--effect", "take_up=0.5"],
    )
    assert r.exit_code == 0, r.output
    assert (
        "measure permits from 2007-01" in r.output
        and "journeys × 0.5 (border_resident)" in r.output
    )
    import xarray as xr

    with xr.open_dataset(tmp_path / "sim" / "truth.nc") as truth:
        assert "baseline_unobserved" in truth
        effects = json.loads(truth.attrs["measures"])[0]["effects"]
        assert {
            "target": "journeys",
            "multiplier": 0.5,
            "categories": ["border_resident"],
        } in effects
    for bad, message in (
        (["--measure", "no_such_measure"], "unknown measure"),
        (["--measure", "permits", "--measure-start", "2007-13"], "--measure-start"),
        (["--measure", "permits", "--effect", "no_such_effect=0.5"], "no_such_effect"),
        (["--measure", "permits", "--effect", "take_up"], "NAME=VALUE"),
        (["--effect", "take_up=0.5"], "need a --measure"),
    ):
        r = runner.invoke(_cli(), [*args, *bad])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (
            bad,
            r.output,
        )


def test_cli_simulates_people_who_give_up_or_differ_and_rejects_bad_values(tmp_path):
    import xarray as xr

    runner = CliRunner()
    args = ["simulate", "--quiet", "--years", "1", "--out", str(tmp_path / "sim")]
    r = runner.invoke(_cli(), [*args, "--retry", "0.7", "--frailty", "0.5"])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(tmp_path / "sim" / "truth.nc") as truth:
        assert float(truth["retry_probability"]) == 0.7
        assert float(truth["apprehension_frailty_sd"]) == 0.5
    for bad, message in (
        (["--retry", "1.5"], "retry_probability"),
        (["--frailty", "-1"], "frailty"),
    ):
        r = runner.invoke(_cli(), [*args, *bad])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
