"""The data of the multiple-list families (`LISTS`): the counts of people by their pattern of presence on K
lists, from a table or from the border records' registers and apprehension records.

A table is read exactly as the closed family reads capture histories (`estim.families.closed.table_histories`),
the lists standing for the occasions: layout ``"patterns"`` (one row per pattern, with a ``count`` column) or
``"individuals"`` (one row per person). The list columns are the ``lists`` field (``occasions``, the closed
family's name, is accepted too, for the same thing), always declared: a 0/1 column that is not a list (sex)
would otherwise be read as one more. The result is the closed family's dataset:
``history_count`` (stratum, history) and ``capture`` (history, occasion), the list names on ``occasion``.

From records (`list_table`), the lists are the registers present in the records and the apprehension records,
for one period: a person is on a list in the period when they have an entry on it dated in the period (register
entries dated outside the records' month span are on no list, with a warning: the lists must cover the same
period). Without a section, the people are the whole border's recorded people (individual apprehension records
exist only for the surveyed sections, so the apprehension list covers those sections only); a section's table
needs every register entry placed in a section (the registers' optional ``section_id``), and is refused
otherwise. Registers date an entry some time after its event, so a period short against that delay keeps few
of the people the apprehensions and a register share: `register_dating` measures the delay from the records
and refuses a table that keeps clearly less than a third of such an overlap (records ending in June, a
quarter, with registers dated up to a year late), and warns below 90 %. A month of the period inside the span
with no apprehension record in the table's sections, where the records are busy enough to show it missing from
the file, is refused, and one missing in some surveyed sections only is warned of (`estim.families.lists.gaps`).

A list nobody is on (in the table, or in the period and section) is refused, naming the list: its main effect
would be −∞, and the population estimate would silently describe the other lists only. So is a table in which
nobody is on two lists (`refuse_no_overlap`), and one in which a list shares nobody with any other list, or
the lists fall into groups with nobody in common (`refuse_unlinked_lists`): only the overlaps tell how many
people the lists miss, and such a list's are all empty. From records this is what person keys that do not
match across the files look like, and the message says so. `list_table` refuses it too, as the spec's data
(`LISTS`) do; ``allow_unlinked=True`` returns it, to look at the records, never to fit.

The families' numeric ``[options]`` are declared with their registration and checked when a spec is read
(`estim.families.options`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
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
from estim.families.closed import history_data, table_histories
from estim.families.closed.data import check_layout_fields
from estim.families.lists.table_checks import (
    RECORDS_KEY_HINT,
    refuse_empty_lists,
    refuse_no_overlap,
    refuse_unlinked_lists,
)

LAYOUTS = ("patterns", "individuals")
_TABLE_ONLY = ("layout", "count", "lists", "occasions")
_RECORDS_ONLY = ("section", "period")
WHOLE_BORDER = "all"
"""The stratum label of a table without strata, and of the whole border's table from records."""

# --------------------------------------------------------------------------------------------------------------
# [data] fields


def _list_columns(fields: Mapping[str, Any]) -> Any:
    """The list columns, from ``lists`` or its alias ``occasions``."""
    lists, occasions = fields.get("lists"), fields.get("occasions")
    return lists if lists is not None else occasions


def check_fields(fields: Mapping[str, Any], source: str) -> None:
    """The rules across the `[data]` fields of list data (`DataFieldError` naming the field)."""
    check_choice(fields, "period_kind", PERIOD_KINDS)
    delay, empty = fields.get("register_delay_days"), fields.get("allow_empty_months", False)
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int) or delay < 0):
        raise DataFieldError(
            "register_delay_days",
            "the days after an event within which the registers date its entries: a whole number >= 0 "
            f"(0: dated at the event); got {delay!r}",
        )
    if not isinstance(empty, bool):
        raise DataFieldError("allow_empty_months", f"true or false; got {empty!r}")
    if fields.get("lists") is not None and fields.get("occasions") is not None:
        raise DataFieldError(
            "occasions", "the list columns are given twice: use lists (or occasions), not both"
        )
    if source == "records":
        for name in _TABLE_ONLY:
            if fields.get(name) is not None:
                raise DataFieldError(
                    name,
                    "is for a table (file or benchmark); from records the lists are the registers "
                    "present and the apprehension records",
                )
        if fields.get("period") is None:
            raise DataFieldError("period", "missing (records are fitted one period at a time)")
        return
    for name in _RECORDS_ONLY:
        if fields.get(name) is not None:
            raise DataFieldError(name, "is for records, not for a table")
    layout = fields.get("layout")
    if layout is None:
        raise DataFieldError(
            "layout",
            'missing: say how the table is laid out: "patterns" (one row per pattern of presence on the '
            'lists, with count = its column of people) or "individuals" (one row per person)',
        )
    if layout == "frequencies":
        raise DataFieldError(
            "layout",
            'list data say which lists each person is on: "patterns" (one row per pattern, with count) '
            'or "individuals" (one row per person); an f_k table ("frequencies") does not',
        )
    if layout not in LAYOUTS:
        raise DataFieldError("layout", f"one of {', '.join(LAYOUTS)}; got {layout!r}")
    check_layout_fields(_table_fields(fields))


def _table_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The closed family's table fields of a lists table (no covariates, no f_k)."""
    columns = _list_columns(fields)
    if columns is not None and (isinstance(columns, (int, float, str))):
        name = "lists" if fields.get("lists") is not None else "occasions"
        raise DataFieldError(name, f"a list of the 0/1 list columns; got {columns!r}")
    return {"layout": fields.get("layout"), "occasions": columns, "count": fields.get("count")}


LIST_FIELDS = (
    DataField(
        "layout",
        'table: "patterns" (one row per pattern of presence on the lists, with count) or "individuals" '
        "(one row per person)",
    ),
    DataField("lists", "table: the 0/1 list columns (required: never guessed)", many=True),
    DataField("occasions", "table: the same as lists (the closed family's name)", many=True),
    DataField("count", "table: the column holding the number of people on each row"),
    SECTION,
    PERIOD,
    PERIOD_KIND,
    DataField(
        "register_delay_days",
        "records: the registers' delay declared, not measured: entries dated up to this many days after "
        "their event, evenly (a whole number >= 0; 0: dated at the event, which checks nothing)",
        kind=int,
        hashed_at_default=False,
    ),
    DataField(
        "allow_empty_months",
        "records: true declares the period's months missing from the apprehension file truly without "
        "apprehensions (default false: such a month is refused where the records can tell)",
        default=False,
        kind=bool,
        hashed_at_default=False,
    ),
)


# --------------------------------------------------------------------------------------------------------------
# From a table


def _from_table(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    f = _table_fields(fields)
    columns = f["occasions"]
    data = table_histories(
        table,
        layout=f["layout"],
        occasions=list(columns) if columns is not None else None,
        count=f["count"],
        takes_covariates=False,
    )
    refuse_empty_lists(data, "the table")
    refuse_no_overlap(data, "the table")
    refuse_unlinked_lists(data, "the table")
    return data


# --------------------------------------------------------------------------------------------------------------
# From records


def list_table(
    records: Any,
    *,
    period: str,
    period_kind: str = "year",
    section: str | None = None,
    allow_unlinked: bool = False,
    register_delay_days: int | None = None,
    allow_empty_months: bool = False,
) -> xr.Dataset:
    """The counts of people by their pattern of presence on the registers and the apprehension records in
    one `period` (of length `period_kind`), for the whole border or one `section`: the data for estimating
    the population of people who could appear on any of the lists in that period.

    Lists: the registers present in the records (in their fixed order), then ``apprehensions``. Whole border:
    everyone with an entry dated in the period (the apprehension list covers only the sections with individual
    records). A section: the people with an entry of that section dated in the period, which needs the
    registers' ``section_id``; refused without it. Returns the closed family's dataset (`history_data`: one
    stratum, the section or ``"all"``, and the observed patterns), with attrs ``period``, ``period_kind``,
    ``section`` (``"all"`` for the whole border) and ``registers_out_of_span``: the register entries dated
    outside the records' month span (the first to the last month of the apprehensions, totals and checkpoint
    records), which are on no list, with a warning. A period the span covers only in part (records ending in
    June) holds the register entries of its months in the span only, as the apprehension list does (with a
    warning, or refused by the check of the registers' dating below).

    A list nobody is on, a table in which nobody is on two lists, and one in which a list shares nobody with
    the others (`refuse_unlinked_lists`: usually person keys that do not match across the files) are refused,
    as a spec's data (`LISTS`) refuse them. ``allow_unlinked=True`` returns the last kind, to see what the
    records hold: no multiple-list model can estimate N from it.

    The registers' dating is checked against the period (`register_dating`): a register that dates its entries
    long after the apprehensions they follow shares few of the period's apprehended people within the period.
    A table that keeps less than a third of such an overlap (records ending in June with registers dated up to
    a year late) is refused, one that keeps less than 90 % is warned of; attrs ``period_days``,
    ``period_months_covered`` and ``register_share_kept`` say what was found. The delay is measured from the
    records; ``register_delay_days`` (a spec's ``[data]`` field too) declares it instead (entries dated up to
    that many days after the event, spread evenly; 0: dated at the event, which checks nothing).

    Months missing from the apprehension file are checked (`estim.families.lists.gaps`): a month of the
    period inside the records' span with no individual apprehension record in any section of the table (the
    surveyed sections, or the section) is refused when the sections' median month makes a quiet month
    implausible (warned of when the records are too sparse to tell), as the apprehension list would cover
    fewer months than the registers; ``allow_empty_months=True`` (``[data] allow_empty_months = true``)
    declares such months without apprehensions (with a warning). A month with no record in some surveyed
    sections only is warned of. Attrs ``apprehension_months_missing`` (JSON, section: months),
    ``apprehension_median_month`` and ``apprehension_months_declared_empty`` say what was found.
    """
    from estim.families.lists.gaps import apprehension_gaps
    from estim.statistics import sufficient_statistics
    from estim.statistics.histories import unplaced_register_entries

    if section is not None:
        unplaced = unplaced_register_entries(records.registers)
        if unplaced:
            raise DataFieldError(
                "section",
                f"{section!r}: {unplaced:,} of the {len(records.registers):,} register entries carry no "
                "section_id, so the people found only on a register cannot be placed in a section; a "
                "section's table would add them from the whole border to the section's apprehended "
                "people, and N would mix the two populations. Fit the whole border (leave out section), "
                "or give the registers a section_id column",
            )
    stats = sufficient_statistics(records, period=period_kind, occasion=None)
    select_records(stats, {"section": section, "period": period})
    lists = [str(x) for x in stats["list"].values]
    if len(lists) < 2:
        raise EstimInputError(
            "the records hold no register entries: multiple-systems estimation needs at least two lists "
            "(the registers and the apprehension records)"
        )
    if section is None:
        counts = stats["list_period_count"].sel(period=period)
    else:
        counts = stats["list_section_count"].sel(section=section, period=period)
    capture = stats["list_pattern_capture"].transpose("list_pattern", "list").values
    n = counts.transpose("list_pattern").values.astype(np.int64)
    where = f"period {period}" + (f", section {section}" if section else ", whole border")
    gaps = apprehension_gaps(
        records, stats, period=period, section=section, where=f"records, {where}",
        allow_empty_months=allow_empty_months,
    )  # fmt: skip
    if n.sum() == 0:
        raise EstimInputError(f"records, {where}: nobody is on any list")
    rows = pd.DataFrame(capture[n > 0], columns=lists).assign(_n=n[n > 0])
    data = history_data(rows, occasions=lists, count="_n")
    if section is not None:
        data = data.assign_coords(stratum=[section])
    hint = ""
    if section is not None and not bool(stats["individual_records"].sel(section=section)):
        hint = (
            f" (section {section} has no individual apprehension records: they exist only for the "
            "surveyed sections)"
        )
    refuse_empty_lists(data, f"records, {where}", hint)
    refuse_no_overlap(data, f"records, {where}")
    if not allow_unlinked:
        refuse_unlinked_lists(data, f"records, {where}", RECORDS_KEY_HINT)
    dating = register_dating(
        records, stats, period=period, period_kind=period_kind, where=f"records, {where}",
        declared=register_delay_days,
    )  # fmt: skip
    data.attrs.update(
        {
            "period": period,
            "period_kind": period_kind,
            "section": section or WHOLE_BORDER,
            # register entries dated outside the records' span: in no list (sufficient_statistics warns)
            "registers_out_of_span": int(stats.attrs["registers_out_of_span"]),
            **dating,
            **gaps,
        }
    )
    return data


# --------------------------------------------------------------------------------------------------------------
# The registers' dating against the period

SHARE_REFUSED = 1 / 3
"""A period's table that keeps clearly (by two standard errors) less than this share of the overlap between
the apprehensions and a register is refused."""
SHARE_WARNED = 0.9
"""… and one that keeps less than this share is warned of."""
_MONTHS_PER = {"year": 12, "quarter": 3, "month": 1}
DATING_DOC = 'docs/multiple_lists.md, "Periods and the registers\' dating"'


def _covered(stats: xr.Dataset, period: str) -> tuple[int, int, str]:
    """Days and months of `period` inside the records' span, and those months as text."""
    month = stats["month"].values.astype("datetime64[M]")
    covered = month[np.asarray(stats["month_period"].values).astype(str) == period]
    days = (covered + np.timedelta64(1, "M")).astype("datetime64[D]") - covered.astype(
        "datetime64[D]"
    )
    text = f"{covered[0]} … {covered[-1]}" if covered.size > 1 else str(covered[0])
    return int(days.astype(np.int64).sum()), int(covered.size), text


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def _refuse_dated_early(delays: dict[str, Any], registers: list[str], where: str) -> None:
    """Refuse a register whose entries of apprehended people lie before their apprehensions far more often
    than after (the mirror of a measured delay, as clear): a register dates an entry at or after the event it
    records, so its dates are shifted early. Registers dated a year early were taken for a delay "too few
    people to measure" and fitted: N̂ = 53,931 for the 18,005 of the same records rightly dated."""
    for name in registers:
        d = delays.get(name)
        if d is None:
            continue
        early = int(d.before.sum() - d.after.sum())
        if early >= max(20, 3.0 * np.sqrt(float(d.after.sum() + d.before.sum()))):
            raise EstimInputError(
                f"{where}: the register {name!r} dates {int(d.before.sum()):,} entries of apprehended people "
                f"in the {d.window_days} days before one of their apprehensions and {int(d.after.sum()):,} "
                "in the days after: a register dates an entry at or after the event it records, so its "
                "dates look shifted early (a year, a month, or day and month swapped). Check the registers' "
                f"dates against the apprehensions'. See {DATING_DOC}"
            )


def register_dating(
    records: Any,
    stats: xr.Dataset,
    *,
    period: str,
    period_kind: str,
    where: str,
    declared: int | None = None,
) -> dict[str, Any]:
    """Check that the period is long enough for the registers' dating; the attrs of `list_table`'s table.

    A person is on a list of the period only by an entry dated in it. A register dates an entry some time
    after the event it records (the synthetic registers: up to a year after the crossing), so of the people
    apprehended in the period whom the register records, only those whose entry falls in the period too are
    on both lists of its table; the others' entries lie after it (never used, whether or not the records hold
    them) and entries of people who crossed before the period take their place. The table's overlap shrinks
    and N̂ grows (about by 1/share were the lists otherwise independent). The share kept, for each register, is
    `share_kept` of its delay, measured from the records (`estim.statistics.linkage.register_delays`) or
    ``declared`` (days, spread evenly), over the days of the period the records cover. Clearly below
    `SHARE_REFUSED` for some register (by two standard errors of the measured share): `EstimInputError`;
    below `SHARE_WARNED`: a warning. Registers whose delay cannot be
    measured (too few apprehended people on them, records shorter than twice the window) are warned of."""
    from estim.statistics.linkage import (
        DELAY_WINDOW_DAYS,
        register_delays,
        share_kept,
        uniform_delays,
    )

    days, n_months, months = _covered(stats, period)
    full = _MONTHS_PER[period_kind]
    registers = [str(x) for x in stats["list"].values[:-1]]  # the apprehensions are the last list
    kept: dict[str, tuple[float, float]] = {}  # register: (share kept, its standard error)
    if declared is not None:
        if (
            isinstance(declared, bool)
            or not isinstance(declared, (int, np.integer))
            or declared < 0
        ):
            raise EstimInputError(
                f"register_delay_days: the days after an event within which the registers date its "
                f"entries, a whole number >= 0; got {declared!r}"
            )
        kept = {n: share_kept(uniform_delays(int(declared)), days) for n in registers}
        said = {n: f"declared, up to {int(declared)} days" for n in registers}
    else:
        delays = register_delays(records, stats["month"].values)
        _refuse_dated_early(delays, registers, where)
        kept = {n: d.share_kept(days) for n, d in delays.items() if n in registers and d.measured}
        said = {
            n: f"90 % within {delays[n].quantile(0.9)} days of an apprehension, median "
            f"{delays[n].quantile(0.5)}"
            for n in kept
        }
    attrs = {
        "period_days": days,
        "period_months_covered": n_months,
        "register_share_kept": json.dumps(
            {n: (round(kept[n][0], 3) if n in kept else None) for n in registers}
        ),
        "register_delay": "measured" if declared is None else f"declared {int(declared)} days",
    }
    cover = (
        f"the records cover only {n_months} of the period's {full} months ({months}, {days} days)"
        if n_months < full
        else f"the period is {days} days long"
    )
    unmeasured = [n for n in registers if n not in kept]
    if unmeasured:
        many = len(unmeasured) > 1
        warnings.warn(
            f"{where}: could not measure how long after an apprehension the register"
            f"{'s' if many else ''} {', '.join(map(repr, unmeasured))} date{'' if many else 's'} "
            f"entries (too few apprehended people on {'them' if many else 'it'} beyond chance, or "
            f"records spanning less than twice {DELAY_WINDOW_DAYS} days): the table takes "
            f"{'their' if many else 'its'} entries to be dated near the events. If they are dated "
            "later, a period shorter than the delay inflates N̂ (declare the delay: [data] "
            "register_delay_days = N in the spec, or list_table(..., register_delay_days=N) from "
            f"Python); see {DATING_DOC}",
            stacklevel=3,
        )
    in_part = f"{where}: {cover}, and the table describes those months only; see {DATING_DOC}"
    if not kept:
        if n_months < full:
            warnings.warn(in_part, stacklevel=3)
        return attrs
    # the register whose share is lowest, or, for the refusal, clearly (two standard errors) below a third
    worst = min(kept, key=lambda n: kept[n][0])
    clearly = [n for n in kept if kept[n][0] + 2 * kept[n][1] < SHARE_REFUSED]
    if clearly:
        worst = min(clearly, key=lambda n: kept[n][0])
    share = kept[worst][0]
    delays_text = "; ".join(f"{n}: {said[n]}" for n in kept)
    others = ", ".join(f"{n} {_percent(kept[n][0])}" for n in kept if n != worst)
    window = f"these {days} days" if n_months < full else f"the period's {days} days"
    what = (
        f"of the people apprehended in {window} whom {worst!r} records, about "
        f"{_percent(share)} are on it in the table" + (f" ({others})" if others else "")
    )
    inflated = (
        f"by about 1/{share:.2f} ≈ {1 / max(share, 1e-9):.1f} times, were the lists otherwise "
        "independent"
    )
    if clearly:
        raise EstimInputError(
            f"{where}: {cover}, and the registers date their entries long after the apprehensions "
            f"they follow ({delays_text}). A person is on a list of the period only by an entry "
            f"dated in it, so {what}: the others' entries fall after the period (entries dated after "
            "it are never used, whether or not the records hold them) and entries of people who "
            "crossed before it take their place. The table's lists then share far fewer people than "
            f"the lists do, and N̂ would be inflated ({inflated}). A table that keeps less than a "
            "third of an overlap is refused: fit a period that the records cover in full and that is "
            'long against the delays (period_kind = "year"); if the registers are in fact dated at '
            "the events they record, declare it ([data] register_delay_days = 0 in the spec, or "
            f"list_table(..., register_delay_days=0) from Python). See {DATING_DOC}"
        )
    if share < SHARE_WARNED:
        warnings.warn(
            f"{where}: the registers date their entries after the apprehensions they follow "
            f"({delays_text}), so {what}. N̂ may be inflated ({inflated})"
            + (f"; {cover}, and the table describes those months only" if n_months < full else "")
            + f"; see {DATING_DOC}",
            stacklevel=3,
        )
    elif n_months < full:
        warnings.warn(in_part, stacklevel=3)
    return attrs


def _from_records(records: Any, fields: Mapping[str, Any]) -> xr.Dataset:
    """A spec's table (`list_table`); a delay the spec declares is warned of at each fit: it replaces the
    records' own, which are then not measured."""
    delay = fields.get("register_delay_days")
    data = list_table(
        records,
        period=fields["period"],
        period_kind=fields["period_kind"],
        section=fields.get("section"),
        register_delay_days=delay,
        allow_empty_months=bool(fields.get("allow_empty_months", False)),
    )
    if delay is not None:
        where = f"period {data.attrs['period']}" + (
            f", section {fields['section']}" if fields.get("section") else ", whole border"
        )
        checks = (
            "the registers' entries dated at the events they record, which checks nothing: the period "
            "is not checked against how late the registers date their entries"
            if delay == 0
            else f"the registers' entries dated up to {delay} days after their events: the period is "
            "checked against that delay only"
        )
        warnings.warn(
            f"records, {where}: [data] register_delay_days = {delay} declares {checks}, and the "
            "records' own delays are not measured. If the registers date their entries later, a period "
            f"short against the delay inflates N̂; see {DATING_DOC}",
            UserWarning,
            stacklevel=2,
        )
    return data


LISTS = DataKind(
    name="lists",
    fields=LIST_FIELDS,
    check=check_fields,
    from_benchmark=_from_table,
    from_records=_from_records,
)
"""Counts by pattern of presence on K lists, from a table or from the border records' registers."""
