"""Parameter recovery: the simulation machinery (fast) and the coverage of the 90 % interval for N over 100
simulated datasets per single-register and closed-population family (slow: `pytest -m slow
tests/test_recovery.py`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytest
import scipy.integrate
import scipy.stats
import xarray as xr
from pytensor.compile.mode import Mode

from estim.families import FAMILIES
from estim.families import closed as closed_families
from estim.families.closed import all_histories, history_data
from estim.families.single_register import OBSERVED
from estim.studies import recovery

FAST = Mode(linker="py", optimizer="fast_compile")


@pytest.mark.parametrize("family", recovery.FAMILY_NAMES)
def test_simulated_data_are_deterministic_in_the_seed(family):
    a, n_a = recovery.simulate_dataset(family, 7)
    b, n_b = recovery.simulate_dataset(family, 7)
    c, _ = recovery.simulate_dataset(family, 8)
    pd.testing.assert_frame_equal(a, b)
    assert n_a == n_b == recovery.DEFAULT_POPULATION_SIZE
    assert not a.equals(c)
    assert (a["k"] >= 1).all() and (a["n"] > 0).all()
    assert a["n"].sum() < n_a


def test_generative_models_have_the_family_moments():
    rng = np.random.default_rng(1)
    size = 400_000
    lam, alpha, omega = 0.5, 1.0, 0.2
    pois = recovery.simulate_counts("ztpoisson", rng, size, {"lambda": lam})
    geo = recovery.simulate_counts("ztgeometric", rng, size, {"lambda": lam})
    nb = recovery.simulate_counts("ztnegbin", rng, size, {"lambda": lam, "alpha": alpha})
    oi = recovery.simulate_counts("oiztpoisson", rng, size, {"lambda": lam, "omega": omega})
    assert pois.mean() == pytest.approx(lam, rel=0.01)
    assert np.mean(pois == 0) == pytest.approx(np.exp(-lam), rel=0.01)
    assert geo.mean() == pytest.approx(lam, rel=0.01)
    assert np.mean(geo == 0) == pytest.approx(1 / (1 + lam), rel=0.01)
    assert nb.mean() == pytest.approx(lam, rel=0.015)
    assert nb.var() == pytest.approx(lam * (1 + alpha * lam), rel=0.03)
    # inflate, then truncate: P*(0) = (1 − ω) p0 and P*(1) = ω + (1 − ω) P(1)
    assert np.mean(oi == 0) == pytest.approx((1 - omega) * np.exp(-lam), rel=0.01)
    assert np.mean(oi == 1) == pytest.approx(omega + (1 - omega) * lam * np.exp(-lam), rel=0.01)


def _logp(model, point):
    return float(model.compile_logp(mode=FAST)(point))


@pytest.mark.parametrize("family", recovery.FAMILY_NAMES)
def test_zero_padding_and_the_shared_frequency_leave_the_likelihood_unchanged(family):
    table, _ = recovery.simulate_dataset(family, 3)
    other, _ = recovery.simulate_dataset(family, 4)
    fam = FAMILIES[family]
    n_k = int(max(table["k"].max(), other["k"].max())) + 5
    plain = fam.build(recovery.padded_frequency_data(table, int(table["k"].max()), []))
    padded_data = recovery.padded_frequency_data(table, n_k, [])
    assert padded_data.sizes["k"] == n_k
    assert padded_data[OBSERVED].values[:, int(table["k"].max()) :].sum() == 0
    padded = fam.build(padded_data)
    point = plain.initial_point()
    point = {k: v + 0.3 for k, v in point.items()}
    assert _logp(padded, point) == pytest.approx(_logp(plain, point), rel=1e-12)
    # the study's model: frequency as a shared variable, swapped per dataset
    other_data = recovery.padded_frequency_data(other, n_k, [])
    shared = recovery._with_shared_observed(padded, padded_data[OBSERVED].values)
    assert _logp(shared, point) == pytest.approx(_logp(padded, point), rel=1e-12)
    var = next(
        v
        for v in pytensor.graph.traversal.ancestors([shared.logp()])
        if getattr(v, "name", None) == recovery._SHARED_NAME
    )
    var.set_value(other_data[OBSERVED].values.astype(var.dtype))
    assert _logp(shared, point) == pytest.approx(_logp(fam.build(other_data), point), rel=1e-12)


def test_recovery_study_machinery(tmp_path):
    partial = tmp_path / "study.csv"
    df = recovery.recovery_study(
        "ztpoisson", n_datasets=3, seed=11, draws=200, tune=200, partial_out=str(partial)
    )
    # the rows written as the study went are the rows returned
    pd.testing.assert_frame_equal(
        pd.read_csv(partial, keep_default_na=False), df, check_dtype=False, check_like=True
    )
    assert list(df.columns) == recovery.COLUMNS
    assert len(df) == 3
    assert df["seed"].tolist() == [11, 12, 13]
    assert (df["n_true"] == recovery.DEFAULT_POPULATION_SIZE).all()
    assert (df["error"] == "").all()
    assert (df["n_q05"] <= df["n_median"]).all() and (df["n_median"] <= df["n_q95"]).all()
    assert (df["n_q05"] >= df["n_observed"]).all()
    # each row's data are the seed's simulated data
    for _, row in df.iterrows():
        table, _ = recovery.simulate_dataset("ztpoisson", int(row["seed"]))
        assert row["n_observed"] == table["n"].sum()
    s = recovery.coverage_summary(df)
    assert s["datasets"] == 3
    assert 0 <= s["coverage"] <= 1
    lo, hi = s["coverage_ci"]
    assert lo <= s["coverage"] <= hi
    assert s["median_abs_rel_error"] < 0.3
    assert df.attrs["true_params"] == {"lambda": 0.5}


def test_recovery_study_with_a_covariate():
    df = recovery.recovery_study(
        "ztpoisson", n_datasets=2, seed=5, covariate_effect=0.7, draws=200, tune=200
    )
    assert (df["error"] == "").all()
    assert (df["n_q05"] < df["n_q95"]).all()


def test_unknown_true_parameter_is_an_error():
    with pytest.raises(ValueError, match="alpha"):
        recovery.true_parameters("ztpoisson", {"alpha": 1.0})


# --------------------------------------------------------------------------------------------------------------
# closed-population families


@pytest.mark.parametrize("family", recovery.CLOSED_FAMILY_NAMES)
def test_simulated_histories_are_deterministic_in_the_seed(family):
    a, n_a = recovery.simulate_dataset(family, 7)
    b, n_b = recovery.simulate_dataset(family, 7)
    c, _ = recovery.simulate_dataset(family, 8)
    pd.testing.assert_frame_equal(a, b)
    assert n_a == n_b == recovery.DEFAULT_CLOSED_POPULATION_SIZE
    assert not a.equals(c)
    assert list(a.columns) == [*recovery.OCCASION_COLUMNS, "n"]
    assert (a[recovery.OCCASION_COLUMNS].sum(axis=1) >= 1).all() and (a["n"] > 0).all()
    assert not a.duplicated(recovery.OCCASION_COLUMNS).any()
    assert 0.5 * n_a < a["n"].sum() < n_a


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


def test_generative_histories_have_the_model_moments():
    """Fraction never seen (and, for Mb, seen every time) against P(0…0) worked out by hand."""
    rng = np.random.default_rng(2)
    size = 400_000
    truth = recovery.DEFAULT_TRUE_PARAMS
    p_t = np.array([truth["Mt"][f"p{t + 1}"] for t in range(6)])

    def unseen(family):
        x = recovery.simulate_histories(family, rng, size, truth[family])
        return x, np.mean(x.sum(axis=1) == 0)

    _, f0 = unseen("M0")
    assert f0 == pytest.approx(0.7**6, rel=0.01)
    _, f0 = unseen("Mt")
    assert f0 == pytest.approx(np.prod(1 - p_t), rel=0.01)
    x, f0 = unseen("Mb")
    assert f0 == pytest.approx(0.75**6, rel=0.01)
    assert np.mean(x.sum(axis=1) == 6) == pytest.approx(0.25 * 0.4**5, rel=0.05)
    # 1 0 1 0 0 0: p · (1 − c) · c · (1 − c)³
    assert np.mean((x == [1, 0, 1, 0, 0, 0]).all(axis=1)) == pytest.approx(
        0.25 * 0.6 * 0.4 * 0.6**3, rel=0.03
    )
    _, f0 = unseen("Mh_mixture")
    assert f0 == pytest.approx(0.6 * 0.85**6 + 0.4 * 0.4**6, rel=0.01)
    _, f0 = unseen("Mh_logitnormal")
    p0 = scipy.integrate.quad(
        lambda e: (1 - _expit(_logit(0.3) + e)) ** 6 * scipy.stats.norm.pdf(e), -12, 12
    )[0]
    assert f0 == pytest.approx(p0, rel=0.01)


def _model_values(family, params):
    """The truth in the model's own parameterisation (closed._log_probs), on the transformed scale."""
    p_t = np.array([[params[f"p{t + 1}"] for t in range(6)]]) if "p1" in params else None
    if family == "M0":
        return {"logit_p": _logit(np.array([params["p"]]))}
    if family == "Mt":
        return {"logit_p": _logit(p_t)}
    if family == "Mb":
        return {
            "logit_p": _logit(np.array([params["p"]])),
            "behaviour": np.array([_logit(params["c"]) - _logit(params["p"])]),
        }
    if family == "Mh_logitnormal":
        return {
            "logit_p": _logit(np.array([params["p"]])),
            "sigma_h_log__": np.log([params["sigma_h"]]),
        }
    if family == "Mh_mixture":
        # class 0 is the less catchable one; mixture_weight is the weight of class 1
        return {
            "logit_p": _logit(np.array([params["p_low"]])),
            "class_gap_log__": np.log([_logit(params["p_high"]) - _logit(params["p_low"])]),
            "mixture_weight_logodds__": _logit(np.array([1 - params["weight_low"]])),
        }
    out = {"logit_p": _logit(p_t), "sigma_h_log__": np.log([params["sigma_h"]])}
    if family == "Mtbh":
        out["behaviour"] = np.array([params["behaviour"]])
    return out


@pytest.mark.parametrize("family", recovery.CLOSED_FAMILY_NAMES)
def test_simulator_matches_the_fitted_model_at_the_truth(family):
    """The simulator and the model agree: P(0…0) and P(h | seen) of the model at the truth against 300,000
    simulated people (catches a sign or a centring of the truth that differs from the model's)."""
    params = recovery.DEFAULT_TRUE_PARAMS[family]
    size = 300_000
    x = recovery.simulate_histories(family, np.random.default_rng(3), size, params)
    seen = x[x.sum(axis=1) > 0]
    table = (
        pd.DataFrame(seen, columns=recovery.OCCASION_COLUMNS)
        .assign(n=1)
        .groupby(recovery.OCCASION_COLUMNS, as_index=False)["n"]
        .sum()
    )
    data = recovery.padded_history_data(table)
    model = FAMILIES[family].build(data)
    obs = model[closed_families.OBSERVED]
    cell_logp = model.logp(vars=[obs], sum=False)[0]  # n_h · log P(h | seen)
    (p0,) = model.replace_rvs_by_values([model["p_unseen"]])
    fn = model.compile_fn([cell_logp, p0], inputs=model.value_vars, point_fn=False, mode=FAST)
    point = _model_values(family, params)
    assert set(point) == {v.name for v in model.value_vars}
    logp, p_unseen = fn(*[point[v.name] for v in model.value_vars])
    counts = data[closed_families.OBSERVED].values[0]
    log_cond = np.where(counts > 0, logp[0] / np.maximum(counts, 1), np.nan)
    assert np.nansum(np.exp(log_cond)) <= 1 + 1e-9
    f0 = 1 - len(seen) / size
    assert f0 == pytest.approx(float(p_unseen[0]), abs=4 * np.sqrt(f0 * (1 - f0) / size))
    # chi-square of the observed history counts against the model's P(h | seen), cells with ≥ 5 expected
    expected_all = np.zeros(len(counts))
    for i, c in enumerate(counts):
        if c > 0:
            expected_all[i] = len(seen) * np.exp(log_cond[i])
    keep = expected_all >= 5
    assert keep.sum() >= 40
    chi2 = np.sum((counts[keep] - expected_all[keep]) ** 2 / expected_all[keep])
    assert scipy.stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, chi2


@pytest.mark.parametrize("family", recovery.CLOSED_FAMILY_NAMES)
def test_zero_history_padding_and_the_shared_counts_leave_the_likelihood_unchanged(family):
    table, _ = recovery.simulate_dataset(family, 3)
    other, _ = recovery.simulate_dataset(family, 4)
    fam = FAMILIES[family]
    plain_data = history_data(table, occasions=recovery.OCCASION_COLUMNS, count="n")
    assert plain_data.sizes["history"] == len(table) < 63
    plain = fam.build(plain_data)
    padded_data = recovery.padded_history_data(table)
    # zero-count histories pass history_data and _check; the order is all_histories' (111111 first)
    assert padded_data.sizes["history"] == 2**6 - 1
    np.testing.assert_array_equal(padded_data["capture"].values, all_histories(6))
    counts = padded_data[closed_families.OBSERVED].values
    assert (counts == 0).sum() == 63 - len(table) and counts.sum() == table["n"].sum()
    padded = fam.build(padded_data)
    point = {k: v + 0.3 for k, v in plain.initial_point().items()}
    assert _logp(padded, point) == pytest.approx(_logp(plain, point), rel=1e-12)
    # the draws of N depend only on the people seen
    post = xr.Dataset(
        {"p_unseen": (("chain", "draw", "stratum"), np.full((1, 5, 1), 0.2))},
        coords={"chain": [0], "draw": np.arange(5), "stratum": ["all"]},
    )
    np.testing.assert_array_equal(
        fam.population(padded_data, post, np.random.default_rng(0)).values,
        fam.population(plain_data, post, np.random.default_rng(0)).values,
    )
    # the study's model: history counts as a shared variable, swapped per dataset
    other_data = recovery.padded_history_data(other)
    shared = recovery._with_shared_observed(padded, counts)
    shared_logp = shared.compile_logp(mode=FAST)  # compiled once, as in the study
    assert float(shared_logp(point)) == pytest.approx(_logp(padded, point), rel=1e-12)
    var = next(
        v
        for v in pytensor.graph.traversal.ancestors([shared.logp()])
        if getattr(v, "name", None) == recovery._SHARED_NAME
    )
    var.set_value(other_data[closed_families.OBSERVED].values.astype(var.dtype))
    fresh = _logp(fam.build(other_data), point)
    assert float(shared_logp(point)) == pytest.approx(fresh, rel=1e-12)
    assert fresh != pytest.approx(_logp(padded, point), rel=1e-6)  # the swap changed the data


def test_closed_recovery_study_machinery():
    df = recovery.recovery_study("M0", n_datasets=2, seed=11, draws=200, tune=200)
    assert list(df.columns) == recovery.COLUMNS
    assert df["seed"].tolist() == [11, 12]
    assert (df["n_true"] == recovery.DEFAULT_CLOSED_POPULATION_SIZE).all()
    assert (df["error"] == "").all(), df["error"].tolist()
    assert (df["n_q05"] <= df["n_median"]).all() and (df["n_median"] <= df["n_q95"]).all()
    assert (df["n_q05"] >= df["n_observed"]).all()
    for _, row in df.iterrows():
        table, _ = recovery.simulate_dataset("M0", int(row["seed"]))
        assert row["n_observed"] == table["n"].sum()
    assert df.attrs["true_params"] == {"p": 0.3}
    assert df.attrs["occasions"] == 6 and df.attrs["n_k"] is None
    assert recovery.coverage_summary(df)["median_abs_rel_error"] < 0.3


def test_closed_study_has_no_covariate():
    with pytest.raises(ValueError, match="covariate"):
        recovery.recovery_study("M0", n_datasets=1, covariate_effect=0.5)


# Known failures, measured (seed 20260101) and not hidden by tuning the test:
KNOWN: dict[str, str] = {}


# Not yet measured over 100 datasets (too long for the slow suite here; run scripts/recovery.py): none since
# Mtbh's fits became 8x cheaper (0.86 [0.78, 0.92] over 100, all 14 misses with the truth above: N low by 6.7 %
# on average, as Mth's 4.5 % — close to the lower bound of the range, see the closing note of issue 3).
UNMEASURED: dict[str, str] = {}

# M0's posterior for N is nearly as narrow as N's integer grid allows, so 100 datasets estimate its coverage
# poorly: 0.97 at N = 150 (5 truths on an interval endpoint) and 0.96 at N = 1,000; the exact grid posterior over
# 20,000 simulated datasets gives 0.917. The study is cheap (0.2 s a dataset), so it runs 400.
DATASETS = {"M0": 400}


def _mark(family):
    if family in KNOWN:
        return pytest.param(family, marks=pytest.mark.xfail(strict=True, reason=KNOWN[family]))
    if family in UNMEASURED:  # skipped, not run as an xfail: the slow suite would take hours more
        return pytest.param(family, marks=pytest.mark.skip(reason=UNMEASURED[family]))
    return family


@pytest.mark.slow
@pytest.mark.parametrize("family", [_mark(f) for f in recovery.STUDY_FAMILY_NAMES])
def test_interval_for_n_covers_the_truth_85_to_95_percent(family):
    # numba: one ~30 s compile per study, then 3–4× faster sampling than the specs' JAX backend
    df = recovery.recovery_study(family, n_datasets=DATASETS.get(family, 100), backend="numba")
    s = recovery.coverage_summary(df)
    assert s["errors"] == 0, df.loc[df["error"] != "", "error"].tolist()
    assert 0.85 <= s["coverage"] <= 0.95, s
    assert s["gate_failures"] <= 0.05 * s["datasets"], s


@pytest.mark.slow
def test_interval_for_n_covers_the_truth_with_a_covariate():
    """Zero-truncated Poisson regression: group b's rate is e ≈ 2.7 times group a's."""
    df = recovery.recovery_study("ztpoisson", n_datasets=100, covariate_effect=1.0, backend="numba")
    s = recovery.coverage_summary(df)
    assert s["errors"] == 0, df.loc[df["error"] != "", "error"].tolist()
    assert 0.85 <= s["coverage"] <= 0.95, s
    assert s["gate_failures"] <= 0.05 * s["datasets"], s
