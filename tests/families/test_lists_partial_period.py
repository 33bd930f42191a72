"""A period's list table against the registers' dating (`estim.families.lists.data.register_dating`).

A person is on a list of a period only by an entry dated in it, and registers date an entry some time after the
event (the simulator: up to 365 days after the crossing). Records cut at June held a half-year table with a
quarter of its apprehension–register overlap; list_table returned it without a word and the stepwise N̂ of the
shipped records cut at June 2017 was 23,418 against the full year's 15,027. The references here are the
simulator's own delays (its configuration) and records built by hand with known delays, whose shares are
worked out by hand and by counting people, never estim's output."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from records_fixtures import CLEAN_CSV, write_dataset

from estim import simulate as sim
from estim.errors import EstimInputError
from estim.families.lists.data import LISTS, list_table
from estim.records import load_records
from estim.statistics import sufficient_statistics
from estim.statistics.linkage import register_delays, share_kept, uniform_delays

KEY = b"test-key"


def _cut(records, last: str):
    """The records as if they had stopped on `last`: every table with a date or month cut there."""
    out = {}
    for f in dataclasses.fields(records):
        frame = getattr(records, f.name)
        if not isinstance(frame, pd.DataFrame) or not len(frame):
            continue
        column = (
            "date" if "date" in frame.columns else "month" if "month" in frame.columns else None
        )
        if column is not None:
            dates = pd.to_datetime(frame[column].astype(str))
            out[f.name] = frame[dates <= pd.Timestamp(last)].reset_index(drop=True)
    return dataclasses.replace(records, **out)


def _shares(table) -> dict[str, float]:
    return json.loads(table.attrs["register_share_kept"])


# --------------------------------------------------------------------------------------------------------------
# The share of an overlap a window keeps, by hand


def test_share_kept_by_hand():
    # a delay spread evenly over 0 … 365 days: a year keeps exactly half, 182 days exactly a quarter
    # (Σ_{d<T} (T − d)/T over 366 delays = (T + 1)/2 / 366 · T/T)
    assert share_kept(uniform_delays(365), 365)[0] == pytest.approx(0.5)
    assert share_kept(uniform_delays(365), 182)[0] == pytest.approx(183 / 732)
    # a constant delay of 200 days: events in the first 165 days of a year keep their entry
    constant = np.zeros(201)
    constant[200] = 7
    assert share_kept(constant, 365)[0] == pytest.approx(165 / 365)
    assert share_kept(constant, 91)[0] == 0.0
    # dated at the event: everything kept
    assert share_kept(uniform_delays(0), 31)[0] == 1.0


# --------------------------------------------------------------------------------------------------------------
# Records built by hand: one apprehension a day for four years, each person police-checked after a
# known delay, every third also on the overstay register on the day of the apprehension

_APPR = "A{i},{date},omsk,PK{i:010d},KAZ,true,to_russia,no_documents,patrol,border_resident"
_REG = "R{j},{register},PK{i:010d},{date}"
START = pd.Timestamp("2009-01-01")
END = pd.Timestamp("2012-12-31")
PEOPLE = 1461  # 2009 – 2012, one a day


def _delay(i: int, spread: bool) -> int:
    return (37 * i) % 366 if spread else 0  # spread: every delay of 0 … 365 days, evenly


def _hand_records(tmp_path, spread: bool = True):
    appr, reg = [CLEAN_CSV["apprehensions"][0]], [CLEAN_CSV["registers"][0]]
    for i in range(PEOPLE):
        day = START + pd.Timedelta(days=i)
        appr.append(_APPR.format(i=i, date=day.date()))
        entries = [("police_check", day + pd.Timedelta(days=_delay(i, spread)))]
        if i % 3 == 0:
            entries.append(("overstay", day))
        # someone never apprehended, on one register that day: no list inside another
        if i % 2 == 0:
            register = "police_check" if i % 4 == 0 else "overstay"
            reg.append(_REG.format(j=len(reg), register=register, i=PEOPLE + i, date=day.date()))
        for register, date in entries:
            if date <= END:  # a register running past the records would only add a warning
                reg.append(_REG.format(j=len(reg), register=register, i=i, date=date.date()))
    folder = write_dataset(
        tmp_path / ("spread" if spread else "at_event"), apprehensions=appr, registers=reg
    )
    return load_records(folder, key=KEY)


def _counted_share(first: str, last: str, spread: bool = True) -> float:
    """Of the people apprehended from `first` to `last`, the share whose police check is dated in it too:
    the overlap the period's table keeps, counted person by person."""
    lo, hi = pd.Timestamp(first), pd.Timestamp(last)
    inside = kept = 0
    for i in range(PEOPLE):
        day = START + pd.Timedelta(days=i)
        if lo <= day <= hi:
            inside += 1
            kept += lo <= day + pd.Timedelta(days=_delay(i, spread)) <= hi
    return kept / inside


def _hand_share(days: int, end: str = "2012-12-31") -> float:
    """The share a window of `days` keeps under the delays of the people whose apprehension has 400 days of
    records either side, the records ending on `end` (those the measurement reads): the mean of (1 − d/T)⁺
    over their delays."""
    first, last = START + pd.Timedelta(days=400), pd.Timestamp(end) - pd.Timedelta(days=400)
    delays = [
        _delay(i, True) for i in range(PEOPLE) if first <= START + pd.Timedelta(days=i) <= last
    ]
    return float(np.mean([max(0.0, 1 - d / days) for d in delays]))


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    return _hand_records(tmp_path_factory.mktemp("hand"))


def test_the_delays_measured_are_those_written(hand):
    months = sufficient_statistics(hand, period="year", occasion=None)["month"].values
    police = register_delays(hand, months)["police_check"]
    assert police.measured and police.before.sum() == 0  # one apprehension and one entry a person
    assert police.share_kept(365)[0] == pytest.approx(_hand_share(365), abs=1e-12)
    assert police.share_kept(181)[0] == pytest.approx(_hand_share(181), abs=1e-12)
    overstay = register_delays(hand, months)["overstay"]
    assert overstay.share_kept(31)[0] == 1.0 and overstay.quantile(0.9) == 0


def test_records_cut_at_june_are_refused(hand):
    """Before: the half year's table was returned, every police check of a person apprehended after
    mid-January outside it for some of them; counted by person, it keeps about a quarter of its overlap."""
    counted = _counted_share("2011-01-01", "2011-06-30")
    assert 0.2 < counted < 0.3
    cut = _cut(hand, "2011-06-30")
    with pytest.raises(EstimInputError) as refused:
        list_table(cut, period="2011")
    message = str(refused.value)
    assert (
        "records, period 2011, whole border: the records cover only 6 of the period's 12 months"
        in message
    )
    assert "2011-01 … 2011-06, 181 days" in message
    hand_share = _hand_share(181, end="2011-06-30")
    assert f"whom 'police_check' records, about {100 * hand_share:.0f} %" in message
    assert hand_share == pytest.approx(counted, abs=0.02)  # what the count by person says
    # a spec's data refuse it alike (LISTS.from_records is what `estim fit` calls)
    fields = {"period": "2011", "period_kind": "year", "section": None}
    with pytest.raises(EstimInputError, match="cover only 6 of the period's 12 months"):
        LISTS.from_records(cut, fields)
    # declared as dated at the event, the table is built as before (and says it covers half the year)
    with pytest.warns(UserWarning, match="cover only 6 of the period's 12 months"):
        table = list_table(cut, period="2011", register_delay_days=0)
    assert table.attrs["register_delay"] == "declared 0 days"
    assert _shares(table) == {"police_check": 1.0, "overstay": 1.0}


def test_a_short_period_is_refused_wherever_it_lies(hand):
    """Not the end of the records: a whole quarter in their middle keeps an eighth of its overlap."""
    assert _counted_share("2010-04-01", "2010-06-30") < 0.2
    with pytest.raises(
        EstimInputError, match=r"period 2010Q2, whole border: the period is 91 days long"
    ):
        list_table(hand, period="2010Q2", period_kind="quarter")


def test_a_full_year_keeps_half_and_says_so(hand):
    counted = _counted_share("2011-01-01", "2011-12-31")
    assert counted == pytest.approx(0.5, abs=0.03)
    with pytest.warns(
        UserWarning, match=r"whom 'police_check' records, about 5\d %.*N̂ may be inflated"
    ):
        table = list_table(hand, period="2011")
    assert _shares(table)["police_check"] == pytest.approx(_hand_share(365), abs=1e-3)
    assert _shares(table)["police_check"] == pytest.approx(counted, abs=0.03)
    assert _shares(table)["overstay"] == 1.0
    assert table.attrs["period_days"] == 365 and table.attrs["period_months_covered"] == 12


def test_registers_dated_at_the_event_pass_a_half_year(tmp_path):
    records = _cut(_hand_records(tmp_path, spread=False), "2011-06-30")
    assert _counted_share("2011-01-01", "2011-06-30", spread=False) == 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # everyone apprehended is police-checked that day: the apprehensions lie inside the police checks,
        # which a fit refuses (`refuse_nested_lists`) and this test of the dating does not need
        table = list_table(records, period="2011", allow_unlinked=True)
    said = [str(w.message) for w in caught]
    assert not any("inflated" in s or "could not measure" in s for s in said), said
    assert any("cover only 6 of the period's 12 months" in s for s in said), said
    assert _shares(table) == {"police_check": 1.0, "overstay": 1.0}
    assert table.attrs["period_days"] == 181


# --------------------------------------------------------------------------------------------------------------
# The simulator: police checks and overstays dated U{0 … 365} days after the crossing, which follows the
# journey's last apprehension on the same day (docs/simulator.md, § 6)

CONFIG = sim.SimulationConfig(years=6)  # 2006 – 2011


def _true_share(days: int, max_delay: int) -> float:
    """The simulator's delays, spread evenly over 0 … max_delay days: (1/T) Σ_{u<T} min(1, (u + 1)/(Δ + 1))."""
    return float(np.mean([min(1.0, (u + 1) / (max_delay + 1)) for u in range(days)]))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    sim.write_simulation(sim.simulate(seed=3, config=CONFIG), folder)
    return load_records(folder, key=KEY)


def test_the_simulators_delays_are_measured(simulated):
    months = sufficient_statistics(simulated, period="year", occasion=None)["month"].values
    delays = register_delays(simulated, months)
    for name in ("police_check", "overstay"):
        assert CONFIG.register_delay_days[name] == 365
        for days in (181, 365):
            share, se = delays[name].share_kept(days)
            assert share == pytest.approx(_true_share(days, 365), abs=max(0.06, 3 * se)), name
        assert 300 <= delays[name].quantile(0.9) <= 370


def test_simulated_records_cut_at_june_are_refused(simulated):
    cut = _cut(simulated, "2011-06-30")
    with pytest.raises(
        EstimInputError, match=r"period 2011, whole border: the records cover only 6"
    ):
        list_table(cut, period="2011")
    # the full year of the uncut records: warned of, with about half of each in-country overlap kept
    with pytest.warns(UserWarning, match="N̂ may be inflated"):
        year = list_table(simulated, period="2009")
    for name in ("police_check", "overstay"):
        assert _shares(year)[name] == pytest.approx(_true_share(365, 365), abs=0.08)
