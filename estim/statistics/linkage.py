"""Linkage of the surveyed sections' apprehended journeys to the in-country registers: the sufficient statistics
that tell whether an apprehended journey went on into Russia.

A journey is one person's attempts in one month (a person makes at most one journey a month), apprehended at
least once in a surveyed section; its date d is its first apprehension. Only journeys **towards Russia** are
linked: only they can end in Russia. For each such journey and each in-country register L (a list that can only
see a person who is in Russia: police checks, overstays), two facts are counted:

* *after*: the person has an entry on L dated in [d, d + W] — seen in Russia after the journey, either because
  this journey got through (the signal) or because of another journey of the same person (the background);
* *before*: an entry on L dated in [d − W, d) — the background alone, since this journey cannot have produced
  an entry before it began.

W = `LINK_WINDOW_DAYS` must cover a register's delay between a crossing and its entry (the synthetic registers
date an entry up to 365 days after the crossing, plus up to a month from the first apprehension to the crossing).
Journeys within W of either end of the records are left out (their windows would be cut). The border model
(`estim.families.border.model`) reads the counts per section × month × category: the journeys by their
*after* pattern over the lists, and the *before* sightings per list.

`register_delays` reads the same after/before contrast by delay, for every register: how many days after an
apprehension a register dates the entries it leads to (`RegisterDelay`: the entries dated d days after an
apprehension, less the background of those dated d days before it). The multiple-list tables of one period
(`estim.families.lists.data.list_table`) use it to tell how much of the overlap between the apprehensions and a
register a period of that length keeps (`share_kept`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from estim.records.recordset import PERSON_ID, RecordSet
from estim.records.schemas import IN_COUNTRY_REGISTERS, REGISTERS

IN_COUNTRY_LISTS = IN_COUNTRY_REGISTERS  # lists that see only people in Russia
LINK_WINDOW_DAYS = 400
TOWARDS_RUSSIA = "to_russia"


def linkage_statistics(
    records: RecordSet,
    months: np.ndarray,
    sections: Sequence[str],
    categories: Sequence[str],
    *,
    window_days: int = LINK_WINDOW_DAYS,
) -> xr.Dataset:
    """Per section × month × category: ``linked_journeys`` [link_pattern], the linkable apprehended journeys
    towards Russia by their pattern of *after* sightings on the in-country lists present (pattern index
    Σ_l 2^l a_l, list order of ``in_country_list``), and ``before_journeys`` [link_pattern], the same journeys
    by their pattern of *before* sightings. With no in-country list in the registers, the ``in_country_list``
    dim is empty and every journey has the one pattern "none" (nothing to learn from)."""
    months = np.asarray(months).astype("datetime64[M]")
    registers = records.registers
    present = set(registers["register"].astype(str)) if len(registers) else set()
    lists = [name for name in IN_COUNTRY_LISTS if name in present]
    n_patterns = 2 ** len(lists)
    shape = (len(sections), len(months), len(categories))
    linked = np.zeros((*shape, n_patterns), dtype=np.int64)
    before = np.zeros((*shape, n_patterns), dtype=np.int64)
    app = records.apprehensions
    if len(app) and len(months):
        start = months[0].astype("datetime64[D]").astype(np.int64)
        end = (months[-1] + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - 1
        day = app["date"].values.astype("datetime64[D]").astype(np.int64)
        month = app["date"].values.astype("datetime64[M]")
        person, people = pd.factorize(app[PERSON_ID].astype(str))
        t = np.searchsorted(months, month)
        # journeys: (person, month); the first apprehension gives the date and the journey's labels
        order = np.lexsort((day, t, person))
        key = person[order].astype(np.int64) * (len(months) + 1) + t[order]
        first = np.r_[True, key[1:] != key[:-1]]
        rows = order[first]
        j_person, j_day, j_month = person[rows], day[rows], t[rows]
        j_section = pd.Index(list(sections)).get_indexer(app["section_id"].astype(str).values[rows])
        j_category = pd.Index(list(categories)).get_indexer(
            app["category"].astype(str).values[rows]
        )
        linkable = (
            (app["direction"].astype(str).values[rows] == TOWARDS_RUSSIA)
            & (j_day - window_days >= start)
            & (j_day + window_days <= end)
            & (j_month < len(months))
            & (j_section >= 0)
            & (j_category >= 0)
        )
        j_person, j_day = j_person[linkable], j_day[linkable]
        cell = (j_section[linkable], j_month[linkable], j_category[linkable])
        pattern = np.zeros(j_person.size, dtype=np.int64)
        pattern_before = np.zeros(j_person.size, dtype=np.int64)
        span = np.int64(1 << 24)  # > any day number's range: person-major packed keys
        for index, name in enumerate(lists):
            entries = registers[registers["register"].astype(str) == name]
            e_person = people.get_indexer(entries[PERSON_ID].astype(str))
            e_day = entries["date"].values.astype("datetime64[D]").astype(np.int64)
            keep = e_person >= 0  # entries of people never apprehended here cannot link
            packed = np.sort(e_person[keep].astype(np.int64) * span + e_day[keep])
            base = j_person.astype(np.int64) * span
            after = np.searchsorted(packed, base + j_day + window_days, "right") - np.searchsorted(
                packed, base + j_day, "left"
            )
            seen_before = np.searchsorted(packed, base + j_day, "left") - np.searchsorted(
                packed, base + j_day - window_days, "left"
            )
            pattern += (after > 0).astype(np.int64) << index
            pattern_before += (seen_before > 0).astype(np.int64) << index
        np.add.at(linked, (*cell, pattern), 1)
        np.add.at(before, (*cell, pattern_before), 1)
    names = [
        "+".join(n for i, n in enumerate(lists) if b >> i & 1) or "none" for b in range(n_patterns)
    ]
    ds = xr.Dataset(
        {
            "linked_journeys": (("section", "month", "category", "link_pattern"), linked),
            "before_journeys": (("section", "month", "category", "link_pattern"), before),
        },
        coords={
            "section": list(sections),
            "month": months.astype("datetime64[ns]"),
            "category": list(categories),
            "link_pattern": names,
            "in_country_list": lists,
        },
    )
    ds.attrs["link_window_days"] = window_days
    ds["linked_journeys"].attrs["description"] = (
        "apprehended journeys towards Russia whose person is seen on the in-country lists of the pattern in "
        f"the {window_days} days after the journey's first apprehension (journeys within {window_days} days "
        "of either end of the records left out)"
    )
    ds["before_journeys"].attrs["description"] = (
        f"the same journeys by the pattern of lists their person is on in the {window_days} days before it"
    )
    return ds


# --------------------------------------------------------------------------------------------------------------
# How long after an apprehension the registers date their entries


DELAY_WINDOW_DAYS = LINK_WINDOW_DAYS
"""The longest delay `register_delays` measures: a register dating entries later still is read as dating them
within the window (its delay is underestimated)."""
_MIN_EXCESS = 20  # fewer delayed pairs than this beyond the background: not measured
# beyond this many (apprehension, entry) pairs, every k-th apprehension is used
_MAX_PAIRS = 20_000_000


@dataclass(frozen=True)
class RegisterDelay:
    """One register's entries of apprehended people by their delay after or before an apprehension.

    ``after[d]``: the pairs (apprehension, entry of the same person on the register) with the entry dated d days
    after the apprehension (d = 0 … window); ``before[d]``: d days before it (``before[0]`` is 0). The entries
    a person's apprehension itself led to lie after it only; entries of the person's other journeys (the
    background) lie on both sides, so ``after − before`` estimates how many entries the apprehensions led to by
    delay, as the border model's linkage reads its after and before sightings. ``events``: the apprehensions
    used (one a person-month, the last of the month, with both windows inside the records' span; towards Russia
    only for an in-country register)."""

    register: str
    after: np.ndarray
    before: np.ndarray
    events: int

    @property
    def window_days(self) -> int:
        return int(self.after.size - 1)

    @property
    def excess(self) -> int:
        """Pairs after the apprehensions beyond the background: the entries they led to."""
        return int(self.after.sum() - self.before.sum())

    @property
    def measured(self) -> bool:
        """Whether the excess is clear of the noise (at least 20 pairs, and three Poisson standard deviations
        of the two counts)."""
        noise = 3.0 * math.sqrt(float(self.after.sum() + self.before.sum()))
        return self.excess >= max(_MIN_EXCESS, noise)

    def cdf(self) -> np.ndarray:
        """G(d), d = 0 … window: the share of the entries the apprehensions led to that are dated within d days
        (the cumulative excess, made non-decreasing and kept in [0, 1]). Only for a `measured` register."""
        cum = np.cumsum((self.after - self.before).astype(np.float64)) / max(self.excess, 1)
        return np.clip(np.maximum.accumulate(cum), 0.0, 1.0)

    def quantile(self, q: float) -> int:
        """The delay in days within which the share `q` of the entries are dated."""
        return int(np.argmax(self.cdf() >= q - 1e-12))

    def share_kept(self, days: int) -> tuple[float, float]:
        """`share_kept` of the excess by delay (with its Poisson standard error), for a window of `days`."""
        return share_kept(self.after - self.before, days, self.after + self.before)


def share_kept(
    counts: np.ndarray, days: int, variance: np.ndarray | None = None
) -> tuple[float, float]:
    """The share of a register's entries, of events spread evenly over a window of `days` days, that fall
    within the window too, and its standard error: Σ_d c_d (1 − d/T)⁺ / Σ_d c_d, T = `days`, c_d = `counts[d]`
    the entries dated d days after their event (d = 0, 1, …; any weights). A delay of 0 keeps every entry; a
    delay spread evenly over 0 … T days, about half; a constant delay D < T, 1 − D/T. `variance`: the counts'
    variances (independent), for the delta-method standard error (0 without). The share is kept in [0, 1]."""
    c = np.asarray(counts, dtype=np.float64)
    total = float(c.sum())
    if days <= 0 or total <= 0:
        return 0.0, 0.0
    weight = np.clip(1.0 - np.arange(c.size) / days, 0.0, None)
    share = float(weight @ c) / total
    se = 0.0
    if variance is not None:
        se = math.sqrt(float(((weight - share) ** 2) @ np.asarray(variance, np.float64))) / total
    return min(max(share, 0.0), 1.0), se


def uniform_delays(max_days: int) -> np.ndarray:
    """The counts of a delay spread evenly over 0 … `max_days` days (0: every entry dated at its event)."""
    return np.ones(int(max_days) + 1)


def register_delays(
    records: RecordSet, months: np.ndarray, *, window_days: int = DELAY_WINDOW_DAYS
) -> dict[str, RegisterDelay]:
    """Each register present (in the fixed order of the lists): its entries of apprehended people by their delay
    after and before the apprehensions (`RegisterDelay`), over the records' month span `months` (the first to
    the last month of the apprehensions, totals and checkpoint records). An apprehension counts when both of
    its windows of `window_days` lie inside the span; one a person-month (the month's last, the nearest to the
    crossing that follows it); for the in-country registers only the apprehensions towards Russia, the journeys
    that can lead to their entries (an apprehension on the way out follows a stay, and its entries)."""
    months = np.asarray(months).astype("datetime64[M]")
    registers = records.registers
    present = set(registers["register"].astype(str)) if len(registers) else set()
    names = [name for name in REGISTERS if name in present]
    w = int(window_days)
    empty = {
        n: RegisterDelay(n, np.zeros(w + 1, np.int64), np.zeros(w + 1, np.int64), 0) for n in names
    }
    app = records.apprehensions
    if not names or not len(app) or not len(months):
        return empty
    start = months[0].astype("datetime64[D]").astype(np.int64)
    end = (months[-1] + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - 1
    person, people = pd.factorize(app[PERSON_ID].astype(str))
    towards = app["direction"].astype(str).values == TOWARDS_RUSSIA
    events = {False: _events(app, person, np.ones(len(app), bool), start, end, w)}
    span = np.int64(1 << 24)  # > any day number: person-major packed keys
    out = {}
    for name in names:
        # an in-country register follows journeys into Russia: only those are its events (as in the linkage)
        in_country = name in IN_COUNTRY_LISTS
        if in_country not in events:
            events[in_country] = _events(app, person, towards, start, end, w)
        ev_person, ev_day = events[in_country]
        entries = registers[registers["register"].astype(str) == name]
        r_person = people.get_indexer(entries[PERSON_ID].astype(str))
        r_day = entries["date"].values.astype("datetime64[D]").astype(np.int64)
        keep = r_person >= 0  # entries of people never apprehended cannot pair
        packed = np.sort(r_person[keep].astype(np.int64) * span + r_day[keep])
        base = ev_person * span + ev_day
        lo = np.searchsorted(packed, base - w, "left")
        n = np.searchsorted(packed, base + w, "right") - lo
        stride = int(n.sum() // _MAX_PAIRS) + 1  # a bound on memory for very large records
        if stride > 1:
            lo, n, ev_day = lo[::stride], n[::stride], ev_day[::stride]
        total = int(n.sum())
        first = np.repeat(np.cumsum(n) - n, n)
        index = np.repeat(lo, n) + (np.arange(total) - first)
        delay = (packed[index] % span) - np.repeat(ev_day, n)
        after = np.bincount(delay[delay >= 0], minlength=w + 1)[: w + 1]
        before = np.bincount(-delay[delay < 0], minlength=w + 1)[: w + 1]
        out[name] = RegisterDelay(name, after.astype(np.int64), before.astype(np.int64), lo.size)
    return out


def _events(
    app: pd.DataFrame, person: np.ndarray, use: np.ndarray, start: int, end: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """(person, day) of the apprehensions `use` selects, one a person-month (the month's last), whose windows of
    `w` days either side lie inside the days `start` … `end`."""
    day = app["date"].values.astype("datetime64[D]").astype(np.int64)[use]
    month = app["date"].values.astype("datetime64[M]").astype(np.int64)[use]
    who = person[use].astype(np.int64)
    order = np.lexsort((day, month, who))
    key = who[order] * (1 << 32) + month[order]
    last = np.r_[key[1:] != key[:-1], True] if key.size else np.zeros(0, bool)
    e_person, e_day = who[order][last], day[order][last]
    inside = (e_day - w >= start) & (e_day + w <= end)
    return e_person[inside], e_day[inside]
