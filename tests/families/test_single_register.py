"""Single-register frequency models: published maximum-likelihood values, the Bayesian likelihood checked
term by term against scipy and against an explicit sum over N, and one quick posterior."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.optimize
import scipy.special
import scipy.stats as st
import xarray as xr
from pytensor.compile.mode import Mode
from sampling import quick_nuts

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.single_register import chao, design, frequency_data, zelterman

COVARIATES = ["gender", "age", "reason", "nation"]
# The Python linker: these graphs are tiny, and compiling them with numba/C would dominate the test time.
FAST = Mode(linker="py", optimizer="fast_compile")


@pytest.fixture(scope="module")
def dutch() -> pd.DataFrame:
    return load_benchmark("netherlands_immigrants")


@pytest.fixture(scope="module")
def intercept_only(dutch) -> xr.Dataset:
    return frequency_data(dutch, times_seen="capture")


# ---------------------------------------------------------------------------------------------- data


def test_frequency_data_counts_and_labels(dutch, intercept_only):
    f = intercept_only["frequency"]
    assert f.dims == ("pattern", "k")
    assert f.dtype == np.int64
    assert f.sel(pattern="all").values.tolist() == [1645, 183, 37, 13, 1, 1]
    assert intercept_only["k"].values.tolist() == [1, 2, 3, 4, 5, 6]

    full = frequency_data(dutch, times_seen="capture", covariates=COVARIATES)
    assert int(full["frequency"].sum()) == 1880
    assert full["frequency"].sum("pattern").values.tolist() == [1645, 183, 37, 13, 1, 1]
    # every pattern label names its covariate values, and the covariate variables agree with it
    for i, label in enumerate(full["pattern"].values):
        assert label == ", ".join(f"{c}={full[c].values[i]}" for c in COVARIATES)
    # brute force: people per (gender, k) from the raw rows
    by_gender = frequency_data(dutch, times_seen="capture", covariates=["gender"])
    for g in ("female", "male"):
        raw = dutch.loc[dutch.gender == g, "capture"].value_counts()
        got = by_gender["frequency"].sel(pattern=f"gender={g}")
        for k in got["k"].values:
            assert int(got.sel(k=k)) == int(raw.get(k, 0))


def test_frequency_data_weighted_equals_per_person(dutch):
    cells = load_benchmark("netherlands_immigrants", frequencies=True)
    weighted = frequency_data(cells, times_seen="nbcap", count="freq")
    per_person = frequency_data(dutch, times_seen="capture")
    np.testing.assert_array_equal(weighted["frequency"].values, per_person["frequency"].values)


def test_frequency_data_rejects_zero_counts():
    with pytest.raises(EstimInputError, match="≥ 1"):
        frequency_data(pd.DataFrame({"k": [0, 1, 2]}), times_seen="k")


def test_design_is_treatment_coded(dutch):
    data = frequency_data(dutch, times_seen="capture", covariates=["gender", "nation"])
    d = design(data)
    x, terms = d.matrix, list(d.terms)
    assert terms == [
        "gender[male]",
        "nation[Asia]",
        "nation[North Africa]",
        "nation[Rest of Africa]",
        "nation[Surinam]",
        "nation[Turkey]",
    ]
    assert x.shape == (data.sizes["pattern"], 6)
    assert set(np.unique(x)) <= {0.0, 1.0}


# ------------------------------------------------------------------------------ maximum likelihood

# (family, covariates, N̂, SE or None) from data/benchmarks (singleRcapture / VGAM / Rcapture / published)
REFERENCES = [
    ("ztpoisson", [], 7079.93, 365.75),
    ("ztpoisson", COVARIATES, 12691.45, 2809.51),
    ("zelterman", ["gender", "age"], 10212.55, 916.78),
    ("ztgeometric", [], 13468.20, 771.19),
]


@pytest.mark.parametrize(("family", "covariates", "n_hat", "se"), REFERENCES)
def test_mle_matches_reference(dutch, family, covariates, n_hat, se):
    r = FAMILIES[family].mle(frequency_data(dutch, times_seen="capture", covariates=covariates))
    assert r.converged and not r.boundary
    assert r.n_hat == pytest.approx(n_hat, rel=0.005)
    assert r.se == pytest.approx(se, rel=0.01)
    assert r.ci95[0] < r.n_hat < r.ci95[1]


def test_ztpoisson_rate(intercept_only):
    r = FAMILIES["ztpoisson"].mle(intercept_only)
    assert np.exp(r.parameters["beta_intercept"]) == pytest.approx(0.30862, rel=1e-4)
    assert r.ci95 == pytest.approx((6363.1, 7796.8), rel=0.005)


def test_closed_forms(intercept_only):
    c = chao(intercept_only)
    assert c.n_hat == pytest.approx(9273.51, rel=1e-5)
    assert c.se == pytest.approx(662.60, rel=1e-4)
    z = zelterman(intercept_only)
    assert z.n_hat == pytest.approx(9424.56, rel=1e-5)
    assert z.se == pytest.approx(683.97, rel=1e-4)
    # the intercept-only Zelterman regression is the closed form
    zr = FAMILIES["zelterman"].mle(intercept_only)
    assert zr.n_hat == pytest.approx(z.n_hat, rel=1e-6)
    assert zr.se == pytest.approx(z.se, rel=1e-4)
    # arrays work too
    assert chao([1645, 183, 37, 13, 1, 1]).n_hat == pytest.approx(c.n_hat)


def test_ztnegbin_on_dutch_data_is_a_boundary_fit(intercept_only):
    r = FAMILIES["ztnegbin"].mle(intercept_only)
    assert r.boundary
    assert not r.converged
    assert "infinity" in r.message


def test_ztnegbin_finite_on_overdispersed_data():
    # gamma-mixed Poisson with a finite dispersion: the fit must be interior and near the truth
    rng = np.random.default_rng(3)
    lam = rng.gamma(shape=2.0, scale=1.0 / 2.0, size=20000)  # mean 1, alpha = 0.5
    k = rng.poisson(lam)
    data = frequency_data(pd.DataFrame({"k": k[k > 0]}), times_seen="k")
    r = FAMILIES["ztnegbin"].mle(data)
    assert r.converged and not r.boundary
    assert r.parameters["alpha"] == pytest.approx(0.5, rel=0.25)
    assert abs(r.n_hat - 20000) < 3 * r.se


# --------------------------------------------------------------------------- the Bayesian likelihood


def _scipy_log_truncated(family: str, k, lam, alpha=None, omega=None):
    """log P(K = k | K ≥ 1) straight from scipy.stats (independent of estim.families.kernels)."""
    if family.endswith("poisson"):
        dist = st.poisson(lam)
    elif family.endswith("geometric"):
        dist = st.nbinom(1, 1 / (1 + lam))
    else:
        dist = st.nbinom(1 / alpha, 1 / (1 + alpha * lam))
    pmf, p0 = dist.pmf(k), dist.pmf(0)
    if omega is not None:
        pmf, p0 = (1 - omega) * pmf + omega * (k == 1), (1 - omega) * p0
    return np.log(pmf / (1 - p0))


POINTS = {
    "ztpoisson": {},
    "ztgeometric": {},
    "ztnegbin": {"alpha": 0.7},
    "oiztpoisson": {"omega": 0.3},
    "oiztgeometric": {"omega": 0.2},
}


@pytest.mark.parametrize("family", sorted(POINTS))
@pytest.mark.parametrize("covariates", [[], ["gender"]])
def test_model_logp_equals_scipy(dutch, family, covariates):
    data = frequency_data(dutch, times_seen="capture", covariates=covariates)
    model = FAMILIES[family].build(data)
    extra = POINTS[family]
    b0, b = -1.1, np.array([0.25])
    point = {"beta_intercept": np.array(b0)}
    if covariates:
        point["beta"] = b
    if "alpha" in extra:
        point["alpha_log__"] = np.log(extra["alpha"])
    if "omega" in extra:
        point["omega_logodds__"] = scipy.special.logit(extra["omega"])
    x = design(data).matrix
    lam = np.exp(b0 + (x @ b if covariates else np.zeros(len(x))))
    f = data["frequency"].values
    k = data["k"].values
    expected = (f * _scipy_log_truncated(family, k[None, :], lam[:, None], **extra)).sum()
    observed_logp = model.compile_logp(vars=[model["frequency"]], mode=FAST)(point)
    assert observed_logp == pytest.approx(expected, rel=1e-10)
    # the per-cell terms are what LOO sees
    cells = model.compile_fn(
        model.logp(vars=[model["frequency"]], sum=False)[0], inputs=model.value_vars, mode=FAST
    )
    assert cells(point).shape == f.shape


@pytest.mark.parametrize("family", ["zelterman", "chao"])
def test_zelterman_and_chao_model_logp_equals_binomial(dutch, family):
    # the two share one likelihood (twos among ones and twos); they differ only in N
    data = frequency_data(dutch, times_seen="capture", covariates=["gender"])
    model = FAMILIES[family].build(data)
    x = design(data).matrix
    eta = -2.0 + 0.3 * x[:, 0]
    f = data["frequency"].values
    expected = (
        st.binom.logpmf(f[:, 1], f[:, 0] + f[:, 1], scipy.special.expit(eta))
    ).sum() - np.log(scipy.special.comb(f[:, 0] + f[:, 1], f[:, 1])).sum()
    got = model.compile_logp(vars=[model["frequency"]], mode=FAST)(
        {"beta_intercept": np.array(-2.0), "beta": np.array([0.3])}
    )
    assert got == pytest.approx(expected, rel=1e-10)


def test_marginalising_n_with_one_over_n_prior_gives_the_conditional_likelihood(intercept_only):
    # Σ_N (1/N) N!/((N−n)! Π f_k!) p0^(N−n) Π P(k)^f_k, summed explicitly over N, equals
    # (n−1)!/Π f_k! · Π (P(k)/(1−p0))^f_k: the model's observed logp plus log((n−1)!/Π f_k!).
    model = FAMILIES["ztpoisson"].build(intercept_only)
    lam = 0.31
    f = intercept_only["frequency"].values[0]
    k = intercept_only["k"].values
    n = f.sum()
    big_n = np.arange(n, 60_000)
    log_p0 = -lam
    log_terms = (
        -np.log(big_n)
        + scipy.special.gammaln(big_n + 1)
        - scipy.special.gammaln(big_n - n + 1)
        - scipy.special.gammaln(f + 1).sum()
        + (big_n - n) * log_p0
        + (f * st.poisson.logpmf(k, lam)).sum()
    )
    brute = scipy.special.logsumexp(log_terms)
    constant = scipy.special.gammaln(n) - scipy.special.gammaln(f + 1).sum()
    got = model.compile_logp(vars=[model["frequency"]], mode=FAST)(
        {"beta_intercept": np.array(np.log(lam))}
    )
    assert got + constant == pytest.approx(brute, rel=1e-10)


@pytest.mark.parametrize("family", sorted(FAMILIES.keys() & {*POINTS, "zelterman"}))
def test_gradient_finite_and_coords(dutch, family):
    data = frequency_data(dutch, times_seen="capture", covariates=["gender", "age"])
    model = FAMILIES[family].build(data)
    grad = model.compile_dlogp(mode=FAST)(model.initial_point())
    assert np.all(np.isfinite(grad))
    assert list(model.coords["pattern"]) == list(data["pattern"].values)
    assert list(model.coords["k"]) == [1, 2, 3, 4, 5, 6]
    assert list(model.coords["term"]) == ["gender[male]", "age[>40yrs]"]
    assert model.named_vars_to_dims["frequency"] == ("pattern", "k")
    assert FAMILIES[family].observed_name == "frequency"


def test_priors_are_overridable(intercept_only):
    from estim.priors import Prior

    model = FAMILIES["ztnegbin"].build(
        intercept_only, priors={"alpha": Prior("Exponential", lam=2.0)}
    )
    assert model["alpha"].owner.op.name == "exponential"
    with pytest.raises(EstimInputError):
        FAMILIES["ztpoisson"].build(
            intercept_only, priors={"gamma": Prior("Normal", mu=0, sigma=1)}
        )


def test_population_draws_have_the_horvitz_thompson_mean(dutch):
    # At fixed θ, N_x − n_x ~ NegBin(n_x, 1 − p0_x) has mean n_x p0_x/(1 − p0_x), so E[N | θ] is the HT value.
    data = frequency_data(dutch, times_seen="capture", covariates=["gender"])
    b0, b1 = -1.2, 0.2
    draws = 4000
    posterior = xr.Dataset(
        {
            "beta_intercept": (("chain", "draw"), np.full((2, draws), b0)),
            "beta": (("chain", "draw", "term"), np.full((2, draws, 1), b1)),
        },
        coords={"chain": [0, 1], "draw": np.arange(draws), "term": ["gender[male]"]},
    )
    n_draws = FAMILIES["ztpoisson"].population(data, posterior, rng=5)
    assert n_draws.name == "N" and n_draws.dims == ("chain", "draw")
    x = design(data).matrix
    p0 = np.exp(-np.exp(b0 + b1 * x[:, 0]))
    n_x = data["frequency"].values.sum(axis=1)
    ht = (n_x / (1 - p0)).sum()
    sd = np.sqrt((n_x * p0 / (1 - p0) ** 2).sum())
    assert float(n_draws.mean()) == pytest.approx(ht, abs=4 * sd / np.sqrt(2 * draws))
    assert float(n_draws.std()) == pytest.approx(sd, rel=0.05)
    assert int(n_draws.min()) >= 1880


def test_bayesian_ztpoisson_posterior_median_near_mle(intercept_only):
    """2 chains × 500 draws (nutpie, JAX backend). With a Normal(0, 2.5) prior on log λ against 1,880 people
    the posterior of λ is essentially the likelihood, so the posterior median of N lies within a fraction of
    the ML standard error (365.75) of N̂ = 7,079.93; the Monte Carlo error of the median from ~1,000 draws is
    ~1.25 · 380/√1000 ≈ 15. Tolerance: half an SE (183, 2.6 %)."""
    family = FAMILIES["ztpoisson"]
    model = family.build(intercept_only)
    idata = quick_nuts(model, 20261128)
    n_draws = family.population(intercept_only, idata, rng=1)
    assert abs(float(n_draws.median()) - 7079.93) < 0.5 * 365.75
    # posterior SD of N ≈ ML SE (delta + HT variance) under a weak prior
    assert float(n_draws.std()) == pytest.approx(365.75, rel=0.2)
    with model:
        ll = pm.compute_log_likelihood(idata, progressbar=False)
    assert ll["log_likelihood"]["frequency"].dims == ("chain", "draw", "pattern", "k")


def test_one_inflated_rate_comes_from_the_repeaters(intercept_only):
    # With a free ω the singletons are fitted exactly, so λ̂ is the MLE of the zero-one-truncated model on
    # k ≥ 2 (an independent check of the one-inflated likelihood). Geometric: memoryless, so k − 2 | k ≥ 2 is
    # geometric with mean λ and λ̂ = mean(k | k ≥ 2) − 2. Poisson: solve E[K | K ≥ 2] = mean(k | k ≥ 2).
    f = intercept_only["frequency"].values[0].astype(float)
    k = intercept_only["k"].values
    mean2 = (f[1:] * k[1:]).sum() / f[1:].sum()
    geo = FAMILIES["oiztgeometric"].mle(intercept_only)
    assert geo.converged and 0 < geo.parameters["omega"] < 1
    assert np.exp(geo.parameters["beta_intercept"]) == pytest.approx(mean2 - 2, rel=1e-5)

    def zot_poisson_mean(lam):
        return lam * (1 - np.exp(-lam)) / (1 - np.exp(-lam) - lam * np.exp(-lam))

    lam = scipy.optimize.brentq(lambda x: zot_poisson_mean(x) - mean2, 1e-3, 10)
    poi = FAMILIES["oiztpoisson"].mle(intercept_only)
    assert poi.converged
    assert np.exp(poi.parameters["beta_intercept"]) == pytest.approx(lam, rel=1e-5)
    # and N̂ is the HT sum with p0 = (1 − ω) e^{−λ}
    p0 = (1 - poi.parameters["omega"]) * np.exp(-lam)
    assert poi.n_hat == pytest.approx(f.sum() / (1 - p0), rel=1e-5)


def test_replicated_frequencies_survive_extreme_rates():
    # Prior predictive draws reach rates where every exp(log P(k)) underflows; the replicate must still be a
    # valid multinomial draw, with the mass where the distribution puts it (the largest k for a huge rate).
    from estim.families.single_register.model import replicate_cells

    k = np.arange(1, 7)
    log_prob = k * np.log(1800.0) - 1800.0 - np.array([math.lgamma(x + 1) for x in k])
    out = replicate_cells(
        log_prob[None, :], np.array([[100]]), np.ones(6, bool), np.random.default_rng(1)
    )
    assert out.sum() == 100 and out[0, -1] == 100


def test_replicated_frequencies_have_the_models_means_the_tail_in_the_last_cell():
    """A zero-truncated Poisson with λ = 2 over cells k = 1..4: the replicate's means are n·P(k | k ≥ 1) and, in
    the last cell, n·P(k ≥ 4 | k ≥ 1) (the data's last cell, the largest count seen, holds everyone seen that
    often or more). Before, the cells were renormalised: f_1's mean 3,333 for the model's 3,130, and the last
    cell 1,111 for 1,652. Zelterman's cells (k ∈ {1, 2}, normalised within them) are as before."""
    from estim.families.single_register.model import replicate_cells

    lam, n, draws = 2.0, 10_000, 4_000
    k = np.arange(1, 5)
    log_p = k * np.log(lam) - lam - scipy.special.gammaln(k + 1) - np.log1p(-np.exp(-lam))
    p = np.exp(log_p)
    expected = n * np.r_[p[:-1], 1 - p[:-1].sum()]
    out = replicate_cells(
        log_p[None, :], np.array([[n]]), np.ones(4, bool), np.random.default_rng(3), (draws, 1, 4)
    )
    assert out.shape == (draws, 1, 4) and (out.sum(axis=-1) == n).all()
    sd = np.sqrt(expected * (1 - expected / n) / draws)
    assert np.abs(out[:, 0].mean(axis=0) - expected).max() < 4.5 * sd.max()
    # Zelterman: P(k | k ∈ {1, 2}) on the first two cells, nobody beyond
    pair = log_p[:2] - np.logaddexp(log_p[0], log_p[1])
    zel = replicate_cells(
        np.r_[pair, -5.0, -5.0][None, :],
        np.array([[n]]),
        np.array([1, 1, 0, 0], bool),
        np.random.default_rng(4),
        (draws, 1, 4),
    )
    assert (zel[..., 2:] == 0).all()
    share = np.exp(pair[0])
    assert abs(zel[:, 0, 0].mean() - n * share) < 4.5 * np.sqrt(n * share * (1 - share) / draws)


# ------------------------------------------------------------------- chao and ztbinomial: posteriors


def test_bayesian_chao_and_ztbinomial_posterior_medians_near_mle(intercept_only):
    """2 chains × 500 draws each. Weak priors against 1,828 people seen once or twice (Chao) and 68 hares
    (ztbinomial): the posterior median of N lies within half an ML SE of N̂ (references: Chao's closed form
    9,273.5, SE 662.6; VGAM's Huggins M0 on the hare 75.43, SE 3.45), as for the zero-truncated Poisson above;
    the posterior SD near the ML SE."""
    from estim.families.single_register import binomial_data

    hare = load_benchmark("hare")
    cases = [
        ("chao", intercept_only, 9273.51, 662.60),
        ("ztbinomial", binomial_data(hare.assign(k=hare.sum(axis=1)), times_seen="k", trials=6), 75.434, 3.455),
    ]  # fmt: skip
    for family_name, data, n_hat, se in cases:
        family = FAMILIES[family_name]
        idata = quick_nuts(family.build(data), 20260415)
        n_draws = family.population(data, idata, rng=1)
        assert abs(float(n_draws.median()) - n_hat) < 0.5 * se, family_name
        assert float(n_draws.std()) == pytest.approx(se, rel=0.25), family_name
