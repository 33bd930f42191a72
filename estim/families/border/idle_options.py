"""The border ``[options]`` that some data leave without effect, whatever their value (`idle_on_data`).

The spec reader refuses an option the model never reads beside the spec's other options
(`estim.families.options.Option.only_with`); these depend on the data, known only when the model is built:

* ``terrain_hazard``, ``terrain_journeys`` — a shift by terrain sums to zero over the terrains, so with one
  terrain for every section there is none (`estim.families.border.model.build_border` drops it);
* ``after_background`` — it scales the person's other crossings in the register linkage's window after a
  journey, and without a linkage (no in-country register, or no surveyed section's apprehended journey on one)
  the model has no such term;
* ``saddlepoint_above`` — it chooses the law of the monthly totals of the sections without individual records
  (exact or saddlepoint), and the totals that exceed it: with every section surveyed, or every unsurveyed total
  ≤ 1 (the threshold is a whole number ≥ 1), no total takes it.

Only what the spec writes is checked (``[options]`` keeps it as written): a default is never refused.
`estim.run.fit.build_model` refuses what this finds, or says it for a sensitivity variant (whose options are the
study's, not the spec's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from estim.families.options import shown_toml
from estim.statistics.linkage import IN_COUNTRY_LISTS


def has_linkage(data: xr.Dataset) -> bool:
    """Whether the model has the register linkage's terms: an in-country register, and a surveyed section's
    apprehended journey counted in a sighting pattern (`estim.families.border.model.build_border`)."""
    surveyed = data["surveyed"].values.astype(bool)
    linked = data["linked_journeys"].values[surveyed]
    return len(data["in_country_list"].values) > 0 and int(linked.sum()) > 0


def _one_terrain(data: xr.Dataset) -> str | None:
    terrains = np.unique(data["terrain"].values.astype(str))
    if len(terrains) != 1:
        return None
    return (
        f"the data's {data.sizes['section']} sections all have one terrain ({terrains[0]}) in sections.csv "
        "(column terrain), and a shift by terrain sums to zero over the terrains: with one there is none"
    )


def _no_linkage(data: xr.Dataset) -> str | None:
    if has_linkage(data):
        return None
    lists = [str(x) for x in data["in_country_list"].values]
    where = (
        f"registers.csv holds no in-country register: {' or '.join(IN_COUNTRY_LISTS)}"
        if not lists
        else f"no apprehended journey of a surveyed section found on {', '.join(lists)}"
    )
    return (
        f"the data have no register linkage ({where}), and the factor scales the person's other crossings "
        "in the linkage's window after a journey, a term only the linkage has"
    )


def _no_compound_totals(data: xr.Dataset) -> str | None:
    surveyed = data["surveyed"].values.astype(bool)
    if surveyed.all():
        return (
            "every section of the data is surveyed (individual apprehension records), and the threshold "
            "chooses the law of the monthly totals of sections without them"
        )
    largest = int(data["apprehensions"].values[~surveyed].max())
    if largest > 1:
        return None
    return (
        f"the largest monthly total of the sections without individual records is {largest}, and only "
        "totals above the threshold (a whole number ≥ 1) take the saddlepoint law"
    )


_WHY = {
    "terrain_hazard": _one_terrain,
    "terrain_journeys": _one_terrain,
    "after_background": _no_linkage,
    "saddlepoint_above": _no_compound_totals,
}

_FIX = {
    "terrain_hazard": "give the sections' terrains in sections.csv",
    "terrain_journeys": "give the sections' terrains in sections.csv",
    "after_background": "fit records with the in-country registers (registers.csv)",
    "saddlepoint_above": "fit records with sections known by their monthly totals",
}


def idle_on_data(data: xr.Dataset, given: Mapping[str, Any]) -> dict[str, str]:
    """The options of `given` (a spec's ``[options]`` as written) that `data` leave without effect, each with
    what follows ``[options]`` in the refusal: ``NAME = VALUE: why …: remove it``."""
    idle = {}
    for name, value in given.items():
        check = _WHY.get(name)
        why = None if check is None else check(data)
        if why is not None:
            idle[name] = (
                f"{name} = {shown_toml(value)}: {why}, so it would change nothing: remove it from "
                f"[options], or {_FIX[name]}"
            )
    return idle
