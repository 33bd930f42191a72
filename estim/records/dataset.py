"""Checking a folder of record files: every table, the folder-level rules, and the typed tables on request."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from estim.records.cells import _Checked
from estim.records.checksums import checksum_warning
from estim.records.copies import not_a_copy
from estim.records.keys import Keys, distinct_keys, key_spelling_batches, no_linkage_batches
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

_COPIES = ("apprehensions", "apprehension_id", "section_id", "date", "person_key")
"""Table, id, section, date and person column of the warning about rows that look copied
(`_copied_rows_warning`)."""
_COPY_SHARE, _COPY_MIN = 0.2, 10
"""A section-month whose rows repeat an earlier row in every column but the id this often (a fifth of its
rows, and at least 10 of them) is warned about: a person caught twice in a day makes such rows, but the
synthetic data has at most 5 % of a section-month (2 rows of 42), and two joined exports of a month 50 %."""

_DAY_COPY_ROWS, _DAY_COPY_SHARE, _DAY_COPY_DAYS = 4, 0.4, 3
"""… and so are copies piled on a few days (`_copied_days_warning`): a section-day of 4 or more rows, 40 % of
them repeats, on 3 or more days (the shipped records have none such day; exports overlapping by a day, 264)."""


# ---------------------------------------------------------------------------------------------- folders


@dataclass
class DatasetCheck:
    """What `check_dataset` found: the report, and the typed tables when asked for and all was valid."""

    report: ValidationReport
    frames: dict[str, pd.DataFrame]


# What a table's rows could be kept in, besides .csv and .parquet: a file so named beside the table's own file
# (``apprehensions_2017.xlsx``, ``apprehensions.to_kazakhstan.csv.gz``) is taken for part of it, not for notes
# (``apprehensions.md``)
_TABULAR = frozenset(
    ".csv .tsv .dat .parquet .pq .xlsx .xls .xlsm .xlsb .ods .json .jsonl .ndjson .feather .arrow .orc "
    ".avro .dta .sav .sas7bdat .rds .rdata .pkl .pickle .h5 .hdf5 .db .sqlite .zip .gz .bz2 .xz .zst .7z "
    ".tar".split()
)


def _table_named(name: str) -> str | None:
    """The record type a file or folder name starts with (``apprehensions_2017.xlsx``, ``registers.csv.gz``,
    ``Registers/``: the longest such type, followed by anything but a letter), or None."""
    lower = name.lower()
    matches = [
        t
        for t in SCHEMAS
        if lower.startswith(t) and (len(lower) == len(t) or not lower[len(t)].isalpha())
    ]
    return max(matches, key=len) if matches else None


def _copy_of(path: Path, table: str) -> bool:
    """Named as the table but for its format (``apprehensions.xlsx``, ``registers.csv.gz``, notes in
    ``apprehensions.md``), not as a part of it (``apprehensions.to_kazakhstan.csv.gz``,
    ``apprehensions_2017.xlsx``)."""
    name = path.name.lower()
    if not name.startswith(f"{table}."):
        return False
    suffixes = name[len(table) + 1 :].split(".")
    return len(suffixes) == 1 or all(f".{x}" in _TABULAR for x in suffixes)


def _holds_records(folder: Path) -> list[str]:
    # the record-type files directly in a folder not named after one (``2017/apprehensions.csv``)
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    # a record file by its name (apprehensions.csv), or a table's part in a data format; not a picture or
    # notes that happen to start with a table's name (sections_map.png, registers_notes.txt)
    return [
        p.name
        for p in entries
        if p.is_file()
        and not p.name.startswith(".")
        and _table_named(p.name) is not None
        and any(x.lower() in _TABULAR for x in p.suffixes)
    ]


def _record_files(
    folder: Path,
) -> tuple[dict[str, list[Path]], list[Path], dict[str, list[Path]], list[tuple[Path, list[str]]]]:
    """Record files by type, .csv/.parquet files whose name is no record type, files in another format or
    folders named after a record type (``apprehension_totals.xlsx``, ``registers.csv.gz``,
    ``apprehension_totals/`` holding a file per month, ``apprehensions_2017.xlsx``), by type, and folders
    named after none that hold record files (``2017/`` with its ``apprehensions.csv``), with those files."""
    found: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    other_format: dict[str, list[Path]] = {}
    nested: list[tuple[Path, list[str]]] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        table = _table_named(p.name)
        if p.is_dir():  # ``registers/``, or ``registers.parquet/`` as Spark and Dask write it
            if table is not None:
                other_format.setdefault(table, []).append(p)
            elif held := _holds_records(p):
                nested.append((p, held))
            continue
        if not p.is_file():
            continue
        if p.suffix.lower() not in RECORD_SUFFIXES:
            exact = p.name.split(".", 1)[0].lower() in SCHEMAS
            tabular = any(x.lower() in _TABULAR for x in p.suffixes)
            if table is not None and (exact or tabular):
                other_format.setdefault(table, []).append(p)
            continue
        if p.stem in SCHEMAS:
            found.setdefault(p.stem, []).append(p)
        else:
            unknown.append(p)
    return found, unknown, other_format, nested


def _other_format_batches(
    display: str,
    found: dict[str, list[Path]],
    other_format: dict[str, list[Path]],
    nested: list[tuple[Path, list[str]]],
) -> list[_Batch]:
    """A table kept only in a format estim does not read, or in a folder of files, would be left out
    without a word: an optional one (monthly totals, registers) would then count as absent, and its
    sections as having no data. Beside the table's own file, such a file or folder is part of the table
    split in two (by year, by direction) or another copy of it, and its rows would be left out: refused as
    well, and so is a folder of record files (``2017/``), which estim does not read."""
    batches = []
    for name, paths in other_format.items():
        for p in paths:
            differs = None
            if name in found and p.is_file() and _copy_of(p, name):
                # the spreadsheet the table was exported from, or the table compressed, unless it holds
                # another number of rows (2017 kept in the spreadsheet, 2016 exported)
                differs = not_a_copy(p, found[name][0])
                if differs is None:
                    continue
            if name in found:
                own = found[name][0].name
                message = (
                    f"this looks like part of the {name} table (its rows split off by year, direction or "
                    f"section) or another copy of it, but estim reads only {own} and would leave its rows "
                    f"out: join them into {own} (one header), or move it out of the folder"
                )
                if differs is not None:
                    message = (
                        f"named as the {name} table, but {differs}: estim reads only {own} and would leave "
                        f"this file's rows out; join them into {own} (one header), or move the file out of "
                        "the folder if it is an older copy"
                    )
            elif p.is_dir():
                message = (
                    f"this folder looks like the {name} table in several files, but estim reads one "
                    f"file per table and there is no {name}.csv or {name}.parquet: join the files into "
                    f"{name}.csv (one header) or one {name}.parquet, or move the folder out"
                )
            else:
                message = (
                    f"this looks like the {name} table, but estim reads record files only as .csv "
                    f"or .parquet and there is no {name}.csv or {name}.parquet: save it as {name}.csv "
                    "(UTF-8, comma-separated) or move it out of the folder"
                )
            batches.append(_single(_join(display, p.name), None, None, "unread_file", message))
    for p, held in nested:
        shown = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
        batches.append(
            _single(
                _join(display, p.name),
                None,
                None,
                "unread_file",
                f"this folder holds record files ({shown}), but estim reads only the files directly in "
                f"{display} and would leave their rows out: join them into the folder's own files (one "
                "per table), or move the folder out",
            )
        )
    return batches


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
    found, unknown, other_format, nested = _record_files(folder)
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
    folder_batches.extend(_other_format_batches(display, found, other_format, nested))
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
    person_keys: dict[str, Keys] = {}
    todo = [(name, p) for name in SCHEMAS for p in found.get(name, [])]
    spans: dict[
        str, tuple[str, int, int]
    ] = {}  # table: (file, first and last month) for `_short_span_warning`
    for name, path in _progress(todo, progress):
        schema = SCHEMAS[name]
        raw = read_table(
            path, _join(display, path.name), list(schema.names), schema.personal, _coded(schema)
        )
        result = _check_table(raw, schema, refs)
        if name in _SPANS and name not in spans:
            span = _month_span(result, _SPANS[name])
            if span is not None:
                spans[name] = (raw.file, *span)
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
                person_keys[name] = distinct_keys(raw, result.columns[column], column)
        if name == _COPIES[0] and not result.batches:
            copied = _copied_rows_warning(result)
            if copied:
                warnings.warn(copied, UserWarning, stacklevel=2)
        collector.add(result.batches)
        if key is not None and collector.total == 0 and name not in frames:
            # Only while everything is valid: otherwise loading fails and the tables are not needed.
            frames[name] = _typed_frame(raw, schema, result.columns, key)
        del result, raw
    short = _short_span_warning(spans)
    if short:
        warnings.warn(short, UserWarning, stacklevel=2)
    changed = checksum_warning(folder, display, [p for _, p in todo])
    if changed:
        warnings.warn(changed, UserWarning, stacklevel=2)
    collector.add(key_spelling_batches(list(person_keys.values())))
    collector.add(
        no_linkage_batches(person_keys.get("apprehensions"), person_keys.get("registers"))
    )
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


_SPANS = {"apprehensions": "date", "checkpoint_records": "month"}
"""The tables whose month spans `_short_span_warning` compares, by their date column."""


def _month_span(result: _TableResult, when: str) -> tuple[int, int] | None:
    # the first and last month of a table's valid dates, as months since 1970
    w = result.columns.get(when)
    if w is None or not isinstance(w.typed, np.ndarray):
        return None
    ok = w.ok & ~w.null
    if not ok.any():
        return None
    months = w.typed[ok].astype("datetime64[M]").astype(np.int64)
    return int(months.min()), int(months.max())


def _short_span_warning(spans: dict[str, tuple[str, int, int]]) -> str | None:
    """A warning when the individual apprehension records start or end two months or more inside the
    checkpoint records' span: a file cut short at a line boundary validated, and `data summary` showed half the
    apprehensions beside a whole year's crossings (a border fit refuses the months without records; a
    multiple-list table of such a period, too)."""
    if len(spans) < len(_SPANS):
        return None
    (file, first, last), (_, cp_first, cp_last) = (
        spans["apprehensions"],
        spans["checkpoint_records"],
    )
    if first - cp_first < 2 and cp_last - last < 2:
        return None

    def month(m: int) -> str:
        return str(np.datetime64(m, "M"))

    return (
        f"{file}: its records run from {month(first)} to {month(last)}, and the checkpoint records from "
        f"{month(cp_first)} to {month(cp_last)}: if the file was cut short or exported for part of the "
        "time, its missing months are not months nobody was apprehended in: a border fit refuses them, and "
        "`estim data summary` counts only the months the file holds; restore them, or cut the other files "
        "to match"
    )


def _copied_days_warning(
    raw: RawTable, section: _Checked, date: _Checked, is_first: np.ndarray, id_column: str
) -> str | None:
    """Copies that pile up on a few days rather than in a month: section-days of at least `_DAY_COPY_ROWS`
    apprehensions, `_DAY_COPY_SHARE` of them repeating an earlier one in every column but the id, on at
    least `_DAY_COPY_DAYS` days with `_COPY_MIN` such rows in all. Monthly exports that overlap by a day (cut
    from the first of a month to the first of the next) copy every first of the month: 2,026 rows on 264
    section-days of the shipped records, which have no such day."""
    assert isinstance(date.typed, np.ndarray) and section.codes is not None
    day = date.typed.astype("datetime64[D]").astype(np.int64)
    cell, cells = pd.factorize(section.codes.astype(np.int64) * (1 << 32) + (day + (1 << 31)))
    rows = np.bincount(cell, minlength=len(cells))
    repeats = np.bincount(cell, weights=~is_first, minlength=len(cells)).astype(np.int64)
    flagged = np.flatnonzero(
        (rows >= _DAY_COPY_ROWS) & (repeats >= 2) & (repeats >= _DAY_COPY_SHARE * rows)
    )
    if flagged.size < _DAY_COPY_DAYS or repeats[flagged].sum() < _COPY_MIN:
        return None
    first_row = np.flatnonzero(
        _first_occurrences(cell)
    )  # cells are numbered in order of appearance
    days = day[first_row[flagged]].astype("datetime64[D]")
    of_month = pd.Series(pd.DatetimeIndex(days).day).value_counts()
    worst = flagged[np.argmax(repeats[flagged] / rows[flagged])]
    assert section.uniques is not None
    name = section.uniques[int(section.codes[first_row[worst]])].as_py()
    when = np.datetime64(int(day[first_row[worst]]), "D")
    most = (
        f"; {int(of_month.iloc[0]):,} of them fall on day {int(of_month.index[0])} of a month"
        if of_month.iloc[0] >= 0.5 * flagged.size
        else ""
    )
    return (
        f"{raw.file}: on {flagged.size:,} section-days, {_DAY_COPY_SHARE:.0%} or more of the apprehensions "
        f"repeat an earlier one in every column but {id_column} ({int(repeats[flagged].sum()):,} rows in "
        f"all; {name} on {when}: {int(repeats[worst]):,} of {int(rows[worst]):,}){most}. A person caught "
        "twice in a day writes such rows, but rarely on so many days; if exports that overlap by a day were "
        "joined and numbered afresh, remove the copies: each is read as a further apprehension of its "
        "person, raising the re-apprehension rate"
    )


def _copied_rows_warning(result: _TableResult) -> str | None:
    """A warning when, in some section-month, many apprehensions repeat an earlier one in every column but
    `apprehension_id` (see `_COPY_SHARE`), or None.

    An apprehension exported twice keeps its id and is refused (rule ``duplicate``). Rows that differ only in
    their id may be one person caught twice in a day, so they are read as two apprehensions; but many of them
    in a month are what two overlapping exports numbered afresh look like, each copy a further apprehension
    of its person, raising the re-apprehension rate. estim cannot tell which, so it says so (and reads them).
    """
    _, id_column, section_column, date_column, person_column = _COPIES
    raw, columns = result.raw, result.columns
    others = [c for name, c in columns.items() if name != id_column]
    # the person and the date first: only rows sharing both with another row can be copies
    names = sorted((n for n in columns if n != id_column), key=lambda n: n not in _COPIES[3:])
    section, date = columns.get(section_column), columns.get(date_column)
    if raw.n_rows < _COPY_MIN * 2 or section is None or date is None or section.codes is None:
        return None
    if any(c.column_issue or not c.ok.all() for c in others) or not isinstance(
        date.typed, np.ndarray
    ):
        return None
    if person_column not in names[:2] or date_column not in names[:2]:
        return None
    subset = np.arange(raw.n_rows)
    combined = np.zeros(raw.n_rows, np.int64)
    for k, name in enumerate(names):
        part = columns[name].factorised()[subset].astype(np.int64) + 1  # an empty cell (-1) is 0
        combined = pd.factorize(combined * (int(part.max(initial=0)) + 1) + part)[0]
        if k == 1:
            shared = np.bincount(combined)[combined] >= 2
            subset, combined = subset[shared], pd.factorize(combined[shared])[0]
            if subset.size <= _COPY_MIN:
                return None
    firsts = _first_occurrences(combined)  # pd.factorize numbers in order of first appearance
    if int((~firsts).sum()) < _COPY_MIN:
        return None
    is_first = np.ones(raw.n_rows, bool)
    is_first[subset] = firsts
    position = np.full(raw.n_rows, -1)
    position[subset] = np.arange(subset.size)
    month = date.typed.astype("datetime64[M]").astype(np.int64)
    cell, cells = pd.factorize(section.codes.astype(np.int64) * (1 << 32) + (month + (1 << 31)))
    rows = np.bincount(cell, minlength=len(cells))
    repeats = np.bincount(cell, weights=~is_first, minlength=len(cells)).astype(np.int64)
    flagged = np.flatnonzero((repeats >= _COPY_MIN) & (repeats >= _COPY_SHARE * rows))
    if flagged.size == 0:
        return _copied_days_warning(raw, section, date, is_first, id_column)
    worst = flagged[np.argmax(repeats[flagged] / rows[flagged])]
    repeated = np.flatnonzero(~is_first & (cell == worst))
    first_of = subset[np.flatnonzero(firsts)[combined[position[repeated]]]]
    farthest = int(np.argmax(repeated - first_of))  # a copy, rather than a second arrest that day
    later, earlier = int(repeated[farthest]), int(first_of[farthest])
    assert section.uniques is not None
    name = section.uniques[int(section.codes[later])].as_py()
    label = str(np.datetime64(int(month[later]), "M"))
    word = _row_word(raw)
    others_text = (
        f", and so do {int(repeats[flagged].sum() - repeats[worst]):,} in {flagged.size - 1} other "
        "section-months"
        if flagged.size > 1
        else ""
    )
    return (
        f"{raw.file}: {int(repeats[worst]):,} of the {int(rows[worst]):,} apprehensions of {name} in "
        f"{label} repeat an earlier one in every column but {id_column} ({word} "
        f"{raw.row_label(later)} repeats {word} {raw.row_label(earlier)}){others_text}. A person caught "
        "twice in a day writes such rows, but rarely this many; if exports were joined and numbered "
        "afresh, remove the copies: each is read as a further apprehension of its person, raising the "
        "re-apprehension rate"
    )
