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
  ``compact_<group>``; for a fit of a user's file, ``data_file`` (absolute path) and ``data_file_sha256``;
  for a fit of a record folder, ``records_folder`` (absolute path) and ``records_sha256``
  (`estim.io.folder_sha256`).

A cached fit is reused only when spec hash, data hash and every version match. Writes are atomic, and every
numeric array carries a Fletcher-32 checksum, so a damaged file is refused rather than read as other draws.
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
    """Write the fit with its provenance and verdict to `path` atomically (no partial file, ever), every
    numeric array with a Fletcher-32 checksum (`checksums`).

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
        idata.to_netcdf(tmp, engine="netcdf4", encoding=checksums(idata))
    return Path(path)


def checksums(tree: xr.DataTree) -> dict[str, dict[str, dict[str, bool]]]:
    """The netCDF encoding that stores every numeric array of `tree` (not scalars or empty ones, which HDF5
    cannot checksum) with a Fletcher-32 checksum: damaged bytes then make the file unreadable (`load`
    refuses it, naming it) instead of other draws read as the fit's (half the draws of N moved by 100 in a
    copy gave a median of 168 for 81, exit 0)."""
    encoding = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        checked = {
            str(name): {"fletcher32": True}
            for name, v in ds.variables.items()
            if v.ndim >= 1 and v.size > 0 and v.dtype.kind in "biufc"
        }
        if checked:
            encoding[node.path] = checked
    return encoding


def check_out(path: str | Path, model_name: str | None = None, *, force: bool = False) -> None:
    """Refuse (`EstimInputError`), before any work, to save a fit at `path` where it cannot be written, or
    over a file that is not a fit estim wrote (a simulator's truth.nc, a forecast, sufficient statistics:
    not estim's to replace); and, given `model_name`, unless `force`, over the fit of another model (a fit
    of hours, lost to a mistyped --out)."""
    from estim.io import unwritable

    path = Path(path)
    why = unwritable(path)
    if why is not None:
        raise EstimInputError(f"{path}: the fit cannot be saved there: {why}")
    if not path.exists():
        return
    attrs: dict[str, Any] = {}
    if path.is_file():
        try:
            with xr.open_datatree(path, engine="netcdf4") as lazy:
                attrs = dict(lazy.attrs)
        except (OSError, ValueError, RuntimeError):
            pass
    if verdict_from_attrs(attrs) is None:
        raise EstimInputError(
            f"{path}: the file exists and is not a fit made by `estim fit`, so a fit is not saved over "
            "it; give another file name (--out), or move the file away"
        )
    other = attrs.get("model_name")
    if model_name is not None and not force and other is not None and str(other) != model_name:
        raise EstimInputError(
            f"{path}: holds the fit of model {str(other)!r}, not of {model_name!r}; give another file "
            "name (--out), or --force to replace it"
        )


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
    if "posterior" not in tree.children:  # every fit estim saves has its draws there
        raise EstimInputError(f"{path}: not a whole fit: it has no posterior group (its draws)")
    return tree


def spec_beside(tree: xr.DataTree, fit_path: str | Path) -> str | None:
    """What a reader of the fit at `fit_path` must be told about the spec file beside it, or None: that the
    file is named after a spec (STEM.toml beside it) of another model (copied or renamed), or that the
    fit's own spec beside it (NAME.toml, where `estim fit` saves NAME.nc) now differs from the spec the fit
    was made of — a prior, an option, a sampler setting or the data it names edited since — so the fit's
    numbers are not that spec's. A fit with no spec beside it (saved with --out) is not checked."""
    from estim.run.spec import read_spec

    fit_path = Path(fit_path)
    name = str(tree.attrs.get("model_name", ""))
    named_after = fit_path.with_suffix(".toml")
    if name and fit_path.stem != name and named_after.is_file():
        return (
            f"{fit_path} holds the fit of model {name!r}, not of the spec {named_after.name} beside it "
            f"(a fit copied or renamed); `estim fit {named_after}` fits that spec"
        )
    spec_path = fit_path.with_name(f"{name}.toml")
    if not name or not spec_path.is_file():
        return None
    try:
        now = read_spec(spec_path).spec_hash
    except EstimInputError as e:
        return (
            f"{spec_path}, the spec of {fit_path}, cannot be read now ({e}): whether it changed since "
            "the fit cannot be told"
        )
    if now == str(tree.attrs.get("spec_hash", "")):
        return None
    return (
        f"{spec_path} has changed since {fit_path} was fitted (a prior, an option, a sampler setting or "
        "the data it names: its spec hash differs): these are the results of the spec as it was then, not "
        f"as it is now; refit with `estim fit {spec_path}`"
    )


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
    except (OSError, ValueError, RuntimeError):
        return None
    expected = provenance_attrs(spec_hash, data_hash, 0, versions)
    expected.pop("seed")  # part of the spec hash already
    if mismatches(attrs, expected) or verdict_from_attrs(attrs) is None:
        return None
    try:
        return load(path)
    except EstimInputError:  # its arrays damaged (their checksums fail): not reused, fitted again
        return None


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
