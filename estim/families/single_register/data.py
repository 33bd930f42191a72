"""Frequency data f_{x,k} (people in covariate pattern x seen exactly k times): from a table laid out one row per
person or one row per (covariate pattern, times seen), or from records; and the `[data]` fields of a spec that
reads them.

A covariate pattern is a distinct combination of covariate values. Continuous covariates keep their values (a
log-distance measured per person makes about one pattern per person), so every cost downstream scales with
patterns × k cells, never with the people themselves.
"""

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
)
from estim.families.closed import table_checks
from estim.families.covariates import (
    MAX_LEVELS,
    Design,
    covariate_design,
    covariate_kinds,
    parse_formula,
    refuse_read_off_counts,
)
from estim.families.single_register.layout import (
    LAYOUTS,
    _label,
    _numeric,
    _shown,
    refuse_frequency_table_read_as_people,
)

OBSERVED = "frequency"
# The dataset's own names (the frequencies, their dimensions, the binomial's occasions): a covariate of the same
# name is stored as COVARIATE_PREFIX + its name (`covariate_variable`), as is one that starts with the prefix, so
# any column name is a covariate of its own and none shadows the data.
RESERVED = frozenset({OBSERVED, "pattern", "k", "trials"})
COVARIATE_PREFIX = "covariate_"
# Above 2^53 a float no longer holds every whole number (and above 2^63 − 1 an int64 wraps to a negative): no
# count of people, nor a column's total, may exceed it.
MAX_WHOLE = 2**53


def covariate_variable(name: str) -> str:
    """The dataset variable holding covariate ``name``: the name itself unless it is one of the dataset's own
    names (`RESERVED`) or starts with `COVARIATE_PREFIX`, then prefixed (one-to-one, undone by
    `_covariate_name`)."""
    name = str(name)
    return (
        COVARIATE_PREFIX + name if name in RESERVED or name.startswith(COVARIATE_PREFIX) else name
    )


def _covariate_name(variable: str) -> str:
    return (
        variable.removeprefix(COVARIATE_PREFIX)
        if variable.startswith(COVARIATE_PREFIX)
        else variable
    )


# --------------------------------------------------------------------------------------------------------------
# data


def _whole_numbers(table: pd.DataFrame, column: str, minimum: int, what: str) -> np.ndarray:
    """The column as int64, or an error naming the column and the first offending (1-based) data row."""
    raw = table[column]
    yes_no = raw.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if yes_no.any():  # True would be read as 1: a yes/no column is not a number
        row = int(np.flatnonzero(yes_no)[0])
        raise EstimInputError(
            f"column {column!r}, row {row + 1}: {bool(raw.iloc[row])!r} is true/false, not a whole number ({what}; "
            "store it as whole numbers)"
        )
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < minimum)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[row]
        text = repr(shown) if isinstance(shown, str) else _label(shown)
        problem = "missing value" if pd.isna(shown) else f"{text} is not a whole number ≥ {minimum}"
        raise EstimInputError(f"column {column!r}, row {row + 1}: {problem} ({what})")
    # before the cast to int64, which would wrap a value ≥ 2^63 to a negative number without a word
    huge = values > MAX_WHOLE
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise EstimInputError(
            f"column {column!r}, row {row + 1}: {_shown(raw.iloc[row])} is too large ({what}; at most 2^53 = "
            f"{MAX_WHOLE:,})"
        )
    if values.sum() > MAX_WHOLE:
        raise EstimInputError(
            f"column {column!r}: the values add up to {values.sum():.4g}, more than 2^53 = {MAX_WHOLE:,} "
            f"({what})"
        )
    return values.astype(np.int64)


def frequency_data(
    table: pd.DataFrame,
    *,
    times_seen: str,
    count: str | None = None,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    formula: str | None = None,
    max_levels: int = MAX_LEVELS,
    strata: Sequence[str] = (),
) -> xr.Dataset:
    """Frequencies f_{x,k}: people in covariate pattern x seen exactly k times, k = 1..K.

    ``table`` has one row per person (``count=None``) or one row per (covariate pattern, times seen) with the
    number of people in column ``count`` (a frequency table; a pattern and k given twice is an error).
    ``times_seen`` is the column of k ≥ 1. The covariates are ``covariates`` (main effects) or those named by
    ``formula`` (kept in the attributes, for `design`); ``categorical`` forces numeric ones categorical.
    Continuous covariates keep their numeric values; categorical ones become text. ``strata`` are columns that
    split the patterns without entering the design (the zero-truncated binomial's number of occasions): they
    are kept as coordinates over ``pattern``, not as covariates.

    Returns an ``xr.Dataset`` with ``frequency`` (pattern, k) int64, the covariate columns over ``pattern``,
    coords ``k`` = 1..K and ``pattern`` (labels such as ``"gender=male, age=<40yrs"``; ``"all"`` without
    covariates). Bad values raise `EstimInputError` naming the column and the 1-based data row.
    """
    covariates = list(covariates)
    if formula is not None:
        if covariates:
            raise EstimInputError("give covariates or a formula, not both (the formula names them)")
        terms, forced = parse_formula(formula)
        covariates = list(dict.fromkeys(c for t in terms for c in t))
        categorical = [*categorical, *sorted(forced)]
    unknown = [c for c in categorical if c not in covariates]
    if unknown:
        raise EstimInputError(f"categorical {unknown} are not among the covariates {covariates}")
    strata = [c for c in strata if c not in covariates]
    for column, role in ((times_seen, "the times seen"), (count, "the number of people per row")):
        if column is not None and (column in covariates or column in strata):
            raise EstimInputError(
                f"column {column!r} is {role}: it cannot also be a covariate (leave it out of the "
                "covariates or the formula)"
            )
    if count is not None and count == times_seen:
        raise EstimInputError(
            f"column {count!r} cannot be both the times seen and the number of people per row"
        )
    needed = [times_seen, *covariates, *strata, *([count] if count else [])]
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        raise EstimInputError(
            f"no column(s) {missing} in the table; it has {list(map(str, table.columns))}"
        )
    k = _whole_numbers(table, times_seen, 1, "times seen; people seen 0 times are the unknown part")
    w = (
        _whole_numbers(table, count, 0, "number of people on the row")
        if count
        else np.ones(len(table), dtype=np.int64)
    )
    # checks the covariates' values (missing, levels) on the rows themselves, so errors name a row
    kinds = covariate_kinds(table, covariates, categorical, max_levels=max_levels, where="")
    # the strata split patterns exactly as covariates do; only the design leaves them out
    keys = [*covariates, *strata]
    # the frame's own column names, never a user's: a covariate may be called anything (k, _w, pattern, …)
    internal = [f"x{i}" for i in range(len(keys))]
    frame = pd.DataFrame(
        {**{x: _values(table[c]) for x, c in zip(internal, keys, strict=True)}, "k": k, "w": w},
        index=range(len(table)),
    )
    if count:
        # a cell on two rows that an undeclared column (a region coded 1, 2, 3) tells apart: named first
        others = table[[c for c in table.columns if c not in {times_seen, count, *keys}]]
        cell = "(covariate pattern, times seen)" if keys else "times seen"
        table_checks.refuse_hidden_stratum(frame[[*internal, "k"]], others, cell)
        _refuse_duplicated_cells(frame, internal, keys, times_seen, table[keys])
    if keys:
        cells = frame.groupby([*internal, "k"], sort=True)["w"].sum()
        wide = cells.unstack("k", fill_value=0)
    else:
        wide = frame.groupby("k")["w"].sum().to_frame().T
    wide = wide.loc[wide.sum(axis=1) > 0]
    if wide.empty:
        raise EstimInputError(
            f"column {count!r}: no people (every count is 0)" if count else "the table has no rows"
        )
    n_k = int(k[w > 0].max())  # a row with nobody on it does not lengthen the k axis
    wide = wide.reindex(columns=range(1, n_k + 1), fill_value=0)
    if keys:
        index = wide.index
        columns = [index.get_level_values(x).to_numpy() for x in internal]
        labels = [
            ", ".join(f"{c}={_label(v)}" for c, v in zip(keys, row, strict=True))
            for row in zip(*columns, strict=True)
        ]
    else:
        columns, labels = [], ["all"]
    ds = xr.Dataset(
        {OBSERVED: (("pattern", "k"), wide.to_numpy(dtype=np.int64))},
        coords={"pattern": labels, "k": np.arange(1, n_k + 1, dtype=np.int64)},
    )
    for c, values in zip(keys, columns, strict=True):
        values = values.astype(str) if values.dtype.kind in "OU" else values
        if c in covariates:
            ds[covariate_variable(c)] = ("pattern", values)
        else:
            ds = ds.assign_coords({covariate_variable(c): ("pattern", values)})
    ds.attrs.update(
        times_seen=times_seen,
        covariates=covariates,
        categorical=[c for c in covariates if kinds[c] == "categorical"],
        n_observed=int(wide.to_numpy().sum()),
    )
    if formula is not None:
        ds.attrs["formula"] = formula
    # a term the data cannot estimate (one value for everyone) is an error of the data: say so now
    design(ds)
    # as is a covariate read off the counts (a covariate equal to k gave 12,252 where the same data say ~7,319)
    pattern, k = np.nonzero(ds[OBSERVED].values)
    refuse_read_off_counts(
        {c: ds[covariate_variable(c)].values[pattern] for c in _covariates(ds, None)},
        ds["k"].values[k],
        ds[OBSERVED].values[pattern, k],
        where="",
    )
    return ds


def _values(column: pd.Series) -> np.ndarray:
    """A covariate column as plain NumPy: whole numbers as int64, other numbers as float64 (nullable and
    Arrow dtypes included), anything else as text without surrounding whitespace (as the design reads it)."""
    if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.int64)
    if _numeric(column):
        return column.to_numpy(dtype=float)
    return column.astype(str).str.strip().to_numpy(dtype=str)


def _refuse_duplicated_cells(
    frame: pd.DataFrame,
    internal: list[str],
    covariates: list[str],
    times_seen: str,
    raw: pd.DataFrame | None = None,
) -> None:
    """A frequency table has one row per (covariate pattern, k): a second row for the same cell means the table
    is not what its layout says (or double counts). ``internal``: the frame's columns of the ``covariates``;
    ``raw``: the table's own columns of them, to say when two rows differ only by spaces around a value."""
    duplicated = frame.duplicated([*internal, "k"], keep=False).to_numpy()
    if not duplicated.any():
        return
    first = int(np.flatnonzero(duplicated)[0])
    key = frame.iloc[first][[*internal, "k"]]
    same = (frame[[*internal, "k"]] == key).all(axis=1).to_numpy()
    rows = np.flatnonzero(same)[:2] + 1
    pattern = ", ".join(
        f"{c}={_label(frame.iloc[first][x])}" for x, c in zip(internal, covariates, strict=True)
    )
    where = f" and covariates {pattern}" if covariates else ""
    for c in covariates if raw is not None else []:
        a, b = (str(raw[c].iloc[r - 1]) for r in rows)
        if a != b:  # equal once stripped
            where += (
                f" ({c!r} is {a!r} on one and {b!r} on the other: one value, the spaces around it left "
                "out; write it one way, or add the two rows' counts together)"
            )
    raise EstimInputError(
        f"column {times_seen!r}, rows {rows[0]} and {rows[1]}: both give times seen = "
        f"{int(frame.iloc[first]['k'])}{where}; a frequency table has one row per (covariate pattern, "
        'times seen). If each row is one person, declare layout = "individuals" without count'
    )


def _covariates(data: xr.Dataset, covariates: Sequence[str] | None) -> list[str]:
    available = [
        _covariate_name(str(v))
        for v in data.data_vars
        if v != OBSERVED and data[v].dims == ("pattern",)
    ]
    if covariates is None:
        return available
    unknown = [c for c in covariates if c not in available]
    if unknown:
        raise EstimInputError(f"covariates {unknown} not in the data (it has {available})")
    return list(covariates)


def design(data: xr.Dataset, covariates: Sequence[str] | None = None) -> Design:
    """The design of the patterns (without the intercept column): the data's formula, or main effects of its
    covariates (of ``covariates`` only, when given).

    Categorical covariates are treatment-coded against their first level in sorted order (R's default, so
    coefficients compare with singleRcapture; terms ``"covariate[level]"``); continuous ones, and
    interactions involving them, are standardised over the people (each pattern weighted by its n_x), and
    `Design.original_scale` turns coefficients back to the covariates' own units.
    """
    names = _covariates(data, covariates)
    formula = data.attrs.get("formula")
    if formula and covariates is not None:  # its main effects would replace the formula's terms
        raise EstimInputError(
            f"[options] covariates = {list(covariates)}: the data's formula ({formula!r}, [data] formula) "
            "gives the model's terms, and covariates would replace them with main effects: give one"
        )
    table = pd.DataFrame(
        {c: data[covariate_variable(c)].values for c in names}, index=range(data.sizes["pattern"])
    )
    declared = [c for c in data.attrs.get("categorical", []) if c in names]
    return covariate_design(
        table,
        [] if formula else names,
        categorical=declared,
        formula=formula,
        weights=data[OBSERVED].values.sum(axis=1),
        where="",
    )


# --------------------------------------------------------------------------------------------------------------
# the [data] fields of a spec, and the two ways in

_LAYOUT_HELP = (
    'layout = "individuals" (one row per person; times_seen = the column of times seen) or layout = '
    '"frequencies" (one row per number of times seen, per covariate pattern if any; times_seen = that '
    "column, count = the column of people)"
)


def _check_table_fields(fields: Mapping[str, Any]) -> None:
    """The rules for a table (benchmark or file): an explicit layout and the columns it needs."""
    layout, count = fields.get("layout"), fields.get("count")
    for name in ("section", "period", "category"):
        if fields.get(name) is not None:
            raise DataFieldError(name, "only for records (a table is fitted as a whole)")
    if layout is None:
        hint = (
            f' (count now means people per row: the column of times seen is times_seen = "{count}")'
            if count is not None and fields.get("times_seen") is None
            else ""
        )
        raise DataFieldError("layout", f"missing: say {_LAYOUT_HELP}{hint}")
    if layout == "patterns":
        raise DataFieldError(
            "layout",
            '"patterns" is for capture histories; a single register\'s table of counts is layout = '
            '"frequencies" (one row per number of times seen, per covariate pattern if any; times_seen = that '
            'column, count = the column of people), or layout = "individuals" for one row per person',
        )
    check_choice(fields, "layout", LAYOUTS)
    if layout == "individuals" and count is not None:
        raise DataFieldError(
            "count",
            f'layout "individuals" has one person per row, so no count of people: name the column of '
            f'times seen with times_seen = "{count}" (count is the number of people on a row, for layout '
            '"frequencies")',
        )
    if fields.get("times_seen") is None:
        raise DataFieldError(
            "times_seen", "missing (the column holding how many times each was seen)"
        )
    if layout == "frequencies" and count is None:
        raise DataFieldError(
            "count",
            'missing (layout "frequencies": the column holding the number of people per row)',
        )


def _check_fields(fields: Mapping[str, Any], source: str) -> None:
    if fields.get("period_kind") is not None:
        check_choice(fields, "period_kind", PERIOD_KINDS)
    covariates = list(fields.get("covariates") or ())
    formula = fields.get("formula")
    if formula is not None:
        if covariates:
            raise DataFieldError(
                "formula", "give covariates or formula, not both (the formula names its covariates)"
            )
        try:
            terms, forced = parse_formula(formula)
        except EstimInputError as e:
            raise DataFieldError("formula", str(e)) from e
        covariates = list(dict.fromkeys(c for t in terms for c in t))
    strays = [c for c in fields.get("categorical") or () if c not in covariates]
    if strays:
        raise DataFieldError(
            "categorical", f"{strays} not among the covariates ({covariates or 'none'})"
        )
    if source != "records":
        _check_table_fields(fields)
        return
    for name in ("layout", "times_seen", "count"):
        if fields.get(name) is not None:
            raise DataFieldError(
                name, "not for records (their frequencies are counted from the records themselves)"
            )
    if fields.get("period") is None:
        raise DataFieldError("period", "missing (records are fitted one period at a time)")
    if fields.get("section") is None:
        raise DataFieldError(
            "section", "missing (frequency models are fitted one section at a time)"
        )
    bad = [c for c in covariates if c != "category"]
    if bad:
        raise DataFieldError(
            "formula" if formula is not None else "covariates",
            f"records offer only 'category' as a covariate, not {bad}",
        )


def _from_benchmark(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    """A table laid out as the spec says (``layout``) to frequencies; errors name the column and row."""
    _check_fields(fields, "file")
    covariates = list(fields.get("covariates") or ())
    formula = fields.get("formula")
    columns = [
        ("times_seen", [fields["times_seen"]]),
        ("count", [fields["count"]] if fields.get("count") else []),
        ("covariates", covariates),
        ("formula", list(dict.fromkeys(c for t in parse_formula(formula)[0] for c in t)))
        if formula
        else ("formula", []),
    ]
    for name, wanted in columns:
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise DataFieldError(
                name,
                f"no column(s) {', '.join(map(repr, missing))} in the table; it has "
                f"{', '.join(map(str, table.columns))}",
            )
    data = frequency_data(
        table,
        times_seen=fields["times_seen"],
        count=fields.get("count"),
        covariates=covariates,
        categorical=list(fields.get("categorical") or ()),
        formula=formula,
    )
    if fields["layout"] == "individuals":
        refuse_frequency_table_read_as_people(
            table,
            fields["times_seen"],
            covariates=list(data.attrs["covariates"]),
            categorical=list(data.attrs["categorical"]),
        )
    return data


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """f_k of one section × period of the records (``category`` available as a covariate), checked against
    the months the records hold (`estim.families.record_periods.period_frequencies`)."""
    from estim.families.record_periods import period_frequencies

    f = period_frequencies(records, fields)
    cells = f.to_dataframe(name="n").reset_index()[["category", "k", "n"]]
    covariates, formula = list(fields["covariates"]), fields.get("formula")
    named = {c for t in parse_formula(formula)[0] for c in t} if formula else set(covariates)
    if "category" not in named:
        # one row per k: categories that are not a covariate are summed, not cells of their own
        cells = cells.groupby("k", as_index=False)["n"].sum()
    return frequency_data(
        cells,
        times_seen="k",
        count="n",
        covariates=covariates,
        formula=formula,
    )


FREQUENCY = DataKind(
    name="frequency",
    fields=(
        DataField(
            "layout",
            'a table\'s layout: "individuals" (one row per person) or "frequencies" (one row per times seen '
            "and covariate pattern, with count)",
        ),
        DataField("times_seen", "a table: the column holding how many times each was seen (k ≥ 1)"),
        DataField("count", 'layout "frequencies": the column holding the number of people per row'),
        DataField(
            "covariates",
            "covariate columns, main effects: numeric ones continuous, others categorical (records: only "
            "category)",
            many=True,
            default=(),
        ),
        DataField(
            "categorical",
            "covariates to treat as categorical though numeric",
            many=True,
            default=(),
        ),
        DataField("formula", 'instead of covariates, e.g. "gender * log_distance + C(region)"'),
        SECTION,
        PERIOD,
        PERIOD_KIND,
        DataField("category", "records: fit one category only"),
    ),
    check=_check_fields,
    from_benchmark=_from_benchmark,
    from_records=_from_records,
)
