"""Border ``[options]`` that the data leave without effect, refused when the model is built
(`estim.run.fit.build_model`, `estim.families.border.idle_options`): a shift by terrain on records whose
sections share one terrain, the linkage's after-window factor without a register linkage, the saddlepoint
threshold where no section is known by its monthly totals alone.

Before: each was accepted and fitted (exit 0), the model built exactly as without it (``terrain_hazard =
false`` on one terrain fitted the model ``terrain_hazard = true`` fits). The references are the models
`build_border` builds with and without the option, not the refusal's own reasoning; nothing here samples.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from records_fixtures import copy_synthetic

from estim.cli import cli
from estim.errors import EstimInputError
from estim.families.border import BORDER, build_border
from estim.families.border.data_kind import records_data
from estim.families.border.sensitivity import OPTIONS as VARIANT_OPTIONS
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.run.fit import build_model
from estim.run.spec import parse_spec


@pytest.fixture(scope="module")
def one_terrain(data):
    """The shipped data with every section's terrain steppe."""
    return data.assign(terrain=("section", np.full(data.sizes["section"], "steppe")))


@pytest.fixture(scope="module")
def unlinked():
    """The shipped records without the in-country registers: no linkage."""
    records = load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return records_data(dataclasses.replace(records, registers=records.registers.iloc[:0]))


@pytest.fixture(scope="module")
def all_surveyed(data):
    """The shipped data's surveyed sections alone (Omsk and Orenburg): no monthly totals in the model."""
    return data.isel(section=np.flatnonzero(data["surveyed"].values))


@pytest.fixture(scope="module")
def quiet_totals(data):
    """The shipped data with every monthly total of the unsurveyed sections cut to at most 1: no total above
    the smallest threshold (1)."""
    surveyed = data["surveyed"]
    cut = data["apprehensions"].where(surveyed, data["apprehensions"].clip(max=1))
    return data.assign(apprehensions=cut)


def _spec(tmp_path, **options):
    raw = {
        "name": "border_test",
        "family": "border",
        "seed": 1,
        "data": {"records": str(SYNTHETIC_DIR)},
        "options": options,
    }
    return parse_spec(raw, source=tmp_path / "border_test.toml")


IDLE = [
    ("one_terrain", "terrain_hazard", False, "terrain_hazard = false", "one terrain (steppe)"),
    ("one_terrain", "terrain_hazard", True, "terrain_hazard = true", "one terrain (steppe)"),
    ("one_terrain", "terrain_journeys", True, "terrain_journeys = true", "one terrain (steppe)"),
    ("unlinked", "after_background", 0.7, "after_background = 0.7", "no register linkage"),
    ("unlinked", "after_background", 1.0, "after_background = 1.0", "no register linkage"),
    ("all_surveyed", "saddlepoint_above", 20, "saddlepoint_above = 20", "every section"),
    ("all_surveyed", "saddlepoint_above", False, "saddlepoint_above = false", "every section"),
    (
        "quiet_totals",
        "saddlepoint_above",
        1,
        "saddlepoint_above = 1",
        "without individual records is 1",
    ),
]


@pytest.mark.parametrize(("case", "option", "value", "written", "why"), IDLE)
def test_an_option_the_data_leave_without_effect_is_refused_naming_spec_and_why(
    request, tmp_path, case, option, value, written, why
):
    data = request.getfixturevalue(case)
    spec = _spec(tmp_path, **{option: value})
    with pytest.raises(EstimInputError) as refused:
        build_model(spec, BORDER, data)
    text = str(refused.value)
    assert text.startswith(f"{tmp_path / 'border_test.toml'}: [options] {written}: ")
    assert why in text
    assert "it would change nothing: remove it" in text


def _fitted(model) -> tuple:
    """What a model fits: its free variables, deterministics, observed terms and log density at a point."""
    point = model.initial_point()
    return (
        sorted(v.name for v in model.free_RVs),
        sorted(v.name for v in model.deterministics),
        sorted(v.name for v in model.observed_RVs),
        float(model.compile_logp()(point)),
    )


@pytest.mark.parametrize(("case", "option", "value", "written", "why"), IDLE)
def test_what_is_refused_would_indeed_change_nothing(request, case, option, value, written, why):
    data = request.getfixturevalue(case)
    *names, logp = _fitted(build_border(data))
    *given_names, given_logp = _fitted(build_border(data, **{option: value}))
    assert given_names == names
    assert given_logp == pytest.approx(logp, rel=1e-12)


def test_the_options_at_their_defaults_and_where_they_act_are_not_refused(
    tmp_path, data, one_terrain, unlinked, all_surveyed, quiet_totals
):
    # not written in the spec: the model's defaults, never refused, on any data
    for case in (one_terrain, unlinked, all_surveyed, quiet_totals):
        assert build_model(_spec(tmp_path), BORDER, case) is not None
    # written where the data let them act (the shipped records), and each sensitivity variant's options
    acting = {
        "terrain_hazard": False,
        "terrain_journeys": True,
        "after_background": 0.7,
        "saddlepoint_above": 20,
    }
    assert build_model(_spec(tmp_path, **acting), BORDER, data) is not None
    for options in VARIANT_OPTIONS.values():
        assert BORDER.idle_given_data(data, options) == {}


def test_a_sensitivity_variant_is_warned_not_refused(tmp_path, unlinked):
    """A variant's options are the study's, not the spec's (after_background 0.7 on records without
    registers): said, as a variant's idle prior is, so that the study goes on."""
    said: list[str] = []
    spec = _spec(tmp_path, after_background=0.7)
    with pytest.warns(
        UserWarning, match=r"\[options\] after_background = 0.7: .*no register linkage"
    ):
        model = build_model(spec, BORDER, unlinked, idle_priors="warn", progress=said.append)
    assert "after_background" not in [v.name for v in model.deterministics]
    assert said and said[0].startswith("warning: ") and "after_background = 0.7" in said[0]


def test_the_cli_refuses_a_terrain_option_on_records_of_one_terrain_before_sampling(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", "test-key")

    def no_sampling(*_, **__):
        raise AssertionError("sampled a model whose [options] the data leave without effect")

    monkeypatch.setattr("estim.run.fit.nuts", no_sampling)
    folder = copy_synthetic(tmp_path / "records", lambda *_: True)
    lines = (SYNTHETIC_DIR / "sections.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert "terrain" in header
    (folder / "sections.csv").unlink()  # a link to the shipped file
    edited = [lines[0]]
    for line in lines[1:]:
        for terrain in ("river_delta", "semi_desert", "forest_steppe", "mountain"):
            line = line.replace(f",{terrain},", ",steppe,")
        edited.append(line)
    (folder / "sections.csv").write_text("\n".join(edited) + "\n", encoding="utf-8")
    spec = tmp_path / "one_terrain.toml"
    spec.write_text(
        f'family = "border"\nseed = 1\n[data]\nrecords = "{folder}"\n'
        "[options]\nterrain_hazard = false\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["fit", str(spec)])
    assert result.exit_code == 2, result.output
    assert f"{spec}: [options] terrain_hazard = false: " in result.stderr
    assert "one terrain (steppe)" in result.stderr
    assert not (tmp_path / "one_terrain.nc").exists()
