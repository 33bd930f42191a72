"""Checking a folder of record files: every table, the folder-level rules, and the typed tables on request."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from estim.records.read import RawTable, read_table
from estim.records.report import ValidationReport, _Batch, _Collector, _single
from estim.records.schemas import SCHEMAS
from estim.records.tables import (
    RECORD_SUFFIXES,
    _check_table,
    _coded,
    _first_occurrences,
    _join,
    _labels,
    _References,
    _row_word,
    _TableResult,
)
from estim.records.typed import _typed_frame

_DOUBLE_COUNT = (
    ("apprehensions", "section_id", "date"),
    ("apprehension_totals", "section_id", "month"),
)
"""Cross-table rule: individual records and monthly totals must not both count a (section, month)."""


# ---------------------------------------------------------------------------------------------- folders


@dataclass
class DatasetCheck:
    """What `check_dataset` found: the report, and the typed tables when asked for and all was valid."""

    report: ValidationReport
    frames: dict[str, pd.DataFrame]


def _record_files(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Record files by type, and .csv/.parquet files whose name is no record type."""
    found: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in RECORD_SUFFIXES:
            continue
        if p.stem in SCHEMAS:
            found.setdefault(p.stem, []).append(p)
        else:
            unknown.append(p)
    return found, unknown


def check_dataset(
    folder: Path,
    display: str,
    *,
    cap: int = 200,
    key: bytes | None = None,
    progress: bool = False,
) -> DatasetCheck:
    """Validate every record file of `folder`; with `key`, also build the typed tables.

    `display` is how the folder is named in messages (the path as the user gave it).
    """
    collector = _Collector(cap)
    found, unknown = _record_files(folder)
    names = ", ".join(f"{n}.csv" for n in SCHEMAS)
    folder_batches = [
        _single(
            _join(display, p.name),
            None,
            None,
            "unknown_file",
            f"{p.stem!r} is not a record type; record files are named {names} (or .parquet)",
        )
        for p in unknown
    ]
    for name, schema in SCHEMAS.items():
        paths = found.get(name, [])
        if len(paths) > 1:
            folder_batches.append(
                _single(
                    _join(display, paths[0].name),
                    None,
                    None,
                    "ambiguous_table",
                    f"both {' and '.join(p.name for p in paths)} exist; keep one",
                )
            )
        if not paths and not schema.optional:
            users = sorted(
                s.name
                for s in SCHEMAS.values()
                if s.name in found
                and any(c.references and c.references.startswith(f"{name}.") for c in s.columns)
            )
            why = (
                f"; without it the {name} ids in {', '.join(users)} cannot be checked"
                if users
                else ""
            )
            folder_batches.append(
                _single(
                    _join(display, f"{name}.csv"),
                    None,
                    None,
                    "missing_table",
                    f"the dataset has no {name} table ({name}.csv or {name}.parquet){why}",
                )
            )
    collector.add(folder_batches)

    refs = _References(folder, display, look_beside=False)
    files, rows = 0, 0
    frames: dict[str, pd.DataFrame] = {}
    recorded: set[str] = set()
    pairs: dict[str, tuple[dict[tuple[str, int], int], RawTable]] = {}
    wanted_pairs = all(t in found for t, _, _ in _DOUBLE_COUNT)
    todo = [(name, p) for name in SCHEMAS for p in found.get(name, [])]
    for name, path in _progress(todo, progress):
        schema = SCHEMAS[name]
        raw = read_table(
            path, _join(display, path.name), list(schema.names), schema.personal, _coded(schema)
        )
        result = _check_table(raw, schema, refs)
        files += 1
        rows += raw.records
        if name not in recorded:  # with two files of one type, the first one serves
            recorded.add(name)
            refs.record(name, raw, result.columns)
        for table, section, when in _DOUBLE_COUNT:
            if wanted_pairs and table == name and name not in pairs:
                pairs[name] = (_section_months(result, section, when), raw)
                if len(pairs) == len(_DOUBLE_COUNT):  # listed with the file they are found in
                    result.batches.extend(_double_count_batches(pairs))
        collector.add(result.batches)
        if key is not None and collector.total == 0 and name not in frames:
            # Only while everything is valid: otherwise loading fails and the tables are not needed.
            frames[name] = _typed_frame(raw, schema, result.columns, key)
        del result, raw
    report = ValidationReport(collector.listed, collector.total, files, rows)
    return DatasetCheck(report, frames)


def _progress(items: list[tuple[str, Path]], show: bool) -> Iterable[tuple[str, Path]]:
    if not show:
        return items
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, pipes, captured output)
    return tqdm(
        items, desc="checking records", unit="file", file=sys.stderr, leave=False, disable=None
    )


def _section_months(result: _TableResult, section: str, when: str) -> dict[tuple[str, int], int]:
    """Distinct (section, month) of a table's valid rows -> index of the first row with it."""
    s, w = result.columns.get(section), result.columns.get(when)
    if s is None or w is None or s.codes is None or s.uniques is None:
        return {}
    if not isinstance(w.typed, np.ndarray):
        return {}
    ok = s.ok & w.ok & ~s.null & ~w.null
    rows = np.flatnonzero(ok)
    months = w.typed[rows].astype("datetime64[M]").astype(np.int64)
    combined = s.codes[rows].astype(np.int64) * (1 << 32) + (months + (1 << 31))
    codes = pd.factorize(combined)[0]
    firsts = np.flatnonzero(_first_occurrences(codes))
    sections = s.uniques.take(pa.array(s.codes[rows[firsts]])).to_pylist()
    return {
        (sec, int(m)): int(r)
        for sec, m, r in zip(sections, months[firsts], rows[firsts], strict=True)
    }


def _double_count_batches(
    pairs: dict[str, tuple[dict[tuple[str, int], int], RawTable]],
) -> list[_Batch]:
    (records_name, _, _), (totals_name, _, _) = _DOUBLE_COUNT
    records, records_raw = pairs[records_name]
    totals, totals_raw = pairs[totals_name]
    both = sorted((totals[p], p) for p in totals.keys() & records.keys())
    if not both:
        return []
    index = np.array([i for i, _ in both], np.int64)
    word = _row_word(records_raw)

    def message(k: int) -> str:
        section, month = both[k][1]
        first = records_raw.row_label(records[(section, month)])
        label = str(np.datetime64(month, "M"))
        return (
            f"section '{section}' in {label} also has individual records in "
            f"{records_raw.file} (first on {word} {first}); counting both would count those "
            "apprehensions twice: keep that month in one table only"
        )

    return [
        _Batch(
            totals_raw.file,
            "double_count",
            "section_id, month",
            _labels(totals_raw, index),
            np.arange(index.size),
            message,
        )
    ]
