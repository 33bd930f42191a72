"""Sufficient statistics against brute-force counts written as plain loops over rows and people.

The reference counts below deliberately share no code with estim.statistics: they walk the record rows one at
a time and fill dictionaries, so that a mistake in the vectorised packing/sorting cannot be mirrored here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xarray import testing as xr_testing

from estim.errors import EstimInputError
from estim.records.recordset import RecordSet, empty_frame, typed_columns
from estim.records.schemas import CATEGORIES, DETECTORS, REGISTERS, SCHEMAS, SECTIONS
from estim.statistics import data_summary, sufficient_statistics

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench_aggregate.py"

# --------------------------------------------------------------------------------------------------------------
# Building RecordSets in code
# --------------------------------------------------------------------------------------------------------------

_DEFAULTS = {
    "string": "x",
    "int64": 0,
    "float64": 0.0,
    "bool": False,
    "datetime64[s]": "2006-01-01",
}


def frame(table: str, rows: list[dict]) -> pd.DataFrame:
    """A loaded table with the RecordSet dtypes; columns a test does not care about get a filler value, except
    optional columns, which are missing (empty) as when the file lacks them."""
    dtypes = typed_columns(SCHEMAS[table])
    if not rows:
        return empty_frame(SCHEMAS[table])
    optional = {c.name for c in SCHEMAS[table].columns if not c.required}
    data = {
        c: [r.get(c, None if c in optional else _DEFAULTS[t]) for r in rows]
        for c, t in dtypes.items()
    }
    out = pd.DataFrame(data)
    for c, t in dtypes.items():
        out[c] = pd.to_datetime(out[c]).astype(t) if t.startswith("datetime") else out[c].astype(t)
    return out


def sections_frame(ids=SECTIONS) -> pd.DataFrame:
    return frame(
        "sections", [{"section_id": s, "name": s.title(), "length_km": 100.0} for s in ids]
    )


CHECKPOINTS = [
    ("omsk_road", "omsk", "road"),
    ("omsk_air", "omsk", "air"),
    ("omsk_rail", "omsk", "rail"),
    ("oren_road", "orenburg", "road"),
    ("oren_river", "orenburg", "river"),
    ("kurgan_road", "kurgan", "road"),
]


def checkpoints_frame() -> pd.DataFrame:
    return frame(
        "checkpoints", [{"checkpoint_id": c, "section_id": s, "type": t} for c, s, t in CHECKPOINTS]
    )


def make_records(
    apprehensions=(), totals=(), registers=(), checkpoint_records=(), sections=SECTIONS
) -> RecordSet:
    return RecordSet(
        sections=sections_frame(sections),
        checkpoints=checkpoints_frame(),
        checkpoint_records=frame("checkpoint_records", list(checkpoint_records)),
        apprehensions=frame(
            "apprehensions",
            [
                {"apprehension_id": f"a{i}", **r, "person_id": r["person_id"]}
                for i, r in enumerate(apprehensions)
            ],
        ),
        apprehension_totals=frame("apprehension_totals", list(totals)),
        registers=frame("registers", [{"entry_id": f"e{i}", **r} for i, r in enumerate(registers)]),
        policy_events=empty_frame(SCHEMAS["policy_events"]),
    )


def appr(date, section, person, category="labour_migrant", detector="patrol") -> dict:
    return {
        "date": date,
        "section_id": section,
        "person_id": person,
        "category": category,
        "detected_by": detector,
    }


# --------------------------------------------------------------------------------------------------------------
# Brute force
# --------------------------------------------------------------------------------------------------------------


def period_label(ts: pd.Timestamp, period: str) -> str:
    if period == "year":
        return str(ts.year)
    if period == "quarter":
        return f"{ts.year}Q{(ts.month - 1) // 3 + 1}"
    return f"{ts.year}-{ts.month:02d}"


def occasion_of(ts: pd.Timestamp, period: str, occasion: str) -> int:
    if (period, occasion) == ("year", "quarter"):
        return (ts.month - 1) // 3
    if (period, occasion) == ("year", "month"):
        return ts.month - 1
    return (ts.month - 1) % 3


def month_label(ts: pd.Timestamp) -> str:
    return f"{ts.year}-{ts.month:02d}"


def brute_force(records: RecordSet, period: str, occasion: str | None) -> dict:
    out: dict = {}
    rows = records.apprehensions.to_dict("records")

    apprehended = Counter()
    for r in rows:
        apprehended[(r["section_id"], month_label(r["date"]), r["category"], r["detected_by"])] += 1
    for r in records.apprehension_totals.to_dict("records"):
        apprehended[
            (r["section_id"], month_label(r["month"]), r["category"], r["detected_by"])
        ] += r["apprehensions"]
    out["apprehended"] = apprehended
    out["individual"] = {r["section_id"] for r in rows}

    # person -> list of (category, occasion) per stratum
    strata: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        stratum = (r["section_id"], period_label(r["date"], period))
        occ = occasion_of(r["date"], period, occasion) if occasion else 0
        strata[stratum][r["person_id"]].append((r["category"], occ))
    frequency = Counter()
    histories = Counter()
    n_occ = {("year", "quarter"): 4, ("year", "month"): 12, ("quarter", "month"): 3}.get(
        (period, occasion), 1
    )
    for (section, per), people in strata.items():
        for person_rows in people.values():
            cats = Counter(c for c, _ in person_rows)
            best = None
            for c in CATEGORIES:  # first category with the highest count
                if cats[c] and (best is None or cats[c] > cats[best]):
                    best = c
            frequency[(section, per, best, len(person_rows))] += 1
            h = ["0"] * n_occ
            for _, o in person_rows:
                h[o] = "1"
            histories[(section, per, "".join(h))] += 1
    out["frequency"] = frequency
    out["histories"] = histories

    lists_of: dict = defaultdict(set)
    for r in rows:
        lists_of[r["person_id"]].add("apprehensions")
    # register entries dated outside the records' month span are on no list (lists must cover one period)
    span = set(all_months(records))
    out["registers_out_of_span"] = 0
    for r in records.registers.to_dict("records"):
        if month_label(pd.Timestamp(r["date"])) in span:
            lists_of[r["person_id"]].add(r["register"])
        else:
            out["registers_out_of_span"] += 1
    present = [name for name in REGISTERS if name in set(records.registers["register"])]
    lists = [*present, "apprehensions"]
    patterns = Counter()
    for person_lists in lists_of.values():
        patterns["".join("1" if name in person_lists else "0" for name in lists)] += 1
    out["lists"] = lists
    out["patterns"] = patterns

    cp_info = {r["checkpoint_id"]: r for r in records.checkpoints.to_dict("records")}
    flows = {}
    land_foreigners = Counter()
    land_weight = Counter()
    land_wait = Counter()
    land_plain = Counter()
    land_reporting = Counter()
    for r in records.checkpoint_records.to_dict("records"):
        m = month_label(r["month"])
        flows[(r["checkpoint_id"], m)] = r
        cp = cp_info[r["checkpoint_id"]]
        if cp["type"] in ("road", "rail", "river"):
            key = (cp["section_id"], m)
            land_foreigners[key] += r["crossings_foreigners"]
            w = r["crossings_foreigners"]
            land_weight[key] += w
            land_wait[key] += w * r["mean_wait_minutes"]
            land_plain[key] += r["mean_wait_minutes"]
            land_reporting[key] += 1
    out["flows"] = flows
    out["land"] = (land_foreigners, land_weight, land_wait, land_plain, land_reporting)
    return out


def brute_summary(records: RecordSet) -> dict:
    out = {}
    for s in records.sections["section_id"]:
        rows = [r for r in records.apprehensions.to_dict("records") if r["section_id"] == s]
        people = {r["person_id"] for r in rows}
        total_rows = [
            r["apprehensions"]
            for r in records.apprehension_totals.to_dict("records")
            if r["section_id"] == s
        ]
        totals = sum(total_rows)
        legal = 0
        weighted = 0.0
        reported = False
        cps = {
            r["checkpoint_id"]
            for r in records.checkpoints.to_dict("records")
            if r["section_id"] == s
        }
        for r in records.checkpoint_records.to_dict("records"):
            if r["checkpoint_id"] in cps:
                w = r["crossings_citizens"] + r["crossings_foreigners"]
                legal += w
                weighted += w * r["mean_wait_minutes"]
                reported = True
        out[s] = {
            "apprehension_records": len(rows),
            "distinct_people": len(people) if rows else None,
            # nothing reported (no record, no totals row): unknown, not 0
            "apprehensions": len(rows) + totals if rows or total_rows else None,
            "reapprehension_rate": (
                (len(rows) - len({(r["person_id"], str(r["date"])[:7]) for r in rows})) / len(rows)
                if rows
                else math.nan
            ),
            # no checkpoint record of the section: unknown, not 0 crossings
            "legal_crossings": legal if reported else None,
            "mean_wait_minutes": weighted / legal if legal else math.nan,
        }
    return out


def all_months(records: RecordSet) -> list[str]:
    stamps = [
        *records.apprehensions["date"],
        *records.apprehension_totals["month"],
        *records.checkpoint_records["month"],
    ]
    if not stamps:
        return []
    lo, hi = min(stamps), max(stamps)
    out, y, m = [], lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def check_against_brute_force(records: RecordSet, period: str, occasion: str | None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = sufficient_statistics(records, period=period, occasion=occasion)
    ref = brute_force(records, period, occasion)
    # register entries outside the span are counted, and said (a warning naming the count)
    assert ds.attrs["registers_out_of_span"] == ref["registers_out_of_span"]
    said = [str(w.message) for w in caught if "left out of the list histories" in str(w.message)]
    assert len(said) == (1 if ref["registers_out_of_span"] else 0), said
    if said:
        assert f"{ref['registers_out_of_span']:,} of the" in said[0] or "all " in said[0]
    sections = list(records.sections["section_id"])
    months = all_months(records)

    assert not [d for d in ds.dims if str(d).startswith("dim_")]
    assert list(ds.section.values) == sections
    assert [str(m)[:7] for m in ds.month.values] == months
    assert list(ds.category.values) == list(CATEGORIES)
    assert list(ds.detector.values) == list(DETECTORS)
    for name, var in ds.data_vars.items():
        assert {"long_name", "units"} <= set(var.attrs), name

    # apprehended: every cell, zeros included
    a = ds.apprehended.values
    assert a.dtype == np.int64
    for i, s in enumerate(sections):
        for j, m in enumerate(months):
            for c_i, c in enumerate(CATEGORIES):
                for d_i, d in enumerate(DETECTORS):
                    assert a[i, j, c_i, d_i] == ref["apprehended"].get((s, m, c, d), 0), (
                        s,
                        m,
                        c,
                        d,
                    )
    assert [bool(x) for x in ds.individual_records.values] == [
        s in ref["individual"] for s in sections
    ]

    # frequency f_k
    periods = list(ds.period.values)
    k_max = max((k for (_, _, _, k) in ref["frequency"]), default=0)
    assert list(ds.k.values) == list(range(1, k_max + 1))
    f = ds.frequency.values
    assert f.dtype == np.int64
    for i, s in enumerate(sections):
        for p_i, p in enumerate(periods):
            for c_i, c in enumerate(CATEGORIES):
                for k in range(1, k_max + 1):
                    assert f[i, p_i, c_i, k - 1] == ref["frequency"].get((s, p, c, k), 0), (
                        s,
                        p,
                        c,
                        k,
                    )
    assert f.sum() == sum(ref["frequency"].values())
    # every stratum label the brute force saw is on the period axis
    assert {p for (_, p, _, _) in ref["frequency"]} <= set(periods)

    # capture histories
    if occasion is None:
        assert "history_count" not in ds and "capture" not in ds and "history" not in ds.dims
    else:
        observed = sorted({h for (_, _, h) in ref["histories"]})
        assert list(ds.history.values) == observed
        assert all("1" in h for h in observed)
        cap = ds.capture.values
        assert cap.dtype == np.int8
        for h_i, h in enumerate(observed):
            assert "".join(str(x) for x in cap[h_i]) == h
        hc = ds.history_count.values
        for i, s in enumerate(sections):
            for p_i, p in enumerate(periods):
                for h_i, h in enumerate(observed):
                    assert hc[i, p_i, h_i] == ref["histories"].get((s, p, h), 0), (s, p, h)

    # lists
    assert list(ds.list.values) == ref["lists"]
    assert list(ds.list_history.values) == sorted(ref["patterns"])
    for h_i, h in enumerate(ds.list_history.values):
        assert ds.list_history_count.values[h_i] == ref["patterns"][h]
        assert "".join(str(x) for x in ds.list_capture.values[h_i]) == h

    # checkpoints
    cps = list(records.checkpoints["checkpoint_id"])
    assert list(ds.checkpoint.values) == cps
    for c_i, cp in enumerate(cps):
        for m_i, m in enumerate(months):
            row = ref["flows"].get((cp, m))
            assert bool(ds.checkpoint_reported.values[c_i, m_i]) == (row is not None)
            for col in (
                "crossings_citizens",
                "crossings_foreigners",
                "refusals_of_entry",
                "invalid_documents",
            ):
                assert ds[col].values[c_i, m_i] == (row[col] if row else 0)
            w = ds.mean_wait_minutes.values[c_i, m_i]
            assert (math.isnan(w) and row is None) or w == row["mean_wait_minutes"]
    foreigners, weight, wait, plain, reporting = ref["land"]
    for i, s in enumerate(sections):
        for m_i, m in enumerate(months):
            assert ds.land_crossings_foreigners.values[i, m_i] == foreigners.get((s, m), 0)
            assert ds.land_checkpoints_reporting.values[i, m_i] == reporting.get((s, m), 0)
            got = ds.land_mean_wait_minutes.values[i, m_i]
            if weight.get((s, m), 0) > 0:
                assert got == pytest.approx(wait[(s, m)] / weight[(s, m)])
            elif reporting.get((s, m), 0) > 0:
                assert got == pytest.approx(plain[(s, m)] / reporting[(s, m)])
            else:
                assert math.isnan(got)


def check_summary(records: RecordSet) -> None:
    table = data_summary(records)
    ref = brute_summary(records)
    assert table.index.name == "section"
    assert list(table.index) == list(records.sections["section_id"])
    assert list(table.columns) == [
        "apprehension_records",
        "distinct_people",
        "apprehensions",
        "reapprehension_rate",
        "legal_crossings",
        "mean_wait_minutes",
    ]
    for s, expected in ref.items():
        # per-cell access: a row Series of mixed dtypes would turn NaN into <NA>
        row = {c: table.at[s, c] for c in table.columns}
        assert row["apprehension_records"] == expected["apprehension_records"]
        if expected["distinct_people"] is None:
            assert pd.isna(row["distinct_people"])
        else:
            assert row["distinct_people"] == expected["distinct_people"]
        if expected["apprehensions"] is None:
            assert pd.isna(row["apprehensions"]), s
        else:
            assert row["apprehensions"] == expected["apprehensions"]
        if expected["legal_crossings"] is None:
            assert pd.isna(row["legal_crossings"]), s
        else:
            assert row["legal_crossings"] == expected["legal_crossings"]
        for col in ("reapprehension_rate", "mean_wait_minutes"):
            if math.isnan(expected[col]):
                assert math.isnan(row[col]), (s, col)
            else:
                assert row[col] == pytest.approx(expected[col]), (s, col)


# --------------------------------------------------------------------------------------------------------------
# Hand-made data
# --------------------------------------------------------------------------------------------------------------


def small_records() -> RecordSet:
    A = [
        # p1: omsk, three times in 2006 (Q1, Q1, Q3), twice labour, once smuggler -> labour; once in 2007
        appr("2006-01-05", "omsk", "p1", "labour_migrant"),
        appr("2006-02-10", "omsk", "p1", "smuggler", "technical"),
        appr("2006-08-01", "omsk", "p1", "labour_migrant"),
        appr("2007-03-03", "omsk", "p1", "transit_migrant"),
        # p2: omsk tie between smuggler and border_resident -> border_resident (first in CATEGORIES)
        appr("2006-04-01", "omsk", "p2", "smuggler"),
        appr("2006-12-31", "omsk", "p2", "border_resident", "informant"),
        # p3: once in omsk, once in orenburg (two strata)
        appr("2006-05-05", "omsk", "p3", "bypasser"),
        appr("2006-05-06", "orenburg", "p3", "bypasser"),
    ]
    totals = [
        {
            "section_id": "kurgan",
            "month": "2006-03-01",
            "category": "smuggler",
            "detected_by": "patrol",
            "apprehensions": 7,
        },
        {
            "section_id": "kurgan",
            "month": "2007-06-01",
            "category": "labour_migrant",
            "detected_by": "informant",
            "apprehensions": 2,
        },
    ]
    regs = [
        {"register": "overstay", "person_id": "p1", "date": "2006-06-01"},
        {"register": "overstay", "person_id": "p9", "date": "2006-06-01"},
        {"register": "deportation", "person_id": "p1", "date": "2007-01-01"},
        {"register": "deportation", "person_id": "p1", "date": "2007-02-01"},
    ]
    cprec = [
        {"checkpoint_id": "omsk_road", "month": "2006-01-01", "crossings_citizens": 100, "crossings_foreigners": 50, "refusals_of_entry": 3, "invalid_documents": 1, "mean_wait_minutes": 30.0},
        {"checkpoint_id": "omsk_rail", "month": "2006-01-01", "crossings_citizens": 50, "crossings_foreigners": 0, "refusals_of_entry": 0, "invalid_documents": 0, "mean_wait_minutes": 90.0},
        {"checkpoint_id": "omsk_air", "month": "2006-01-01", "crossings_citizens": 1000, "crossings_foreigners": 1000, "refusals_of_entry": 0, "invalid_documents": 0, "mean_wait_minutes": 5.0},
        {"checkpoint_id": "omsk_road", "month": "2006-02-01", "crossings_citizens": 0, "crossings_foreigners": 0, "refusals_of_entry": 0, "invalid_documents": 0, "mean_wait_minutes": 12.0},
    ]  # fmt: skip
    return make_records(A, totals, regs, cprec)


def test_land_wait_is_the_simulators_bypass_input():
    # reference: the simulator's own w_{s,t} (truth.nc), computed from its flows before rounding the records
    from estim.paths import SYNTHETIC_DIR
    from estim.records import DEFAULT_KEY, load_records

    ds = sufficient_statistics(load_records(SYNTHETIC_DIR, key=DEFAULT_KEY), occasion=None)
    with xr.open_dataset(SYNTHETIC_DIR / "truth.nc") as truth:
        expected = truth["land_mean_wait"].sel(section=ds["section"]).values
    np.testing.assert_allclose(ds["land_mean_wait_minutes"].values, expected, rtol=1e-9)


def test_hand_made_values():
    ds = sufficient_statistics(small_records(), period="year", occasion="quarter")
    assert ds.attrs["period"] == "year" and ds.attrs["occasion"] == "quarter"
    assert list(ds.period.values) == ["2006", "2007"]
    assert list(ds.occasion.values) == [1, 2, 3, 4]
    # omsk 2006: p1 (3x, labour), p2 (2x, border_resident by the tie rule), p3 (1x, bypasser)
    f = ds.frequency.sel(section="omsk", period="2006")
    assert f.sel(category="labour_migrant", k=3) == 1
    assert f.sel(category="border_resident", k=2) == 1
    assert f.sel(category="smuggler").sum() == 0
    assert f.sel(category="bypasser", k=1) == 1
    assert ds.frequency.sel(section="omsk", period="2007", category="transit_migrant", k=1) == 1
    assert ds.frequency.sel(section="orenburg", k=1).sum() == 1
    assert ds.frequency.sel(section="kurgan").sum() == 0
    # capture histories over quarters: p1 "1010", p2 "0101", p3 "0100"; orenburg p3 "0100"
    h = ds.history_count.sel(section="omsk", period="2006")
    assert {str(k): int(v) for k, v in zip(h.history.values, h.values, strict=True) if v} == {
        "1010": 1,
        "0101": 1,
        "0100": 1,
    }
    assert list(ds.capture.sel(history="1010").values) == [1, 0, 1, 0]
    # apprehended: kurgan from totals, omsk from records
    assert (
        ds.apprehended.sel(
            section="kurgan", month="2006-03-01", category="smuggler", detector="patrol"
        )
        == 7
    )
    assert ds.apprehended.sel(section="omsk").sum() == 7
    assert list(
        ds.individual_records.values[[SECTIONS.index(s) for s in ("omsk", "orenburg", "kurgan")]]
    ) == [True, True, False]
    # lists: overstay, deportation present (REGISTERS order), then apprehensions
    assert list(ds.list.values) == ["overstay", "deportation", "apprehensions"]
    counts = dict(zip(ds.list_history.values, ds.list_history_count.values.tolist(), strict=True))
    assert counts == {"111": 1, "100": 1, "001": 2}  # p1, p9, p2+p3
    # bypass inputs: omsk Jan 2006 = road + rail (air excluded), wait weighted by crossings
    assert ds.land_crossings_foreigners.sel(section="omsk", month="2006-01-01") == 50
    assert float(
        ds.land_mean_wait_minutes.sel(section="omsk", month="2006-01-01")
    ) == pytest.approx((50 * 30 + 0 * 90) / 50)  # the wait foreigners meet: the rail line had none
    assert float(
        ds.land_mean_wait_minutes.sel(section="omsk", month="2006-02-01")
    ) == pytest.approx(
        12.0
    )  # no foreign crossings: the plain mean of the reporting land checkpoints
    assert np.isnan(ds.mean_wait_minutes.sel(checkpoint="oren_road", month="2006-01-01"))
    assert not ds.checkpoint_reported.sel(checkpoint="oren_road").any()
    assert ds.checkpoint_section.sel(checkpoint="oren_river") == "orenburg"
    assert ds.checkpoint_type.sel(checkpoint="oren_river") == "river"
    check_against_brute_force(small_records(), "year", "quarter")
    check_summary(small_records())


def test_hand_made_summary():
    table = data_summary(small_records())
    omsk = table.loc["omsk"]
    assert omsk["apprehension_records"] == 7 and omsk["distinct_people"] == 3
    # every omsk apprehension is a different person-month: no re-apprehension within a journey's month
    assert omsk["reapprehension_rate"] == 0
    assert omsk["legal_crossings"] == 2200
    assert omsk["mean_wait_minutes"] == pytest.approx((150 * 30 + 50 * 90 + 2000 * 5) / 2200)
    assert table.loc["kurgan", "apprehensions"] == 9
    assert pd.isna(table.loc["kurgan", "distinct_people"])
    assert np.isnan(table.loc["kurgan", "reapprehension_rate"])
    assert np.isnan(table.loc["astrakhan", "mean_wait_minutes"])


def test_summary_legal_crossings_are_unknown_where_no_checkpoint_reported():
    # by hand: only omsk's checkpoints have records (150 + 50 + 2000 crossings in 2006-01, 0 in 2006-02);
    # orenburg's and kurgan's checkpoints reported nothing, which was printed as 0 legal crossings, exit 0
    records = small_records()
    table = data_summary(records)
    assert table.at["omsk", "legal_crossings"] == 2200
    for section in ("orenburg", "kurgan", "astrakhan"):
        assert pd.isna(table.at[section, "legal_crossings"]), section
    # a section whose checkpoints reported months without a crossing has 0, not <NA>
    flows = records.checkpoint_records
    only_empty_month = flows[flows["month"] == flows["month"].max()]
    assert only_empty_month["checkpoint_id"].tolist() == ["omsk_road"]
    zero = data_summary(dataclasses.replace(records, checkpoint_records=only_empty_month))
    assert zero.at["omsk", "legal_crossings"] == 0 and np.isnan(
        zero.at["omsk", "mean_wait_minutes"]
    )


@pytest.mark.parametrize(
    ("period", "occasion"),
    [
        ("year", "year"),
        ("quarter", "quarter"),
        ("month", "quarter"),
        ("month", "month"),
        ("quarter", "year"),
        ("week", None),
        ("year", "week"),
    ],
)
def test_invalid_period_occasion(period, occasion):
    with pytest.raises(EstimInputError):
        sufficient_statistics(small_records(), period=period, occasion=occasion)


@pytest.mark.parametrize(
    ("period", "occasion"), [("year", "month"), ("quarter", "month"), ("month", None)]
)
def test_other_periods_hand_made(period, occasion):
    check_against_brute_force(small_records(), period, occasion)


def test_no_occasion_has_no_history_variables():
    ds = sufficient_statistics(small_records(), occasion=None)
    assert "history_count" not in ds and "occasion" not in ds.dims
    assert ds.attrs["occasion"] == "none"


def test_missing_optional_tables_and_no_apprehensions():
    records = make_records(
        checkpoint_records=[
            {"checkpoint_id": "omsk_road", "month": "2010-05-01", "crossings_citizens": 4}
        ]
    )
    ds = sufficient_statistics(records)
    assert ds.sizes["k"] == 0 and ds.sizes["history"] == 0 and ds.sizes["list_history"] == 0
    assert ds.sizes["month"] == 1 and ds.sizes["period"] == 1
    assert list(ds.list.values) == ["apprehensions"]
    assert ds.frequency.shape == (12, 1, 5, 0)
    assert int(ds.apprehended.sum()) == 0
    check_against_brute_force(records, "year", "quarter")
    check_summary(records)
    # no data at all: every time dim is empty, nothing fails
    empty = sufficient_statistics(make_records())
    assert empty.sizes["month"] == 0 and empty.sizes["period"] == 0


def test_double_count_is_refused():
    records = make_records(
        [appr("2006-03-05", "omsk", "p1")],
        totals=[{"section_id": "omsk", "month": "2006-03-01", "category": "smuggler", "detected_by": "patrol", "apprehensions": 1}],
    )  # fmt: skip
    with pytest.raises(EstimInputError, match="double_count"):
        sufficient_statistics(records)


def test_mixed_section_warns_but_counts_both():
    records = make_records(
        [appr("2006-03-05", "omsk", "p1")],
        totals=[{"section_id": "omsk", "month": "2006-04-01", "category": "smuggler", "detected_by": "patrol", "apprehensions": 4}],
    )  # fmt: skip
    with pytest.warns(UserWarning, match="omsk"):
        ds = sufficient_statistics(records)
    assert int(ds.apprehended.sel(section="omsk").sum()) == 5


def test_unknown_labels_are_input_errors():
    records = make_records([appr("2006-03-05", "omsk", "p1")], sections=("orenburg",))
    with pytest.raises(EstimInputError, match="section_id"):
        sufficient_statistics(records)


def test_python_string_storage_gives_the_same_statistics():
    # Text columns not backed by Arrow take the factorize path instead of pyarrow's index_in.
    arrow = small_records()
    python = small_records()
    for name, table in python.tables().items():
        for column in table.columns:
            if isinstance(table[column].dtype, pd.StringDtype):
                table[column] = table[column].astype(pd.StringDtype("python"))
        setattr(python, name, table)
    assert python.apprehensions["category"].dtype.storage == "python"
    xr_testing.assert_identical(sufficient_statistics(arrow), sufficient_statistics(python))
    pd.testing.assert_frame_equal(data_summary(arrow), data_summary(python))


def test_netcdf_round_trip(tmp_path):
    ds = sufficient_statistics(small_records())
    ds.to_netcdf(tmp_path / "s.nc")
    import xarray as xr

    back = xr.load_dataset(tmp_path / "s.nc")
    assert int(back.frequency.sum()) == int(ds.frequency.sum())


# --------------------------------------------------------------------------------------------------------------
# Random tables
# --------------------------------------------------------------------------------------------------------------

_DAY0 = pd.Timestamp("2006-01-01")
_USED = ("omsk", "orenburg", "kurgan")
_TOTALS_SECTIONS = ("astrakhan", "saratov")


@st.composite
def random_records(draw) -> RecordSet:
    n_people = draw(st.integers(1, 12))
    people = [f"h{i:02d}" for i in range(n_people)]
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 729),  # two years of days
                st.sampled_from(_USED),
                st.sampled_from(people),
                st.sampled_from(CATEGORIES),
                st.sampled_from(DETECTORS),
            ),
            max_size=60,
        )
    )
    apprehensions = [appr(_DAY0 + pd.Timedelta(days=d), s, p, c, det) for d, s, p, c, det in rows]
    total_cells = draw(
        st.dictionaries(
            st.tuples(
                st.sampled_from(_TOTALS_SECTIONS),
                st.integers(0, 23),
                st.sampled_from(CATEGORIES),
                st.sampled_from(DETECTORS),
            ),
            st.integers(0, 50),
            max_size=10,
        )
    )
    totals = [
        {"section_id": s, "month": _DAY0 + pd.DateOffset(months=m), "category": c, "detected_by": d, "apprehensions": v}
        for (s, m, c, d), v in total_cells.items()
    ]  # fmt: skip
    regs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(REGISTERS),
                st.sampled_from([*people, "r1", "r2"]),
                st.integers(-400, 1100),  # before, within and after the records' two years
            ),
            max_size=15,
        )
    )
    registers = [
        {"register": r, "person_id": p, "date": _DAY0 + pd.Timedelta(days=d)} for r, p, d in regs
    ]
    cells = draw(
        st.dictionaries(
            st.tuples(st.sampled_from([c for c, _, _ in CHECKPOINTS]), st.integers(0, 23)),
            st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 20), st.integers(0, 20), st.integers(0, 600)),
            max_size=20,
        )
    )  # fmt: skip
    cprec = [
        {
            "checkpoint_id": cp,
            "month": _DAY0 + pd.DateOffset(months=m),
            "crossings_citizens": a,
            "crossings_foreigners": b,
            "refusals_of_entry": r,
            "invalid_documents": i,
            "mean_wait_minutes": w / 4,
        }
        for (cp, m), (a, b, r, i, w) in cells.items()
    ]
    return make_records(apprehensions, totals, registers, cprec)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=random_records(),
    combo=st.sampled_from(
        [
            ("year", "quarter"),
            ("year", "month"),
            ("quarter", "month"),
            ("year", None),
            ("month", None),
        ]
    ),
)
def test_random_tables_match_brute_force(records, combo):
    check_against_brute_force(records, *combo)
    check_summary(records)


# --------------------------------------------------------------------------------------------------------------
# Benchmark script
# --------------------------------------------------------------------------------------------------------------


def run_bench(n: int, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--records", str(n), "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bench_script_small():
    result = run_bench(20_000, timeout=120)
    assert result["records"] == 20_000
    assert result["statistics_seconds"] > 0
    assert result["frequency_total_people"] == result["person_strata"]
    assert result["sum_k_f_k"] == 20_000  # sum_k k f_k gives back every apprehension


@pytest.mark.slow
def test_bench_10_million_records():
    result = run_bench(10_000_000, timeout=900)
    assert result["load_seconds"] + result["statistics_seconds"] < 60, result
    assert result["peak_rss_bytes"] < 4 * 2**30, result


def test_reapprehension_rate_counts_retries_within_the_month_only():
    # Espenshade: p-hat = re-apprehensions / apprehensions. p1 is caught 3 times in January 2006 (one journey:
    # 2 re-apprehensions) and once in March (a new journey, not a re-apprehension); p2 twice in January.
    rows = [
        appr("2006-01-02", "omsk", "p1"),
        appr("2006-01-09", "omsk", "p1"),
        appr("2006-01-20", "omsk", "p1"),
        appr("2006-03-01", "omsk", "p1"),
        appr("2006-01-05", "omsk", "p2"),
        appr("2006-01-06", "omsk", "p2"),
    ]
    table = data_summary(make_records(rows))
    assert table.loc["omsk", "reapprehension_rate"] == pytest.approx(3 / 6)
    assert table.loc["omsk", "distinct_people"] == 2


def test_a_section_month_is_reported_by_a_total_of_zero_or_a_record_not_by_nothing():
    """``apprehensions_reported``: a totals row of 0 reports the month, a record does; a month with neither
    is 0 in ``apprehended`` but not reported (the border model refuses it: rule month_gap)."""
    records = make_records(
        [appr("2006-03-05", "omsk", "p1")],
        totals=[
            {"section_id": "orenburg", "month": "2006-03-01", "category": "smuggler", "detected_by": "patrol", "apprehensions": 0},
            {"section_id": "orenburg", "month": "2006-05-01", "category": "smuggler", "detected_by": "patrol", "apprehensions": 2},
        ],
    )  # fmt: skip
    ds = sufficient_statistics(records)
    reported = ds["apprehensions_reported"].sel(section=["omsk", "orenburg"])
    months = [str(m)[:7] for m in ds["month"].values]
    assert months == ["2006-03", "2006-04", "2006-05"]
    assert reported.transpose("section", "month").values.tolist() == [
        [True, False, False],
        [True, False, True],
    ]
    assert int(ds["apprehended"].sel(section="orenburg").sum("month").sum()) == 2
