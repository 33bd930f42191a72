"""The `LISTS` data kind of the multiple-list families: a pattern table read exactly as the closed family's
HISTORIES reads it, the records' pattern table of one period against counts made from the raw CSV, the
refusals, and the border spec against SparseMSE 2.0.1 run on the same table."""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict

import pandas as pd
import pytest
from records_fixtures import TOTALS_TO_DECEMBER, write_dataset
from xarray import testing as xr_testing

from estim.benchmarks import reference_estimates
from estim.errors import EstimInputError
from estim.families.base import FAMILIES, DataFieldError
from estim.families.closed import HISTORIES
from estim.families.lists import build_latent_class
from estim.families.lists.data import LISTS, list_table
from estim.paths import BENCHMARKS_DIR, REPO_ROOT, SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.run.data import load_data
from estim.run.mle import fit_mle
from estim.run.spec import parse_spec, read_spec

BENCHMARKS = {
    "kosovo_4lists": ("Freq", ["EXH", "ABA", "OSCE", "HRW"]),
    "uk_modern_slavery_5lists": ("count", ["LA", "NG", "PFNCA", "GO", "GP"]),
}
LIST_NAMES = ["police_check", "overstay", "deportation", "apprehensions"]


def _fields(kind, **given):
    fields = {
        f.name: (tuple(f.default) if f.many and f.default else f.default) for f in kind.fields
    }
    return {**fields, **given}


@pytest.fixture(scope="module")
def synthetic():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


@pytest.fixture(scope="module")
def raw_2010() -> dict[str, int]:
    """People by pattern in 2010 from the raw CSV files, by plain loops over rows and person keys."""
    a = pd.read_csv(SYNTHETIC_DIR / "apprehensions.csv", dtype=str)
    r = pd.read_csv(SYNTHETIC_DIR / "registers.csv", dtype=str)
    on: dict[str, set[str]] = defaultdict(set)
    for key, date in zip(a.person_key, a.date, strict=True):
        if date.startswith("2010"):
            on[key].add("apprehensions")
    for key, date, register in zip(r.person_key, r.date, r.register, strict=True):
        if date.startswith("2010"):
            on[key].add(register)
    out: dict[str, int] = defaultdict(int)
    for lists in on.values():
        out["".join("1" if name in lists else "0" for name in LIST_NAMES)] += 1
    return dict(out)


def _pattern_csv(counts: dict[str, int], path):
    rows = [[int(c) for c in p] + [n] for p, n in counts.items()]
    pd.DataFrame(rows, columns=[*LIST_NAMES, "people"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_a_pattern_table_reads_as_the_histories_path_does(name):
    count, columns = BENCHMARKS[name]
    table = pd.read_csv(BENCHMARKS_DIR / f"{name}.csv")
    expected = HISTORIES.from_benchmark(
        table, _fields(HISTORIES, layout="patterns", count=count, occasions=columns)
    )
    for field in ("occasions", "lists"):
        got = LISTS.from_benchmark(
            table, _fields(LISTS, layout="patterns", count=count, **{field: columns})
        )
        xr_testing.assert_identical(got, expected)
    # one row per person ("individuals") gives the same counts as the pattern table
    people = table.loc[table.index.repeat(table[count])].drop(columns=count)
    got = LISTS.from_benchmark(people, _fields(LISTS, layout="individuals", lists=columns))
    xr_testing.assert_identical(got, expected)


def test_records_table_equals_raw_counts_and_the_same_table_read_from_a_file(
    synthetic, raw_2010, tmp_path
):
    data = list_table(synthetic, period="2010")
    assert list(data.occasion.values) == LIST_NAMES and list(data.stratum.values) == ["all"]
    got = {
        str(h): int(n)
        for h, n in zip(data.history.values, data.history_count.values[0], strict=True)
    }
    assert got == raw_2010
    # the spec path gives the same dataset, and so does the pattern table written as a CSV file
    spec = parse_spec(
        {
            "name": "t",
            "family": "lists_stepwise",
            "seed": 1,
            "data": {"records": str(SYNTHETIC_DIR), "period": "2010"},
        }
    )
    xr_testing.assert_identical(load_data(spec), data)
    path = _pattern_csv(raw_2010, tmp_path / "patterns.csv")
    from_file = parse_spec(
        {
            "name": "t",
            "family": "lists_stepwise",
            "seed": 1,
            "data": {
                "file": str(path),
                "layout": "patterns",
                "count": "people",
                "lists": LIST_NAMES,
            },
        }
    )
    xr_testing.assert_identical(load_data(from_file), data.drop_attrs())


def test_the_border_spec_reproduces_sparsemse(raw_2010):
    """`estim fit models/border_lists_stepwise.toml --mle`: SparseMSE 2.0.1's estimatepopulation.0(z,
    method = "stepwise", pthresh = 0.02) on the 2010 table made from the raw CSV gives N̂ 18,005.2733704 with
    the same six interactions (run here: Rscript, R 4.2.2, on that table)."""
    t0 = time.perf_counter()
    res = fit_mle(read_spec(REPO_ROOT / "models" / "border_lists_stepwise.toml"))
    assert time.perf_counter() - t0 < 60
    assert res.n_hat == pytest.approx(18005.2733704, rel=1e-8)
    assert sorted(map(tuple, res.extra["interactions"])) == sorted(
        [
            ("police_check", "overstay"),
            ("deportation", "apprehensions"),
            ("police_check", "deportation"),
            ("overstay", "deportation"),
            ("overstay", "apprehensions"),
            ("police_check", "apprehensions"),
        ]
    )
    assert res.n_hat > sum(raw_2010.values())


def test_both_list_families_take_lists_and_the_latent_class_model_builds_on_records(synthetic):
    assert FAMILIES["lists_stepwise"].data is LISTS and FAMILIES["lists_latent_class"].data is LISTS
    data = list_table(synthetic, period="2010")
    model = build_latent_class(data, classes=3)
    assert model.coords["list"] == tuple(LIST_NAMES) and len(model.coords["history"]) == 15


def test_a_section_needs_registers_placed_in_sections(synthetic):
    # the shipped registers carry section_id: a section's table holds the people of that section
    spec = parse_spec(
        {
            "name": "t",
            "family": "lists_stepwise",
            "seed": 1,
            "data": {"records": str(SYNTHETIC_DIR), "period": "2010", "section": "omsk"},
        }
    )
    omsk = load_data(spec)
    whole = list_table(synthetic, period="2010")
    orenburg = list_table(synthetic, period="2010", section="orenburg")
    assert list(omsk.stratum.values) == ["omsk"]
    assert int(omsk.history_count.sum()) + int(orenburg.history_count.sum()) == int(
        whole.history_count.sum()
    )
    # registers without it (a researcher's may lack the column): a section's table is refused
    unplaced = dataclasses.replace(
        synthetic,
        registers=synthetic.registers.assign(
            section_id=pd.Series(pd.NA, index=synthetic.registers.index, dtype="string")
        ),
    )
    with pytest.raises(DataFieldError, match=r"carry no section_id.*cannot be placed.*mix"):
        list_table(unplaced, period="2010", section="omsk")
    with pytest.raises(EstimInputError, match=r"\[data\] period: '1990' not in the records"):
        list_table(synthetic, period="1990")


def test_a_table_with_an_empty_list_is_refused_by_name():
    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv").assign(NGO=0)
    lists = ["EXH", "ABA", "NGO", "OSCE", "HRW"]
    with pytest.raises(EstimInputError, match="nobody is on the list 'NGO'"):
        LISTS.from_benchmark(table, _fields(LISTS, layout="patterns", count="Freq", lists=lists))


def test_a_table_in_which_nobody_is_on_two_lists_is_refused():
    # the overlaps carry all the information about the people on no list: without one, lists_stepwise ran to
    # N-hat 2.4e15 and lists_bma returned a posterior set by its prior (median 111 for 95 seen)
    table = pd.DataFrame(
        {"police": [1, 0, 0], "overstay": [0, 1, 0], "deport": [0, 0, 1], "n": [40, 30, 25]}
    )
    fields = _fields(LISTS, layout="patterns", count="n", lists=["police", "overstay", "deport"])
    with pytest.raises(EstimInputError, match="the table: nobody is on more than one list"):
        LISTS.from_benchmark(table, fields)
    # one person on all three lists, and the table is read (on two only, the third would share nobody with
    # the others: refused too, tests/families/test_lists_inputs.py)
    table.loc[len(table)] = [1, 1, 1, 1]
    assert int(LISTS.from_benchmark(table, fields)["history_count"].sum()) == 96


def test_a_period_or_section_with_an_empty_list_is_refused_by_name(tmp_path):
    # the clean hand-made records: Jan–Feb 2010 apprehensions in Omsk and Orenburg, a police check (Mar 1)
    # of an apprehended person, an overstay (Apr 11) of someone never apprehended, no deportations; a Kurgan
    # total of December runs the records to the end of 2010, so the register entries are in their span
    records = load_records(
        write_dataset(tmp_path / "r", apprehension_totals=TOTALS_TO_DECEMBER), key=b"k"
    )
    # the overstay shares nobody with the other lists: refused unless asked for (to look at the records)
    with pytest.raises(
        EstimInputError, match=r"nobody on the list 'overstay' is on any other list"
    ):
        list_table(records, period="2010")
    year = list_table(records, period="2010", allow_unlinked=True)
    assert list(year.occasion.values) == ["police_check", "overstay", "apprehensions"]
    got = {
        str(h): int(n)
        for h, n in zip(year.history.values, year.history_count.values[0], strict=True)
    }
    assert got == {"101": 1, "001": 2, "010": 1}
    # the first quarter: nobody overstaying yet
    with pytest.raises(
        EstimInputError, match=r"period 2010Q1, whole border: nobody is on the list 'overstay'"
    ):
        list_table(records, period="2010Q1", period_kind="quarter")
    # a section with no individual records (Kurgan reports totals): its apprehension list is empty
    placed = dataclasses.replace(
        records, registers=records.registers.assign(section_id=["kurgan", "kurgan"])
    )
    with pytest.raises(
        EstimInputError, match=r"'apprehensions'.*no individual apprehension records"
    ):
        list_table(placed, period="2010", section="kurgan")
    # records without registers hold one list only
    none = dataclasses.replace(records, registers=records.registers.iloc[:0])
    with pytest.raises(EstimInputError, match="at least two lists"):
        list_table(none, period="2010")


@pytest.mark.parametrize(
    ("fields", "source", "field", "says"),
    [
        ({"layout": "patterns", "count": "n"}, "records", "layout", "for a table"),
        ({"period": None}, "records", "period", "missing"),
        ({"layout": "frequencies", "count": "n"}, "file", "layout", "f_k table"),
        ({}, "file", "layout", "missing"),
        (
            {"layout": "patterns", "count": "n", "lists": ("a", "b"), "occasions": ("a", "b")},
            "file",
            "occasions",
            "twice",
        ),
        (
            {"layout": "patterns", "count": "n", "period": "2010"},
            "benchmark",
            "period",
            "for records",
        ),
        ({"layout": "patterns"}, "file", "count", "missing"),
    ],
)
def test_field_rules_name_the_field(fields, source, field, says):
    base = _fields(LISTS, period="2010") if source == "records" else _fields(LISTS)
    with pytest.raises(DataFieldError, match=says) as e:
        LISTS.check({**base, **fields}, source)
    assert e.value.field == field


def test_a_table_without_its_lists_declared_is_refused_naming_the_candidates(tmp_path):
    # a 0/1 column that is not a list (urban) was read as a fifth list: lists_stepwise gave N̂ 5,345 for
    # Kosovo's 14,342, exit 0
    table = pd.read_csv(BENCHMARKS_DIR / "kosovo_4lists.csv")
    table.insert(4, "urban", [i % 2 for i in range(len(table))])
    table.to_csv(tmp_path / "kosovo.csv", index=False)
    data = {"file": str(tmp_path / "kosovo.csv"), "layout": "patterns", "count": "Freq"}
    raw = {"name": "t", "family": "lists_stepwise", "seed": 1, "data": data}
    with pytest.raises(EstimInputError) as e:
        load_data(parse_spec(raw))
    message = str(e.value)
    assert "kosovo.csv: [data] lists: missing" in message
    assert "would be read as one more list and change N̂" in message
    assert "undeclared 0/1 columns, in file order: EXH, ABA, OSCE, HRW, urban." in message
    assert (
        'Declare lists = ["EXH", "ABA", "OSCE", "HRW", "urban"], keeping only the list columns'
        in message
    )
    assert "covariates" not in message  # the lists take none
    res = fit_mle(parse_spec({**raw, "data": {**data, "lists": BENCHMARKS["kosovo_4lists"][1]}}))
    ref = reference_estimates()["kosovo_4lists"]["estimates"]["lists_stepwise"]
    assert res.n_hat == pytest.approx(ref["n_hat"], abs=0.01)
