"""The linkage of apprehended journeys to the in-country registers (estim/statistics/linkage.py), on records
built by hand: every count below is worked out from the dates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from estim.statistics.linkage import linkage_statistics
from tests.statistics.test_statistics import make_records

MONTHS = np.arange(np.datetime64("2010-01"), np.datetime64("2014-01"))  # four years
CATEGORIES = ("border_resident", "labour_migrant")


def _app(person, date, direction="to_russia", section="omsk", category="labour_migrant"):
    return {
        "person_id": person,
        "date": pd.Timestamp(date),
        "section_id": section,
        "direction": direction,
        "category": category,
    }


def _entry(person, register, date):
    return {"person_id": person, "register": register, "date": pd.Timestamp(date)}


def _stats(apprehensions, registers, window=400):
    records = make_records(apprehensions=apprehensions, registers=registers)
    return linkage_statistics(records, MONTHS, ["omsk", "orenburg"], CATEGORIES, window_days=window)


def test_patterns_after_and_before_the_journey_are_counted_per_cell():
    apps = [
        _app("a", "2012-03-05"),  # seen on both lists after; on police checks before
        _app("a", "2012-03-09"),  # same journey (same month): one journey, dated by its first day
        _app("b", "2012-03-20"),  # seen on overstays only, 399 days after: inside the window
        _app("c", "2012-03-21"),  # seen only 401 days after: outside
        _app("d", "2012-03-22", direction="to_kazakhstan"),  # not towards Russia: not linked
        _app("e", "2010-02-01"),  # too close to the start: its window before would be cut
        _app("f", "2013-11-01"),  # too close to the end
    ]
    regs = [
        _entry("a", "police_check", "2012-06-01"),
        _entry("a", "overstay", "2013-01-01"),
        _entry("a", "police_check", "2011-12-01"),  # before: 95 days
        _entry("b", "overstay", pd.Timestamp("2012-03-20") + pd.Timedelta(days=399)),
        _entry("c", "overstay", pd.Timestamp("2012-03-21") + pd.Timedelta(days=401)),
        _entry("d", "police_check", "2012-05-01"),
        _entry("z", "police_check", "2012-05-01"),  # never apprehended here
        _entry("a", "deportation", "2012-04-01"),  # not an in-country list
    ]
    ds = _stats(apps, regs)
    assert list(ds["in_country_list"].values) == ["police_check", "overstay"]
    assert list(ds["link_pattern"].values) == [
        "none",
        "police_check",
        "overstay",
        "police_check+overstay",
    ]
    cell = ds.sel(section="omsk", month=np.datetime64("2012-03"), category="labour_migrant")
    assert cell["linked_journeys"].values.tolist() == [1, 0, 1, 1]  # c none, b overstay, a both
    assert cell["before_journeys"].values.tolist() == [2, 1, 0, 0]  # a police check before
    # nothing else anywhere: d, e and f are not linkable
    assert int(ds["linked_journeys"].sum()) == 3 and int(ds["before_journeys"].sum()) == 3


def test_without_in_country_registers_every_journey_has_the_one_pattern():
    ds = _stats([_app("a", "2012-03-05")], [_entry("a", "deportation", "2012-04-01")])
    assert ds.sizes["in_country_list"] == 0
    assert list(ds["link_pattern"].values) == ["none"]
    assert int(ds["linked_journeys"].sum()) == 1
