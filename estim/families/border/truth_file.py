"""The simulator's truth file (``truth.nc``) beside a border fit: its true unobserved crossings per section ×
year, and the check that it is the truth of the records the fit was made from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from estim.errors import EstimInputError


def truth_by_year(truth_path: str | Path) -> xr.DataArray:
    """The simulator's true unobserved crossings per section × year (``truth.nc``).

    `EstimInputError` naming the file when it is missing, not readable as netCDF, or not a simulator truth
    file (no ``unobserved`` counts by section, month and category).
    """
    path = Path(truth_path)
    what = "expected the simulator's truth.nc, written by `estim simulate`"
    if not path.is_file():
        raise EstimInputError(f"{path}: no such truth file ({what})")
    try:
        with xr.open_dataset(path, engine="netcdf4") as t:
            if "unobserved" not in t:
                raise EstimInputError(
                    f"{path}: no variable 'unobserved': not a simulator truth file ({what})"
                )
            u = t["unobserved"].load()
    except (OSError, ValueError, RuntimeError) as e:  # netCDF4 raises these for what it cannot read
        raise EstimInputError(f"{path}: not a readable netCDF file ({e}); {what}") from e
    if set(u.dims) != {"section", "month", "category"} or not np.issubdtype(
        u["month"].dtype, np.datetime64
    ):
        raise EstimInputError(
            f"{path}: 'unobserved' has dimensions {tuple(u.dims)}, not section × month × category "
            f"(months as dates): not a simulator truth file ({what})"
        )
    years = u["month"].dt.year.values
    return u.assign_coords(year=("month", years)).groupby("year").sum().sum("category")


TRUTH_APPREHENSIONS_TOLERANCE = 0.01
"""A truth file whose true apprehensions differ from the fit's observed ones by more than this share in some
section-year (and by more than 2) is another simulation's: the records are the truth's apprehensions."""


def refuse_other_truth(truth_path: str | Path, observed_sy: xr.DataArray) -> None:
    """`EstimInputError` when the truth file's apprehensions per section × year are not the fit's observed
    ones (`observed_sy`): the truth of another simulation (another seed or config) would be printed beside
    the fit as if it were its own, and the coverage marks would be wrong."""
    with xr.open_dataset(truth_path, engine="netcdf4") as t:
        if "apprehensions" not in t or "month" not in t["apprehensions"].dims:
            return  # an older truth file without them: nothing to compare
        app = t["apprehensions"].load()
    true_sy = app.assign_coords(year=("month", app["month"].dt.year.values)).groupby("year").sum()
    if "category" in true_sy.dims:
        true_sy = true_sy.sum("category")
    try:
        true_sy = true_sy.sel(section=observed_sy["section"], year=observed_sy["year"])
    except KeyError:
        return  # the coverage check above names what is missing
    gap = abs(true_sy - observed_sy)
    bad = (gap > 2) & (gap > TRUTH_APPREHENSIONS_TOLERANCE * observed_sy)
    if bool(bad.any()):
        where = np.argwhere(bad.transpose("section", "year").values)[0]
        section = str(observed_sy["section"].values[where[0]])
        year = int(observed_sy["year"].values[where[1]])
        raise EstimInputError(
            f"{truth_path}: its true apprehensions differ from the fit's data in {int(bad.sum())} of "
            f"{bad.size} section-years (e.g. {section} {year}: {int(true_sy.sel(section=section, year=year))} "
            f"in the truth, {int(observed_sy.sel(section=section, year=year))} in the fit's data): the "
            "truth of another simulation, not of the records this fit was made from"
        )
