"""Slips in a measure spec or a forecast's options that gave a confident wrong forecast with exit 0: a unit or sign
slip under the ×10 ceiling (LogNormal mu = 0.75 for M = 0.75: +82 % crossings; "−50 %" as a cut of −0.5:
+36 %), displacement on a measure with no untreated neighbour (the whole effect given back: +6 a year for
−50 %), the same measure in two letter cases (its square forecast), --measures given twice (one dropped), and
a JSON forecast that never said its interval's probability. References: the documented meaning of the fields
(docs/measures.md) and the laws' quantiles by hand."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.measures.spec import MEASURES_DIR, parse_measure, read_measures
from estim.records.schemas import SECTIONS


def _effect(prior, multiplier="value", target="journeys"):
    return {"name": "flow", "target": target, "multiplier": multiplier, "prior": prior}


def _measure(prior, multiplier="value", target="journeys", **top):
    raw = {"name": "m", "start": "2018-01", "effects": [_effect(prior, multiplier, target)], **top}
    return parse_measure(raw)


@pytest.mark.parametrize(
    ("prior", "median", "hint"),
    [
        # mu written as M: median e^0.75 = 2.117
        ({"distribution": "LogNormal", "mu": 0.75, "sigma": 0.3}, 2.117, "mu = log 0.75 = -0.288"),
        # a Gamma's rate taken for its scale: shape 2, rate 0.5, median 3.357
        (
            {"distribution": "Gamma", "alpha": 2.0, "beta": 0.5},
            3.357,
            "a change of p % is M = 1 + p/100",
        ),
        # a percent below 10 written as M: median 5
        ({"distribution": "Uniform", "lower": 2.0, "upper": 8.0}, 5.0, "not a percent"),
    ],
)
def test_a_median_multiplier_above_two_is_warned_of(prior, median, hint):
    with pytest.warns(
        UserWarning, match=rf"median multiplier M = {median:.3g}, a rise of"
    ) as record:
        _measure(prior)
    assert hint in str(record[0].message)


@pytest.mark.parametrize(
    "prior",
    [
        {"distribution": "LogNormal", "mu": math.log(0.8), "sigma": 0.1},  # a 20 % cut
        {
            "distribution": "Uniform",
            "lower": 1.9999,
            "upper": 2.0001,
        },  # waits doubled: M = 2 exactly
    ],
)
def test_a_cut_or_a_doubling_is_not_warned_of(prior):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _measure(prior)


def test_a_rise_written_as_a_negative_reduction_is_refused():
    # "1 - value" with values in (-0.6, -0.4): M = 1.5, a 50 % rise read as a cut
    with pytest.raises(
        EstimInputError, match=r"at or below 0 .* so M = 1 - value is at least 1: a rise"
    ):
        _measure({"distribution": "Uniform", "lower": -0.6, "upper": -0.4}, "1 - value")
    # a share whose range reaches both sides of 0 (direction unknown) is a prior, not a slip
    _measure({"distribution": "Uniform", "lower": -0.1, "upper": 0.3}, "1 - value")


def test_displacement_with_no_untreated_neighbour_is_refused():
    half = {"distribution": "Uniform", "lower": 0.4999, "upper": 0.5001}
    with pytest.raises(
        EstimInputError, match="covers every section, none with a neighbour it does not"
    ):
        _measure(half, "1 - value", sections="all", displacement=1.0)
    # one section, or all but the last: a treated section has an untreated neighbour to move to
    assert _measure(half, "1 - value", sections=["omsk"], displacement=0.3).displacement == 0.3
    _measure(half, "1 - value", sections=list(SECTIONS[:-1]), displacement=0.3)


def test_one_measure_in_two_letter_cases_is_refused(tmp_path):
    # "Coordination" beside "coordination" made the scenario coordination+Coordination (−19 %, the square)
    text = (MEASURES_DIR / "coordination.toml").read_text(encoding="utf-8")
    other = tmp_path / "Coordination_cap.toml"
    other.write_text(
        text.replace('name = "coordination"', 'name = "Coordination"'), encoding="utf-8"
    )
    assert 'name = "Coordination"' in other.read_text(encoding="utf-8")
    with pytest.raises(EstimInputError, match="is given 2 times"):
        read_measures(f"coordination,{other}")


def test_measures_given_twice_are_joined_and_json_says_its_interval(fit_path):
    # --measures coordination --measures permits forecast permits only, with no word; the JSON's bounds did
    # not say which interval they were, nor that 10 draws are too few for it
    args = ["forecast", str(fit_path), "--horizon", "12", "--format", "json", "--draws", "10"]
    args += ["--prob", "0.95", "--measures", "coordination", "--measures", "permits"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert out["attrs"]["measures"] == "coordination,permits"
    assert out["interval_prob"] == 0.95
    # 10 draws leave 0.25 beyond each end of a 95 % interval: the text's note is in the JSON too
    assert any("Few draws: 10 draws leave 0.25 beyond each end" in note for note in out["notes"])


def test_analogues_follow_the_effect_s_own_event_and_name_one_without_an_estimate(
    shipped_data, true_posterior
):
    # the wait effect's own analogue was ignored (the latest event's waits shown), and a bypasser journeys
    # effect naming an event got no row at all
    from estim.measures.summary import analogues

    wait = {
        "name": "w",
        "target": "wait",
        "multiplier": "1 - value",
        "prior": {"distribution": "Beta", "alpha": 2.0, "beta": 3.0},
        "analogue": "border_residents_agreement",
    }
    bypass = {
        "name": "byp",
        "target": "journeys",
        "categories": ["bypasser"],
        "multiplier": "value",
        "prior": {"distribution": "LogNormal", "mu": -0.1, "sigma": 0.1},
        "analogue": "customs_union",
    }
    spec = parse_measure({"name": "m", "start": "2018-01", "effects": [wait, bypass]})
    table = analogues([spec], true_posterior, shipped_data)
    said = table.groupby("effect")["analogue"].apply(list).to_dict()
    assert "joint_checkpoint_control" not in " ".join(said["w"])
    assert any("border_residents_agreement" in a for a in said["w"])
    assert said["byp"] == [
        "customs_union: no estimate for these journeys; none in the data (prior only)"
    ]


def test_a_percent_given_as_a_simulated_effect_is_refused():
    # estim simulate --measure coordination --effect flow=75 multiplied journeys by 75 (46,907 -> 230,383)
    from estim.measures.spec import read_measure

    coordination = read_measure("coordination")
    with pytest.raises(
        EstimInputError, match=r"flow = 75: M = 75 multiplies journeys more than 10-fold"
    ):
        coordination.applied({"flow": 75})
    assert coordination.applied({"flow": 0.75}).effects[0].multiplier == pytest.approx(0.75)


def test_the_json_forecast_carries_the_warnings_given_on_the_way(fit_path, tmp_path):
    # the warning of a median M above 2 (mu = 0.75 meant as M = 0.75) went to stderr only: a program reading
    # the JSON on stdout saw a +100 % forecast with no word of it
    text = (MEASURES_DIR / "coordination.toml").read_text(encoding="utf-8")
    spec = tmp_path / "coordination.toml"
    spec.write_text(text.replace("mu = -0.28768", "mu = 0.75"), encoding="utf-8")
    args = ["forecast", str(fit_path), "--horizon", "12", "--format", "json", "--draws", "10"]
    result = CliRunner().invoke(cli, [*args, "--measures", str(spec)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert any("if M = 0.75 was meant" in w for w in out["warnings"]), out["warnings"]
    plain = CliRunner().invoke(cli, [*args, "--measures", "coordination"])
    assert json.loads(plain.output[plain.output.index("{") :])["warnings"] == []
