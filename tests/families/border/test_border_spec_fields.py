"""The border data kind's ``[data] allow_empty_months`` (`estim.families.border.data_kind`).

Before: the border data kind had no ``[data]`` field. A surveyed section's run of months without records that
its counts make implausible was refused (rule ``surveyed_month_gap``) advising
``border_data(..., allow_empty_months=True)``, a Python keyword a CLI user cannot give: a spec writing
``allow_empty_months`` was refused as an unknown field. The references are `border_data` called from Python with
the same keyword, and the shipped border specs' hashes computed before the field existed.
"""

from __future__ import annotations

import warnings

import pytest
import xarray as xr
from click.testing import CliRunner
from records_fixtures import copy_synthetic

from estim.cli import cli
from estim.errors import EstimInputError
from estim.families.border.data import border_data
from estim.paths import REPO_ROOT, SYNTHETIC_DIR
from estim.records import load_records
from estim.run.data import _fit_spec
from estim.run.fit import load_data
from estim.run.spec import parse_spec, read_spec
from estim.statistics import sufficient_statistics

KEY = "test-key"
HOLE = tuple(f"2012-{m:02d}" for m in range(3, 9))


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="module")
def omsk_hole(tmp_path_factory):
    """The shipped records without Omsk's apprehension records of March to August 2012 (Omsk holds ~100
    records in its median month: six months without any are refused)."""

    folder = copy_synthetic(tmp_path_factory.mktemp("hole") / "records", lambda *_: True)
    lines = (folder / "apprehensions.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    section, date = header.index("section_id"), header.index("date")
    kept = [lines[0]] + [
        line
        for line in lines[1:]
        if not (line.split(",")[section] == "omsk" and line.split(",")[date][:7] in HOLE)
    ]
    assert len(lines) - len(kept) > 400  # Omsk's six months
    (folder / "apprehensions.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder


def _spec(tmp_path, records, *lines):
    path = tmp_path / "border_gap.toml"
    path.write_text(
        f'family = "border"\nseed = 1\n[data]\nrecords = "{records}"\n'
        + "".join(f"{line}\n" for line in lines),
        encoding="utf-8",
    )
    return path


def test_the_refusal_names_the_spec_field(tmp_path, omsk_hole, monkeypatch):
    monkeypatch.setattr("estim.run.fit.nuts", lambda *_, **__: pytest.fail("sampled"))
    result = CliRunner().invoke(cli, ["fit", str(_spec(tmp_path, omsk_hole))])
    assert result.exit_code == 2, result.output
    assert "section omsk in 2012-03 … 2012-08" in result.stderr
    assert "rule surveyed_month_gap" in result.stderr
    assert "declare it ([data] allow_empty_months = true in the spec" in result.stderr


def test_the_field_builds_the_data_python_builds_with_the_keyword(tmp_path, omsk_hole):
    spec = read_spec(_spec(tmp_path, omsk_hole, "allow_empty_months = true"))
    assert spec.data.fields["allow_empty_months"] is True
    with pytest.warns(UserWarning, match="omsk in 2012-03 … 2012-08.*declared months nobody"):
        from_spec = load_data(spec)
    records = load_records(omsk_hole, key=KEY)
    stats = sufficient_statistics(records, period="month", occasion=None)
    with pytest.warns(UserWarning, match="declared months nobody"):
        python = border_data(
            stats, records.sections, records.policy_events, linkage=None, allow_empty_months=True
        )
    xr.testing.assert_equal(from_spec["apprehensions"], python["apprehensions"])
    xr.testing.assert_equal(from_spec["frequency"], python["frequency"])
    assert int(from_spec["apprehensions"].sel(section="omsk", month="2012-05-01").sum()) == 0


def test_declared_where_nothing_is_refused_is_warned_of(tmp_path):
    spec = read_spec(_spec(tmp_path, SYNTHETIC_DIR, "allow_empty_months = true"))
    with pytest.warns(UserWarning, match="allow_empty_months = true declares nothing here"):
        load_data(spec)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"true"', "expected true or false, got 'true'"),
        ("1", "expected true or false, got 1"),
        ('"yes"', "expected true or false, got 'yes'"),
    ],
)
def test_a_value_not_true_or_false_is_refused_naming_the_field(tmp_path, value, says):
    path = _spec(tmp_path, SYNTHETIC_DIR, f"allow_empty_months = {value}")
    with pytest.raises(EstimInputError) as refused:
        read_spec(path)
    assert f"border_gap.toml: [data] allow_empty_months: {says}" in str(refused.value)


# the spec hashes of the shipped border specs before the field existed (computed at 6e747c2): a fit saved then
# is still the fit of its spec
HASHES_BEFORE_THE_FIELD = {
    "border": "e950c85085f5b1ab1516d6f14930582e59f9ea1d43c35a958b52153cb68e4131",
    "border_one_journey_level": "81aebf0b094bde130c74dbf5fcd37e95c28463e961fbfdc577edef0e55483b07",
    "border_terrain_narrow": "3aba0d6bafd66872450d7a0adb4b7b78fedaa7d0813807a475db61521f339291",
    "border_terrain_pooled": "03ec17a19b6eefce284d1e503fcfe789dcf6f0cb8665a351709e8a21349cef0d",
}


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE_THE_FIELD))
def test_shipped_border_specs_keep_their_spec_hash(name):
    spec = read_spec(REPO_ROOT / "models" / f"{name}.toml")
    assert spec.data.fields["allow_empty_months"] is False
    assert spec.spec_hash == HASHES_BEFORE_THE_FIELD[name]
    assert "allow_empty_months" not in spec.canonical_json()


def _raw(**data):
    return {
        "name": "t",
        "family": "border",
        "seed": 1,
        "data": {"records": "data/synthetic", **data},
    }


def test_the_hash_follows_the_meaning():
    plain = parse_spec(_raw()).spec_hash
    assert parse_spec(_raw(allow_empty_months=False)).spec_hash == plain
    assert parse_spec(_raw(allow_empty_months=True)).spec_hash != plain


@pytest.mark.parametrize("field", [{}, {"allow_empty_months": True}])
def test_a_saved_fits_spec_is_read_again(tmp_path, field):
    spec = parse_spec(_raw(**field), source=tmp_path / "t.toml")
    tree = xr.DataTree()
    tree.attrs["spec_json"] = spec.canonical_json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = _fit_spec(tree, tmp_path / "t.nc")
    assert again.spec_hash == spec.spec_hash
    assert again.data.fields["allow_empty_months"] is bool(field)
