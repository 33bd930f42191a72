"""`data_summary`: the per-section report of what the records hold, in capture–recapture terms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from estim.records.recordset import RecordSet
from estim.statistics.coding import (
    _code_apprehensions,
    _code_checkpoint_records,
    _code_totals,
    _codes,
    _flat_index,
    _labels,
)


def data_summary(records: RecordSet) -> pd.DataFrame:
    """One row per section (sections-table order): what the records hold, in capture–recapture terms.

    Columns:

    * ``apprehension_records``: rows in the apprehension records.
    * ``distinct_people``: distinct persons among them (``<NA>`` for sections without individual records:
      the number of people behind monthly totals is unknown).
    * ``apprehensions``: individual records plus monthly totals (a section-month is in one or the other);
      ``<NA>`` for a section with neither (no apprehension data: not 0 apprehensions).
    * ``reapprehension_rate``: Espenshade's repeated-trials estimator of the per-attempt apprehension
      probability, re-apprehensions / apprehensions, where a re-apprehension is a further apprehension of the
      same person in the same section and calendar month (a journey's retries): (apprehensions − distinct
      person-months) / apprehensions. Within the month because people return in later months on new journeys,
      and pooling those would overstate the probability. NaN without individual records.
    * ``legal_crossings``: legal crossings (citizens + foreigners) at all the section's checkpoints, all months;
      ``<NA>`` for a section none of whose checkpoints has a checkpoint record (nothing reported: not 0
      crossings).
    * ``mean_wait_minutes``: mean waiting time at the section's checkpoints, weighted by legal crossings (NaN
      when there were none).
    """
    sections = _labels(records.sections, "section_id", "sections")
    checkpoints = _labels(records.checkpoints, "checkpoint_id", "checkpoints")
    n_sections = len(sections)
    appr = _code_apprehensions(records, sections)
    totals = _code_totals(records, sections)
    flows = _code_checkpoint_records(records, checkpoints)

    n_records = np.bincount(appr.section, minlength=n_sections)
    has_records = n_records > 0
    # Distinct (section, person) pairs: one sort of a packed key, then count the first of each run.
    n_people = max(appr.n_people, 1)
    pair = _flat_index((appr.section, n_sections), (appr.person, n_people))
    pair.sort()
    first = np.ones(pair.size, dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    distinct = np.bincount(pair[first] // n_people, minlength=n_sections)
    del pair, first
    total_counts = np.zeros(n_sections, dtype=np.int64)  # exact integers, as for the crossings
    np.add.at(total_counts, totals.section, totals.count)
    apprehensions = n_records + total_counts
    reported = has_records | (np.bincount(totals.section, minlength=n_sections) > 0)

    # Distinct (section, month, person) triples: the journeys seen, for Espenshade's estimator.
    month0 = int(appr.month.min()) if appr.month.size else 0
    n_months = int(appr.month.max()) - month0 + 1 if appr.month.size else 1
    triple = _flat_index(
        (appr.section, n_sections), (appr.month - month0, n_months), (appr.person, n_people)
    )
    triple.sort()
    first = np.ones(triple.size, dtype=bool)
    first[1:] = triple[1:] != triple[:-1]
    person_months = np.bincount(triple[first] // (n_months * n_people), minlength=n_sections)
    del triple, first
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(has_records, (n_records - person_months) / np.maximum(n_records, 1), np.nan)

    cp_section = _codes(records.checkpoints["section_id"], sections, "checkpoints", "section_id")
    row_section = cp_section[flows.checkpoint]
    legal = flows.values["crossings_citizens"] + flows.values["crossings_foreigners"]
    legal_by_section = np.bincount(row_section, weights=legal, minlength=n_sections)
    wait_sum = np.bincount(row_section, weights=legal * flows.wait, minlength=n_sections)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_wait = np.where(legal_by_section > 0, wait_sum / legal_by_section, np.nan)
    # Exact integer sum for the crossings (float weights could lose units above 2**53).
    legal_int = np.zeros(n_sections, dtype=np.int64)
    np.add.at(legal_int, row_section, legal)
    flows_reported = np.bincount(row_section, minlength=n_sections) > 0

    out = pd.DataFrame(
        {
            "apprehension_records": n_records.astype(np.int64),
            # <NA>, not 0, where the people behind monthly totals are unknown.
            "distinct_people": pd.arrays.IntegerArray(distinct.astype(np.int64), mask=~has_records),
            # <NA>, not 0, where the section has neither records nor a totals row: nothing reported.
            "apprehensions": pd.arrays.IntegerArray(apprehensions.astype(np.int64), mask=~reported),
            "reapprehension_rate": rate.astype(np.float64),
            # <NA>, not 0, where none of the section's checkpoints reported a month.
            "legal_crossings": pd.arrays.IntegerArray(legal_int, mask=~flows_reported),
            "mean_wait_minutes": mean_wait.astype(np.float64),
        },
        index=pd.Index(list(sections), name="section"),
    )
    return out
