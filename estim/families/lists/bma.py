"""Bayesian model averaging over decomposable graphical models of K lists (Madigan & York 1997), as R's dga
2.0.2 (``bma.cr``) computes it: the posterior of the population size N and of the list-dependence graph.

The model. Everyone in the population falls in one of the 2^K cells of list membership; the all-zero cell
(people on no list) has the unknown count m = N − n. Given a decomposable graph g (`graphs`), the cell
probabilities have g's hyper-Dirichlet prior with parameter δ: the margin of each clique C has a Dirichlet
prior with δ_C = δ·2^(K−|C|) on each of its 2^|C| cells, consistent across cliques (each margin totals
α = 2^K·δ). The probability of the complete table given N and g is then the multinomial coefficient times
the clique margins' Dirichlet integrals over the separators':

    p(y, m | N, g) = N! / (m! Π y_c!) · Π_C I(C) / Π_S I(S),
    I(A) = Γ(α) / Γ(N + α) · Π_{cells a of A} Γ(y_a + δ_A) / Γ(δ_A),

with m counted in each margin's all-zero cell. The posterior over (g, m) on a grid of m is this times the
prior p(N) (dga's default 1/N) and the graphs' prior (uniform by default), normalised over graphs and grid.
All in log space with gammaln, vectorised over the grid: apart from the common Γ(N + α), a margin's I depends
on m only through Γ(m + y_0(A) + δ_A), so 2^K − 1 rows of log-gamma values serve every graph.

Summaries follow dga's usage: the grid is dga's ``Nmissing`` (the posterior is truncated to it: check
`BMAResult.edge_ratio`), N = n + m, quantiles are the smallest N on the grid whose posterior CDF reaches the
probability. The grid matters when it cuts the posterior off: on the UK lists (δ = 2^−5) the grid m = 1…12n
ends inside the upper tail and gives mean 21,097, median 22,912, 95 % [10,382, 32,574]; a grid that holds the
whole posterior gives 21,282, 22,990, [10,387, 33,510] (dga and this module alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import gammaln, logsumexp

from estim.errors import EstimInputError
from estim.families.base import rng_from
from estim.families.closed import history_data
from estim.families.lists.graphs import DecomposableGraph, decomposable_graphs

# dga ships the graphs of 3 to 5 lists; 6 lists have 18,154 graphs, 22 times as many as 5 (measured: 6.5 s on a
# table of 5,000 people with a grid of 5n)
MIN_LISTS, MAX_LISTS = 2, 6
PRIORS_N = ("inverse", "rissanen")
EDGE_TOLERANCE = (
    1e-6  # `whole_grid`: the posterior at the grid's end below this fraction of its peak
)
_MAX_GRID_CELLS = 32_000_000  # margins × grid values of `_margin_terms` (256 MB of float64)
_CHUNK_CELLS = 2_000_000  # graphs × grid values held at once (16 MB of float64)


@dataclass(frozen=True)
class BMAResult:
    """The posterior of dga's model: over graphs, and over N on the grid (model-averaged and per graph).

    ``graph_probability[g]`` is the posterior probability of graph g; ``pmf[j]`` that of N = n +
    ``n_missing[j]``; ``graph_mean``, ``graph_median``, ``graph_lower``, ``graph_upper`` the posterior mean,
    median and 95 % interval of N given each graph.
    """

    lists: tuple[str, ...]
    graphs: tuple[DecomposableGraph, ...]
    observed: int
    delta: float
    counts: np.ndarray  # (2^K,): the people seen with each pattern (`pattern_counts`; entry 0 is 0)
    n_missing: np.ndarray
    pmf: np.ndarray
    graph_probability: np.ndarray
    graph_mean: np.ndarray
    graph_median: np.ndarray
    graph_lower: np.ndarray
    graph_upper: np.ndarray
    _terms: np.ndarray  # (2^K − 1 margins, grid): each margin's m-dependent log Dirichlet integral
    _common: np.ndarray  # (grid,): multinomial coefficient + log prior of N
    _denominator: np.ndarray  # (grid,): log Γ(α) − log Γ(N + α), once per clique and per separator

    @property
    def population(self) -> np.ndarray:
        """The grid of N = n + m."""
        return self.observed + self.n_missing

    @property
    def names(self) -> list[str]:
        """Each graph by its cliques in list names, e.g. ``[EXH,ABA,OSCE][EXH,OSCE,HRW]``."""
        return [g.name(self.lists) for g in self.graphs]

    @property
    def mean(self) -> float:
        """Model-averaged posterior mean of N."""
        return float(self.pmf @ self.population)

    @property
    def median(self) -> int:
        """Model-averaged posterior median of N (on the grid)."""
        return self.quantile(0.5)

    def quantile(self, probability: float) -> int:
        """The smallest N on the grid whose model-averaged posterior CDF reaches `probability`."""
        return int(self.population[_quantile_index(self.pmf[None, :], [probability])[0, 0]])

    def interval(self, mass: float = 0.95) -> tuple[int, int]:
        """The equal-tailed posterior interval of N (dga's usage: quantiles (1 ∓ mass)/2)."""
        if not 0 < mass < 1:
            raise EstimInputError(f"interval mass {mass}: between 0 and 1")
        return self.quantile((1 - mass) / 2), self.quantile((1 + mass) / 2)

    @property
    def top(self) -> int:
        """Index of the graph with the highest posterior probability."""
        return int(np.argmax(self.graph_probability))

    @property
    def edge_ratio(self) -> float:
        """The posterior at the grid's largest N over its largest value: not ≈ 0 means the grid cuts off the
        posterior's upper tail, and the summaries depend on where the grid ends."""
        return float(self.pmf[-1] / self.pmf.max())

    def graph_table(self) -> pd.DataFrame:
        """One row per graph, most probable first: its posterior probability and N's posterior given it."""
        table = pd.DataFrame(
            {
                "graph": self.names,
                "probability": self.graph_probability,
                "mean": self.graph_mean,
                "median": self.graph_median,
                "lower": self.graph_lower,
                "upper": self.graph_upper,
            }
        )
        return table.sort_values("probability", ascending=False, kind="stable").reset_index(
            drop=True
        )

    def graph_pmf(self, graph: int) -> np.ndarray:
        """The posterior of N on the grid given graph number `graph` (sums to 1)."""
        if not 0 <= graph < len(self.graphs):
            raise EstimInputError(f"graph {graph}: 0 to {len(self.graphs) - 1}")
        incidence = _incidence(self.graphs[graph : graph + 1])
        log_post = _log_likelihood(incidence, self._terms, self._denominator, self._common)[0]
        return np.exp(log_post - logsumexp(log_post))

    def draw(self, draws: int, seed: int | np.random.Generator | None) -> xr.Dataset:
        """`draws` independent draws of (graph, N) from the joint posterior: a graph from its posterior
        probability, then N from its posterior given that graph (so N's draws follow `pmf`). The same seed
        gives the same draws."""
        if not isinstance(draws, int | np.integer) or draws < 1:
            raise EstimInputError(f"draws = {draws!r}: a positive whole number")
        rng = rng_from(seed)
        graph = rng.choice(len(self.graphs), size=int(draws), p=self.graph_probability)
        missing = np.empty(int(draws), dtype=np.int64)
        for g in np.unique(graph):
            where = graph == g
            missing[where] = rng.choice(
                self.n_missing, size=int(where.sum()), p=self.graph_pmf(int(g))
            )
        names = np.array(self.names, dtype=object)
        return xr.Dataset(
            {
                "N": ("draw", self.observed + missing),
                "missing": ("draw", missing),
                "graph": ("draw", names[graph].astype(str)),
            },
            coords={"draw": np.arange(int(draws))},
            attrs={"lists": list(self.lists), "delta": self.delta, "observed": self.observed},
        )


def _quantile_index(pmf: np.ndarray, probabilities: Sequence[float]) -> np.ndarray:
    """(probability, row) index of the first grid value whose CDF (of each row of `pmf`) reaches it."""
    if not all(0 < p < 1 for p in probabilities):
        raise EstimInputError(f"quantiles {list(probabilities)}: between 0 and 1")
    cdf = np.cumsum(pmf, axis=1)
    cdf /= cdf[:, -1:]
    index = np.array([np.searchsorted(row, probabilities, side="left") for row in cdf]).T
    return np.minimum(index, pmf.shape[1] - 1)


def pattern_counts(
    table: pd.DataFrame, lists: Sequence[str], count: str | None = None
) -> np.ndarray:
    """The 2^K counts of list membership from a table of 0/1 list columns (one row per person, or per
    pattern with a `count` column): entry Σ_j x_j·2^j for membership x of lists j = 0…K−1 (the first list is
    the lowest bit, as dga's first array dimension); entry 0, the people on no list, is 0."""
    return history_counts(history_data(table, occasions=list(lists), count=count))


def history_counts(data: xr.Dataset) -> np.ndarray:
    """The 2^K counts of list membership (as `pattern_counts`) from capture histories with the lists as
    occasions (`estim.families.closed.history_data`), summed over strata."""
    k = data.sizes["occasion"]
    counts = data["history_count"].sum("stratum").values.astype(np.int64)
    capture = data["capture"].transpose("history", "occasion").values.astype(np.int64)
    code = capture @ (np.int64(1) << np.arange(k, dtype=np.int64))
    y = np.zeros(1 << k, dtype=np.int64)
    np.add.at(y, code, counts)
    return y


def _incidence(graphs: Sequence[DecomposableGraph]) -> np.ndarray:
    """(graph, margin) weights: +1 per clique, −1 per separator; margin j ↔ the set of lists with mask j + 1."""
    k = graphs[0].lists
    a = np.zeros((len(graphs), (1 << k) - 1))
    for i, g in enumerate(graphs):
        for m in g.clique_masks:
            a[i, m - 1] += 1
        for m in g.separator_masks:
            a[i, m - 1] -= 1
    return a


def _margin_terms(y: np.ndarray, k: int, delta: float, n_missing: np.ndarray) -> np.ndarray:
    """Per non-empty set of lists A (mask 1…2^K − 1) and grid value m: log Π_a Γ(y_a + δ_A)/Γ(δ_A) over the
    2^|A| cells of A's margin, m counted in its all-zero cell (dga's ``CompLogML``)."""
    codes = np.arange(1 << k)
    out = np.empty(((1 << k) - 1, n_missing.size))
    for mask in range(1, 1 << k):
        size = mask.bit_count()
        delta_a = delta * 2.0 ** (k - size)
        margin = np.bincount(codes & mask, weights=y, minlength=1 << k)
        cells = codes[(codes & mask) == codes]  # the 2^|A| cells of the margin (as masks within A)
        constant = gammaln(margin[cells[1:]] + delta_a).sum() - cells.size * gammaln(delta_a)
        out[mask - 1] = gammaln(n_missing + margin[0] + delta_a) + constant
    return out


def _log_likelihood(
    incidence: np.ndarray, terms: np.ndarray, denominator: np.ndarray, common: np.ndarray
) -> np.ndarray:
    """log p(y, m | N, g) + log p(N) on the grid, for the graphs whose incidence rows are given."""
    return (
        incidence @ terms + incidence.sum(axis=1)[:, None] * denominator[None, :] + common[None, :]
    )


def dga_posterior(
    table: pd.DataFrame,
    lists: Sequence[str],
    count: str | None,
    delta: float | None,
    n_missing_grid: Sequence[int] | np.ndarray,
    log_prior_n: Sequence[float] | np.ndarray | None = None,
    log_prior_graph: Sequence[float] | np.ndarray | None = None,
) -> BMAResult:
    """The posterior of the population size N and of the list-dependence graph under dga's model: every
    decomposable graphical model of the K lists, each with the hyper-Dirichlet prior δ on its cell
    probabilities, averaged by posterior probability (Madigan & York 1997; R dga 2.0.2 ``bma.cr``).

    table, lists, count
        The people seen, as 0/1 membership columns `lists` (2 to 6 lists), one row per person, or per pattern
        with the number of people in column `count`.
    delta
        The hyper-Dirichlet parameter; None gives dga's suggested 2^−K.
    n_missing_grid
        The values of m = N − n (people on no list) the posterior is computed on (dga's ``Nmissing``):
        increasing whole numbers ≥ 0. The posterior is truncated to it.
    log_prior_n
        log p(N) at N = n + m for each grid value; None gives dga's default p(N) ∝ 1/N.
    log_prior_graph
        log prior weight of each graph of `estim.families.lists.graphs.decomposable_graphs(K)`, in that order
        (dga's ``log.prior.model.weights``); None gives every graph the same.
    """
    _check_lists(len(lists))
    y = pattern_counts(table, [str(x) for x in lists], count)
    return counts_posterior(y, lists, delta, n_missing_grid, log_prior_n, log_prior_graph)


def counts_posterior(
    y: np.ndarray,
    lists: Sequence[str],
    delta: float | None,
    n_missing_grid: Sequence[int] | np.ndarray,
    log_prior_n: Sequence[float] | np.ndarray | None = None,
    log_prior_graph: Sequence[float] | np.ndarray | None = None,
) -> BMAResult:
    """`dga_posterior` from the 2^K counts of list membership `y` (`pattern_counts`; entry 0 ignored)."""
    lists = tuple(str(x) for x in lists)
    k = _check_lists(len(lists), lists)
    y = np.asarray(y, dtype=np.float64).copy()
    if y.shape != (1 << k,) or not np.all(np.isfinite(y)) or np.any(y < 0):
        raise EstimInputError(f"counts of list membership: {1 << k} counts ≥ 0 for {k} lists")
    y[0] = 0.0
    observed = int(y.sum())
    if observed == 0:
        raise EstimInputError("nobody is on any list: the posterior of N is improper")
    if delta is None:
        delta = 2.0**-k
    if not (np.isfinite(delta) and delta > 0):
        raise EstimInputError(f"delta = {delta!r}: the hyper-Dirichlet parameter must be > 0")
    n_missing = _grid(n_missing_grid)
    population = observed + n_missing
    log_prior = (
        -np.log(population.astype(np.float64))
        if log_prior_n is None
        else _per_value(log_prior_n, n_missing.size, "log_prior_n", "grid value")
    )
    graphs = decomposable_graphs(k)
    log_prior_g = (
        np.zeros(len(graphs))
        if log_prior_graph is None
        else _per_value(log_prior_graph, len(graphs), "log_prior_graph", f"graph on {k} lists")
    )
    alpha = (1 << k) * delta
    m = n_missing.astype(np.float64)
    common = gammaln(population + 1.0) - gammaln(y[1:] + 1.0).sum() - gammaln(m + 1.0) + log_prior
    denominator = gammaln(alpha) - gammaln(population + alpha)
    terms = _margin_terms(y, k, float(delta), m)
    # Graphs in chunks, so that 822 graphs × a grid of 10^5 never sit in memory at once: each chunk gives
    # its graphs' evidence and conditional summaries, and adds its share to the averaged pmf, the running
    # sum rescaled whenever a larger evidence appears.
    incidence = _incidence(graphs)
    step = max(1, _CHUNK_CELLS // n_missing.size)
    log_evidence = np.empty(len(graphs))
    summaries = np.empty((4, len(graphs)))
    averaged, scale = np.zeros(n_missing.size), -np.inf
    for start in range(0, len(graphs), step):
        rows = slice(start, start + step)
        log_post = _log_likelihood(incidence[rows], terms, denominator, common)
        peak = log_post.max(axis=1, keepdims=True)
        conditional = np.exp(log_post - peak, out=log_post)
        total = conditional.sum(axis=1)
        conditional /= total[:, None]
        given_graph = peak[:, 0] + np.log(total)
        # the graph's prior enters after conditioning, so a graph with prior 0 (−inf) still has a posterior
        # of N given it, and adds nothing to the average
        evidence = given_graph + log_prior_g[rows]
        log_evidence[rows] = evidence
        summaries[0, rows] = conditional @ population
        summaries[1:, rows] = population[_quantile_index(conditional, (0.5, 0.025, 0.975))]
        top = evidence.max()
        if top == -np.inf:
            continue
        if top > scale:
            averaged *= np.exp(scale - top)
            scale = top
        averaged += np.exp(evidence - scale) @ conditional
    graph_probability = np.exp(log_evidence - logsumexp(log_evidence))
    return BMAResult(
        lists=lists,
        graphs=graphs,
        observed=observed,
        delta=float(delta),
        counts=y.astype(np.int64),
        n_missing=n_missing,
        pmf=averaged / averaged.sum(),
        graph_probability=graph_probability,
        graph_mean=summaries[0],
        graph_median=summaries[1].astype(np.int64),
        graph_lower=summaries[2].astype(np.int64),
        graph_upper=summaries[3].astype(np.int64),
        _terms=terms,
        _common=common,
        _denominator=denominator,
    )


def log_prior_population(population: np.ndarray, kind: str = "inverse") -> np.ndarray:
    """log p(N) up to a constant at each N of `population`: ``"inverse"``, dga's default p(N) ∝ 1/N; or
    ``"rissanen"``, Rissanen's (1983) universal prior for whole numbers, p(N) ∝ 2^(−log*(N)) with log*(N) =
    log₂N + log₂log₂N + … (the positive terms), one of Madigan & York's (1997) two choices (dga 2.0.2 takes
    a log prior as a vector and ships neither by name)."""
    n = np.asarray(population, dtype=np.float64)
    if np.any(n < 1):
        raise EstimInputError("log_prior_population: population sizes ≥ 1")
    if kind == "inverse":
        return -np.log(n)
    if kind == "rissanen":
        total, term = np.zeros_like(n), np.log2(n)
        while np.any(term > 0):
            total += np.where(term > 0, term, 0.0)
            term = np.log2(np.where(term > 0, term, 1.0))
        return -np.log(2.0) * total
    raise EstimInputError(f"prior on N {kind!r}: one of {', '.join(PRIORS_N)}")


def whole_grid(
    y: np.ndarray, k: int, delta: float, prior_n: str = "inverse", tolerance: float = EDGE_TOLERANCE
) -> np.ndarray:
    """The grid m = 0…M of people on no list that holds the whole model-averaged posterior of N: M is where
    the posterior has fallen below `tolerance` times its peak for good, found on a coarse geometric scan of
    m up to 1,000 n and then checked on the full grid (doubled while the check fails). `EstimInputError`
    when the tail is still above `tolerance` at 1,000 n, or the grid would not fit in memory: give the grid
    (``grid_multiple``) or a prior on N with a lighter tail."""
    y = np.asarray(y, dtype=np.float64).copy()
    y[0] = 0.0
    observed = y.sum()
    graphs = decomposable_graphs(k)

    def log_prior(m: np.ndarray) -> np.ndarray:
        return log_prior_population(observed + m, prior_n)

    scan = np.unique(np.r_[0, np.round(np.geomspace(1, 1000 * observed, 400))])
    log_post = logsumexp(_joint(y, k, delta, scan, log_prior(scan), graphs), axis=0)
    above = np.flatnonzero(log_post >= log_post.max() + np.log(tolerance))
    if above[-1] == scan.size - 1:
        raise EstimInputError(
            f"the posterior of N is still above {tolerance:g} of its peak at N = 1,000 × the {observed:,.0f} "
            "people seen: set [options] grid_multiple (dga's grid 1…multiple·n) or a prior on N with a "
            "lighter tail"
        )
    end = int(scan[above[-1] + 1])
    limit = _MAX_GRID_CELLS // ((1 << k) - 1)
    peak = log_post.max()  # the scan's peak is at most the grid's: the check is conservative
    while end < limit:
        at_end = logsumexp(_joint(y, k, delta, np.array([end]), log_prior(np.array([end])), graphs))
        if at_end < peak + np.log(tolerance):
            return np.arange(end + 1)
        end *= 2
    if observed > limit:  # dga's grid 1…multiple·n is larger still
        raise EstimInputError(
            f"the grid of N that holds the posterior would exceed {limit:,} values for {k} lists: the "
            f"{observed:,.0f} people seen are too many for model averaging's exact posterior (check the "
            "table's counts)"
        )
    raise EstimInputError(
        f"the grid of N that holds the posterior would exceed {limit:,} values for {k} lists: set "
        "[options] grid_multiple"
    )


def _joint(
    y: np.ndarray,
    k: int,
    delta: float,
    m: np.ndarray,
    log_prior: np.ndarray,
    graphs: Sequence[DecomposableGraph],
) -> np.ndarray:
    """log p(g, m | y) up to a constant: (graph, value of m), for a few values of m at a time."""
    m = np.asarray(m, dtype=np.float64)
    population = y.sum() + m
    alpha = (1 << k) * delta
    common = gammaln(population + 1.0) - gammaln(y[1:] + 1.0).sum() - gammaln(m + 1.0) + log_prior
    denominator = gammaln(alpha) - gammaln(population + alpha)
    return _log_likelihood(_incidence(graphs), _margin_terms(y, k, delta, m), denominator, common)


def _check_lists(k: int, lists: Sequence[str] = ()) -> int:
    if not MIN_LISTS <= k <= MAX_LISTS:
        raise EstimInputError(
            f"{k} lists {list(lists)}: model averaging over decomposable graphs takes {MIN_LISTS} to "
            f"{MAX_LISTS} lists (dga: 3 to 5; beyond 6, the graphs are too many to average over here)"
        )
    return k


def _grid(values: Sequence[int] | np.ndarray) -> np.ndarray:
    grid = np.asarray(values)
    if grid.ndim != 1 or grid.size == 0:
        raise EstimInputError("n_missing_grid: a non-empty sequence of whole numbers ≥ 0")
    if not np.issubdtype(grid.dtype, np.number) or not np.all(np.isfinite(grid)):
        raise EstimInputError("n_missing_grid: whole numbers ≥ 0")
    as_int = grid.astype(np.int64)
    if np.any(as_int != grid) or as_int[0] < 0:
        bad = int(np.flatnonzero((as_int != grid) | (as_int < 0))[0])
        raise EstimInputError(
            f"n_missing_grid[{bad}] = {grid[bad]!r}: the number of people on no list, a whole number ≥ 0"
        )
    if np.any(np.diff(as_int) <= 0):
        bad = int(np.flatnonzero(np.diff(as_int) <= 0)[0]) + 1
        raise EstimInputError(f"n_missing_grid[{bad}] = {grid[bad]!r}: the grid must increase")
    return as_int


def _per_value(values: Sequence[float] | np.ndarray, size: int, name: str, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (size,):
        raise EstimInputError(f"{name}: one value per {what} ({size}), not shape {out.shape}")
    if np.isnan(out).any() or np.isposinf(out).any():
        bad = int(np.flatnonzero(np.isnan(out) | np.isposinf(out))[0])
        raise EstimInputError(f"{name}[{bad}] = {out[bad]}: a log prior is finite or −inf")
    if np.isneginf(out).all():
        raise EstimInputError(f"{name}: every value is −inf (zero prior everywhere)")
    return out
