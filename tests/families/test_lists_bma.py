"""Bayesian model averaging over decomposable graphs (estim.families.lists.bma) against R's dga 2.0.2 and
brute force.

The constants are dga's output as `scripts/r_references_dga.R` prints it (R 4.2.2, dga 2.0.2): ``bma.cr(Y,
Nmissing, delta, graphsK[, logprior])``, the posterior of N = sum(Y) + Nmissing from ``colSums(weights)``, a
quantile the smallest N whose CDF reaches it, a graph's probability from ``rowSums(weights)``.
"""

from __future__ import annotations

import hashlib
import itertools
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gammaln, logsumexp

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families.lists.bma import dga_posterior, pattern_counts
from estim.families.lists.graphs import decomposable_graphs, is_chordal

KOSOVO = ("kosovo_4lists", ["EXH", "ABA", "OSCE", "HRW"], "Freq")
UK = ("uk_modern_slavery_5lists", ["LA", "NG", "PFNCA", "GO", "GP"], "count")


def _table(y: list[int], k: int) -> pd.DataFrame:
    """dga's array (vector in R's array order: list j is bit j of the position) as a pattern table."""
    rows = [[c >> j & 1 for j in range(k)] + [n] for c, n in enumerate(y) if c and n]
    return pd.DataFrame(rows, columns=[f"L{j + 1}" for j in range(k)] + ["n"])


# Madigan & York (1997), dga's own examples: three lists with their prior on N, and five lists.
MY3 = [0, 60, 49, 4, 247, 112, 142, 12]
MY5 = [0, 27, 37, 19, 4, 4, 1, 1, 97, 22, 37, 25, 2, 1, 3, 5]
MY5 += [83, 36, 34, 18, 3, 5, 0, 2, 30, 5, 23, 8, 0, 3, 0, 2]


def _my3_log_prior(population: np.ndarray) -> np.ndarray:
    a, b = 13.14, 55.17
    n = population.astype(float)
    return n * np.log(b) - (n + a) * np.log(1 + b) + gammaln(n + a) - gammaln(n + 1) - gammaln(a)


def _my3():
    grid = np.arange(1, 301)
    log_prior = _my3_log_prior(sum(MY3) + grid)
    return dga_posterior(_table(MY3, 3), ["L1", "L2", "L3"], "n", 1.0, grid, log_prior), grid


# --------------------------------------------------------------------------------------------------------------
# The graphs


def _canonical(k: int) -> list[str]:
    # the R script's lines: "C:" cliques "|" ";S:" separators, each "."-joined 1-based lists, all sorted
    def sets(x):
        return "|".join(sorted(".".join(str(v + 1) for v in c) for c in x))

    return sorted(f"C:{sets(g.cliques)};S:{sets(g.separators)}" for g in decomposable_graphs(k))


@pytest.mark.parametrize(
    ("k", "count", "sha256"),
    [
        (3, 8, "6045b3fdbf7aa5f8ef1d6ac822cc5ddb057a14dc2719ff89e81687b8d43196d5"),
        (4, 61, "cc36b7d3f1a5f45a1ebc6443de07c226e5844fc1db2e92f2dcaae902318575ab"),
        (5, 822, "68b595c9c5905b91a389fe22760eb9987248bcd4c7d6cfaaafda3c1c8469af35"),
    ],
)
def test_graphs_equal_dgas_graphs3_to_graphs5(k, count, sha256):
    """Every graph with its cliques and separators (with multiplicity), as dga's data(graphsK) lists them."""
    lines = _canonical(k)
    assert len(lines) == count
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == sha256


def test_three_list_graphs_one_by_one():
    assert _canonical(3) == [
        "C:1.2.3;S:",
        "C:1.2|1.3;S:1",
        "C:1.2|2.3;S:2",
        "C:1.2|3;S:",
        "C:1.3|2.3;S:3",
        "C:1.3|2;S:",
        "C:1|2.3;S:",
        "C:1|2|3;S:",
    ]


def test_chordality_and_counts():
    """The labelled chordal graphs number 1, 2, 8, 61, 822 on 1…5 vertices (OEIS A058862); a 4-cycle is not
    chordal, with a chord it is; a 5-cycle with two chords from one vertex is."""
    assert [len(decomposable_graphs(k)) for k in range(1, 6)] == [1, 2, 8, 61, 822]
    cycle = [(0, 1), (1, 2), (2, 3), (0, 3)]
    assert not is_chordal(4, cycle)
    assert is_chordal(4, [*cycle, (0, 2)])
    assert not is_chordal(5, [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2)])
    assert is_chordal(5, [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2), (0, 3)])
    star = next(g for g in decomposable_graphs(4) if g.name() == "[1,2][1,3][1,4]")
    assert star.separators == ((0,), (0,))
    assert star.name(["a", "b", "c", "d"]) == "[a,b][a,c][a,d]"
    with pytest.raises(EstimInputError, match="lists"):
        decomposable_graphs(7)


# --------------------------------------------------------------------------------------------------------------
# The marginal likelihood of one graph, by brute force


def _brute_log_table(
    full: np.ndarray, k: int, cliques: list[tuple[int, ...]], delta: float
) -> float:
    """log P(complete table | N, graph) under the hyper-Dirichlet prior, by the graph's factorisation into
    Dirichlet–multinomials: the first clique's margin, then each next clique's new lists given the lists it
    shares with the earlier ones (a Dirichlet with δ·2^(K−|C|) per cell for every separator cell)."""
    codes = np.arange(1 << k)
    n = int(full.sum())
    log_p = gammaln(n + 1) - gammaln(full + 1).sum()  # multinomial coefficient of the table
    seen = 0
    for clique in cliques:
        mask = sum(1 << v for v in clique)
        sep, new = mask & seen, mask & ~seen
        alpha = delta * 2.0 ** (k - len(clique))
        subsets = [b for b in range(1 << k) if b & new == b]
        for a in (a for a in range(1 << k) if a & sep == a):
            x = np.array([full[((codes & sep) == a) & ((codes & new) == b)].sum() for b in subsets])
            dm = stats.dirichlet_multinomial.logpmf(x, np.full(x.size, alpha), int(x.sum()))
            # the Dirichlet integral is the Dirichlet–multinomial without its multinomial coefficient
            log_p += dm - (gammaln(x.sum() + 1) - gammaln(x + 1).sum())
        seen |= mask
    return float(log_p)


MY3_GRAPHS = {  # dga's graphs3 (cliques 0-based) and their posterior probabilities from dga
    "[1][2][3]": ([(0,), (1,), (2,)], 0.000000000015),
    "[1,2][3]": ([(0, 1), (2,)], 0.373767397640),
    "[1,3][2]": ([(0, 2), (1,)], 0.000000000003),
    "[1][2,3]": ([(0,), (1, 2)], 0.000000000354),
    "[1,2][1,3]": ([(0, 1), (0, 2)], 0.281809922123),
    "[1,2][2,3]": ([(0, 1), (1, 2)], 0.309895301755),
    "[1,3][2,3]": ([(0, 2), (1, 2)], 0.000000000196),
    "[1,2,3]": ([(0, 1, 2)], 0.034527377915),
}


def test_marginal_likelihood_of_each_graph_equals_brute_force():
    """Madigan & York's three lists (δ = 1, their prior on N): for every graph the posterior of N given it, and
    the graphs' posterior probabilities, from the Dirichlet–multinomial factorisation (scipy), and the latter
    also from dga (bma.cr(Y3, 1:300, 1, graphs3, logprior3))."""
    result, grid = _my3()
    y = np.array(MY3, dtype=float)
    log_prior = _my3_log_prior(sum(MY3) + grid)
    names = [g.name() for g in result.graphs]
    evidence = {}
    for name, (cliques, _) in MY3_GRAPHS.items():
        log_post = (
            np.array([_brute_log_table(np.r_[m, y[1:]], 3, cliques, 1.0) for m in grid]) + log_prior
        )
        evidence[name] = logsumexp(log_post)
        ours = result.graph_pmf(names.index(name))
        np.testing.assert_allclose(ours, np.exp(log_post - evidence[name]), rtol=1e-9, atol=1e-15)
    total = logsumexp(list(evidence.values()))
    for name, (_, dga_probability) in MY3_GRAPHS.items():
        ours = result.graph_probability[names.index(name)]
        assert ours == pytest.approx(np.exp(evidence[name] - total), rel=1e-9, abs=1e-15)
        assert ours == pytest.approx(dga_probability, abs=2e-12)


def test_madigan_york_three_lists_as_dga():
    """bma.cr(Y3, 1:300, 1, graphs3, logprior3): mean 733.4524, median 731, 95 % [682, 797], mode 728 (M & Y
    report 728); the posterior of N at 700, 728 and 800."""
    result, grid = _my3()
    assert result.mean == pytest.approx(733.4524, abs=1e-4)
    assert result.median == 731
    assert result.interval() == (682, 797)
    assert result.population[np.argmax(result.pmf)] == 728
    at = result.pmf[np.searchsorted(result.population, [700, 728, 800])]
    np.testing.assert_allclose(
        at, [7.333011775386e-03, 1.561989781962e-02, 1.189045042595e-03], rtol=1e-9
    )


def test_madigan_york_five_lists_as_dga():
    """bma.cr(Y5, 1:300, 0.5, graphs5): mean 617.8159, median 616, [588, 655]; top graphs as dga's."""
    lists = [f"L{j}" for j in range(1, 6)]
    result = dga_posterior(_table(MY5, 5), lists, "n", 0.5, np.arange(1, 301))
    assert result.mean == pytest.approx(617.8159, abs=1e-4)
    assert (result.median, *result.interval()) == (616, 588, 655)
    table = result.graph_table()
    names = ["[L1,L2][L1,L3][L2,L4][L4,L5]", "[L1,L2][L1,L3][L4,L5]", "[L1,L2,L4][L1,L3][L4,L5]"]
    assert list(table["graph"][:3]) == names
    np.testing.assert_allclose(
        table["probability"][:3], [0.2170734506, 0.1602936870, 0.0822656216], atol=1e-10
    )


# --------------------------------------------------------------------------------------------------------------
# The benchmarks


def _fit(bench, delta, grid):
    name, lists, count = bench
    start = time.perf_counter()
    result = dga_posterior(load_benchmark(name), lists, count, delta, grid)
    return result, time.perf_counter() - start


def test_kosovo_as_dga():
    """bma.cr(Yk, 1:52800, 1/16, graphs4) (the grid 1:12n): mean 12,749.3493, median 12,595, 95 % [9,827,
    16,544], top graph [1,2,3][1,3,4] with probability 0.9855137499, then [1,2,3][3,4] and [1,2,3][2,3,4]."""
    result, seconds = _fit(KOSOVO, 1 / 16, np.arange(1, 52801))
    assert result.mean == pytest.approx(12749.3493, abs=1e-3)
    assert result.median == 12595
    assert result.interval() == (9827, 16544)
    assert result.population[np.argmax(result.pmf)] == 12267
    table = result.graph_table()
    assert list(table["graph"][:3]) == [
        "[EXH,ABA,OSCE][EXH,OSCE,HRW]",
        "[EXH,ABA,OSCE][OSCE,HRW]",
        "[EXH,ABA,OSCE][ABA,OSCE,HRW]",
    ]
    np.testing.assert_allclose(
        table["probability"][:3], [0.9855137499, 0.0107803710, 0.0037054047], atol=1e-10
    )
    assert result.edge_ratio < 1e-8  # the grid holds the whole posterior
    assert seconds < 30


def test_uk_as_dga_truncated_and_whole():
    """bma.cr(Yu, 1:32928, 2^-5, graphs5) (the grid 1:12n, which the issue's numbers used): mean 21,096.8605,
    median 22,912, 95 % [10,382, 32,574]. That grid cuts the posterior off (edge ratio 0.03); on 1:100000
    (1:200000 gives the same) dga gives 21,282.2572, 22,990, [10,387, 33,510]. Top graph [1,2,3][3,4][2,5] in
    both; the posterior is bimodal (mode 11,718; a second peak above 20,000, one graph's)."""
    short, seconds = _fit(UK, 2**-5, np.arange(1, 32929))
    assert short.mean == pytest.approx(21096.8605, abs=1e-3)
    assert (short.median, *short.interval()) == (22912, 10382, 32574)
    assert short.graph_probability[short.top] == pytest.approx(0.4444928840, abs=1e-10)
    assert short.names[short.top] == "[LA,NG,PFNCA][NG,GP][PFNCA,GO]"
    assert short.edge_ratio > 0.01
    whole, _ = _fit(UK, 2**-5, np.arange(1, 100001))
    assert whole.mean == pytest.approx(21282.2572, abs=1e-3)
    assert (whole.median, *whole.interval()) == (22990, 10387, 33510)
    np.testing.assert_allclose(
        np.sort(whole.graph_probability)[::-1][:3],
        [0.4434331299, 0.1507195839, 0.1121964657],
        atol=1e-10,
    )
    assert whole.edge_ratio < 1e-6
    n, pmf = whole.population, whole.pmf
    assert n[np.argmax(pmf)] == 11718
    second = n > 20000
    peak = pmf[second].max()
    valley = pmf[(n > 11718) & (n < n[second][np.argmax(pmf[second])])].min()
    assert valley < 0.8 * peak
    assert seconds < 30


# --------------------------------------------------------------------------------------------------------------
# Draws, the graphs' prior, the cells, bad input


def test_draws_follow_the_posterior_and_repeat_with_the_seed():
    result, _ = _fit(KOSOVO, 1 / 16, np.arange(1, 30001))
    draws = result.draw(20_000, seed=7)
    assert draws.equals(result.draw(20_000, seed=7))
    assert not np.array_equal(draws["N"].values, result.draw(20_000, seed=8)["N"].values)
    # DKW: P(sup |F_n − F| > 0.015) ≤ 2 exp(−2 · 20,000 · 0.015²) ≈ 2e−4
    ecdf = np.searchsorted(np.sort(draws["N"].values), result.population, side="right") / 20_000
    assert np.abs(ecdf - np.cumsum(result.pmf)).max() < 0.015
    top = result.names[result.top]
    share = (draws["graph"].values == top).mean()
    assert abs(share - result.graph_probability[result.top]) < 4 * np.sqrt(0.0145 * 0.9855 / 20_000)
    assert (draws["N"] - draws["missing"] == 4400).all()


def test_graph_prior_reweights_the_graphs():
    """A zero prior on Kosovo's top graph leaves the others in their posterior proportions."""
    name, lists, count = KOSOVO
    grid = np.arange(1, 30001)
    base = dga_posterior(load_benchmark(name), lists, count, 1 / 16, grid)
    prior = np.zeros(len(base.graphs))
    prior[base.top] = -np.inf
    without = dga_posterior(load_benchmark(name), lists, count, 1 / 16, grid, log_prior_graph=prior)
    assert without.graph_probability[base.top] == 0
    rest = np.arange(len(base.graphs)) != base.top
    np.testing.assert_allclose(
        without.graph_probability[rest],
        base.graph_probability[rest] / (1 - base.graph_probability[base.top]),
        rtol=1e-9,
    )
    assert without.median < 10000  # the next graphs put N near 8,000–9,000
    explicit = dga_posterior(
        load_benchmark(name), lists, count, 1 / 16, grid, log_prior_n=-np.log(4400.0 + grid)
    )
    np.testing.assert_allclose(explicit.pmf, base.pmf, rtol=1e-12)


def test_pattern_counts_in_dgas_array_order():
    name, lists, count = KOSOVO
    y = pattern_counts(load_benchmark(name), lists, count)
    assert y.size == 16 and y[0] == 0 and y.sum() == 4400
    assert (y[0b0001], y[0b0010], y[0b0100], y[0b1000], y[0b1111]) == (1131, 845, 936, 306, 27)
    assert y[0b0101] == 228  # EXH and OSCE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_missing_grid": [-1, 0, 1]}, r"n_missing_grid\[0\]"),
        ({"n_missing_grid": [0, 2, 1]}, "increase"),
        ({"n_missing_grid": [0.5, 1]}, "whole number"),
        ({"delta": 0.0}, "delta"),
        ({"log_prior_n": [0.0, 0.0]}, "log_prior_n"),
        ({"log_prior_graph": [0.0]}, "log_prior_graph"),
        ({"lists": ["EXH"]}, "1 lists"),
        ({"lists": ["EXH", "ABA", "nope"]}, "nope"),
    ],
)
def test_bad_input(kwargs, message):
    args = {
        "table": load_benchmark("kosovo_4lists"),
        "lists": ["EXH", "ABA", "OSCE", "HRW"],
        "count": "Freq",
        "delta": 1 / 16,
        "n_missing_grid": np.arange(1, 101),
    }
    with pytest.raises(EstimInputError, match=message):
        dga_posterior(**(args | kwargs))


def test_seven_lists_refused():
    # six lists are averaged over (tests/families/test_lists_bma_family.py); seven would be too many graphs
    table = pd.DataFrame(list(itertools.product([0, 1], repeat=7))[1:], columns=list("abcdefg"))
    with pytest.raises(EstimInputError, match="7 lists"):
        dga_posterior(table, list("abcdefg"), None, None, np.arange(10))
