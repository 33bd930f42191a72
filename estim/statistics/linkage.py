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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from estim.records.recordset import PERSON_ID, RecordSet
from estim.records.schemas import IN_COUNTRY_REGISTERS

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
