"""One period of the records for the closed and single-register families (`estim.families.record_periods`).

Before: records cut at June gave period "2017" a closed table of twelve monthly occasions, the last six all
zeros, read as months in which nobody was caught (M0 on the shipped records: N̂ 15,385 against 14,022 for the
six months' own table; Mb 1,218 where the six months have no estimate), and the single-register frequencies
of the half year under the year's name, without a word; a month missing from the apprehensions in the middle
of the span was an occasion of zeros too (M0 14,979 against 14,451 with the month). A section without
individual records gave "column 'n': no people", an unknown category an internal KeyError. The references
here are record sets built by hand, whose tables and estimates are worked out by hand, and the shipped
records themselves (the cut records' table against the full records' first half year), never estim's
output on the same input.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import pandas as pd
import pytest
from records_fixtures import CLEAN_CSV, write_dataset

from estim.errors import EstimInputError
from estim.families.base import DataFieldError
from estim.families.closed import HISTORIES
from estim.families.closed.data import from_records
from estim.families.record_periods import OpenPopulationWarning, RepeatedTrialsWarning
from estim.families.registry import load_all
from estim.families.single_register.data import FREQUENCY
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records

KEY = b"test-key"
FAMILIES = load_all()

_APPR = "A{n},{date},omsk,PK{person:010d},KAZ,true,to_russia,no_documents,patrol,border_resident"


def _months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def _records(tmp_path, name: str, people: list[list[str]], first: str, last: str):
    """Omsk's apprehensions, one list of dates a person; monthly totals of Kurgan and records of one checkpoint
    over `first` … `last` (the records' span, whatever the apprehensions)."""
    appr = [CLEAN_CSV["apprehensions"][0]]
    for person, dates in enumerate(people):
        for date in dates:
            appr.append(_APPR.format(n=len(appr), date=date, person=person))
    months = _months(first, last)
    totals = [CLEAN_CSV["apprehension_totals"][0]] + [
        f"kurgan,{m},border_resident,patrol,1" for m in months
    ]
    flows = [CLEAN_CSV["checkpoint_records"][0]] + [f"OMS-1,{m},100,10,0,0,20" for m in months]
    folder = write_dataset(
        tmp_path / name,
        apprehensions=appr,
        apprehension_totals=totals,
        checkpoint_records=flows,
        registers=None,
    )
    return load_records(folder, key=KEY)


def _fields(**given):
    out = {"period": "2011", "period_kind": "year", "occasion": "quarter", "section": None}
    return {**out, **given}


def _frequency_fields(**given):
    out = {"period": "2011", "period_kind": "year", "section": "omsk", "category": None}
    return {**out, "covariates": (), "formula": None, **given}


def _histories(data) -> dict[str, int]:
    counts = data["history_count"].sum("stratum")
    return {str(h): int(n) for h, n in zip(data["history"].values, counts.values, strict=True) if n}


# --------------------------------------------------------------------------------------------------------------
# Records that stop in June: January to June 2011 (30 people caught in the first quarter only, 20 in the second
# only, 10 in both)

Q1_DATES = ("2011-01-10", "2011-02-10", "2011-03-10")
Q2_DATES = ("2011-04-10", "2011-05-10", "2011-06-10")
HALF_YEAR = (
    [[Q1_DATES[i % 3]] for i in range(30)]
    + [[Q2_DATES[i % 3]] for i in range(20)]
    + [[Q1_DATES[i % 3], Q2_DATES[(i + 1) % 3]] for i in range(10)]
)


@pytest.fixture(scope="module")
def half_year(tmp_path_factory):
    return _records(tmp_path_factory.mktemp("half"), "half", HALF_YEAR, "2011-01", "2011-06")


def test_a_year_covered_to_june_has_the_two_quarters_it_holds(half_year):
    with pytest.warns(UserWarning) as said:
        data = from_records(half_year, _fields())
    assert list(data["occasion"].values) == ["1", "2"]
    assert _histories(data) == {"10": 30, "01": 20, "11": 10}
    message = " ".join(str(w.message) for w in said)
    assert "records, period 2011: the records cover only 6 of the period's 12 months" in message
    assert "(2011-01 … 2011-06): occasions 3–4 of 4 lie outside them and are left out" in message
    # M0 on two occasions, by hand: (n1 + n2)² / (4 m) = 70² / 40 (Otis et al.'s continuous MLE); Mt's is
    # Lincoln–Petersen's n1 n2 / m
    assert FAMILIES["M0"].mle(data).n_hat == pytest.approx(70**2 / 40, rel=1e-6)
    assert FAMILIES["Mt"].mle(data).n_hat == pytest.approx(40 * 30 / 10, rel=1e-6)


def test_monthly_occasions_of_a_half_year(half_year):
    with pytest.warns(UserWarning, match="occasions 7–12 of 12 lie outside them"):
        data = from_records(half_year, _fields(occasion="month", section="omsk"))
    assert list(data["occasion"].values) == ["1", "2", "3", "4", "5", "6"]
    expected = Counter()
    for dates in HALF_YEAR:
        seen = ["0"] * 6
        for date in dates:
            seen[int(date[5:7]) - 1] = "1"
        expected["".join(seen)] += 1
    assert _histories(data) == dict(expected)


def test_a_single_register_half_year_is_named_for_what_it_holds(half_year):
    with pytest.warns(UserWarning) as said:
        data = FREQUENCY.from_records(half_year, _frequency_fields())
    message = " ".join(str(w.message) for w in said)
    assert (
        "records, period 2011, section omsk: the records cover only 6 of the period's 12 months"
        in message
    )
    assert "(2011-01 … 2011-06)" in message and "not the whole period 2011" in message
    f = data["frequency"].sum("pattern")
    assert {int(k): int(n) for k, n in zip(f["k"].values, f.values, strict=True) if n} == {
        1: 50,
        2: 10,
    }
    assert FAMILIES["chao"].mle(data).n_hat == pytest.approx(60 + 50**2 / (2 * 10))


def test_a_year_holding_one_quarter_is_refused(tmp_path):
    people = [[Q1_DATES[i % 2]] for i in range(8)] + [[Q1_DATES[0], Q1_DATES[1]]] * 3
    records = _records(tmp_path, "two_months", people, "2011-01", "2011-02")
    with pytest.raises(
        EstimInputError, match=r"which hold 1 of its 4 quarterly occasions: .* at least 2"
    ):
        from_records(records, _fields())
    # monthly occasions: two, said to be the year's first two months
    with pytest.warns(
        UserWarning, match=r"cover only 2 of the period's 12 months \(2011-01 … 2011-02\)"
    ):
        data = from_records(records, _fields(occasion="month"))
    assert _histories(data) == {"10": 4, "01": 4, "11": 3}


# --------------------------------------------------------------------------------------------------------------
# A year of records with no apprehension of Omsk in March (the kurgan totals and the checkpoint run on)

YEAR_WITHOUT_MARCH = [
    [f"2011-{m:02d}-{day:02d}"] for m in range(1, 13) if m != 3 for day in (3, 13, 23)
] + [[f"2011-{m:02d}-05", f"2011-{m + 5:02d}-05"] for m in (1, 2, 4, 5, 6, 7)]


@pytest.fixture(scope="module")
def without_march(tmp_path_factory):
    folder = tmp_path_factory.mktemp("march")
    return _records(folder, "no_march", YEAR_WITHOUT_MARCH, "2011-01", "2011-12")


def test_a_month_without_records_is_not_an_occasion_nobody_was_caught_on(without_march):
    with pytest.raises(EstimInputError) as refused:
        from_records(without_march, _fields(occasion="month"))
    message = str(refused.value)
    assert (
        "records, period 2011: apprehensions holds no record of section omsk, occasion 3 (2011-03)"
        in message
    )
    assert "rule occasion_gap" in message
    with pytest.raises(EstimInputError, match="occasion 3 \\(2011-03\\)"):
        from_records(without_march, _fields(occasion="month", section="omsk"))
    # the first quarter still holds January and February: kept, and said to be shorter
    with pytest.warns(
        UserWarning, match=r"occasion 1 \(2011-01 … 2011-03\): records in 2011-01 … 2011-02 only"
    ):
        data = from_records(without_march, _fields())
    assert list(data["occasion"].values) == ["1", "2", "3", "4"]


def test_a_single_register_year_without_march_says_so(without_march):
    with pytest.warns(
        UserWarning, match=r"no record of section omsk in 2011-03 \(1 of the period's 12 months"
    ):
        data = FREQUENCY.from_records(without_march, _frequency_fields())
    f = data["frequency"].sum("pattern")
    assert {int(k): int(n) for k, n in zip(f["k"].values, f.values, strict=True) if n} == {
        1: 33,
        2: 6,
    }


def test_a_full_year_is_read_without_a_word(tmp_path):
    people = [[f"2011-{m:02d}-10"] for m in range(1, 13)] + [["2011-01-20", "2011-12-20"]]
    records = _records(tmp_path, "full", people, "2011-01", "2011-12")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # said of every closed table and f_k from the records, whatever its period
        # (test_closed_on_records_…, test_families_on_border_records)
        warnings.simplefilter("ignore", OpenPopulationWarning)
        warnings.simplefilter("ignore", RepeatedTrialsWarning)
        data = from_records(records, _fields(occasion="month"))
        FREQUENCY.from_records(records, _frequency_fields())
    assert data.sizes["occasion"] == 12


# --------------------------------------------------------------------------------------------------------------
# Nothing to estimate, and fields that cannot be read


def test_a_section_without_individual_records_is_refused_by_name(half_year):
    for read, fields in (
        (from_records, _fields(section="kurgan")),
        (FREQUENCY.from_records, _frequency_fields(section="kurgan")),
    ):
        with pytest.raises(
            DataFieldError, match="'kurgan' has no record in apprehensions"
        ) as refused:
            read(half_year, fields)
        assert refused.value.field == "section"


def test_an_unknown_category_names_the_field(half_year):
    # before: an internal KeyError
    with pytest.raises(DataFieldError, match="got 'nobody'") as refused:
        FREQUENCY.from_records(half_year, _frequency_fields(category="nobody"))
    assert refused.value.field == "category"


@pytest.mark.parametrize(
    ("kind", "occasion"), [("quarter", "quarter"), ("month", "month"), ("month", "quarter")]
)
def test_an_occasion_no_shorter_than_the_period_is_refused_when_read(kind, occasion):
    fields = {field.name: field.default for field in HISTORIES.fields}
    fields.update(period="2011", period_kind=kind, occasion=occasion)
    with pytest.raises(DataFieldError, match="is not shorter than the period") as refused:
        HISTORIES.check(fields, "records")
    assert refused.value.field == "occasion"


# --------------------------------------------------------------------------------------------------------------
# The shipped records cut at June 2017: the first half year's table of the full records


def _cut(records, last: str):
    out = {}
    for f in dataclasses.fields(records):
        frame = getattr(records, f.name)
        if isinstance(frame, pd.DataFrame) and len(frame):
            column = next((c for c in ("date", "month") if c in frame.columns), None)
            if column is not None:
                out[f.name] = frame[frame[column] <= pd.Timestamp(last)].reset_index(drop=True)
    return dataclasses.replace(records, **out)


def test_shipped_records_cut_at_june_give_the_full_records_first_half_year():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the public default key
        full = load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)
    fields = _fields(period="2017", occasion="month")
    with pytest.warns(
        UserWarning, match=r"cover only 6 of the period's 12 months \(2017-01 … 2017-06\)"
    ):
        cut = from_records(_cut(full, "2017-06-30"), fields)
    year = from_records(full, fields)
    assert year.sizes["occasion"] == 12 and cut.sizes["occasion"] == 6
    # the full year's histories seen in January – June, on those six months
    halves = year["capture"].transpose("history", "occasion").values[:, :6]
    expected: Counter = Counter()
    for stratum in year["stratum"].values:
        counts = year["history_count"].sel(stratum=stratum).values
        for row, n in zip(halves, counts, strict=True):
            if row.any() and n:
                expected[(str(stratum), "".join(map(str, row)))] += int(n)
    got = {
        (str(s), str(h)): int(n)
        for s in cut["stratum"].values
        for h, n in zip(
            cut["history"].values, cut["history_count"].sel(stratum=s).values, strict=True
        )
        if n
    }
    assert got == dict(expected)
    # a period written for another period_kind: the periods held as a range, and how to write one (before:
    # the 144 months, one by one)
    with pytest.raises(DataFieldError) as refused:
        FREQUENCY.from_records(full, _frequency_fields(period="2017", period_kind="month"))
    assert str(refused.value) == (
        "[data] period: '2017' not in the records; they have 2006-01 … 2017-12 (144 months); a month is "
        'written like "2017-04" (period_kind = "month")'
    )
