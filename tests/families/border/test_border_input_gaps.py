"""Input the border model's data (`estim.families.border.data.border_data`) used to read without a word, or
refused in words that did not say where.

Before: a road checkpoint of checkpoints.csv without records dropped out of its section's land flow (Omsk's
foreign crossings −30 % every month); a policy event of one section was dropped, one outside the span kept
as a pure-prior effect, two of one kind given one label; missing rows of apprehension_totals were read as 0;
a section-month without land flow was refused as "land flows/waits missing for some section-month"; and a
surveyed section's month given as totals as "the repeat-apprehension frequencies add up to 0". The
references are the shipped CSV files read with pandas (hand counts), never estim's output on the same input.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.border import build_border
from estim.families.border.data import border_data
from estim.families.border.data_kind import records_data
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.statistics import sufficient_statistics


@pytest.fixture(scope="module")
def records():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


@pytest.fixture(scope="module")
def stats(records):
    return sufficient_statistics(records, period="month", occasion=None)


def _csv(name):
    return pd.read_csv(SYNTHETIC_DIR / f"{name}.csv", dtype=str)


def _flows(records, keep):
    c = records.checkpoint_records
    return dataclasses.replace(records, checkpoint_records=c[keep(c)].reset_index(drop=True))


def _messages(said, rule):
    return " ".join(str(w.message) for w in said if rule in str(w.message))


# --- A: a land checkpoint without records --------------------------------------------------------------------


def test_a_road_checkpoint_without_any_record_is_warned_of(records):
    gone = _flows(records, lambda c: c["checkpoint_id"] != "omsk-road-1")
    with pytest.warns(UserWarning, match="checkpoint_not_reporting") as said:
        data = records_data(gone)
    text = _messages(said, "checkpoint_not_reporting")
    assert "omsk-road-1 (road, section omsk): no record in any month" in text
    assert "omsk-road-2" not in text and "orenburg" not in text
    # the flow then leaves it out: Omsk's other road, rail and river checkpoints in 2007-01, from the files
    cp, rec = _csv("checkpoints"), _csv("checkpoint_records")
    land = cp[(cp["section_id"] == "omsk") & cp["type"].isin(["road", "rail", "river"])]
    jan = rec[(rec["month"] == "2007-01") & rec["checkpoint_id"].isin(land["checkpoint_id"])]
    others = jan[jan["checkpoint_id"] != "omsk-road-1"]["crossings_foreigners"].astype(int).sum()
    assert int(jan["crossings_foreigners"].astype(int).sum()) == 102_303  # the shipped flow
    assert others == 71_619
    assert int(data["land_foreign_crossings"].sel(section="omsk", month="2007-01-01")) == others


def test_a_road_checkpoint_stopping_early_is_warned_of_with_its_months(records):
    stops = _flows(
        records,
        lambda c: ~((c["checkpoint_id"] == "omsk-road-1") & (c["month"] >= "2016-01-01")),
    )
    with pytest.warns(UserWarning, match="checkpoint_not_reporting") as said:
        records_data(stops)
    text = _messages(said, "checkpoint_not_reporting")
    assert (
        "omsk-road-1 (road, section omsk): no record in 2016-01 … 2017-12 (24 of 144 months)"
        in text
    )


def test_an_air_checkpoint_without_records_is_not_warned_of(records):
    """Air checkpoints are not in the land flow: nothing drops."""
    gone = _flows(records, lambda c: c["checkpoint_id"] != "omsk-air-1")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        records_data(gone)
    assert not _messages(said, "checkpoint_not_reporting")


# --- B: policy events ------------------------------------------------------------------------------------------


def _with_events(records, *rows):
    shipped = records.policy_events
    extra = pd.DataFrame(
        [
            {
                "event_id": e,
                "kind": k,
                "start_date": d,
                "section_id": s,
                "description": "x",
                "source": "x",
            }
            for e, k, d, s in rows
        ]
    ).astype(shipped.dtypes.to_dict())
    return pd.concat([shipped, extra], ignore_index=True)


def test_a_section_event_is_warned_of_and_left_out(records, stats):
    events = _with_events(records, ("omsk_permits-2007", "other", "2007-03-01", "omsk"))
    with pytest.warns(UserWarning, match="section_event") as said:
        data = border_data(stats, records.sections, events, linkage=None)
    text = _messages(said, "section_event")
    assert "omsk_permits-2007 (section_id omsk)" in text
    assert "border-wide" in text
    # the shipped file's three border-wide events, by kind
    assert list(data["event"].values) == list(_csv("policy_events")["kind"])


def test_events_that_change_nothing_in_the_span_are_warned_of_and_left_out(records, stats):
    events = _with_events(
        records,
        ("late-2019", "other", "2019-02-01", "*"),  # after the span (2006-01 … 2017-12)
        ("early-2005", "other", "2005-06-01", "*"),  # before it: in force every month
    )
    with pytest.warns(UserWarning, match="idle_policy_event") as said:
        data = border_data(stats, records.sections, events, linkage=None)
    text = _messages(said, "idle_policy_event")
    assert "late-2019 (from 2019-02-01, in force in no month)" in text
    assert "early-2005 (from 2005-06-01, in force in every month)" in text
    assert "other" not in list(data["event"].values)
    assert data.sizes["event"] == 3


def test_records_without_an_event_in_their_span_give_the_model_with_no_policy_effect(
    records, stats
):
    """Every event after the span leaves an `event` dimension of length 0 (as in a one-year simulation). The
    model builds, its gradient is finite, and its likelihood is the shipped model's with every policy effect
    at 0 (the reference: the same equations with events whose effect is nil)."""
    late = records.policy_events.assign(start_date=pd.Timestamp("2019-01-01").as_unit("s"))
    with pytest.warns(UserWarning, match="idle_policy_event"):
        none = build_border(border_data(stats, records.sections, late, linkage=None))
    shipped = build_border(
        border_data(stats, records.sections, records.policy_events, linkage=None)
    )
    assert none.named_vars_to_dims["log_policy_effect"] == ("event", "journey_category")
    assert len(none.coords["event"]) == 0
    point = none.initial_point()
    assert np.isfinite(none.compile_dlogp()(point)).all()
    at = {**point, "log_policy_effect": np.zeros((3, len(none.coords["journey_category"])))}

    def likelihood(model, values):
        return model.compile_logp(vars=model.observed_RVs + model.potentials)(values)

    assert np.isfinite(likelihood(none, point))
    assert likelihood(none, point) == pytest.approx(likelihood(shipped, at), rel=1e-12)
    moved = {**at, "log_policy_effect": np.full_like(at["log_policy_effect"], 0.3)}
    assert likelihood(shipped, moved) != pytest.approx(likelihood(shipped, at), rel=1e-6)


def test_two_border_wide_events_of_one_kind_are_refused(records, stats):
    events = _with_events(
        records,
        ("visa_rule-2008", "other", "2008-01-01", "*"),
        ("fence-2012", "other", "2012-06-01", "*"),
    )
    with pytest.raises(EstimInputError, match="event_kind_twice") as refused:
        border_data(stats, records.sections, events, linkage=None)
    text = str(refused.value)
    assert "policy_events" in text
    assert "other: visa_rule-2008, fence-2012" in text


# --- C: missing rows of apprehension_totals --------------------------------------------------------------------


def test_shipped_totals_list_every_cell():
    """10 sections without records × 144 months × 5 categories × 3 detectors, each once."""
    t = _csv("apprehension_totals")
    assert t["section_id"].nunique() == 10 and t["month"].nunique() == 144
    assert len(t) == 10 * 144 * 5 * 3
    assert not t.duplicated(["section_id", "month", "category", "detected_by"]).any()


def _totals(records, drop):
    t = records.apprehension_totals
    return dataclasses.replace(records, apprehension_totals=t[~drop(t)].reset_index(drop=True))


def test_a_category_absent_from_a_sections_totals_is_warned_of(records):
    gone = _totals(
        records, lambda t: (t["section_id"] == "astrakhan") & (t["category"] == "smuggler")
    )
    with pytest.warns(UserWarning, match="totals_row_missing") as said:
        data = records_data(gone)
    text = _messages(said, "totals_row_missing")
    assert (
        "section astrakhan in every month it reports (2006-01 … 2017-12): no row of category smuggler"
        in text
    )
    assert "volgograd" not in text
    assert int(data["apprehensions"].sel(section="astrakhan", category="smuggler").sum()) == 0


def test_a_month_with_only_some_rows_is_warned_of(records):
    gone = _totals(
        records,
        lambda t: (
            (t["section_id"] == "astrakhan")
            & (t["month"] == "2007-05-01")
            & (t["detected_by"] != "patrol")
        ),
    )
    with pytest.warns(UserWarning, match="totals_row_missing") as said:
        data = records_data(gone)
    text = _messages(said, "totals_row_missing")
    assert "section astrakhan in 2007-05: no row of detector technical, detector informant" in text
    # what is read: the patrol rows of the file alone
    t = _csv("apprehension_totals")
    patrol = t[
        (t["section_id"] == "astrakhan")
        & (t["month"] == "2007-05")
        & (t["detected_by"] == "patrol")
    ]
    got = data["apprehensions"].sel(section="astrakhan", month="2007-05-01").sum()
    assert int(got) == patrol["apprehensions"].astype(int).sum()


# --- D: a section-month without land flow ----------------------------------------------------------------------


def test_checkpoint_records_starting_late_are_refused_by_section_and_month(records):
    late = _flows(records, lambda c: c["month"] >= "2006-04-01")
    with pytest.raises(EstimInputError, match="land_flow_gap") as refused:
        records_data(late)
    text = str(refused.value)
    assert text.startswith("checkpoint_records:")
    assert "section astrakhan in 2006-01 … 2006-03 (3 of 144 months): none of its road" in text
    assert "section altai_republic in 2006-01 … 2006-03" in text


def test_a_section_with_only_an_air_checkpoint_is_refused_by_name(records):
    cp = records.checkpoints
    air = cp.assign(type=cp["type"].where(cp["section_id"] != "tyumen", "air"))
    with pytest.raises(EstimInputError, match="land_flow_gap") as refused:
        records_data(dataclasses.replace(records, checkpoints=air))
    text = str(refused.value)
    assert (
        "section tyumen in 2006-01 … 2017-12 (144 of 144 months): checkpoints.csv lists no road, rail or "
        "river checkpoint of it" in text
    )
    assert "omsk" not in text


def test_a_section_without_checkpoints_is_refused_by_name(records):
    cp, c = records.checkpoints, records.checkpoint_records
    none = dataclasses.replace(
        records,
        checkpoints=cp[cp["section_id"] != "tyumen"].reset_index(drop=True),
        checkpoint_records=c[c["checkpoint_id"] != "tyumen-road-1"].reset_index(drop=True),
    )
    with pytest.raises(EstimInputError, match="land_flow_gap") as refused:
        records_data(none)
    assert (
        "section tyumen in 2006-01 … 2017-12 (144 of 144 months): checkpoints.csv lists no road"
        in str(refused.value)
    )


# --- E: a surveyed section's month given as totals -------------------------------------------------------------


def test_a_surveyed_sections_months_as_totals_are_refused_by_name(records):
    a = records.apprehensions
    month = pd.to_datetime(a["date"]).dt.strftime("%Y-%m")
    moved = (a["section_id"] == "omsk") & month.isin(["2007-05", "2007-06"])
    counts = (
        a[moved]
        .assign(month=pd.to_datetime(month[moved] + "-01"))
        .groupby(["month", "category", "detected_by"])
        .size()
        .rename("apprehensions")
        .reset_index()
        .assign(section_id="omsk")
    )
    shipped = records.apprehension_totals
    totals = pd.concat(
        [shipped, counts[shipped.columns].astype(shipped.dtypes.to_dict())], ignore_index=True
    )
    mixed = dataclasses.replace(
        records, apprehensions=a[~moved].reset_index(drop=True), apprehension_totals=totals
    )
    with pytest.raises(EstimInputError, match="surveyed_month_from_totals") as refused:
        records_data(mixed)
    text = str(refused.value)
    assert text.startswith("apprehension_totals:")
    assert "section omsk in 2007-05 … 2007-06 (2 of 144 months)" in text
    assert "individual records in apprehensions for each month of a surveyed section" in text
    assert "orenburg" not in text
