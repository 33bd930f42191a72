"""A measure spec a researcher writes by hand, and the mistakes it can carry: each used to be read (exit 0) into a
forecast of the wrong measure, or failed as an internal error, and is now refused naming the file, the key and
the rule (with the closest known name where one is close), or shown in the output.

References are the documented meaning of a spec's fields (docs/measures.md: M = value or 1 − value, a
multiplier is the factor at full strength) and quantiles computed by hand from the laws' formulas, not the
spec reader's own output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.measures.forecast import ForecastSettings, forecast
from estim.measures.spec import parse_measure, read_measure, read_measures

Z95 = 1.6448536269514722  # the standard normal's 95 % quantile


def fixed(value):
    return {"distribution": "Uniform", "lower": value - 1e-9, "upper": value + 1e-9}


def lognormal(mu, sigma):
    return {"distribution": "LogNormal", "mu": mu, "sigma": sigma}


def effect(**changes):
    """A journeys effect on labour and transit migrants, a 20 % cut (LogNormal median 0.8), changed."""
    return {
        "name": "flow",
        "target": "journeys",
        "categories": ["labour_migrant", "transit_migrant"],
        "multiplier": "value",
        "prior": lognormal(math.log(0.8), 0.1),
        **changes,
    }


def measure(effects=None, **top):
    raw = {"name": "m", "start": "2018-01", "effects": effects or [effect()], **top}
    return parse_measure({k: v for k, v in raw.items() if v is not None})


def refusal(**kwargs) -> str:
    with pytest.raises(EstimInputError) as e:
        measure(**kwargs)
    return str(e.value)


def write_spec(path, body: str):
    path.write_text(
        'name = "probe"\nstart = "2018-01"\nramp_months = 12\n' + body, encoding="utf-8"
    )
    return path


# ------------------------------------------------------------------------------------------------------
# 1 units: a percent or a log-scale number where a multiplier goes


@pytest.mark.parametrize(
    ("changes", "median", "upper"),
    [
        # a percent written as the multiplier: "20" for ±20 % is ×20 (hand: Uniform(15, 25) 95 % = 24.5)
        ({"prior": {"distribution": "Uniform", "lower": 15.0, "upper": 25.0}}, 20.0, 24.5),
        # the same with "1 - value" and a negative percent: M = 1 − (−20) = 21
        (
            {
                "multiplier": "1 - value",
                "prior": {"distribution": "Uniform", "lower": -25.0, "upper": -15.0},
            },
            21.0,
            25.5,
        ),
        # a percent as a LogNormal's mu: median e^20 (the forecast's int32 counts wrapped: change −2.1e9)
        ({"prior": lognormal(20.0, 0.1)}, math.exp(20.0), math.exp(20.0 + 0.1 * Z95)),
        # a log sigma of 5: the 90 % interval of M spans e^±8.2 (hand: e^(5 · 1.645) = 3,730)
        ({"prior": lognormal(0.0, 5.0)}, 1.0, math.exp(5.0 * Z95)),
        ({"prior": lognormal(0.0, 2.0)}, 1.0, math.exp(2.0 * Z95)),  # 26.8
    ],
)
def test_a_multiplier_reaching_ten_fold_is_refused_as_a_unit_mistake(changes, median, upper):
    text = refusal(effects=[effect(**changes)])
    assert text.startswith("<measure>: effects[0] (flow): the prior "), text
    assert f"median {median:.3g}" in text and f"to {upper:.3g}, above 10" in text, text
    assert "not a percent: a change of p % is M = 1 + p/100" in text


def test_a_lognormal_median_of_nearly_nothing_is_refused_as_mu_written_as_a_percent():
    # mu = -20 for "−20 %": the median multiplier e^-20 = 2.06e-9 removes every journey (old: forecast −65.8 %)
    text = refusal(effects=[effect(prior=lognormal(-20.0, 0.1))])
    assert "median multiplier M = exp(mu) = 2.06e-09" in text and "below 0.01" in text, text
    assert "mu = log 0.8 = -0.223" in text


def test_plausible_priors_stay_accepted():
    # hand: LogNormal(0, 1) 95 % = e^1.645 = 5.18; Uniform(0, 10): 9.5; both below the ceiling of 10
    for prior in (lognormal(0.0, 1.0), {"distribution": "Uniform", "lower": 0.0, "upper": 10.0}):
        measure(effects=[effect(prior=prior)])
    # a measure that removes (nearly) all journeys, written as a share or as a Uniform near 0
    measure(effects=[effect(multiplier="1 - value", prior=fixed(0.99))])
    measure(effects=[effect(prior={"distribution": "Uniform", "lower": 0.0, "upper": 1e-9})])
    # the shipped specs load under every rule, with multipliers far below the ceiling
    for spec in read_measures("all"):
        for e in spec.effects:
            assert np.all(e.multiplier_of(e.quantiles([0.05, 0.95])) < 3.0)


def test_a_beta_share_must_say_which_multiplier_it_is():
    share = {"distribution": "Beta", "alpha": 20.0, "beta": 80.0}  # mean 0.2
    raw = effect(prior=share)
    del raw["multiplier"]
    text = refusal(effects=[raw])
    assert text.startswith("<measure>: effects[0] (flow): a Beta prior is a share"), text
    assert 'multiplier = "1 - value"' in text and 'multiplier = "value"' in text
    # stated either way, it means what the docs say: M = 1 − 0.2 = 0.8 or M = 0.2 at the share's mean
    for form, m in (("1 - value", 0.8), ("value", 0.2)):
        e = measure(effects=[effect(prior=share, multiplier=form)]).effects[0]
        assert float(e.multiplier_of(0.2)) == pytest.approx(m)


@pytest.mark.parametrize(
    ("displacement", "message"),
    [
        (True, "displacement must be a share in [0, 1], got True"),  # old: read as 1.0
        (30, "got 30 (a share: 30 % is 0.3)"),
    ],
)
def test_displacement_is_a_share_not_a_flag_or_a_percent(displacement, message):
    assert message in refusal(displacement=displacement)


def test_displacement_without_a_journeys_effect_is_refused_not_ignored():
    wait = {
        "name": "cut",
        "target": "wait",
        "multiplier": "1 - value",
        "prior": {"distribution": "Beta", "alpha": 2.0, "beta": 3.0},
    }
    text = refusal(effects=[wait], displacement=0.3)
    assert "displacement = 0.3: it moves journeys that a journeys effect prevents" in text
    assert "(targets: wait), so it would be ignored" in text


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"lag_months": 0.5}, "lag_months must be a whole number of months >= 0, got 0.5"),
        ({"ramp_months": 1.0}, "ramp_months must be a whole number of months >= 0, got 1.0"),
        ({"start": "2018"}, "start must be a month YYYY-MM, got '2018'"),
        ({"start": "Jan 2018"}, "start must be a month YYYY-MM"),
        ({"start": "2018-1"}, "start must be a month YYYY-MM, got '2018-1'"),
    ],
)
def test_months_and_start_in_other_units_stay_refused(top, message):
    assert message in refusal(**top)


# ------------------------------------------------------------------------------------------------------
# 2 and 5: names, with the closest known one


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lag_month": 6}, "unknown keys 'lag_month' (did you mean `lag_months`?)"),
        ({"ramp": 12}, "unknown keys 'ramp' (did you mean `ramp_months`?)"),
        ({"sections": ["Omsk"]}, "sections: unknown 'Omsk' (did you mean `omsk`?)"),
        ({"sections": "All"}, "got 'All' (did you mean `all`?)"),
        ({"sections": "omsk"}, "got 'omsk' (one section is a list: sections = [\"omsk\"])"),
        (
            {"effects": [effect(categories=["labor_migrant"])]},
            "got 'labor_migrant' (did you mean `labour_migrant`?)",
        ),
        (
            {"effects": [effect(categories="labour_migrant")]},
            "categories must be a list of category names (omit it for all of them), got "
            "'labour_migrant' (one category is a list: categories = [\"labour_migrant\"])",
        ),
        (
            {"effects": [{**effect(), "category": ["smuggler"]}]},
            "unknown keys 'category' (did you mean `categories`?)",
        ),
        ({"effects": [effect(target="journey")]}, "(did you mean `journeys`?)"),
        (
            {"effects": [effect(multiplier="1-value", prior=fixed(0.2))]},
            "got '1-value' (did you mean `1 - value`?)",
        ),
        (
            {"effects": [effect(multiplier="1 − value", prior=fixed(0.2))]},  # a Unicode minus
            "(did you mean `1 - value`?)",
        ),
        (  # old: accepted, and --analogues printed "none in the data"
            {"effects": [effect(analogue="customs_unoin")]},
            "analogue 'customs_unoin' is not a policy event of the border data",
        ),
    ],
)
def test_a_misspelt_name_is_refused_with_the_closest_known_one(kwargs, message):
    text = refusal(**kwargs)
    assert text.startswith("<measure>: ") and message in text, text


def test_an_empty_category_list_stays_refused():
    assert "categories must be some of" in refusal(effects=[effect(categories=[])])


def test_a_prior_parameter_written_as_text_is_refused_not_an_internal_error():
    # old: TypeError in scipy (exit 1, "internal error")
    text = refusal(
        effects=[effect(prior={"distribution": "LogNormal", "mu": "-0.2", "sigma": 0.1})]
    )
    assert "effects[0] (flow): prior mu = '-0.2': a number (written without quotes)" in text


# ------------------------------------------------------------------------------------------------------
# 3 the same measure twice; two effects on one target


def test_two_specs_of_one_name_are_refused_naming_both_files(tmp_path):
    body = '[[effects]]\nname = "flow"\ntarget = "journeys"\nmultiplier = "value"\n'
    body += 'prior = { distribution = "LogNormal", mu = -0.2, sigma = 0.1 }\n'
    a = write_spec(tmp_path / "a.toml", body)
    b = write_spec(tmp_path / "b.toml", body)
    with pytest.raises(EstimInputError) as e:
        read_measures(f"{a},{b}")
    assert f"measure 'probe' is given 2 times ({a}, {b})" in str(e.value)
    with pytest.raises(EstimInputError, match="measure 'permits' is given 2 times"):
        read_measures("permits,permits")


def test_two_effects_on_one_target_multiply(shipped_data, true_posterior):
    """Two effects of 0.5 on every category's journeys, from the first month at full strength: journeys × 0.25
    (docs/measures.md: effects on one target multiply). Each scenario count is a binomial thinning of the
    baseline's (common random numbers), so the ratio deviates from 0.25 by binomial noise only."""
    twice = measure(
        effects=[
            {"name": "a", "target": "journeys", "prior": fixed(0.5)},
            {"name": "b", "target": "journeys", "prior": fixed(0.5)},
        ]
    )
    settings = ForecastSettings(trend_damping=1.0, level_sd=0.0)
    fc = forecast(
        shipped_data,
        true_posterior,
        [twice],
        horizon=6,
        draws=20,
        seed=5,
        settings=settings,
        history=False,
    )
    u = fc["unobserved"].sum(["draw", "section"]).astype(float)
    base, scen = u.sel(scenario="baseline").values, u.sel(scenario="m").values
    sd = np.sqrt(0.25 * 0.75 / base)
    assert np.all(np.abs(scen / base - 0.25) <= 5 * sd)


# ------------------------------------------------------------------------------------------------------
# the command line: exit 2 naming the file, and each effect's multiplier printed


def _forecast(fit, spec, *args):
    return CliRunner().invoke(
        cli,
        ["forecast", str(fit), "--measures", str(spec), "--draws", "10", "--horizon", "12", *args],
    )


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ('{ distribution = "LogNormal", mu = 20.0, sigma = 0.1 }', "above 10 (a ten-fold rise)"),
        ('{ distribution = "LogNormal", mu = "-0.2", sigma = 0.1 }', "prior mu = '-0.2'"),
    ],
)
def test_the_command_refuses_a_spec_with_exit_2_naming_file_and_effect(
    tmp_path, fit_path, prior, message
):
    body = f'[[effects]]\nname = "flow"\ntarget = "journeys"\nprior = {prior}\n'
    spec = write_spec(tmp_path / "mine.toml", body)
    result = _forecast(fit_path, spec)
    assert result.exit_code == 2, result.output
    assert f"{spec}: effects[0] (flow): " in result.output and message in result.output
    assert "internal error" not in result.output


def test_the_output_shows_each_effect_at_full_strength(tmp_path, fit_path):
    """A share of 0.2 written under "value" is M = 0.2, a cut of 80 %: the forecast cannot tell it from a
    meant one, so it prints it (text and JSON) where a reader who meant 20 % sees it."""
    body = (
        '[[effects]]\nname = "flow"\ntarget = "journeys"\ncategories = ["smuggler"]\n'
        'multiplier = "value"\nprior = { distribution = "Uniform", lower = 0.1999999, upper = 0.2000001 }\n'
    )
    spec = write_spec(tmp_path / "mine.toml", body)
    result = _forecast(fit_path, spec)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("probe.flow"))
    assert "× 0.2 [0.2, 0.2]" in line and "−80.0 %" in line
    assert "journeys of smuggler; all sections" in line
    result = _forecast(fit_path, spec, "--format", "json")
    row = json.loads(result.stdout)["effects"][0]
    assert row["multiplier_median"] == pytest.approx(0.2) and row[
        "percent_median"
    ] == pytest.approx(-80)
    assert read_measure(spec).effects[0].multiplier == "value"
