"""The ``lists_bma`` family: dga's Bayesian model averaging over the decomposable graphs of K = 2…6 lists
(`estim.families.lists.bma`, Madigan & York 1997) as a fit. Its posterior is computed exactly on a grid of N,
not sampled: a fit holds independent draws of (graph, N) from it (`Family.exact`), the spec's chains × draws
with the spec's seed, and posterior predictive pattern counts.

``[options]``
    ``delta``: the hyper-Dirichlet parameter (default dga's 2^−K). ``prior_n``: the prior on N, ``"inverse"``
    (dga's p(N) ∝ 1/N, the default) or ``"rissanen"`` (Rissanen's universal prior, Madigan & York's other
    choice). ``grid_multiple``: dga's grid m = 1…multiple·n of the people on no list (12 reproduces the 1…12n
    grid of dga's published runs, which cuts the UK lists' posterior off); by default the grid m = 0…M holds
    the whole posterior (`bma.whole_grid`: at M it is below 10⁻⁶ of its peak).

No maximum likelihood: model averaging is Bayesian (lists_stepwise and the log-linear family ``loglinear``
give ML fits of one model). No pointwise log-likelihood either: ``estim compare`` refuses these fits.

The posterior predictive check. For each draw (graph g, N = n + m) the cell probabilities θ are drawn from
g's hyper-Dirichlet posterior given the complete table (the seen counts and m in the all-zero cell): clique by
clique in a junction-tree order, each clique's cells given its separator's from a Dirichlet with parameters
δ_C + the clique margin's counts (`hyper_dirichlet`). Then N people fall in the 2^K cells by a multinomial,
and the all-zero cell is dropped: replicated counts of every one of the 2^K − 1 patterns (those absent from
the table as zeros), checked against the observed ones as for capture histories (`estim check`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register, rng_from
from estim.families.closed import OBSERVED
from estim.families.lists.bma import (
    _MAX_GRID_CELLS,
    PRIORS_N,
    BMAResult,
    counts_posterior,
    history_counts,
    log_prior_population,
    whole_grid,
)
from estim.families.lists.data import LISTS
from estim.families.lists.graphs import DecomposableGraph
from estim.families.options import Option, number_option, whole_option

NAME = "lists_bma"
GROUP = "model_averaging"  # the fit's group of the graphs' exact posterior probabilities and N given each
MAX_GRAPH_ROWS = (
    50  # the most probable graphs kept in a fit (up to a cumulative probability of 0.9999)
)
_OPTIONS = ("delta", "prior_n", "grid_multiple")


def bma_posterior(
    data: xr.Dataset,
    delta: float | None = None,
    prior_n: str = "inverse",
    grid_multiple: int | None = None,
) -> BMAResult:
    """The exact posterior of N and of the list-dependence graph under dga's model, from capture histories
    with the lists as occasions (one stratum), on dga's grid 1…`grid_multiple`·n or on a grid that holds
    the whole posterior (None). On 3 lists or more, a saturated graph of weight ≥ `SATURATED_WARN` is warned
    of (`saturated_weight`; a fit refuses one of weight ≥ `SATURATED_REFUSE` before it starts, `_precheck`)."""
    if data.sizes.get("stratum", 1) != 1:
        raise EstimInputError(
            f"{NAME}: one table of list patterns, not {data.sizes['stratum']} strata"
        )
    if "design" in data:
        raise EstimInputError(f"{NAME} takes no individual covariates")
    lists = [str(o) for o in data["occasion"].values]
    k = len(lists)
    options = check_options(delta=delta, prior_n=prior_n, grid_multiple=grid_multiple)
    delta = options.get("delta", 2.0**-k)
    prior_n = options.get("prior_n", "inverse")
    grid_multiple = options.get("grid_multiple")
    y = history_counts(data)
    observed = int(y[1:].sum())
    if grid_multiple is None:
        grid = whole_grid(y, k, delta, prior_n) if observed else np.arange(1)
    else:
        limit = _MAX_GRID_CELLS // ((1 << k) - 1)
        if grid_multiple * observed > limit:
            raise EstimInputError(
                f"[options] grid_multiple: {grid_multiple} × the {observed:,} people seen is a grid of "
                f"{grid_multiple * observed:,} values of N, more than the {limit:,} that fit in memory for "
                f"{k} lists: "
                + ("a smaller multiple, or " if observed <= limit else "")
                + "leave it out (the default grid holds the whole posterior)"
            )
        grid = np.arange(1, grid_multiple * observed + 1)
    log_prior = log_prior_population(np.maximum(observed + grid, 1), prior_n)
    result = counts_posterior(y, lists, delta, grid, log_prior)
    if grid_multiple is not None and result.edge_ratio >= GRID_CUT_WARN:
        # dga's grid 1…multiple·n, chosen by the user, can end well inside the posterior: Kosovo at 1n gave
        # median 8,264, 95 % [7,146, 8,774] against dga's whole-posterior 12,595 [9,827, 16,544], no word
        warnings.warn(
            f"{NAME}: the grid of the unseen 1…{grid_multiple}·n ends where N's posterior is still "
            f"{result.edge_ratio:.2g} of its peak: the posterior is cut off there, and its median and "
            "interval are those of the cut posterior (dga's grid). Leave [options] grid_multiple out for "
            "a grid that holds the whole posterior",
            UserWarning,
            stacklevel=2,
        )
    if k == 2:
        _warn_two_lists(result)
    else:
        _warn_saturated(result)
    _warn_census(y, lists)
    return result


def _warn_census(y: np.ndarray, lists: list[str]) -> None:
    """A list holding everyone seen (``y``: the 2^K pattern counts, bit j list j): the log-linear models'
    maximum is then on the boundary (that list's capture probability 1; Mt and lists_stepwise say the MLE does
    not exist), and the posterior puts N at the n seen (A on every one of 200 people seen with B and C: median
    200, 95 % [200, 237]) on that boundary's say-so, not on overlaps that show few are missed."""
    observed = int(y[1:].sum())
    masks = np.arange(len(y))
    census = [
        name
        for j, name in enumerate(lists)
        if observed and y[(masks >> j) & 1 == 1].sum() == observed
    ]
    if census:
        warnings.warn(
            f"{NAME}: list {census[0]!r} holds every one of the {observed:,} people seen: read as a list "
            "that misses nobody, it puts N at the people seen, which is where the models' maximum lies on "
            "the boundary (Mt and lists_stepwise: the MLE does not exist). Unless it is a census of the "
            "population, the small number unseen is that boundary's, not the overlaps' evidence",
            UserWarning,
            stacklevel=3,
        )


GRID_CUT_WARN = (
    0.01  # the posterior at the end of dga's grid, over its peak, from which the cut is warned of
)


# the saturated graph's posterior weight from which a posterior is warned of, and a fit refused
SATURATED_WARN, SATURATED_REFUSE = 0.05, 0.5


def saturated_weight(result: BMAResult) -> tuple[float, int]:
    """K ≥ 3 lists: the posterior probability of the complete graph (one clique of every list) and the median
    of N given it. It is the saturated model, which says nothing of the people on no list: N's posterior given
    it is its prior's, piled at the n seen for small δ. On a table of many people every other graph's
    conditional independences are rejected (heterogeneity of capture is enough) and it takes all the weight:
    487,804 seen of a simulated 1,000,000 (two classes, four lists) gave a posterior median of 487,805, 95 %
    [487,804, 557,898], exit 0 (so does δ = 1 on Kosovo: weight 0.976, median 4,618)."""
    full = (1 << len(result.lists)) - 1
    saturated = [i for i, graph in enumerate(result.graphs) if full in tuple(graph.clique_masks)]
    return float(result.graph_probability[saturated].sum()), int(result.graph_median[saturated[0]])


def _saturated_text(result: BMAResult, weight: float, median: int) -> str:
    text = (
        f"{NAME}: the saturated graph [{','.join(result.lists)}] (every list dependent on every other, "
        f"which does not identify N) has posterior probability {weight:.3f}"
    )
    if weight < SATURATED_WARN:
        return text
    return text + (
        f": given it, N's posterior is its prior's (median {median:,} for the {result.observed:,} people seen)"
    )


def _warn_saturated(result: BMAResult) -> None:
    weight, median = saturated_weight(result)
    if weight >= SATURATED_WARN:
        warnings.warn(
            _saturated_text(result, weight, median)
            + ", and it enters the average with that weight: the estimate "
            + ("is mostly the prior's" if weight >= SATURATED_REFUSE else "leans on the prior"),
            UserWarning,
            stacklevel=3,
        )


def _precheck(data: xr.Dataset, **options: Any) -> dict[str, Any] | None:
    """The fit's test before it starts (`Family.precheck`; `ModelRejected`, exit 3, when failed): on 3 lists
    or more, the saturated graph's posterior weight below `SATURATED_REFUSE`, else the average is the prior's
    (`saturated_weight`). Options are checked by the fit itself."""
    if data.sizes.get("occasion", 0) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's own posterior warns
        result = bma_posterior(data, **{k: v for k, v in options.items() if k in _OPTIONS})
    weight, median = saturated_weight(result)
    passed = weight < SATURATED_REFUSE
    return {
        "name": "saturated_graph",
        "passed": passed,
        "text": _saturated_text(result, weight, median)
        + ("" if passed else ", so the model average would be the prior's"),
        "remedy": "The data reject every graph that identifies N (on a table of many people, capture that "
        "varies between people is enough). Not fitted: fit lists_latent_class (heterogeneity) or "
        "lists_stepwise, and compare them",
    }


def _warn_two_lists(result: BMAResult) -> None:
    """Two lists: the graph with their interaction (the saturated model) has as many parameters as the
    table has cells, so the data say nothing of the people on neither list and its posterior of N is its
    prior's; averaged in with its posterior weight, it makes the estimate lean on the prior (dga's model
    averaging needs at least 3 lists)."""
    saturated = [
        i for i, graph in enumerate(result.graphs) if any(len(c) > 1 for c in graph.cliques)
    ]
    weight = float(result.graph_probability[saturated].sum()) if saturated else float("nan")
    warnings.warn(
        f"{NAME} on 2 lists ({', '.join(result.lists)}): the graph with their interaction does not identify "
        f"N (as many parameters as cells), so its posterior of N is the prior's (prior_n, delta), and it "
        f"has posterior weight {weight:.3f} in the average: the estimate leans on the prior. Model "
        "averaging over graphs needs at least 3 lists (as dga); with 2 lists fit the independence model "
        "(loglinear, or Mt) and say that it assumes the lists independent",
        UserWarning,
        stacklevel=2,
    )


def check_options(**options: Any) -> dict[str, Any]:
    """The ``[options]`` given (None: not given) checked and normalised: ``delta`` a number > 0 (a float),
    ``prior_n`` one of `PRIORS_N`, ``grid_multiple`` a whole number ≥ 1 (an int); an `EstimInputError`
    naming the option otherwise. A boolean is not a number (``delta = true`` was once read as δ = 1)."""
    out: dict[str, Any] = {}
    if options.get("delta") is not None:
        out["delta"] = number_option(
            "delta", options["delta"], "the hyper-Dirichlet parameter δ", low=0.0, low_open=True
        )
    prior_n = options.get("prior_n")
    if prior_n is not None:
        if not isinstance(prior_n, str) or prior_n not in PRIORS_N:
            raise EstimInputError(
                f"[options] prior_n: the prior on N, one of {', '.join(map(repr, PRIORS_N))}, got "
                f"{prior_n!r}"
            )
        out["prior_n"] = prior_n
    if options.get("grid_multiple") is not None:
        out["grid_multiple"] = whole_option(
            "grid_multiple",
            options["grid_multiple"],
            "dga's grid 1…multiple·n of the people on no list",
            low=1,
        )
    return out


def hyper_dirichlet(
    graph: DecomposableGraph,
    complete: np.ndarray,
    delta: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of the 2^K cell probabilities from graph `graph`'s hyper-Dirichlet posterior given complete tables
    `complete` (draws × 2^K, cell Σ_j x_j·2^j): the first clique's margin from its Dirichlet, each further
    clique's cells given its separator's from independent Dirichlets (parameters δ_C + the margin's counts),
    cliques in a junction-tree order. Gamma variates are drawn in logs (X·U^(1/a) ~ Gamma(a) for X ~ Gamma(a
    + 1)), so a cell with a tiny parameter and no count gets a probability ≈ 0, never 0/0."""
    k = graph.lists
    complete = np.atleast_2d(np.asarray(complete, dtype=np.float64))
    codes = np.arange(1 << k)
    log_theta = np.zeros(complete.shape)
    for clique, separator in _junction_order(graph):
        cells = codes[
            (codes & clique) == codes
        ]  # the clique margin's cells, as masks within the clique
        margin = complete @ ((codes[:, None] & clique) == cells[None, :])
        shape = margin + delta * 2.0 ** (k - clique.bit_count())
        log_gamma = np.log(rng.gamma(shape + 1.0)) + np.log(rng.random(shape.shape)) / shape
        for s in codes[
            (codes & separator) == codes
        ]:  # each separator cell: a Dirichlet of its cells
            block = (cells & separator) == s
            top = log_gamma[:, block].max(axis=1, keepdims=True)
            total = top + np.log(np.exp(log_gamma[:, block] - top).sum(axis=1, keepdims=True))
            log_gamma[:, block] -= total
        position = np.zeros(1 << k, dtype=np.int64)
        position[cells] = np.arange(cells.size)
        log_theta += log_gamma[:, position[codes & clique]]
    theta = np.exp(log_theta)
    return theta / theta.sum(axis=1, keepdims=True)


def _junction_order(graph: DecomposableGraph) -> list[tuple[int, int]]:
    """(clique, separator) masks in an order with the running-intersection property: Prim's maximum-weight
    spanning tree of the clique graph (weights |C ∩ C'|; for a chordal graph a junction tree), each clique
    after a neighbour, its separator the intersection with it (0 between components)."""
    rest = list(graph.clique_masks)
    order = [(rest.pop(0), 0)]
    while rest:
        i, parent = max(
            ((i, c) for i in range(len(rest)) for c, _ in order),
            key=lambda ic: (rest[ic[0]] & ic[1]).bit_count(),
        )
        clique = rest.pop(i)
        order.append((clique, clique & parent))
    return order


def predictive_counts(
    result: BMAResult,
    graph: np.ndarray,
    missing: np.ndarray,
    seed: int | np.random.Generator | None,
) -> np.ndarray:
    """Replicated counts of the 2^K cells (draws × 2^K; cell 0, people on no list, included) for posterior
    draws (graph index, m = N − n): θ from the graph's hyper-Dirichlet posterior given the complete table,
    then a multinomial of N people over the cells."""
    rng = rng_from(seed)
    k = len(result.lists)
    y = result.counts.astype(np.float64)
    out = np.empty((missing.size, 1 << k), dtype=np.int64)
    for g in np.unique(graph):
        where = np.flatnonzero(graph == g)
        complete = np.tile(y, (where.size, 1))
        complete[:, 0] = missing[where]
        theta = hyper_dirichlet(result.graphs[int(g)], complete, result.delta, rng)
        out[where] = rng.multinomial(result.observed + missing[where], theta)
    return out


def _labels(k: int) -> tuple[np.ndarray, list[str]]:
    """Every pattern seen (codes 1…2^K − 1) in Rcapture's order (111…1 first, list 1 the leading digit)."""
    codes = np.arange(1, 1 << k)
    labels = ["".join(str(c >> j & 1) for j in range(k)) for c in codes]
    order = np.argsort(labels, kind="stable")[::-1]
    return codes[order], [labels[i] for i in order]


def _exact(
    data: xr.Dataset,
    priors: Mapping[str, Any] | None,
    rng: np.random.Generator,
    draws: int,
    chains: int,
    **options: Any,
) -> dict[str, xr.Dataset]:
    if priors:
        raise EstimInputError(
            f"{NAME} has no [priors] to set ({sorted(priors)}): its priors are [options] delta (the "
            "hyper-Dirichlet's) and prior_n (N's)"
        )
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise EstimInputError(f"{NAME} takes [options] {', '.join(_OPTIONS)}; got {unknown}")
    options = check_options(**options)
    result = bma_posterior(data, **options)
    sample = result.draw(draws * chains, rng)
    index = {name: i for i, name in enumerate(result.names)}
    graph = np.array([index[str(name)] for name in sample["graph"].values])
    missing = sample["missing"].values
    replicated = predictive_counts(result, graph, missing, rng)
    codes, labels = _labels(len(result.lists))
    shape = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset(
        {
            "N": (("chain", "draw"), sample["N"].values.reshape(chains, draws)),
            "graph": (("chain", "draw"), sample["graph"].values.astype(str).reshape(chains, draws)),
        },
        coords=shape,
    )
    posterior["graph"].attrs["description"] = "the list-dependence graph, by its cliques"
    seen = xr.Dataset(
        {OBSERVED: (("stratum", "history"), result.counts[codes][None, :])},
        coords={"stratum": ["all"], "history": labels},
    )
    predictive = xr.Dataset(
        {
            OBSERVED: (
                ("chain", "draw", "stratum", "history"),
                replicated[:, codes].reshape(chains, draws, 1, codes.size),
            )
        },
        coords={**shape, "stratum": ["all"], "history": labels},
    )
    return {
        "posterior": posterior,
        "posterior_predictive": predictive,
        "observed_data": seen,
        GROUP: graph_table(result, options),
    }


def graph_table(result: BMAResult, options: Mapping[str, Any]) -> xr.Dataset:
    """The most probable graphs (up to `MAX_GRAPH_ROWS`, or a cumulative probability of 0.9999) with their
    exact posterior probabilities and N's posterior mean, median and 95 % interval given each; attributes:
    the model-averaged posterior of N (exact, on the grid), the grid and the priors."""
    table = result.graph_table()
    rows = int(np.searchsorted(table["probability"].cumsum().to_numpy(), 0.9999)) + 1
    table = table.iloc[: min(rows, MAX_GRAPH_ROWS)]
    lower, upper = result.interval(0.95)
    grid_multiple = options.get("grid_multiple")
    first, last = int(result.n_missing[0]), int(result.n_missing[-1])
    return xr.Dataset(
        {
            "name": ("graph", table["graph"].to_numpy().astype(str)),
            **{c: ("graph", table[c].to_numpy()) for c in ("probability", "mean", "median")},
            "lower": ("graph", table["lower"].to_numpy()),
            "upper": ("graph", table["upper"].to_numpy()),
        },
        coords={"graph": np.arange(len(table))},
        attrs={
            "description": "the decomposable graphs' exact posterior probabilities (most probable first) "
            "and the posterior of N given each (mean, median, 95 % interval)",
            "lists": list(result.lists),
            "graphs": len(result.graphs),
            "delta": result.delta,
            "prior_n": str(options.get("prior_n", "inverse")),
            "grid": f"m = {first:,}…{last:,} ({grid_multiple}n, dga's grid; the posterior at its end is "
            f"{result.edge_ratio:.2g} of its peak)"
            if grid_multiple is not None
            else f"m = {first:,}…{last:,} (holds the whole posterior: at its end below 1e-6 of its peak)",
            "grid_first": first,
            "grid_last": last,
            "edge_ratio": result.edge_ratio,
            "mean": result.mean,
            "median": result.median,
            "lower": lower,
            "upper": upper,
        },
    )


def _no_model(*_: Any, **__: Any) -> pm.Model:
    raise EstimInputError(
        f"{NAME} has no PyMC model: its posterior is computed exactly on a grid (Family.exact)"
    )


def _no_ml(*_: Any, **__: Any) -> MLEResult:
    raise EstimInputError(
        f"{NAME} has no maximum-likelihood mode: model averaging over graphs is Bayesian (estim fit without "
        "--mle). For ML fits of multiple lists use lists_stepwise (SparseMSE's stepwise selection) or the "
        "log-linear family loglinear with chosen interactions"
    )


register(
    Family(
        name=NAME,
        description="multiple lists: dga's Bayesian model averaging over decomposable graphs "
        "(hyper-Dirichlet prior), the posterior computed exactly",
        data=LISTS,  # the multiple-list families' data (a pattern table, or the border registers)
        build=_no_model,
        population=_no_model,
        mle=_no_ml,
        default_priors={},
        observed_name=OBSERVED,
        gate_variables=(),  # N only: the graph is a label, its draws are not a real-valued chain
        exact=_exact,
        precheck=_precheck,
        ml=False,
        options=(
            Option(
                "delta", "the hyper-Dirichlet parameter δ", kind="number", low=0.0, low_open=True
            ),
            Option("prior_n", "the prior on N", kind="choice", choices=PRIORS_N),
            Option(
                "grid_multiple",
                "dga's grid 1…multiple·n of the people on no list",
                kind="int",
                low=1,
            ),
        ),
    )
)
