"""Files that are not what a report command takes are bad input (exit 2) named in the message, not a bug."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.families.border.truth_file import truth_by_year
from estim.paths import SYNTHETIC_DIR
from estim.run import store

SECTIONS = ["omsk", "orenburg"]
MONTHS = pd.date_range("2010-01-01", periods=24, freq="MS")


def _truth(unobserved: xr.DataArray | None = None) -> xr.Dataset:
    if unobserved is None:
        unobserved = xr.DataArray(
            np.ones((2, 24, 3), np.int32),
            dims=("section", "month", "category"),
            coords={"section": SECTIONS, "month": MONTHS, "category": ["a", "b", "c"]},
        )
    return xr.Dataset({"unobserved": unobserved})


def _statistics_like(path):
    """A netCDF that is neither a fit nor a truth file (like `estim data statistics --out` writes)."""
    ds = xr.Dataset({"f": ("k", np.array([5, 3, 1]))}, coords={"k": [1, 2, 3]})
    ds.attrs["period"] = "year"
    ds.to_netcdf(path, engine="netcdf4")
    return path


def _fake_border_fit(path):
    """The least a passed border fit needs for `estim summary --truth` to reach the truth file.

    Not a whole fit (summarising it would fail further on): the truth file is read before that.
    """
    years = [2010, 2011]
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {
            "unobserved_section_year": (
                ("chain", "draw", "section", "year"),
                rng.poisson(50, (1, 20, 2, 2)),
            )
        },
        coords={"chain": [0], "draw": np.arange(20), "section": SECTIONS, "year": years},
    )
    crossings = xr.Dataset(
        {"apprehensions": (("section", "month", "category"), np.ones((2, 24, 1), np.int64))},
        coords={"section": SECTIONS, "month": MONTHS, "category": ["a"]},
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, "crossings": crossings})
    tree.attrs = {
        "family": "border",
        "model_name": "border",
        "gate_passed": "true",
        "gate_checks": "[]",
    }
    tree.to_netcdf(path, engine="netcdf4")
    return path


# ------------------------------------------------------------------------------------ --truth (problem 2)


def test_truth_by_year_reads_the_shipped_truth():
    by_year = truth_by_year(SYNTHETIC_DIR / "truth.nc")
    assert set(by_year.dims) == {"section", "year"}
    assert by_year.sizes["section"] == 12


def test_truth_by_year_sums_months_and_categories(tmp_path):
    path = tmp_path / "truth.nc"
    _truth().to_netcdf(path)
    by_year = truth_by_year(path)
    assert by_year.sel(section="omsk").values.tolist() == [36, 36]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello\n", "not a readable netCDF file"),
        (b"", "not a readable netCDF file"),
        (b"\x89HDF\r\n\x1a\ngarbage", "not a readable netCDF file"),
    ],
)
def test_truth_that_is_not_netcdf_names_the_file(tmp_path, content, says):
    path = tmp_path / "hello.txt"
    path.write_bytes(content)
    with pytest.raises(EstimInputError, match=says) as e:
        truth_by_year(path)
    assert str(e.value).startswith(str(path))
    assert "estim simulate" in str(e.value)


def test_truth_that_is_a_truncated_truth_file_names_it(tmp_path):
    path = tmp_path / "truth.nc"
    path.write_bytes((SYNTHETIC_DIR / "truth.nc").read_bytes()[:5000])
    with pytest.raises(EstimInputError, match="truth.nc") as e:
        truth_by_year(path)
    assert str(path) in str(e.value)


def test_truth_without_unobserved_names_the_file(tmp_path):
    path = _statistics_like(tmp_path / "stats.nc")
    with pytest.raises(EstimInputError, match="not a simulator truth file") as e:
        truth_by_year(path)
    assert str(e.value).startswith(str(path))


def test_truth_with_unobserved_of_other_dimensions_names_the_file(tmp_path):
    path = tmp_path / "other.nc"
    _truth(xr.DataArray(np.ones(3), dims="k", name="unobserved")).to_netcdf(path)
    with pytest.raises(EstimInputError, match="not section × month × category") as e:
        truth_by_year(path)
    assert str(e.value).startswith(str(path))


def test_missing_truth_names_the_file(tmp_path):
    with pytest.raises(EstimInputError, match="no such truth file") as e:
        truth_by_year(tmp_path / "nope.nc")
    assert str(tmp_path / "nope.nc") in str(e.value)


@pytest.mark.parametrize("bad", ["hello.txt", "stats.nc"])
def test_summary_with_a_bad_truth_file_exits_2_naming_it(tmp_path, bad):
    fit = _fake_border_fit(tmp_path / "border.nc")
    truth = tmp_path / bad
    if bad == "stats.nc":
        _statistics_like(truth)
    else:
        truth.write_text("hello\n")
    r = CliRunner().invoke(cli, ["summary", str(fit), "--truth", str(truth)])
    assert r.exit_code == 2, r.output
    assert str(truth) in r.output
    assert "internal error" not in r.output


# ------------------------------------------------------------------------ a netCDF that is not a fit (3)


@pytest.mark.parametrize("command", [["summary"], ["check"], ["compare", "OTHER"]])
@pytest.mark.parametrize("which", ["statistics", "truth"])
def test_a_netcdf_that_is_not_a_fit_exits_2_naming_it(tmp_path, command, which):
    path = (
        _statistics_like(tmp_path / "stats.nc")
        if which == "statistics"
        else SYNTHETIC_DIR / "truth.nc"
    )
    args = [a if a != "OTHER" else str(path) for a in command]
    r = CliRunner().invoke(cli, [args[0], str(path), *args[1:]])
    assert r.exit_code == 2, r.output
    assert f"{path}: not a fit made by `estim fit`" in r.output
    assert "internal error" not in r.output


def test_a_file_that_is_not_netcdf_is_not_a_readable_fit(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_text("hello\n")
    r = CliRunner().invoke(cli, ["summary", str(path)])
    assert r.exit_code == 2, r.output
    assert f"{path}: not a readable fit file" in r.output


def test_load_refuses_a_non_fit_and_verdict_names_the_file_it_was_read_from(tmp_path):
    path = _statistics_like(tmp_path / "stats.nc")
    with pytest.raises(EstimInputError, match="not a fit made by `estim fit`") as e:
        store.load(path)
    assert str(e.value).startswith(str(path))
    tree = xr.load_datatree(
        path, engine="netcdf4"
    )  # read some other way: the message still names it
    with pytest.raises(EstimInputError, match="stats.nc: not a fit made by `estim fit`"):
        store.verdict(tree)


def test_the_truth_of_another_simulation_is_refused(tmp_path):
    # the truth of seed 999 was printed beside the seed-20061 fit, with wrong coverage marks, exit 0
    from estim.families.border.truth_file import refuse_other_truth

    truth = _truth()
    truth["apprehensions"] = xr.full_like(truth["unobserved"], 10)  # 360 a section-year
    path = tmp_path / "truth.nc"
    truth.to_netcdf(path)
    years = sorted(set(MONTHS.year))
    observed = xr.DataArray(
        np.full((2, len(years)), 360),
        dims=("section", "year"),
        coords={"section": SECTIONS, "year": years},
    )
    refuse_other_truth(path, observed)  # its own truth: accepted
    refuse_other_truth(path, observed + 2)  # within 2 apprehensions: rounding, accepted
    other = observed.copy()
    other.loc[{"section": SECTIONS[1], "year": years[1]}] = 300
    with pytest.raises(
        EstimInputError, match=r"differ from the fit's data in 1 of 4 section-years"
    ) as e:
        refuse_other_truth(path, other)
    assert f"{SECTIONS[1]} {years[1]}: 360 in the truth, 300 in the fit's data" in str(e.value)
