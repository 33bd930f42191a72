"""`estim forecast`'s reading of the names it is given and of the months in a spec: a shipped measure's name
is that measure whatever the working directory holds, a directory is refused as such, a lag or ramp in days
is refused before the month arithmetic overflows, a measure that no forecast could reach is refused without
advice that cannot be followed, and two measures of one initial letter get column headers that tell them
apart."""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from estim.errors import EstimInputError
from estim.measures.forecast import ForecastSettings, forecast
from estim.measures.spec import MEASURES_DIR, parse_measure, read_measures
from estim.measures.summary import forecast_table, format_forecast


def _spec(**top):
    raw = {
        "name": "mine",
        "start": "2018-01",
        "effects": [
            {
                "name": "flow",
                "target": "journeys",
                "prior": {"distribution": "LogNormal", "mu": -0.2, "sigma": 0.1},
            }
        ],
    } | top
    return parse_measure(raw)


def test_a_shipped_name_is_the_shipped_measure_whatever_the_working_directory_holds(
    tmp_path, monkeypatch
):
    """A folder called permits (say, the researcher's output folder) used to be read as the spec: an internal
    error (IsADirectoryError, exit 1); a file called coordination, read instead of the shipped spec."""
    (tmp_path / "permits").mkdir()
    (tmp_path / "coordination").write_text('name = "coordination"\nnot a spec')
    monkeypatch.chdir(tmp_path)
    specs = read_measures("permits,coordination")
    for spec, name in zip(specs, ("permits", "coordination"), strict=True):
        shipped = (MEASURES_DIR / f"{name}.toml").read_bytes()
        assert spec.name == name and spec.digest == hashlib.sha256(shipped).hexdigest()


def test_a_directory_given_as_a_spec_is_refused_as_such(tmp_path):
    (tmp_path / "specs").mkdir()
    with pytest.raises(EstimInputError, match="a directory, not a measure spec"):
        read_measures(str(tmp_path / "specs"))


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("Permits", "did you mean `permits`"),
        ("faster-checks", "did you mean `faster_checks`"),
        ("all,permits", "'all' stands alone"),
        ("permits.toml", "given by its name: permits"),
    ],
)
def test_a_misspelt_measure_name_says_the_known_one(given, hint):
    with pytest.raises(EstimInputError) as e:
        read_measures(given)
    assert hint in str(e.value)


@pytest.mark.parametrize(
    ("key", "value"), [("lag_months", 2**63 - 1), ("lag_months", 10**20), ("ramp_months", 365)]
)
def test_a_lag_or_ramp_beyond_any_forecast_is_refused_naming_the_unit(key, value):
    """lag_months = 2^63 − 1 used to overflow the month arithmetic (an internal error); ramp_months = 365, a
    year in days, printed a measure reaching a tenth of its strength after 36 months."""
    with pytest.raises(EstimInputError) as e:
        _spec(**{key: value})
    assert f"{key} = {value}" in str(e.value) and "not days" in str(e.value)


def test_twenty_years_of_lag_or_ramp_stay_accepted():
    assert _spec(lag_months=240, ramp_months=240).ramp_months == 240


def test_a_measure_no_forecast_reaches_is_refused_without_an_impossible_horizon(
    shipped_data, true_posterior
):
    """A start in 2030 used to be answered "Give --horizon 95790 or more" when the --horizon cap is 240: the
    refusal now says the latest month a forecast reaches, 240 months after the data's last (2017-12)."""
    last = np.datetime64(shipped_data["month"].values[-1], "M")
    latest = str(last + np.timedelta64(240, "M"))
    assert latest == "2037-12"
    with pytest.raises(EstimInputError) as e:
        forecast(shipped_data, true_posterior, [_spec(start="2038-01")], draws=10, history=False)
    message = str(e.value)
    assert f"after {latest}, the latest month any forecast reaches" in message
    assert "--horizon" not in message


def _fake_forecast(ratios: dict[str, float]) -> xr.Dataset:
    """Draws of two sections over 12 months whose scenarios are the baseline times a fixed ratio."""
    rng = np.random.default_rng(0)
    base = rng.integers(500, 1000, size=(20, 2, 12))
    scenarios = ["baseline", *ratios]
    counts = np.stack([base] + [np.round(base * r) for r in ratios.values()], axis=1)
    months = np.arange(np.datetime64("2018-01"), np.datetime64("2019-01")).astype("datetime64[ns]")
    dims = ("draw", "scenario", "section", "month")
    return xr.Dataset(
        {
            "unobserved": (dims, counts.astype(np.int32)),
            "attempts": (dims, 2 * counts.astype(np.int32)),
        },
        coords={
            "scenario": scenarios,
            "section": ["omsk", "kurgan"],
            "month": months,
            "surveyed": ("section", [True, False]),
        },
        attrs={"start": "2018-01", "settings_json": json.dumps({"trend_damping": [1.0]})},
    )


def test_measures_of_one_initial_letter_get_headers_that_tell_them_apart():
    """coordination and curfew were both headed "C" (and together "C+C") in the per-section table: which
    column was which could not be read. Each header now names its measure, and its column holds that
    measure's change (curfew halves the crossings: −50.0 %, coordination −10.0 %)."""
    ratios = {"coordination": 0.9, "curfew": 0.5, "coordination+curfew": 0.45}
    fc = _fake_forecast(ratios)
    text = format_forecast(fc, forecast_table(fc))
    legend = next(line for line in text.splitlines() if " = coordination" in line)
    header = dict(
        (name, short) for short, name in re.findall(r"(\S+) = (\w+)", legend.split(";")[0])
    )
    assert header["coordination"] != header["curfew"]
    columns = next(line for line in text.splitlines() if line.strip().startswith("section"))
    names = columns.split()[2:]
    assert len(set(names)) == len(names) == 3
    row = next(line for line in text.splitlines() if line.strip().startswith("omsk"))
    values = [float(v.replace("−", "-")) for v in re.findall(r"([−+]\d+\.\d) \(", row)]
    by_header = dict(zip(names, values, strict=True))
    for measure, ratio in ratios.items():
        short = "+".join(header[m] for m in measure.split("+"))
        assert by_header[short] == pytest.approx(100 * (ratio - 1), abs=0.11)


def test_counts_past_what_an_int32_holds_are_refused_not_wrapped_negative(
    shipped_data, true_posterior
):
    """--level-sd 2 (the option's largest) over 240 months drifts a category's log level by ±9 (sd): counts
    of 10^11 a month were stored as int32, wrapped round to negative numbers (min −2,147,399,563 on the
    shipped fit), and the forecast printed a baseline of 38 million a year with its % changes blank, exit 0."""
    settings = ForecastSettings(level_sd=2.0)
    walk_sd = 2.0 * np.sqrt(240 / 12)  # the log level's sd at the horizon's end
    assert (
        np.exp(2 * walk_sd) > 2**31 / 1e3
    )  # two sd above: ×5·10^7, past int32 at ~40 journeys a month
    with pytest.raises(EstimInputError, match="run away .*--level-sd 2 over 240 months"):
        forecast(
            shipped_data,
            true_posterior,
            [],
            horizon=240,
            draws=40,
            seed=1,
            settings=settings,
            history=False,
        )


@pytest.mark.parametrize(("alpha", "beta"), [(0.01, 0.01), (0.1, 0.1), (0.001, 0.001)])
def test_a_vague_gamma_of_mean_one_is_refused_for_its_median_near_zero(alpha, beta):
    """Gamma(0.01, 0.01), the classic 'vague' prior of mean 1, has median 4.5e-29: on the shipped fit a
    labour-migrant journeys effect under it forecast −49 % of all unobserved crossings, P(red.) 0.96,
    where the researcher meant a prior centred on no change."""
    median = scipy.stats.gamma(alpha, scale=1 / beta).median()
    assert alpha / beta == 1.0 and median < 0.01  # the reference: mean 1, median near 0
    with pytest.raises(EstimInputError, match="Gamma with alpha < 1 piles its mass at 0"):
        _spec(
            effects=[
                {
                    "name": "flow",
                    "target": "journeys",
                    "prior": {"distribution": "Gamma", "alpha": alpha, "beta": beta},
                }
            ]
        )


def test_a_gamma_whose_median_is_a_plausible_multiplier_stays_accepted():
    prior = {"distribution": "Gamma", "alpha": 0.5, "beta": 0.5}  # median 0.45, 95 % 3.8
    spec = _spec(effects=[{"name": "flow", "target": "journeys", "prior": prior}])
    assert spec.effects[0].quantiles([0.5])[0] == pytest.approx(0.455, abs=0.001)


def test_an_interval_with_no_draw_beyond_its_ends_is_flagged():
    """20 draws and --prob 0.95: 0.5 draws expected beyond each end, so the "95 %" interval is the range of
    the draws (interpolated), which holds about 19/21 of the law; --draws 10 --prob 0.999 printed the range
    of 10 draws as a 99.9 % interval. 40 draws put one draw beyond each end (40 × 0.025 = 1)."""
    fc = _fake_forecast({"curfew": 0.5})
    assert fc.sizes["draw"] == 20
    flagged = format_forecast(fc, forecast_table(fc, 0.95), 0.95)
    assert "Few draws: 20 draws leave 0.5 beyond each end of a 95 % interval" in flagged
    assert "give --draws 40 or more" in flagged
    assert "Few draws" not in format_forecast(fc, forecast_table(fc, 0.9), 0.9)  # 20 × 0.05 = 1


def test_a_section_or_category_given_twice_is_refused():
    # accepted before and printed "omsk, omsk" as the measure's sections (the numbers were the same)
    with pytest.raises(EstimInputError, match=r"sections: \['omsk'\] given twice"):
        _spec(sections=["omsk", "orenburg", "omsk"])
    effect = {
        "name": "flow",
        "target": "journeys",
        "categories": ["labour_migrant", "labour_migrant"],
        "prior": {"distribution": "LogNormal", "mu": -0.2, "sigma": 0.1},
    }
    with pytest.raises(EstimInputError, match=r"categories: \['labour_migrant'\] given twice"):
        _spec(effects=[effect])
    assert _spec(sections=["omsk", "orenburg"]).sections == ("omsk", "orenburg")


def test_an_edited_copy_keeping_a_shipped_name_is_warned_of(tmp_path):
    # it printed exactly as the shipped measure (only measures_hash in --out differed)
    shipped = (MEASURES_DIR / "permits.toml").read_text()
    copy = tmp_path / "my_permits.toml"
    copy.write_text(shipped + "\n# my edit\n")
    with pytest.warns(
        UserWarning, match="named 'permits', as a shipped measure, but is not its spec"
    ):
        (spec,) = read_measures(str(copy))
    assert spec.name == "permits"
    same = tmp_path / "same.toml"
    same.write_text(shipped)  # the same bytes elsewhere: the shipped measure, no word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_measures(str(same))
