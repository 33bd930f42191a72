"""Every rule of a schema on one file: header, cells, references to other tables, unique keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.records.cells import (
    _CYRILLIC_HINT,
    _check_column,
    _Checked,
    _clip,
    _latin,
    _message,
    _spelled,
)
from estim.records.parse import _OK, _RULE_NAMES, _UNKNOWN, _to_numpy
from estim.records.read import RawTable, read_table
from estim.records.report import _Batch, _plural, _single
from estim.records.schemas import SCHEMAS, Column, Schema

RECORD_SUFFIXES = (".csv", ".parquet")

_FALLBACK_TABLES = {"sections": "SECTIONS_CSV"}
"""A referenced table absent from the folder is looked up here (attribute of `estim.paths`)."""

_CHECKPOINT_MONTHS = ("checkpoint_records", "checkpoint_id", "month")
"""Table, id and month column of the rule ``checkpoint_gap``: a checkpoint's months run without a gap."""


# ------------------------------------------------------------------------------------------ references


class _References:
    """Valid values of referenced columns (``table.column``), from this dataset or a fallback file."""

    def __init__(self, folder: Path, display: str, *, look_beside: bool) -> None:
        self.folder = folder
        self.display = display
        self.look_beside = look_beside
        """Single-file mode: read a referenced table from the file's folder."""
        self.known: dict[str, tuple[pa.Array, str] | None] = {}

    @staticmethod
    def targets(table: str) -> set[str]:
        """Columns of `table` that some schema refers to."""
        return {
            c.references.split(".", 1)[1]
            for s in SCHEMAS.values()
            for c in s.columns
            if c.references and c.references.split(".", 1)[0] == table
        }

    def record(self, table: str, raw: RawTable, columns: dict[str, _Checked]) -> None:
        # A table that could not be read whole would make every id it lost look unknown: skip it.
        whole = raw.readable and not raw.issues and not raw.bad_field_rows.size and raw.n_rows > 0
        for name in self.targets(table):
            checked = columns.get(name)
            if not whole or checked is None or checked.uniques is None or checked.unique_ok is None:
                self.known[f"{table}.{name}"] = None
            else:
                valid = checked.uniques.filter(pa.array(checked.unique_ok))
                self.known[f"{table}.{name}"] = (valid, raw.file)

    def get(self, target: str) -> tuple[pa.Array, str] | None:
        if target not in self.known:
            self.known[target] = self._look_up(target)
        return self.known[target]

    def _look_up(self, target: str) -> tuple[pa.Array, str] | None:
        table, column = target.split(".", 1)
        candidates: list[tuple[Path, str]] = []
        if self.look_beside:
            for suffix in RECORD_SUFFIXES:
                candidates.append(
                    (self.folder / f"{table}{suffix}", _join(self.display, table + suffix))
                )
        if table in _FALLBACK_TABLES:
            from estim import paths

            fallback = Path(getattr(paths, _FALLBACK_TABLES[table]))
            candidates.append((fallback, str(fallback)))
        for path, shown in candidates:
            if path.is_file():
                raw = read_table(path, shown, [column])
                if column not in raw.columns:
                    return None
                col = SCHEMAS[table].column(column)
                checked = _check_column(raw.columns[column], col, _today())
                self.record(table, raw, {column: checked})
                return self.known.get(target)
        return None


def _coded(schema: Schema) -> tuple[str, ...]:
    """Columns with few distinct values by nature: read dictionary-encoded."""
    return tuple(c.name for c in schema.columns if c.kind in ("choice", "code"))


def _join(folder: str, name: str) -> str:
    return str(Path(folder) / name)


def _today() -> np.datetime64:
    return np.datetime64(dt.date.today(), "D").astype("datetime64[s]")


# ----------------------------------------------------------------------------------------------- tables


@dataclass
class _TableResult:
    name: str
    raw: RawTable
    columns: dict[str, _Checked]
    batches: list[_Batch]


def _labels(raw: RawTable, index: np.ndarray) -> np.ndarray:
    return raw.rows[index] if raw.rows is not None else index + 1


def _row_word(raw: RawTable) -> str:
    return "line" if raw.fmt == "csv" else "row"


def _check_table(raw: RawTable, schema: Schema, refs: _References) -> _TableResult:
    """Every rule of `schema` on one file."""
    file = raw.file
    batches = [_single(file, i.row, i.column, i.rule, i.message) for i in raw.issues]
    result = _TableResult(schema.name, raw, {}, batches)
    if not raw.readable:
        return result
    batches.extend(_header_batches(raw, schema))
    if raw.bad_field_rows.size:
        width, counts = len(raw.header), raw.bad_field_counts
        batches.append(
            _Batch(
                file,
                "field_count",
                None,
                raw.bad_field_rows,
                np.arange(raw.bad_field_rows.size),
                lambda k: (
                    f"the line has {_plural(int(counts[k]), 'field')}; the header has {width}"
                ),
            )
        )
    if raw.records == 0 and not schema.may_be_empty:
        batches.append(_single(file, None, None, "no_rows", "the file has a header but no rows"))
    today = _today()
    for col in schema.columns:
        if col.name not in raw.columns:
            continue
        checked = _check_column(raw.columns[col.name], col, today)
        result.columns[col.name] = checked
        if checked.column_issue is not None:
            batches.append(_single(file, raw.header_row, col.name, "type", checked.column_issue))
            continue
        batches.extend(_cell_batches(raw, col, checked, personal=col.name in schema.personal))
        if col.references:
            batches.extend(_reference_batches(raw, col, checked, refs))
    for key_columns in schema.unique:
        batches.extend(_duplicate_batches(raw, key_columns, result.columns))
    if schema.name == _CHECKPOINT_MONTHS[0]:
        batches.extend(_checkpoint_gap_batches(raw, result.columns))
    return result


def _header_batches(raw: RawTable, schema: Schema) -> Iterable[_Batch]:
    row = raw.header_row
    first: dict[str, int] = {}
    for i, name in enumerate(raw.header):
        if name in first:
            yield _single(
                raw.file,
                row,
                name,
                "duplicate_column",
                f"the column name appears again (columns {first[name] + 1} and {i + 1}); "
                "only the first is read",
            )
            continue
        first[name] = i
        if name not in schema.names:
            hint = ""
            near = [c for c in schema.names if c == _spelled(name)]
            latin = [c for c in schema.names if c == _spelled(_latin(name))]
            if near:
                hint = f" (did you mean '{near[0]}'? names are lower case without spaces)"
            elif latin:
                hint = f" (did you mean '{latin[0]}'? {_CYRILLIC_HINT})"
            elif name == "":
                hint = " (an empty header cell: a trailing comma?)"
            yield _single(
                raw.file,
                row,
                name,
                "unexpected_column",
                f"{schema.name} has no column {name!r}{hint}; its columns are: "
                + ", ".join(schema.names),
            )
    for c in schema.columns:
        if c.required and c.name not in first:
            yield _single(
                raw.file, row, c.name, "missing_column", f"the column is missing ({c.description})"
            )


def _cell_batches(raw: RawTable, col: Column, checked: _Checked, *, personal: bool) -> list[_Batch]:
    rules = checked.rules
    if not rules.any():
        return []
    out = []
    for rule in np.unique(rules[rules != _OK]):
        index = np.flatnonzero(rules == rule)
        out.append(
            _Batch(
                raw.file,
                _RULE_NAMES[rule],
                col.name,
                _labels(raw, index),
                index,
                lambda i, r=int(rule): _message(r, col, checked.text(i), personal),
            )
        )
    return out


def _reference_batches(
    raw: RawTable, col: Column, checked: _Checked, refs: _References
) -> list[_Batch]:
    assert col.references is not None
    target = refs.get(col.references)
    if target is None or checked.uniques is None or checked.codes is None:
        return []  # no referenced table to check against (a folder without it is reported apart)
    valid, source = target
    unknown_u = ~_to_numpy(pc.is_in(checked.uniques, value_set=valid)).astype(bool)
    unknown_u &= _to_numpy(pc.not_equal(checked.uniques, "*")).astype(bool)  # "*": the whole border
    bad = checked.ok & ~checked.null & np.append(unknown_u, False)[checked.codes]
    if not bad.any():
        return []
    index = np.flatnonzero(bad)
    checked.rules[index] = _UNKNOWN  # no longer a valid cell: keeps it out of key checks
    ref_table, ref_column = col.references.split(".", 1)
    known: set[str] = set()

    def message(i: int) -> str:
        text = checked.text(i)
        if not known:
            known.update(valid.to_pylist())
        hint = f" (did you mean {_latin(text)!r}? {_CYRILLIC_HINT})" * (_latin(text) in known)
        return f"{_clip(text)!r} is not a {ref_column} in {source}{hint}"

    return [_Batch(raw.file, "unknown", col.name, _labels(raw, index), index, message)]


def _first_occurrences(codes: np.ndarray) -> np.ndarray:
    """For codes numbered in order of first appearance: whether each row is the first of its code."""
    if codes.size == 0:
        return np.zeros(0, bool)
    before = np.maximum.accumulate(codes)
    return np.concatenate(([True], codes[1:] > before[:-1]))


def _duplicate_batches(
    raw: RawTable, key_columns: tuple[str, ...], columns: dict[str, _Checked]
) -> list[_Batch]:
    if any(c not in columns or columns[c].column_issue for c in key_columns):
        return []
    checked = [columns[c] for c in key_columns]
    valid = np.logical_and.reduce([c.ok & ~c.null for c in checked])
    rows = np.flatnonzero(valid)
    if len(checked) == 1 and valid.all() and checked[0].ordered:
        codes = checked[0].codes  # already numbered in order of appearance
    else:
        combined = checked[0].factorised()[rows].astype(np.int64)
        for c in checked[1:]:
            part = c.factorised()[rows]
            combined = combined * (int(part.max(initial=0)) + 1) + part
            combined = pd.factorize(combined)[0].astype(np.int64)
        codes = pd.factorize(combined)[0] if combined.size else combined
    is_first = _first_occurrences(codes)
    if is_first.all():
        return []
    dup = np.flatnonzero(~is_first)
    first_rows = rows[np.flatnonzero(is_first)[codes[dup]]]
    dup_rows = rows[dup]
    first_labels = _labels(raw, first_rows)
    word = _row_word(raw)

    def message(k: int) -> str:
        i = int(dup_rows[k])
        values = ", ".join(repr(_clip(c.text(i))) for c in checked)
        names = ", ".join(key_columns)
        return f"{names} = {values} repeats {word} {int(first_labels[k])}; it must be unique"

    return [
        _Batch(
            raw.file,
            "duplicate",
            ", ".join(key_columns),
            _labels(raw, dup_rows),
            np.arange(dup.size),
            message,
        )
    ]


def _checkpoint_gap_batches(raw: RawTable, columns: dict[str, _Checked]) -> list[_Batch]:
    """Months missing between a checkpoint's first and last record (rule ``checkpoint_gap``), one violation
    per run of missing months, on the row of the month before it (the first such row, in file order).

    A missing month would be read as a month without crossings at that checkpoint: its section's legal
    foreign crossings too low, a quieter month to the border model, without a word. Whether the checkpoint
    was closed or did not report the records cannot say, so they are refused. A checkpoint whose records
    start later or end earlier than the others' (opened or closed) is fine. Rows whose checkpoint or month
    is itself invalid are left out (reported under their own rules)."""
    _, id_column, month_column = _CHECKPOINT_MONTHS
    ids, months = columns.get(id_column), columns.get(month_column)
    if ids is None or months is None or ids.codes is None or ids.uniques is None:
        return []
    if not isinstance(months.typed, np.ndarray):
        return []
    rows = np.flatnonzero(ids.ok & months.ok & ~ids.null & ~months.null)
    if rows.size < 2:
        return []
    month = months.typed[rows].astype("datetime64[M]").astype(np.int64)
    earliest = int(month.min())
    span = int(month.max()) - earliest + 1
    key = ids.codes[rows].astype(np.int64) * span + (month - earliest)
    order = np.argsort(key, kind="stable")  # by checkpoint, then month; repeats keep file order
    key = key[order]
    after = np.flatnonzero((np.diff(key) > 1) & (key[1:] // span == key[:-1] // span)) + 1
    if after.size == 0:
        return []
    # the month before each gap, on its first row (a repeated month is rule duplicate)
    before = np.searchsorted(key, key[after - 1], "left")
    index = rows[order[before]]
    last = month[order[before]]
    next_ = month[order[after]]
    checkpoint = ids.uniques.take(pa.array(ids.codes[index]))

    def message(k: int) -> str:
        def label(m: int) -> str:
            return str(np.datetime64(int(m), "M"))

        a, b = int(last[k]), int(next_[k])
        n = b - a - 1
        missing = label(a + 1) if n == 1 else f"{label(a + 1)} … {label(b - 1)} ({n} months)"
        return (
            f"checkpoint {_clip(checkpoint[k].as_py())!r} has no record for {missing} between its "
            f"records of {label(a)} and {label(b)}; a missing month would be read as a month without "
            "crossings at that checkpoint: if the checkpoint was closed, write the month with 0 "
            "crossings, refusals and invalid documents and a mean_wait_minutes of 0 (the column may "
            "not be empty); if it did not report, the records cannot be used as they are"
        )

    return [
        _Batch(
            raw.file,
            "checkpoint_gap",
            month_column,
            _labels(raw, index),
            np.arange(index.size),
            message,
        )
    ]
