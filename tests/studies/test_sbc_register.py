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
