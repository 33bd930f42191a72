"""The other readers of a border fit's yearly draws over records that start or stop mid-year: the study's
questions (`estim.families.border.questions`, the whole-period row), `frequency_loo`'s whole-border estimate
and the paper's whole-border numbers (`estim.paper.build.border`), as the report (test_report_partial_year).

Before: each averaged over the calendar years, so that records ending in June 2017 gave a whole-period "mean
per year" of 1½ years' crossings divided by 2 (of 11½ by 12 on the shipped span: 10,660 a year where the rate
is 11,123), and a row "2017" holding six months beside the whole years. Now the per-year numbers are the total
over the fitted months × 12 / their number and a part year's row is labelled with its months. With whole years
the numbers are those of before, to the bit. The fits are built by hand, without sampling: counts per section
× month × category times a draw's factor, summed by calendar year as `after_sampling` does; every reference is
worked out by hand (in the comments).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.families.border import questions as q
from estim.families.border.data import CATEGORIES, HARMONICS, JOURNEY_CATEGORIES
from estim.families.border.questions import format_questions, questions_json, study_questions
from estim.intervals import equal_tailed

SECTIONS = ["west", "omsk", "orenburg", "east"]
LENGTHS = pd.DataFrame({"section_id": SECTIONS, "length_km": [100.0, 200.0, 300.0, 400.0]})
LEVEL = np.array(
    [1, 2, 3, 4]
)  # unobserved crossings a month in each category, by section (factor 1)
FACTORS = np.array([1, 2, 3])  # the draws: the counts times 1, 2, 3; the median at 2
APPREHENDED = 10  # a section × month × category
EVENTS = {"agreement": "2016-07-01", "union": "2017-09-01"}


def _fit(
    start: str, n_months: int, *, double_from: str | None = None, draws: np.ndarray | None = None
) -> xr.DataTree:
    """A border fit of `n_months` months from `start`: `LEVEL` unobserved crossings a month in each section ×
    category (twice that from `double_from`), `APPREHENDED` apprehensions in each cell, draws `FACTORS`
    times the counts, or `draws` (draw, section, year, category) when given."""
    months = pd.date_range(start, periods=n_months, freq="MS")
    per_month = np.broadcast_to(LEVEL[:, None, None], (len(SECTIONS), n_months, len(CATEGORIES)))
    if double_from is not None:
        per_month = per_month * np.where(months >= pd.Timestamp(double_from), 2, 1)[None, :, None]
    years = np.unique(months.year)
    by_year = np.stack([per_month[:, months.year == y].sum(1) for y in years], axis=1)
    cells = FACTORS[:, None, None, None] * by_year[None] if draws is None else draws
    n = cells.shape[0]
    u = xr.DataArray(
        cells[None].astype(np.int64),
        dims=("chain", "draw", "section", "year", "category"),
        coords={"section": SECTIONS, "year": years, "category": list(CATEGORIES)},
    )
    shape = {"season": (len(JOURNEY_CATEGORIES), len(HARMONICS)), "log_policy_effect": (2, 4)}
    post = xr.Dataset(
        {
            "unobserved_section_year": u.sum("category"),
            "unobserved_border_year": u.sum(["section", "category"]),
            "unobserved_category_year": u.sum("section").transpose(
                "chain", "draw", "year", "category"
            ),
            "bypass_eta0": (("chain", "draw"), np.full((1, n), -8.0)),
            "bypass_eta1": (("chain", "draw"), np.full((1, n), 1.0)),
            "season": (
                ("chain", "draw", "journey_category", "harmonic"),
                np.zeros((1, n, *shape["season"])),
            ),
            "log_policy_effect": (
                ("chain", "draw", "event", "journey_category"),
                np.zeros((1, n, *shape["log_policy_effect"])),
            ),
        },
        coords={
            "draw": np.arange(n),
            "journey_category": list(JOURNEY_CATEGORIES),
            "harmonic": list(HARMONICS),
            "event": list(EVENTS),
        },
    )
    app = np.full((len(SECTIONS), n_months, len(CATEGORIES)), APPREHENDED)
    crossings = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), app)},
        coords={
            "section": SECTIONS,
            "month": months,
            "category": list(CATEGORIES),
            "event": list(EVENTS),
            "event_start": ("event", pd.to_datetime(list(EVENTS.values()))),
        },
    )
    observed = xr.Dataset(coords={"surveyed_section": ["orenburg", "omsk"]})
    attrs = {"family": "border", "data_synthetic": "true"}
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=attrs),
            "posterior": post,
            "crossings": crossings,
            "observed_data": observed,
        }
    )


def _questions(tree: xr.DataTree) -> dict[str, pd.DataFrame]:
    return study_questions(tree, sections=LENGTHS, wait_minutes=60.0)


# ----------------------------------------------------------------------------------------------------------------
# the study's questions


def test_records_ending_in_june_give_the_period_a_rate_per_year():
    # 2016-01 … 2017-06, 18 months; a month: 1 + 2 + 3 + 4 = 10 a category, 50 across the border in 2016,
    # twice that in 2017 (factor 1): 2016 600, 2017 (Jan–Jun) 600, total 1,200 -> 1,200 × 12/18 = 800 a year;
    # medians at factor 2: 1,600 (before: 1,200 / 2 years = 600, median 1,200)
    scale = _questions(_fit("2016-01-01", 18, double_from="2017-01-01"))["scale"]
    assert list(scale["period"]) == ["2016", "2017 (Jan–Jun)", "2016-01 … 2017-06"]
    rows = scale.set_index("period")
    whole = rows.loc["2016-01 … 2017-06"]
    assert whole["unobserved_median"] == pytest.approx(1600.0)
    # the 90 % interval of 800 × (1, 2, 3): its ends at 1.1 and 2.9
    assert whole["unobserved_lower"] == pytest.approx(880.0)
    assert whole["unobserved_upper"] == pytest.approx(2320.0)
    # apprehensions: 10 × 5 categories × 4 sections = 200 a month -> 2,400 a year (before: 3,600 / 2 = 1,800)
    assert whole["apprehensions"] == pytest.approx(2400.0)
    assert whole["attempts_median"] == pytest.approx(4000.0)
    assert whole["unobserved_share_median"] == pytest.approx(1600 / 4000)
    # the part year: its six months' totals, labelled as such
    part = rows.loc["2017 (Jan–Jun)"]
    assert part["unobserved_median"] == pytest.approx(1200.0)  # 100 × 6 × 2
    assert part["apprehensions"] == pytest.approx(1200.0)  # 200 × 6
    assert rows.loc["2016", "unobserved_median"] == pytest.approx(1200.0)  # 50 × 12 × 2
    assert scale.attrs["period"] == "2016-01 … 2017-06"
    assert scale.attrs["partial_years"] == ["2017 (Jan–Jun)"]
    assert scale.attrs["months"] == {"first": "2016-01", "last": "2017-06", "count": 18}
    assert scale.attrs["years"] == [2016, 2017]


def test_routes_and_categories_over_a_part_year():
    t = _questions(_fit("2016-01-01", 18, double_from="2017-01-01"))
    whole = "2016-01 … 2017-06"
    routes = t["routes"].set_index(["period", "section"])
    # Omsk: 2 a category a month, 4 in 2017: 120 + 120 = 240 over 18 months -> 160 a year, × 2 = 320 on
    # 200 km: 160 per 100 km (before: 240 / 2 × 2 = 240, 120 per 100 km)
    assert routes.loc[(whole, "omsk"), "unobserved_median"] == pytest.approx(320.0)
    assert routes.loc[(whole, "omsk"), "per_100km_median"] == pytest.approx(160.0)
    assert routes.loc[(whole, "omsk"), "share_median"] == pytest.approx(0.2)  # 2 of 10
    assert routes.loc[(whole, "omsk"), "apprehensions"] == pytest.approx(600.0)  # 50 a month
    assert routes.loc[("2017 (Jan–Jun)", "omsk"), "unobserved_median"] == pytest.approx(240.0)
    study = t["study_sections"].set_index(["period", "group"])
    # Omsk + Orenburg: (2 + 3) × 5 categories = 25 a month at factor 1, 50 in 2017: 300 + 300 = 600 over 18
    # months -> 400 a year, × 2 = 800 on 500 km: 160 per 100 km (before: 600 / 2 × 2 = 600, 120)
    assert study.loc[(whole, "Omsk + Orenburg"), "per_100km_median"] == pytest.approx(160.0)
    char = t["character"].set_index(["period", "category"])
    # each category: 10 a month, 20 in 2017: 120 + 120 = 240 -> 160 a year, × 2 = 320; a fifth of the border
    assert char.loc[(whole, "smuggler"), "unobserved_median"] == pytest.approx(320.0)
    assert char.loc[(whole, "smuggler"), "share_median"] == pytest.approx(0.2)
    assert char.loc[("2017 (Jan–Jun)", "smuggler"), "unobserved_median"] == pytest.approx(240.0)


def test_a_span_starting_mid_year_has_a_part_year_at_each_end():
    # 2015-07 … 2017-06 at 50 a month: 24 months, 600 a year at factor 1, 1,200 the median
    # (before: 1,200 / 3 calendar years = 400, median 800)
    scale = _questions(_fit("2015-07-01", 24))["scale"]
    assert list(scale["period"]) == [
        "2015 (Jul–Dec)",
        "2016",
        "2017 (Jan–Jun)",
        "2015-07 … 2017-06",
    ]
    rows = scale.set_index("period")
    assert rows.loc["2015-07 … 2017-06", "unobserved_median"] == pytest.approx(1200.0)
    assert rows.loc["2015-07 … 2017-06", "apprehensions"] == pytest.approx(2400.0)
    assert rows.loc["2015 (Jul–Dec)", "unobserved_median"] == pytest.approx(600.0)
    assert scale.attrs["partial_years"] == ["2015 (Jul–Dec)", "2017 (Jan–Jun)"]


class _OldPeriods:
    """The periods as before the rate: each year labelled by its number, the whole period the mean over the
    calendar years (the old `_by_period`, to compare with)."""

    def __init__(self, tree: xr.DataTree, years: np.ndarray) -> None:
        self.months = q._months(tree)
        self.label = f"{years[0]}–{years[-1]}"
        self.partial: list[str] = []

    def __call__(self, x: xr.DataArray) -> xr.DataArray:
        years = x.assign_coords(year=[str(y) for y in x["year"].values]).rename(year="period")
        whole = x.mean("year").expand_dims(period=[self.label])
        return xr.concat([years, whole], "period")


def _whole_years_draws() -> np.ndarray:
    """(draw, section, year, category): uneven counts, so that the per-year numbers are not round."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 5_000, size=(101, len(SECTIONS), 3, len(CATEGORIES)))


def test_whole_years_give_the_tables_of_before_to_the_bit(monkeypatch):
    tree = _fit("2015-01-01", 36, draws=_whole_years_draws())
    new = _questions(tree)
    monkeypatch.setattr(q, "_Periods", _OldPeriods)
    old = _questions(tree)
    for name in ("scale", "character", "routes", "study_sections"):
        pd.testing.assert_frame_equal(new[name], old[name], check_exact=True)
    whole = new["scale"].set_index("period").loc["2015–2017"]
    # the whole period's median: of the per-draw mean over the 3 years, as computed before
    u = tree["posterior"]["unobserved_border_year"].astype(float)
    assert whole["unobserved_median"] == float(equal_tailed(u.mean("year")).sel(quantile="median"))
    assert new["scale"].attrs["partial_years"] == []
    assert new["scale"].attrs["period"] == "2015–2017"


def test_whole_years_give_the_text_of_before(monkeypatch):
    tree = _fit("2015-01-01", 36, draws=_whole_years_draws())
    new = format_questions(_questions(tree))
    monkeypatch.setattr(q, "_Periods", _OldPeriods)
    assert new == format_questions(_questions(tree))
    assert "a) 2015–2017, mean per year" in new and "PART YEAR" not in new


def test_the_text_names_the_part_year_and_the_rate():
    text = format_questions(_questions(_fit("2016-01-01", 18, double_from="2017-01-01")))
    lines = text.splitlines()
    assert lines[0].endswith(", 2016-01 … 2017-06")
    assert "a) 2016-01 … 2017-06, rate per year" in lines
    assert "mean per year" not in text
    assert any("the total over its 18 months × 12/18" in line for line in lines)
    part = [line for line in lines if line.lstrip().startswith("2017 (Jan–Jun)")]
    # the scale, the character table and the study's sections: its row; and notes under three tables
    assert any("1,200 (660 – 1,740)" in line for line in part)  # 600 × (2; 1.1, 2.9)
    assert sum("PART YEAR" in line and "6 months" in line for line in part) == 3
    payload = json.loads(questions_json(_questions(_fit("2016-01-01", 18))))
    assert payload["partial_years"] == ["2017 (Jan–Jun)"]
    assert payload["months"]["count"] == 18 and payload["period"] == "2016-01 … 2017-06"


def test_the_figure_draws_a_part_year_over_its_months_at_its_rate():
    import matplotlib.pyplot as plt

    from estim.families.border.questions import questions_figure
    from estim.figure_style import figure_texts

    fig = questions_figure(_questions(_fit("2016-01-01", 18, double_from="2017-01-01")))
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((2016.0, 2017.5))  # before: a whole 2017
    # unobserved medians: 2016 1,200; 2017's six months 1,200 -> 2,400 a year (not a fall to 1,200)
    stairs = [p for p in ax.patches if not p.get_fill()]
    values = [list(p.get_data().values) for p in stairs]
    assert [1200.0, 2400.0] in values
    assert [2400.0, 2400.0] in values  # apprehensions: 2,400 a year, the part year's 1,200 × 2
    texts = [t.get_text() for t in figure_texts(fig)]
    assert "part year: its months' total × 12/months" in texts
    assert "c  routes: by section, rate 2016-01 … 2017-06" in texts
    plt.close(fig)


def test_the_mean_wait_is_over_the_fitted_months(tmp_path):
    # checkpoint records to December 2017, the fit to June: 30 min in the fitted months, 90 after; 100
    # foreigners a month (before: the calendar years 2016–2017, (18 × 30 + 6 × 90) / 24 = 45 min)
    months = pd.date_range("2016-01-01", periods=24, freq="MS").strftime("%Y-%m")
    pd.DataFrame({"checkpoint_id": ["r1", "a1"], "type": ["road", "air"]}).to_csv(
        tmp_path / "checkpoints.csv", index=False
    )
    pd.DataFrame(
        {
            "checkpoint_id": "r1",
            "month": months,
            "crossings_foreigners": 100,
            "mean_wait_minutes": [30.0] * 18 + [90.0] * 6,
        }
    ).to_csv(tmp_path / "checkpoint_records.csv", index=False)
    tree = _fit("2016-01-01", 18)
    assert q.mean_wait(tree, tmp_path) == pytest.approx(30.0)
    assert q.mean_wait(_fit("2016-01-01", 24), tmp_path) == pytest.approx(45.0)


# ----------------------------------------------------------------------------------------------------------------
# frequency_loo: the whole-border estimate beside the LOO comparison


def _loo_fits(months: pd.DatetimeIndex, per_month: float) -> tuple[dict, xr.Dataset, list]:
    """Two fits over `months` (2 chains × 200 draws): "good", whose whole border holds `per_month` crossings
    a month times a factor from 1 to 2 evenly over the draws, and "bad", a tenth of it and a far worse
    repeat-count likelihood; their pointwise log-likelihoods in the order the comparison reads them."""
    years = np.unique(months.year)
    in_year = np.array([(months.year == y).sum() for y in years])
    factor = np.linspace(1.0, 2.0, 400).reshape(2, 200)
    rng = np.random.default_rng(2)
    base = rng.normal(-900.0, 3.0, size=(2, len(months)))

    def fit(level: float, shift: float) -> tuple[xr.DataArray, xr.DataTree]:
        draws = np.rint(factor[..., None] * level * in_year).astype(np.int64)
        ll = xr.DataArray(
            base + shift + rng.normal(0.0, 0.05, size=(2, 200, 2, len(months))),
            dims=("chain", "draw", "section", "month"),
            coords={"section": ["omsk", "orenburg"], "month": months},
            name="frequency",
        )
        years_da = xr.DataArray(draws, dims=("chain", "draw", "year"), coords={"year": years})
        return ll, xr.DataTree.from_dict(
            {"posterior": xr.Dataset({"unobserved_border_year": years_da})}
        )

    good_ll, good = fit(per_month, 0.0)
    bad_ll, bad = fit(per_month / 10, -4.0)
    return {"good": good, "bad": bad}, xr.Dataset(coords={"month": months}), [good_ll, bad_ll]


def test_the_loo_estimate_is_a_rate_over_the_data_months(monkeypatch):
    import estim.families.border.frequency_loo as frequency_loo

    # 2016-01 … 2017-06 at 1,000 a month: 12,000 a year × a factor 1 … 2, median 1.5 -> 18,000
    # (before: 18,000 crossings / 2 years × 1.5 = 13,500)
    fits, data, lls = _loo_fits(pd.date_range("2016-01-01", periods=18, freq="MS"), 1000.0)
    it = iter(lls)
    monkeypatch.setattr(frequency_loo, "frequency_log_likelihood", lambda d, p: next(it))
    table, estimates = frequency_loo.compare_frequency_fits(fits, data)
    assert table.loc["good", "weight"] > 0.999
    assert estimates["good"]["median"] == pytest.approx(18_000.0, rel=1e-3)
    assert estimates["good"]["lower"] == pytest.approx(12_000 * 1.05, rel=1e-3)
    assert estimates["bad"]["median"] == pytest.approx(1_800.0, rel=1e-3)
    assert estimates["stacked"]["median"] == pytest.approx(18_000.0, rel=2e-2)


def test_per_year_of_whole_years_is_the_mean_over_them_to_the_bit():
    from estim.families.border.frequency_loo import per_year

    rng = np.random.default_rng(3)
    years = xr.DataArray(
        rng.integers(0, 30_000, size=(2, 50, 12)),
        dims=("chain", "draw", "year"),
        coords={"year": np.arange(2006, 2018)},
    )
    months = pd.date_range("2006-01-01", periods=144, freq="MS").values
    old = years.sum("year").values.ravel() / years.sizes["year"]
    assert np.array_equal(per_year(years, months), old)
    # records to June 2017: the total over 138 months × 12/138, not / 12
    assert np.array_equal(
        per_year(years, months[:138]), years.sum("year").values.ravel() * 12 / 138
    )
    without = years.drop_vars("year")  # draws without their years: taken as whole years
    assert np.array_equal(per_year(without, months[:138]), old)


# ----------------------------------------------------------------------------------------------------------------
# the paper's whole-border numbers


def _truth(path, months: pd.DatetimeIndex) -> None:
    """A truth file of the fit's months: `LEVEL` × 5 categories unobserved a month per section, `APPREHENDED`
    apprehensions in each cell."""
    shape = (len(SECTIONS), len(months), len(CATEGORIES))
    unobserved = np.broadcast_to(LEVEL[:, None, None], shape)
    xr.Dataset(
        {
            "unobserved": (("section", "month", "category"), unobserved.copy()),
            "apprehensions": (("section", "month", "category"), np.full(shape, APPREHENDED)),
        },
        coords={"section": SECTIONS, "month": months, "category": list(CATEGORIES)},
    ).to_netcdf(path, engine="netcdf4")


def _paper_border(monkeypatch, tmp_path, tree: xr.DataTree) -> dict:
    """The paper's `border` step on the fit `tree` (no fitting: the fit and the summary are given), its
    numbers as written."""
    import estim.report.summary as summary
    from estim.families.border.report import border_tables
    from estim.paper import build
    from estim.paper.context import Context, Fitted

    root = tmp_path / "root"
    (root / "models").mkdir(parents=True)
    (root / "models" / "border.toml").write_text("# a stand-in\n")
    (root / "data" / "synthetic").mkdir(parents=True)
    _truth(root / "data" / "synthetic" / "truth.nc", pd.DatetimeIndex(tree["crossings"]["month"]))
    monkeypatch.setattr(build, "fit_spec", lambda ctx, spec: Fitted(spec, tree))
    monkeypatch.setattr(
        summary,
        "summarise",
        lambda tree, prob, truth: {"border": border_tables(tree, prob, truth)},
    )
    ctx = Context(root=root, paper=tmp_path / "paper", quick=True)
    build.border(ctx)
    return json.loads((ctx.generated / "numbers" / "border.json").read_text())


def _value(number: dict) -> float:
    return float(number["value"])


def _paper_draws(tree: xr.DataTree, n: int) -> xr.DataTree:
    """`tree` with 2 chains × `n` draws of the whole border: its counts times 1 + k/1000, k = 0 … 2n − 1."""
    post = tree["posterior"].to_dataset()
    u = post["unobserved_border_year"].isel(chain=0, draw=0, drop=True)
    factor = xr.DataArray(
        (1 + np.arange(2 * n) / 1000).reshape(2, n), dims=("chain", "draw")
    )  # evenly spread: the quantiles are known
    border = np.rint(factor * u).astype(np.int64)
    sy = post["unobserved_section_year"].isel(chain=0, draw=0, drop=True)
    section = np.rint(factor * sy).astype(np.int64)
    new = xr.Dataset({"unobserved_border_year": border, "unobserved_section_year": section})
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=dict(tree.attrs)),
            "posterior": new.transpose("chain", "draw", ...),
            "crossings": tree["crossings"].to_dataset(),
        }
    )


def test_the_paper_whole_border_is_a_rate_over_the_fitted_months(monkeypatch, tmp_path):
    tree = _paper_draws(_fit("2016-01-01", 18, double_from="2017-01-01"), 200)
    numbers = _paper_border(monkeypatch, tmp_path, tree)["whole_border"]
    # 1,200 crossings over 18 months at factor 1 -> 800 a year; the factors 1 … 1.399 have their median
    # at 1.1995: about 959.6 a year, the draws being rounded (before: 1,200 / 2 years × 1.1995 = 719.7)
    total = tree["posterior"]["unobserved_border_year"].sum("year")
    assert _value(numbers["median"]) == pytest.approx(float(np.quantile(total * 12 / 18, 0.5)))
    assert _value(numbers["median"]) == pytest.approx(800 * 1.1995, rel=1e-3)
    assert _value(numbers["upper"]) == pytest.approx(float(np.quantile(total * 12 / 18, 0.95)))
    # the report's numbers beside them: truth 50 a month -> 600 a year; apprehensions 2,400 a year
    assert _value(numbers["truth"]) == pytest.approx(600.0)
    assert _value(numbers["apprehensions"]) == pytest.approx(2400.0)


def test_the_paper_whole_border_of_whole_years_is_unchanged_to_the_bit(monkeypatch, tmp_path):
    from estim.paper.numbers import mc_quantile

    tree = _paper_draws(_fit("2015-01-01", 36, draws=_whole_years_draws()), 200)
    numbers = _paper_border(monkeypatch, tmp_path, tree)["whole_border"]
    mean = tree["posterior"]["unobserved_border_year"].mean("year")  # what the step read before
    for key, p in (("median", 0.5), ("lower", 0.05), ("upper", 0.95)):
        before = mc_quantile(mean, p, unit="crossings a year")
        assert numbers[key]["value"] == before.value and numbers[key]["mcse"] == before.mcse
