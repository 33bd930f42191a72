"""Capture histories (stratum × distinct history counts, and the 0/1 capture matrix): from a table in one of
three layouts or from records, and the `[data]` fields of a spec that reads them.

Layouts of a table (``layout``, `table_histories`): ``"individuals"`` (one row per animal, 0/1 ``occasions``
columns, always declared), ``"patterns"`` (one row per distinct history, ``count`` = people with it),
``"frequencies"`` (one row per number of captures k: ``times_seen`` = k, ``count`` = f_k, ``occasions = t``).
An f_k table is carried as one representative history per k with ``multiplicity`` C(t, k); the models add
log C(t, k) to log P(h), exact whenever P(h) depends on h only through k. Covariates give Huggins data
(`estim.families.closed.huggins`); `estim.families.closed.table_histories` reads any of the three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb, factorial
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
    check_choice,
    select_records,
)
from estim.families.closed.table_checks import (
    HISTORY_HINT,
    binary_columns,
    counts_column,
    history_string_column,
    people_per_row,
    refuse_empty_occasions,
    refuse_hidden_counts,
    refuse_hidden_stratum,
    refuse_repeats,
    undeclared_occasions,
    where,
)
from estim.families.closed.table_people import refuse_repeated_ids
from estim.families.loglinear.design import OCCASIONS_ATTR, UNBOUNDED

OBSERVED = "history_count"
LAYOUTS = ("individuals", "patterns", "frequencies")
MULTIPLICITY = "multiplicity"
MAX_OCCASIONS = 62  # histories are packed into int64

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

    `occasions`: the 0/1 occasion columns in time order (default: every column except `stratum`, `count`,
    for a frame built in code; a researcher's table goes through `table_histories`, which never guesses them).
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
    x = binary_columns(table, occasions)
    n = people_per_row(table, count)
    seen = x.sum(axis=1) > 0
    x, n = x[seen], n[seen]
    strata = (
        table.loc[seen, stratum].astype(str).to_numpy()
        if stratum is not None
        else np.full(len(x), "all")
    )
    t = len(occasions)
    code = history_codes(x)
    stratum_labels = list(pd.unique(strata)) if len(strata) else ["all"]
    s_idx = pd.Index(stratum_labels).get_indexer(strata)
    # Rcapture's order: histories in decreasing binary value (111…1 first).
    codes = np.unique(code)[::-1]
    h_idx = len(codes) - 1 - np.searchsorted(codes[::-1], code)
    counts = np.zeros((len(stratum_labels), len(codes)), dtype=np.int64)
    np.add.at(counts, (s_idx, h_idx), n)
    histories = [format(int(c), f"0{t}b") for c in codes]
    return _dataset(counts, stratum_labels, histories, [str(o) for o in occasions])


def history_codes(x: np.ndarray) -> np.ndarray:
    """Each 0/1 history packed into one integer (occasion 1 the most significant bit), so that work runs over
    distinct histories rather than animals."""
    t = x.shape[1]
    if t > MAX_OCCASIONS:
        raise EstimInputError(f"{t} occasions: at most {MAX_OCCASIONS}")
    return x.astype(np.int64) @ (np.int64(1) << np.arange(t - 1, -1, -1, dtype=np.int64))


def frequency_history_data(
    f_k: Mapping[int, int] | Sequence[int], occasions: int | float | str
) -> xr.Dataset:
    """An f_k table over `occasions` = t occasions as capture histories: one representative history per k =
    1…t (k ones then zeros, labelled "k=…", zero counts included) and ``multiplicity`` C(t, k).

    `f_k`: {k: number seen k times} or the sequence f_1, f_2, …. Exact for the models whose P(h) depends on h
    only through k (M0 and the Mh models): log P(seen k times) = log C(t, k) + log P(h_k).

    ``occasions = "inf"`` (or ``math.inf``): counts with no upper bound (Rcapture's ``t = Inf``), carried over
    k = 1…max k with multiplicity 1/k!, the limit of C(t, k)/t^k (attrs ``occasions = "unbounded"``); only the
    log-linear models take it.
    """
    items = list(f_k.items() if isinstance(f_k, Mapping) else enumerate(f_k, start=1))
    unbounded = _occasion_count(occasions) == float("inf")
    if unbounded:
        seen = [int(k) for k, f in items if int(f) > 0]
        t = max(seen) if seen else 0
        if t < 2:
            raise EstimInputError(
                "counts with no upper bound (occasions = inf) need someone seen at least twice"
            )
    else:
        t = int(occasions)
    if not 2 <= t <= MAX_OCCASIONS:
        raise EstimInputError(f"{t} occasions: capture–recapture needs 2 to {MAX_OCCASIONS}")
    counts = np.zeros(t, dtype=np.int64)
    for k, f in items:
        if not 1 <= int(k) <= t:
            raise EstimInputError(f"k = {k}: the number of captures lies in 1…{t}")
        counts[int(k) - 1] += int(f)
    ks = np.arange(1, t + 1)
    multiplicity = [1 / factorial(int(k)) if unbounded else comb(t, int(k)) for k in ks]
    capture = (np.arange(t)[None, :] < ks[:, None]).astype(np.int8)
    ds = xr.Dataset(
        {
            OBSERVED: (("stratum", "history"), counts[None, :]),
            "capture": (("history", "occasion"), capture),
            MULTIPLICITY: ("history", np.array(multiplicity, dtype=np.float64)),
        },
        coords={
            "stratum": ["all"],
            "history": [f"k={k}" for k in ks],
            "occasion": [str(j + 1) for j in range(t)],
        },
    )
    ds.attrs["layout"] = "frequencies"
    if unbounded:
        ds.attrs[OCCASIONS_ATTR] = UNBOUNDED
    return ds


def history_data_from_statistics(stats_ds: xr.Dataset, period: str | None = None) -> xr.Dataset:
    """estim.statistics' ``history_count`` (section, period, history) -> strata = sections for one period.

    `period` may be omitted when there is only one. Histories never seen in that period are dropped, and so are
    sections with nobody seen in it (the posterior of their N would be improper). A period
    only partly inside the record span has structural zeros on its missing occasions: fit Mt there, not M0.
    """
    if "history_count" not in stats_ds or "capture" not in stats_ds:
        raise EstimInputError("the statistics hold no capture histories (made with occasion=None?)")
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
    if OBSERVED not in data or "capture" not in data or "stratum" not in data[OBSERVED].dims:
        raise EstimInputError("closed-population models need `history_data(...)` output")
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64)
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    if (x.sum(axis=1) == 0).any():
        raise EstimInputError("the all-zero history cannot be observed")
    if data.attrs.get(OCCASIONS_ATTR) == UNBOUNDED:
        raise EstimInputError(
            "counts with no upper bound on k (occasions = inf) are fitted by the log-linear models only: "
            'loglinear (capture = "M0"), Mh_chao, Mh_poisson2, Mh_darroch, Mh_gamma35'
        )
    return counts, x


def log_multiplicity(data: xr.Dataset) -> np.ndarray:
    """log of the number of histories each data history stands for (0 for real histories)."""
    if MULTIPLICITY not in data:
        return np.zeros(data.sizes["history"])
    return np.log(data[MULTIPLICITY].transpose("history").values.astype(np.float64))


# The models whose P(h) depends on h only through its number of captures k: they alone can be fitted to an
# f_k table (the others need to know which occasions).
BY_CAPTURES = (
    "M0",
    "Mh_logitnormal",
    "Mh_mixture",
    "Mh_chao",
    "Mh_poisson2",
    "Mh_darroch",
    "Mh_gamma35",
)


def require_histories(name: str, data: xr.Dataset) -> None:
    """Refuse an f_k table for a model whose P(h) depends on which occasions a history has."""
    if MULTIPLICITY in data and name not in BY_CAPTURES:
        raise EstimInputError(
            f"{name} needs capture histories: its capture probability depends on which occasions an animal "
            'was caught on, which an f_k table (layout = "frequencies") does not say. Fit '
            f'{", ".join(BY_CAPTURES)} to it, or give the histories (layout = "individuals" or "patterns")'
        )


# --------------------------------------------------------------------------------------------------------------
# A table in one of three layouts


def _field_columns(table: pd.DataFrame, field: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataFieldError(
            field,
            f"no column(s) {', '.join(map(repr, missing))} in the table; it has "
            f"{', '.join(map(str, table.columns))}",
        )


def _occasion_count(value: Any) -> int | float | None:
    """`occasions` as the number of occasions t (frequencies layout; inf for counts with no upper bound), or
    None when it is a list of columns."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value == float("inf"):
        return value
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinite"):
        return float("inf")
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def check_layout_fields(fields: Mapping[str, Any]) -> None:
    """The rules across a table's `[data]` fields; `DataFieldError` naming the field that breaks one."""
    layout = fields.get("layout")
    if layout is None:
        raise DataFieldError(
            "layout",
            'missing: say how the table is laid out: "individuals" (one row per animal or person), '
            '"patterns" (one row per distinct capture history, with count = its column of people) or '
            '"frequencies" (one row per number of captures k, with times_seen, count and occasions = t)',
        )
    if layout not in LAYOUTS:
        raise DataFieldError("layout", f"one of {', '.join(LAYOUTS)}; got {layout!r}")
    occasions, count = fields.get("occasions"), fields.get("count")
    times_seen, formula = fields.get("times_seen"), fields.get("formula")
    covariates, categorical = tuple(fields.get("covariates") or ()), fields.get("categorical")
    t, freq = _occasion_count(occasions), layout == "frequencies"
    rules = [
        (bool(covariates) and formula is not None, "formula", "covariates or a formula, not both"),
        (
            freq and times_seen is None,
            "times_seen",
            f"missing: {layout!r} needs the column holding k",
        ),
        (freq and count is None, "count", f"missing: {layout!r} needs the column holding f_k"),
        (
            freq and (t is None or t < 2),
            "occasions",
            f"layout {layout!r} needs the number of capture occasions, an integer ≥ 2 (e.g. occasions = "
            f'6), or "inf" for counts with no upper bound; got {occasions!r}',
        ),
        (
            freq and bool(covariates or formula or categorical),
            "covariates",
            "the closed-population models take no covariates from an f_k table: give the histories "
            '(layout = "individuals" or "patterns") with the covariate columns',
        ),
        (not freq and times_seen is not None, "times_seen", 'is for layout = "frequencies" (k)'),
        (
            not freq and t is not None,
            "occasions",
            f"layout {layout!r} needs the list of 0/1 occasion columns in time order, not a number",
        ),
        (
            layout == "individuals" and count is not None,
            "count",
            'layout "individuals" has one row per person, each counted once: a column of people per '
            f'row means the table is layout = "patterns" (count = "{count}")',
        ),
        (layout == "patterns" and count is None, "count", "missing: the column of people per row"),
    ]
    for broken, name, message in rules:
        if broken:
            raise DataFieldError(name, message)
    if freq:
        return
    named = set(covariate_names(covariates, formula))
    extra = sorted(set(fields.get("categorical") or ()) - named)
    if extra:
        raise DataFieldError(
            "categorical", f"{extra} are not among the covariates ({sorted(named) or 'none'})"
        )


def table_rows(
    table: pd.DataFrame, fields: Mapping[str, Any], takes_covariates: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """An individuals or patterns table, checked against its layout: its 0/1 histories, people per row, occasion
    columns and covariate columns (`fields` already passed by `check_layout_fields`).

    The occasion columns are declared, never taken to be every other column (`undeclared_occasions`: a 0/1
    sex or region would be read as one more occasion). A table the layout contradicts is an error naming the
    column and the 1-based row, never a silent misreading: an individuals table with a column of integers > 1
    and few rows per distinct history looks like a patterns table with its count column
    (`table_checks.refuse_hidden_counts`); a count must be a non-negative integer; a patterns table has one
    row per distinct history (and covariate pattern), and one split by a column it does not declare (a region)
    names that column (`refuse_stratified_patterns`, advising covariates if ``takes_covariates``); nobody can
    be seen on no occasion, and an occasion must have caught someone (`refuse_empty_occasions`; a list nobody
    is on is the lists' own refusal); an individuals table with an identifier that repeats holds records, not
    people (`refuse_repeated_ids`). A single column of whole histories ("010101") is named as such.
    """
    layout, count, formula = fields["layout"], fields.get("count"), fields.get("formula")
    names = covariate_names(tuple(fields.get("covariates") or ()), formula)
    declared = {count, *names}
    occasions = fields.get("occasions")
    if occasions is None:  # never every other column: a 0/1 sex would be one more occasion
        raise undeclared_occasions(table, layout, declared, lists=not takes_covariates)
    occasions = [str(c) for c in occasions]
    for field, columns in (("occasions", occasions), ("count", [count] * bool(count))):
        _field_columns(table, field, columns)
    _field_columns(table, "formula" if formula else "covariates", names)
    if count in occasions:
        raise DataFieldError("count", f"{count!r} is also listed among the occasions")
    if count is not None and count in names:  # the people per row would explain their own capture
        raise DataFieldError(
            "formula" if formula else "covariates",
            f"column {count!r} is the number of people per row: it cannot also be a covariate (leave it "
            "out of the covariates or the formula)",
        )
    both = [c for c in names if c in occasions]
    if both:  # a capture would explain itself: P(seen on occasion j) modelled by whether seen on j
        raise DataFieldError(
            "formula" if formula else "covariates",
            f"{both[0]!r} is also listed among the occasions (a covariate cannot be a capture column)",
        )
    if len(occasions) < 2:
        history = history_string_column(table[occasions[0]]) if occasions else None
        hint = f"; column {occasions[0]!r} holds {history!r}, {HISTORY_HINT}" if history else ""
        raise DataFieldError(
            "occasions", f"capture–recapture needs at least 2 occasion columns{hint}"
        )
    x = binary_columns(table, occasions)
    n = people_per_row(table, count)
    never = np.flatnonzero((x.sum(axis=1) == 0) & (n > 0))
    if len(never):
        raise EstimInputError(
            f"row {never[0] + 1}: never seen (every occasion or list column is 0): someone nobody saw "
            "cannot be in the data; drop the row"
        )
    if takes_covariates:  # the lists' own check names an empty list (`refuse_empty_lists`)
        refuse_empty_occasions(x, n, occasions)
    if layout == "individuals":
        what = "occasion" if takes_covariates else "list"
        merge = f"merge each person's rows into one, with a 1 in each {what} column any of them has a 1 in"
        refuse_repeated_ids(table, set(occasions) | declared, merge)
        refuse_hidden_counts(table, history_codes(x), set(occasions) | declared, names)
    else:
        # a history on two rows that an undeclared column (a region coded 1, 2, 3) tells apart: named first
        refuse_stratified_patterns(
            table, history_codes(x), names, set(occasions) | declared, takes_covariates
        )
        refuse_repeats(table, history_codes(x), names)
    return x, n, occasions, names


# What a closed-family table can do with a column that splits it: the closed tables declare no strata, and only
# the Huggins models take covariates, which shift the capture probability by stratum (for M0 the same estimate
# as fitting each stratum's rows on its own; Mt's and Mb's occasion and behaviour effects stay shared)
HIDDEN_STRATUM_FIT = " (M0, Mt and Mb only, with a capture probability for each {each})"


def refuse_stratified_patterns(
    table: pd.DataFrame,
    codes: np.ndarray,
    covariates: Sequence[str],
    declared: set[Any],
    takes_covariates: bool = True,
) -> None:
    """A patterns table with a history (``codes``: each row's; and covariate pattern) on two rows that a column
    it does not declare tells apart: one table of counts per region, say (`table_checks.refuse_hidden_stratum`),
    named with its rows and what to do (declaring it a covariate only if ``takes_covariates``), rather than the
    repeated history alone (`refuse_repeats`)."""
    # the frame's own column names, never a user's: a covariate may be called anything
    cells = pd.DataFrame(
        {
            "h": codes,
            **{f"x{i}": table[c].to_numpy() for i, c in enumerate(covariates)},
        }
    )
    others = table[[c for c in table.columns if c not in declared]]
    cell = "(covariate pattern, history)" if len(covariates) else "history"
    fit_by = HIDDEN_STRATUM_FIT if takes_covariates else None
    refuse_hidden_stratum(cells, others, cell, fit_by=fit_by, apart=True)


def covariate_names(covariates: Sequence[str], formula: str | None) -> list[str]:
    """The covariate columns a table's fields name (the formula's, when one is given)."""
    if formula is None:
        return list(covariates)
    from estim.families.covariates import parse_formula

    return list(dict.fromkeys(c for term in parse_formula(formula)[0] for c in term))


def frequency_table(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    """An f_k table (`times_seen` = k, `count` = f_k) over t = `occasions`, checked row by row."""
    t, times_seen, count = (
        _occasion_count(fields["occasions"]),
        fields["times_seen"],
        fields["count"],
    )
    assert t is not None  # check_layout_fields saw to it
    for field, column in (("times_seen", times_seen), ("count", count)):
        _field_columns(table, field, [column])
    k = counts_column(table, times_seen, "number of captures k")
    f = counts_column(table, count, "number of people on the row")
    first: dict[int, int] = {}
    for row, (kk, ff) in enumerate(zip(k.tolist(), f.tolist(), strict=True)):
        if kk > t:
            raise EstimInputError(
                f"{where(times_seen, row)}: k = {kk} captures, more than the {t} occasions declared"
            )
        if kk == 0 and ff > 0:
            raise EstimInputError(
                f"{where(count, row)}: {ff} people seen 0 times: the unseen cannot be counted (drop "
                "the row; estimating them is the point)"
            )
        if kk in first:
            raise EstimInputError(
                f"{where(times_seen, row)}: k = {kk} again (also row {first[kk] + 1}): a frequency "
                "table has one row per number of captures"
            )
        first[kk] = row
    if f[k > 0].sum() == 0:
        raise EstimInputError(f"column {count!r}: nobody seen (all counts are 0)")
    return frequency_history_data({int(a): int(b) for a, b in zip(k, f, strict=True) if a > 0}, t)


# --------------------------------------------------------------------------------------------------------------
# the [data] fields of a spec, and the two ways in

OCCASION_KINDS = ("quarter", "month")
_TABLE_ONLY = ("layout", "count", "times_seen", "formula")


def check_fields(fields: Mapping[str, Any], source: str) -> None:
    check_choice(fields, "period_kind", PERIOD_KINDS)
    check_choice(fields, "occasion", OCCASION_KINDS)
    if source == "records":
        kind, occasion = fields.get("period_kind") or "year", fields.get("occasion") or "quarter"
        if (kind, occasion) in (("quarter", "quarter"), ("month", "quarter"), ("month", "month")):
            advice = (
                'use occasion = "month"'
                if kind == "quarter"
                else 'a month has no shorter occasions: fit a longer period (period_kind = "quarter" '
                'or "year") or a single-register family'
            )
            raise DataFieldError(
                "occasion",
                f"{occasion!r} is not shorter than the period (period_kind = {kind!r}), which must "
                f"hold several occasions: {advice}",
            )
        for name in _TABLE_ONLY:
            if fields.get(name) is not None:
                raise DataFieldError(name, "is for a table (file or benchmark), not for records")
        for name in ("covariates", "categorical"):
            if fields.get(name):
                raise DataFieldError(
                    name, "records carry no individual covariates for capture histories"
                )
        if fields.get("occasions") is not None:
            raise DataFieldError(
                "occasions", "records have their occasions from `occasion` (quarter or month)"
            )
        if fields["period"] is None:
            raise DataFieldError("period", "missing (records are fitted one period at a time)")
        return
    check_layout_fields(fields)


def from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """The capture histories of one period, one stratum per section (all, or the one named), on the occasions
    the records' span covers; an occasion without records, or a section without any, is refused, and a period
    covered in part is warned of (`estim.families.record_periods`)."""
    from estim.families.record_periods import covered_occasions, refuse_unrecorded
    from estim.statistics import sufficient_statistics

    stats = sufficient_statistics(
        records, period=fields["period_kind"], occasion=fields["occasion"]
    )
    select_records(stats, fields)
    if fields["section"] is not None:
        refuse_unrecorded(records, stats, fields["section"], fields["period"])
        stats = stats.sel(section=[fields["section"]])
    data = history_data_from_statistics(stats, fields["period"])
    return covered_occasions(records, stats, data, fields)


# the [data] fields of HISTORIES (the DataKind is assembled in estim.families.closed, which reads covariates)
HISTORY_FIELDS = (
    DataField(
        "layout",
        'table: "individuals" (one row per animal), "patterns" (one row per distinct history, with '
        'count) or "frequencies" (one row per number of captures k, with times_seen, count, occasions)',
    ),
    DataField(
        "occasions",
        "table: the 0/1 occasion columns in time order (required: never guessed); layout "
        '"frequencies": the number of occasions t',
        many=True,
    ),
    DataField("count", "table: the column holding the number of people on each row"),
    DataField("times_seen", 'layout "frequencies": the column holding k, the number of captures'),
    DataField(
        "covariates",
        "table: individual covariate columns (Huggins conditional likelihood; M0, Mt, Mb)",
        many=True,
        default=(),
    ),
    DataField(
        "categorical",
        "covariates to treat as categorical (default: the non-numeric ones)",
        many=True,
        default=(),
    ),
    DataField("formula", 'covariates as a formula instead, e.g. "sex * weight + C(age)"'),
    SECTION,
    PERIOD,
    PERIOD_KIND,
    DataField(
        "occasion",
        "records: capture occasion within a period, quarter or month",
        default="quarter",
    ),
)
