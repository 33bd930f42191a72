"""Parameter recovery: the simulation machinery (fast) and the coverage of the 90 % interval for N over 100
simulated datasets per single-register and closed-population family (slow: `pytest -m slow
tests/studies/test_recovery.py`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytensor
import pytest
import xarray as xr
from pytensor.compile.mode import Mode

from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families import closed as closed_families
from estim.families.closed import all_histories, history_data
from estim.families.closed import recovery as closed_recovery
from estim.families.single_register import OBSERVED
from estim.families.single_register import recovery as register_recovery
from estim.studies import recovery

SINGLE_REGISTER = tuple(register_recovery.TRUTH)
CLOSED = tuple(closed_recovery.TRUTH)

FAST = Mode(linker="py", optimizer="fast_compile")


@pytest.mark.parametrize("family", SINGLE_REGISTER)
def test_simulated_data_are_deterministic_in_the_seed(family):
    a, n_a = recovery.simulate_dataset(family, 7)
    b, n_b = recovery.simulate_dataset(family, 7)
    c, _ = recovery.simulate_dataset(family, 8)
    pd.testing.assert_frame_equal(a, b)
    assert n_a == n_b == register_recovery.POPULATION_SIZE
    assert not a.equals(c)
    assert (a["k"] >= 1).all() and (a["n"] > 0).all()
    assert a["n"].sum() < n_a


def _logp(model, point):
    return float(model.compile_logp(mode=FAST)(point))


@pytest.mark.parametrize("family", SINGLE_REGISTER)
def test_zero_padding_and_the_shared_frequency_leave_the_likelihood_unchanged(family):
    table, _ = recovery.simulate_dataset(family, 3)
    other, _ = recovery.simulate_dataset(family, 4)
    fam = FAMILIES[family]
    n_k = int(max(table["k"].max(), other["k"].max())) + 5
    plain = fam.build(register_recovery.padded_frequency_data(table, int(table["k"].max()), []))
    padded_data = register_recovery.padded_frequency_data(table, n_k, [])
    assert padded_data.sizes["k"] == n_k
    assert padded_data[OBSERVED].values[:, int(table["k"].max()) :].sum() == 0
    padded = fam.build(padded_data)
    point = plain.initial_point()
    point = {k: v + 0.3 for k, v in point.items()}
    assert _logp(padded, point) == pytest.approx(_logp(plain, point), rel=1e-12)
    # the study's model: frequency as a shared variable, swapped per dataset
    other_data = register_recovery.padded_frequency_data(other, n_k, [])
    shared = recovery.with_shared_observed(padded, padded_data[OBSERVED].values)
    assert _logp(shared, point) == pytest.approx(_logp(padded, point), rel=1e-12)
    var = next(
        v
        for v in pytensor.graph.traversal.ancestors([shared.logp()])
        if getattr(v, "name", None) == recovery.SHARED_NAME
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
    assert list(df.columns) == [*recovery.COLUMNS, "settings"]
    assert len(df) == 3
    assert df["seed"].tolist() == [11, 12, 13]
    assert (df["n_true"] == register_recovery.POPULATION_SIZE).all()
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
    # resumed with the same options: nothing is fitted again (no model is even compiled)
    same = dict(n_datasets=3, seed=11, draws=200, tune=200, partial_out=str(partial), resume=True)
    again = recovery.recovery_study("ztpoisson", **same)
    assert np.isnan(again.attrs["compile_seconds"])
    pd.testing.assert_frame_equal(again.fillna({"error": ""}), df, check_dtype=False)
    # resumed with other options (each changes the rows' content), the file is refused, untouched
    before = partial.read_bytes()
    for other in ({"draws": 300}, {"population_size": 1000}, {"true_params": {"lambda": 1.0}}):
        with pytest.raises(EstimInputError, match="made with other options"):
            recovery.recovery_study("ztpoisson", **{**same, **other})
    with pytest.raises(EstimInputError, match="made with other options"):
        recovery.recovery_study("M0", **same)
    with pytest.raises(EstimInputError, match="made with other options"):
        recovery.recovery_study("ztpoisson", **{**same, "seed": 12})
    # without resume the rows are not deleted
    with pytest.raises(EstimInputError, match="--resume.*--force"):
        recovery.recovery_study("ztpoisson", **{**same, "resume": False})
    assert partial.read_bytes() == before


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


@pytest.mark.parametrize("family", CLOSED)
def test_simulated_histories_are_deterministic_in_the_seed(family):
    a, n_a = recovery.simulate_dataset(family, 7)
    b, n_b = recovery.simulate_dataset(family, 7)
    c, _ = recovery.simulate_dataset(family, 8)
    pd.testing.assert_frame_equal(a, b)
    assert n_a == n_b == closed_recovery.POPULATION_SIZE
    assert not a.equals(c)
    assert list(a.columns) == [*closed_recovery.OCCASION_COLUMNS, "n"]
    assert (a[closed_recovery.OCCASION_COLUMNS].sum(axis=1) >= 1).all() and (a["n"] > 0).all()
    assert not a.duplicated(closed_recovery.OCCASION_COLUMNS).any()
    assert 0.5 * n_a < a["n"].sum() < n_a


@pytest.mark.parametrize("family", CLOSED)
def test_zero_history_padding_and_the_shared_counts_leave_the_likelihood_unchanged(family):
    table, _ = recovery.simulate_dataset(family, 3)
    other, _ = recovery.simulate_dataset(family, 4)
    fam = FAMILIES[family]
    plain_data = history_data(table, occasions=closed_recovery.OCCASION_COLUMNS, count="n")
    assert plain_data.sizes["history"] == len(table) < 63
    plain = fam.build(plain_data)
    padded_data = closed_recovery.padded_history_data(table)
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
    other_data = closed_recovery.padded_history_data(other)
    shared = recovery.with_shared_observed(padded, counts)
    shared_logp = shared.compile_logp(mode=FAST)  # compiled once, as in the study
    assert float(shared_logp(point)) == pytest.approx(_logp(padded, point), rel=1e-12)
    var = next(
        v
        for v in pytensor.graph.traversal.ancestors([shared.logp()])
        if getattr(v, "name", None) == recovery.SHARED_NAME
    )
    var.set_value(other_data[closed_families.OBSERVED].values.astype(var.dtype))
    fresh = _logp(fam.build(other_data), point)
    assert float(shared_logp(point)) == pytest.approx(fresh, rel=1e-12)
    assert fresh != pytest.approx(_logp(padded, point), rel=1e-6)  # the swap changed the data


def test_closed_recovery_study_machinery():
    df = recovery.recovery_study("M0", n_datasets=2, seed=11, draws=200, tune=200)
    assert list(df.columns) == [*recovery.COLUMNS, "settings"]
    assert df["seed"].tolist() == [11, 12]
    assert (df["n_true"] == closed_recovery.POPULATION_SIZE).all()
    assert (df["error"] == "").all(), df["error"].tolist()
    assert (df["n_q05"] <= df["n_median"]).all() and (df["n_median"] <= df["n_q95"]).all()
    assert (df["n_q05"] >= df["n_observed"]).all()
    for _, row in df.iterrows():
        table, _ = recovery.simulate_dataset("M0", int(row["seed"]))
        assert row["n_observed"] == table["n"].sum()
    assert df.attrs["true_params"] == {"p": 0.3}
    assert df.attrs["data_shape"] == {"stratum": 1, "history": 63, "occasion": 6}
    assert recovery.coverage_summary(df)["median_abs_rel_error"] < 0.3
    # what scripts/recovery.py prints (and the paper reads): settings and summary, as JSON
    report = json.loads(json.dumps(recovery.study_report(df)))
    assert report["family"] == "M0" and report["datasets"] == 2 and report["seed"] == 11
    assert report["data_shape"] == {"stratum": 1, "history": 63, "occasion": 6}


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
@pytest.mark.parametrize("family", [_mark(f) for f in recovery.study_families()])
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
