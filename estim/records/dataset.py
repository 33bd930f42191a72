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
import pyarrow.compute as pc

from estim.records.cells import LOOKALIKES, _Checked
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
    ".csv .tsv .txt .dat .parquet .pq .xlsx .xls .xlsm .xlsb .ods .json .jsonl .ndjson .feather .arrow .orc "
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
    return [
        p.name
        for p in entries
        if p.is_file() and not p.name.startswith(".") and _table_named(p.name) is not None
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
            if name in found and p.is_file() and _copy_of(p, name):
                continue  # the spreadsheet the table was exported from, or the table compressed
            if name in found:
                own = found[name][0].name
                message = (
                    f"this looks like part of the {name} table (its rows split off by year, direction or "
                    f"section) or another copy of it, but estim reads only {own} and would leave its rows "
                    f"out: join them into {own} (one header), or move it out of the folder"
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
        if name == _COPIES[0] and not result.batches:
            copied = _copied_rows_warning(result)
            if copied:
                warnings.warn(copied, UserWarning, stacklevel=2)
        collector.add(result.batches)
        if key is not None and collector.total == 0 and name not in frames:
            # Only while everything is valid: otherwise loading fails and the tables are not needed.
            frames[name] = _typed_frame(raw, schema, result.columns, key)
        del result, raw
    collector.add(_key_spelling_batches(list(person_keys.values())))
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
        return None
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


_KEY_RULES = {
    "key_case": "in other letter case",
    "key_number": (
        "written as another number (leading zeros dropped or added, as a spreadsheet does to a "
        "column of numbers, or a decimal point such as 123.0)"
    ),
    "key_unicode": (
        "written with other Unicode characters that look the same (another Unicode normal form, "
        "full-width digits, an invisible character)"
    ),
    "key_separator": (
        "written with other spaces or dashes inside (as 4507 123456, 4507-123456 and 4507123456 "
        "are one passport number)"
    ),
    "key_script": (
        "written with Cyrillic letters that look like Latin ones, or the other way round (Р, К, С, О "
        "for P, K, C, O: a keyboard switched to the Russian or Kazakh layout)"
    ),
}
"""Rules for person keys that are one key spelled two ways, and how the second differs from the first,
in the order they are told apart (`_key_rules`)."""

_SEPARATORS = r"[\s\p{Z}\p{Pd}]+"
"""Spaces and dashes inside a key (after NFKC, which makes a no-break space a space)."""


def _fold(values: pa.Array, *, script: bool = True, separators: bool = True) -> pa.Array:
    """Person keys with the differences of `_KEY_RULES` taken out: Unicode compatibility form (NFKC)
    without invisible format characters, Cyrillic letters that look like Latin ones as those
    (`LOOKALIKES`), lower case, no spaces or dashes inside, and an all-digit key as its number (``007``
    and ``7.0`` are ``7``). `script` and `separators` keep the letters and the separators as written."""
    folded = pc.replace_substring_regex(pc.utf8_normalize(values, form="NFKC"), r"\p{Cf}", "")
    if script and pc.all(pc.string_is_ascii(folded)).as_py() is False:
        for cyrillic, latin in LOOKALIKES.items():
            folded = pc.replace_substring(folded, cyrillic, latin)
    folded = pc.utf8_lower(folded)
    if separators:
        folded = pc.replace_substring_regex(folded, _SEPARATORS, "")
    return _as_number(folded)


def _as_number(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(values, r"^0*([0-9]+)(?:\.0+)?$", r"\1")


def _key_rules(first: pa.Array, later: pa.Array) -> np.ndarray:
    """Which of `_KEY_RULES` tells each pair of keys with the same `_fold` apart: the first difference
    in the order of `_KEY_RULES` that accounts for it."""

    def same(a: pa.Array, b: pa.Array) -> np.ndarray:
        return pc.equal(a, b).to_numpy(zero_copy_only=False).astype(bool)

    case = same(pc.utf8_lower(first), pc.utf8_lower(later))
    number = same(_as_number(first), _as_number(later))
    plain = {"script": False, "separators": False}
    unicode = same(_fold(first, **plain), _fold(later, **plain))
    spaced = same(_fold(first, script=False), _fold(later, script=False))
    return np.select(
        [case, number, unicode, spaced],
        ["key_case", "key_number", "key_unicode", "key_separator"],
        "key_script",
    )


def _key_spelling_batches(tables: list[_Keys]) -> list[_Batch]:
    """Person keys that are one key spelled two ways, within a file or between the apprehensions and the
    registers: in other letter case (``PK12ab`` and ``pk12AB``, rule ``key_case``), as another number
    (``00123``, ``123`` and ``123.0``, rule ``key_number``: a spreadsheet drops the leading zeros of a
    column it takes for numbers, pandas writes a column of whole numbers with a gap as ``123.0``), in
    other Unicode characters that look the same (composed and decomposed ``Й``, full-width digits, a
    zero-width space inside, rule ``key_unicode``), with other spaces or dashes inside (``4507 123456``
    and ``4507123456``, rule ``key_separator``) or with Cyrillic letters that look like Latin ones
    (``РК123`` typed on a Russian keyboard layout for ``PK123``, rule ``key_script``). Read as two
    people, they would split one person's apprehensions (fewer repeats, a lower re-apprehension rate)
    and break the link to the registers, biasing every estimate without a sign. Refused, naming both
    rows (never the keys: personal data)."""
    if not tables or sum(len(t.values) for t in tables) == 0:
        return []
    every = pa.chunked_array([t.values for t in tables], pa.string())
    if len(pc.unique(_fold(every))) == len(pc.unique(every)):
        return []  # the usual case, found by hash passes in Arrow
    frame = pd.DataFrame(
        {
            "key": np.concatenate([t.values.to_numpy(zero_copy_only=False) for t in tables]),
            "table": np.repeat(np.arange(len(tables)), [len(t.values) for t in tables]),
            "row": np.concatenate([t.rows for t in tables]),
        }
    )
    frame["folded"] = _fold(pa.array(frame["key"], pa.string())).to_numpy(zero_copy_only=False)
    # the same key in two files is one person: fine
    frame = frame.sort_values(["table", "row"], kind="stable").drop_duplicates("key")
    repeat = frame.duplicated("folded")  # another spelling of a key seen before
    if not repeat.any():
        return []
    first = frame[~repeat].set_index("folded")
    later = frame[repeat].copy()
    firsts = first.loc[later["folded"].to_numpy()]
    later["rule"] = _key_rules(
        pa.array(firsts["key"].tolist(), pa.string()), pa.array(later["key"].tolist(), pa.string())
    )
    later["where"] = [
        f"{tables[int(ft)].word} {int(fr)}"
        + ("" if int(ft) == int(t) else f" of {tables[int(ft)].file}")
        for ft, fr, t in zip(firsts["table"], firsts["row"], later["table"], strict=True)
    ]
    out = []
    for (t, rule), part in later.groupby(["table", "rule"], sort=True):
        keys = tables[int(t)]
        where, how = list(part["where"]), _KEY_RULES[str(rule)]
        out.append(
            _Batch(
                keys.file,
                str(rule),
                keys.column,
                part["row"].to_numpy(np.int64),
                np.arange(len(part)),
                lambda k, where=where, how=how: (
                    f"the person key (not shown: personal data) is the one on {where[k]} {how}; "
                    "keys are compared exactly, so these would be two people: write one person's key "
                    "the same way everywhere"
                ),
            )
        )
    return out
