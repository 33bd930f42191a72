"""``totals_row`` of the sufficient statistics: which section × month × category × detector cells
apprehension_totals lists (a row of 0 included), so that a missing row can be told from a 0. The reference is
the shipped apprehension_totals.csv read with pandas."""

from __future__ import annotations

import dataclasses

import pandas as pd

from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.statistics import sufficient_statistics


def test_totals_row_marks_the_rows_the_file_lists():
    records = load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)
    t = records.apprehension_totals
    drop = (t["section_id"] == "astrakhan") & (t["category"] == "smuggler")
    gone = dataclasses.replace(records, apprehension_totals=t[~drop].reset_index(drop=True))
    rows = sufficient_statistics(gone, period="month", occasion=None)["totals_row"]
    csv = pd.read_csv(SYNTHETIC_DIR / "apprehension_totals.csv", dtype=str)
    kept = ~((csv["section_id"] == "astrakhan") & (csv["category"] == "smuggler"))
    assert int(rows.sum()) == int(kept.sum()) == 21_600 - 144 * 3
    assert not bool(rows.sel(section="astrakhan", category="smuggler").any())
    assert bool(rows.sel(section="astrakhan", category="labour_migrant").all())
    assert not bool(rows.sel(section=["omsk", "orenburg"]).any())  # surveyed: no totals
    # a row of 0 is a row
    zero = csv[kept & (csv["apprehensions"] == "0")].iloc[0]
    cell = rows.sel(
        section=zero["section_id"],
        month=f"{zero['month']}-01",
        category=zero["category"],
        detector=zero["detected_by"],
    )
    assert bool(cell)
