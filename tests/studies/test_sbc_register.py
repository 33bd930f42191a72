"""SBC of the zero-truncated binomial (estim/studies/sbc_designs.py, ``ztbinomial``): the simulator draws each
person's times seen from Binomial(t, p), the law the model states; the model's likelihood and the design's
P(unseen) at the truth are that law's; one replicate runs end to end."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

from estim.families.registry import load_all
from estim.studies import sbc

TRIALS = 6
LOGIT_P = -0.4


def test_the_binomial_simulator_draws_the_models_law():
    """300,000 people at logit p = −0.4: f_1 … f_6 and the unseen against N · Binomial(6, p), z < 4."""
    design = sbc.DESIGNS["ztbinomial"]
    size = 300_000
    data = design.simulate(np.random.default_rng(21), size, {"beta_intercept": np.array(LOGIT_P)})
    assert data["trials"].values.tolist() == [TRIALS]
    f = data["frequency"].values[0]
    assert data["k"].values.tolist() == list(range(1, TRIALS + 1))
    p = scipy.stats.binom.pmf(np.arange(TRIALS + 1), TRIALS, scipy.special.expit(LOGIT_P))
    observed = np.r_[size - f.sum(), f]
    z = (observed - size * p) / np.sqrt(size * p * (1 - p))
    assert np.abs(z).max() < 4


def test_the_binomial_models_likelihood_and_p_unseen_at_the_truth_are_the_laws():
    design = sbc.DESIGNS["ztbinomial"]
    fam = load_all()["ztbinomial"]
    data = design.simulate(np.random.default_rng(22), 400, {"beta_intercept": np.array(LOGIT_P)})
    model = fam.build(data, None)
    observed = model[fam.observed_name]
    with model:
        log_p0 = design.log_p_unseen(model)
    (log_p0,) = model.replace_rvs_by_values([log_p0])  # at the point, not random draws
    fn = model.compile_fn([log_p0, model.logp(vars=[observed], sum=True)], point_fn=True)
    got_p0, loglik = fn({"beta_intercept": np.array(LOGIT_P)})
    pmf = scipy.stats.binom.pmf(np.arange(TRIALS + 1), TRIALS, scipy.special.expit(LOGIT_P))
    f = data["frequency"].values[0]
    assert float(got_p0) == pytest.approx(np.log(pmf[0]), rel=1e-12)
    assert float(loglik) == pytest.approx(float(f @ np.log(pmf[1:] / (1 - pmf[0]))), rel=1e-10)


def test_one_binomial_replicate_runs_end_to_end():
    rows = sbc.replicate_rows(("ztbinomial", 0, 5), draws_per_rank=9, backend="numba")
    assert rows["error"].fillna("").eq("").all(), rows["error"].iloc[0]
    assert set(rows["quantity"]) == {"N", "beta_intercept", "loglik"}
    assert rows["rank"].between(0, 9).all()


# zelterman: unseen with e^−λ (λ = 2e^η); a person seen has K ∈ {1, 2} with ψ, then K = 2 with λ/(2 + λ); else
# K = 3 + Poisson(1). The model reads f_2 given f_1 + f_2 and, through the SBC potential, n; ψ is not in it.
ETA, PSI = -0.3, 0.35


def _zelterman_law(kmax: int) -> np.ndarray:
    """P(K = k), k = 0 … kmax, the last cell holding K ≥ kmax."""
    lam = 2.0 * np.exp(ETA)
    q = 1.0 - np.exp(-lam)
    p = np.zeros(kmax + 1)
    p[0] = np.exp(-lam)
    p[1] = q * PSI * 2.0 / (2.0 + lam)
    p[2] = q * PSI * lam / (2.0 + lam)
    more = scipy.stats.poisson.pmf(np.arange(kmax - 3), 1.0)
    p[3:kmax] = q * (1 - PSI) * more
    p[kmax] = q * (1 - PSI) * scipy.stats.poisson.sf(kmax - 4, 1.0)
    return p


def test_the_zelterman_simulator_draws_the_stated_law():
    """300,000 people at η = −0.3, ψ = 0.35: the unseen and f_1 … f_6, f_7+ against N · P(K = k), z < 4."""
    design = sbc.DESIGNS["zelterman"]
    size = 300_000
    truth = {"beta_intercept": np.array(ETA), "psi": np.array(PSI)}
    data = design.simulate(np.random.default_rng(23), size, truth)
    f = data["frequency"].values[0]
    assert data["k"].values[0] == 1
    kmax = 7
    p = _zelterman_law(kmax)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    observed = np.r_[size - f.sum(), f[: kmax - 1], f[kmax - 1 :].sum()]
    z = (observed - size * p) / np.sqrt(size * p * (1 - p))
    assert np.abs(z).max() < 4


def test_the_zelterman_models_likelihood_and_p_unseen_at_the_truth_are_the_laws():
    """The model has η alone (ψ is not in it); its P(unseen) is e^−λ and its likelihood the binomial of f_2
    given f_1 + f_2 with λ/(2 + λ), people seen 3+ times left out."""
    design = sbc.DESIGNS["zelterman"]
    fam = load_all()["zelterman"]
    truth = {"beta_intercept": np.array(ETA), "psi": np.array(PSI)}
    data = design.simulate(np.random.default_rng(24), 600, truth)
    model = fam.build(data, None)
    assert [rv.name for rv in model.free_RVs] == ["beta_intercept"]
    observed = model[fam.observed_name]
    with model:
        log_p0 = design.log_p_unseen(model)
    (log_p0,) = model.replace_rvs_by_values([log_p0])
    fn = model.compile_fn([log_p0, model.logp(vars=[observed], sum=True)], point_fn=True)
    got_p0, loglik = fn({"beta_intercept": np.array(ETA)})
    lam = 2.0 * np.exp(ETA)
    f = data["frequency"].values[0]
    assert f[2:].sum() > 0  # people seen 3+ times are in the data, not in the likelihood
    assert float(got_p0) == pytest.approx(-lam, rel=1e-12)
    want = scipy.stats.binom.logpmf(f[1], f[0] + f[1], lam / (2 + lam)) - np.log(
        scipy.special.comb(f[0] + f[1], f[1])
    )
    assert float(loglik) == pytest.approx(float(want), rel=1e-10)


def test_one_zelterman_replicate_runs_end_to_end():
    rows = sbc.replicate_rows(("zelterman", 0, 5), draws_per_rank=9, backend="numba")
    assert rows["error"].fillna("").eq("").all(), rows["error"].iloc[0]
    assert set(rows["quantity"]) == {"N", "beta_intercept", "loglik"}
    assert rows["rank"].between(0, 9).all()
