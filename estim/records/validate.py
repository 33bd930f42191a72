"""Validation of record files against their schemas (docs/design.md §3; the schemas are `estim.records.schemas`).

Every rule is driven by the schema: cell kinds, ``nullable``, ``minimum``/``maximum``, ``plausible``,
``choices``, ``pattern``, ``not_after_today``, ``references``, ``unique``; an ``id`` cell may not be a word
for a missing value (``NA``, ``#N/A``, …: rule ``placeholder``) nor a number in scientific notation
(``1.23457E+11``, a spreadsheet's rounding of a long id: rule ``scientific``); no cell but free text may
start or end with a space, a non-ASCII space or an invisible character (rule ``whitespace``); each
checkpoint's months in ``checkpoint_records`` run without a gap from its first to its last (rule
``checkpoint_gap``, written out in `estim.records.tables`). The rules that span tables are written out in `estim.records.dataset`: a (section,
month) must not be counted both in ``apprehensions`` (one row per apprehension) and in ``apprehension_totals``
(monthly counts), rule ``double_count``; person keys may not be one key spelled two ways, within a file or
between files: in other letter case (rule ``key_case``), as another number (``00123``, ``123``, ``123.0``:
rule ``key_number``), in other Unicode characters that look the same (rule ``key_unicode``), with other
spaces or dashes inside (rule ``key_separator``) or with Cyrillic letters that look like Latin ones (rule
``key_script``), and registers of at least 200 people may not share no key with as many apprehended
(rule ``no_linkage``: the files key people differently); and a file or a folder named after a record type that estim does not read, with no
readable file of that type, or beside it a part of the table (``apprehensions_2017.xlsx``) or a folder of
record files, is rule ``unread_file``. Reading refuses files that are not UTF-8 text and
quoted cells that run over lines without ending where a cell ends (rule ``unclosed_quote``).

Each violation names the file, the row as the user counts it (CSV: the line, the header being line 1;
Parquet: the 1-based row), the column and the rule, and says what the value was and what is allowed. All
files are checked to the end; the report lists the first `cap` violations and counts all of them.

Checks are vectorised: a text column is factorised once (Arrow dictionary encoding) and every test runs on
its distinct values, then is broadcast back to the rows; there is no Python loop over rows except to word
the violations that are listed.

This module holds the entry points. The work is done by `estim.records.report` (violations and the report),
`estim.records.parse` and `estim.records.cells` (cell rules), `estim.records.tables` (one file: header,
references, unique keys), `estim.records.dataset` (a folder and the cross-table rule) and
`estim.records.typed` (the typed tables that loading hands on).
"""

from __future__ import annotations

import os
from pathlib import Path

from estim.errors import EstimInputError
from estim.records.dataset import DatasetCheck, check_dataset
from estim.records.read import read_table
from estim.records.report import ValidationReport, Violation, _Collector, _single
from estim.records.schemas import SCHEMAS
from estim.records.tables import RECORD_SUFFIXES, _check_table, _coded, _References

__all__ = [
    "RECORD_SUFFIXES",
    "DatasetCheck",
    "ValidationReport",
    "Violation",
    "check_dataset",
    "validate_file",
    "validate_path",
]

# ------------------------------------------------------------------------------------------- public API


def validate_file(
    path: str | os.PathLike[str], record_type: str | None = None, *, cap: int = 200
) -> ValidationReport:
    """Check one record file; its type is its name's stem (``NAME.csv``/``NAME.parquet``) unless given.

    References to other tables are checked against the tables beside it (and, for sections, against the
    shipped ``data/sections.csv`` when there is none); cross-table rules need a folder (`validate_path`).
    """
    p = Path(path)
    if not p.exists():
        raise EstimInputError(f"no such file: {path}")
    if p.is_dir():
        raise EstimInputError(f"{path} is a folder; validate_file checks one record file")
    if record_type is not None and record_type not in SCHEMAS:
        raise EstimInputError(
            f"unknown record type {record_type!r}; record types: {', '.join(SCHEMAS)}"
        )
    name = record_type or p.stem
    shown = str(path)
    collector = _Collector(cap)
    if name not in SCHEMAS or p.suffix.lower() not in RECORD_SUFFIXES:
        problem = (
            f"{p.stem!r} is not a record type; record types: {', '.join(SCHEMAS)}"
            if name not in SCHEMAS
            else f"estim reads .csv and .parquet files, not {p.suffix or 'files without a suffix'}"
        )
        collector.add([_single(shown, None, None, "unknown_file", problem)])
        return ValidationReport(collector.listed, collector.total, 0, 0)
    schema = SCHEMAS[name]
    refs = _References(p.parent, str(Path(shown).parent), look_beside=True)
    raw = read_table(p, shown, list(schema.names), schema.personal, _coded(schema))
    collector.add(_check_table(raw, schema, refs).batches)
    return ValidationReport(collector.listed, collector.total, 1, raw.records)


def validate_path(path: str | os.PathLike[str], *, cap: int = 200) -> ValidationReport:
    """Check a record file, or every record file of a folder (with the folder-level rules)."""
    p = Path(path)
    if not p.exists():
        raise EstimInputError(f"no such file or folder: {path}")
    if p.is_dir():
        return check_dataset(p, str(path), cap=cap).report
    return validate_file(path, cap=cap)
