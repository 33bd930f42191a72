"""Saved fits: ArviZ groups in one netCDF file with provenance and the gate verdict in the root attributes.

A fit file (``models/NAME.nc``) holds the groups posterior (with N and unobserved), posterior_predictive,
log_likelihood, sample_stats, observed_data, prior, prior_predictive, and root attributes:

* provenance — ``spec_hash``, ``data_hash``, ``seed``, ``version_<library>`` for estim, pymc, pytensor, arviz,
  nutpie, numpy, xarray and python, ``created`` (UTC), plus ``model_name``, ``family``, ``data_kind``,
  ``observed_name`` and ``spec_json`` (the parsed spec, so the file says what it is a fit of);
* the gate — ``gate_passed`` ("true"/"false"), ``gate_failed_checks`` (comma-separated names), ``gate_checks``
  (JSON of every check with its value and threshold) — of the last attempt, and ``attempts_json``: every run
  of the sampler (settings, verdict, seconds) when a failed gate was retried, ``sampler_json`` the settings
  of the saved one;
* what a compact fit left out or summed (`estim.run.compact`): ``log_likelihood_omitted``,
  ``compact_<group>``; for a fit of a user's file, ``data_file`` (absolute path) and ``data_file_sha256``.

A cached fit is reused only when spec hash, data hash and every version match. Writes are atomic.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from estim.errors import EstimInputError, GateFailed
from estim.io import atomic_path
from estim.run.diagnostics import GateVerdict, verdict_from_attrs

if TYPE_CHECKING:
    from estim.run.spec import ModelSpec

VERSIONED = ("estim", "pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray")


def library_versions() -> dict[str, str]:
    """Versions that decide a fit's numbers: estim and the libraries it samples with, and Python."""
    versions = {}
    for package in VERSIONED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    versions["python"] = platform.python_version()
    # The package version does not move with every code change (editable installs): the source does.
    versions["estim_source"] = estim_source_hash()
    return versions


# The stages above `run` (docs/architecture.md): they read fits and never change one, so editing them (the
# paper, a report, the CLI) must not invalidate every cached fit.
READERS_OF_FITS = ("studies", "measures", "report", "paper", "cli")


def estim_source_hash() -> str:
    """SHA-256 (16 hex) over the Python sources of the estim stages a fit depends on (the package's top-level
    modules, records, statistics, simulate, families and run): a change there invalidates cached fits."""
    root = Path(__file__).resolve().parents[1]  # the estim package, not only run/
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if len(relative.parts) > 1 and relative.parts[0] in READERS_OF_FITS:
            continue
        h.update(relative.as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def provenance_attrs(
    spec_hash: str, data_hash: str, seed: int, versions: Mapping[str, str] | None = None
) -> dict[str, str | int]:
    """The provenance attributes a fit must carry to be reused from the cache."""
    versions = library_versions() if versions is None else versions
    attrs: dict[str, str | int] = {
        "spec_hash": spec_hash,
        "data_hash": data_hash,
        "seed": int(seed),
    }
    attrs.update({f"version_{k}": str(v) for k, v in versions.items()})
    return attrs


def save(
    idata: xr.DataTree,
    path: str | Path,
    provenance: Mapping[str, Any],
    verdict: GateVerdict,
) -> Path:
    """Write the fit with its provenance and verdict to `path` atomically (no partial file, ever).

    The attributes are set on `idata` itself too, so the tree in memory says what the file says.
    """
    attrs = dict(idata.attrs)
    attrs.update({k: v for k, v in provenance.items()})
    attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    attrs["gate_passed"] = "true" if verdict.passed else "false"
    attrs["gate_failed_checks"] = ",".join(verdict.failed)
    attrs["gate_checks"] = verdict.to_json()
    idata.attrs = attrs
    with atomic_path(path) as tmp:
        idata.to_netcdf(tmp, engine="netcdf4")
    return Path(path)


def load(path: str | Path) -> xr.DataTree:
    """A saved fit, read fully into memory (the file is closed, so it can be replaced afterwards)."""
    path = Path(path)
    if not path.is_file():
        raise EstimInputError(f"{path}: no such fit file")
    try:
        tree = xr.load_datatree(path, engine="netcdf4")
    except (OSError, ValueError, RuntimeError) as e:  # netCDF4 raises these for what it cannot read
        raise EstimInputError(f"{path}: not a readable fit file ({e})") from e
    if verdict_from_attrs(tree.attrs) is None:
        raise EstimInputError(_not_a_fit(path))
    return tree


def _not_a_fit(where: object) -> str:
    return (
        f"{where}: not a fit made by `estim fit` (it carries no diagnostics-gate verdict); "
        "give the file `estim fit` wrote (by default NAME.nc beside the spec)"
    )


def verdict(tree: xr.DataTree, where: str = "") -> GateVerdict:
    """The gate verdict stored in a fit; a file without one is not a fit made by `estim fit`.

    `where` names the file in the message; by default the file the tree was read from.
    """
    v = verdict_from_attrs(tree.attrs)
    if v is None:
        raise EstimInputError(_not_a_fit(where or tree.encoding.get("source") or "fit"))
    return v


def load_result(path: str | Path) -> xr.DataTree:
    """A saved fit that passed the gate; `GateFailed` if it did not. Use this for anything downstream."""
    tree = load(path)
    v = verdict(tree, str(path))
    if not v.passed:
        raise GateFailed(v, str(path))
    return tree


def mismatches(attrs: Mapping[str, Any], expected: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, stored, expected) for every provenance field that differs or is missing."""
    out = []
    for key, want in expected.items():
        have = attrs.get(key)
        if have is None or str(have) != str(want):
            out.append((key, have, want))
    return out


def cached(
    path: str | Path, spec_hash: str, data_hash: str, versions: Mapping[str, str] | None = None
) -> xr.DataTree | None:
    """The saved fit at `path` if its provenance matches exactly (spec, data, versions); else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:  # read the attributes only; load the draws only for a match
        with xr.open_datatree(path, engine="netcdf4") as lazy:
            attrs = dict(lazy.attrs)
    except (OSError, ValueError):
        return None
    expected = provenance_attrs(spec_hash, data_hash, 0, versions)
    expected.pop("seed")  # part of the spec hash already
    if mismatches(attrs, expected) or verdict_from_attrs(attrs) is None:
        return None
    return load(path)


def load_for(
    spec: ModelSpec, path: str | Path | None = None, data_hash: str | None = None
) -> xr.DataTree:
    """The saved fit of `spec`; `EstimInputError` naming each provenance field that differs.

    Refuses a file made from another spec, other data or other library versions, so a fit is never read as
    the result of a model it is not. `data_hash` is computed from the spec's data when not given.
    """
    path = Path(path) if path is not None else spec.default_output()
    tree = load(path)
    if data_hash is None:
        from estim.run.data import data_hash as _data_hash
        from estim.run.data import load_data

        data_hash = _data_hash(load_data(spec))
    expected = provenance_attrs(spec.spec_hash, data_hash, spec.seed)
    bad = mismatches(tree.attrs, expected)
    if bad:
        fields = "; ".join(f"{k}: file has {have!r}, spec needs {want!r}" for k, have, want in bad)
        raise EstimInputError(
            f"{path} is not a fit of {spec.path or spec.name} ({fields}); refit with `estim fit`"
        )
    return tree
