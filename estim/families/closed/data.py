"""Capture histories (stratum × distinct history counts, and the 0/1 capture matrix): from a table or from
records, and the `[data]` fields of a spec that reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import (
    PERIOD,
    PERIOD_KIND,
    PERIOD_KINDS,
    SECTION,
    DataField,
    DataFieldError,
    DataKind,
    check_choice,
    select_records,
)

OBSERVED = "history_count"

# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def history_data(
    table: pd.DataFrame,
    *,
    occasions: Sequence[str] | None = None,
    stratum: str | None = None,
    count: str | None = None,
) -> xr.Dataset:
    """Capture histories from a table: one row per animal (or per distinct history with a `count` column).

    `occasions`: the 0/1 occasion columns in time order (default: every column except `stratum`, `count`).
    Rows never captured (all zeros) carry no information under the conditional likelihood and are dropped.
    Returns ``history_count`` (stratum, history) int64 over the distinct observed histories ("101001",
    occasion 1 first) and ``capture`` (history, occasion) int8; stratum "all" when `stratum` is None.
    """
    if occasions is None:
        occasions = [c for c in table.columns if c not in (stratum, count)]
    occasions = list(occasions)
    missing = [c for c in [*occasions, stratum, count] if c is not None and c not in table.columns]
    if missing:
        raise EstimInputError(
            f"history table lacks columns {missing}; it has {list(table.columns)}"
        )
    if len(occasions) < 2:
        raise EstimInputError("capture–recapture needs at least 2 occasions")
    x = table[occasions].to_numpy()
    if not np.isin(x, (0, 1)).all():
        raise EstimInputError(f"occasion columns {occasions} must hold only 0 and 1")
    x = x.astype(np.int8)
    n = table[count].to_numpy() if count is not None else np.ones(len(table), dtype=np.int64)
    if count is not None and (np.any(n < 0) or np.any(n != np.round(n))):
        raise EstimInputError(f"count column {count!r} must hold non-negative integers")
    seen = x.sum(axis=1) > 0
    x, n = x[seen], n[seen].astype(np.int64)
    strata = (
        table.loc[seen, stratum].astype(str).to_numpy()
        if stratum is not None
        else np.full(len(x), "all")
    )
    t = len(occasions)
    if t > 62:
        raise EstimInputError(f"{t} occasions: at most 62 (histories are packed into int64)")
    # Pack each history into an integer (occasion 1 = most significant bit) so the Python loop below runs
    # over distinct histories, not animals.
    code = x.astype(np.int64) @ (np.int64(1) << np.arange(t - 1, -1, -1, dtype=np.int64))
    stratum_labels = list(pd.unique(strata)) if len(strata) else ["all"]
    s_idx = pd.Index(stratum_labels).get_indexer(strata)
    # Rcapture's order: histories in decreasing binary value (111…1 first).
    codes = np.unique(code)[::-1]
    h_idx = len(codes) - 1 - np.searchsorted(codes[::-1], code)
    counts = np.zeros((len(stratum_labels), len(codes)), dtype=np.int64)
    np.add.at(counts, (s_idx, h_idx), n)
    histories = [format(int(c), f"0{t}b") for c in codes]
    return _dataset(counts, stratum_labels, histories, [str(o) for o in occasions])


def history_data_from_statistics(stats_ds: xr.Dataset, period: str | None = None) -> xr.Dataset:
    """estim.statistics' ``history_count`` (section, period, history) -> strata = sections for one period.

    `period` may be omitted when there is only one. Histories never seen in that period are dropped, and so are
    sections with nobody seen in it (the posterior of their N would be improper). A period
    only partly inside the record span has structural zeros on its missing occasions: fit Mt there, not M0.
    """
    if "history_count" not in stats_ds or "capture" not in stats_ds:
        raise EstimInputError(
            "the statistics hold no capture histories (computed with occasion=None?)"
        )
    hc = stats_ds["history_count"]
    if period is None:
        if hc.sizes["period"] != 1:
            raise EstimInputError(
                f"several periods {list(hc['period'].values)}: choose one with `period`"
            )
        period = str(hc["period"].values[0])
    if period not in [str(p) for p in hc["period"].values]:
        raise EstimInputError(f"unknown period {period!r}; known: {list(hc['period'].values)}")
    counts = hc.sel(period=period).transpose("section", "history")
    # Sections with nobody seen in the period (e.g. only monthly totals) have no closed-population estimate
    # from histories: under p(N) ∝ 1/N with n = 0 the posterior of N is improper. Leave them out.
    counts = counts.isel(section=counts.sum("history").values > 0)
    if counts.sizes["section"] == 0:
        raise EstimInputError(f"no capture histories in period {period!r}")
    keep = counts.sum("section").values > 0
    counts = counts.isel(history=keep)
    capture = stats_ds["capture"].isel(history=keep).transpose("history", "occasion")
    ds = _dataset(
        counts.values.astype(np.int64),
        [str(s) for s in counts["section"].values],
        [str(h) for h in counts["history"].values],
        [str(o) for o in capture["occasion"].values],
    )
    ds.attrs["period"] = period
    return ds


def _dataset(
    counts: np.ndarray, strata: list[str], histories: list[str], occasions: list[str]
) -> xr.Dataset:
    capture = np.array([[int(c) for c in h] for h in histories], dtype=np.int8).reshape(
        len(histories), len(occasions)
    )
    return xr.Dataset(
        {
            OBSERVED: (("stratum", "history"), counts),
            "capture": (("history", "occasion"), capture),
        },
        coords={"stratum": strata, "history": histories, "occasion": occasions},
    )


def _check(data: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    if OBSERVED not in data or "capture" not in data:
        raise EstimInputError("closed-population models need `history_data(...)` output")
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64)
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    if (x.sum(axis=1) == 0).any():
        raise EstimInputError("the all-zero history cannot be observed")
    return counts, x


# --------------------------------------------------------------------------------------------------------------
# the [data] fields of a spec, and the two ways in

OCCASION_KINDS = ("quarter", "month")


def _check_fields(fields: Mapping[str, Any], source: str) -> None:
    check_choice(fields, "period_kind", PERIOD_KINDS)
    check_choice(fields, "occasion", OCCASION_KINDS)
    if source == "records" and fields["period"] is None:
        raise DataFieldError("period", "missing (records are fitted one period at a time)")


def _from_benchmark(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    occasions = list(fields["occasions"] or table.columns)
    missing = [c for c in occasions if c not in table.columns]
    if missing:
        raise DataFieldError(
            "occasions",
            f"no column(s) {', '.join(missing)} in the benchmark; it has "
            f"{', '.join(map(str, table.columns))}",
        )
    return history_data(table, occasions=occasions)


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """The capture histories of one period, one stratum per section (all, or the one named)."""
    from estim.statistics import sufficient_statistics

    stats = sufficient_statistics(
        records, period=fields["period_kind"], occasion=fields["occasion"]
    )
    select_records(stats, fields)
    if fields["section"] is not None:
        stats = stats.sel(section=[fields["section"]])
    return history_data_from_statistics(stats, fields["period"])


HISTORIES = DataKind(
    name="histories",
    fields=(
        DataField(
            "occasions",
            "benchmark: the 0/1 occasion columns in time order (default: all)",
            many=True,
        ),
        SECTION,
        PERIOD,
        PERIOD_KIND,
        DataField(
            "occasion",
            "records: capture occasion within a period, quarter or month",
            default="quarter",
        ),
    ),
    check=_check_fields,
    from_benchmark=_from_benchmark,
    from_records=_from_records,
)
