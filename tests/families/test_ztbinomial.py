"""The zero-truncated binomial family: the intercept-only MLE against the root of its score equation (brentq),
the hare against the conditional (Huggins) M0 fitted from the capture histories and against VGAM, covariates
and unequal numbers of occasions against a direct per-unit fit, the Bayesian likelihood against scipy's
binomial, and the [data] rules (k > t, the trials fields)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats as st
import xarray as xr
from pytensor.compile.mode import Mode

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.registry import load_all
from estim.families.single_register import BINOMIAL, binomial_data, design
from estim.paths import REPO_ROOT

FAST = Mode(linker="py", optimizer="fast_compile")
OCCASIONS = ["c1", "c2", "c3", "c4", "c5", "c6"]
load_all()


@pytest.fixture(scope="module")
def hare() -> pd.DataFrame:
    table = load_benchmark("hare")
    return table.assign(k=table[OCCASIONS].sum(axis=1))


def simulated(
    seed: int, size: int = 3000, with_covariate: bool = False
) -> tuple[pd.DataFrame, int]:
    """Units with 4 or 7 occasions (a column), logit p = −1.2 + 0.8·[group b]; the seen ones, and N."""
    rng = np.random.default_rng(seed)
    t = rng.choice([4, 7], size)
    group = rng.choice(np.array(["a", "b"]), size)
    p = scipy.special.expit(-1.2 + (0.8 * (group == "b") if with_covariate else 0.0))
    k = rng.binomial(t, p)
    seen = k > 0
    return pd.DataFrame({"k": k[seen], "t": t[seen], "group": group[seen]}), size


def test_intercept_only_mle_solves_the_mean_equation():
    """k̄ = t p/(1 − (1 − p)^t) at the MLE (the truncated binomial's score equation), solved by brentq."""
    f = np.array([40, 31, 22, 9, 4])  # seen 1..5 times out of t = 5
    k = np.arange(1, 6)
    table = pd.DataFrame({"k": k, "n": f})
    data = binomial_data(table, times_seen="k", count="n", trials=5)
    r = FAMILIES["ztbinomial"].mle(data)
    mean_k = (f * k).sum() / f.sum()
    p = scipy.optimize.brentq(lambda q: 5 * q / (1 - (1 - q) ** 5) - mean_k, 1e-6, 1 - 1e-9)
    assert r.converged
    assert scipy.special.expit(r.parameters["beta_intercept"]) == pytest.approx(p, rel=1e-7)
    p0 = (1 - p) ** 5
    assert r.n_hat == pytest.approx(f.sum() / (1 - p0), rel=1e-7)

    # SE: HT sampling variance plus the delta method, Var(logit p̂) from the observed information by
    # finite differences of the log-likelihood written with scipy
    def loglik(logit):
        q = scipy.special.expit(logit)
        return np.sum(f * (st.binom.logpmf(k, 5, q) - np.log1p(-st.binom.pmf(0, 5, q))))

    b, h = scipy.special.logit(p), 1e-4
    info = -(loglik(b + h) - 2 * loglik(b) + loglik(b - h)) / h**2

    def n_of(logit):
        return f.sum() / (1 - (1 - scipy.special.expit(logit)) ** 5)

    dn = (n_of(b + h) - n_of(b - h)) / (2 * h)
    se = np.sqrt(dn**2 / info + f.sum() * p0 / (1 - p0) ** 2)
    assert r.se == pytest.approx(se, rel=1e-4)


def _huggins_m0(histories: np.ndarray) -> tuple[float, float]:
    """Conditional (Huggins 1989) M0 from the 0/1 histories themselves: Π_j p^{y_ij}(1 − p)^{1 − y_ij} over
    occasions, divided by 1 − (1 − p)^T; N̂ = Σ 1/(1 − (1 − p̂)^T) and its Huggins SE (numerical)."""
    t = histories.shape[1]

    def negll(logit):
        q = scipy.special.expit(logit)
        per_unit = np.sum(histories * np.log(q) + (1 - histories) * np.log1p(-q), axis=1)
        return -np.sum(per_unit - np.log1p(-((1 - q) ** t)))

    b = scipy.optimize.minimize_scalar(negll, bracket=(-2, 0), tol=1e-12).x
    n = len(histories)
    p0 = (1 - scipy.special.expit(b)) ** t
    h = 1e-4
    info = (negll(b + h) - 2 * negll(b) + negll(b - h)) / h**2

    def n_of(logit):
        return n / (1 - (1 - scipy.special.expit(logit)) ** t)

    dn = (n_of(b + h) - n_of(b - h)) / (2 * h)
    return n / (1 - p0), float(np.sqrt(dn**2 / info + n * p0 / (1 - p0) ** 2))


def test_hare_is_the_conditional_m0(hare):
    data = binomial_data(hare, times_seen="k", trials=6)
    r = FAMILIES["ztbinomial"].mle(data)
    n_hat, se = _huggins_m0(hare[OCCASIONS].to_numpy())
    assert r.converged and not r.boundary
    assert r.n_hat == pytest.approx(n_hat, rel=1e-6)
    assert r.se == pytest.approx(se, rel=1e-4)
    # VGAM: vglm(cbind(c1, …, c6) ~ 1, posbernoulli.t(parallel.t = TRUE ~ 1)) gives 75.43362, SE 3.454972
    assert r.n_hat == pytest.approx(75.43362, rel=1e-5)
    assert r.se == pytest.approx(3.455, rel=1e-3)


def test_the_shipped_spec_fits_the_hare():
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "hare_ztbinomial.toml")
    start = time.perf_counter()
    r = fit_mle(spec)
    assert time.perf_counter() - start < 10
    assert r.n_hat == pytest.approx(75.43362, rel=1e-5)


def test_covariate_and_unequal_occasions_against_a_direct_fit():
    table, _ = simulated(11, with_covariate=True)
    data = binomial_data(table, times_seen="k", trials="t", covariates=["group"])
    # t splits the patterns but is not a covariate
    assert list(design(data).terms) == ["group[b]"]
    assert sorted(set(data["trials"].values.tolist())) == [4, 7]
    assert data.sizes["pattern"] == 4
    r = FAMILIES["ztbinomial"].mle(data)
    k, t = table["k"].to_numpy(), table["t"].to_numpy()
    b = (table["group"] == "b").to_numpy(float)

    def negll(theta):
        q = scipy.special.expit(theta[0] + theta[1] * b)
        return -np.sum(st.binom.logpmf(k, t, q) - np.log1p(-st.binom.pmf(0, t, q)))

    direct = scipy.optimize.minimize(
        negll, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-9}
    )
    assert r.converged
    assert r.parameters["beta_intercept"] == pytest.approx(direct.x[0], abs=1e-5)
    assert r.parameters["beta[group[b]]"] == pytest.approx(direct.x[1], abs=1e-5)
    q = scipy.special.expit(direct.x[0] + direct.x[1] * b)
    assert r.n_hat == pytest.approx(np.sum(1 / (1 - (1 - q) ** t)), rel=1e-6)
    assert r.loglik == pytest.approx(-direct.fun, abs=1e-6)
    # several patterns: no single full likelihood in N to profile
    assert r.profile is None


def test_bayesian_likelihood_equals_scipy_truncated_binomial():
    table, _ = simulated(5, size=800, with_covariate=True)
    data = binomial_data(table, times_seen="k", trials="t", covariates=["group"])
    model = FAMILIES["ztbinomial"].build(data)
    b0, b1 = -0.9, 0.4
    point = {"beta_intercept": np.array(b0), "beta": np.array([b1])}
    q = scipy.special.expit(b0 + b1 * (table["group"] == "b").to_numpy(float))
    k, t = table["k"].to_numpy(), table["t"].to_numpy()
    brute = np.sum(st.binom.logpmf(k, t, q) - np.log(1 - st.binom.pmf(0, t, q)))
    got = model.compile_logp(vars=[model["frequency"]], mode=FAST)(point)
    assert got == pytest.approx(brute, rel=1e-10)
    cells = model.compile_fn(
        model.logp(vars=[model["frequency"]], sum=False)[0], inputs=model.value_vars, mode=FAST
    )(point)
    assert cells.shape == data["frequency"].shape and np.all(np.isfinite(cells))
    # replicated frequencies never put a unit above its number of occasions
    replicate = pm_draw(model, seed=3)
    over = data["k"].values[None, :] > data["trials"].values[:, None]
    assert replicate[over].sum() == 0
    assert (replicate.sum(axis=1) == data["frequency"].values.sum(axis=1)).all()


def pm_draw(model, seed: int) -> np.ndarray:
    import pymc as pm

    return pm.draw(model["frequency"], random_seed=seed, mode=FAST)


def test_population_draws_have_the_horvitz_thompson_mean():
    table, _ = simulated(8, size=1500)
    data = binomial_data(table, times_seen="k", trials="t")
    b0, draws = -1.2, 4000
    posterior = xr.Dataset(
        {"beta_intercept": (("chain", "draw"), np.full((2, draws), b0))},
        coords={"chain": [0, 1], "draw": np.arange(draws)},
    )
    n_draws = FAMILIES["ztbinomial"].population(data, posterior, rng=2)
    p0 = (1 - scipy.special.expit(b0)) ** data["trials"].values
    n_x = data["frequency"].values.sum(axis=1)
    mean = np.sum(n_x / (1 - p0))
    sd = np.sqrt(np.sum(n_x * p0 / (1 - p0) ** 2))
    assert float(n_draws.mean()) == pytest.approx(mean, abs=4 * sd / np.sqrt(2 * draws))
    assert float(n_draws.std()) == pytest.approx(sd, rel=0.05)


def test_seen_more_often_than_occasions_names_row_and_column():
    table = pd.DataFrame({"k": [1, 2, 5, 1], "t": [3, 3, 4, 3]})
    with pytest.raises(
        EstimInputError, match=r"column 'k', row 3: seen 5 times in 4 occasions \(column 't'\)"
    ):
        binomial_data(table, times_seen="k", trials="t")
    with pytest.raises(EstimInputError, match=r"row 3: seen 5 times in 3 occasions \(trials = 3\)"):
        binomial_data(table, times_seen="k", trials=3)
    with pytest.raises(EstimInputError, match="column 't', row 2"):
        binomial_data(pd.DataFrame({"k": [1, 1], "t": [3, 0]}), times_seen="k", trials="t")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({}, "missing"),
        ({"trials": 6, "trials_column": "t"}, "not both"),
        ({"trials": ("t",)}, "use trials_column"),
        ({"trials": 0}, "whole number"),
    ],
)
def test_trials_fields_are_checked(given, says):
    fields = {
        f.name: (tuple(f.default) if f.many and f.default else f.default) for f in BINOMIAL.fields
    }
    fields.update(layout="individuals", times_seen="k", **given)
    with pytest.raises(EstimInputError, match=says) as e:
        BINOMIAL.check(fields, "file")
    assert e.value.field == "trials"
