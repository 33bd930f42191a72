"""SparseMSE's stepwise selection (estim.families.lists.stepwise) against SparseMSE 2.0.1 on the two
benchmarks and a table with two disjoint lists (scripts/r_references_lists.R), its p-value against brute
force, and a 10-list table simulated with one known dependence."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from estim.errors import EstimInputError
from estim.families.closed import history_data
from estim.families.lists import mle_exists, overlap_p_value, stepwise
from estim.families.loglinear import Terms, model_design
from estim.paths import BENCHMARKS_DIR

# SparseMSE 2.0.1: estimatepopulation.0(z, method = "stepwise", pthresh = 0.02) — the pairs in the order
# stepwisefit adds them, its point estimate (totobs + exp(intercept)) and the fitted coefficients; and the
# p-value of the pair added at each step (stepwise_path in scripts/r_references_lists.R).
R_STEPWISE = {
    "uk_modern_slavery_5lists.csv": {
        "pairs": [
            ("LA", "NG"),
            ("NG", "GP"),
            ("PFNCA", "GP"),
            ("LA", "PFNCA"),
            ("GO", "GP"),
            ("NG", "GO"),
        ],
        "n_hat": 11312.990289,
        "p_added": [2.18449e-07, 2.18276e-05, 0.000111007, 0.000386752, 0.00134263, 0.017003],
        "p_last": {("LA", "GP"): 0.112752, ("NG", "PFNCA"): 0.214226, ("LA", "GO"): 0.393439},
        "coef": {"intercept": 9.0559051854, "NG:GP": -2.9217020649, "NG:GO": -0.5533502131},
        "deviance": 16.3513834,
        "main_n_hat": 13444.13121,  # estimatepopulation.0(uk, method = "main")
    },
    "kosovo_4lists.csv": {
        "pairs": [
            ("ABA", "OSCE"),
            ("OSCE", "HRW"),
            ("EXH", "OSCE"),
            ("EXH", "ABA"),
            ("EXH", "HRW"),
        ],
        "n_hat": 14341.66380,
        "p_added": [5.50793e-06, 1.92367e-07, 0.00114027, 4.80765e-05, 9.77044e-08],
        "p_last": {("ABA", "HRW"): 0.432502},
        "coef": {"intercept": 9.2044896700, "EXH:HRW": 0.7938318209, "ABA:OSCE": 1.1820932812},
        "deviance": 39.89364356,
        "main_n_hat": 7394.586662,
    },
}


def _benchmark(name: str):
    table = pd.read_csv(BENCHMARKS_DIR / name)
    return history_data(table, occasions=list(table.columns[:-1]), count=table.columns[-1])


@pytest.mark.parametrize("name", sorted(R_STEPWISE))
def test_benchmarks_select_sparsemse_terms_and_n(name):
    ref = R_STEPWISE[name]
    result = stepwise(_benchmark(name))
    assert list(result.terms.interactions) == ref["pairs"]
    assert result.mle.n_hat == pytest.approx(ref["n_hat"], rel=1e-6)  # the brief asks 0.5 %
    assert not result.mle.boundary and result.empty_overlaps == []
    for term, value in ref["coef"].items():
        assert result.mle.parameters[f"{term}[all]"] == pytest.approx(value, abs=1e-6)
    assert result.mle.extra["deviance"] == pytest.approx(ref["deviance"], rel=1e-6)
    added = [step.p_values[step.added] for step in result.path if step.added]
    assert added == pytest.approx(ref["p_added"], rel=1e-4)
    last = result.path[-1]
    assert last.added is None
    for pair, p in ref["p_last"].items():
        assert last.p_values[pair] == pytest.approx(p, rel=1e-4)
    assert result.mle.profile["ci95"][0] < result.mle.n_hat < result.mle.profile["ci95"][1]


@pytest.mark.parametrize("name", sorted(R_STEPWISE))
def test_threshold_zero_is_the_main_effects_model(name):
    result = stepwise(_benchmark(name), threshold=0.0)
    assert result.terms.interactions == ()
    assert result.mle.n_hat == pytest.approx(R_STEPWISE[name]["main_n_hat"], rel=1e-6)


def test_disjoint_lists_enter_as_a_structural_zero():
    """SparseMSE: estimatepopulation.0(disjoint_4, method = "stepwise") adds A:B (no one on both, expected
    ≈ 17 under independence: p = exp(−μ) = 2.80542e-08) as an empty overlap, its cells removed; N̂ =
    629.5876029, intercept 5.692342631, then no pair below 0.02 (smallest 0.28469 at A:C)."""
    table = pd.DataFrame(
        {
            "A": [1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0],
            "B": [0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1],
            "C": [0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1],
            "D": [0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1],
            "n": [100, 80, 50, 40, 20, 15, 10, 8, 5, 3, 2],
        }
    )
    data = history_data(table, occasions=list("ABCD"), count="n")
    result = stepwise(data)
    assert result.terms.interactions == (("A", "B"),) and result.empty_overlaps == ["A:B"]
    assert result.mle.n_hat == pytest.approx(629.5876029, rel=1e-7)
    assert result.mle.parameters["intercept[all]"] == pytest.approx(5.692342631, abs=1e-7)
    assert "A:B[all]" not in result.mle.parameters  # −∞, its cells are not fitted
    assert result.path[0].p_values[("A", "B")] == pytest.approx(2.80542e-08, rel=1e-4)
    assert result.path[1].p_values[("A", "C")] == pytest.approx(0.28469, rel=1e-4)
    # as written (not extended) the selected model has no MLE
    design = model_design(result.terms, data)
    assert not mle_exists(result.terms, design).exists


def test_overlap_p_value_is_the_smaller_poisson_tail():
    for observed, expected in [(0, 3.2), (4, 3.2), (12, 3.2), (7, 7.0), (150, 120.5)]:
        pmf = stats.poisson.pmf(np.arange(0, 2000), expected)
        lower, upper = pmf[: observed + 1].sum(), pmf[observed:].sum()
        assert overlap_p_value(observed, expected) == pytest.approx(min(lower, upper), rel=1e-9)


def _ten_lists(seed: int, population: int = 5000, dependence: float = 1.0):
    """K = 10 lists with capture probabilities 0.05 … 0.25, independent except lists 1 and 2, whose joint
    capture has log odds ratio `dependence`; the N pattern counts are multinomial."""
    rng = np.random.default_rng(seed)
    k = 10
    p = np.linspace(0.05, 0.25, k)
    patterns = np.array(list(itertools.product([0, 1], repeat=k)))
    log_w = patterns @ np.log(p / (1 - p)) + dependence * patterns[:, 0] * patterns[:, 1]
    w = np.exp(log_w - log_w.max())
    counts = rng.multinomial(population, w / w.sum())
    names = [f"L{i + 1}" for i in range(k)]
    table = pd.DataFrame(patterns, columns=names).assign(count=counts)
    table = table[(patterns.sum(axis=1) > 0) & (counts > 0)]
    return history_data(table, occasions=names, count="count"), names


def test_ten_lists_run_in_seconds_and_find_the_dependence():
    data, names = _ten_lists(seed=16)
    t0 = time.perf_counter()
    every = Terms(capture="Mt", interactions=tuple(itertools.combinations(names, 2)))
    verdict = mle_exists(every, model_design(every, data), extended=True)
    t_exists = time.perf_counter() - t0
    result = stepwise(data)
    t_total = time.perf_counter() - t0
    assert verdict.identifiable
    assert t_exists < 5 and t_total < 20, (t_exists, t_total)
    # the one real dependence is the strongest signal: the first pair added
    assert result.path[0].added == ("L1", "L2")
    assert result.mle.parameters["L1:L2[all]"] == pytest.approx(1.0, abs=0.35)
    assert 4500 < result.mle.n_hat < 5500
    # the main-effects model, which ignores the dependence, underestimates N
    main = stepwise(data, threshold=0.0).mle.n_hat
    assert main < result.mle.n_hat


def test_bad_input_is_refused():
    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")
    with pytest.raises(EstimInputError, match="threshold"):
        stepwise(_benchmark("kosovo_4lists.csv"), threshold=1.5)
    two = history_data(table, occasions=["EXH", "ABA"], count="Freq")
    with pytest.raises(EstimInputError, match="at least 3 lists.*fit family Mt"):
        stepwise(two)
    table["half"] = np.arange(len(table)) % 2
    strata = history_data(
        table, occasions=["EXH", "ABA", "OSCE", "HRW"], stratum="half", count="Freq"
    )
    with pytest.raises(EstimInputError, match="one stratum"):
        stepwise(strata)


@pytest.mark.parametrize(
    ("spec", "n_hat", "pairs"),
    [
        ("uk_lists_stepwise", 11312.990289, 6),
        ("kosovo_lists_stepwise", 14341.66380, 5),
    ],
)
def test_the_registered_family_fits_the_shipped_specs(spec, n_hat, pairs):
    """`estim fit models/…_lists_stepwise.toml --mle`: SparseMSE 2.0.1's N̂ (run here), the interactions named
    in the message; the family has no Bayesian mode and says so."""
    from estim.families.base import FAMILIES
    from estim.paths import REPO_ROOT
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    res = fit_mle(read_spec(REPO_ROOT / "models" / f"{spec}.toml"))
    assert res.n_hat == pytest.approx(n_hat, rel=1e-6)
    assert len(res.extra["interactions"]) == pairs and "SparseMSE stepwise" in res.message
    assert res.profile is not None and res.profile["ci95"][0] < n_hat < res.profile["ci95"][1]
    assert not FAMILIES["lists_stepwise"].bayesian


def test_lists_with_no_one_in_common_give_no_estimate():
    # Three lists, nobody on two: the main-effects model the procedure starts (and stops) at has no MLE
    # (N → ∞). Before, IRLS stopped at N-hat 2.4e15 and the result called itself converged.
    from estim.families import FAMILIES

    table = pd.DataFrame(
        [[1, 0, 0, 40], [0, 1, 0, 30], [0, 0, 1, 25]], columns=["police", "overstay", "deport", "n"]
    )
    data = history_data(table, occasions=["police", "overstay", "deport"], count="n")
    result = stepwise(data)
    assert result.terms.interactions == ()
    assert result.mle.boundary and np.isnan(result.mle.n_hat)
    assert "the MLE of Mt does not exist" in result.mle.message
    fit = FAMILIES["lists_stepwise"].mle(data)
    assert fit.boundary and np.isnan(fit.n_hat)
    # one person on two lists is enough for a (very uncertain) estimate: Σ(k − 1)·x = 1 leaves room inside
    # the cone
    table.loc[len(table)] = [1, 1, 0, 1]
    fit = FAMILIES["lists_stepwise"].mle(history_data(table, occasions=["police", "overstay", "deport"],
                                                      count="n"))  # fmt: skip
    assert not fit.boundary and fit.n_hat > 1000
