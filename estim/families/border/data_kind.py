"""The border model's data as a spec reads it: every section, month and category of a record folder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from estim.families.base import DataFieldError, DataKind


def _check_fields(fields: Mapping[str, Any], source: str) -> None:
    if source != "records":
        raise DataFieldError(
            "benchmark", "the border model is fitted to a record folder (records = …)"
        )


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """Monthly sufficient statistics of all sections, with the section table and the policy events."""
    from estim.families.border.data import border_data
    from estim.statistics import sufficient_statistics

    stats = sufficient_statistics(records, period="month", occasion=None)
    return border_data(stats, records.sections, records.policy_events)


BORDER_RECORDS = DataKind(name="border", fields=(), check=_check_fields, from_records=_from_records)
