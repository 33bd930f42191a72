"""List histories per period and per section × period (``list_period_count``, ``list_section_count``) against
tables worked out by hand and against brute-force loops over the raw rows that share no code with
estim.statistics."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from records_fixtures import CLEAN_CSV, write_dataset
from xarray import testing as xr_testing

from estim.errors import EstimInputError
from estim.families.lists.data import list_table
from estim.records import load_records
from estim.statistics import sufficient_statistics

KEY = b"test-key"
LISTS = ["police_check", "overstay", "deportation", "apprehensions"]

_APPR = (
    "{id},{date},{section},PK{person:010d},KAZ,true,to_russia,no_documents,patrol,border_resident"
)
_REG = "{id},{register},PK{person:010d},{date}"

# (date, section, person): the clean dataset's four, then across the 2010/2011 boundary
APPREHENSIONS = [
    ("2010-01-05", "omsk", 1),
    ("2010-01-17", "omsk", 2),
    ("2010-02-03", "omsk", 1),
    ("2010-01-20", "orenburg", 3),
    ("2010-12-31", "orenburg", 4),
    ("2011-01-01", "orenburg", 4),
    ("2011-03-01", "omsk", 2),
    ("2011-02-10", "omsk", 3),
]
# (register, person, date, section): the section is added in code (the register files carry none)
REGISTERS = [
    ("police_check", 2, "2010-03-01", "omsk"),
    ("overstay", 9, "2010-04-11", "kurgan"),
    ("deportation", 1, "2010-12-31", "omsk"),
    ("police_check", 1, "2011-01-01", "orenburg"),
    ("overstay", 4, "2011-02-15", "orenburg"),
    ("police_check", 9, "2010-06-30", "kurgan"),
    ("deportation", 3, "2011-01-05", "orenburg"),
    ("police_check", 5, "2012-05-01", "omsk"),  # after the last record: in no period
]


def _lines(apprehensions, registers) -> dict[str, list[str]]:
    appr = [CLEAN_CSV["apprehensions"][0]] + [
        _APPR.format(id=f"A{i}", date=d, section=s, person=p)
        for i, (d, s, p) in enumerate(apprehensions)
    ]
    reg = [CLEAN_CSV["registers"][0]] + [
        _REG.format(id=f"R{i}", register=r, person=p, date=d)
        for i, (r, p, d, _) in enumerate(registers)
    ]
    return {"apprehensions": appr, "registers": reg}


def _records(tmp_path, apprehensions=APPREHENSIONS, registers=REGISTERS, sections=False):
    folder = write_dataset(tmp_path / "records", **_lines(apprehensions, registers))
    records = load_records(folder, key=KEY)
    if sections:  # a register table that places its entries (rows keep file order)
        reg = records.registers.assign(section_id=[s for *_, s in registers])
        records = dataclasses.replace(records, registers=reg)
    return records


def _table(counts) -> dict[str, int]:
    """{pattern: people} of one period's (or section-period's) counts, zeros left out."""
    return {
        str(p): int(n) for p, n in zip(counts.list_pattern.values, counts.values, strict=True) if n
    }


def test_year_tables_by_hand(tmp_path):
    with pytest.warns(UserWarning, match=r"registers: 1 of the 8 entries .* 2010-01 … 2011-03"):
        ds = sufficient_statistics(_records(tmp_path), period="year", occasion=None)
    assert list(ds.list.values) == LISTS
    assert list(ds.period.values) == ["2010", "2011"]
    # every pattern of the 4 lists, in numeric order, spelled out by list_pattern_capture
    assert list(ds.list_pattern.values) == [format(h, "04b") for h in range(1, 16)]
    assert ds.list_pattern_capture.sel(list_pattern="1001").values.tolist() == [1, 0, 0, 1]
    # 2010: person 1 apprehended and deported (Dec 31), 2 apprehended and police-checked, 3 and 4
    # apprehended, 9 police-checked and overstaying; person 5's entry (2012) is in no period
    assert _table(ds.list_period_count.sel(period="2010")) == {
        "0011": 1,
        "1001": 1,
        "0001": 2,
        "1100": 1,
    }
    # 2011: 4 apprehended (Jan 1) and overstaying, 2 apprehended, 1 police-checked, 3 apprehended and deported
    assert _table(ds.list_period_count.sel(period="2011")) == {
        "0101": 1,
        "0001": 1,
        "1000": 1,
        "0011": 1,
    }
    # the whole span: each person once; person 5, seen only after the records stop, is on no list (the
    # whole-span table counted them as a person the apprehension records missed)
    whole = dict(zip(ds.list_history.values, ds.list_history_count.values.tolist(), strict=True))
    assert whole == {"1011": 1, "1001": 1, "0011": 1, "0101": 1, "1100": 1}
    assert ds.attrs["registers_out_of_span"] == 1
    # without a section_id on the registers there is no section table, and the attribute says why
    assert "list_section_count" not in ds
    assert ds.attrs["registers_unplaced"] == len(REGISTERS)


def test_period_boundaries_quarter_and_month(tmp_path):
    records = _records(tmp_path)
    q = sufficient_statistics(records, period="quarter", occasion=None).list_period_count
    assert _table(q.sel(period="2010Q1")) == {
        "0001": 2,
        "1001": 1,
    }  # the police check of Mar 1 is in Q1
    assert _table(q.sel(period="2010Q2")) == {"1100": 1}  # Apr 11 and Jun 30 both in Q2
    assert _table(q.sel(period="2010Q3")) == {}
    # Dec 31 and Jan 1 fall either side of the boundary
    assert _table(q.sel(period="2010Q4")) == {"0010": 1, "0001": 1}
    assert _table(q.sel(period="2011Q1")) == {"0101": 1, "0001": 1, "1000": 1, "0011": 1}
    m = sufficient_statistics(records, period="month", occasion=None).list_period_count
    assert _table(m.sel(period="2010-12")) == {"0010": 1, "0001": 1}
    assert _table(m.sel(period="2011-01")) == {"0001": 1, "1000": 1, "0010": 1}
    assert _table(m.sel(period="2011-02")) == {
        "0100": 1,
        "0001": 1,
    }  # 4's overstay, 3's apprehension
    assert m.period.values[-1] == "2011-03"  # person 5's entry of 2012-05 opens no period


def test_section_tables_by_hand(tmp_path):
    ds = sufficient_statistics(_records(tmp_path, sections=True), period="year", occasion=None)
    assert ds.attrs["registers_unplaced"] == 0
    c = ds.list_section_count
    assert c.dims == ("section", "period", "list_pattern")
    assert _table(c.sel(section="omsk", period="2010")) == {"0011": 1, "1001": 1}
    assert _table(c.sel(section="orenburg", period="2010")) == {"0001": 2}
    assert _table(c.sel(section="kurgan", period="2010")) == {"1100": 1}  # register people only
    # person 3 in 2011: apprehended in Omsk, deported from Orenburg: in both sections' tables
    assert _table(c.sel(section="omsk", period="2011")) == {"0001": 2}
    assert _table(c.sel(section="orenburg", period="2011")) == {"0101": 1, "1000": 1, "0010": 1}
    assert _table(c.sel(section="kurgan", period="2011")) == {}


def test_register_sections_are_checked_against_the_sections(tmp_path):
    records = _records(tmp_path, sections=True)
    bad = records.registers.copy()
    bad.loc[2, "section_id"] = "moscow"
    with pytest.raises(EstimInputError, match=r"registers: section_id .*moscow"):
        sufficient_statistics(dataclasses.replace(records, registers=bad), occasion=None)
    # one entry without a section: no section tables, and the count of unplaced entries
    part = records.registers.copy()
    part.loc[1, "section_id"] = pd.NA
    ds = sufficient_statistics(dataclasses.replace(records, registers=part), occasion=None)
    assert "list_section_count" not in ds and ds.attrs["registers_unplaced"] == 1


def _label(date: str, period: str) -> str:
    y, m = int(date[:4]), int(date[5:7])
    return {"year": f"{y}", "quarter": f"{y}Q{(m - 1) // 3 + 1}", "month": f"{y}-{m:02d}"}[period]


@pytest.mark.parametrize("period", ["year", "quarter", "month"])
def test_random_records_against_brute_force(tmp_path, period):
    """Random records: every period's and section-period's pattern table equals plain loops over the rows."""
    rng = np.random.default_rng(16)
    days = pd.date_range("2009-11-01", "2012-02-28").strftime("%Y-%m-%d").tolist()
    appr_days = [d for d in days if "2010-01-01" <= d <= "2011-12-31"]
    apprehensions = [
        (appr_days[rng.integers(len(appr_days))], ["omsk", "orenburg"][rng.integers(2)], p)
        for p in rng.integers(1, 60, size=250)
    ]
    registers = [
        (
            ["police_check", "overstay", "deportation"][rng.integers(3)],
            int(p),
            days[rng.integers(len(days))],
            ["omsk", "orenburg", "kurgan"][rng.integers(3)],
        )
        for p in rng.integers(30, 90, size=200)
    ]
    ds = sufficient_statistics(
        _records(tmp_path, apprehensions, registers, sections=True), period=period, occasion=None
    )
    periods = set(ds.period.values.tolist())
    whole: dict[tuple[str, int], set[str]] = defaultdict(set)
    by_section: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    entries = [(d, s, p, "apprehensions") for d, s, p in apprehensions]
    entries += [(d, s, p, r) for r, p, d, s in registers]
    for date, section, person, on in entries:
        label = _label(date, period)
        if label in periods:
            whole[(label, person)].add(on)
            by_section[(section, label, person)].add(on)

    def pattern(on: set[str]) -> str:
        return "".join("1" if name in on else "0" for name in LISTS)

    expected = Counter((label, pattern(on)) for (label, _), on in whole.items())
    expected_s = Counter((s, label, pattern(on)) for (s, label, _), on in by_section.items())
    got = ds.list_period_count.to_series()
    assert {k: v for k, v in got.items() if v} == dict(expected)
    got_s = ds.list_section_count.to_series()
    assert {k: v for k, v in got_s.items() if v} == dict(expected_s)
    assert sum(expected.values()) > 50  # the test has something to compare


# Register entries outside the records' span (2010-01 … 2011-03: the first to the last month of the
# apprehensions, totals and checkpoint records), of new people and of apprehended ones, before and after it.
# Person 2's deportation of April 2011 falls in the period 2011, which the span covers only to March.
OUTSIDE = [
    ("police_check", 1, "2009-12-31", "omsk"),  # apprehended person 1, the day before the span
    ("overstay", 20, "2009-06-01", "omsk"),  # a new person, before
    ("deportation", 2, "2011-04-01", "omsk"),  # apprehended person 2, the month after the span
    ("police_check", 21, "2019-05-05", "orenburg"),  # a new person on two registers, years after
    ("overstay", 21, "2019-06-05", "orenburg"),
    ("overstay", 3, "2019-01-10", "orenburg"),  # apprehended person 3, seen again in 2019
]
LIST_VARS = ("list_history_count", "list_capture", "list_period_count", "list_section_count")


@pytest.mark.parametrize("period", ["year", "quarter", "month"])
def test_register_entries_outside_the_span_are_on_no_list(tmp_path, period):
    """Entries dated before the first or after the last month of the records were counted into the whole-span
    table (people seen only in 2019 added as people the apprehension records missed, apprehended people seen
    again in 2019 moved to other patterns), and into a period the span covers in part (a deportation of April
    2011 in 2011's table, whose apprehension list stops in March). The tables now equal those of the same
    records without those entries, with a warning and an attribute counting them."""
    registers = REGISTERS + OUTSIDE
    with pytest.warns(
        UserWarning, match=r"registers: 7 of the 14 entries .*\(2 before it, 5 after"
    ):
        ds = sufficient_statistics(
            _records(tmp_path / "all", registers=registers, sections=True),
            period=period,
            occasion=None,
        )
    assert ds.attrs["registers_out_of_span"] == 7
    # the reference: the registers cut to the span by hand, by the dates' text
    inside = [r for r in registers if "2010-01-01" <= r[2] <= "2011-03-31"]
    assert len(inside) == 7
    ref = sufficient_statistics(
        _records(tmp_path / "inside", registers=inside, sections=True),
        period=period,
        occasion=None,
    )
    assert ref.attrs["registers_out_of_span"] == 0
    for name in LIST_VARS:
        xr_testing.assert_identical(ds[name], ref[name])
    assert list(ds.list.values) == LISTS  # every register in the file is a list
    # and by hand: each person once over the span; person 2 apprehended and police-checked only, person 3
    # apprehended and deported, nobody of 20 or 21
    whole = dict(zip(ds.list_history.values, ds.list_history_count.values.tolist(), strict=True))
    assert whole == {"1011": 1, "1001": 1, "0011": 1, "0101": 1, "1100": 1}


def test_list_table_of_a_period_the_span_covers_in_part(tmp_path):
    """2011 is covered to March: its table holds the register entries of January to March only, and says
    how many entries were left out."""
    records = _records(tmp_path, registers=REGISTERS + OUTSIDE)
    with pytest.warns(UserWarning, match=r"registers: 7 of the 14 entries"):
        table = list_table(records, period="2011", allow_unlinked=True)
    got = {
        str(h): int(n)
        for h, n in zip(table.history.values, table.history_count.values[0], strict=True)
    }
    # 4 apprehended and overstaying, 2 apprehended (not deported: that was in April), 1 police-checked,
    # 3 apprehended and deported
    assert got == {"0101": 1, "0001": 1, "1000": 1, "0011": 1}
    assert table.attrs["registers_out_of_span"] == 7
    with pytest.warns(UserWarning, match=r"registers: 1 of the 8 entries"):
        assert (
            list_table(_records(tmp_path / "b"), period="2010").attrs["registers_out_of_span"] == 1
        )
