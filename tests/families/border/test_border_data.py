"""The border model's data (estim/families/border/data.py) from the shipped synthetic records, against the
simulator's truth; and a border spec."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border import border_data
from estim.families.border.data import BYPASSER, CATEGORIES, no_bypass_flow
from estim.families.border.data_kind import records_data
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.run.spec import parse_spec
from estim.statistics import sufficient_statistics


@pytest.fixture(scope="module")
def records():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


@pytest.fixture(scope="module")
def data(records):
    return records_data(records)


@pytest.fixture(scope="module")
def truth():
    with xr.open_dataset(SYNTHETIC_DIR / "truth.nc") as t:
        return t.load()


def test_data_have_domain_dims_and_the_surveyed_sections(data, truth):
    assert data["apprehensions"].dims == ("section", "month", "category")
    assert set(data["section"].values[data["surveyed"].values]) == {"omsk", "orenburg"}
    assert list(data["category"].values) == list(CATEGORIES)
    # apprehensions equal the simulator's, cell by cell
    np.testing.assert_array_equal(
        data["apprehensions"].values,
        truth["apprehensions"].sel(section=data["section"], category=data["category"]).values,
    )
    # policy indicators computed from policy_events.csv equal the simulator's I_e(t)
    np.testing.assert_allclose(
        data["policy_in_force"].values, truth["policy_in_force"].values, atol=1e-12
    )
    # in a surveyed section-month each apprehended person is one journey: 1 ≤ A ≤ K when K > 0
    s = data["surveyed"].values
    assert (
        int(truth["abandoned"].sum()) == 0
    )  # retry probability 1: the model's assumption holds here
    a = data["apprehended_journeys"].values[s]
    k = data["apprehensions"].values[s]
    assert (a <= k).all() and ((a == 0) == (k == 0)).all()


def test_cells_without_foreign_flow_are_the_bypassers_of_those_months(data):
    mask = no_bypass_flow(data)
    flow = data["land_foreign_crossings"].values
    bypasser = list(CATEGORIES).index(BYPASSER)
    np.testing.assert_array_equal(mask[:, :, bypasser], flow == 0)
    assert not np.delete(mask, bypasser, axis=2).any()
    # no apprehended bypasser where no foreigner crossed
    assert (data["apprehensions"].values[mask] == 0).all()


def test_border_data_rejects_yearly_statistics(records):
    stats = sufficient_statistics(records, period="year", occasion=None)
    with pytest.raises(EstimInputError, match="period='month'"):
        border_data(stats, records.sections, records.policy_events, linkage=None)


def test_border_spec_reads_and_rejects_a_period():
    spec = parse_spec(
        {
            "name": "b",
            "family": "border",
            "seed": 1,
            "data": {"records": "data/synthetic"},
            "sampler": {"adaptation": "low_rank"},
        }
    )
    assert spec.sampler.adaptation == "low_rank"
    with pytest.raises(EstimInputError, match="period"):
        parse_spec(
            {
                "name": "b",
                "family": "border",
                "seed": 1,
                "data": {"records": "data/synthetic", "period": "2010"},
            }
        )


def test_a_month_nobody_reported_is_refused_not_read_as_no_apprehensions(records):
    """Monthly totals list every month, zeros included. A section-month left out of them (or a month in
    which no section has any apprehension data, the span being stretched by the checkpoint records) would
    be counted as 0 apprehensions: a confident wrong number. The same month written as 0 is accepted."""
    import dataclasses

    import pandas as pd

    totals = records.apprehension_totals
    month = pd.Timestamp("2010-05-01")
    hole = (totals["section_id"] == "astrakhan") & (totals["month"] == month)
    assert hole.sum() == 15 and totals.loc[hole, "apprehensions"].sum() > 0
    gap = dataclasses.replace(records, apprehension_totals=totals[~hole].reset_index(drop=True))
    with pytest.raises(EstimInputError, match=r"month_gap.*astrakhan: 2010-05 \(1 of 144 months\)"):
        records_data(gap)

    zeros = totals.copy()
    zeros.loc[hole, "apprehensions"] = 0
    data = records_data(dataclasses.replace(records, apprehension_totals=zeros))
    assert int(data["apprehensions"].sel(section="astrakhan", month=month).sum()) == 0

    checkpoints = records.checkpoint_records
    later = checkpoints[checkpoints["month"] == checkpoints["month"].max()].copy()
    later["month"] = pd.Timestamp("2018-01-01")
    stretched = dataclasses.replace(
        records, checkpoint_records=pd.concat([checkpoints, later], ignore_index=True)
    )
    with pytest.raises(EstimInputError, match="month_gap") as refused:
        records_data(stretched)
    # the surveyed sections too: their records end in 2017 as well
    assert "omsk: 2018-01 (1 of 145 months)" in str(refused.value)
    assert "astrakhan: 2018-01 (1 of 145 months)" in str(refused.value)
