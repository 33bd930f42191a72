"""Checking a folder of record files: every table, the folder-level rules, and the typed tables on request."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.records.cells import _Checked
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


def _record_files(folder: Path) -> tuple[dict[str, list[Path]], list[Path], dict[str, list[Path]]]:
    """Record files by type, .csv/.parquet files whose name is no record type, and files in another format
    named after a record type (``apprehension_totals.xlsx``, ``registers.csv.gz``), by type."""
    found: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    other_format: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() not in RECORD_SUFFIXES:
            base = p.name.split(".", 1)[0].lower()
            if base in SCHEMAS:
                other_format.setdefault(base, []).append(p)
            continue
        if p.stem in SCHEMAS:
            found.setdefault(p.stem, []).append(p)
        else:
            unknown.append(p)
    return found, unknown, other_format


def _other_format_batches(
    display: str, found: dict[str, list[Path]], other_format: dict[str, list[Path]]
) -> list[_Batch]:
    """A table kept only in a format estim does not read would be left out without a word: an optional
    one (monthly totals, registers) would then count as absent, and its sections as having no data."""
    return [
        _single(
            _join(display, p.name),
            None,
            None,
            "unread_file",
            f"this looks like the {name} table, but estim reads record files only as .csv or "
            f".parquet and there is no {name}.csv or {name}.parquet: save it as {name}.csv (UTF-8, "
            "comma-separated) or move it out of the folder",
        )
        for name, paths in other_format.items()
        if name not in found
        for p in paths
    ]


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
    found, unknown, other_format = _record_files(folder)
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
    folder_batches.extend(_other_format_batches(display, found, other_format))
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
    person_keys: dict[str, _Keys] = {}
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
        for column in schema.personal:
            if name not in person_keys and column in result.columns:
                person_keys[name] = _distinct_keys(raw, result.columns[column], column)
        collector.add(result.batches)
        if key is not None and collector.total == 0 and name not in frames:
            # Only while everything is valid: otherwise loading fails and the tables are not needed.
            frames[name] = _typed_frame(raw, schema, result.columns, key)
        del result, raw
    collector.add(_key_case_batches(list(person_keys.values())))
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


# ------------------------------------------------------------------------------------------ person keys


@dataclass
class _Keys:
    """The distinct valid person keys of one file, with the row each first appears on."""

    file: str
    column: str
    values: pa.Array
    rows: np.ndarray
    word: str


def _distinct_keys(raw: RawTable, checked: _Checked, column: str) -> _Keys:
    if checked.uniques is None or checked.codes is None or checked.unique_ok is None:
        return _Keys(raw.file, column, pa.array([], pa.string()), np.zeros(0, np.int64), "line")
    rows = np.flatnonzero(checked.codes >= 0)
    codes = checked.codes[rows]
    if checked.ordered:  # codes numbered in order of first appearance: one pass
        first = np.flatnonzero(_first_occurrences(codes))
        present = codes[first]
    else:
        present, first = np.unique(codes, return_index=True)
    first = rows[first]
    keep = checked.unique_ok[present]
    return _Keys(
        raw.file,
        column,
        checked.uniques.take(pa.array(present[keep])),
        _labels(raw, first[keep]),
        _row_word(raw),
    )


def _key_case_batches(tables: list[_Keys]) -> list[_Batch]:
    """Person keys that differ only in letter case (``PK12ab`` and ``pk12AB``), within a file or between
    the apprehensions and the registers: read as two people, they would split one person's apprehensions
    (fewer repeats, a lower re-apprehension rate) and break the link to the registers, biasing every
    estimate without a sign. Refused, naming both rows (never the keys: personal data)."""
    if not tables or sum(len(t.values) for t in tables) == 0:
        return []
    every = pa.chunked_array([t.values for t in tables], pa.string())
    if len(pc.unique(pc.utf8_lower(every))) == len(pc.unique(every)):
        return []  # the usual case, found by two hash passes in Arrow
    frame = pd.DataFrame(
        {
            "key": np.concatenate([t.values.to_numpy(zero_copy_only=False) for t in tables]),
            "table": np.repeat(np.arange(len(tables)), [len(t.values) for t in tables]),
            "row": np.concatenate([t.rows for t in tables]),
        }
    )
    lowered = pc.utf8_lower(pa.array(frame["key"], pa.string())).to_numpy(zero_copy_only=False)
    frame["folded"] = lowered
    # the same key in two files is one person: fine
    frame = frame.sort_values(["table", "row"], kind="stable").drop_duplicates("key")
    repeat = frame.duplicated("folded")  # another spelling of a key seen before
    if not repeat.any():
        return []
    first = frame[~repeat].set_index("folded")
    later = frame[repeat]
    out = []
    for t, part in later.groupby("table", sort=True):
        keys = tables[int(t)]
        firsts = first.loc[part["folded"].to_numpy()]
        where = [
            f"{tables[int(ft)].word} {int(fr)}"
            + ("" if int(ft) == int(t) else f" of {tables[int(ft)].file}")
            for ft, fr in zip(firsts["table"], firsts["row"], strict=True)
        ]
        out.append(
            _Batch(
                keys.file,
                "key_case",
                keys.column,
                part["row"].to_numpy(np.int64),
                np.arange(len(part)),
                lambda k, where=where: (
                    f"the person key (not shown: personal data) is the one on {where[k]} in other "
                    "letter case; keys are compared exactly, so these would be two people: write one "
                    "person's key the same way everywhere"
                ),
            )
        )
    return out
