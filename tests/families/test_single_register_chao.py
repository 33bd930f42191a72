"""The generalised Chao family (singleRcapture's ``chao``): the closed form intercept only, singleRcapture's
numbers with covariates, the estimator recomputed from an independent logistic fit (statsmodels), the Bayesian
likelihood against scipy's binomial, and the draws of N against the NegativeBinomial they follow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr
from pytensor.compile.mode import Mode

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.registry import load_all
from estim.families.single_register import chao, design, frequency_data

FAST = Mode(linker="py", optimizer="fast_compile")
load_all()


@pytest.fixture(scope="module")
def dutch() -> pd.DataFrame:
    return load_benchmark("netherlands_immigrants")


def test_intercept_only_is_the_closed_form(dutch):
    data = frequency_data(dutch, times_seen="capture")
    r = FAMILIES["chao"].mle(data)
    assert r.converged and not r.boundary
    # n + f1²/(2 f2) with f = (1645, 183, …): singleRcapture's chao() gives 9,273.511 (SE 662.6008)
    assert r.n_hat == pytest.approx(1880 + 1645**2 / (2 * 183), rel=1e-8)
    assert r.n_hat == pytest.approx(9273.51, rel=1e-5)
    assert r.se == pytest.approx(662.60, rel=1e-4)
    # Chao's (1987) variance of the closed form differs from singleRcapture's by 2 parts in 10⁵ here
    assert r.se == pytest.approx(chao(data).se, rel=1e-4)
    # λ̂ = 2 f2/f1: the logistic fit's intercept is log(f2/f1)
    assert r.parameters["beta_intercept"] == pytest.approx(np.log(183 / 1645), rel=1e-7)
    # no likelihood in N: no profile interval
    assert r.profile is None


def test_generalised_chao_matches_singlercapture(dutch):
    # singleRcapture 0.2.x: estimatePopsize(capture ~ gender + age + nation, model = chao())
    data = frequency_data(dutch, times_seen="capture", covariates=["gender", "age", "nation"])
    r = FAMILIES["chao"].mle(data)
    assert r.converged and not r.boundary
    assert r.n_hat == pytest.approx(15983.8, rel=0.005)
    assert r.se == pytest.approx(3126.3, rel=0.005)
    assert r.ci95[0] < r.n_hat < r.ci95[1]


def test_estimator_recomputed_from_an_independent_logistic_fit(dutch):
    """Per person seen once or twice, logit P(K = 2) = Xβ (statsmodels GLM); N̂ = n + Σ 1/(λ + λ²/2) with
    λ = 2 exp(Xβ), Var = ∇N̂ᵀ Cov(β̂) ∇N̂ + Σ (1 − P12)(1 + e^{−λ}/P12)² (singleRcapture's chao.R)."""
    covariates = ["gender", "nation"]
    ones_twos = dutch[dutch.capture <= 2]
    x = pd.get_dummies(ones_twos[covariates], drop_first=True, dtype=float)
    x.insert(0, "const", 1.0)
    glm = sm.GLM((ones_twos.capture == 2).to_numpy(float), x, family=sm.families.Binomial()).fit()
    lam = 2 * np.exp(x.to_numpy() @ glm.params.to_numpy())
    n_hat = len(dutch) + np.sum(1 / (lam + lam**2 / 2))
    grad = -(lam * (lam + 1) / (lam + lam**2 / 2) ** 2) @ x.to_numpy()
    p12 = lam * np.exp(-lam) + lam**2 * np.exp(-lam) / 2
    var = grad @ glm.cov_params().to_numpy() @ grad + np.sum(
        (1 - p12) * (1 + np.exp(-lam) / p12) ** 2
    )
    r = FAMILIES["chao"].mle(frequency_data(dutch, times_seen="capture", covariates=covariates))
    assert r.n_hat == pytest.approx(n_hat, rel=1e-6)
    assert r.se == pytest.approx(np.sqrt(var), rel=1e-4)
    # the same logistic model as Zelterman's: same coefficients, a different N̂
    z = FAMILIES["zelterman"].mle(
        frequency_data(dutch, times_seen="capture", covariates=covariates)
    )
    assert r.parameters == pytest.approx(z.parameters, rel=1e-6)
    assert abs(r.n_hat - z.n_hat) > 100


def test_needs_people_seen_twice():
    data = frequency_data(pd.DataFrame({"k": [1, 1, 1, 3]}), times_seen="k")
    with pytest.raises(EstimInputError, match="Chao's estimator needs"):
        FAMILIES["chao"].mle(data)


def test_population_draws_have_chaos_mean_and_the_negative_binomial_spread(dutch):
    # At fixed β the unseen of pattern x are NegativeBinomial(n12_x, P12/(p0 + P12)): mean n12/(λ + λ²/2)
    data = frequency_data(dutch, times_seen="capture", covariates=["gender"])
    b0, b1, draws = -2.1, 0.2, 4000
    posterior = xr.Dataset(
        {
            "beta_intercept": (("chain", "draw"), np.full((2, draws), b0)),
            "beta": (("chain", "draw", "term"), np.full((2, draws, 1), b1)),
        },
        coords={"chain": [0, 1], "draw": np.arange(draws), "term": ["gender[male]"]},
    )
    n_draws = FAMILIES["chao"].population(data, posterior, rng=7)
    lam = 2 * np.exp(b0 + b1 * design(data).matrix[:, 0])
    f = data["frequency"].values
    n12 = f[:, 0] + f[:, 1]
    odds = 1 / (lam + lam**2 / 2)  # p0/P12 under the Poisson
    mean = f.sum() + np.sum(n12 * odds)
    sd = np.sqrt(np.sum(n12 * odds * (1 + odds)))
    assert float(n_draws.mean()) == pytest.approx(mean, abs=4 * sd / np.sqrt(2 * draws))
    assert float(n_draws.std()) == pytest.approx(sd, rel=0.05)
    # same seed, same draws
    again = FAMILIES["chao"].population(data, posterior, rng=7)
    np.testing.assert_array_equal(n_draws.values, again.values)
