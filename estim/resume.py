"""Resuming a study from the rows it already wrote, safely: a row is kept only when the file is this study's,
the row is whole, and the options that made it are this run's.

Every study row records its ``settings``: a short hash (`settings_hash`) of the options that determine the
row's content (family, truth, sampler, base seed, …; not the number of datasets, which a resumed run may
extend, nor where the work runs or where it is written). On ``resume`` (`study_rows_so_far`) the file is refused
— an `EstimInputError` naming the file, the line and the rule — when its columns are not the study's, when it
has no ``settings`` column (rows written before they recorded their settings cannot be told apart), when a row
was made with other options, when a row is damaged anywhere but at the end, or when two rows are the same row.
A last line cut by a kill is dropped with a note, and rows that ran with an error are dropped with a note, so
their datasets are run again. Without ``resume`` an existing non-empty file is refused unless ``force``: a
forgotten ``--resume`` must not cost the rows of hours.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from estim.errors import EstimInputError
from estim.io import without_error

SETTINGS = "settings"
"""The column of every study row holding `settings_hash` of the options that made it."""


def settings_hash(options: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of ``options`` as canonical JSON (sorted keys): the same options give the
    same hash in every run and on every machine."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class StudyRows:
    """What a study's rows are, for resuming it: ``columns`` every file of it has (besides ``settings``),
    ``unit`` the columns naming one task (a dataset, a replicate: what a resumed run skips), ``key`` the columns
    naming one row (``unit`` and, say, the quantity), ``numbers`` the key columns that must be numbers, and
    ``options`` the options of this run. With ``options_by`` a column's value chooses the options
    (``options[value]``): the rows of each model of a study depend on that model's options only. ``dtypes``:
    the types of columns pandas would guess wrongly, as `pandas.read_csv` takes them."""

    name: str
    columns: Sequence[str]
    unit: Sequence[str]
    key: Sequence[str]
    options: Mapping[str, Any]
    numbers: Sequence[str] = ()
    options_by: str | None = None
    dtypes: Mapping[str, Any] | None = None

    def settings(self, value: Any = None) -> str:
        """The ``settings`` of this run's rows (of the rows whose ``options_by`` column holds ``value``)."""
        return settings_hash(self._options(value))

    def _options(self, value: Any = None) -> Mapping[str, Any]:
        return self.options if self.options_by is None else self.options.get(str(value), {})

    def stamp(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its ``settings`` column: this run's."""
        if self.options_by is None:
            return frame.assign(**{SETTINGS: self.settings()})
        return frame.assign(**{SETTINGS: frame[self.options_by].map(self.settings)})

    @property
    def name_with_article(self) -> str:
        return f"{'an' if self.name[:1].lower() in 'aeiou' else 'a'} {self.name}"

    def describe(self) -> str:
        return json.dumps(self.options, sort_keys=True, default=str)


def refuse_existing(out: str | os.PathLike[str] | None, *, resume: bool, force: bool) -> None:
    """Refuse to start a study afresh over a non-empty ``out`` unless ``force`` (then it is removed), so that a
    forgotten ``--resume`` does not lose the rows so far; an empty one is removed."""
    if out is None or resume:
        return
    path = Path(out)
    if not path.exists():
        return
    if path.is_file() and path.stat().st_size > 0 and not force:
        raise EstimInputError(
            f"{path} exists and is not empty: pass --resume to continue the study it holds, or --force to "
            "replace it"
        )
    if not path.is_file():
        raise EstimInputError(f"{path} is not a file: the study's rows cannot be written there")
    path.unlink()


def study_rows_so_far(
    out: str | os.PathLike[str] | None,
    study: StudyRows,
    *,
    resume: bool,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame | None:
    """The rows a study already wrote to ``out`` that a resumed run keeps (`read_study_rows`), or None when
    there are none; without ``resume`` a non-empty ``out`` is refused unless ``force`` (`refuse_existing`)."""
    if out is None:
        return None
    refuse_existing(out, resume=resume, force=force)
    path = Path(out)
    if not resume or not path.exists() or path.stat().st_size == 0:
        return None
    return read_study_rows(path, study, say=say)


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _text(path: Path, study: StudyRows) -> str:
    if path.is_dir():
        raise EstimInputError(f"{path} is a folder, not the CSV of {study.name_with_article}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip's magic number, whatever the name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise EstimInputError(f"{path}: a damaged gzip file ({e}); it cannot be resumed") from e
    elif path.suffix == ".gz":
        raise EstimInputError(
            f"{path}: named .gz but not gzipped; it is not the CSV of {study.name_with_article}"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EstimInputError(
            f"{path}: not UTF-8 text (byte {e.start}), so not the CSV of {study.name_with_article}; it cannot be resumed"
        ) from e


def _number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def read_study_rows(
    path: str | os.PathLike[str], study: StudyRows, *, say: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """The rows of ``path`` that a resumed ``study`` keeps, after the checks of the module docstring: the
    ``settings`` column present and this run's on every row, the study's columns, whole rows (a cut last line
    dropped), the key fields present and numbers where they must be, no row twice; rows of a task that ran
    with an error are dropped (``say`` tells which; default: a note on stderr)."""
    path = Path(path)
    say = say or _note
    text = _text(path, study)
    records = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            if fields:
                records.append((reader.line_num, fields))
    except csv.Error as e:
        raise EstimInputError(f"{path}, line {reader.line_num}: not CSV ({e})") from e
    if not records:
        raise EstimInputError(
            f"{path}: no header line; it is not the CSV of {study.name_with_article}"
        )
    _, header = records[0]
    missing = [c for c in study.columns if c not in header]
    if missing:
        raise EstimInputError(
            f"{path}: its columns are not those of {study.name_with_article} (it lacks {', '.join(missing)}; its "
            f"header begins {', '.join(header[:6])}); it cannot be resumed by this study"
        )
    if SETTINGS not in header:
        raise EstimInputError(
            f"{path}: its rows have no '{SETTINGS}' column: they were written before study rows recorded the "
            "options that made them, so it cannot be resumed safely; start afresh (--force) or write to "
            "another --out"
        )
    doubled = sorted({c for c in header if header.count(c) > 1})
    if doubled:
        raise EstimInputError(f"{path}, line 1: the column {', '.join(doubled)} is named twice")
    body = records[1:]
    dropped = 0
    if body:
        last_line, last = body[-1]
        if not text.endswith(("\n", "\r")) or len(last) < len(header):
            say(
                f"{path}: its last line ({last_line}) was cut off (a study stopped while writing it); it is "
                "dropped and its task is run again"
            )
            body = body[:-1]
            dropped += 1
    where = {c: header.index(c) for c in header}
    for line, fields in body:
        if len(fields) != len(header):
            raise EstimInputError(
                f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}; a damaged "
                "row that is not the last cannot be resumed"
            )
        for column in study.unit:
            _check_key(path, line, column, fields[where[column]], study)
    frame = pd.DataFrame([f for _, f in body], columns=header, dtype=object)
    frame["_line"] = [line for line, _ in body]
    frame = frame.replace({"": None})
    if study.options_by is None:
        expected = pd.Series(study.settings(), index=frame.index)
    else:
        expected = frame[study.options_by].map(study.settings)
    other = frame[frame[SETTINGS].astype(str) != expected]
    if len(other):
        first = other.iloc[0]
        value = study._options(first[study.options_by]) if study.options_by else study.options
        raise EstimInputError(
            f"{path}, line {first['_line']}: made with other options (settings {first[SETTINGS]}) than this "
            f"run's (settings {expected[other.index[0]]}: {json.dumps(value, sort_keys=True, default=str)}); "
            "resume it with the options it was made with, or write this run to another --out"
        )
    failed = ~without_error(frame["error"]) if "error" in frame else pd.Series(False, frame.index)
    units = frame.loc[failed, list(study.unit)].drop_duplicates()
    if len(units):
        redo = frame.set_index(list(study.unit)).index.isin(
            pd.MultiIndex.from_frame(units) if len(study.unit) > 1 else units[study.unit[0]]
        )
        say(
            f"{path}: {len(units)} task(s) ran with an error ({_units(units)}); they are not kept as "
            "finished and are run again"
        )
        frame = frame[~redo]
        dropped += int(redo.sum())
    for line, row in zip(
        frame["_line"], frame[list(study.key)].itertuples(index=False), strict=True
    ):
        for column, value in zip(study.key, row, strict=True):
            _check_key(path, line, column, "" if value is None else str(value), study)
    doubled_rows = frame[frame.duplicated(list(study.key), keep=False)]
    if len(doubled_rows):
        lines = doubled_rows["_line"].tolist()
        raise EstimInputError(
            f"{path}, lines {', '.join(map(str, lines[:6]))}: the same row ({', '.join(study.key)}) twice; a "
            "study writes each row once, so this file was edited or concatenated and cannot be resumed"
        )
    kept = io.StringIO()
    frame.drop(columns="_line").to_csv(kept, index=False)
    rows = pd.read_csv(io.StringIO(kept.getvalue()), low_memory=False, dtype=study.dtypes)
    rows.attrs["dropped"] = (
        dropped  # rows (and a cut line) not kept: a file appended to is rewritten first
    )
    rows.attrs["header"] = header
    return rows


def _check_key(path: Path, line: int, column: str, value: str, study: StudyRows) -> None:
    if value == "":
        raise EstimInputError(
            f"{path}, line {line}: no {column}, which names the row; a damaged row"
        )
    if column in study.numbers and not _number(value):
        raise EstimInputError(f"{path}, line {line}: {column} {value!r} is not a number")


def _units(units: pd.DataFrame) -> str:
    shown = [", ".join(f"{k}={v}" for k, v in r.items()) for r in units.head(5).to_dict("records")]
    return "; ".join(shown) + (" …" if len(units) > 5 else "")
