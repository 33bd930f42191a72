"""Is a file beside a table, named as the table but for its format, a copy of it?

``apprehensions.xlsx`` beside ``apprehensions.csv`` is usually the spreadsheet the CSV was exported from, and
``registers.csv.gz`` the table compressed; estim reads only the CSV or Parquet file. But such a file may hold
another part of the table (2017 kept in the spreadsheet, 2016 exported), whose rows would then be left out
without a word. Where its rows can be counted cheaply — a compressed CSV (gzip, bzip2, xz) by reading it, an
Excel workbook by its first sheet's stated dimension — a copy must hold as many records as the table's own
file; otherwise it is not known to be a copy. Files whose rows cannot be counted are still taken for copies.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="[A-Z]+\d+(?::[A-Z]+(\d+))?"')


def _csv_records(stream: io.TextIOBase) -> int:
    """Records after the header, blank lines not counted (as the reader counts them)."""
    rows = sum(1 for row in csv.reader(stream) if any(cell.strip() for cell in row))
    return max(rows - 1, 0)


def _workbook_records(path: Path) -> int | None:
    """The first worksheet's rows below its header, by the dimension the workbook states (``A1:J27547``)."""
    try:
        with zipfile.ZipFile(path) as book:
            sheets = sorted(
                n for n in book.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)
            )
            if not sheets:
                return None
            sheet = (
                "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in sheets else sheets[0]
            )
            with book.open(sheet) as f:
                head = f.read(4096)
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    m = _DIMENSION.search(head)
    if m is None:
        return None
    return max(int(m.group(1)) - 1, 0) if m.group(1) else 0


def records_in(path: Path) -> int | None:
    """Data rows of a table file estim can count without reading it as records; None when it cannot."""
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes[-1:] == [".parquet"]:
            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffixes[-1:] == [".csv"]:
            with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
                return _csv_records(f)
        if len(suffixes) >= 2 and suffixes[-2] == ".csv" and suffixes[-1] in _OPENERS:
            with _OPENERS[suffixes[-1]](
                path, "rt", encoding="utf-8-sig", errors="replace", newline=""
            ) as f:
                return _csv_records(f)
        if suffixes[-1:] in ([".xlsx"], [".xlsm"]):
            return _workbook_records(path)
    except (OSError, EOFError, lzma.LZMAError, csv.Error, ValueError):
        return None
    return None


def not_a_copy(copy: Path, own: Path) -> str | None:
    """Why `copy`, named as `own`'s table but for its format, is not a copy of it (other record counts), or
    None when it may be one."""
    theirs = records_in(copy)
    if theirs is None:
        return None
    mine = records_in(own)
    if mine is None or mine == theirs:
        return None
    return f"it holds {theirs:,} rows and {own.name} {mine:,}, so it is not a copy of {own.name}"
