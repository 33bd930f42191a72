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


def records_data(records: Any) -> xr.Dataset:
    """The border model's data from a validated, pseudonymised record set: monthly sufficient statistics of
    all sections, the section table, the policy events and the register linkage (as a spec reads them)."""
    return _from_records(records, {})


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """Monthly sufficient statistics of all sections, with the section table, the policy events and the
    linkage of the surveyed sections' apprehended journeys to the in-country registers."""
    from estim.families.border.data import CATEGORIES, border_data
    from estim.statistics import sufficient_statistics
    from estim.statistics.linkage import linkage_statistics

    stats = sufficient_statistics(records, period="month", occasion=None)
    linkage = linkage_statistics(
        records,
        stats["month"].values,
        [str(s) for s in stats["section"].values],
        CATEGORIES,
    )
    return border_data(stats, records.sections, records.policy_events, linkage=linkage)


BORDER_RECORDS = DataKind(name="border", fields=(), check=_check_fields, from_records=_from_records)
