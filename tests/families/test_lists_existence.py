"""Existence and identifiability of the log-linear MLE (estim.families.lists.existence) against SparseMSE
2.0.1's ``checkident`` / ``checkallmodels`` (scripts/r_references_lists.R), against tables whose answer is
known by hand, and against brute force (the fitted counts of an unconstrained Poisson fit)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.closed import history_data
from estim.families.lists import extended_design, mle_exists
from estim.families.loglinear import Terms, model_design
from estim.families.loglinear.fit import poisson_glm
from estim.paths import BENCHMARKS_DIR

# The constructed tables of scripts/r_references_lists.R (one row per observed pattern, count last).
TABLES = {
    "artificial_3": pd.DataFrame(
        {"A": [1, 0, 0, 1], "B": [0, 1, 0, 1], "C": [0, 0, 1, 0], "n": [40, 30, 20, 6]}
    ),
    "sparse_4a": pd.DataFrame(
        {
            "A": [1, 0, 0, 0, 1, 0, 1],
            "B": [0, 1, 0, 0, 1, 0, 0],
            "C": [0, 0, 1, 0, 0, 1, 1],
            "D": [0, 0, 0, 1, 0, 1, 0],
            "n": [20, 15, 10, 8, 3, 2, 1],
        }
    ),
    "sparse_4b": pd.DataFrame(
        {
            "A": [1, 0, 0, 0, 1, 1, 0, 0],
            "B": [0, 1, 0, 0, 1, 1, 1, 0],
            "C": [0, 0, 1, 0, 0, 1, 0, 1],
            "D": [0, 0, 0, 1, 0, 0, 1, 1],
            "n": [12, 9, 7, 5, 2, 1, 1, 1],
        }
    ),
}
# SparseMSE 2.0.1: checkident(table, mX) for every model, the pairs (1,2), (1,3), …, (K−1,K) in that order
# and model j holding pair i when bit i − 1 of j is set. Code: 0 exists and identifiable, 1 the extended MLE
# does not exist, 2 not identifiable, 3 both (scripts/r_references_lists.R).
R_CHECKIDENT = {
    "artificial_3": "01010102",
    "sparse_4a": "0000000000000000000000000000000000010001000100010001000100010002",
    "sparse_4b": "0000000000000000000000000000000000000000000000000000000100000001",
}


def _data(table: pd.DataFrame):
    lists = list(table.columns[:-1])
    return history_data(table, occasions=lists, count=table.columns[-1]), lists


def _check(data, pairs, extended=False):
    terms = Terms(capture="Mt", interactions=tuple(pairs))
    return mle_exists(terms, model_design(terms, data), extended=extended)


def _benchmark(name: str):
    """A benchmark's list patterns (its last column is the count)."""
    return _data(pd.read_csv(BENCHMARKS_DIR / name))


@pytest.mark.parametrize("name", sorted(R_CHECKIDENT))
def test_every_model_of_the_constructed_tables_as_sparsemse_checkident(name):
    data, lists = _data(TABLES[name])
    pairs = list(itertools.combinations(lists, 2))
    codes = ""
    for j in range(2 ** len(pairs)):
        chosen = [p for i, p in enumerate(pairs) if j >> i & 1]
        verdict = _check(data, chosen, extended=True)
        codes += str(int(not verdict.exists) + 2 * int(not verdict.identifiable))
    assert codes == R_CHECKIDENT[name]


def test_artificial_3_names_the_cells_and_the_reasons():
    data, _ = _data(TABLES["artificial_3"])
    # A:B alone: C's 20 people are all on C only, so every other pattern with C is driven to 0
    ab = _check(data, [("A", "B")], extended=True)
    assert not ab.exists and ab.identifiable
    assert sorted(ab.zero_cells_implicated) == ["011", "101", "111"]
    assert "does not exist" in ab.reason
    # all pairs: A:C and B:C are empty overlaps; 4 cells are left for 5 parameters (SparseMSE code 2)
    full = _check(data, [("A", "B"), ("A", "C"), ("B", "C")], extended=True)
    assert full.exists and not full.identifiable
    assert full.empty_overlaps == ["A:C", "B:C"] and "not identifiable" in full.reason


def test_two_lists_without_recaptures_have_no_mle():
    # Lincoln–Petersen with m = 0: t = X'y forces the 11 cell to 0 in every x ≥ 0, N̂ = ∞
    none = pd.DataFrame({"A": [1, 0], "B": [0, 1], "n": [30, 20]})
    data, _ = _data(none)
    main = _check(data, [])
    assert not main.exists and main.identifiable and main.zero_cells_implicated == ["11"]
    # with the interaction: three cells for four parameters, and the 11 cell still forced to 0
    inter = _check(data, [("A", "B")])
    assert not inter.exists and not inter.identifiable and inter.zero_cells_implicated == ["11"]
    some = pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "n": [30, 20, 4]})
    assert _check(_data(some)[0], []).ok


def test_a_zero_cell_of_a_saturated_model_has_no_mle():
    # three lists with every pair: 7 parameters on 7 cells, X̃ invertible, so x = y and a zero 111 cell is
    # on the boundary; the main-effects model on the same counts exists
    table = pd.DataFrame(
        {
            "A": [1, 0, 0, 1, 1, 0],
            "B": [0, 1, 0, 1, 0, 1],
            "C": [0, 0, 1, 0, 1, 1],
            "n": [50, 40, 30, 6, 5, 4],
        }
    )
    data, lists = _data(table)
    every = list(itertools.combinations(lists, 2))
    for extended in (False, True):
        verdict = _check(data, every, extended=extended)
        assert not verdict.exists and verdict.identifiable
        assert verdict.zero_cells_implicated == ["111"]
    assert _check(data, []).ok and _check(data, every[:2]).ok


def test_the_implicated_cells_are_those_an_unconstrained_fit_drives_to_zero():
    """Brute force: the IRLS fit of a model whose MLE does not exist sends exactly the implicated cells'
    fitted counts towards 0 while the others stay near the data."""
    data, lists = _data(TABLES["sparse_4a"])
    pairs = list(itertools.combinations(lists, 2))
    seen = 0
    for j in range(2 ** len(pairs)):
        chosen = [p for i, p in enumerate(pairs) if j >> i & 1]
        terms = Terms(capture="Mt", interactions=tuple(chosen))
        design, _empty = extended_design(terms, model_design(terms, data))
        verdict = mle_exists(terms, model_design(terms, data), extended=True)
        if verdict.exists or not verdict.identifiable:
            continue
        seen += 1
        xd = np.column_stack([np.ones(len(design.cells)), design.matrix])
        beta, _cov, _conv = poisson_glm(design.counts[0], xd, design.offset, maxit=400)
        mu = np.exp(xd @ beta)
        implicated = np.isin(design.cells, verdict.zero_cells_implicated)
        assert implicated.any()
        assert mu[implicated].max() < 1e-3
        assert mu[~implicated & (design.counts[0] > 0)].min() > 0.05
    assert seen >= 5


def test_uk_every_model_as_sparsemse_checkallmodels():
    """SparseMSE: checkident(uk, mX = 0) = checkident(uk, mX = NULL) = 0 and checkallmodels(uk): "The
    extended maximum likelihood estimate exists for all models". LA and GP have no one in common, so as
    written (extended = False) exactly the models with LA:GP have no MLE, the implicated cells being the
    eight patterns with both (by hand: their only margin, LA:GP, is 0)."""
    data, lists = _benchmark("uk_modern_slavery_5lists.csv")
    pairs = list(itertools.combinations(lists, 2))
    both = sorted(
        "".join(map(str, h)) for h in itertools.product([0, 1], repeat=5) if h[0] == 1 and h[4] == 1
    )
    t0 = time.perf_counter()
    for j in range(2 ** len(pairs)):
        chosen = [p for i, p in enumerate(pairs) if j >> i & 1]
        assert _check(data, chosen, extended=True).ok, chosen
        strict = _check(data, chosen)
        if ("LA", "GP") in chosen:
            assert not strict.exists and sorted(strict.zero_cells_implicated) == both
            assert strict.empty_overlaps == ["LA:GP"] and "extended=True" in strict.reason
        else:
            assert strict.ok
    assert time.perf_counter() - t0 < 60


def test_kosovo_every_model_exists():
    """SparseMSE: checkallmodels(kosovo): the extended MLE exists for all 64 models (no empty overlaps)."""
    data, lists = _benchmark("kosovo_4lists.csv")
    pairs = list(itertools.combinations(lists, 2))
    for j in range(2 ** len(pairs)):
        chosen = [p for i, p in enumerate(pairs) if j >> i & 1]
        verdict = _check(data, chosen)
        assert verdict.ok and not verdict.empty_overlaps


def test_several_strata_are_judged_each():
    table = pd.DataFrame(
        {
            "A": [1, 0, 1, 1, 0, 1],
            "B": [0, 1, 1, 0, 1, 0],
            "region": ["north", "north", "north", "south", "south", "south"],
            "n": [30, 20, 4, 10, 12, 5],
        }
    )
    # south has a second row of A only; it has no one on both lists
    data = history_data(table, occasions=["A", "B"], stratum="region", count="n")
    verdict = _check(data, [])
    assert not verdict.exists and verdict.zero_cells_implicated == ["south/11"]


def test_a_design_of_other_terms_is_refused():
    data, lists = _data(TABLES["sparse_4a"])
    design = model_design(Terms(capture="Mt"), data)
    with pytest.raises(EstimInputError, match="design was built for"):
        mle_exists(Terms(capture="Mt", interactions=(("A", "B"),)), design)
