"""The ``lists_bma`` family (estim.families.lists.bma_family): dga's model averaging as an exact posterior.

References: R's dga 2.0.2 on the shipped benchmarks (`scripts/r_references_dga.R`, the constants of
tests/families/test_lists_bma.py); the hyper-Dirichlet's posterior mean in closed form; the exact posterior's
own quantiles for its draws (within Monte Carlo error of the draw count).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.closed import history_data
from estim.families.lists.bma import counts_posterior, log_prior_population, whole_grid
from estim.families.lists.bma_family import (
    GROUP,
    _exact,
    bma_posterior,
    hyper_dirichlet,
    predictive_counts,
)
from estim.families.lists.graphs import decomposable_graphs
from estim.paths import REPO_ROOT

KOSOVO_LISTS = ["EXH", "ABA", "OSCE", "HRW"]
UK_LISTS = ["LA", "NG", "PFNCA", "GO", "GP"]


def _kosovo():
    return history_data(load_benchmark("kosovo_4lists"), occasions=KOSOVO_LISTS, count="Freq")


def _uk():
    return history_data(
        load_benchmark("uk_modern_slavery_5lists"), occasions=UK_LISTS, count="count"
    )


def test_kosovo_exact_posterior_is_dgas():
    """dga bma.cr(Yk, 1:52800, 1/16, graphs4): mean 12,749.3493, median 12,595, 95 % [9,827, 16,544], top
    graph with 0.9855137499. The default grid (m = 0…M, whole posterior) gives the same to the person."""
    result = bma_posterior(_kosovo(), delta=1 / 16)
    assert result.edge_ratio < 1e-6
    assert result.n_missing[0] == 0 and result.n_missing[-1] < 12 * 4400
    assert result.mean == pytest.approx(12749.3493, abs=0.05)
    assert (result.median, *result.interval()) == (12595, 9827, 16544)
    # the grids differ (m = 0…24,870 against 1…52,800): the graph probabilities to 1e-6
    assert result.graph_probability[result.top] == pytest.approx(0.9855137499, abs=1e-6)


def test_uk_grid_multiple_reproduces_dgas_12n_cut_and_default_holds_the_tail():
    """dga on 1:12n: median 22,912, [10,382, 32,574]; on 1:100000 (untruncated): 22,990, [10,387, 33,510]."""
    short = bma_posterior(_uk(), delta=2**-5, grid_multiple=12)
    assert (short.n_missing[0], short.n_missing[-1]) == (1, 12 * 2744)
    assert (short.median, *short.interval()) == (22912, 10382, 32574)
    whole = bma_posterior(_uk(), delta=2**-5)
    assert whole.edge_ratio < 1e-6 < short.edge_ratio
    assert (whole.median, *whole.interval()) == (22990, 10387, 33510)
    assert whole.mean == pytest.approx(21282.2572, abs=0.5)


def test_draws_reproduce_the_exact_median_and_interval():
    """Each exact quantile's CDF value among 8,000 independent draws is within 4 binomial SEs of its level."""
    result = bma_posterior(_kosovo(), delta=1 / 16)
    groups = _exact(_kosovo(), {}, np.random.default_rng(3), draws=2000, chains=4, delta=1 / 16)
    n = groups["posterior"]["N"]
    assert n.dims == ("chain", "draw") and n.shape == (4, 2000)
    draws = n.values.ravel()
    for level, exact in (
        (0.5, result.median),
        (0.025, result.interval()[0]),
        (0.975, result.interval()[1]),
    ):
        below = np.mean(draws < exact)  # P(N < q) < level ≤ P(N ≤ q) for the exact quantile q
        upto = np.mean(draws <= exact)
        se = np.sqrt(level * (1 - level) / draws.size)
        assert below - 4 * se < level < upto + 4 * se, (level, below, upto)
    table = groups[GROUP]
    assert table.attrs["median"] == 12595 and (table.attrs["lower"], table.attrs["upper"]) == (
        9827,
        16544,
    )
    top = str(table["name"].values[0])
    share = np.mean(groups["posterior"]["graph"].values == top)
    p = float(table["probability"].values[0])
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / draws.size)


def test_same_seed_same_draws():
    a = _exact(_kosovo(), {}, np.random.default_rng(5), draws=200, chains=2)
    b = _exact(_kosovo(), {}, np.random.default_rng(5), draws=200, chains=2)
    c = _exact(_kosovo(), {}, np.random.default_rng(6), draws=200, chains=2)
    for name in ("posterior", "posterior_predictive"):
        assert a[name].identical(b[name])
    assert not np.array_equal(a["posterior"]["N"].values, c["posterior"]["N"].values)


# --------------------------------------------------------------------------------------------------------------
# The posterior predictive draws against the hyper-Dirichlet's closed form


def _margin(z: np.ndarray, mask: int) -> np.ndarray:
    codes = np.arange(z.size)
    return np.bincount(codes & mask, weights=z, minlength=z.size)


@pytest.mark.parametrize("graph", range(8))
def test_hyper_dirichlet_mean_is_the_closed_form(graph):
    """3 lists, every graph: E[θ(x)] = Π_C (z_C(x) + δ_C) / Π_S (z_S(x) + δ_S) / (N + α)^(#C − #S), the
    hyper-Dirichlet posterior mean, matched by 40,000 draws within 5 Monte Carlo SEs per cell."""
    g = decomposable_graphs(3)[graph]
    z = np.array(
        [40.0, 60, 49, 4, 247, 112, 142, 12]
    )  # Madigan & York's table, 40 people on no list
    delta, k = 0.5, 3
    codes = np.arange(8)
    expected = np.ones(8)
    for mask, sign in [(c, 1) for c in g.clique_masks] + [(s, -1) for s in g.separator_masks]:
        d = delta * 2.0 ** (k - mask.bit_count())
        expected *= ((_margin(z, mask)[codes & mask] + d) / (z.sum() + 8 * delta)) ** sign
    assert expected.sum() == pytest.approx(1.0)
    theta = hyper_dirichlet(g, np.tile(z, (40_000, 1)), delta, np.random.default_rng(graph))
    assert np.allclose(theta.sum(axis=1), 1.0)
    se = theta.std(axis=0) / np.sqrt(theta.shape[0])
    assert np.all(np.abs(theta.mean(axis=0) - expected) < 5 * se + 1e-12)


def test_saturated_graph_draws_are_one_dirichlet():
    """The complete graph's posterior is Dirichlet(z + δ): mean and variance of each cell as Dirichlet's."""
    g = decomposable_graphs(3)[-1]
    assert len(g.cliques) == 1 and len(g.cliques[0]) == 3
    z = np.array([10.0, 3, 0, 5, 20, 1, 2, 7])
    a = z + 0.25
    theta = hyper_dirichlet(g, np.tile(z, (40_000, 1)), 0.25, np.random.default_rng(0))
    mean = a / a.sum()
    var = mean * (1 - mean) / (a.sum() + 1)
    assert np.all(np.abs(theta.mean(axis=0) - mean) < 5 * np.sqrt(var / 40_000))
    np.testing.assert_allclose(theta.var(axis=0), var, rtol=0.05)


def test_predictive_counts_are_multinomials_of_n():
    """Replicated tables have N people in all (the unseen cell included) and mean N·E[θ]."""
    result = counts_posterior(
        np.array([0, 60, 49, 4, 247, 112, 142, 12]), ["A", "B", "C"], 1.0, np.arange(1, 301)
    )
    graph = np.zeros(20_000, dtype=np.int64)  # the independence graph
    missing = np.full(20_000, 100)
    counts = predictive_counts(result, graph, missing, 1)
    assert np.all(counts.sum(axis=1) == result.observed + 100)
    z = result.counts.astype(float)
    z[0] = 100
    n = z.sum()
    expected = n * np.prod(
        [(_margin(z, 1 << j)[np.arange(8) & (1 << j)] + 4.0) / (n + 8) for j in range(3)], axis=0
    )
    assert np.all(np.abs(counts.mean(axis=0) - expected) < 5 * counts.std(axis=0) / np.sqrt(20_000))


# --------------------------------------------------------------------------------------------------------------
# Options, refusals, priors, six lists


def test_refuses_ml_and_unknown_options():
    family = FAMILIES["lists_bma"]
    with pytest.raises(EstimInputError, match="no maximum-likelihood mode.*lists_stepwise"):
        family.mle(_kosovo())
    with pytest.raises(EstimInputError, match="no PyMC model"):
        family.build(_kosovo(), {})
    rng = np.random.default_rng(0)
    for options, says in [
        ({"threshold": 0.02}, "takes \\[options\\]"),
        ({"delta": -1.0}, "delta"),
        ({"prior_n": "uniform"}, "prior_n"),
        ({"grid_multiple": 0}, "grid_multiple"),
        ({"grid_multiple": 2.5}, "grid_multiple"),
    ]:
        with pytest.raises(EstimInputError, match=says):
            _exact(_kosovo(), {}, rng, draws=10, chains=1, **options)
    with pytest.raises(EstimInputError, match="no \\[priors\\]"):
        _exact(_kosovo(), {"p": object()}, rng, draws=10, chains=1)


def test_rissanen_prior_is_the_universal_code_length():
    """log*(2) = 1, log*(16) = 4 + 2 + 1 = 7, log*(65,536) = 16 + 4 + 2 + 1 = 23 (bits)."""
    values = log_prior_population(np.array([2, 16, 65536]), "rissanen")
    np.testing.assert_allclose(values, -np.log(2) * np.array([1, 7, 23]))
    np.testing.assert_allclose(log_prior_population(np.array([5.0]), "inverse"), -np.log(5.0))
    result = bma_posterior(_kosovo(), delta=1 / 16, prior_n="rissanen")
    inverse = bma_posterior(_kosovo(), delta=1 / 16)
    # Rissanen's prior falls faster than 1/N (by 1/log N …): a slightly lower posterior
    assert 0.98 * inverse.median < result.median < inverse.median


def test_whole_grid_ends_where_the_posterior_has_gone():
    y = np.zeros(16, dtype=np.int64)
    for c, n in zip(
        range(1, 16),
        [936, 845, 217, 306, 123, 31, 32, 1131, 228, 106, 42, 177, 181, 18, 27],
        strict=True,
    ):
        y[c] = n  # any table will do; the end is checked against the exact pmf
    grid = whole_grid(y, 4, 1 / 16)
    result = counts_posterior(y, list("ABCD"), 1 / 16, grid)
    assert result.edge_ratio < 1e-6
    # and not far beyond: 10 % before the end the posterior is still near the tolerance
    assert result.pmf[int(0.9 * grid.size)] > 1e-9 * result.pmf.max()


def test_six_lists_average_over_18154_graphs():
    rng = np.random.default_rng(11)
    x = (rng.random((400, 6)) < 0.3).astype(int)
    y = np.bincount(x @ (1 << np.arange(6)), minlength=64)
    result = counts_posterior(y, list("ABCDEF"), None, np.arange(0, 1500))
    assert len(result.graphs) == 18154
    assert result.graph_probability.sum() == pytest.approx(1.0)
    assert result.n_missing[0] == 0 and result.edge_ratio < 1e-3


# --------------------------------------------------------------------------------------------------------------
# fit -> summary -> check, and compare refusing


def test_fit_summary_check_round_trip(tmp_path):
    from estim.report.checks import predictive_summary
    from estim.report.summary import compare, format_summary, summarise
    from estim.run import store
    from estim.run.fit import fit
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "kosovo_lists_bma.toml")
    result = fit(spec, out=tmp_path / "k.nc")
    assert result.passed and result.seconds < 60
    tree = store.load(result.path)
    assert tree.attrs["sampler"] == "exact" and "sample_stats" not in tree.children
    assert [c.name for c in result.verdict.checks] == ["r_hat", "ess_bulk", "ess_tail"]
    again = fit(spec, out=tmp_path / "k2.nc")
    assert np.array_equal(tree["posterior"]["N"].values, again.idata["posterior"]["N"].values)
    summary = summarise(tree, prob=0.95)
    n = summary["N"][0]
    assert (
        12595 - 300 < n["median"] < 12595 + 300
    )  # the exact median, within MC error of 4,000 draws
    assert summary["model_averaging"]["median"] == 12595
    assert summary["model_averaging"]["models"][0]["name"] == "[EXH,ABA,OSCE][EXH,OSCE,HRW]"
    assert "graph" not in summary["parameters"]
    text = format_summary(summary)
    assert "exact posterior" in text and "0.9855" in text and "NUTS" not in text
    assert summary["unobserved"][0]["median"] == pytest.approx(n["median"] - 4400)
    check = predictive_summary(tree)
    table = check["tables"]["history_count"]
    assert len(table) == 15 and table["inside"].mean() > 0.8
    with pytest.raises(EstimInputError, match="no maximum-likelihood"):
        fit_mle(spec)
    with pytest.raises(EstimInputError, match="no pointwise log-likelihood"):
        compare([result.path, again.path])


def test_uk_pattern_table_gains_its_empty_patterns():
    groups = _exact(_uk(), {}, np.random.default_rng(0), draws=50, chains=2, delta=2**-5)
    seen = groups["observed_data"]["history_count"]
    assert seen.sizes["history"] == 31 and int(seen.sum()) == 2744
    assert list(seen["history"].values[:2]) == ["11111", "11110"]
    labels = {"".join(map(str, bits)) for bits in itertools.product([0, 1], repeat=5)} - {"00000"}
    assert set(seen["history"].values) == labels
    assert groups["posterior_predictive"]["history_count"].shape == (2, 50, 1, 31)
