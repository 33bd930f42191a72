"""Simulated multiple-list data with both departures from independence that real lists show at once: a
pairwise dependence between two lists and heterogeneous capture, for the recovery study of the multiple-list
models (`estim.studies.lists_recovery`).

The generative model (`ListsDesign`). Each of the N people belongs to one of two latent classes, class c with
probability ``class_share[c]``. Given the class, list j records the person with probability
``capture[c, j]``; lists 3…K record independently of each other and of lists 1 and 2; lists 1 and 2 are
dependent within every class, with odds ratio ``odds_ratio`` between them (their 2 × 2 table in class c has
margins capture[c, 0], capture[c, 1] and that odds ratio: Plackett's distribution). So the pattern
probabilities are

    P(x) = Σ_c share_c · P_c(x_1, x_2) · Π_{j ≥ 3} capture_cj^x_j (1 − capture_cj)^(1 − x_j),

and a dataset is the table of the 2^K − 1 seen patterns' counts among N independent people. No decomposable
log-linear model contains this law but the complete graph, which leaves N unidentified (the classes make
every pair of lists dependent, and in higher orders).
Latent classes with lists independent within a class contain it only with four classes (any 2 × 2 law is a
mixture of two independent ones, so each class splits in two on lists 1 and 2), a model that is not
identifiable from 4 lists and weakly identified from 6. The controls (`FOUR_LISTS_DEPENDENCE`, …) keep one
departure at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from estim.errors import EstimInputError

COUNT = "count"


@dataclass(frozen=True)
class ListsDesign:
    """The truth of a simulated multiple-list study: the lists' names, the two classes' shares and per-list
    capture probabilities (class, list), and the within-class odds ratio between lists 1 and 2."""

    name: str
    lists: tuple[str, ...]
    class_share: tuple[float, ...]
    capture: tuple[tuple[float, ...], ...]
    odds_ratio: float

    def __post_init__(self) -> None:
        k = len(self.lists)
        if k < 2:
            raise EstimInputError(f"design {self.name}: at least 2 lists, got {k}")
        share = np.asarray(self.class_share, dtype=float)
        if (share <= 0).any() or abs(share.sum() - 1) > 1e-12:
            raise EstimInputError(
                f"design {self.name}: class shares {self.class_share} must be > 0 and sum to 1"
            )
        cap = np.asarray(self.capture, dtype=float)
        if cap.shape != (share.size, k) or not ((cap > 0) & (cap < 1)).all():
            raise EstimInputError(
                f"design {self.name}: capture must be (class, list) = ({share.size}, {k}) "
                f"probabilities strictly between 0 and 1"
            )
        if not (np.isfinite(self.odds_ratio) and self.odds_ratio > 0):
            raise EstimInputError(f"design {self.name}: odds ratio {self.odds_ratio} must be > 0")


# The two structures of the recovery study. 30 % of people are "visible": every list records them 2.5 times
# as often as the other 70 %. Within each class, lists 1 and 2 have odds ratio 3 (people one of them records
# are three times as likely, in odds, to be on the other: e.g. an NGO that refers people to the police). The
# capture probabilities put the share seen near half of N (0.49 with 4 lists and with 6; `seen_share`).
FOUR_LISTS = ListsDesign(
    name="4 lists",
    lists=("A", "B", "C", "D"),
    class_share=(0.3, 0.7),
    capture=((0.30, 0.25, 0.375, 0.25), (0.12, 0.10, 0.15, 0.10)),
    odds_ratio=3.0,
)
SIX_LISTS = ListsDesign(
    name="6 lists",
    lists=("A", "B", "C", "D", "E", "F"),
    class_share=(0.3, 0.7),
    capture=((0.25, 0.20, 0.25, 0.20, 0.175, 0.15), (0.10, 0.08, 0.10, 0.08, 0.07, 0.06)),
    odds_ratio=3.0,
)
# Each departure alone, to tell a model's miscalibration from its misspecification: with one class and the
# dependence between lists 1 and 2, both models contain the truth (a decomposable graph with the edge 1–2; two
# latent classes, since any 2 × 2 law is a mixture of two independent ones); with the two classes and no
# dependence (odds ratio 1), latent classes contain it and decomposable log-linear models do not.
FOUR_LISTS_DEPENDENCE = ListsDesign(
    name="4 lists, dependence only",
    lists=FOUR_LISTS.lists,
    class_share=(1.0,),
    capture=((0.18, 0.15, 0.22, 0.15),),
    odds_ratio=3.0,
)
FOUR_LISTS_HETEROGENEITY = ListsDesign(
    name="4 lists, heterogeneity only",
    lists=FOUR_LISTS.lists,
    class_share=FOUR_LISTS.class_share,
    capture=FOUR_LISTS.capture,
    odds_ratio=1.0,
)
SIX_LISTS_DEPENDENCE = ListsDesign(
    name="6 lists, dependence only",
    lists=SIX_LISTS.lists,
    class_share=(1.0,),
    capture=((0.135, 0.11, 0.135, 0.11, 0.095, 0.08),),
    odds_ratio=3.0,
)
SIX_LISTS_HETEROGENEITY = ListsDesign(
    name="6 lists, heterogeneity only",
    lists=SIX_LISTS.lists,
    class_share=SIX_LISTS.class_share,
    capture=SIX_LISTS.capture,
    odds_ratio=1.0,
)
DESIGNS = {
    d.name: d
    for d in (
        FOUR_LISTS,
        SIX_LISTS,
        FOUR_LISTS_DEPENDENCE,
        FOUR_LISTS_HETEROGENEITY,
        SIX_LISTS_DEPENDENCE,
        SIX_LISTS_HETEROGENEITY,
    )
}


def pair_table(p1: float, p2: float, odds_ratio: float) -> np.ndarray:
    """The 2 × 2 joint law [[P(0,0), P(0,1)], [P(1,0), P(1,1)]] of two 0/1 variables with margins P(x_1 = 1) =
    p1, P(x_2 = 1) = p2 and odds ratio P(1,1)P(0,0)/(P(1,0)P(0,1)) = `odds_ratio` (Plackett 1965: P(1,1) is
    the root in the admissible range of a quadratic)."""
    if odds_ratio == 1.0:
        p11 = p1 * p2
    else:
        s = 1 + (p1 + p2) * (odds_ratio - 1)
        p11 = (s - np.sqrt(s * s - 4 * odds_ratio * (odds_ratio - 1) * p1 * p2)) / (
            2 * (odds_ratio - 1)
        )
    return np.array([[1 - p1 - p2 + p11, p2 - p11], [p1 - p11, p11]])


def patterns(k: int) -> np.ndarray:
    """All 2^k 0/1 patterns of k lists (pattern, list), pattern number Σ_j x_j 2^j (list 1 the lowest bit)."""
    codes = np.arange(1 << k)
    return ((codes[:, None] >> np.arange(k)[None, :]) & 1).astype(np.int8)


def pattern_probabilities(design: ListsDesign) -> np.ndarray:
    """The exact probability of each of the 2^K patterns (order of `patterns`, entry 0 = seen by no list),
    by enumeration over the classes."""
    x = patterns(len(design.lists))
    cap = np.asarray(design.capture, dtype=float)
    total = np.zeros(x.shape[0])
    for share, p in zip(design.class_share, cap, strict=True):
        pair = pair_table(p[0], p[1], design.odds_ratio)[x[:, 0], x[:, 1]]
        rest = np.prod(np.where(x[:, 2:] == 1, p[2:], 1 - p[2:]), axis=1)
        total += share * pair * rest
    return total


def seen_share(design: ListsDesign) -> float:
    """The expected share of the population on at least one list, 1 − P(0…0)."""
    return float(1 - pattern_probabilities(design)[0])


def simulate_lists(rng: np.random.Generator, size: int, design: ListsDesign) -> pd.DataFrame:
    """One simulated dataset: `size` people drawn one by one from `design` (a class, then lists 1 and 2 from
    their joint table, then the other lists independently), tabulated as the seen patterns.

    Returns one row per pattern seen at least once: the 0/1 list columns (``design.lists``) and ``count``, in
    pattern order (list 1 the lowest bit). The same generator state gives the same table."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise EstimInputError(f"size = {size!r}: the population size, a whole number ≥ 1")
    k = len(design.lists)
    cap = np.asarray(design.capture, dtype=float)
    klass = rng.choice(len(design.class_share), size=int(size), p=design.class_share)
    x = np.zeros((int(size), k), dtype=np.int64)
    for c, p in enumerate(cap):
        who = np.flatnonzero(klass == c)
        # lists 1 and 2 as one of four joint cells: 0 = (0,0), 1 = (1,0), 2 = (0,1), 3 = (1,1)
        pair = pair_table(p[0], p[1], design.odds_ratio)
        cell = rng.choice(4, size=who.size, p=[pair[0, 0], pair[1, 0], pair[0, 1], pair[1, 1]])
        x[who, 0], x[who, 1] = cell & 1, cell >> 1
        x[who, 2:] = rng.random((who.size, k - 2)) < p[2:]
    code = x @ (np.int64(1) << np.arange(k, dtype=np.int64))
    counts = np.bincount(code, minlength=1 << k)
    seen = np.flatnonzero(counts[1:]) + 1
    table = pd.DataFrame(patterns(k)[seen].astype(np.int64), columns=list(design.lists))
    table[COUNT] = counts[seen].astype(np.int64)
    return table
