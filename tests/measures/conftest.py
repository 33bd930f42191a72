"""The shipped synthetic border data, and a 'posterior' made of the simulator's true parameters written in the
border model's parameterisation: forecasts from it have a known reference (the simulator's own law)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.families.border.data import JOURNEY_CATEGORIES
from estim.families.border.data_kind import BORDER_RECORDS
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records


@pytest.fixture(scope="session")
def shipped_data():
    """The border model's data as a spec reads them (with the register linkage)."""
    return BORDER_RECORDS.from_records(load_records(SYNTHETIC_DIR, key=DEFAULT_KEY), {})


def true_parameters(truth: xr.Dataset, data: xr.Dataset) -> dict[str, np.ndarray]:
    """The simulator's parameters (truth.nc) as the border model's: section effects centred (their mean moves
    into the category levels), seasonal harmonics (a, m) as cos/sin coefficients, detector hazards relative to
    patrol (patrol's moves into the section hazards), category hazards centred."""
    sections = data["section"].values
    alpha = truth["section_effect"].sel(section=sections).values
    beta = truth["category_effect"].sel(category=list(JOURNEY_CATEGORIES)).values
    trend = truth["trend"].sel(category=list(JOURNEY_CATEGORIES)).values
    # S_c(m) on the months of the year, projected on the model's harmonics by least squares
    from estim.families.border.data import harmonics

    season_table = truth["seasonal_effect"].sel(category=list(JOURNEY_CATEGORIES))
    season_table = season_table.transpose("category", "month_of_year").values  # (category, 12)
    design = harmonics(np.arange(1, 13))  # (12, harmonic)
    season = np.linalg.lstsq(design, season_table.T, rcond=None)[0].T  # (category, harmonic)
    theta = truth["policy_effect_journeys"].sel(category=list(JOURNEY_CATEGORIES))
    theta = theta.transpose("event", "category").values
    phi = truth["dispersion"].values
    hazard_section = truth["hazard_section"].sel(section=sections).values
    hazard_category = truth["hazard_category"].values
    detector = truth["hazard_detector"].values  # patrol, technical, informant
    return {
        "section_effect": alpha - alpha.mean(),
        "category_level": beta + alpha.mean(),
        "season": season,
        "trend": trend,
        "log_policy_effect": np.log(theta),
        "population_elasticity": np.asarray(float(truth["population_elasticity"])),
        "overdispersion": 1.0 / np.sqrt(phi),
        "bypass_eta0": np.asarray(float(truth["bypass_eta0"])),
        "bypass_eta1": np.asarray(float(truth["bypass_eta1"])),
        "hazard_section": hazard_section + detector[0] + hazard_category.mean(),
        "hazard_category": hazard_category - hazard_category.mean(),
        "hazard_detector": detector[1:] - detector[0],
        "technical_trend": np.asarray(float(truth["technical_trend"])),
    }


DIMS = {
    "section_effect": ("section",),
    "category_level": ("journey_category",),
    "season": ("journey_category", "harmonic"),
    "trend": ("journey_category",),
    "log_policy_effect": ("event", "journey_category"),
    "population_elasticity": (),
    "overdispersion": ("category",),
    "bypass_eta0": (),
    "bypass_eta1": (),
    "hazard_section": ("section",),
    "hazard_category": ("category",),
    "hazard_detector": ("other_detector",),
    "technical_trend": (),
}


def posterior_of(
    parameters: dict[str, np.ndarray], draws: int, coords: dict | None = None
) -> xr.Dataset:
    """A posterior (chain 1, ``draws`` draws) repeating the given parameter values."""
    return xr.Dataset(
        {
            name: (("chain", "draw", *DIMS[name]), np.broadcast_to(value, (1, draws, *value.shape)))
            for name, value in parameters.items()
        },
        coords=coords,
    )


@pytest.fixture(scope="session")
def true_posterior(shipped_data):
    truth = xr.load_dataset(SYNTHETIC_DIR / "truth.nc")
    from estim.families.border.data import CATEGORIES, DETECTORS, HARMONICS

    coords = {
        "section": shipped_data["section"].values,
        "journey_category": list(JOURNEY_CATEGORIES),
        "category": list(CATEGORIES),
        "harmonic": list(HARMONICS),
        "event": shipped_data["event"].values,
        "other_detector": list(DETECTORS[1:]),
    }
    return posterior_of(true_parameters(truth, shipped_data), 40, coords)


def saved_fit(path, posterior, data, *, passed=True, data_hash_value=None):
    """A saved border fit of the shipped spec and data with ``posterior`` as its draws (the gate ``passed`` or
    not; another ``data_hash_value`` stands for data changed since the fit), as `estim fit` writes one."""
    from estim.paths import REPO_ROOT
    from estim.run.data import data_hash
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "posterior": posterior})
    tree.attrs.update(
        {
            "family": "border",
            "model_name": "border",
            "spec_json": spec.canonical_json(),
            "spec_hash": spec.spec_hash,
            "data_hash": data_hash_value or data_hash(data),
            "seed": 11,
            "data_synthetic": "true",
            "gate_passed": "true" if passed else "false",
            "gate_failed_checks": "" if passed else "r_hat",
            "gate_checks": "[]",
        }
    )
    tree.to_netcdf(path)
    return path


@pytest.fixture
def write_fit():
    """`saved_fit`, for a test that writes its own fit files (a failed one, one of changed data)."""
    return saved_fit


@pytest.fixture(scope="module")
def fit_path(tmp_path_factory, shipped_data, true_posterior):
    """A small saved fit (the true parameters as its draws), one a test module: a test may try to overwrite it."""
    return saved_fit(tmp_path_factory.mktemp("fit") / "border.nc", true_posterior, shipped_data)
