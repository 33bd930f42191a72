"""The house style of estim's figures: column widths, fonts >= 7 pt, counts with thousands separators, interval
levels in legends, policy events, the SYNTHETIC stamp; and the figures drawn in it, on small hand-made inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from estim.report import figures as fs  # noqa: E402


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fs.figure_texts(fig)]


def _assert_fonts_at_least_min(fig) -> None:
    small = {(t.get_text(), t.get_fontsize()) for t in fs.figure_texts(fig)}
    small = {(s, size) for s, size in small if size < fs.MIN_FONT_PT}
    assert not small, small


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_style_sets_every_font_at_or_above_7_pt():
    with fs.house_style():
        sizes = [
            matplotlib.rcParams[k]
            for k in (
                "font.size",
                "axes.titlesize",
                "axes.labelsize",
                "xtick.labelsize",
                "ytick.labelsize",
                "legend.fontsize",
            )
        ]
    assert all(float(s) >= fs.MIN_FONT_PT for s in sizes), sizes
    assert fs.MIN_FONT_PT >= 7


def test_a_styled_figure_keeps_its_fonts_and_column_width_when_saved(tmp_path):
    with fs.house_style():
        fig, ax = fs.subplots(width=fs.SINGLE_COLUMN, height=2.0)
        ax.plot([0, 1e4], [0, 3e4])
        ax.set_xlabel("people")
        ax.text(0.5, 0.5, "tiny", fontsize=4)  # raised to the minimum by finish_figure
        fs.count_axis(ax, "y")
        fs.finish_figure(fig)
    assert fig.get_size_inches()[0] == pytest.approx(fs.SINGLE_COLUMN)
    _assert_fonts_at_least_min(fig)  # tick labels too, made outside the style block
    path = fs.save_figure(fig, tmp_path / "f.png", dpi=100)
    from PIL import Image

    assert Image.open(path).size[0] == round(fs.SINGLE_COLUMN * 100)


def test_column_widths_are_a_journal_column_and_a_page():
    assert fs.SINGLE_COLUMN == pytest.approx(3.5)
    assert fs.DOUBLE_COLUMN == pytest.approx(7.2)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12345, "12,345"),
        (1234567.0, "1,234,567"),
        (0, "0"),
        (10, "10"),
        (0.5, "0.5"),
        (-2500, "-2,500"),
    ],
)
def test_counts_are_written_with_thousands_separators(value, text):
    assert fs.format_count(value) == text
    assert fs.count_formatter()(value) == text


def test_a_log_count_axis_reads_as_counts_not_powers_of_ten():
    with fs.house_style():
        fig, ax = fs.subplots(height=2.0)
        ax.plot([1, 2], [1, 20000])
        fs.count_axis(ax, "y", "symlog")
        fs.finish_figure(fig)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "10,000" in labels and "1,000" in labels
    assert not any("^" in s or "e" in s for s in labels), labels


def test_interval_labels_state_the_level_used():
    assert fs.interval_label(0.9) == "90 % posterior interval"
    assert fs.interval_label(0.8, "") == "80 % interval"
    assert (
        fs.interval_label(0.975, "posterior predictive") == "97.5 % posterior predictive interval"
    )


@pytest.mark.parametrize("synthetic", [True, False])
def test_the_synthetic_stamp_appears_only_when_asked(synthetic):
    with fs.house_style():
        fig, ax = fs.subplots(height=2.0)
        ax.plot([0, 1], [0, 1])
        fs.finish_figure(fig, synthetic=synthetic)
    assert ("SYNTHETIC" in _texts(fig)) is synthetic


def test_whether_a_fit_is_synthetic_is_read_from_its_attrs():
    assert fs.is_synthetic({"data_synthetic": "true"})
    assert not fs.is_synthetic({"data_synthetic": "false", "data_source": "SYNTHETIC records"})
    assert fs.is_synthetic(
        {"data_source": "SYNTHETIC records made by the simulator in data/synthetic"}
    )
    assert not fs.is_synthetic({})


def test_policy_events_are_read_from_a_records_table_a_mapping_or_json():
    table = pd.DataFrame(
        {
            "kind": ["customs_union", "border_residents_agreement", "local_rule"],
            "start_date": ["2011-07-01", "2009-04-27", "2010-01-01"],
            "section_id": ["*", "*", "omsk"],
        }
    )
    expected = [
        ("border_residents_agreement", np.datetime64("2009-04-27")),
        ("customs_union", np.datetime64("2011-07-01")),
    ]
    assert fs.policy_events(table) == expected  # sorted by date, border-wide events only
    assert fs.policy_events(dict(expected[::-1])) == expected
    assert fs.policy_events('[{"event": "customs_union", "date": "2011-07-01"}]') == expected[1:]
    assert fs.policy_events(None) == []


def test_events_a_fit_records_are_found_in_any_group():
    tree = xr.DataTree.from_dict(
        {
            "/crossings": xr.Dataset(
                coords={
                    "event": ["customs_union"],
                    "event_start": ("event", np.array(["2011-07-01"], dtype="datetime64[ns]")),
                }
            )
        }
    )
    assert fs.events_in_fit(tree) == [{"event": "customs_union", "date": "2011-07-01"}]
    assert fs.events_in_fit(xr.DataTree()) == []


def test_events_are_marked_on_a_time_axis():
    events = fs.policy_events({"customs_union": "2011-07-01"})
    with fs.house_style():
        fig, ax = fs.subplots(height=2.0)
        ax.plot([2010, 2013], [0, 1])
        handle = fs.mark_events(ax, events, years=True, labels=True)
        fs.finish_figure(fig)
    assert handle.get_label() == "policy event"
    assert [line.get_xdata()[0] for line in ax.get_lines()[1:]] == [
        pytest.approx(2011.496, abs=1e-3)
    ]
    assert any("customs union" in t and "2011-07-01" in t for t in _texts(fig))


def _frequency_tree(synthetic: bool) -> xr.DataTree:
    rng = np.random.default_rng(1)
    observed = np.array([15000, 1200, 90, 6, 1])
    draws = rng.poisson(observed * 1.05, size=(2, 50, len(observed)))
    k = np.arange(1, len(observed) + 1)
    tree = xr.DataTree.from_dict(
        {
            "/observed_data": xr.Dataset({"y": ("k", observed)}, coords={"k": k}),
            "/posterior_predictive": xr.Dataset(
                {"y": (("chain", "draw", "k"), draws)}, coords={"k": k}
            ),
        }
    )
    tree.attrs.update(
        observed_name="y",
        data_kind="frequency",
        model_name="tiny",
        data_synthetic="true" if synthetic else "false",
    )
    return tree


@pytest.mark.parametrize("prob", [0.9, 0.8])
def test_the_generic_predictive_figure_is_in_the_house_style(prob):
    from estim.report.checks import ppc_figure

    fig = ppc_figure(_frequency_tree(synthetic=False), prob=prob)
    texts = _texts(fig)
    assert fig.get_size_inches()[0] == pytest.approx(fs.SINGLE_COLUMN)
    assert f"posterior predictive {fs.percent(prob)} interval" in texts
    assert "10,000" in texts  # counts as counts
    assert "individuals caught k times" in texts and "times caught, k" in texts
    assert "SYNTHETIC" not in texts
    _assert_fonts_at_least_min(fig)


def test_the_generic_predictive_figure_of_simulated_data_says_so():
    from estim.report.checks import ppc_figure

    assert "SYNTHETIC" in _texts(ppc_figure(_frequency_tree(synthetic=True)))


def _border_tables(synthetic: bool) -> dict:
    sections = [
        {"section": "west", "surveyed": False, "median": 300.0, "lower": 200.0, "upper": 450.0},
        {"section": "middle", "surveyed": True, "median": 4000.0, "lower": 3800.0, "upper": 4300.0},
        {"section": "east", "surveyed": False, "median": 80.0, "lower": 40.0, "upper": 130.0},
    ]
    years = [
        {"year": y, "median": m, "lower": m - 500, "upper": m + 600}
        for y, m in zip(range(2008, 2014), [15000, 12000, 11000, 9000, 8500, 8000], strict=True)
    ]
    return {
        "interval": {"prob": 0.8, "kind": "equal-tailed"},
        "synthetic": synthetic,
        "sections": sections,
        "whole_border_by_year": years,
        "policy_events": [{"event": "customs_union", "date": "2011-07-01"}],
    }


@pytest.mark.parametrize("synthetic", [True, False])
def test_the_border_figure_marks_surveyed_sections_events_and_the_interval_level(synthetic):
    from estim.families.border.report import border_figure

    fig = border_figure(_border_tables(synthetic))
    texts = _texts(fig)
    assert fig.get_size_inches()[0] == pytest.approx(fs.DOUBLE_COLUMN)
    assert "80 % posterior interval" in texts
    assert "surveyed section (individual records)" in texts
    assert "section inferred through the hierarchy" in texts
    assert "policy event" in texts and any("customs union" in t for t in texts)
    assert "unobserved crossings per year" in texts
    assert "15,000" in texts or "12,500" in texts  # thousands separators on the count axis
    bold = {t.get_text() for t in fs.figure_texts(fig) if t.get_fontweight() == "bold"}
    assert "middle" in bold and "west" not in bold
    assert ("SYNTHETIC" in texts) is synthetic
    _assert_fonts_at_least_min(fig)


def test_the_border_figure_takes_events_from_its_caller():
    from estim.families.border.report import border_figure

    tables = _border_tables(False)
    del tables["policy_events"]
    assert "policy event" not in _texts(border_figure(tables))
    fig = border_figure(tables, events={"joint_checkpoint_control": "2013-07-30"})
    assert any("joint checkpoint" in t for t in _texts(fig))


def _border_tree() -> xr.DataTree:
    rng = np.random.default_rng(2)
    sections, surveyed = ["west", "middle", "east"], ["middle"]
    months = pd.date_range("2009-01-01", periods=36, freq="MS").values
    k = np.arange(1, 7)
    monthly = rng.poisson(200, size=(3, 36))
    freq = np.array([[3000, 400, 60, 9, 2, 1]])
    tree = xr.DataTree.from_dict(
        {
            "/observed_data": xr.Dataset(
                {
                    "monthly_apprehensions": (("section", "month"), monthly),
                    "frequency": (("surveyed_section", "k"), freq),
                },
                coords={"section": sections, "month": months, "surveyed_section": surveyed, "k": k},
            ),
            "/posterior_predictive": xr.Dataset(
                {
                    "monthly_apprehensions": (
                        ("chain", "draw", "section", "month"),
                        rng.poisson(200, size=(1, 40, 3, 36)),
                    ),
                    "frequency": (
                        ("chain", "draw", "surveyed_section", "k"),
                        rng.poisson(freq, size=(1, 40, 1, 6)),
                    ),
                },
                coords={"section": sections, "month": months, "surveyed_section": surveyed, "k": k},
                attrs={"note": "k = 6 collects 6 or more apprehensions"},
            ),
            "/crossings": xr.Dataset(
                coords={
                    "event": ["customs_union"],
                    "event_start": ("event", np.array(["2011-07-01"], dtype="datetime64[ns]")),
                }
            ),
        }
    )
    tree.attrs["data_synthetic"] = "true"
    return tree


def test_the_border_predictive_figure_is_in_the_house_style():
    from estim.families.border.report import ppc_figure

    fig = ppc_figure(_border_tree(), prob=0.8)
    texts = _texts(fig)
    assert fig.get_size_inches()[0] == pytest.approx(fs.DOUBLE_COLUMN)
    assert "80 % posterior predictive interval" in texts
    assert "middle (surveyed)" in texts and "west" in texts
    assert any("customs union" in t for t in texts)  # the events the fit records
    assert "apprehensions\nper month" in texts and "times apprehended, k" in texts
    assert "≥6" in texts and "1,000" in texts
    assert "SYNTHETIC" in texts
    _assert_fonts_at_least_min(fig)
