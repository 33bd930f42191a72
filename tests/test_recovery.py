"""Parameter recovery: the simulation machinery (fast) and the coverage of the 90 % interval for N over 100
simulated datasets per single-register family (slow: `pytest -m slow tests/test_recovery.py`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytest
from pytensor.compile.mode import Mode

from estim import recovery
from estim.families import FAMILIES
from estim.families.single_register import OBSERVED

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


def test_recovery_study_machinery():
    df = recovery.recovery_study("ztpoisson", n_datasets=3, seed=11, draws=200, tune=200)
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


# Known failures, measured (seed 20260101, 100 datasets each) and not hidden by tuning the test:
KNOWN = {
    "ztnegbin": "covers 0.96 (also 0.96 at seed 20270101): every miss has the truth above the interval, on "
    "datasets that look Poisson-like; α is weakly identified at λ = 0.5 under the HalfNormal(1) prior",
    "oiztpoisson": "coverage 0.92 but 12 of 100 fits fail the gate: ω's posterior piles up near 0, "
    "correlated 0.89 with λ; needs a reparameterisation or more draws",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "family",
    [
        pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=KNOWN[f])) if f in KNOWN else f
        for f in recovery.FAMILY_NAMES
    ],
)
def test_interval_for_n_covers_the_truth_85_to_95_percent(family):
    df = recovery.recovery_study(family, n_datasets=100)
    s = recovery.coverage_summary(df)
    assert s["errors"] == 0, df.loc[df["error"] != "", "error"].tolist()
    assert 0.85 <= s["coverage"] <= 0.95, s
    assert s["gate_failures"] <= 0.05 * s["datasets"], s
