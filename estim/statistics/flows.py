"""Checkpoint flows per checkpoint × month, and the bypass-share inputs summed over a section's land checkpoints."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.records.recordset import RecordSet
from estim.statistics.coding import _FLOW_COLUMNS, _codes, _flat_index, _Flows

# Land checkpoints: the ones a foreigner could bypass on foot or by car between checkpoints. Air checkpoints are
# not an alternative to crossing the green border, so they do not enter the bypass-share inputs.
LAND_CHECKPOINT_TYPES = ("road", "rail", "river")


# --------------------------------------------------------------------------------------------------------------
# Checkpoint flows
# --------------------------------------------------------------------------------------------------------------


def _checkpoint_flows(
    records: RecordSet,
    flows: _Flows,
    checkpoints: Sequence[str],
    sections: Sequence[str],
    month0: int,
    n_months: int,
) -> dict[str, xr.DataArray]:
    n_cp = len(checkpoints)
    n_s = len(sections)
    flow_month = flows.month - np.int32(month0)
    cell = _flat_index((flows.checkpoint, n_cp), (flow_month, n_months))
    if np.bincount(cell, minlength=n_cp * n_months).max(initial=0) > 1:
        raise EstimInputError("checkpoint_records: a checkpoint and month appear more than once")

    out: dict[str, xr.DataArray] = {}
    dims = ("checkpoint", "month")
    for column, (long_name, units) in _FLOW_COLUMNS.items():
        grid = np.zeros(n_cp * n_months, dtype=np.int64)
        grid[cell] = flows.values[column]
        out[column] = xr.DataArray(
            grid.reshape(n_cp, n_months),
            dims=dims,
            attrs={
                "long_name": f"{long_name} (0 where not reported: see checkpoint_reported)",
                "units": units,
            },
        )
    reported = np.zeros(n_cp * n_months, dtype=bool)
    reported[cell] = True
    out["checkpoint_reported"] = xr.DataArray(
        reported.reshape(n_cp, n_months),
        dims=dims,
        attrs={
            "long_name": "a checkpoint record exists for this checkpoint and month",
            "units": "1",
        },
    )
    wait = np.full(n_cp * n_months, np.nan)
    wait[cell] = flows.wait
    out["mean_wait_minutes"] = xr.DataArray(
        wait.reshape(n_cp, n_months),
        dims=dims,
        attrs={
            "long_name": "mean waiting time at control (NaN where not reported)",
            "units": "minutes",
        },
    )

    # Bypass-share inputs: the same records summed to section-month over the land checkpoints.
    cp_section = _codes(records.checkpoints["section_id"], sections, "checkpoints", "section_id")
    cp_land = records.checkpoints["type"].astype(str).isin(LAND_CHECKPOINT_TYPES).to_numpy()
    land = cp_land[flows.checkpoint]
    sm = _flat_index((cp_section[flows.checkpoint], n_s), (flow_month, n_months))[land]
    size = n_s * n_months
    foreigners = np.zeros(size, dtype=np.int64)
    np.add.at(foreigners, sm, flows.values["crossings_foreigners"][land])
    # The wait foreigners meet (docs/simulator.md §1, the bypass share's input): weighted by foreign crossings,
    # the plain mean of the land checkpoints' waits in a month without foreign crossings.
    foreign = flows.values["crossings_foreigners"][land].astype(np.float64)
    weight = np.bincount(sm, weights=foreign, minlength=size)
    weighted_wait = np.bincount(sm, weights=foreign * flows.wait[land], minlength=size)
    reporting = np.bincount(sm, minlength=size)
    plain_wait = np.bincount(sm, weights=flows.wait[land], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        land_wait = np.where(
            weight > 0,
            weighted_wait / weight,
            np.where(reporting > 0, plain_wait / reporting, np.nan),
        )
    out["land_crossings_foreigners"] = xr.DataArray(
        foreigners.reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "legal crossings by foreigners at the section's road, rail and river checkpoints "
            "that reported (see land_checkpoints_reporting)",
            "units": "crossings",
        },
    )
    out["land_mean_wait_minutes"] = xr.DataArray(
        land_wait.reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "mean waiting time at the section's road, rail and river checkpoints, weighted by "
            "foreign crossings (their plain mean in a month without; NaN where none reported)",
            "units": "minutes",
        },
    )
    out["land_checkpoints_reporting"] = xr.DataArray(
        np.bincount(sm, minlength=size).astype(np.int64).reshape(n_s, n_months),
        dims=("section", "month"),
        attrs={
            "long_name": "road, rail and river checkpoints of the section with a record for the month",
            "units": "checkpoints",
        },
    )
    return out


# --------------------------------------------------------------------------------------------------------------
# Whether the land flows are whole (checked where the border model reads them: estim.families.border.data)
# --------------------------------------------------------------------------------------------------------------

LAND_FLOW_GAP = "land_flow_gap"
"""The rule a section-month without any road, rail or river checkpoint record breaks."""
CHECKPOINT_NOT_REPORTING = "checkpoint_not_reporting"
"""The rule a land checkpoint of checkpoints.csv without records in some months breaks (warned of)."""


def _land_checkpoints(stats: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(checkpoint,) the section of each checkpoint and whether it is a road, rail or river one."""
    types = stats["checkpoint_type"].values.astype(str)
    return stats["checkpoint_section"].values.astype(str), np.isin(types, LAND_CHECKPOINT_TYPES)


def refuse_land_flow_gaps(stats: xr.Dataset, doc: str) -> None:
    """A section-month of the statistics' span with no road, rail or river checkpoint record has no land flow
    or wait, the bypassers' input: refused naming the file, sections, months and why (none listed, or none
    reported), with `LAND_FLOW_GAP`; `doc` is where the rule is written up."""
    from estim.families.record_periods import runs  # formats months as the other refusals do

    wait = stats["land_mean_wait_minutes"].transpose("section", "month").values
    gap = np.isnan(wait) | (
        stats["land_crossings_foreigners"].transpose("section", "month").values < 0
    )
    if not gap.any():
        return
    months = [str(m)[:7] for m in stats["month"].values]
    where, land = _land_checkpoints(stats)
    said = []
    for s in np.flatnonzero(gap.any(axis=1)):
        section = str(stats["section"].values[s])
        mine = [str(c) for c in stats["checkpoint"].values[land & (where == section)]]
        why = (
            f"none of its road, rail or river checkpoints ({', '.join(mine)}) has a record then"
            if mine
            else "checkpoints.csv lists no road, rail or river checkpoint of it"
        )
        n = f"{int(gap[s].sum())} of {len(months)} months"
        said.append(f"section {section} in {runs(months, gap[s])} ({n}): {why}")
    raise EstimInputError(
        "checkpoint_records: no land flow in some section-months of the records' span "
        f"{months[0]} … {months[-1]} (rule {LAND_FLOW_GAP}): {'; '.join(said)}. The border model reads "
        "every month each section's foreign crossings and wait at its road, rail and river checkpoints (air "
        "ones are no way round the border between checkpoints), the bypassers' input; the span runs from "
        "the first to the last month of apprehensions, apprehension_totals and checkpoint_records. Restore "
        "the missing checkpoint records (a month a checkpoint was closed is written with 0 crossings and a "
        f"mean_wait_minutes of 0); a section without a land checkpoint cannot be fitted; see {doc}"
    )


def warn_checkpoints_not_reporting(stats: xr.Dataset, doc: str) -> None:
    """A road, rail or river checkpoint of checkpoints.csv without a record in some months of the span (none
    at all, starting late, stopping early, a gap) is left out of its section's land flow there, which then
    drops as if fewer foreigners crossed: warned of, naming the file, checkpoints, sections and months
    (`CHECKPOINT_NOT_REPORTING`). Not refused: a checkpoint may open or close within the span."""
    from estim.families.record_periods import runs

    reported = stats["checkpoint_reported"].transpose("checkpoint", "month").values.astype(bool)
    months = [str(m)[:7] for m in stats["month"].values]
    where, land = _land_checkpoints(stats)
    types = stats["checkpoint_type"].values.astype(str)
    said = []
    for c in np.flatnonzero(land & ~reported.all(axis=1)):
        missing = ~reported[c]
        n = f"{runs(months, missing)} ({int(missing.sum())} of {len(months)} months)"
        said.append(
            f"{stats['checkpoint'].values[c]} ({types[c]}, section {where[c]}): no record in "
            + ("any month" if missing.all() else n)
        )
    if said:
        more = f"; and {len(said) - 8} more" if len(said) > 8 else ""
        warnings.warn(
            "checkpoint_records: road, rail or river checkpoints listed in checkpoints.csv without a record "
            f"in some months of the records' span {months[0]} … {months[-1]} (rule "
            f"{CHECKPOINT_NOT_REPORTING}): {'; '.join(said[:8])}{more}. Their sections' land flows, the "
            "bypassers' input, leave them out there: the flow drops as if fewer foreigners crossed, and "
            "fewer bypassers are inferred. If a checkpoint was closed or not yet open, write those months "
            "with 0 crossings and a mean_wait_minutes of 0; if its records are missing, restore them; see "
            f"{doc}",
            UserWarning,
            stacklevel=3,
        )
