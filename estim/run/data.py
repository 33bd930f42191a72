"""A spec's data: the family's sufficient statistics, from a shipped benchmark, a record folder, a user's own
CSV or Parquet file or a table given from Python, and their hash (part of a saved fit's provenance).

A file is read by `estim.run.table_read.read_table` (UTF-8 CSV or Parquet, a header line naming the columns)
and handed to the family's ``DataKind.from_benchmark`` exactly as a benchmark table is; whatever the family
finds wrong in it is reported with the file's path in front. `table_data` does the same for a pandas DataFrame from Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import DataChanged, EstimInputError
from estim.families.base import DataFieldError, DataKind, Family
from estim.io import folder_sha256, sha256
from estim.run.spec import TABLE_SOURCE, ModelSpec
from estim.run.table_checks import (
    refuse_ambiguous_counts,
    refuse_repeated_names,
    refuse_totals_row,
)
from estim.run.table_read import field_columns, read_table


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


def data_file(spec: ModelSpec) -> Path:
    """The spec's data file: absolute, or relative to the spec's folder (the current folder for a spec not
    read from a file). `EstimInputError` naming the spec and the path when there is no such file."""
    assert spec.data.file is not None
    path = Path(spec.data.file).expanduser()
    if not path.is_absolute():
        path = (spec.path.parent if spec.path is not None else Path.cwd()) / path
    if not path.is_file():
        why = "is a folder, not a file" if path.is_dir() else "no such file"
        raise EstimInputError(f"{spec.path or spec.name}: [data] file: {path}: {why}")
    return path


def _shown(path: Path) -> Path:
    """`path` relative to the current folder when it lies below it (shorter in messages), else as is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def data_source(spec: ModelSpec) -> tuple[str, bool]:
    """What the spec's data are, in words, and whether they are SYNTHETIC: a record folder that holds the
    simulator's ground truth (``truth.nc``) was made by `estim simulate`; a benchmark is published data; a
    user's own file or table is taken as real data (estim cannot tell otherwise)."""
    if spec.data.benchmark is not None:
        return f"benchmark {spec.data.benchmark} (published data, data/benchmarks/)", False
    if spec.data.file is not None:
        return f"file {_shown(data_file(spec))}", False
    if spec.data.table is not None:
        return f"{spec.data.table}, given from Python (not kept: it cannot be re-read)", False
    folder = records_folder(spec)
    synthetic = (folder / "truth.nc").is_file()
    shown = _shown(folder)
    kind = "SYNTHETIC records made by the simulator" if synthetic else "records"
    return f"{kind} in {shown}", synthetic


def load_data(spec: ModelSpec, table: pd.DataFrame | None = None) -> xr.Dataset:
    """The sufficient statistics the spec's family takes.

    A benchmark table, a file (`read_table`) or an in-memory `table` (a spec made by
    `estim.run.fit.fit_table`) goes through the family's ``DataKind.from_benchmark``; records are validated,
    pseudonymised and handed to ``DataKind.from_records`` (which cuts them to the spec's section, period or
    category as the family needs). A `DataFieldError` from the family is reported against the spec's file;
    any input error about a data file names the file.
    """
    family = family_of(spec)
    kind = family.data
    where = spec.path or spec.name
    d = spec.data
    if d.file is not None:
        path = data_file(spec)
        return from_table(
            kind,
            read_table(path, field_columns(d.fields)),
            d.fields,
            where=_shown(path),
            family=family.name,
        )
    if d.table is not None:
        if table is None:
            raise EstimInputError(
                f"{where}: the data were {d.table}, given from Python and not kept with the fit, so they "
                "cannot be re-read; save the table as a CSV or Parquet file and fit it with [data] file"
            )
        return from_table(kind, table, d.fields, where="table", family=family.name)
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
        # a benchmark read as an f_k table is its shipped frequency table
        frequencies = d.fields.get("layout") == "frequencies"
        return kind.from_benchmark(load_benchmark(d.benchmark, frequencies=frequencies), d.fields)
    except DataFieldError as e:
        raise EstimInputError(f"{where}: {e}") from e


def from_table(
    kind: DataKind, table: pd.DataFrame, fields: Mapping[str, Any], *, where: object, family: str
) -> xr.Dataset:
    """A table (one row per individual, per capture pattern or per frequency cell, as the ``layout`` field
    says) to the family's sufficient statistics through ``DataKind.from_benchmark``; any `EstimInputError`
    the family raises (its messages name column and row) is re-raised with `where` (the file) in front."""
    if kind.from_benchmark is None:
        raise EstimInputError(
            f"{where}: family {family!r} takes {kind.name} data, which a table cannot give"
        )
    refuse_repeated_names(table, where)
    refuse_totals_row(table, where)
    refuse_ambiguous_counts(table, fields, where)
    try:
        return kind.from_benchmark(table, fields)
    except EstimInputError as e:
        raise EstimInputError(f"{where}: {e}") from e


# --------------------------------------------------------------------------------------------------------------
# reading a user's table


def table_data(table: pd.DataFrame | str | Path, family: str, **fields: Any) -> xr.Dataset:
    """The sufficient statistics of `family` from a table — a pandas DataFrame or the path of a CSV or
    Parquet file — with the family's ``[data]`` fields given as keywords (``layout="individuals"``,
    ``times_seen="capture"``, ``covariates=["sex", "weight"]``, …), checked exactly as in a spec.

    The Python equivalent of a spec's ``[data] file = …``; `EstimInputError` names the field, or the file,
    column and row, of anything wrong.
    """
    from estim.families.registry import load_all
    from estim.run.spec import _parse_data

    families = load_all()
    if family not in families:
        raise EstimInputError(
            f"table_data: unknown family {family!r}; known: {', '.join(sorted(families))}"
        )
    kind = families[family].data
    raw = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    for source in ("benchmark", "records", "file", TABLE_SOURCE):
        if source in raw:
            raise EstimInputError(
                f"table_data: {source}: not a field here; the table is the source"
            )
    if not isinstance(table, pd.DataFrame | str | Path):
        raise EstimInputError(
            f"table_data: expected a DataFrame or a file's path, got {type(table).__name__}"
        )
    path = None if isinstance(table, pd.DataFrame) else Path(table)
    raw["file" if path is not None else TABLE_SOURCE] = str(path) if path else "a DataFrame"

    def fail(where: str, message: str) -> EstimInputError:
        return EstimInputError(f"table_data({family!r}): {where}: {message}")

    spec = _parse_data(raw, fail, kind, allow_table=True)
    if path is not None:
        return from_table(
            kind,
            read_table(path, field_columns(spec.fields)),
            spec.fields,
            where=path,
            family=family,
        )
    assert isinstance(table, pd.DataFrame)
    return from_table(kind, table, spec.fields, where="table", family=family)


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


_CHANGED = "changed since the fit"


def _fit_data_field(tree: xr.DataTree, fit_path: Path, name: str) -> Any:
    """A field of a saved fit's spec's ``[data]`` (``records``, ``file``); None when it has none."""
    try:
        return json.loads(str(tree.attrs.get("spec_json") or "{}")).get("data", {}).get(name)
    except (ValueError, AttributeError) as e:
        raise EstimInputError(f"{fit_path}: the fit's spec (spec_json) is not readable") from e


def fit_records_folder(tree: xr.DataTree, fit_path: str | Path) -> Path | None:
    """The record folder a saved fit's spec names, resolved as it was for the spec (which lived beside the
    fit), and, when the fit records its data hash (every fit estim saves does), checked by `fit_data` to hold
    the records it was fitted to; None for a fit of a table. Raises `EstimInputError` when the records
    changed since the fit, or are not there."""
    fit_path = Path(fit_path)
    records = _fit_data_field(tree, fit_path, "records")
    if not records:
        return None
    if tree.attrs.get("data_hash"):
        fit_data(tree, fit_path)
    folder = Path(records)
    if not folder.is_absolute():
        from estim.paths import REPO_ROOT

        bases = [fit_path.parent, fit_path.parent.parent, REPO_ROOT]
        folder = next((b / folder for b in bases if (b / folder).is_dir()), folder)
    if not folder.is_dir():
        raise EstimInputError(f"{fit_path}: the fit's record folder {records} is not there")
    return folder


def fit_data_file(tree: xr.DataTree, fit_path: str | Path) -> Path | None:
    """The data file (CSV or Parquet) or record folder a saved fit's spec names, resolved as it was for the
    spec (a record folder no longer there: where it was at the fit, ``records_folder``), and checked to hold
    the data the fit was made from; None for a fit of anything else (a benchmark, a table from Python). The
    same bytes as at the fit (``data_file_sha256``; ``records_sha256``, `folder_sha256`) pass at once; other
    bytes are re-read and checked by `fit_data` against the fit's data hash, so data saved again unchanged
    (rows reordered, say) pass and other data are refused (`DataChanged`). Data no longer there are warned
    of, not refused: the fit itself is still what it was. A fit made before records were hashed (no
    ``records_sha256``) has its records re-read and checked every time."""
    fit_path = Path(fit_path)
    records = bool(_fit_data_field(tree, fit_path, "records"))
    if not (records or _fit_data_field(tree, fit_path, "file")):
        return None
    spec = _fit_spec(tree, fit_path)
    path: Path | None
    if records:
        what, expected, digest = "record folder", "records_sha256", folder_sha256
        named = Path(str(spec.data.records))
        at_fit = str(tree.attrs.get("records_folder", ""))
        try:
            path = records_folder(spec)
        except EstimInputError:
            path = None
        # a fit saved away from its spec (--out): the folder where it was at the fit
        if path is None and at_fit and Path(at_fit).is_dir():
            spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, records=at_fit))
            path = Path(at_fit)
    else:
        what, expected, digest = "data file", "data_file_sha256", sha256
        named = Path(str(spec.data.file)).expanduser()
        if not named.is_absolute():
            named = spec.path.parent / named  # type: ignore[union-attr] - _fit_spec sets it
        path = named if named.is_file() else None
    if path is None:
        warnings.warn(
            f"{fit_path}: its {what} {named} is not there: whether the data changed since the fit "
            "cannot be checked",
            stacklevel=2,
        )
        return None
    if digest(path) == str(tree.attrs.get(expected, "")):
        return path
    try:
        fit_data(tree, fit_path, spec)
    except DataChanged:  # fit_data's own refusal says so already
        raise
    except EstimInputError as e:
        raise DataChanged(
            f"{fit_path}: its {what} {_shown(path)} {_CHANGED} and cannot be read as it was: "
            f"{e}; refit first"
        ) from e
    return path


def fit_data(tree: xr.DataTree, fit_path: str | Path, spec: ModelSpec | None = None) -> xr.Dataset:
    """The data a saved fit was fitted to, re-read from the source its spec names (or ``spec``'s) and checked
    against the fit's data hash: a forecast or report from a fit must not silently use data that changed
    since."""
    fit_path = Path(fit_path)
    spec = spec if spec is not None else _fit_spec(tree, fit_path)
    try:  # said of the fit, not of the spec file _fit_spec names (a fit need not have one beside it)
        if spec.data.records is not None:
            records_folder(spec)
        if spec.data.file is not None:
            data_file(spec)
    except EstimInputError as e:
        where = str(e).split(": [data] ", 1)[-1]
        raise EstimInputError(
            f"{fit_path}: the data it was fitted to are not there ([data] {where}; a relative path is "
            "looked for beside the fit, as beside its spec): they cannot be re-read and checked against the "
            "fit; put them back, or refit"
        ) from e
    data = load_data(spec)
    expected = str(tree.attrs.get("data_hash", ""))
    if expected and data_hash(data) != expected:
        raise DataChanged(
            f"{fit_path}: the data its spec names ({data_source(spec)[0]}) {_CHANGED} "
            "(their hash differs from the fit's data_hash); refit first"
        )
    return data


def _fit_spec(tree: xr.DataTree, fit_path: Path) -> ModelSpec:
    """A saved fit's spec, its relative record folder or file resolving as they did for the spec."""
    from estim.run.spec import parse_spec, without_defaults

    try:
        raw = json.loads(str(tree.attrs["spec_json"]))
    except (KeyError, ValueError) as e:
        raise EstimInputError(f"{fit_path}: the fit does not record its spec (spec_json)") from e
    # the parsed spec as plain data writes absent fields as None and every default out; a spec file omits them
    # (and a written records-only field of a table, or a NUTS setting of an exact family, is refused)
    raw = _without_none(raw)
    raw = without_defaults(raw) if isinstance(raw, dict) else raw
    data_spec = raw.get("data", {}) if isinstance(raw, dict) else {}
    if TABLE_SOURCE in data_spec:
        raise EstimInputError(
            f"{fit_path}: fitted to {data_spec[TABLE_SOURCE]} given from Python, which a fit does not "
            "keep: its data cannot be re-read; fit the table from a CSV or Parquet file ([data] file, "
            "or estim.run.fit.fit_table with the file's path) to have them"
        )
    spec = parse_spec(raw, source=fit_path)
    # relative record folders and files resolve as they did for the spec, which lived beside the fit …
    spec = dataclasses.replace(spec, path=fit_path.with_name(f"{spec.name}.toml"))
    recorded = tree.attrs.get("data_file")
    if spec.data.file is not None and recorded and not Path(spec.data.file).is_absolute():
        beside = fit_path.parent / Path(spec.data.file).expanduser()
        if not beside.is_file() and Path(str(recorded)).is_file():
            # … or, for a fit saved elsewhere (--out), where the file was when it was fitted
            spec = dataclasses.replace(
                spec, data=dataclasses.replace(spec.data, file=str(recorded))
            )
    return spec


def _without_none(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
