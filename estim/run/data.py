"""A spec's data: the family's sufficient statistics, from a shipped benchmark or a record folder, and their
hash (part of a saved fit's provenance)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import DataFieldError, Family
from estim.run.spec import ModelSpec


def family_of(spec: ModelSpec) -> Family:
    """The registered family a spec names."""
    from estim.families.registry import load_all

    families = load_all()
    if spec.family not in families:
        raise EstimInputError(f"{spec.path or spec.name}: family: unknown family {spec.family!r}")
    return families[spec.family]


def records_folder(spec: ModelSpec) -> Path:
    """The spec's record folder: absolute, or relative to the spec's folder, its parent or the repository."""
    from estim.paths import REPO_ROOT

    assert spec.data.records is not None
    folder = Path(spec.data.records)
    if not folder.is_absolute():
        bases = [spec.path.parent, spec.path.parent.parent] if spec.path else [Path.cwd()]
        candidates = [b / folder for b in [*bases, REPO_ROOT]]
        folder = next((c for c in candidates if c.is_dir()), candidates[0])
    if not folder.is_dir():
        raise EstimInputError(f"{spec.path or spec.name}: [data] records: no folder {folder}")
    return folder


def data_source(spec: ModelSpec) -> tuple[str, bool]:
    """What the spec's data are, in words, and whether they are SYNTHETIC: a record folder that holds the
    simulator's ground truth (``truth.nc``) was made by `estim simulate`; a benchmark is published data."""
    if spec.data.benchmark is not None:
        return f"benchmark {spec.data.benchmark} (published data, data/benchmarks/)", False
    folder = records_folder(spec)
    synthetic = (folder / "truth.nc").is_file()
    try:
        shown = folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = folder
    kind = "SYNTHETIC records made by the simulator" if synthetic else "records"
    return f"{kind} in {shown}", synthetic


def load_data(spec: ModelSpec) -> xr.Dataset:
    """The sufficient statistics the spec's family takes.

    A benchmark table goes through the family's ``DataKind.from_benchmark``; records are validated,
    pseudonymised and handed to ``DataKind.from_records`` (which cuts them to the spec's section, period or
    category as the family needs). A `DataFieldError` from the family is reported against the spec's file.
    """
    family = family_of(spec)
    kind = family.data
    where = spec.path or spec.name
    d = spec.data
    try:
        if d.records is not None:
            if kind.from_records is None:
                raise EstimInputError(
                    f"{where}: [data] records: family {family.name!r} cannot be fitted to records"
                )
            from estim.paths import SYNTHETIC_DIR
            from estim.records import DEFAULT_KEY, load_records

            folder = records_folder(spec)
            # the public default key is what the shipped synthetic records are meant for
            key = DEFAULT_KEY if folder.resolve() == SYNTHETIC_DIR.resolve() else None
            return kind.from_records(load_records(folder, key=key), d.fields)
        if kind.from_benchmark is None:
            raise EstimInputError(
                f"{where}: [data] benchmark: family {family.name!r} takes {kind.name} data, which a "
                "benchmark table cannot give"
            )
        from estim.benchmarks import load_benchmark

        assert d.benchmark is not None
        return kind.from_benchmark(load_benchmark(d.benchmark), d.fields)
    except DataFieldError as e:
        raise EstimInputError(f"{where}: {e}") from e


def data_hash(data: xr.Dataset) -> str:
    """SHA-256 over the dataset's variables, coordinates (names, dims, dtypes, values) and attributes.

    Computed from the values rather than from netCDF bytes, which can differ for equal data.
    """
    h = hashlib.sha256()
    for kind, mapping in (("coord", data.coords), ("var", data.data_vars)):
        for name in sorted(map(str, mapping)):
            da = mapping[name]
            values = np.asarray(da.values)
            h.update(f"{kind}:{name}:{da.dims}:{values.dtype.str}:{values.shape};".encode())
            if values.dtype.kind in "OUS":
                h.update(json.dumps(values.astype(str).tolist()).encode())
            else:
                h.update(np.ascontiguousarray(values).tobytes())
    h.update(json.dumps(data.attrs, sort_keys=True, default=str).encode())
    return h.hexdigest()


def fit_data(tree: xr.DataTree, fit_path: str | Path) -> xr.Dataset:
    """The data a saved fit was fitted to, re-read from the source its spec names and checked against the fit's
    data hash: a forecast or report from a fit must not silently use data that changed since."""
    import dataclasses

    from estim.run.spec import parse_spec

    fit_path = Path(fit_path)
    try:
        raw = json.loads(str(tree.attrs["spec_json"]))
    except (KeyError, ValueError) as e:
        raise EstimInputError(f"{fit_path}: the fit does not record its spec (spec_json)") from e
    # the parsed spec as plain data writes absent fields as None; a spec file would omit them
    raw = _without_none(raw)
    spec = parse_spec(raw, source=fit_path)
    # relative record folders resolve as they did for the spec, which lived beside the fit
    spec = dataclasses.replace(spec, path=fit_path.with_name(f"{spec.name}.toml"))
    data = load_data(spec)
    expected = str(tree.attrs.get("data_hash", ""))
    if expected and data_hash(data) != expected:
        raise EstimInputError(
            f"{fit_path}: the data its spec names ({data_source(spec)[0]}) changed since the fit "
            "(their hash differs from the fit's data_hash); refit first"
        )
    return data


def _without_none(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
