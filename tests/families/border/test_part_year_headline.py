"""The last readers of a border fit's calendar-year draws over records that start or stop mid-year: the
sensitivity study's headline (`estim.families.border.sensitivity.headline`), the apprehended journeys given up
per year of `retry_summary` (shown in the report) and scripts/border_frailty_loo.py, as the report
(test_report_partial_year) and the questions (test_part_year_readers).

Before: each averaged over the calendar years, so records ending in June 2017 gave 1½ years' crossings divided
by 2 here (11½ by 12 on the shipped span, 4.2 % low). Now each is the total over the fitted months × 12 / their
number. With whole years the numbers are those of before, to the bit. The fits are built by hand, without
sampling, and every reference is worked out by hand (in the comments).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border import sensitivity
from estim.families.border.repeated_trials import retry_summary
from estim.intervals import equal_tailed_array
from tests.studies.script_loader import load_script

ROOT = Path(__file__).resolve().parents[3]
K = np.arange(100, 201)  # the draws: factors k/100, k = 100 … 200, evenly spread (their median 1.5)
P = 0.4  # the stand-in apprehension probability of every cell


def _months(start: str, n: int) -> np.ndarray:
    return pd.date_range(start, periods=n, freq="MS").values


def _by_year(months: np.ndarray, per_month: np.ndarray, factors: np.ndarray) -> xr.DataArray:
    """(chain, draw, year) draws: `per_month` summed by calendar year, times each draw's factor (integers)."""
    years = pd.DatetimeIndex(months).year
    cal = np.unique(years)
    totals = np.array([per_month[years == y].sum() for y in cal])
    draws = (factors[:, None] * totals[None]).astype(np.int64)
    return xr.DataArray(draws[None], dims=("chain", "draw", "year"), coords={"year": cal})


# ----------------------------------------------------------------------------------------------------------------
# the sensitivity headline


def _stand_ins(monkeypatch) -> None:
    """The model's rates, whose draws the headline's mean p and r read, replaced by constants: p = `P` in
    every cell, r = 1 (the headline's unobserved crossings are what is tested)."""

    def parameters(post):  # one value per chain × draw, as `posterior_parameters` flattens them
        return {"draw": np.arange(post.sizes["chain"] * post.sizes["draw"])}, None

    monkeypatch.setattr(sensitivity, "posterior_parameters", parameters)

    def rates(data, v):
        shape = (len(v["draw"]), *data["apprehensions"].shape)
        return None, np.full(shape, np.log(P)), None, None

    monkeypatch.setattr(sensitivity, "rates", rates)
    monkeypatch.setattr(sensitivity, "retry_draws", lambda post: np.ones(3))


def _sensitivity_fit(
    border_year: xr.DataArray, months: np.ndarray
) -> tuple[xr.DataTree, xr.Dataset]:
    """A fit holding the whole border's draws by year, and its data over `months` (2 sections, 1 category,
    3 apprehensions a cell)."""
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"unobserved_border_year": border_year})})
    app = np.full((2, months.size, 1), 3)
    data = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), app)},
        coords={"section": ["a", "b"], "month": months, "category": ["x"]},
    )
    return tree, data


def _old_headline_interval(border_year: xr.DataArray, prob: float = 0.9) -> tuple[float, ...]:
    """The headline's interval as it was: the mean over the calendar years, per draw."""
    annual = border_year.sum("year").values.ravel() / border_year.sizes["year"]
    return tuple(float(x) for x in equal_tailed_array(annual, prob))


def test_the_headline_over_records_ending_in_june_is_a_rate_per_year(monkeypatch):
    _stand_ins(monkeypatch)
    # 2016-01 … 2017-06: 1,000 unobserved crossings a month in 2016, 2,000 in 2017 (factor 1): 12,000 +
    # 12,000 = 24,000 over 18 months -> 16,000 a year; × k/100: the median at 1.5 -> 24,000, the 90 %
    # interval at 1.05 and 1.95 -> 16,800 and 31,200 (before: 24,000 / 2 years = 12,000; × 1.5 = 18,000)
    months = _months("2016-01-01", 18)
    per_month = np.r_[np.full(12, 1000), np.full(6, 2000)]
    border_year = _by_year(months, per_month, K) // 100
    assert border_year.sum("year").values.ravel()[50] == 36_000  # k = 150: 24,000 × 1.5
    row = sensitivity.headline(*_sensitivity_fit(border_year, months))
    assert row["median"] == pytest.approx(24_000.0)
    assert row["lower"] == pytest.approx(16_800.0)
    assert row["upper"] == pytest.approx(31_200.0)
    assert row["mean_p"] == pytest.approx(P) and row["retry"] == 1.0
    assert _old_headline_interval(border_year)[1] == pytest.approx(18_000.0)  # the old fault


def test_the_headline_over_a_span_starting_mid_year(monkeypatch):
    _stand_ins(monkeypatch)
    # 2015-07 … 2017-06 at 1,000 a month: 24,000 over 24 months -> 12,000 a year × 1.5 = 18,000
    # (before: over 3 calendar years, 8,000 × 1.5 = 12,000)
    months = _months("2015-07-01", 24)
    border_year = _by_year(months, np.full(24, 1000), K) // 100
    assert list(border_year["year"].values) == [2015, 2016, 2017]
    row = sensitivity.headline(*_sensitivity_fit(border_year, months))
    assert row["median"] == pytest.approx(18_000.0)
    assert _old_headline_interval(border_year)[1] == pytest.approx(12_000.0)


def test_the_headline_of_whole_years_is_that_of_before_to_the_bit(monkeypatch):
    _stand_ins(monkeypatch)
    rng = np.random.default_rng(11)
    border_year = xr.DataArray(
        rng.integers(5_000, 15_000, size=(2, 250, 12)),
        dims=("chain", "draw", "year"),
        coords={"year": np.arange(2006, 2018)},
    )
    tree, data = _sensitivity_fit(border_year, _months("2006-01-01", 144))
    row = sensitivity.headline(tree, data)
    lower, median, upper = _old_headline_interval(border_year)
    assert (row["lower"], row["median"], row["upper"]) == (lower, median, upper)  # exact
    assert row["median"] != round(row["median"])  # uneven counts: the test would see a rounding
    # the study's rows keep their keys (paper/inputs/sensitivity.json is read by estim.paper.studies)
    assert set(row) == {"median", "lower", "upper", "mean_p", "retry"}
    shipped = json.loads((ROOT / "paper" / "inputs" / "sensitivity.json").read_text())
    assert all(set(row) <= set(r) for r in shipped)


def test_the_headline_refuses_years_the_data_lack(monkeypatch):
    _stand_ins(monkeypatch)
    months = _months("2016-01-01", 24)
    border_year = _by_year(months, np.full(24, 1000), K)
    tree, data = _sensitivity_fit(border_year, months[:12])  # the data stop in 2016
    with pytest.raises(EstimInputError, match="2017"):
        sensitivity.headline(tree, data)


# ----------------------------------------------------------------------------------------------------------------
# retry_summary: the apprehended journeys given up per year


def _retry_posterior(abandoned: xr.DataArray) -> xr.Dataset:
    chains, n = abandoned.sizes["chain"], abandoned.sizes["draw"]
    retry = np.linspace(0.8, 0.99, chains * n).reshape(chains, n)
    coverage = np.zeros((chains, n, 2))
    return xr.Dataset(
        {
            "retry_probability": (("chain", "draw"), retry),
            "register_coverage": (("chain", "draw", "in_country_list"), coverage),
            "abandoned_border_year": abandoned,
        }
    )


def test_the_journeys_given_up_over_records_ending_in_june_are_a_rate_per_year():
    # 2016-01 … 2017-06: 100 journeys given up a month in 2016, 200 in 2017: 1,200 + 1,200 = 2,400 over 18
    # months -> 1,600 a year; draws × 1, 2, 3: median 3,200 (before: 2,400 / 2 years × 2 = 2,400)
    months = _months("2016-01-01", 18)
    abandoned = _by_year(months, np.r_[np.full(12, 100), np.full(6, 200)], np.array([1, 2, 3]))
    summary = retry_summary(_retry_posterior(abandoned), months=months)
    assert summary["abandoned_per_year"] == pytest.approx(3200.0)
    assert summary["source"] == "linkage"
    # a span starting mid-year: 2015-07 … 2017-06 at 100 a month, 2,400 over 24 months -> 1,200 a year × 2
    # (before: 2,400 / 3 years × 2 = 1,600)
    months = _months("2015-07-01", 24)
    abandoned = _by_year(months, np.full(24, 100), np.array([1, 2, 3]))
    summary = retry_summary(_retry_posterior(abandoned), months=months)
    assert summary["abandoned_per_year"] == pytest.approx(2400.0)
    with pytest.raises(EstimInputError, match="2015"):
        retry_summary(_retry_posterior(abandoned), months=months[6:])


def test_the_journeys_given_up_over_whole_years_are_those_of_before_to_the_bit():
    rng = np.random.default_rng(5)
    abandoned = xr.DataArray(
        rng.integers(0, 3_000, size=(2, 100, 12)),  # 200 draws: the median between two
        dims=("chain", "draw", "year"),
        coords={"year": np.arange(2006, 2018)},
    )
    post = _retry_posterior(abandoned)
    before = float((abandoned.sum("year") / abandoned.sizes["year"]).median())
    assert before != round(before)
    assert retry_summary(post, months=_months("2006-01-01", 144))["abandoned_per_year"] == before
    assert retry_summary(post)["abandoned_per_year"] == before  # without months: whole years


def test_the_report_shows_the_journeys_given_up_as_a_rate_per_year():
    from estim.families.border.report import border_tables

    # the report's fit: 18 months to June 2017, as above; the median 3,200 a year (before: 2,400)
    months = _months("2016-01-01", 18)
    per_month = np.r_[np.full(12, 100), np.full(6, 200)]
    abandoned = _by_year(months, per_month, np.array([1, 2, 3]))
    post = _retry_posterior(abandoned)
    post["unobserved_border_year"] = abandoned
    post["unobserved_section_year"] = abandoned.expand_dims(section=["a"], axis=2)
    crossings = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), np.full((1, 18, 1), 5))},
        coords={"section": ["a"], "month": months, "category": ["x"]},
    )
    tree = xr.DataTree.from_dict({"posterior": post, "crossings": crossings})
    assert border_tables(tree)["retry"]["abandoned_per_year"] == pytest.approx(3200.0)


# ----------------------------------------------------------------------------------------------------------------
# scripts/border_frailty_loo.py: the truth beside the estimates, and what they are


@pytest.fixture(scope="module")
def frailty_loo():
    return load_script("border_frailty_loo")


def _truth_rows(months: np.ndarray, per_month: np.ndarray) -> pd.DataFrame:
    """`section_year_table`'s rows of one section whose true unobserved crossings are `per_month`."""
    from estim.studies.border_truth import section_year_table

    data = xr.Dataset(
        coords={
            "section": ["a"],
            "month": months,
            "year": ("month", pd.DatetimeIndex(months).year.values),
        }
    )
    data["surveyed"] = ("section", [True])
    truth = xr.Dataset(
        {"unobserved": (("section", "month", "category"), per_month[None, :, None])},
        coords={"section": ["a"], "month": months, "category": ["x"]},
    )
    draws = _by_year(months, per_month, np.array([1, 1, 1])).expand_dims(section=["a"], axis=2)
    return section_year_table(data, truth, draws)


def test_the_scripts_truth_over_records_ending_in_june_is_a_rate_per_year(frailty_loo):
    # 1,000 a month in 2016, 2,000 in 2017's six months: 24,000 over 18 months -> 16,000 a year (before:
    # the mean of the years' truths, (12,000 + 12,000) / 2 = 12,000)
    months = _months("2016-01-01", 18)
    rows = _truth_rows(months, np.r_[np.full(12, 1000), np.full(6, 2000)])
    assert rows.drop_duplicates("year")["border_truth"].mean() == 12_000.0  # the old reading
    assert frailty_loo.truth_per_year(rows, months) == pytest.approx(16_000.0)
    heading = frailty_loo.estimate_heading(months)
    assert "rate over the 18 months 2016-01 … 2017-06 (total × 12/18)" in heading
    assert "mean over the fitted years" not in heading


def test_the_scripts_truth_over_whole_years_is_that_of_before_to_the_bit(frailty_loo):
    rng = np.random.default_rng(10)  # 20,377 in all: not a multiple of 3
    months = _months("2014-01-01", 36)
    rows = _truth_rows(months, rng.integers(0, 1_000, size=36))
    before = float(rows.drop_duplicates("year")["border_truth"].mean())
    assert before != round(before)
    assert frailty_loo.truth_per_year(rows, months) == before
    assert frailty_loo.estimate_heading(months) == (
        "whole-border unobserved crossings per year (mean over 2014–2016), median [90 % interval]"
    )
