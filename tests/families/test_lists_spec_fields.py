"""The list families' ``[data]`` fields ``register_delay_days`` and ``allow_empty_months`` (records only).

Before: the two ways out of `list_table`'s refusals of a period short against the registers' dating and of a
month missing from the apprehension file were Python keywords only; a spec writing them was refused as an
unknown field, so a CLI user read "list_table(..., register_delay_days=0)" and could not act on it. The
references here are counts made from the raw CSV files and `list_table` called from Python with the same
keyword, never the CLI's own output.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from records_fixtures import TOTALS_TO_DECEMBER, copy_synthetic, write_dataset

from estim.cli import cli
from estim.errors import EstimInputError
from estim.families.base import FAMILIES
from estim.families.lists.data import list_table
from estim.paths import REPO_ROOT, SYNTHETIC_DIR
from estim.records import load_records
from estim.run.data import _fit_spec
from estim.run.fit import load_data
from estim.run.spec import parse_spec, read_spec

KEY = "test-key"
LISTS = ["police_check", "overstay", "deportation", "apprehensions"]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="module")
def cut(tmp_path_factory) -> Path:
    """The shipped records as if they had stopped at the end of June 2017."""
    return copy_synthetic(
        tmp_path_factory.mktemp("cut") / "cut", lambda _, when: when[:7] <= "2017-06"
    )


@pytest.fixture(scope="module")
def no_march(tmp_path_factory) -> Path:
    """The shipped records with every apprehension record of March 2017 taken out of the apprehension file."""
    return copy_synthetic(
        tmp_path_factory.mktemp("gap") / "no_march",
        lambda name, when: name != "apprehensions.csv" or not when.startswith("2017-03"),
    )


def _spec(tmp_path: Path, records: Path, *lines: str) -> Path:
    path = tmp_path / "lists.toml"
    path.write_text(
        'family = "lists_stepwise"\nseed = 1\n[data]\n'
        f'records = "{records}"\nperiod = "2017"\n' + "".join(f"{line}\n" for line in lines)
    )
    return path


def _fit(path: Path):
    result = CliRunner().invoke(cli, ["fit", "--mle", "--format", "json", str(path)])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _table(data: xr.Dataset) -> dict[str, int]:
    counts = data["history_count"].sum("stratum").values
    return {str(h): int(n) for h, n in zip(data["history"].values, counts, strict=True) if n}


def _on_each_list(data: xr.Dataset) -> dict[str, int]:
    counts = data["history_count"].sum("stratum").values
    capture = data["capture"].transpose("history", "occasion")
    return {
        str(o): int(counts[capture.sel(occasion=o).values == 1].sum())
        for o in data["occasion"].values
    }


def _people_by_hand(folder: Path, keep) -> dict[str, int]:
    """From the raw CSV files: the people on each list with an entry whose date `keep` takes."""
    a = pd.read_csv(folder / "apprehensions.csv", dtype=str, usecols=["date", "person_key"])
    r = pd.read_csv(folder / "registers.csv", dtype=str)
    out = {"apprehensions": a.loc[a["date"].map(keep), "person_key"].nunique()}
    for name in LISTS[:-1]:
        on = r[(r["register"] == name) & r["date"].map(keep)]
        out[name] = on["person_key"].nunique()
    return out


# --------------------------------------------------------------------------------------------------------------
# Records cut at June 2017: refused, and declared dated at the events, fitted with a warning


def test_records_cut_at_june_are_refused_naming_the_spec_field(tmp_path, cut):
    result, _ = _fit(_spec(tmp_path, cut))
    assert result.exit_code == 2, result.output
    assert "the records cover only 6 of the period's 12 months" in result.stderr
    assert (
        "declare it ([data] register_delay_days = 0 in the spec, or list_table(..., "
        "register_delay_days=0) from Python)" in result.stderr
    )


def test_a_declared_delay_fits_the_python_table_with_a_warning(tmp_path, cut):
    path = _spec(tmp_path, cut, "register_delay_days = 0")
    result, fitted = _fit(path)
    assert result.exit_code == 0, result.output
    assert "[data] register_delay_days = 0 declares the registers' entries dated" in result.stderr
    assert "which checks nothing" in result.stderr
    # the spec's table is list_table's with the same keyword, and the six months' people counted by hand
    records = load_records(cut, key=KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python = list_table(records, period="2017", register_delay_days=0)
    with pytest.warns(UserWarning, match="register_delay_days = 0 declares .* checks nothing"):
        spec_data = load_data(read_spec(path))
    assert _table(spec_data) == _table(python)
    assert spec_data.attrs["register_delay"] == "declared 0 days"
    assert _on_each_list(spec_data) == _people_by_hand(
        SYNTHETIC_DIR, lambda d: "2017-01" <= d[:7] <= "2017-06"
    )
    reference = FAMILIES["lists_stepwise"].mle(python, threshold=0.02)
    assert fitted["n_hat"] == pytest.approx(reference.n_hat, rel=1e-12)
    # docs/multiple_lists.md: the six months' table gives 23,418, from the cut records or the full ones
    assert fitted["n_hat"] == pytest.approx(23418.11, abs=0.01)


def test_a_declared_delay_is_checked_against(tmp_path, cut):
    """A delay declared as long as the synthetic registers' (a year) is refused like the measured one."""
    result, _ = _fit(_spec(tmp_path, cut, "register_delay_days = 365"))
    assert result.exit_code == 2, result.output
    assert "police_check: declared, up to 365 days" in result.stderr


# --------------------------------------------------------------------------------------------------------------
# A month missing from the apprehension file: refused, and declared without apprehensions, fitted


def test_a_missing_month_is_refused_naming_the_spec_field(tmp_path, no_march):
    result, _ = _fit(_spec(tmp_path, no_march))
    assert result.exit_code == 2, result.output
    assert "holds no record of any surveyed section (orenburg, omsk) in 2017-03" in result.stderr
    assert (
        "declare it ([data] allow_empty_months = true in the spec, or list_table(..., "
        "allow_empty_months=True) from Python)" in result.stderr
    )


def test_months_declared_empty_fit_the_python_table(tmp_path, no_march):
    path = _spec(tmp_path, no_march, "allow_empty_months = true")
    result, fitted = _fit(path)
    assert result.exit_code == 0, result.output
    assert "declared months nobody was apprehended in (allow_empty_months)" in result.stderr
    records = load_records(no_march, key=KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python = list_table(records, period="2017", allow_empty_months=True)
        spec_data = load_data(read_spec(path))
    assert _table(spec_data) == _table(python)
    assert spec_data.attrs["apprehension_months_declared_empty"] == "2017-03"
    assert _on_each_list(spec_data) == _people_by_hand(no_march, lambda d: d.startswith("2017"))
    reference = FAMILIES["lists_stepwise"].mle(python, threshold=0.02)
    assert fitted["n_hat"] == pytest.approx(reference.n_hat, rel=1e-12)
    # docs/multiple_lists.md: the table the old code fitted without a word
    assert fitted["n_hat"] == pytest.approx(15247.98, abs=0.01)


def test_the_unmeasured_delay_warning_names_the_spec_field(tmp_path):
    records = load_records(
        write_dataset(tmp_path / "r", apprehension_totals=TOTALS_TO_DECEMBER), key=KEY
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list_table(records, period="2010", allow_unlinked=True)
    said = [str(w.message) for w in caught if "could not measure" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert "[data] register_delay_days = N in the spec" in said[0]


# --------------------------------------------------------------------------------------------------------------
# Read from a spec: records only, values checked, hashes kept

KOSOVO = {
    "benchmark": "kosovo_4lists",
    "layout": "patterns",
    "count": "Freq",
    "lists": ["EXH", "ABA", "OSCE", "HRW"],
}
RECORDS = {"records": "data/synthetic", "period": "2010"}


def _raw(**data):
    return {"name": "t", "family": "lists_stepwise", "seed": 1, "data": data}


@pytest.mark.parametrize(
    "field",
    [{"register_delay_days": 0}, {"allow_empty_months": True}, {"allow_empty_months": False}],
)
@pytest.mark.parametrize("table", ["benchmark", "file"])
def test_a_table_spec_writing_either_field_is_refused(field, table):
    data = KOSOVO if table == "benchmark" else {**KOSOVO, "benchmark": None, "file": "k.csv"}
    data = {k: v for k, v in data.items() if v is not None}
    (name,) = field
    with pytest.raises(EstimInputError, match=rf"\[data\] {name}: only for records") as e:
        parse_spec(_raw(**data, **field))
    assert "would be ignored: remove it" in str(e.value)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        (
            "register_delay_days",
            -1,
            "the days after an event within which the registers date its entries: a whole number "
            ">= 0 (0: dated at the event); got -1",
        ),
        ("register_delay_days", 1.5, "expected an integer, got 1.5"),
        ("register_delay_days", "30", "expected an integer, got '30'"),
        ("register_delay_days", True, "expected an integer, got True"),
        ("register_delay_days", 30.0, "expected an integer, got 30.0"),
        ("allow_empty_months", "true", "expected true or false, got 'true'"),
        ("allow_empty_months", 1, "expected true or false, got 1"),
    ],
)
def test_bad_values_are_refused_when_the_spec_is_read(tmp_path, field, value, says):
    with pytest.raises(EstimInputError) as e:
        parse_spec(_raw(**RECORDS, **{field: value}), source=tmp_path / "m.toml")
    assert f"m.toml: [data] {field}: {says}" in str(e.value)


def test_good_values_are_read():
    spec = parse_spec(_raw(**RECORDS, register_delay_days=30, allow_empty_months=True))
    assert spec.data.fields["register_delay_days"] == 30
    assert spec.data.fields["allow_empty_months"] is True
    default = parse_spec(_raw(**RECORDS))
    assert default.data.fields["register_delay_days"] is None
    assert default.data.fields["allow_empty_months"] is False


# the spec hashes of the shipped lists specs before the two fields existed (computed at 4fc6b64): a fit saved
# then is still the fit of its spec (local fits are not in git, so the reference is the hash itself)
HASHES_BEFORE_THE_FIELDS = {
    "border_lists_latent_class": "db9cc7c0a44d27ad105951a57cddc8ae44d9258cff4cb1fb1907453eb76f6396",
    "border_lists_stepwise": "27394d5565298e071e5d141800c2b3eec5704669051ffec945548e01fc2470ab",
    "kosovo_lists_bma": "bd2c8853cc80c191805b8760cc6d994d9e64d4fb3045fc8b28f1bcccaa2bd79a",
    "kosovo_lists_latent_class": "3f7ef94120b7dd25d4c2cf5287f80bb37eb09c5caef00685e7f2c94058f455bf",
    "kosovo_lists_stepwise": "4f4650b8568316b8e88c575d4310675416eeb77f61fed6db4b63bf9f5a05f728",
    "uk_lists_bma": "a73c56aab7bf153c0d4ff726046dcacb501558a99bba6e172c2b2bb0a44c5cda",
    "uk_lists_bma_12n": "c50134f4b58c28c9a38d0c6f348263ead056ce1ff399a658f866538d19eeff50",
    "uk_lists_shrinkage": "70d75a747efda20cc24ed9050463309f74d49f36d22f5b8563a628b99584a4fa",
    "uk_lists_stepwise": "d23ce15453d5c0fb236cbd610204762608e27acc4372954c98c88ffc04b51e15",
}


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE_THE_FIELDS))
def test_shipped_lists_specs_keep_their_spec_hash(name):
    """The fields are left out of the spec hash at their defaults: the fits made before them are still the
    fits of their specs."""
    spec = read_spec(REPO_ROOT / "models" / f"{name}.toml")
    assert spec.spec_hash == HASHES_BEFORE_THE_FIELDS[name]
    assert "register_delay_days" not in spec.canonical_json()
    assert "allow_empty_months" not in spec.canonical_json()


def test_every_shipped_lists_spec_still_parses():
    paths = sorted((REPO_ROOT / "models").glob("*lists*.toml"))
    assert len(paths) >= 9
    for path in paths:
        spec = read_spec(path)
        assert spec.data.fields["register_delay_days"] is None, path
        assert spec.data.fields["allow_empty_months"] is False, path


def test_the_hash_follows_the_meaning():
    plain = parse_spec(_raw(**RECORDS)).spec_hash
    assert parse_spec(_raw(**RECORDS, allow_empty_months=False)).spec_hash == plain
    declared = {
        parse_spec(_raw(**RECORDS, **field)).spec_hash
        for field in (
            {"register_delay_days": 0},
            {"register_delay_days": 30},
            {"allow_empty_months": True},
        )
    }
    assert len(declared) == 3 and plain not in declared


@pytest.mark.parametrize(
    "field",
    [{}, {"register_delay_days": 0}, {"allow_empty_months": True}, {"register_delay_days": 30}],
)
def test_a_saved_fits_spec_is_read_again(tmp_path, field):
    spec = parse_spec(_raw(**RECORDS, **field), source=tmp_path / "t.toml")
    tree = xr.DataTree()
    tree.attrs["spec_json"] = spec.canonical_json()
    again = _fit_spec(tree, tmp_path / "t.nc")
    assert again.spec_hash == spec.spec_hash
    assert {k: again.data.fields[k] for k in field} == field
