"""A surveyed section's months without individual apprehension records in the border model's data
(`estim.families.border.data.border_data`).

Before: a section sections.csv declares surveyed with no record at all (and no monthly total) was refused as a
``month_gap`` whose advice was to write its months as 0, i.e. a section where nobody is ever apprehended; and
a surveyed section with six consecutive months removed from apprehensions (Omsk, ~100 records in its median
month) was built without a word, those months read as months nobody was apprehended in. And a section
sections.csv declares surveyed but reported by monthly totals only was fitted as an unsurveyed one, and a section
it declares not surveyed but with individual records as a surveyed one, both without a word (the files
contradict each other, and the model reads the apprehension files). The references are the shipped records with
a section's records removed, thinned or turned into monthly totals, never estim's output on the same input.
"""

from __future__ import annotations

import dataclasses
import warnings

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.border.data import border_data
from estim.families.border.data_kind import records_data
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.statistics import sufficient_statistics


@pytest.fixture(scope="module")
def records():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


def _without(records, keep):
    a = records.apprehensions
    return dataclasses.replace(records, apprehensions=a[keep(a)].reset_index(drop=True))


def _months(a):
    return pd.to_datetime(a["date"]).dt.to_period("M").astype(str)


def test_declared_surveyed_section_without_any_record_is_refused_by_name(records):
    gone = _without(records, lambda a: a["section_id"].astype(str) != "omsk")
    with pytest.raises(EstimInputError, match="surveyed_without_records") as refused:
        records_data(gone)
    text = str(refused.value)
    assert "sections.csv declares section omsk surveyed" in text
    assert "apprehensions holds no record" in text
    assert "orenburg" not in text


def test_busy_surveyed_section_missing_six_months_is_refused(records):
    hole = [f"2012-{m:02d}" for m in range(3, 9)]
    gap = _without(
        records, lambda a: ~((a["section_id"].astype(str) == "omsk") & _months(a).isin(hole))
    )
    with pytest.raises(EstimInputError, match="surveyed_month_gap") as refused:
        records_data(gap)
    text = str(refused.value)
    assert "section omsk in 2012-03 … 2012-08 (6 of 144 months" in text
    assert "apprehensions holds no record" in text

    # declared true zeros: built, with a warning, the months read as 0
    stats = sufficient_statistics(gap, period="month", occasion=None)
    with pytest.warns(UserWarning, match="omsk in 2012-03 … 2012-08.*declared months nobody"):
        data = border_data(
            stats, gap.sections, gap.policy_events, linkage=None, allow_empty_months=True
        )
    assert int(data["apprehensions"].sel(section="omsk", month="2012-05-01").sum()) == 0


def test_a_survey_that_ends_early_is_refused_however_long_the_gap(records):
    """Omsk's records ending in 2013-12, the other sections' data going on to 2017: 48 of 144 months without
    records. The quiet-month count was the quartile over every month, the missing ones as zeros: a third of
    the span missing made it 0, and the gap was only warned of (the months read as nobody apprehended) where
    six missing months were refused. Over the months with records it is ~100."""
    ended = _without(
        records,
        lambda a: ~((a["section_id"].astype(str) == "omsk") & (_months(a) > "2013-12")),
    )
    with pytest.raises(EstimInputError, match="surveyed_month_gap") as refused:
        records_data(ended)
    assert "section omsk in 2014-01 … 2017-12 (48 of 144 months" in str(refused.value)


def test_sparse_surveyed_section_missing_months_is_warned_of(records):
    a = records.apprehensions
    omsk = a["section_id"].astype(str) == "omsk"
    # Omsk thinned to its first 2 records a month (e^(-2) ≈ 0.14 a month, ~19 somewhere in 144 months: a
    # month with none may be a true 0), and without any in 2013-03
    first = a[omsk].groupby(_months(a[omsk])).head(2).index
    thin = a.index.isin(first) & ~_months(a).isin(["2013-03"])
    sparse = dataclasses.replace(records, apprehensions=a[~omsk | thin].reset_index(drop=True))
    with pytest.warns(UserWarning, match=r"omsk in 2013-03 \(1 of 144 months; 2 "):
        data = records_data(sparse)
    assert int(data["apprehensions"].sel(section="omsk", month="2013-03-01").sum()) == 0


def test_a_long_run_without_records_in_a_sparse_section_is_refused(records):
    """Six months in a row without records where the quiet months hold 2: 144·e^(−2·6) ≈ 0.0009 < 0.001."""
    a = records.apprehensions
    omsk = a["section_id"].astype(str) == "omsk"
    first = a[omsk].groupby(_months(a[omsk])).head(2).index
    thin = a.index.isin(first) & ~_months(a).isin([f"2013-{m:02d}" for m in range(1, 7)])
    sparse = dataclasses.replace(records, apprehensions=a[~omsk | thin].reset_index(drop=True))
    with pytest.raises(EstimInputError, match=r"omsk in 2013-01 … 2013-06 .*surveyed_month_gap"):
        records_data(sparse)


def test_shipped_records_build_without_a_gap_warning(records):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = records_data(records)
    assert list(data["section"].values[data["surveyed"].values]) == ["orenburg", "omsk"]


def _omsk_as_totals(records):
    """The shipped records with Omsk's individual apprehension records replaced by its monthly totals (each
    month × category × detector, zeros included, as the unsurveyed sections' totals are written)."""
    a = records.apprehensions
    omsk = a["section_id"].astype(str) == "omsk"
    shipped = records.apprehension_totals
    grid = shipped[shipped["section_id"].astype(str) == "astrakhan"][
        ["month", "category", "detected_by"]
    ]
    counts = (
        a[omsk]
        .assign(month=pd.to_datetime(a.loc[omsk, "date"]).dt.to_period("M").dt.to_timestamp())
        .groupby(["month", "category", "detected_by"])
        .size()
    )
    keys = pd.MultiIndex.from_frame(grid.astype({"category": str, "detected_by": str}))
    totals = grid.assign(
        section_id="omsk", apprehensions=counts.reindex(keys, fill_value=0).to_numpy()
    ).astype(shipped.dtypes.to_dict())
    assert int(totals["apprehensions"].sum()) == int(omsk.sum())
    return dataclasses.replace(
        records,
        apprehensions=a[~omsk].reset_index(drop=True),
        apprehension_totals=pd.concat([shipped, totals[shipped.columns]], ignore_index=True),
    )


def test_declared_surveyed_section_known_by_its_totals_alone_is_warned_of(records):
    totals = _omsk_as_totals(records)
    with pytest.warns(UserWarning, match="surveyed_from_totals") as said:
        data = records_data(totals)
    text = " ".join(str(w.message) for w in said if "surveyed_from_totals" in str(w.message))
    assert "sections.csv declares section omsk surveyed" in text
    assert "orenburg" not in text
    # read from its totals, as an unsurveyed section: every apprehension of the records is there
    assert not bool(data["surveyed"].sel(section="omsk"))
    assert int(data["apprehensions"].sel(section="omsk").sum()) == int(
        (records.apprehensions["section_id"].astype(str) == "omsk").sum()
    )


def test_section_with_records_declared_not_surveyed_is_warned_of(records):
    sections = records.sections.assign(
        surveyed=records.sections["surveyed"] & (records.sections["section_id"] != "omsk")
    )
    declared = dataclasses.replace(records, sections=sections)
    with pytest.warns(UserWarning, match="unsurveyed_with_records") as said:
        data = records_data(declared)
    text = " ".join(str(w.message) for w in said if "unsurveyed_with_records" in str(w.message))
    assert "sections.csv declares section omsk not surveyed" in text
    assert "orenburg" not in text
    # fitted from its records, as a surveyed section: its repeat frequencies are read
    assert bool(data["surveyed"].sel(section="omsk"))
    assert int(data["frequency"].sel(section="omsk").sum()) > 0
