"""Inputs that made the multiple-list families report a confident number the data do not give, each checked
against a reference computed here without estim's fits: Lincoln–Petersen on merged lists, the independence
(Mt) maximum likelihood by scipy, the simulator's truth, and the hyper-Dirichlet posterior in closed form.

* ``lists_stepwise`` on two identical lists (or one list inside another): every pair the data call for has no
  MLE, so SparseMSE's procedure stops at the main effects and reported their N̂ (476, SE 13, against a
  Lincoln–Petersen 1,000 on the merged lists), exit 0. Now no estimate, naming the pairs.
* ``lists_bma`` on a table of many people with heterogeneous capture: every graph but the saturated one is
  rejected, and the saturated graph's posterior of N is its prior's, piled at the n seen (median n + 1 for a
  true N twice n). Now refused (`ModelRejected`, exit 3); a smaller weight is warned of.
* ``lists_latent_class`` on 2 lists: the likelihood is flat in the number on neither list, and a fit returned
  the prior's N with the gate passed. Now refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import gammaln

from estim.errors import EstimInputError, ModelRejected
from estim.families.base import FAMILIES
from estim.families.closed import history_data
from estim.families.lists import build_latent_class, stepwise
from estim.families.lists.bma_family import bma_posterior
from estim.paths import BENCHMARKS_DIR

# Lists A and B hold the same 200 people; C, independent of them, 250: 150 on A and B only, 200 on C only,
# 50 on all three. The expected table of N = 1,000 with P(A = B = 1) = 0.2 and P(C) = 0.25 exactly.
IDENTICAL = [(1, 1, 0, 150), (0, 0, 1, 200), (1, 1, 1, 50)]
# Everyone on B is on A: B depends on A, C independent of A (A ⊥ C among everyone).
INSIDE = [(1, 0, 0, 200), (0, 0, 1, 180), (1, 1, 0, 40), (1, 0, 1, 50), (1, 1, 1, 10)]


def _data(rows, lists=("A", "B", "C")):
    table = pd.DataFrame([dict(zip(lists, r[:-1], strict=True), n=r[-1]) for r in rows])
    return history_data(table, occasions=list(lists), count="n")


def _independence_ml(rows, k=3):
    """Rcapture's Mt by scipy: the Poisson log-linear model log μ_h = b0 + Σ_j b_j x_hj fitted to the observed
    2^k − 1 patterns, those absent as zeros (the all-zero cell left out), N̂ = n + exp(b0), with the SE from the inverse Hessian of b0 by the
    delta method (exp(b0) · sd(b0), as Rcapture's N̂ less its multinomial term)."""
    given = {tuple(r[:k]): r[-1] for r in rows}
    x = np.array([[(h >> j) & 1 for j in range(k)] for h in range(1, 1 << k)], dtype=float)
    y = np.array(
        [given.get(tuple(int(v) for v in row), 0) for row in x], dtype=float
    )  # every pattern
    design = np.column_stack([np.ones(len(y)), x])

    def negloglik(b):
        eta = design @ b
        return -(y @ eta - np.exp(eta).sum())

    def gradient(b):
        return -(design.T @ (y - np.exp(design @ b)))

    start = np.r_[np.log(y.mean()), np.zeros(k)]
    best = minimize(negloglik, start, jac=gradient, method="BFGS", options={"gtol": 1e-10})
    info = design.T @ (np.exp(design @ best.x)[:, None] * design)
    unseen = np.exp(best.x[0])
    return y.sum() + unseen, unseen * np.sqrt(np.linalg.inv(info)[0, 0])


@pytest.mark.parametrize(
    ("rows", "reference", "pair"),
    [
        # A ≡ B: merged into one list, Lincoln–Petersen on (AB, C): 200 × 250 / 50
        (IDENTICAL, 200 * 250 / 50, "A:B"),
        # B inside A, C independent of A: n_A n_C / n_AC = 300 × 240 / 60
        (INSIDE, 300 * 240 / 60, "A:B"),
    ],
)
def test_stepwise_gives_no_estimate_when_the_pairs_the_data_call_for_have_no_mle(
    rows, reference, pair
):
    n_hat, se = _independence_ml(rows)
    # what the stepwise procedure stopped at: the independence model, whose interval misses the reference
    assert abs(n_hat - reference) > 4 * se
    result = stepwise(_data(rows))
    assert result.terms.interactions == ()
    assert result.path[-1].added is None and pair in {
        ":".join(p) for p in result.path[-1].failed_checks
    }
    fit = result.mle
    assert np.isnan(fit.n_hat) and fit.boundary
    assert pair in fit.message and "merge" in fit.message
    # the number SparseMSE reports is kept aside, and it is the independence model's
    assert fit.extra["n_hat_of_model_stopped_at"] == pytest.approx(n_hat, rel=1e-4)
    # through the family, as `estim fit --mle` reads it (exit 3: no estimate)
    family = FAMILIES["lists_stepwise"].mle(_data(rows))
    assert np.isnan(family.n_hat) and family.boundary


def test_stepwise_still_estimates_where_the_stop_is_the_datas():
    """Kosovo: SparseMSE 2.0.1's 14,341.66 (data/benchmarks/references.toml); and the merged lists of the
    identical-list table, where Mt is Lincoln–Petersen's 1,000."""
    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")
    data = history_data(table, occasions=["EXH", "ABA", "OSCE", "HRW"], count="Freq")
    assert stepwise(data).mle.n_hat == pytest.approx(14341.66, abs=0.01)
    merged = _data([(1, 0, 150), (0, 1, 200), (1, 1, 50)], lists=("AB", "C"))
    assert FAMILIES["Mt"].mle(merged).n_hat == pytest.approx(1000.0, rel=1e-6)


def _heterogeneous_table(size, seed=1):
    """`size` people, 30 % of them 2.5 times as visible to each of 4 independent lists (the simulator's truth
    is `size`), as a pattern table."""
    rng = np.random.default_rng(seed)
    low = np.array([0.10, 0.15, 0.12, 0.08])
    visible = rng.random(size) < 0.3
    p = np.where(visible[:, None], low * 2.5, low)
    x = (rng.random((size, 4)) < p).astype(np.int64)
    x = x[x.sum(axis=1) > 0]
    return pd.DataFrame(x, columns=LISTS4).value_counts().rename("n").reset_index()


LISTS4 = ["L1", "L2", "L3", "L4"]


def test_bma_refuses_when_the_saturated_graph_takes_the_posterior(tmp_path):
    """A true N of 1,000,000, 487,804 seen: the fit gave median 487,805, 95 % [487,804, 557,898], exit 0."""
    import warnings

    from estim.run.fit import fit_table

    table = _heterogeneous_table(1_000_000)
    seen = int(table["n"].sum())
    assert seen < 0.5 * 1_000_000  # the truth is twice the people seen
    fields = {"layout": "patterns", "lists": LISTS4, "count": "n"}
    # a fit (`estim fit`: exit 3) is refused before it starts, nothing saved
    with pytest.raises(ModelRejected, match=r"saturated graph \[L1,L2,L3,L4\].*probability 1\.000"):
        fit_table(table, "lists_bma", seed=1, fields=fields, out=tmp_path / "fit.nc")
    assert not (tmp_path / "fit.nc").exists()
    # the posterior itself, as dga computes it, is warned of
    data = history_data(table, occasions=LISTS4, count="n")
    with pytest.warns(UserWarning, match=r"saturated graph .* is mostly the prior's"):
        result = bma_posterior(data)
    assert result.median <= seen + 1 and result.interval(0.95)[1] < 0.6 * 1_000_000
    # the same design on 20,000 people passes, without warning, and its median is well above the n seen
    small = history_data(_heterogeneous_table(20_000, seed=2), occasions=LISTS4, count="n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = FAMILIES["lists_bma"].precheck(small)
        result = bma_posterior(small)
    assert verdict["passed"] and result.median > 1.5 * result.observed


def _saturated_posterior_median(n, k, delta, grid):
    """The posterior of N given the complete graph in closed form: one Dirichlet(δ) over the 2^k cells, the
    unseen m in the all-zero cell, p(N) ∝ 1/N: p(m | y) ∝ N!/m! · Γ(m + δ)/Γ(N + 2^k δ) / N, which depends on
    the table only through n."""
    m = grid.astype(float)
    big_n = n + m
    log_p = gammaln(big_n + 1) - gammaln(m + 1) + gammaln(m + delta) - gammaln(big_n + 2**k * delta)
    log_p -= np.log(big_n)
    cdf = np.cumsum(np.exp(log_p - log_p.max()))
    return int(n + grid[np.searchsorted(cdf / cdf[-1], 0.5)])


def test_bma_warns_when_the_saturated_graph_has_weight():
    data = _data(IDENTICAL)
    with pytest.warns(UserWarning, match=r"saturated graph \[A,B,C\].*probability 0\.1\d\d"):
        result = bma_posterior(data)
    full = [i for i, g in enumerate(result.graphs) if 7 in tuple(g.clique_masks)][0]
    reference = _saturated_posterior_median(400, 3, 1 / 8, result.n_missing)
    assert int(result.graph_median[full]) == reference
    assert reference < 1.01 * 400  # the prior's: at the n seen, whatever the table
    # Kosovo's posterior (dga 2.0.2: median 12,595) carries no such weight: no warning
    import warnings

    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")
    kosovo = history_data(table, occasions=["EXH", "ABA", "OSCE", "HRW"], count="Freq")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bma_posterior(kosovo, delta=1 / 16).median == 12595


def _two_class_loglik(y, weight, capture):
    """The latent-class conditional log-likelihood of the patterns 10, 01, 11 (numpy, not estim's)."""
    x = np.array([[1, 0], [0, 1], [1, 1]])
    pattern = (
        weight[:, None] * np.prod(np.where(x[None], capture[:, None], 1 - capture[:, None]), axis=2)
    ).sum(0)
    unseen = (weight * np.prod(1 - capture, axis=1)).sum()
    return float(y @ np.log(pattern / (1 - unseen)))


def test_latent_class_refuses_two_lists():
    y = np.array(
        [300.0, 200.0, 100.0]
    )  # A only, B only, both: Lincoln–Petersen 400 × 300 / 100 = 1,200
    q = y / y.sum()
    likelihoods = []
    for p0 in (0.2, 0.5, 0.8):  # the share on neither list
        # two classes, one per value of A: A = 0 (weight p0 + p01), A = 1 (weight p10 + p11)
        p10, p01, p11 = (1 - p0) * q
        weight = np.array([p0 + p01, p10 + p11])
        capture = np.array([[0.0, p01 / (p0 + p01)], [1.0, p11 / (p10 + p11)]])
        likelihoods.append(_two_class_loglik(y, weight, capture))
    # the same likelihood for 20 %, 50 % and 80 % of the population on neither list: N is not identified
    assert np.ptp(likelihoods) < 1e-9
    data = _data([(1, 0, 300), (0, 1, 200), (1, 1, 100)], lists=("A", "B"))
    with pytest.raises(EstimInputError, match="at least 3 lists, got 2"):
        build_latent_class(data)
    with pytest.raises(EstimInputError, match="at least 3 lists, got 2"):
        FAMILIES["lists_latent_class"].build(data, {}, classes=10)
    assert FAMILIES["Mt"].mle(data).n_hat == pytest.approx(1200.0, rel=1e-6)


def test_bma_warns_when_dgas_grid_cuts_the_posterior_off():
    """grid_multiple = 1 on Kosovo: median 8,264, 95 % [7,146, 8,774], without a word, against dga 2.0.2's
    12,595 [9,827, 16,544] on a grid holding the whole posterior (data/benchmarks/references.toml)."""
    import warnings

    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")
    kosovo = history_data(table, occasions=["EXH", "ABA", "OSCE", "HRW"], count="Freq")
    with pytest.warns(
        UserWarning, match=r"grid of the unseen 1…1·n ends where N's posterior is still 0\.9"
    ):
        cut = bma_posterior(kosovo, delta=1 / 16, grid_multiple=1)
    assert cut.interval(0.95)[1] < 9827  # the cut interval lies below the reference's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dga's own 12n grid holds Kosovo's posterior: no warning
        assert bma_posterior(kosovo, delta=1 / 16, grid_multiple=12).interval(0.95) == (9827, 16544)


def test_a_list_holding_everyone_seen_is_warned_of():
    # A holds all 200 seen (100 on A only, 50 also on B, 40 also on C, 10 on all three): the posterior put N at
    # 200, 95 % [200, 237], from the boundary where Mt's MLE does not exist
    census = [(1, 0, 0, 100), (1, 1, 0, 50), (1, 0, 1, 40), (1, 1, 1, 10)]
    with pytest.warns(UserWarning, match="list 'A' holds every one of the 200 people seen"):
        bma_posterior(_data(census))
    mt = FAMILIES["Mt"].mle(_data(census))
    assert not mt.converged or mt.boundary  # the reference: no interior maximum
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bma_posterior(_data(IDENTICAL))
    assert not [w for w in caught if "holds every one" in str(w.message)]
