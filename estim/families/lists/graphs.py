"""The decomposable (chordal) graphs on K labelled lists, with the cliques and separators of each.

A graphical log-linear model of K lists says which lists depend on which: an edge joins two lists that
interact, and the model's generators are the graph's maximal cliques. When the graph is decomposable (every
cycle of four or more lists has a chord) the model's likelihood and the hyper-Dirichlet prior on its cell
probabilities factor over the cliques C and the separators S of a junction tree,

    p(table) = Π_C p(C-margin) / Π_S p(S-margin),

which is what makes the Bayesian model averaging of Madigan & York (1997) and R's dga closed-form. dga ships
the graphs for 3, 4 and 5 lists as data (``graphs3``, ``graphs4``, ``graphs5``: 8, 61 and 822 graphs); here
they are enumerated: every set of edges is tested for chordality, its maximal cliques are found by brute
force (K is small), and the separators are the non-empty intersections along a maximum-weight spanning tree
of the clique graph (for a chordal graph any such tree is a junction tree). A separator can repeat (the star
[1,2][1,3][1,4] has separator {1} twice), and graphs with several components have fewer separators than
cliques minus one: the empty separators are left out, as dga leaves them out (their margin has probability 1).

Lists are numbered 0…K−1 here, and a set of lists is also a bit mask (list j ↔ bit j).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from estim.errors import EstimInputError

MAX_ENUMERATED_LISTS = (
    6  # 2^15 edge sets and 18,154 decomposable graphs; 7 lists would be 2^21 edge sets
)


@dataclass(frozen=True)
class DecomposableGraph:
    """A decomposable graph on lists 0…K−1: its edges, maximal cliques and separators (each a sorted tuple).

    Cliques are sorted; separators are listed with their multiplicity in a junction tree, empty ones left out.
    """

    lists: int
    edges: tuple[tuple[int, int], ...]
    cliques: tuple[tuple[int, ...], ...]
    separators: tuple[tuple[int, ...], ...]

    def name(self, list_names: Sequence[str] | None = None) -> str:
        """The graph by its cliques, e.g. ``[EXH,ABA,OSCE][EXH,OSCE,HRW]``, or ``[1,2,3][1,3,4]`` (dga's list
        numbers, 1-based) without names."""
        if list_names is not None and len(list_names) != self.lists:
            raise EstimInputError(f"{len(list_names)} list names for a graph on {self.lists} lists")
        label = (lambda v: str(v + 1)) if list_names is None else (lambda v: str(list_names[v]))
        return "".join("[" + ",".join(label(v) for v in c) + "]" for c in self.cliques)

    @property
    def clique_masks(self) -> tuple[int, ...]:
        return tuple(_mask(c) for c in self.cliques)

    @property
    def separator_masks(self) -> tuple[int, ...]:
        return tuple(_mask(s) for s in self.separators)


def _mask(vertices: Sequence[int]) -> int:
    return sum(1 << v for v in vertices)


def _vertices(mask: int, k: int) -> tuple[int, ...]:
    return tuple(v for v in range(k) if mask >> v & 1)


def is_chordal(k: int, edges: Sequence[tuple[int, int]]) -> bool:
    """True when the graph on vertices 0…k−1 has no chordless cycle of length ≥ 4 (Tarjan & Yannakakis 1984:
    a maximum cardinality search order is a perfect elimination order exactly when the graph is chordal)."""
    adj = _adjacency(k, edges)
    order: list[int] = []
    weight = [0] * k
    numbered = [False] * k
    for _ in range(k):
        # ties broken by the lowest vertex, so the order is deterministic
        v = max((u for u in range(k) if not numbered[u]), key=lambda u: (weight[u], -u))
        numbered[v] = True
        order.append(v)
        for u in range(k):
            if adj[v] >> u & 1 and not numbered[u]:
                weight[u] += 1
    position = {v: i for i, v in enumerate(order)}
    for v in order:
        # the neighbours numbered before v must form a clique with v's latest-numbered earlier neighbour
        earlier = [u for u in range(k) if adj[v] >> u & 1 and position[u] < position[v]]
        if len(earlier) < 2:
            continue
        parent = max(earlier, key=position.__getitem__)
        rest = _mask(earlier) & ~(1 << parent)
        if rest & ~adj[parent]:
            return False
    return True


def _adjacency(k: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    adj = [0] * k
    for a, b in edges:
        if not (0 <= a < k and 0 <= b < k) or a == b:
            raise EstimInputError(f"edge {(a, b)}: two different lists among 0…{k - 1}")
        adj[a] |= 1 << b
        adj[b] |= 1 << a
    return adj


def maximal_cliques(k: int, edges: Sequence[tuple[int, int]]) -> tuple[tuple[int, ...], ...]:
    """Every maximal complete set of vertices (isolated vertices are cliques of one), sorted."""
    adj = _adjacency(k, edges)
    # complete[m]: m minus its lowest list is complete and that list is joined to all of it
    complete = [True] * (1 << k)
    for m in range(1, 1 << k):
        low = (m & -m).bit_length() - 1
        rest = m & (m - 1)
        complete[m] = complete[rest] and rest & ~adj[low] == 0
    maximal = [
        m
        for m in range(1, 1 << k)
        if complete[m] and not any(complete[m | 1 << v] for v in range(k) if not m >> v & 1)
    ]
    return tuple(sorted(_vertices(m, k) for m in maximal))


def junction_separators(cliques: Sequence[tuple[int, ...]]) -> tuple[tuple[int, ...], ...]:
    """The non-empty separators of a junction tree of a decomposable graph's cliques (with multiplicity).

    Kruskal's maximum-weight spanning tree of the clique graph, weights |C_i ∩ C_j|: for a chordal graph every
    such tree has the running-intersection property, and all junction trees share one multiset of
    separators."""
    masks = [_mask(c) for c in cliques]
    k = max((v for c in cliques for v in c), default=-1) + 1
    pairs = sorted(
        itertools.combinations(range(len(masks)), 2),
        key=lambda ij: -(masks[ij[0]] & masks[ij[1]]).bit_count(),
    )
    component = list(range(len(masks)))

    def root(i: int) -> int:
        while component[i] != i:
            i = component[i]
        return i

    separators = []
    for i, j in pairs:
        shared = masks[i] & masks[j]
        if not shared:
            break  # the rest join components with nothing in common: empty separators, left out
        ri, rj = root(i), root(j)
        if ri != rj:
            component[ri] = rj
            separators.append(_vertices(shared, k))
    return tuple(sorted(separators))


@cache
def decomposable_graphs(k: int) -> tuple[DecomposableGraph, ...]:
    """All decomposable graphs on k labelled lists (1, 2, 8, 61, 822, 18,154 for k = 1…6), each with its
    cliques and junction-tree separators; ordered by number of edges, then by edge set."""
    if not isinstance(k, int) or not 1 <= k <= MAX_ENUMERATED_LISTS:
        raise EstimInputError(
            f"decomposable graphs on {k!r} lists: enumerated for 1 to {MAX_ENUMERATED_LISTS} lists "
            "(dga: 3 to 5)"
        )
    possible = list(itertools.combinations(range(k), 2))
    graphs = []
    for size in range(len(possible) + 1):
        for edges in itertools.combinations(possible, size):
            if is_chordal(k, edges):
                cliques = maximal_cliques(k, edges)
                graphs.append(
                    DecomposableGraph(k, tuple(edges), cliques, junction_separators(cliques))
                )
    return tuple(graphs)
