"""Who was seen how often: f_k and capture histories per section × period stratum; list histories (MSE) over
the whole record span, per period and per section × period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.records.recordset import PERSON_ID, RecordSet
from estim.records.schemas import CATEGORIES, REGISTERS
from estim.statistics.coding import _Apprehensions, _codes, _flat_index, _month_ints
from estim.statistics.periods import _occasion_index, _period_unit

APPREHENSIONS_LIST = "apprehensions"
"""Name of the apprehension records on the ``list`` dim (after the registers present)."""


# --------------------------------------------------------------------------------------------------------------
# Frequencies and capture histories per section × period stratum
# --------------------------------------------------------------------------------------------------------------


class _Strata:
    def __init__(
        self,
        frequency: xr.DataArray,
        history_count: xr.DataArray,
        capture: xr.DataArray,
        histories: list[str],
    ) -> None:
        self.frequency = frequency
        self.history_count = history_count
        self.capture = capture
        self.histories = histories


def _strata(
    appr: _Apprehensions,
    month0: int,
    period: str,
    occasion: str | None,
    n_occasions: int,
    n_sections: int,
    n_periods: int,
) -> _Strata:
    n_c = len(CATEGORIES)
    n_o = n_occasions
    n_people = max(appr.n_people, 1)
    n_strata = n_sections * n_periods
    period_in_span = _period_unit(appr.month, period) - np.int32(_period_unit(month0, period))
    occ = _occasion_index(appr.month, period, occasion)

    # One int64 key per record packs (section, period, person, category, occasion). Sorting it (numpy's SIMD
    # sort, far faster than hashing 10^7 keys) lines up each person-in-stratum's records, by category then
    # occasion, so every per-person statistic is a computation on runs of equal keys.
    if n_strata * n_people * n_c * n_o >= 2**63:
        raise EstimInputError("too many sections × periods × people to pack into 64-bit keys")
    key = _flat_index(
        (appr.section, n_sections),
        (period_in_span, n_periods),
        (appr.person, n_people),
        (appr.category, n_c),
        (occ, n_o),
    )
    del period_in_span, occ
    key.sort()
    n = key.size

    # Runs of equal (person-in-stratum, category): how often each person was recorded in each category.
    person_cat = key // n_o
    run_start = _run_starts(person_cat)
    run_len = np.diff(np.append(run_start, n))
    run_key = person_cat[run_start]
    del person_cat
    run_cat = run_key % n_c
    run_person = run_key // n_c  # stratum * n_people + person
    del run_key
    # Runs grouped by person-in-stratum (each person's runs are adjacent, categories ascending).
    person_run_start = _run_starts(run_person)
    n_groups = person_run_start.size
    starts = run_start[person_run_start]  # first record of each person-in-stratum
    times = np.add.reduceat(run_len, person_run_start) if n_groups else np.zeros(0, np.int64)
    group_stratum = run_person[person_run_start] // n_people
    del run_person

    # Modal category: the first run (lowest category in CATEGORIES order: the tie rule) whose length is the
    # person's maximum.
    if n_groups:
        longest = np.maximum.reduceat(run_len, person_run_start)
        run_group = np.repeat(
            np.arange(n_groups), np.diff(np.append(person_run_start, run_len.size))
        )
        is_max = np.flatnonzero(run_len == longest[run_group])
        first_max = is_max[_run_starts(run_group[is_max])]
        modal = run_cat[first_max].astype(np.int64)
        del longest, run_group, is_max, first_max
    else:
        modal = np.zeros(0, np.int64)
    del run_cat, run_len, run_start, person_run_start

    k_max = int(times.max()) if n_groups else 0
    freq = np.bincount(
        (group_stratum * n_c + modal) * k_max + (times - 1), minlength=n_strata * n_c * k_max
    )
    frequency = xr.DataArray(
        freq.astype(np.int64).reshape(n_sections, n_periods, n_c, k_max),
        dims=("section", "period", "category", "k"),
        attrs={
            "long_name": "f_k: people apprehended exactly k times in the section-period stratum, by modal category",
            "units": "persons",
        },
    )

    # Capture history as an integer: occasion 1 is the most significant bit, so numeric order is the
    # lexicographic order of the "0110" strings.
    bits = np.left_shift(np.int16(1), (np.int16(n_o - 1) - (key % n_o).astype(np.int16)))
    mask = np.bitwise_or.reduceat(bits, starts) if n_groups else np.zeros(0, np.int16)
    del bits, key
    distinct = _sorted_unique(mask)
    n_h = distinct.size
    history = np.searchsorted(distinct, mask)
    hist = np.bincount(group_stratum * n_h + history, minlength=n_strata * n_h)
    histories = [format(int(h), f"0{n_o}b") for h in distinct]
    capture = np.array([[int(ch) for ch in h] for h in histories], dtype=np.int8).reshape(n_h, n_o)
    history_count = xr.DataArray(
        hist.astype(np.int64).reshape(n_sections, n_periods, n_h),
        dims=("section", "period", "history"),
        attrs={
            "long_name": "people with this capture history over the period's occasions (observed histories only)",
            "units": "persons",
        },
    )
    capture_da = xr.DataArray(
        capture,
        dims=("history", "occasion"),
        attrs={"long_name": "captured (apprehended at least once) on the occasion", "units": "1"},
    )
    return _Strata(frequency, history_count, capture_da, histories)


def _run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values begins in a sorted array."""
    if sorted_values.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    return np.concatenate(([0], change))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # np.unique hashes in numpy ≥ 2.3 and is much slower than a sort here.
    s = np.sort(values)
    keep = np.ones(s.size, dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


# --------------------------------------------------------------------------------------------------------------
# Multiple-systems estimation: presence on each list
# --------------------------------------------------------------------------------------------------------------


REGISTER_SECTION = "section_id"
"""Optional column of the registers: the section where the entry was made (places register people in sections)."""


class _Registers:
    """Register entries coded against the apprehensions: list position, person code (shared with the
    apprehension records), month, and the number of people on the union of the lists.

    Only the entries dated in the records' month span (`month0`, `n_months`: the first to the last month of the
    apprehensions, totals and checkpoint records) are coded: the lists of a capture–recapture table must refer
    to the same period, so an entry before or after it (a register running on after the apprehension records
    stop) would add people the apprehension records could not have seen. ``before``, ``after`` count the entries
    left out, and ``kept`` is the mask of the entries coded (row order of ``records.registers``). The list dim
    still holds every register present in the file."""

    def __init__(
        self, records: RecordSet, appr: _Apprehensions, month0: int, n_months: int
    ) -> None:
        reg = records.registers
        reg_codes = _codes(reg["register"], REGISTERS, "registers", "register")
        present = sorted(set(reg_codes.tolist()))
        self.lists = [REGISTERS[i] for i in present] + [APPREHENSIONS_LIST]
        position = np.full(len(REGISTERS), -1, dtype=np.int64)
        position[present] = np.arange(len(present))
        month = _month_ints(reg["date"], "registers", "date") if len(reg) else np.zeros(0, np.int32)
        self.kept = (month >= month0) & (month < month0 + n_months)
        self.before = int(np.count_nonzero(month < month0))
        self.after = int(np.count_nonzero(month >= month0 + n_months))
        self.span = (month0, n_months)
        self.n_entries = len(reg)
        self.position = position[reg_codes[self.kept]] if reg_codes.size else np.zeros(0, np.int64)
        self.month = month[self.kept]
        # Person codes over the union of lists: the apprehended people keep their codes 0..n_people-1 (the
        # factorisation of apprehensions is reused); register people not apprehended get the next codes.
        if len(reg):
            reg_ids = reg[PERSON_ID]
            if reg_ids.isna().any():
                raise EstimInputError(f"registers: {PERSON_ID} has missing values")
            combined, _ = pd.factorize(
                pd.concat(
                    [pd.Series(appr.people, dtype=reg_ids.dtype), reg_ids[self.kept]],
                    ignore_index=True,
                )
            )
            self.person = combined[appr.n_people :].astype(np.int64)
            self.n_people = int(combined.max()) + 1 if combined.size else 0
        else:
            self.person = np.zeros(0, dtype=np.int64)
            self.n_people = appr.n_people

    @property
    def out_of_span(self) -> int:
        """Register entries dated before the records' first month or after their last, left out."""
        return self.before + self.after

    def out_of_span_message(self) -> str:
        """What was left out and why, for the warning (empty when nothing was)."""
        if not self.out_of_span:
            return ""
        month0, n_months = self.span
        if n_months:
            first = str(np.datetime64(month0, "M"))
            last = str(np.datetime64(month0 + n_months - 1, "M"))
            what = (
                f"{self.out_of_span:,} of the {self.n_entries:,} entries are dated outside the records' span "
                f"{first} … {last} ({self.before:,} before it, {self.after:,} after; the span runs from the "
                "first to the last month of the apprehensions, apprehension totals and checkpoint records)"
            )
        else:
            what = (
                f"all {self.n_entries:,} entries are outside the records' span: there is none (no "
                "apprehensions, apprehension totals or checkpoint records)"
            )
        return (
            f"registers: {what}; they are left out of the list histories, since the lists of a "
            "capture–recapture table must cover the same period, and people seen on a register only outside "
            "it would be counted as people the apprehension records missed. The statistics' attribute "
            "registers_out_of_span counts them. To count them in, add the apprehension records (or totals) "
            "of their months; to silence this, leave them out of the registers file"
        )

    @property
    def n_lists(self) -> int:
        return len(self.lists)


def unplaced_register_entries(registers: pd.DataFrame) -> int:
    """Register entries that cannot be placed in a section: all of them without a ``section_id`` column,
    else those with an empty one."""
    if REGISTER_SECTION not in registers.columns:
        return len(registers)
    return int(registers[REGISTER_SECTION].isna().sum())


def _list_histories(
    appr: _Apprehensions, regs: _Registers
) -> tuple[list[str], list[str], xr.DataArray, xr.DataArray]:
    n_lists = regs.n_lists
    # List 1 is the most significant bit, so numeric order is the order of the pattern strings.
    mask = np.zeros(regs.n_people, dtype=np.int64)
    mask[: appr.n_people] = 1  # everyone apprehended is on the last list
    if regs.person.size:
        np.bitwise_or.at(
            mask, regs.person, np.left_shift(np.int64(1), (n_lists - 1) - regs.position)
        )
    distinct = _sorted_unique(mask)
    counts = np.bincount(np.searchsorted(distinct, mask), minlength=distinct.size).astype(np.int64)
    patterns = [format(int(h), f"0{n_lists}b") for h in distinct]
    capture = np.array([[int(ch) for ch in p] for p in patterns], dtype=np.int8).reshape(
        len(patterns), n_lists
    )
    count_da = xr.DataArray(
        counts,
        dims=("list_history",),
        attrs={
            "long_name": "people with this pattern of presence on the lists, whole record span (each person once)",
            "units": "persons",
        },
    )
    capture_da = xr.DataArray(
        capture,
        dims=("list_history", "list"),
        attrs={"long_name": "present on the list", "units": "1"},
    )
    return regs.lists, patterns, count_da, capture_da


# --------------------------------------------------------------------------------------------------------------
# List histories per period (whole border) and per section × period


class _PeriodLists:
    def __init__(
        self,
        patterns: list[str],
        capture: xr.DataArray,
        period_count: xr.DataArray,
        section_count: xr.DataArray | None,
    ) -> None:
        self.patterns = patterns
        self.capture = capture
        self.period_count = period_count
        self.section_count = section_count


def _period_list_histories(
    records: RecordSet,
    appr: _Apprehensions,
    regs: _Registers,
    sections: tuple[str, ...],
    month0: int,
    n_periods: int,
    period: str,
) -> _PeriodLists:
    """Each person's presence on each list within each period: on a list when they have an entry (an
    apprehension record) dated in the period and in the records' month span. The pattern axis holds all
    2^K − 1 patterns, zeros included, so that every period and section shares it."""
    k = regs.n_lists
    n_patterns = 2**k
    period0 = int(_period_unit(month0, period))
    # every entry as (person, period, list); the apprehensions are the last list
    person = np.concatenate([appr.person.astype(np.int64), regs.person])
    unit = _period_unit(np.concatenate([appr.month, regs.month]).astype(np.int64), period)
    in_period = unit - period0
    on_list = np.concatenate([np.full(appr.person.size, k - 1, np.int64), regs.position])
    # register entries outside the month span are already left out (`_Registers`); this keeps any entry
    # outside the periods out of the tables too
    keep = (in_period >= 0) & (in_period < n_periods)
    n_people = max(regs.n_people, 1)

    def table(section: np.ndarray | None, n_sections: int) -> np.ndarray:
        parts = [(in_period[keep], n_periods), (person[keep], n_people), (on_list[keep], k)]
        if section is not None:
            parts.insert(0, (section[keep], n_sections))
        key = _flat_index(*parts)
        key.sort()
        # one run per person-in-stratum (stratum = [section ×] period); OR of their lists' bits
        stratum_person = key // k
        starts = _run_starts(stratum_person)
        bits = np.left_shift(np.int64(1), (k - 1) - (key % k))
        mask = np.bitwise_or.reduceat(bits, starts) if starts.size else np.zeros(0, np.int64)
        stratum = stratum_person[starts] // n_people
        n_strata = n_sections * n_periods if section is not None else n_periods
        counts = np.bincount(stratum * n_patterns + mask, minlength=n_strata * n_patterns)
        return counts.reshape(n_strata, n_patterns)[:, 1:].astype(np.int64)

    patterns = [format(h, f"0{k}b") for h in range(1, n_patterns)]
    capture = np.array([[int(ch) for ch in p] for p in patterns], dtype=np.int8).reshape(
        len(patterns), k
    )
    period_count = xr.DataArray(
        table(None, 1),
        dims=("period", "list_pattern"),
        attrs={
            "long_name": "people with this pattern of presence on the lists in the period (entries dated in "
            "it), whole border; the apprehension list covers only sections with individual records",
            "units": "persons",
        },
    )
    section_count = None
    if unplaced_register_entries(records.registers) == 0:
        reg = records.registers
        reg_section = (
            _codes(reg[REGISTER_SECTION], sections, "registers", REGISTER_SECTION)
            if len(reg)
            else np.zeros(0, np.int8)
        )
        # the sections of every entry are checked; those of the entries coded are used
        reg_section = reg_section[regs.kept] if reg_section.size else reg_section
        section = np.concatenate([appr.section.astype(np.int64), reg_section.astype(np.int64)])
        counts = table(section, len(sections)).reshape(len(sections), n_periods, n_patterns - 1)
        section_count = xr.DataArray(
            counts,
            dims=("section", "period", "list_pattern"),
            attrs={
                "long_name": "people with this pattern of presence on the lists in the section-period "
                "(entries of the section dated in the period)",
                "units": "persons",
            },
        )
    capture_da = xr.DataArray(
        capture,
        dims=("list_pattern", "list"),
        attrs={"long_name": "present on the list", "units": "1"},
    )
    return _PeriodLists(patterns, capture_da, period_count, section_count)
