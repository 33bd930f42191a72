"""Months missing from the apprehension file of a period's list table (`estim.families.lists.gaps`).

Before: with every apprehension record of March 2017 removed from the shipped records (the totals and
checkpoint records still holding March), `list_table` returned the year's table without a word and the stepwise
N̂ was 15,248 against 15,027 for the full records: the people apprehended only in March dropped off the
apprehension list, and those of them on a register were counted as people the apprehensions missed. The
references here are record sets built by hand, whose tables are counted by hand, and the shipped records
against the same records with a month removed, never estim's output on the same input.
"""

from __future__ import annotations

import json
import os
import warnings

import pandas as pd
import pytest
from records_fixtures import CLEAN_CSV, TOTALS_TO_DECEMBER, write_dataset

from estim.errors import EstimInputError
from estim.families.lists.data import LISTS, list_table
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records

KEY = b"test-key"
SECTIONS = ("omsk", "orenburg")
MONTHS = [f"2011-{m:02d}" for m in range(1, 13)]
_APPR = (
    "A{n},{date},{section},PK{person:010d},KAZ,true,to_russia,no_documents,patrol,border_resident"
)
_REG = "R{n},{register},PK{person:010d},{date},{section}"

# Each section and month of 2011: the people by the lists they are on (police_check, overstay, apprehensions),
# everyone's entries dated on the 10th of the month (registers dated at the event: register_delay_days=0).
# Twelve people apprehended a section and month: a month of a section without any is no quiet month.
PER_MONTH = {"001": 6, "101": 3, "011": 2, "111": 1, "100": 3, "010": 2, "110": 1}


def _people():
    """(section, month, person number, pattern) of every person of the hand-built records."""
    person = 0
    for section in SECTIONS:
        for month in MONTHS:
            for pattern, n in PER_MONTH.items():
                for _ in range(n):
                    person += 1
                    yield section, month, person, pattern


def _records(tmp_path, name: str, drop: set[tuple[str, str]] = frozenset(), last: str = "2011-12"):
    """The hand-built records, without the apprehension records of the (section, month) pairs in `drop`; the
    records' span (Kurgan's monthly totals, one checkpoint's records) runs from January to `last`."""
    appr, reg = [CLEAN_CSV["apprehensions"][0]], ["entry_id,register,person_key,date,section_id"]
    for section, month, person, pattern in _people():
        if month > last:
            continue
        date = f"{month}-10"
        if pattern[2] == "1" and (section, month) not in drop:
            appr.append(_APPR.format(n=len(appr), date=date, section=section, person=person))
        for register, on in zip(("police_check", "overstay"), pattern[:2], strict=True):
            if on == "1":
                reg.append(
                    _REG.format(
                        n=len(reg), register=register, person=person, date=date, section=section
                    )
                )
    span = [m for m in MONTHS if m <= last]
    totals = [CLEAN_CSV["apprehension_totals"][0]] + [
        f"kurgan,{m},border_resident,patrol,3" for m in span
    ]
    flows = [CLEAN_CSV["checkpoint_records"][0]] + [f"OMS-1,{m},100,10,0,0,20" for m in span]
    folder = write_dataset(
        tmp_path / name,
        apprehensions=appr,
        apprehension_totals=totals,
        checkpoint_records=flows,
        registers=reg,
    )
    return load_records(folder, key=KEY)


def _table(data) -> dict[str, int]:
    counts = data["history_count"].sum("stratum")
    return {str(h): int(n) for h, n in zip(data["history"].values, counts.values, strict=True) if n}


def _by_hand(sections, drop: set[tuple[str, str]] = frozenset()) -> dict[str, int]:
    """The table counted from the people written: a person whose apprehension record was dropped is on the
    registers only (pattern "xy0"), or on no list."""
    out: dict[str, int] = {}
    for section, month, _, pattern in _people():
        if section not in sections:
            continue
        if (section, month) in drop:
            pattern = pattern[:2] + "0"
        if pattern != "000":
            out[pattern] = out.get(pattern, 0) + 1
    return out


def _gap_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "holds no record of" in str(w.message)]


def _build(records, **given):
    """`list_table` of 2011, registers declared dated at the event; the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = list_table(
            records, period=given.pop("period", "2011"), register_delay_days=0, **given
        )
    return data, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gaps")
    both = {(s, "2011-03") for s in SECTIONS}
    return {
        "full": _records(folder, "full"),
        "no_march": _records(folder, "no_march", drop=both),
        "no_omsk_march": _records(folder, "no_omsk_march", drop={("omsk", "2011-03")}),
    }


# --------------------------------------------------------------------------------------------------------------
# Records built by hand


def test_the_full_year_is_the_hand_count_without_a_word(hand):
    data, said = _build(hand["full"])
    assert _table(data) == _by_hand(SECTIONS)
    assert _table(data) == {p: 24 * n for p, n in PER_MONTH.items()}
    assert not [s for s in said if "holds no record of" in s], said
    assert json.loads(data.attrs["apprehension_months_missing"]) == {}
    omsk, said = _build(hand["full"], section="omsk")
    assert _table(omsk) == {p: 12 * n for p, n in PER_MONTH.items()}
    assert not said


def test_a_month_missing_from_every_section_is_refused_naming_file_and_month(hand):
    """Before: the table was returned, March's 24 people on a register moved to the registers alone and its 12
    apprehended people on no register gone, under the year's name."""
    records = hand["no_march"]
    with pytest.raises(EstimInputError) as refused:
        list_table(records, period="2011", register_delay_days=0)
    message = str(refused.value)
    path = records.source / "apprehensions.csv"
    assert (
        f"records, period 2011, whole border: apprehensions ({path}) holds no record of any surveyed "
        "section (omsk, orenburg) in 2011-03 (1 of the period's 12 months), though the records' span "
        "covers it (rule apprehension_gap)" in message
    )
    assert "the median month of the span holds 24 of the surveyed sections' records" in message
    assert "allow_empty_months=True" in message
    # a spec's data (what `estim fit` calls) refuse it alike, with the measured delay too
    fields = {"period": "2011", "period_kind": "year", "section": None}
    with pytest.raises(EstimInputError, match=r"in 2011-03 \(1 of the period's 12 months\)"):
        LISTS.from_records(records, fields)
    # and each section's table
    for section in SECTIONS:
        with pytest.raises(
            EstimInputError,
            match=rf"section {section}: apprehensions \(.*\) holds no record of section {section} in 2011-03",
        ):
            list_table(records, period="2011", section=section, register_delay_days=0)


def test_declared_empty_where_no_month_is_missing_is_said_to_declare_nothing(hand):
    """Before: accepted without a word, though it changed nothing (as the border data now say it)."""
    data, said = _build(hand["full"], allow_empty_months=True)
    assert _table(data) == _by_hand(SECTIONS)
    assert any("allow_empty_months = true declares nothing here" in s for s in said), said
    assert data.attrs["apprehension_months_declared_empty"] == ""
    _, said = _build(hand["no_march"], allow_empty_months=True)
    assert not any("declares nothing" in s for s in said)


def test_declared_empty_the_table_is_what_the_refusal_prevents(hand):
    """The table the old code returned, counted by hand: March's apprehended people on a register on the
    registers only, the others on no list."""
    both = {(s, "2011-03") for s in SECTIONS}
    data, said = _build(hand["no_march"], allow_empty_months=True)
    assert _table(data) == _by_hand(SECTIONS, drop=both)
    assert _table(data) == {
        "001": 24 * 6 - 2 * 6,
        "101": 24 * 3 - 2 * 3,
        "011": 24 * 2 - 2 * 2,
        "111": 24 - 2,
        "100": 24 * 3 + 2 * 3,
        "010": 24 * 2 + 2 * 2,
        "110": 24 + 2,
    }
    assert any("declared months nobody was apprehended in (allow_empty_months)" in s for s in said)
    assert data.attrs["apprehension_months_declared_empty"] == "2011-03"
    assert json.loads(data.attrs["apprehension_months_missing"]) == {
        "omsk": ["2011-03"],
        "orenburg": ["2011-03"],
    }


def test_a_month_missing_in_one_section_is_warned_of_and_refused_for_that_section(hand):
    records = hand["no_omsk_march"]
    data, said = _build(records)
    gap = [s for s in said if "holds no record of" in s]
    assert len(gap) == 1, said
    assert (
        "holds no record of section omsk in 2011-03, a month in which the other surveyed sections"
        in gap[0]
    )
    assert _table(data) == _by_hand(SECTIONS, drop={("omsk", "2011-03")})
    assert json.loads(data.attrs["apprehension_months_missing"]) == {"omsk": ["2011-03"]}
    with pytest.raises(EstimInputError, match=r"holds no record of section omsk in 2011-03"):
        list_table(records, period="2011", section="omsk", register_delay_days=0)
    # Orenburg's table is the full records' Orenburg table, without a word
    orenburg, said = _build(records, section="orenburg")
    full, _ = _build(hand["full"], section="orenburg")
    assert _table(orenburg) == _table(full) == {p: 12 * n for p, n in PER_MONTH.items()}
    assert not said


def test_months_outside_the_span_are_not_missing(tmp_path):
    """Records ending in June: July to December hold no apprehension because there are no records; that is
    the period covered in part (warned of), not a month missing from the file."""
    data, said = _build(_records(tmp_path, "june", last="2011-06"))
    assert not [s for s in said if "holds no record of" in s], said
    assert any("cover only 6 of the period's 12 months" in s for s in said), said
    assert _table(data) == {p: 12 * n for p, n in PER_MONTH.items()}
    # … but March missing inside those six months is
    cut = _records(
        tmp_path, "june_no_march", drop={(s, "2011-03") for s in SECTIONS}, last="2011-06"
    )
    with pytest.raises(EstimInputError, match=r"in 2011-03 \(1 of the period's 12 months\)"):
        list_table(cut, period="2011", register_delay_days=0)


def test_a_missing_month_as_the_period_is_named_as_such(hand):
    """Before: "nobody is on the list 'apprehensions'", which did not say the file lacks the month."""
    with pytest.raises(
        EstimInputError, match=r"period 2011-03, whole border: .*in 2011-03 \(1 of the"
    ):
        list_table(hand["no_march"], period="2011-03", period_kind="month", register_delay_days=0)


def test_records_too_sparse_to_tell_are_warned_of_not_refused(tmp_path):
    """Four apprehension records in January and February, a span to December: a month without any is as
    likely quiet as missing (the median month holds none), so the table is built, with a warning."""
    records = load_records(
        write_dataset(tmp_path / "r", apprehension_totals=TOTALS_TO_DECEMBER), key=b"k"
    )
    data, said = _build(records, period="2010", allow_unlinked=True)
    gap = [s for s in said if "holds no record of" in s]
    assert len(gap) == 1, said
    assert (
        "holds no record of any surveyed section (omsk, orenburg) in 2010-03 … 2010-12 (10 of the "
        "period's 12 months)" in gap[0]
    )
    assert (
        "too few to tell a month nobody was apprehended in from one missing from the file" in gap[0]
    )
    assert data.attrs["apprehension_median_month"] == 0.0


# --------------------------------------------------------------------------------------------------------------
# The shipped records, and the same records with March 2017 taken out of the apprehension file


def _without(tmp_path, month: str, section: str | None = None):
    """The shipped records with the apprehension records of `month` (of `section`, or all) left out of the
    file; the other files as shipped."""
    folder = tmp_path / f"without_{month}_{section or 'all'}"
    folder.mkdir()
    for name in os.listdir(SYNTHETIC_DIR):
        if name.endswith(".csv") and name != "apprehensions.csv":
            (folder / name).symlink_to(SYNTHETIC_DIR / name)
    lines = (SYNTHETIC_DIR / "apprehensions.csv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [
        line
        for line in lines[1:]
        if not (line.split(",")[1].startswith(month) and section in (None, line.split(",")[2]))
    ]
    assert len(kept) < len(lines)
    (folder / "apprehensions.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return load_records(folder, key=DEFAULT_KEY)


@pytest.fixture(scope="module")
def shipped():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


def test_shipped_records_without_march_2017_are_refused(shipped, tmp_path):
    full, said = _build(shipped, period="2017")
    assert not [s for s in said if "holds no record of" in s], said
    holed = _without(tmp_path, "2017-03")
    with pytest.raises(EstimInputError) as refused:
        list_table(holed, period="2017")
    message = str(refused.value)
    assert (
        "records, period 2017, whole border: apprehensions "
        f"({holed.source / 'apprehensions.csv'}) holds no record of any surveyed section (orenburg, "
        "omsk) in 2017-03 (1 of the period's 12 months)" in message
    )
    assert "rule apprehension_gap" in message
    with pytest.raises(EstimInputError, match="holds no record of section omsk in 2017-03"):
        list_table(holed, period="2017", section="omsk")
    # the table the old code fitted: the full records' people apprehended in 2017, less those apprehended
    # only in March (counted from the shipped file), on the apprehension list
    raw = pd.read_csv(SYNTHETIC_DIR / "apprehensions.csv", usecols=["date", "person_key"])
    year = raw[raw["date"].str.startswith("2017")]
    outside = year[~year["date"].str.startswith("2017-03")]
    declared, _ = _build(holed, period="2017", allow_empty_months=True)

    def on_apprehensions(data) -> int:
        capture = data["capture"].sel(occasion="apprehensions").values
        return int(data["history_count"].sum("stratum").values[capture == 1].sum())

    assert on_apprehensions(full) == year["person_key"].nunique()
    assert on_apprehensions(declared) == outside["person_key"].nunique()
    assert on_apprehensions(declared) < on_apprehensions(full)
    # other years hold their months, and are built as before
    assert _table(list_table(holed, period="2016", register_delay_days=0)) == _table(
        list_table(shipped, period="2016", register_delay_days=0)
    )


def test_shipped_records_without_omsks_march_warn_for_the_whole_border(shipped, tmp_path):
    holed = _without(tmp_path, "2017-03", section="omsk")
    data, said = _build(holed, period="2017")
    gap = [s for s in said if "holds no record of" in s]
    assert len(gap) == 1 and "holds no record of section omsk in 2017-03" in gap[0], said
    assert json.loads(data.attrs["apprehension_months_missing"]) == {"omsk": ["2017-03"]}
    with pytest.raises(EstimInputError, match="holds no record of section omsk in 2017-03"):
        list_table(holed, period="2017", section="omsk", register_delay_days=0)
    # Orenburg's table is the full records' Orenburg table
    orenburg, said = _build(holed, period="2017", section="orenburg")
    assert not [s for s in said if "holds no record of" in s], said
    assert _table(orenburg) == _table(_build(shipped, period="2017", section="orenburg")[0])
