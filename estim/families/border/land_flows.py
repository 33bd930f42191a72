"""Whether the border model's land flows are whole: each section-month's foreign crossings and wait at its road,
rail and river checkpoints (`estim.statistics.flows`), the bypassers' input. Checked where the border model
reads them (`estim.families.border.data.border_data`)."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.record_periods import runs
from estim.statistics.flows import LAND_CHECKPOINT_TYPES

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
