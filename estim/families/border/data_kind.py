"""The border model's data as a spec reads it: every section, month and category of a record folder, and the
``[data]`` field ``allow_empty_months`` (a surveyed section's months without records declared true zeros, in
place of the refusal `estim.families.border.data.SURVEYED_MONTH_GAP`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from estim.families.base import DataField, DataFieldError, DataKind

ALLOW_EMPTY_MONTHS = DataField(
    "allow_empty_months",
    "records: true declares a surveyed section's months without apprehension records, other sections having "
    "data, truly without apprehensions (default false: a run of them its counts make implausible is refused)",
    default=False,
    kind=bool,
    # added after border fits were saved: at its default it leaves their spec hash as it was
    hashed_at_default=False,
)


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
    linkage of the surveyed sections' apprehended journeys to the in-country registers; the spec's
    ``allow_empty_months`` is `border_data`'s keyword."""
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
    return border_data(
        stats,
        records.sections,
        records.policy_events,
        linkage=linkage,
        allow_empty_months=bool(fields.get(ALLOW_EMPTY_MONTHS.name, False)),
    )


BORDER_RECORDS = DataKind(
    name="border", fields=(ALLOW_EMPTY_MONTHS,), check=_check_fields, from_records=_from_records
)
