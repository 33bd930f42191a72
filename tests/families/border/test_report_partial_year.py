"""The border report over records that start or stop mid-year (estim/families/border/report.py).

Before: with records ending in June 2017 the report printed "2017" as a year beside the whole ones (the
crossings of six months under a year's label) and its "annual mean" divided the total of 1½ years' months by
2 years (of 11½ by 12 on the shipped span): 25 % low here, about 4 % on the shipped span. A truth file
running past the cut was refused as another simulation's. The fits here are built by hand, without
sampling: per section × month counts of unobserved crossings times a draw's factor 1, 2 or 3, summed into the
posterior's ``unobserved_section_year`` as `after_sampling` does, and the apprehensions' ``crossings``
table. Every reference is a sum by hand (in the comments).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border.report import border_figure, border_tables, format_border, year_label
from estim.figure_style import figure_texts

SECTIONS = ["a", "b"]
FACTORS = np.array([1, 2, 3])  # the draws: the monthly counts times 1, 2, 3; median at 2
APPREHENDED = {"a": 10, "b": 20}  # a month


def _fit(start: str, n_months: int, unobserved: dict[str, np.ndarray] | None = None) -> xr.DataTree:
    """A border fit of `n_months` months from `start`: unobserved crossings per section × month (for the
    draw of factor 1; default a: 100, b: 50 a month) and `APPREHENDED` apprehensions a month."""
    months = pd.date_range(start, periods=n_months, freq="MS")
    if unobserved is None:
        unobserved = {"a": np.full(n_months, 100), "b": np.full(n_months, 50)}
    monthly = np.stack([unobserved[s] for s in SECTIONS])  # section × month
    years = np.unique(months.year)
    by_year = np.stack([monthly[:, months.year == y].sum(1) for y in years], axis=1)
    sy = FACTORS[None, :, None, None] * by_year[None, None]  # chain × draw × section × year
    posterior = xr.Dataset(
        {
            "unobserved_section_year": (("chain", "draw", "section", "year"), sy),
            "unobserved_border_year": (("chain", "draw", "year"), sy.sum(2)),
        },
        coords={"chain": [0], "draw": [0, 1, 2], "section": SECTIONS, "year": years},
    )
    app = np.stack([np.full(n_months, APPREHENDED[s]) for s in SECTIONS])[..., None]
    crossings = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), app)},
        coords={"section": SECTIONS, "month": months, "category": ["x"]},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "crossings": crossings})


def _by_year(tables: dict) -> dict[str, dict]:
    return {r.get("label", str(r["year"])): r for r in tables["whole_border_by_year"]}


def test_records_ending_in_june_give_a_rate_per_year_and_a_labelled_part_year():
    # 2016-01 … 2017-06; a: 100 a month in 2016, 200 in 2017; b: 50 a month throughout
    a = np.r_[np.full(12, 100), np.full(6, 200)]
    t = border_tables(_fit("2016-01-01", 18, {"a": a, "b": np.full(18, 50)}))
    # totals (factor 1): a 1,200 + 1,200 = 2,400; b 600 + 300 = 900; border 3,300, over 18 months
    # rate a year = total × 12/18: a 1,600, b 600, border 2,200; medians at factor 2
    # (before: total / 2 years: a 2,400, b 900, border 3,300)
    a_row, b_row = t["sections"]
    assert a_row["median"] == pytest.approx(3200.0)
    assert b_row["median"] == pytest.approx(1200.0)
    whole = t["whole_border"]
    assert whole["median"] == pytest.approx(4400.0)
    # 90 % interval of 2,200 × (1, 2, 3): the 5 % and 95 % points at 1.1 and 2.9
    assert whole["lower"] == pytest.approx(2420.0)
    assert whole["upper"] == pytest.approx(6380.0)
    # apprehensions: a 10, b 20 a month -> 120, 240, 360 a year (before: 180/2 = 90, 180, 270)
    assert a_row["apprehensions_per_year"] == pytest.approx(120.0)
    assert b_row["apprehensions_per_year"] == pytest.approx(240.0)
    assert whole["apprehensions_per_year"] == pytest.approx(360.0)
    # the year rows: 2016 whole (1,800 × 2), 2017 its six months' total (1,500 × 2), labelled as such
    rows = _by_year(t)
    assert list(rows) == ["2016", "2017 (Jan–Jun)"]
    assert rows["2016"]["months"] == 12 and rows["2017 (Jan–Jun)"]["months"] == 6
    assert rows["2016"]["median"] == pytest.approx(3600.0)
    assert rows["2017 (Jan–Jun)"]["median"] == pytest.approx(3000.0)
    assert rows["2017 (Jan–Jun)"]["apprehensions"] == pytest.approx(180.0)
    assert [r["year"] for r in t["whole_border_by_year"]] == [2016, 2017]  # still the calendar year
    assert t["partial_years"] == ["2017 (Jan–Jun)"]
    assert t["months"] == {"first": "2016-01", "last": "2017-06", "count": 18}
    assert "mean over 2016–2017" not in t["what"] and "18 months" in t["what"]


def test_a_span_starting_mid_year_has_a_part_year_at_each_end():
    # 2015-07 … 2017-06 at a: 100, b: 50 a month: 24 months, border 3,600 a year at factor 1
    # (before: 150 × 24 / 3 years = 1,200; × 2 = 2,400)
    t = border_tables(_fit("2015-07-01", 24))
    assert t["whole_border"]["median"] == pytest.approx(3600.0)  # 150 × 24 × 12/24 × 2
    assert t["sections"][0]["median"] == pytest.approx(2400.0)  # 100 × 12 × 2
    rows = _by_year(t)
    assert list(rows) == ["2015 (Jul–Dec)", "2016", "2017 (Jan–Jun)"]
    assert [r["months"] for r in rows.values()] == [6, 12, 6]
    assert rows["2015 (Jul–Dec)"]["median"] == pytest.approx(1800.0)  # 150 × 6 × 2
    assert rows["2016"]["median"] == pytest.approx(3600.0)
    assert t["partial_years"] == ["2015 (Jul–Dec)", "2017 (Jan–Jun)"]


def test_whole_years_are_reported_as_before():
    """Whole years: the numbers, keys and text of before (this test passes on the old code too)."""
    t = border_tables(_fit("2016-01-01", 24))
    assert t["whole_border"]["median"] == pytest.approx(3600.0)  # 150 × 24 × 2 / 2 years
    assert t["whole_border"]["apprehensions_per_year"] == pytest.approx(360.0)
    assert t["sections"][1]["apprehensions_per_year"] == pytest.approx(240.0)
    assert t["what"] == "unobserved illegal crossings per year, mean over 2016–2017"
    assert t["years"] == [2016, 2017]
    assert [r["year"] for r in t["whole_border_by_year"]] == [2016, 2017]
    text = format_border(t)
    assert "per year, mean over 2016–2017:" in text
    assert "  2016:    3,600 (1,980 – 5,220)" in text.splitlines()
    assert "PART YEAR" not in text


def test_the_text_says_which_year_is_a_part_year_and_how_the_mean_is_made():
    text = format_border(border_tables(_fit("2016-01-01", 18)))
    assert "rate over the 18 months 2016-01 … 2017-06:" in text
    assert "mean over 2016–2017" not in text
    assert "× 12/18" in text
    lines = text.splitlines()
    part = next(line for line in lines if line.startswith("  2017 (Jan–Jun):"))
    assert "1,800" in part and "PART YEAR" in part and "6 months" in part
    whole = next(line for line in lines if line.startswith("  2016:"))
    assert "3,600" in whole and "PART YEAR" not in whole
    assert next(line for line in lines if line.startswith("WHOLE BORDER")).split()[2:4] == [
        "360",
        "3,600",
    ]


def test_whole_years_have_no_part_year():
    t = border_tables(_fit("2016-01-01", 24))
    assert t["partial_years"] == []
    assert [(r["label"], r["months"]) for r in t["whole_border_by_year"]] == [
        ("2016", 12),
        ("2017", 12),
    ]


def test_year_labels():
    assert year_label(2016, list(range(1, 13))) == "2016"
    assert year_label(2017, [1, 2, 3, 4, 5, 6]) == "2017 (Jan–Jun)"
    assert year_label(2015, [7, 8, 9, 10, 11, 12]) == "2015 (Jul–Dec)"
    assert year_label(2017, [3]) == "2017 (Mar)"


def _truth_file(
    path, start: str, n_months: int, per_month: dict[str, int], apprehended=APPREHENDED
):
    months = pd.date_range(start, periods=n_months, freq="MS")

    def cube(values):
        v = np.stack([np.full(n_months, values[s]) for s in SECTIONS])[..., None]
        return (("section", "month", "category"), v)

    xr.Dataset(
        {"unobserved": cube(per_month), "apprehensions": cube(apprehended)},
        coords={"section": SECTIONS, "month": months, "category": ["x"]},
    ).to_netcdf(path, engine="netcdf4")
    return path


def test_a_truth_running_past_the_cut_is_summed_over_the_fitted_months(tmp_path):
    # the simulation ran to December 2017, the records were cut at June: truth a 200, b 100 a month
    truth = _truth_file(tmp_path / "truth.nc", "2016-01-01", 24, {"a": 200, "b": 100})
    t = border_tables(_fit("2016-01-01", 18), truth=truth)
    # 300 a month × 18 months × 12/18 = 3,600 a year (before: refused as another simulation's)
    assert t["whole_border"]["truth"] == pytest.approx(3600.0)
    assert t["sections"][0]["truth"] == pytest.approx(2400.0)
    rows = _by_year(t)
    assert rows["2016"]["truth"] == pytest.approx(3600.0)
    assert rows["2017 (Jan–Jun)"]["truth"] == pytest.approx(1800.0)  # its six months, not 3,600
    assert rows["2017 (Jan–Jun)"]["covered"]  # 990 – 2,610
    assert t["truth"]["border_years_covered"] == 2
    assert "over its months only" in format_border(t)


def test_the_truth_of_another_simulation_is_still_refused(tmp_path):
    other = _truth_file(
        tmp_path / "other.nc", "2016-01-01", 24, {"a": 200, "b": 100}, {"a": 30, "b": 20}
    )
    with pytest.raises(EstimInputError, match="another simulation"):
        border_tables(_fit("2016-01-01", 18), truth=other)
    short = _truth_file(tmp_path / "short.nc", "2016-01-01", 12, {"a": 200, "b": 100})
    with pytest.raises(EstimInputError, match="does not cover the fit's sections and years"):
        border_tables(_fit("2016-01-01", 18), truth=short)


def test_the_figure_draws_a_part_year_over_its_months_at_its_rate():
    fig = border_figure(border_tables(_fit("2015-07-01", 24)))
    ax = fig.axes[1]
    assert ax.get_xlim() == pytest.approx((2015.5, 2017.5))  # before: 2015 – 2018, whole years
    # the medians drawn: 1,800 over six months is 3,600 a year, as 2016's 3,600
    median = next(p for p in ax.patches if not p.get_fill())
    np.testing.assert_allclose(median.get_data().values, [3600.0, 3600.0, 3600.0])
    texts = [t.get_text() for t in figure_texts(fig)]
    assert "part year: its months' mean × 12" in texts
    assert any("rate 2015-07 … 2017-06" in t for t in texts)
