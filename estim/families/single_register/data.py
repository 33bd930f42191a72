"""Frequency data f_{x,k} (people in covariate pattern x seen exactly k times): from a table or from records,
and the `[data]` fields of a spec that reads them."""

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

OBSERVED = "frequency"

# --------------------------------------------------------------------------------------------------------------
# data


def frequency_data(
    table: pd.DataFrame,
    *,
    count: str,
    covariates: Sequence[str] = (),
    weight: str | None = None,
) -> xr.Dataset:
    """Frequencies f_{x,k}: people in covariate pattern x seen exactly k times, k = 1..K.

    ``table`` has one row per person (``weight=None``) or per cell with the number of people in ``weight``.
    Covariates are categorical (values are turned into strings). Returns an ``xr.Dataset`` with ``frequency``
    (pattern, k) int64, the covariate columns as string variables over ``pattern``, and coords ``k`` = 1..K and
    ``pattern`` (labels such as ``"gender=male, age=<40yrs"``; ``"all"`` without covariates).
    """
    covariates = list(covariates)
    needed = [count, *covariates, *([weight] if weight else [])]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise EstimInputError(f"columns {missing} not in the table (it has {list(table.columns)})")
    frame = table[needed].copy()
    if frame[needed].isna().any().any():
        bad = [c for c in needed if frame[c].isna().any()]
        raise EstimInputError(f"missing values in column(s) {bad}")
    k = pd.to_numeric(frame[count], errors="coerce")
    if k.isna().any() or (k != np.round(k)).any() or (k < 1).any():
        raise EstimInputError(
            f"column {count!r} must hold whole numbers ≥ 1 (times seen; people seen 0 times are unknown)"
        )
    frame["_k"] = k.astype(np.int64)
    if weight:
        w = pd.to_numeric(frame[weight], errors="coerce")
        if w.isna().any() or (w < 0).any() or (w != np.round(w)).any():
            raise EstimInputError(f"column {weight!r} must hold whole numbers ≥ 0 (people per row)")
        frame["_w"] = w.astype(np.int64)
    else:
        frame["_w"] = np.int64(1)
    for c in covariates:
        frame[c] = frame[c].astype(str)
    if covariates:
        cells = frame.groupby([*covariates, "_k"], sort=True, observed=True)["_w"].sum()
        wide = cells.unstack("_k", fill_value=0)
    else:
        wide = frame.groupby("_k")["_w"].sum().to_frame().T
    wide = wide.loc[wide.sum(axis=1) > 0]
    n_k = int(frame["_k"].max())
    wide = wide.reindex(columns=range(1, n_k + 1), fill_value=0)
    if covariates:
        index = wide.index if isinstance(wide.index, pd.MultiIndex) else None
        values = [tuple(v) for v in index] if index is not None else [(v,) for v in wide.index]
        labels = [
            ", ".join(f"{c}={v}" for c, v in zip(covariates, row, strict=True)) for row in values
        ]
    else:
        values, labels = [()], ["all"]
    ds = xr.Dataset(
        {OBSERVED: (("pattern", "k"), wide.to_numpy(dtype=np.int64))},
        coords={"pattern": labels, "k": np.arange(1, n_k + 1, dtype=np.int64)},
    )
    for j, c in enumerate(covariates):
        ds[c] = ("pattern", np.array([row[j] for row in values], dtype=str))
    ds.attrs.update(count=count, covariates=covariates, n_observed=int(wide.to_numpy().sum()))
    return ds


def _covariates(data: xr.Dataset, covariates: Sequence[str] | None) -> list[str]:
    available = [str(v) for v in data.data_vars if v != OBSERVED and data[v].dims == ("pattern",)]
    if covariates is None:
        return available
    unknown = [c for c in covariates if c not in available]
    if unknown:
        raise EstimInputError(f"covariates {unknown} not in the data (it has {available})")
    return list(covariates)


def design(
    data: xr.Dataset, covariates: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded design (patterns × terms, without the intercept column) and the term names.

    The reference level of each covariate is its first level in sorted order (as R's default factor coding,
    so coefficients compare with singleRcapture); terms are named ``"covariate[level]"``.
    """
    columns, names = [], []
    for c in _covariates(data, covariates):
        values = data[c].values.astype(str)
        for level in sorted(set(values))[1:]:
            columns.append((values == level).astype(float))
            names.append(f"{c}[{level}]")
    x = np.column_stack(columns) if columns else np.zeros((data.sizes["pattern"], 0))
    return x, names


# --------------------------------------------------------------------------------------------------------------
# the [data] fields of a spec, and the two ways in


def _check_fields(fields: Mapping[str, Any], source: str) -> None:
    check_choice(fields, "period_kind", PERIOD_KINDS)
    if source == "benchmark" and fields["count"] is None:
        raise DataFieldError(
            "count", "missing (the column holding how many times each person was seen)"
        )
    if source == "records":
        if fields["period"] is None:
            raise DataFieldError("period", "missing (records are fitted one period at a time)")
        if fields["section"] is None:
            raise DataFieldError(
                "section", "missing (frequency models are fitted one section at a time)"
            )
        bad = [c for c in fields["covariates"] if c != "category"]
        if bad:
            raise DataFieldError(
                "covariates", f"records offer only 'category' as a covariate, not {bad}"
            )


def _from_benchmark(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    for name, columns in (("count", [fields["count"]]), ("covariates", list(fields["covariates"]))):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise DataFieldError(
                name,
                f"no column(s) {', '.join(missing)} in the benchmark; it has "
                f"{', '.join(map(str, table.columns))}",
            )
    return frequency_data(table, count=fields["count"], covariates=list(fields["covariates"]))


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """f_k of one section × period of the records (``category`` available as a covariate)."""
    from estim.statistics import sufficient_statistics

    stats = sufficient_statistics(records, period=fields["period_kind"], occasion=None)
    select_records(stats, fields)
    f = stats["frequency"].sel(section=fields["section"], period=fields["period"])
    if fields["category"] is not None:
        f = f.sel(category=[fields["category"]])
    cells = f.to_dataframe(name="n").reset_index()[["category", "k", "n"]]
    return frequency_data(cells, count="k", covariates=list(fields["covariates"]), weight="n")


FREQUENCY = DataKind(
    name="frequency",
    fields=(
        DataField("count", "benchmark: the column holding how many times each person was seen"),
        DataField(
            "covariates",
            "categorical covariate columns (records: only category)",
            many=True,
            default=(),
        ),
        SECTION,
        PERIOD,
        PERIOD_KIND,
        DataField("category", "records: fit one category only"),
    ),
    check=_check_fields,
    from_benchmark=_from_benchmark,
    from_records=_from_records,
)
