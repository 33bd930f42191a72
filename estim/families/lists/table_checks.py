"""What a list table must hold for any multiple-list model to estimate N from it, refused otherwise naming the
lists: someone on every list (`refuse_empty_lists`), someone on two lists (`refuse_no_overlap`), no list that
shares nobody with the others (`refuse_unlinked_lists`, which then checks that no list of `NESTED_MIN` people or
more lies inside another, `refuse_nested_lists`)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.closed import OBSERVED


def refuse_empty_lists(data: xr.Dataset, where: str, hint: str = "") -> None:
    """`EstimInputError` naming the first list nobody is on in `data` (`where` says which table)."""
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64).sum(axis=0)
    capture = data["capture"].transpose("history", "occasion").values.astype(np.int64)
    on_list = counts @ capture
    lists = [str(o) for o in data["occasion"].values]
    empty = [name for name, n in zip(lists, on_list.tolist(), strict=True) if n == 0]
    if empty:
        raise EstimInputError(
            f"{where}: nobody is on the list {empty[0]!r}"
            + (f" (nor on {', '.join(map(repr, empty[1:]))})" if len(empty) > 1 else "")
            + ": a list with no one on it says nothing about the population (its log-linear main "
            "effect is −∞); leave it out of the lists" + hint
        )


def refuse_no_overlap(data: xr.Dataset, where: str) -> None:
    """`EstimInputError` when nobody in `data` is on two lists or more (`where` says which table)."""
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64).sum(axis=0)
    lists_on = data["capture"].transpose("history", "occasion").values.astype(np.int64).sum(axis=1)
    if int(counts[lists_on >= 2].sum()) == 0:
        raise EstimInputError(
            f"{where}: nobody is on more than one list. The overlaps between lists carry all the "
            "information about the people on none, so no multiple-list model can estimate N from this "
            "table (a maximum-likelihood fit runs to infinity, a Bayesian one returns its prior)"
        )


def _overlap_groups(data: xr.Dataset) -> list[list[str]]:
    """The lists of `data` grouped by who they share: two lists are linked when someone is on both, and a
    group is a connected set of linked lists (every list alone when nobody is on two lists)."""
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.float64).sum(axis=0)
    capture = data["capture"].transpose("history", "occasion").values.astype(np.float64)
    linked = (capture.T * counts) @ capture > 0  # (list, list): someone on both
    lists = [str(o) for o in data["occasion"].values]
    group = list(range(len(lists)))  # union–find over the linked pairs

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(lists)):
        for j in range(i + 1, len(lists)):
            if linked[i, j]:
                group[root(j)] = root(i)
    out: dict[int, list[str]] = {}
    for i, name in enumerate(lists):
        out.setdefault(root(i), []).append(name)
    return list(out.values())


RECORDS_KEY_HINT = (
    ". In records this usually means the person keys do not match across the files (a person must carry "
    "the same person_key in registers.csv as in apprehensions.csv: check case, spaces and the pseudonym "
    "key used for each file)"
)


def refuse_unlinked_lists(data: xr.Dataset, where: str, hint: str = "") -> None:
    """`EstimInputError` when some list shares nobody with any other list, or the lists fall into groups with
    nobody in common between them (`where` says which table; `hint` is added to the message).

    Only the overlaps tell how many people the lists miss. A list that shares nobody with the others says
    nothing about how many of its own people they miss, nor they about its: no model can estimate it. A
    log-linear fit takes its empty overlaps for structural zeros and adds its people to the others' N̂ as if
    it had seen all of its population (estim gave 1,960 for Lincoln–Petersen's 1,560 on two lists plus the
    400 of a third overlapping neither); model averaging returns a posterior its prior sets.
    """
    groups = _overlap_groups(data)
    if len(groups) < 2:
        refuse_nested_lists(data, where)
        return
    alone = [g[0] for g in groups if len(g) == 1]
    if len(alone) == 1:
        what = f"nobody on the list {alone[0]!r} is on any other list"
        subject = f"the list {alone[0]!r} misses"
    elif alone:
        names = ", ".join(map(repr, alone))
        what = f"nobody on the lists {names} is on any other list"
        subject = f"each of the lists {names} misses"
    else:
        subject = "each group misses"
        what = "the lists fall into groups with nobody in common"
    linked = [g for g in groups if len(g) > 1]
    if len(linked) > 1:
        what += (", and the others fall into groups with nobody in common" if alone else "") + ": "
        what += " and ".join("{" + ", ".join(g) + "}" for g in linked)
    raise EstimInputError(
        f"{where}: {what}. Only the overlaps between lists tell how many people the lists miss, so no "
        f"multiple-list model can estimate how many people {subject} (a log-linear fit would take "
        "the empty overlaps for structural zeros and count those people as if they had all been seen; "
        "a Bayesian fit's answer would be its prior's). Fit the lists that share people without the others, or "
        "find the people they share" + hint
    )


NESTED_MIN = 10
"""People on a list below which its lying inside another is not refused: a list of a few people all on a list
that holds most of those seen may lie inside it by chance."""


def refuse_nested_lists(data: xr.Dataset, where: str) -> None:
    """`EstimInputError` when everyone on some list is on another list too (`where` says which table).

    A list inside another says nothing of the people the other misses: whom it catches among them is
    unknown, as it caught none. A log-linear model with their interaction runs it to infinity, and one
    without it fits the table badly. The stepwise search could still report such a model as fine: a
    deportation register wholly inside the apprehensions gave N̂ = 4,716 for 4,706 people seen, deviance
    410 on 5 df (57,834 without that list). Leave the inner list out, or fit the two as one list."""
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64).sum(axis=0)
    capture = data["capture"].transpose("history", "occasion").values.astype(bool)
    lists = [str(o) for o in data["occasion"].values]
    on = counts @ capture
    for i, inner in enumerate(lists):
        if on[i] < NESTED_MIN:
            continue
        for j, outer in enumerate(lists):
            if i != j and int(counts[capture[:, i] & ~capture[:, j]].sum()) == 0:
                same = int(counts[capture[:, j] & ~capture[:, i]].sum()) == 0
                what = "the same people as" if same else "all also on"
                raise EstimInputError(
                    f"{where}: the {int(on[i]):,} people on the list {inner!r} are {what} the list "
                    f"{outer!r}: a list inside another says nothing about the people the other misses, so "
                    "no multiple-list model can estimate N with both (a log-linear fit runs their "
                    "interaction to infinity or fits the table badly; estim once reported N̂ = 4,716 for "
                    f"4,706 people seen this way). Leave {inner!r} out, or merge the two into one list"
                )
