"""Checkpoint flows per checkpoint × month, and the bypass-share inputs summed over a section's land checkpoints."""

from __future__ import annotations

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
