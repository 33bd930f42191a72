"""Saved forecasts: one netCDF file with every draw and its provenance — the fit it came from (a hash of the
fit's spec and data), the measures' specs (a hash of their files), the seed, the settings and the versions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from estim.errors import EstimInputError
from estim.io import atomic_path
from estim.run.store import library_versions

PROVENANCE = ("fit_hash", "measures_hash", "seed", "start", "horizon", "settings_json")


def fit_hash(attrs: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex) of a saved fit's spec hash and data hash: which fit a forecast is of."""
    spec, data = str(attrs.get("spec_hash", "")), str(attrs.get("data_hash", ""))
    if not spec or not data:
        raise EstimInputError("the fit records no spec or data hash: not a fit estim wrote")
    return hashlib.sha256(f"{spec}:{data}".encode()).hexdigest()[:16]


def check_out(out: str | Path, fit: str | Path, *, force: bool = False) -> None:
    """Refuse, before any work, an ``--out`` that is the fit itself (the forecast would replace the fit it
    came from), or an existing file that is not a forecast estim wrote unless ``force``: a saved forecast is
    replaced like a previous simulation's files, anything else only on request."""
    out, fit = Path(out), Path(fit)
    if not out.exists():
        return
    if fit.exists() and out.resolve() == fit.resolve():
        raise EstimInputError(
            f"--out {out}: that is the fit the forecast reads (FIT); the forecast would replace it. Give "
            "another file name"
        )
    if force:
        return
    try:
        with xr.open_dataset(out) as existing:
            ours = "measures_hash" in existing.attrs and "unobserved" in existing
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise EstimInputError(
            f"--out {out}: the file exists and is not a forecast estim wrote; give a new file name, or "
            "--force to replace it"
        )


def save_forecast(fc: xr.Dataset, path: str | Path) -> Path:
    """Write the forecast atomically, compressed, with its provenance and the library versions."""
    missing = [k for k in PROVENANCE if k not in fc.attrs]
    if missing:
        raise EstimInputError(f"a forecast without provenance ({', '.join(missing)}) is not saved")
    out = fc.copy()
    out.attrs.update({f"version_{k}": v for k, v in library_versions().items()})
    encoding = {v: {"zlib": True, "complevel": 4} for v in out.data_vars}
    path = Path(path)
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, encoding=encoding)
    return path


def load_forecast(path: str | Path, *, expect: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A saved forecast; with ``expect`` (e.g. ``{"fit_hash": …, "measures_hash": …}``) refuse one whose
    provenance differs."""
    path = Path(path)
    try:
        fc = xr.load_dataset(path)
    except (OSError, ValueError) as e:
        raise EstimInputError(f"{path}: not a forecast netCDF file") from e
    if "measures_hash" not in fc.attrs or "unobserved" not in fc:
        raise EstimInputError(f"{path}: not a forecast estim wrote (no provenance)")
    for key, value in (expect or {}).items():
        if str(fc.attrs.get(key)) != str(value):
            raise EstimInputError(
                f"{path}: a forecast of another {key.removesuffix('_hash')} ({fc.attrs.get(key)} != {value})"
            )
    return fc
