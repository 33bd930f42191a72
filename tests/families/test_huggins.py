"""Huggins conditional likelihood with individual covariates (M0, Mt, Mb): ML against an independent per-animal
fit written here with scipy, the Bayesian likelihood against the same per-animal sum, the draws of N, and (slow)
the coverage of N's 90 % interval over simulated datasets."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sampling import quick_nuts
from scipy import optimize, special, stats

from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.closed import population, table_histories
from estim.families.closed.huggins import (
    _thinned_random,
    huggins_population,
    pad_huggins,
    simulate_huggins,
)
from estim.studies.recovery import SHARED_NAME, with_shared_observed

OCCASIONS = [f"o{j}" for j in range(1, 6)]
P_T = (0.2, 0.3, 0.25, 0.35, 0.2)  # capture probabilities of a female of 1.5 kg


@pytest.fixture(scope="module")
def animals() -> pd.DataFrame:
    """400 animals, sex and weight, Mt with male +0.5 and +1.5 per kg on the logit scale; the seen ones."""
    return simulate_huggins("Mt", np.random.default_rng(2026), 400, P_T, behaviour=0.4)


def _data(table: pd.DataFrame) -> xr.Dataset:
    return table_histories(
        table, layout="individuals", occasions=OCCASIONS, covariates=["sex", "weight"]
    )


# --------------------------------------------------------------------------------------------------------------
# An independent fit: the per-animal conditional likelihood, scipy's BFGS with numerical gradients


def _animal_probs(name, theta, y, male, weight):
    """P_i(h_i) and P_i(0…0) per animal; θ = [α_t or a] [b] β_male β_weight (weight in kg, raw)."""
    t = y.shape[1]
    alpha = theta[:t] if name == "Mt" else np.repeat(theta[0], t)
    b = theta[1] if name == "Mb" else 0.0
    lin = theta[-2] * male + theta[-1] * weight
    p_first = special.expit(alpha[None, :] + lin[:, None])
    p_after = special.expit(alpha[None, :] + lin[:, None] + b)
    before = np.cumsum(y, axis=1) - y == 0  # not yet caught when occasion t starts
    p = np.where(before, p_first, p_after)
    log_h = np.sum(np.where(y == 1, np.log(p), np.log1p(-p)), axis=1)
    log_0 = np.sum(np.log1p(-p_first), axis=1)
    return log_h, log_0


def _independent_fit(name, table):
    y = table[OCCASIONS].to_numpy()
    male = (table["sex"] == "M").to_numpy(float)
    weight = table["weight"].to_numpy()
    size = {"Mt": 5, "Mb": 2}.get(name, 1) + 2

    def negll(theta):
        log_h, log_0 = _animal_probs(name, theta, y, male, weight)
        return -np.sum(log_h - np.log(-np.expm1(log_0)))

    res = optimize.minimize(negll, np.zeros(size), method="BFGS", options={"gtol": 1e-9})
    log_0 = _animal_probs(name, res.x, y, male, weight)[1]
    n_hat = np.sum(1 / -np.expm1(log_0))
    # the Huggins variance with a numerical Hessian and gradient of N̂
    h = 1e-4
    eye = np.eye(size) * h
    hess = np.array(
        [
            [
                (
                    negll(res.x + a + b)
                    - negll(res.x + a - b)
                    - negll(res.x - a + b)
                    + negll(res.x - a - b)
                )
                / (4 * h * h)
                for b in eye
            ]
            for a in eye
        ]
    )

    def n_of(theta):
        return np.sum(1 / -np.expm1(_animal_probs(name, theta, y, male, weight)[1]))

    grad = np.array([(n_of(res.x + e) - n_of(res.x - e)) / (2 * h) for e in eye])
    p0 = np.exp(log_0)
    se = math.sqrt(np.sum(p0 / (1 - p0) ** 2) + grad @ np.linalg.solve(hess, grad))
    return n_hat, se, res.x


@pytest.mark.parametrize("name", ["M0", "Mt", "Mb"])
def test_ml_agrees_with_an_independent_fit(animals, name):
    res = FAMILIES[name].mle(_data(animals))
    n_hat, se, theta = _independent_fit(name, animals)
    assert res.converged and not res.boundary
    assert res.n_hat == pytest.approx(n_hat, rel=0.005)  # the criterion
    assert res.n_hat == pytest.approx(n_hat, rel=1e-5)  # what it actually achieves
    assert res.se == pytest.approx(se, rel=1e-3)
    # effects on the covariates' own scale: per kg, male against female
    assert res.parameters["beta[weight]"] == pytest.approx(theta[-1], rel=1e-4)
    assert res.parameters["beta[sex[M]]"] == pytest.approx(theta[-2], rel=1e-4)
    assert res.extra["se"]["beta[weight]"] > 0


def test_ml_near_the_truth(animals):
    # the generating truth (N = 400, +0.5 male, +1.5 per kg): within 3 SE
    res = FAMILIES["Mt"].mle(_data(animals))
    assert abs(res.n_hat - 400) < 3 * res.se
    assert abs(res.parameters["beta[weight]"] - 1.5) < 3 * res.extra["se"]["beta[weight]"]


def test_units_change_effects_not_n(animals):
    kg, g = _data(animals), _data(animals.assign(weight=animals["weight"] * 1000))
    a, b = FAMILIES["Mt"].mle(kg), FAMILIES["Mt"].mle(g)
    assert b.n_hat == pytest.approx(a.n_hat, rel=1e-9)
    assert b.parameters["beta[weight]"] == pytest.approx(
        a.parameters["beta[weight]"] / 1000, rel=1e-7
    )


def test_pattern_table_is_the_individuals(animals):
    rounded = animals.assign(weight=animals["weight"].round(1))
    cells = rounded.groupby([*OCCASIONS, "sex", "weight"], as_index=False).size()
    patterns = table_histories(
        cells, layout="patterns", occasions=OCCASIONS, count="size", covariates=["sex", "weight"]
    )
    individuals = _data(rounded)
    assert patterns.sizes["cell"] < len(animals)  # aggregated: fewer cells than animals
    xr.testing.assert_allclose(patterns, individuals)


# --------------------------------------------------------------------------------------------------------------
# The Bayesian likelihood = the per-animal sum


@pytest.mark.parametrize("name", ["M0", "Mt", "Mb"])
def test_bayesian_likelihood_is_the_per_animal_sum(animals, name):
    data = _data(animals)
    model = FAMILIES[name].build(data)
    rng = np.random.default_rng(5)
    point = {k: rng.normal(-0.5, 0.5, size=np.shape(v)) for k, v in model.initial_point().items()}
    logp = model.compile_fn(
        model.logp(vars=[model["history_count"]]),
        inputs=model.value_vars,
        on_unused_input="ignore",
        mode="FAST_COMPILE",
    )(point)
    # standardised covariates computed here: weight (mean 0, sd 1 over the animals seen), male 0/1
    weight = animals["weight"].to_numpy()
    z = (weight - weight.mean()) / weight.std()
    male = (animals["sex"] == "M").to_numpy(float)
    beta = point["beta"]  # terms: sex[M], weight
    base = np.atleast_1d(point["logit_p"])
    theta = np.concatenate([base, [point["behaviour"]] if name == "Mb" else [], beta])
    log_h, log_0 = _animal_probs(name, theta, animals[OCCASIONS].to_numpy(), male, z)
    assert float(logp) == pytest.approx(np.sum(log_h - np.log(-np.expm1(log_0))), rel=1e-10)


def test_population_draws_follow_the_negative_binomial(animals):
    data = _data(animals)
    post = xr.Dataset(
        {
            "logit_p": (("chain", "draw", "occasion"), np.full((2, 2000, 5), -1.0)),
            "beta": (("chain", "draw", "term"), np.tile([0.4, 0.3], (2, 2000, 1))),
        },
        coords={"chain": [0, 1], "draw": np.arange(2000)},
    )
    n_draws = huggins_population(data, post, 7)
    assert n_draws.dims == ("chain", "draw")
    eta = -1.0 + data["design"].values @ np.array([0.4, 0.3])
    p0 = (1 - special.expit(eta)) ** 5
    n_x = data["pattern_count"].values
    mean = np.sum(n_x / (1 - p0))  # Horvitz–Thompson at θ
    sd = math.sqrt(np.sum(n_x * p0 / (1 - p0) ** 2))
    assert abs(float(n_draws.mean()) - mean) < 4 * sd / math.sqrt(4000)
    assert float(n_draws.std()) == pytest.approx(sd, rel=0.05)
    # padding adds empty patterns, which add nobody
    padded = pad_huggins(data, data.sizes["cell"] + 7, data.sizes["pattern"] + 5)
    np.testing.assert_array_equal(huggins_population(padded, post, 7).values, n_draws.values)


def test_replicated_cells_are_binomial():
    # two patterns with 30 and 10 animals; the cells given cover part of each pattern's histories
    log_cond = np.log([0.3, 0.2, 0.1, 0.5, 0.25])
    pattern, n_cell = np.array([0, 0, 0, 1, 1]), np.array([30, 30, 30, 10, 10])
    rng = np.random.default_rng(1)
    reps = _thinned_random(log_cond, pattern, n_cell, rng, size=(4000, 5))
    np.testing.assert_allclose(reps.mean(axis=0), n_cell * np.exp(log_cond), rtol=0.04)
    assert (reps[:, :3].sum(axis=1) <= 30).all() and (reps[:, 3:].sum(axis=1) <= 10).all()


def test_covariates_only_for_m0_mt_mb(animals):
    data = _data(animals)
    for name in ("Mh_logitnormal", "Mth", "Mh_chao", "Mth_poisson2"):
        with pytest.raises(EstimInputError, match="available for M0, Mt, Mb"):
            FAMILIES[name].mle(data)
    with pytest.raises(EstimInputError, match="available for M0, Mt, Mb"):
        FAMILIES["Mh_mixture"].build(data)
    with pytest.raises(EstimInputError, match="strata"):
        FAMILIES["Mt"].build(data, stratified=True)


def test_bayesian_mt_with_covariates(animals):
    data = _data(animals)
    idata = quick_nuts(FAMILIES["Mt"].build(data), 3, draws=500, tune=500)
    n = population(data, idata.posterior, 4)
    ml = FAMILIES["Mt"].mle(data)
    # weak priors and N marginalised per pattern under 1/N_x: the posterior median sits near the ML estimate
    # (within a third of its SE here; the Monte Carlo error of the median is ~0.05 SE)
    assert abs(float(n.median()) - ml.n_hat) < ml.se / 3
    assert float(idata.posterior["beta_original"].sel(term="weight").median()) == pytest.approx(
        ml.parameters["beta[weight]"], abs=ml.extra["se"]["beta[weight]"] / 3
    )


# --------------------------------------------------------------------------------------------------------------
# Coverage of N's 90 % interval over simulated datasets (slow: ~3 minutes on 2 cores)

STUDY_N, STUDY_SEED = 200, 20260301
STUDY_SIZE = int(
    os.environ.get("ESTIM_HUGGINS_STUDY_SIZE", "100")
)  # a smaller study to try the test out


@pytest.mark.slow
def test_recovery_coverage_of_n():
    import nutpie

    from estim.run.sampler import compile_model

    start = time.perf_counter()
    tables = [
        simulate_huggins("Mt", np.random.default_rng(STUDY_SEED + i), STUDY_N, P_T)
        for i in range(STUDY_SIZE)
    ]
    datasets = [_data(t) for t in tables]
    cells = max(d.sizes["cell"] for d in datasets)
    patterns = max(d.sizes["pattern"] for d in datasets)
    padded = [pad_huggins(d, cells, patterns) for d in datasets]
    model = with_shared_observed(FAMILIES["Mt"].build(padded[0]), padded[0]["history_count"].values)
    compiled = compile_model(model, "jax", freeze=False)
    covered, medians, ml, failed = [], [], [], 0
    for i, data in enumerate(padded):
        # the data the compiled density reads (pattern_count serves only the predictive draws)
        arrays = {k: v for k, v in _shared(data).items() if k in compiled._shared_data}
        trace = nutpie.sample(
            compiled.with_data(**arrays),
            draws=1000,
            tune=1000,
            chains=2,
            seed=STUDY_SEED + i,
            progress_bar=False,
        )
        posterior = trace.posterior if hasattr(trace, "posterior") else trace["posterior"]
        n = population(data, posterior, STUDY_SEED + i).values.ravel()
        lo, hi = np.quantile(n, [0.05, 0.95])
        covered.append(lo <= STUDY_N <= hi)
        medians.append(float(np.median(n)))
        ml.append(FAMILIES["Mt"].mle(datasets[i]).n_hat)
        import arviz as az

        failed += bool(float(az.rhat(posterior)["logit_p"].max()) > 1.01)
    seconds = time.perf_counter() - start
    hits = int(np.sum(covered))
    test = stats.binomtest(hits, STUDY_SIZE, 0.9, alternative="less")
    ci = stats.binomtest(hits, STUDY_SIZE, 0.9).proportion_ci(0.95, method="exact")
    print(
        f"\ncoverage {hits}/{STUDY_SIZE} (exact 95 % CI {ci.low:.3f}–{ci.high:.3f}), one-sided p "
        f"{test.pvalue:.3f}, R-hat > 1.01 in {failed}, {seconds:.0f} s; median of the posterior medians "
        f"{np.median(medians):.1f}, of the ML estimates {np.median(ml):.1f} (true N {STUDY_N})"
    )
    # each dataset's own posterior (the swapped data took effect): medians track that dataset's ML estimate
    assert np.corrcoef(medians, ml)[0, 1] > 0.9
    assert test.pvalue > 0.01
    assert failed <= 2


def _shared(data: xr.Dataset) -> dict[str, np.ndarray]:
    """The pm.Data values of a (padded) Huggins dataset, by name."""
    x = data["capture"].values[data["cell_history"].values]
    return {
        "design": data["design"].values,
        "cell_pattern": data["cell_pattern"].values,
        "cell_capture": x,
        SHARED_NAME: data["history_count"].values,
        "pattern_count": data["pattern_count"].values,
        "term_center": data["term_center"].values,
        "term_scale": data["term_scale"].values,
    }
