"""The forecast figures (fan chart, scenario × section heat map) and `percent_change`, on a small hand-made
forecast whose measures multiply the baseline by known factors, so the changes are known exactly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from estim import figure_style as fs  # noqa: E402
from estim.errors import EstimInputError  # noqa: E402
from estim.measures import figures as mf  # noqa: E402

DRAWS = 50
SECTIONS = ["west", "middle", "east"]
SCENARIOS = ["baseline", "permits", "coordination", "permits+coordination"]
MINUS = "\u2212"


def _fake(synthetic: bool = True, seed: int = 7) -> xr.Dataset:
    """Baseline: west a multiple of 10 (so that 0.8 and 0.5 of it are counts), middle 3 × west, east 0.
    permits = 0.8 × baseline everywhere (−20 %); coordination = 0.5 × west, 1 × middle (−50 %, 0 %; the whole
    border −12.5 %: west is a quarter of it); permits+coordination: independent noisy counts."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2018-01-01", periods=18, freq="MS").values  # 2018 whole, 2019 half
    west = 10 * rng.poisson(20, (DRAWS, len(months))) + 10
    base = np.stack([west, 3 * west, np.zeros_like(west)], axis=1)  # draw × section × month
    factors = {"baseline": [1, 1, 1], "permits": [0.8, 0.8, 0.8], "coordination": [0.5, 1, 1]}
    values = [np.rint(base * np.array(factors[s])[None, :, None]) for s in SCENARIOS[:3]]
    values.append(rng.poisson(0.9 * base))
    unobserved = np.stack(values, axis=1).astype(np.int64)  # draw × scenario × section × month
    apprehensions = (unobserved // 2).astype(np.int64)
    history_months = pd.date_range("2016-01-01", periods=24, freq="MS").values
    history = rng.poisson(200, (20, len(SECTIONS), len(history_months)))
    return xr.Dataset(
        {
            "unobserved": (("draw", "scenario", "section", "month"), unobserved),
            "apprehensions": (("draw", "scenario", "section", "month"), apprehensions),
            "attempts": (("draw", "scenario", "section", "month"), unobserved + apprehensions),
            "history_unobserved": (("history_draw", "section", "history_month"), history),
            "history_apprehensions": (("section", "history_month"), history[0] // 2),
        },
        coords={
            "draw": np.arange(DRAWS),
            "scenario": SCENARIOS,
            "section": SECTIONS,
            "month": months,
            "history_month": history_months,
            "history_draw": np.arange(20),
            "event": ["customs_union"],
            "event_start": ("event", np.array(["2016-07-01"], dtype="datetime64[ns]")),
            "measure": ["permits", "coordination"],
            "measure_start": ("measure", np.array(["2018-01-01", "2018-07-01"], "datetime64[ns]")),
            "surveyed": ("section", [True, False, False]),
        },
        attrs={
            "synthetic": "true" if synthetic else "false",
            "start": "2018-01",
            "horizon": len(months),
            "seed": seed,
            "fit_hash": "f",
            "measures_hash": "m",
        },
    )


@pytest.fixture(scope="module")
def fc() -> xr.Dataset:
    return _fake()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fs.figure_texts(fig)]


def _by_gid(fig, kind) -> dict[str, object]:
    return {a.get_gid(): a for a in fig.findobj(kind) if a.get_gid()}


def test_percent_change_returns_each_measures_known_factor_exactly(fc):
    change = mf.percent_change(fc, "unobserved")
    assert change.dims == ("draw", "scenario", "section")
    assert (
        list(change["scenario"].values) == SCENARIOS[1:]
    )  # the baseline is the reference, not a row
    assert list(change["section"].values) == [*SECTIONS, mf.WHOLE_BORDER]
    permits = change.sel(scenario="permits")
    assert (permits.sel(section=["west", "middle", mf.WHOLE_BORDER]) == -20.0).all()
    coordination = change.sel(scenario="coordination")
    assert (coordination.sel(section="west") == -50.0).all()
    assert (coordination.sel(section="middle") == 0.0).all()
    # the whole border is the change of the border's total (west weighs 1/4), not the sections' mean (−25)
    assert (coordination.sel(section=mf.WHOLE_BORDER) == -12.5).all()
    assert (
        change.sel(section="east").isnull().all()
    )  # no baseline: the change of nothing is undefined


def test_percent_change_of_noisy_counts_matches_a_direct_computation(fc):
    change = mf.percent_change(fc, "attempts").sel(scenario="permits+coordination")
    x = fc["attempts"].values.astype(float)  # draw × scenario × section × month
    s, b = x[:, 3].sum(axis=2), x[:, 0].sum(axis=2)
    for d in range(DRAWS):
        for j in range(2):
            assert change.values[d, j] == pytest.approx(
                100 * (s[d, j] - b[d, j]) / b[d, j], rel=1e-12
            )
        whole = 100 * (s[d].sum() - b[d].sum()) / b[d].sum()
        assert change.values[d, 3] == pytest.approx(whole, rel=1e-12)


def test_percent_change_by_year_counts_the_months_of_each_year(fc):
    change = mf.percent_change(fc, "unobserved", over="year")
    assert list(change["year"].values) == [2018, 2019]
    assert list(change["months"].values) == [12, 6]
    assert (change.sel(scenario="permits", section="west") == -20.0).all()
    direct = fc["unobserved"].isel(month=slice(12, None)).sum("month").values.astype(float)
    expected = 100 * (direct[:, 3, 1] - direct[:, 0, 1]) / direct[:, 0, 1]
    got = change.sel(scenario="permits+coordination", section="middle", year=2019).values
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantity": "crossings"}, "crossings"),
        ({"over": "decade"}, "decade"),
    ],
)
def test_percent_change_refuses_what_it_cannot_compute(fc, kwargs, match):
    with pytest.raises(EstimInputError, match=match):
        mf.percent_change(fc, **kwargs)
    with pytest.raises(EstimInputError, match="baseline"):
        mf.percent_change(fc.sel(scenario=SCENARIOS[1:]))


def test_the_heatmap_annotates_each_cell_with_its_median_and_probability_of_reduction(fc):
    fig = mf.change_heatmap(fc)
    texts = {gid: t.get_text() for gid, t in _by_gid(fig, matplotlib.text.Text).items()}
    for section in ("west", "middle", mf.WHOLE_BORDER):
        assert texts[f"median:permits:{section}"] == f"{MINUS}20"
        assert texts[f"p_reduction:permits:{section}"] == "1.00"
    assert texts["median:coordination:west"] == f"{MINUS}50"
    assert texts["median:coordination:middle"] == "0"
    assert texts["p_reduction:coordination:middle"] == "0.00"  # no draw reduces anything there
    for scenario in SCENARIOS[1:]:  # the east has no baseline crossings
        assert texts[f"undefined:{scenario}:east"] == "\u2013"
        assert f"median:{scenario}:east" not in texts
    # the noisy combination against a direct count of the draws that reduce the whole border
    x = fc["unobserved"].sum(["section", "month"]).values
    p = np.mean(x[:, 3] < x[:, 0])
    assert texts[f"p_reduction:permits+coordination:{mf.WHOLE_BORDER}"] == f"{p:.2f}"
    summary = mf.change_summary(fc)
    assert float(summary["median"].sel(scenario="coordination", section=mf.WHOLE_BORDER)) == -12.5
    assert not bool(summary["defined"].sel(scenario="permits", section="east"))


def test_the_heatmap_marks_surveyed_sections_and_labels_its_colour_scale(fc):
    fig = mf.change_heatmap(fc)
    texts = _texts(fig)
    assert "west\u2020" in texts and "middle" in texts and "whole border" in texts
    assert any("\u2020 surveyed section" in t for t in texts)
    assert "% change in unobserved crossings\nover the horizon" in texts
    main = fig.axes[0]
    mesh = main.collections[0]
    lo, hi = mesh.norm.vmin, mesh.norm.vmax
    assert lo == -hi and hi == pytest.approx(50)  # diverging, centred at 0


@pytest.mark.parametrize("synthetic", [True, False])
@pytest.mark.parametrize("figure", ["fan", "heatmap"])
def test_figures_carry_the_synthetic_stamp_only_for_synthetic_forecasts(synthetic, figure):
    fc = _fake(synthetic)
    fig = mf.fan_chart(fc) if figure == "fan" else mf.change_heatmap(fc)
    assert ("SYNTHETIC" in _texts(fig)) is synthetic
    small = [(t.get_text(), t.get_fontsize()) for t in fs.figure_texts(fig)]
    assert all(size >= fs.MIN_FONT_PT for _, size in small), small
    assert fig.get_size_inches()[0] == pytest.approx(fs.DOUBLE_COLUMN)


def test_the_fan_chart_has_counted_axes_bands_in_order_and_the_median(fc):
    fig = mf.fan_chart(fc, prob=0.8)
    texts = _texts(fig)
    labels = [a.get_ylabel() for a in fig.axes if a.get_ylabel()]
    assert "unobserved illegal crossings\nper month" in labels
    assert "unobserved illegal crossings\nper year" in labels
    assert "forecast, 80 % posterior interval" in texts  # the level used, not a fixed 90 %
    assert "fitted period, 80 % posterior interval" in texts
    assert any("customs union" in t for t in texts) and any("permits" in t for t in texts)
    ticks = [t.get_text() for a in fig.axes for t in a.get_yticklabels() if t.get_text()]
    assert any("," in t for t in ticks), ticks  # thousands separators on the counts
    bands = _by_gid(fig, matplotlib.collections.PolyCollection)
    lines = _by_gid(fig, matplotlib.lines.Line2D)
    assert set(mf.default_scenarios(fc)) == set(SCENARIOS)
    total = fc["unobserved"].sum("section").values  # draw × scenario × month
    for k, s in enumerate(SCENARIOS):
        inner = bands[f"band-0.5-{s}"].get_paths()[0].vertices
        outer = bands[f"band-0.8-{s}"].get_paths()[0].vertices
        for x in np.unique(inner[:, 0]):
            i, o = inner[inner[:, 0] == x, 1], outer[outer[:, 0] == x, 1]
            assert o.min() <= i.min() <= i.max() <= o.max()
        median = lines[f"median-{s}"].get_ydata()
        np.testing.assert_allclose(median, np.median(total[:, k], axis=0))
        q = np.quantile(total[:, k], [0.1, 0.9], axis=0)
        assert np.all((q[0] <= median) & (median <= q[1]))


def test_the_fan_chart_draws_the_chosen_scenarios_and_observed_apprehensions(fc):
    fig = mf.fan_chart(fc, "apprehensions", scenarios=["baseline", "permits"])
    lines = _by_gid(fig, matplotlib.lines.Line2D)
    assert {g for g in lines if g.startswith("median-")} == {"median-baseline", "median-permits"}
    observed = lines["observed-history"].get_ydata()
    np.testing.assert_array_equal(observed, fc["history_apprehensions"].sum("section").values)
    assert "apprehensions\nper month" in [a.get_ylabel() for a in fig.axes]
    with pytest.raises(EstimInputError, match="faster_checks"):
        mf.fan_chart(fc, scenarios=["baseline", "faster_checks"])


def test_a_forecast_kept_by_category_gives_the_same_change(fc):
    u = fc["unobserved"]
    split = xr.concat([u // 3, u - u // 3], dim=pd.Index(["a", "b"], name="category"))
    by_category = fc.assign(unobserved=split.transpose("draw", "scenario", "section", "month", ...))
    xr.testing.assert_identical(
        mf.percent_change(by_category, "unobserved"), mf.percent_change(fc, "unobserved")
    )
