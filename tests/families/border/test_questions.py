"""The study's questions (`estim report`) on small posteriors made from known values: each answer is checked
against the value worked out by hand from those draws (shares, peak months, the halving-wait effect, P(θ < 1)),
and the command on the shipped fit when it exists."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.families.border.data import CATEGORIES, HARMONICS, JOURNEY_CATEGORIES
from estim.families.border.questions import (
    format_questions,
    questions_figure,
    questions_json,
    study_questions,
)
from estim.figure_style import MIN_FONT_PT, SYNTHETIC_GID, figure_texts

ROOT = Path(__file__).resolve().parents[3]
SECTIONS = ["west", "omsk", "orenburg", "east"]
LENGTHS = pd.DataFrame({"section_id": SECTIONS, "length_km": [100.0, 200.0, 300.0, 400.0]})
YEARS = [2010, 2011]
EVENTS = ["agreement", "union"]
N = 101  # draws: the median is one of them


def _tree(
    cells: np.ndarray,
    *,
    synthetic: bool = True,
    sections: list[str] = SECTIONS,
    **posterior: np.ndarray,
) -> xr.DataTree:
    """A border fit of one chain of N draws with unobserved crossings `cells` (draw, section, year,
    category), 10 apprehensions in every section × month × category, and the parameters given (defaults:
    η0 = −8, η1 = 1, no season, no policy effect)."""
    months = pd.date_range(f"{YEARS[0]}-01-01", periods=12 * len(YEARS), freq="MS")
    u = xr.DataArray(
        cells[None].astype(np.int64),
        dims=("chain", "draw", "section", "year", "category"),
        coords={"section": sections, "year": YEARS, "category": list(CATEGORIES)},
    )
    params = {
        "bypass_eta0": np.full(N, -8.0),
        "bypass_eta1": np.full(N, 1.0),
        "season": np.zeros((N, len(JOURNEY_CATEGORIES), len(HARMONICS))),
        "log_policy_effect": np.zeros((N, len(EVENTS), len(JOURNEY_CATEGORIES))),
        **posterior,
    }
    dims = {
        "bypass_eta0": (),
        "bypass_eta1": (),
        "season": ("journey_category", "harmonic"),
        "log_policy_effect": ("event", "journey_category"),
    }
    post = xr.Dataset(
        {
            "unobserved_section_year": u.sum("category"),
            "unobserved_border_year": u.sum(["section", "category"]),
            "unobserved_category_year": u.sum("section").transpose(
                "chain", "draw", "year", "category"
            ),
            **{k: (("chain", "draw", *dims[k]), v[None]) for k, v in params.items()},
        },
        coords={
            "journey_category": list(JOURNEY_CATEGORIES),
            "harmonic": list(HARMONICS),
            "event": EVENTS,
        },
    )
    crossings = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), np.full((4, len(months), 5), 10))},
        coords={
            "section": sections,
            "month": months,
            "category": list(CATEGORIES),
            "year": ("month", months.year),
            "event": EVENTS,
            "event_start": ("event", pd.to_datetime(["2010-07-01", "2011-01-01"])),
        },
    )
    observed = xr.Dataset(coords={"surveyed_section": ["orenburg", "omsk"]})
    attrs = {"family": "border", "data_synthetic": "true" if synthetic else "false"}
    attrs.update(gate_passed="true", gate_checks="[]")
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=attrs),
            "posterior": post,
            "crossings": crossings,
            "observed_data": observed,
        }
    )


def _cells(per_section: list[int], vary: bool = False) -> np.ndarray:
    """(draw, section, year, category): a section's crossings split evenly over the five categories; with
    `vary`, Omsk's border residents rise by one per draw."""
    c = np.zeros((N, 4, 2, 5), dtype=np.int64)
    c[:] = np.array(per_section)[None, :, None, None]
    if vary:
        c[:, 1, :, 0] += np.arange(N)[:, None]
    return c


def _questions(cells: np.ndarray, **kw) -> dict[str, pd.DataFrame]:
    wait = kw.pop("wait_minutes", None)
    return study_questions(_tree(cells, **kw), sections=LENGTHS, wait_minutes=wait)


def test_routes_omsk_orenburg_share_by_hand():
    # 100, 200, 300, 400 a category: Omsk + Orenburg hold (200 + 300)/1,000 of the crossings on 500 of 1,000 km
    q = _questions(_cells([100, 200, 300, 400]))
    study = q["study_sections"].set_index(["period", "group"])
    row = study.loc[("2010–2011", "Omsk + Orenburg")]
    assert row["share_median"] == pytest.approx(0.5)
    assert row["length_share"] == pytest.approx(0.5)
    assert row["per_100km_median"] == pytest.approx(5 * 500 / 5)  # 2,500 a year on 500 km
    assert study.loc[("2011", "other 2 sections"), "per_100km_median"] == pytest.approx(2500 / 5)
    routes = q["routes"].set_index(["period", "section"])
    assert routes.loc[("2010", "west"), "per_100km_median"] == pytest.approx(500.0)  # 500 on 100 km
    assert routes.loc[("2010", "east"), "share_median"] == pytest.approx(0.4)  # 2,000 of 5,000
    assert routes.loc[("2010", "omsk"), "surveyed"] and not routes.loc[("2010", "west"), "surveyed"]
    assert routes.loc[("2010", "omsk"), "apprehensions"] == 10 * 12 * 5


def test_routes_share_interval_is_the_quantiles_of_the_draws():
    cells = _cells([100, 200, 300, 400], vary=True)
    q = _questions(cells)
    # by hand: per draw, (Omsk + Orenburg) ÷ border, over both years
    study = (1000 + 2000 + 2 * np.arange(N) + 3000 - 1000) / (2 * 5000 + 2 * np.arange(N))
    assert np.allclose(study, cells[:, 1:3].sum((1, 2, 3)) / cells.sum((1, 2, 3)))
    row = q["study_sections"].set_index(["period", "group"]).loc[("2010–2011", "Omsk + Orenburg")]
    assert [row[f"share_{k}"] for k in ("lower", "median", "upper")] == pytest.approx(
        np.quantile(study, [0.05, 0.5, 0.95])
    )
    narrow = study_questions(_tree(cells), prob=0.5, sections=LENGTHS)["study_sections"]
    assert narrow["share_lower"].iloc[0] == pytest.approx(np.quantile(study, 0.25))


def test_scale_attempts_and_share():
    cells = _cells([100, 200, 300, 400], vary=True)
    scale = _questions(cells)["scale"].set_index("period")
    apprehended = 10 * 12 * 5 * 4  # a year: 10 in each of 12 months × 5 categories × 4 sections
    assert scale.loc["2010", "apprehensions"] == apprehended
    unobserved = cells[:, :, 0].sum((1, 2))
    assert scale.loc["2010", "unobserved_median"] == np.median(unobserved)
    assert scale.loc["2010", "attempts_upper"] == pytest.approx(
        np.quantile(unobserved, 0.95) + apprehended
    )
    share = unobserved / (unobserved + apprehended)
    assert scale.loc["2010", "unobserved_share_median"] == pytest.approx(np.median(share))
    assert scale.loc["2010–2011", "unobserved_median"] == np.median(cells.sum((1, 2, 3)) / 2)


def test_character_shares_by_category():
    cells = _cells([100, 200, 300, 400])
    cells[:, :, :, 4] = 0  # no bypassers; residents twice the others
    cells[:, :, :, 0] *= 2
    char = _questions(cells)["character"].set_index(["period", "category"])
    assert char.loc[("2010", "border_resident"), "share_median"] == pytest.approx(2 / 5)
    assert char.loc[("2010–2011", "smuggler"), "share_median"] == pytest.approx(1 / 5)
    assert char.loc[("2011", "bypasser"), "unobserved_upper"] == 0
    shares = char.loc["2010", "share_mean"]
    assert shares.sum() == pytest.approx(1.0)


def test_season_peak_month_of_known_harmonics():
    # S(m) = Σ coefficients × (cos 2πm/12, sin 2πm/12, cos 4πm/12, sin 4πm/12)
    season = np.zeros((N, 4, 4))
    season[:, 0, 0] = 1.0  # cos: peak December (m = 12), trough June
    season[:, 1, 1] = 1.0  # sin: peak March, trough September
    season[:, 2, 0] = -0.5  # −cos/2: peak June, trough December, ratio e
    season[:, 3, 1] = np.linspace(
        -1.0, -0.2, N
    )  # −sin: peak September; ratio e^(2a), a from 0.2 to 1
    table = _questions(_cells([1, 1, 1, 1]), season=season)["season"].set_index("category")
    assert list(table["peak_month"]) == ["Dec", "Mar", "Jun", "Sep"]
    assert list(table["trough_month"]) == ["Jun", "Sep", "Dec", "Mar"]
    assert (table["peak_probability"] == 1).all()
    assert table.loc["border_resident", "peak_trough_ratio_median"] == pytest.approx(math.e**2)
    assert table.loc["transit_migrant", "peak_trough_ratio_median"] == pytest.approx(math.e)
    assert table.loc["smuggler", "peak_trough_ratio_median"] == pytest.approx(math.exp(2 * 0.6))


def test_bypass_halving_wait_from_known_eta1():
    eta1 = np.full(N, 1.0)
    q = _questions(_cells([1, 1, 1, 1]), bypass_eta1=eta1, wait_minutes=90.0)
    b = q["bypass"].set_index("quantity")
    assert b.loc["odds_ratio_halved", "value_median"] == pytest.approx(0.5)
    now = 1 / (1 + math.exp(8 - math.log(90 / 60)))  # expit(−8 + log 1.5)
    halved = 1 / (1 + math.exp(8 - math.log(45 / 60)))
    assert b.loc["share_now", "value_median"] == pytest.approx(1e4 * now)
    assert b.loc["share_change", "value_median"] == pytest.approx(1e4 * (halved - now))
    assert b.loc["share_change_relative", "value_median"] == pytest.approx(halved / now - 1)
    assert halved / now - 1 == pytest.approx(
        -0.5, abs=1e-3
    )  # a rare event: the share halves with the odds
    # η1 = 2: the odds fall to a quarter
    two = _questions(_cells([1, 1, 1, 1]), bypass_eta1=2 * eta1)["bypass"].set_index("quantity")
    assert two.loc["odds_ratio_halved", "value_median"] == pytest.approx(0.25)
    assert "share_now" not in two.index  # no wait at hand (no record folder): no shares


def test_policy_effects_and_probability_of_reduction():
    log_theta = np.zeros((N, 2, 4))
    log_theta[:, 0, 0] = np.linspace(-1.0, 0.5, N)  # agreement on residents
    log_theta[:, 1, 3] = np.log(0.75)  # union on smugglers: −25 % for sure
    policy = _questions(_cells([1, 1, 1, 1]), log_policy_effect=log_theta)["policy"]
    policy = policy.set_index(["event", "category"])
    row = policy.loc[("agreement", "border_resident")]
    assert row["p_reduction"] == pytest.approx(np.mean(np.linspace(-1.0, 0.5, N) < 0))
    assert row["multiplier_median"] == pytest.approx(math.exp(-0.25))
    assert row["start_date"] == "2010-07-01"
    assert policy.loc[("union", "smuggler"), "change_median"] == pytest.approx(-0.25)
    assert policy.loc[("union", "smuggler"), "p_reduction"] == 1.0
    assert policy.loc[("union", "border_resident"), "p_reduction"] == 0.0


def test_text_json_and_figure():
    q = _questions(_cells([1000, 2000, 3000, 4000], vary=True), wait_minutes=60.0)
    text = format_questions(q)
    assert "SYNTHETIC data" in text.splitlines()[0]
    assert "90 % posterior interval" in text
    assert "15,000 (15,000 – 15,000)" in text  # Orenburg: 3,000 in each of 5 categories
    for part in ("SCALE", "CHARACTER", "ROUTES", "CAUSES", "Omsk + Orenburg"):
        assert part in text
    payload = json.loads(questions_json(q))
    assert payload["synthetic"] is True and payload["prob"] == 0.9
    rows = payload["tables"]["study_sections"]["rows"]
    assert rows[0]["group"] == "Omsk + Orenburg"
    assert "share_median" in payload["tables"]["study_sections"]["columns"]
    plain = study_questions(_tree(_cells([1, 1, 1, 1]), synthetic=False), sections=LENGTHS)
    assert "SYNTHETIC" not in format_questions(plain)
    fig = questions_figure(q)
    assert len([ax for ax in fig.axes if ax.get_title(loc="left")]) == 4
    assert any(t.get_gid() == SYNTHETIC_GID for t in fig.texts)
    assert min(t.get_fontsize() for t in figure_texts(fig)) >= MIN_FONT_PT
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_report_on_a_small_fit(tmp_path):
    path = tmp_path / "border.nc"
    # sections of the shipped records, whose folder the spec names: lengths and waits are read from there
    tree = _tree(_cells([100, 200, 300, 400]), sections=["astrakhan", "omsk", "orenburg", "samara"])
    tree.attrs["spec_json"] = json.dumps({"data": {"records": str(ROOT / "data" / "synthetic")}})
    tree.to_netcdf(path, engine="netcdf4")
    figure = tmp_path / "q.png"
    r = CliRunner().invoke(cli, ["report", str(path), "--figure", str(figure)])
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC data" in r.output and figure.is_file()
    assert "bypass share at the mean wait" in r.output  # the mean wait read from the records
    assert "Omsk + Orenburg are 80.0 % of the border's length (3,080 km)" in r.output  # of 3,850 km
    r = CliRunner().invoke(cli, ["report", str(path), "--format", "json", "--prob", "0.8"])
    assert r.exit_code == 0 and json.loads(r.output)["prob"] == 0.8


def test_cli_report_refuses_what_is_not_a_border_fit(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("not a fit\n")
    r = CliRunner().invoke(cli, ["report", str(text)])
    assert r.exit_code == 2 and "not a readable fit file" in r.output
    other = tmp_path / "m0.nc"
    tree = xr.DataTree.from_dict(
        {"posterior": xr.Dataset({"N": (("chain", "draw"), np.ones((1, 5)))})}
    )
    tree.attrs.update(family="closed_M0", gate_passed="true", gate_checks="[]")
    tree.to_netcdf(other, engine="netcdf4")
    r = CliRunner().invoke(cli, ["report", str(other)])
    assert r.exit_code == 2 and "closed_M0" in r.output and "border" in r.output
    r = CliRunner().invoke(cli, ["report", str(tmp_path / "absent.nc")])
    assert r.exit_code == 2


FIT = ROOT / "models" / "border.nc"


@pytest.mark.skipif(not FIT.is_file(), reason="no saved border fit (estim fit models/border.toml)")
def test_cli_report_on_the_shipped_fit():
    r = CliRunner().invoke(cli, ["report", str(FIT)])
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC data" in r.output
    r = CliRunner().invoke(cli, ["report", str(FIT), "--format", "json"])
    assert r.exit_code == 0
    payload = json.loads(r.output)
    assert payload["synthetic"] is True and len(payload["tables"]["scale"]["rows"]) >= 2
