"""Reading record files (CSV, Parquet) into raw Arrow columns, each row labelled as the user counts it.

Reading judges no values: it reports only what stops a file being read as a table (empty file, wrong
encoding or no text at all, wrong delimiter, rows with the wrong number of fields, a quoted cell running
over lines without ending where a cell ends, an unreadable Parquet file) and hands the cells on as text
(CSV) or in their stored Arrow type (Parquet) for `estim.records.validate` to check. The unnamed index
pandas writes into a Parquet file is no column.

CSV rows are labelled with the line on which the record starts (the header is line 1). Arrow parses the
cells. When the body has no quote character and no blank line and Arrow finds no row with the wrong number
of fields, row i is simply on the i-th line after the header. Otherwise a vectorised byte scan that tracks
quote parity finds where each record starts and how many fields it has, so quoted fields holding commas or
newlines are counted right without a Python loop over rows. Quote parity is how a CSV reader reads quotes
only when each quote opens a cell or ends one; when one does not (a quote inside an unquoted cell, one
never closed) or the scan and Arrow disagree, the file is re-read with the `csv` module, which is slow but
exact, and a record whose cells run over lines is read again strictly: if its quoting is malformed, the
lines it swallowed are refused (rule ``unclosed_quote``) rather than read as one cell.

Arrow and Python objects: Arrow's threaded CSV reader may drop its last references to what it was given
on one of its own threads, after `read_csv` has returned — even while the interpreter is shutting down. A
Python object released there (an ``invalid_row_handler`` callable, a buffer over Python ``bytes``) needs
the GIL, and a thread taking the GIL during interpreter shutdown is ended by ``pthread_exit``, whose
unwinding through Arrow's C++ aborts the process ("terminate called without an active exception", exit
134). So Arrow is given only Arrow-owned memory and no Python callback: rows with the wrong number of fields
make it fail (found by the scan instead), and after the scan it reads only the records of the right width.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from estim.records.encoding import encoding_issue, first_bad_utf8, lone_cr_to_lf, not_text

_CHUNK = 32 << 20
"""Bytes scanned at a time: bounds the scan's temporary arrays."""

_NL, _QUOTE, _COMMA = 10, 34, 44

OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


@dataclass(frozen=True)
class Issue:
    """A problem found while reading (row as the user counts it, or None for the whole file)."""

    row: int | None
    column: str | None
    rule: str
    message: str


@dataclass
class RawTable:
    """The cells of one record file, before validation."""

    path: Path
    file: str
    """The path as shown to the user."""
    fmt: Literal["csv", "parquet"]
    header: list[str] = field(default_factory=list)
    header_row: int | None = None
    """Line of the header (CSV), None for Parquet."""
    columns: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    """Wanted columns that the file has (the first one when a name repeats), one cell per readable row."""
    n_rows: int = 0
    """Rows held in `columns`."""
    rows: np.ndarray | None = None
    """Label of each held row (CSV line); None means the 1-based row number (Parquet)."""
    records: int = 0
    """Data records in the file, including those that could not be read as rows."""
    issues: list[Issue] = field(default_factory=list)
    bad_field_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """CSV lines whose number of fields differs from the header's."""
    bad_field_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    readable: bool = True
    """False when the content could not be read as a table at all."""

    def row_label(self, i: int) -> int:
        return int(self.rows[i]) if self.rows is not None else i + 1


def read_table(
    path: Path,
    file: str,
    wanted: list[str],
    hidden: tuple[str, ...] = (),
    coded: tuple[str, ...] = (),
) -> RawTable:
    """Read `path` (``.csv`` or ``.parquet``), keeping the `wanted` columns.

    Cells of `hidden` columns (personal data) are never quoted in messages. Text columns named in `coded`
    (few distinct values) are read dictionary-encoded, which saves decoding and hashing them.
    """
    if path.suffix.lower() == ".parquet":
        return read_parquet(path, file, wanted, coded)
    return read_csv(path, file, wanted, hidden, coded)


# ---------------------------------------------------------------------------------------------- Parquet


def read_parquet(path: Path, file: str, wanted: list[str], coded: tuple[str, ...] = ()) -> RawTable:
    """Read the `wanted` columns of a Parquet file in their stored types."""
    raw = RawTable(path=path, file=file, fmt="parquet")
    if path.stat().st_size == 0:
        raw.issues.append(Issue(None, None, "empty_file", "the file is empty (0 bytes)"))
        raw.readable = False
        return raw
    try:
        with pq.ParquetFile(path) as pf:
            arrow_schema = pf.schema_arrow
            raw.records = raw.n_rows = pf.metadata.num_rows
            if len(set(arrow_schema.names)) != len(arrow_schema.names):
                table = pf.read()  # reading by name is ambiguous when a name repeats
        names = list(arrow_schema.names)
        row_labels = _pandas_row_labels(arrow_schema)
        raw.header = [n for n in names if n not in row_labels]
        positions = _first_positions(names, wanted)
        if len(set(names)) == len(names):
            text = [
                pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in arrow_schema
            ]
            as_dictionary = [n for n in positions if n in coded and text[positions[n]]]
            table = pq.read_table(path, columns=list(positions), read_dictionary=as_dictionary)
            raw.columns = {name: table.column(name) for name in positions}
        else:
            raw.columns = {name: table.column(i) for name, i in positions.items()}
    except (pa.ArrowException, OSError) as e:
        raw.issues.append(Issue(None, None, "unreadable", f"not a readable Parquet file ({e})"))
        raw.readable = False
        raw.columns, raw.n_rows = {}, 0
    return raw


def _pandas_row_labels(schema: pa.Schema) -> set[str]:
    """Columns holding the unnamed index that pandas' ``DataFrame.to_parquet`` writes when the index is
    not 0, 1, 2, … (a filtered or shuffled frame): row labels, not data, which pandas reads back as the
    index; named ``__index_level_0__``, they are no column of any record type."""
    try:
        meta = schema.pandas_metadata or {}
    except ValueError:  # metadata that is not JSON: no pandas index to skip
        return set()
    index = meta.get("index_columns", []) if isinstance(meta, dict) else []
    return {
        name
        for name in index
        if isinstance(name, str) and name.startswith("__index_level_") and name in schema.names
    }


def _first_positions(header: list[str], wanted: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in wanted and name not in positions:
            positions[name] = i
    return positions


# -------------------------------------------------------------------------------------------------- CSV


def read_csv(
    path: Path,
    file: str,
    wanted: list[str],
    hidden: tuple[str, ...] = (),
    coded: tuple[str, ...] = (),
) -> RawTable:
    """Read the `wanted` columns of a CSV file as text, with the line of every row."""
    raw = RawTable(path=path, file=file, fmt="csv")
    data = path.read_bytes()
    if not data:
        raw.issues.append(
            Issue(None, None, "empty_file", "the file is empty (0 bytes); it needs a header line")
        )
        raw.readable = False
        return raw
    binary = not_text(data)
    if binary is not None:
        raw.issues.append(Issue(None, None, *binary))
        raw.readable = False
        return raw
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0  # a UTF-8 byte-order mark is harmless
    data = lone_cr_to_lf(data)
    bad = first_bad_utf8(data, start)
    if bad is not None:
        line, column, message = encoding_issue(data, start, bad, hidden)
        raw.issues.append(Issue(line, column, "encoding", message))
        # Carry on with replacement characters so that the file's other problems are reported too.
        data = codecs.BOM_UTF8 * (start > 0) + data[start:].decode("utf-8", "replace").encode()
    _parse_csv(raw, data, start, wanted, coded)
    return raw


@dataclass
class _Scan:
    """Records of a CSV body: the line each starts on, its number of fields, whether it is blank."""

    lines: np.ndarray
    fields: np.ndarray
    blank: np.ndarray
    starts: np.ndarray
    """Offset of each record's first byte."""
    ends: np.ndarray
    """Offset of the newline ending each record (the body's length for a last record without one)."""
    quoted_newline: bool
    open_quote: bool
    """The body ends inside quotes: its quoting is malformed."""
    stray_quote: bool
    """A quote opens a quoted cell other than where a cell starts, or closes one other than where a cell
    ends: CSV readers do not read such quotes as quote parity does (a quote inside an unquoted cell is
    text), and a quoted cell running over lines to such a quote is malformed."""


def _scan(arr: np.ndarray, has_quotes: bool) -> _Scan:
    """Split a CSV body into records, vectorised: a newline or comma inside quotes does not count.

    Quote parity says whether a byte is inside a quoted field (an escaped quote ``""`` flips it twice).
    Lines are counted from 1 at the start of `arr`.
    """
    n = arr.size
    terms: list[np.ndarray] = []  # positions of record-ending newlines
    ranks: list[np.ndarray] = []  # physical newlines before each of them
    seps: list[np.ndarray] = []  # separators before each of them
    parity = np.uint8(0)
    newlines_before = 0
    seps_before = 0
    quoted_newline = stray = False
    for s in range(0, n, _CHUNK):
        a = arr[s : s + _CHUNK]
        newline = a == _NL
        if has_quotes:
            inside = np.bitwise_xor.accumulate((a == _QUOTE).view(np.uint8)) ^ parity
            parity = inside[-1]
            outside = ~inside.view(bool)
            term = np.flatnonzero(newline & outside)
            sep = np.flatnonzero((a == _COMMA) & outside)
            every = np.flatnonzero(newline)
            quoted_newline = quoted_newline or every.size != term.size
            quotes = np.flatnonzero(a == _QUOTE)
            stray = stray or _stray_quotes(arr, quotes + s, inside[quotes])
            ranks.append(np.searchsorted(every, term) + newlines_before)
            newlines_before += every.size
        else:
            term = np.flatnonzero(newline)
            sep = np.flatnonzero(a == _COMMA)
            ranks.append(np.arange(term.size) + newlines_before)
            newlines_before += term.size
        seps.append(np.searchsorted(sep, term) + seps_before)
        seps_before += sep.size
        terms.append(term + s)
    term_pos = np.concatenate(terms) if terms else np.zeros(0, np.int64)
    rank = np.concatenate(ranks) if ranks else np.zeros(0, np.int64)
    sep_count = np.concatenate(seps) if seps else np.zeros(0, np.int64)
    ends = term_pos
    starts = np.concatenate(([0], term_pos[:-1] + 1))[: term_pos.size]
    lines = np.concatenate(([1], rank[:-1] + 2))[: term_pos.size]
    if term_pos.size == 0 or term_pos[-1] < n - 1:  # the last record has no newline after it
        starts = np.append(starts, term_pos[-1] + 1 if term_pos.size else 0)
        ends = np.append(ends, n)
        lines = np.append(lines, rank[-1] + 2 if rank.size else 1)
        sep_count = np.append(sep_count, seps_before)
    fields = np.diff(sep_count, prepend=0) + 1
    length = ends - starts
    blank = length == 0
    one = np.flatnonzero(length == 1)
    blank[one] = arr[starts[one]] == ord("\r")
    return _Scan(lines, fields, blank, starts, ends, quoted_newline, bool(parity), stray)


_BEFORE_OPENING = np.zeros(256, bool)
_BEFORE_OPENING[[_COMMA, _NL, _QUOTE]] = True
_AFTER_CLOSING = np.zeros(256, bool)
_AFTER_CLOSING[[_COMMA, _NL, _QUOTE, 13]] = True


def _stray_quotes(arr: np.ndarray, quotes: np.ndarray, after: np.ndarray) -> bool:
    """Whether one of the `quotes` (positions in `arr`) opens a quoted cell (parity `after` it is 1)
    other than where a cell starts, or closes one other than where a cell ends. An escaped quote ``""``
    closes and reopens with each quote beside the other, so it passes."""
    opening, closing = quotes[after == 1], quotes[after == 0]
    bad_opening = (opening > 0) & ~_BEFORE_OPENING[arr[np.maximum(opening - 1, 0)]]
    bad_closing = (closing + 1 < arr.size) & ~_AFTER_CLOSING[
        arr[np.minimum(closing + 1, arr.size - 1)]
    ]
    return bool(bad_opening.any() or bad_closing.any())


def _header(data: bytes, start: int) -> tuple[bytes, int, int] | None:
    """The header record (the first non-blank one), the line it starts on, and where the body starts."""
    pos, line = start, 1
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        if data[pos:end].strip(b"\r"):
            break
        pos, line = end + 1, line + 1
    else:
        return None
    while data.count(b'"', pos, end) % 2 and end < len(data):  # a quoted newline in the header
        nxt = data.find(b"\n", end + 1)
        end = len(data) if nxt < 0 else nxt
    return data[pos:end].rstrip(b"\r"), line, end + 1


def _parse_csv(
    raw: RawTable, data: bytes, start: int, wanted: list[str], coded: tuple[str, ...]
) -> None:
    found = _header(data, start)
    if found is None:
        raw.issues.append(Issue(None, None, "empty_file", "the file has no header line"))
        raw.readable = False
        return
    header_bytes, header_line, body_start = found
    text = header_bytes.decode("utf-8", "replace")
    with _any_field_size():
        header = next(csv.reader(io.StringIO(text, newline="")), [])
    raw.header, raw.header_row = header, header_line
    last = header_line + header_bytes.count(b"\n")
    if last > header_line and (header_bytes.count(b'"') % 2 or not _well_quoted(text)):
        raw.issues.append(_unclosed_quote(raw, [], header_line, last))
        raw.readable = False
        return
    if text.lower().startswith("sep=") and len(text) <= 5:
        raw.issues.append(
            Issue(
                raw.header_row,
                None,
                "delimiter",
                f"the first line {text!r} is the line with which Excel names a file's delimiter, not "
                "a header: delete it (and save the file comma-separated if it names another "
                "delimiter)",
            )
        )
        raw.readable = False
        return
    if len(header) == 1 and len(wanted) > 1:
        for delimiter, name in OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raw.issues.append(
                    Issue(
                        raw.header_row,
                        None,
                        "delimiter",
                        f"the header is a single field split by {name}s ({_clip(header[0])!r}): "
                        f"the file uses '{delimiter.encode('unicode_escape').decode()}' as "
                        "delimiter; estim needs commas",
                    )
                )
                raw.readable = False
                return
    first_body_line = header_line + header_bytes.count(b"\n") + 1
    positions = _first_positions(header, wanted)
    width = len(header)
    # Common case: no quotes and no blank lines in the body, so records are lines; Arrow alone suffices
    # unless it finds rows with the wrong number of fields (it then fails, and the scan finds them).
    quotes = data.find(b'"', body_start) >= 0
    blank_lines = any(data.find(b, body_start - 1) >= 0 for b in (b"\n\n", b"\n\r\n"))
    body = np.frombuffer(data, np.uint8)[body_start:]
    if not quotes and not blank_lines and body_start < len(data):
        columns = _read_arrow(body, width, positions, coded, False)
        if columns is not None:
            raw.n_rows = raw.records = columns.num_rows
            raw.rows = np.arange(raw.n_rows, dtype=np.int64) + first_body_line
            raw.columns = {name: columns.column(f"f{i}") for name, i in positions.items()}
            return
    scan = _scan(body, quotes)
    records = np.flatnonzero(~scan.blank)
    lines = scan.lines + (first_body_line - 1)
    raw.records = int(records.size)
    good = scan.fields[records] == width
    bad = records[~good]
    raw.bad_field_rows = lines[bad]
    raw.bad_field_counts = scan.fields[bad]
    raw.rows = lines[records[good]]
    raw.n_rows = int(good.sum())
    if scan.open_quote or scan.stray_quote:  # parity is off, and so may be the records
        _parse_csv_slowly(raw, data, start, positions)
        return
    if raw.n_rows == 0:
        raw.columns = {name: pa.chunked_array([], pa.string()) for name in positions}
        return
    if bad.size:  # Arrow reads only the records of the right width
        body = _without(body, scan.starts[bad], scan.ends[bad] + 1)
    columns = _read_arrow(body, width, positions, coded, scan.quoted_newline)
    if columns is None or columns.num_rows != raw.n_rows:
        _parse_csv_slowly(raw, data, start, positions)
    else:
        raw.columns = {name: columns.column(f"f{i}") for name, i in positions.items()}


def _without(arr: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """`arr` without the byte ranges ``[starts[i], stops[i])`` (sorted, not overlapping), vectorised."""
    change = np.zeros(arr.size + 1, np.int8)
    np.add.at(change, starts, 1)
    np.add.at(change, np.minimum(stops, arr.size), -1)
    return arr[np.cumsum(change[:-1], dtype=np.int8) == 0]


def _read_arrow(
    body: np.ndarray,
    width: int,
    positions: dict[str, int],
    coded: tuple[str, ...],
    quoted_newline: bool,
) -> pa.Table | None:
    """The body read by Arrow (columns ``f0``, ``f1``, …); None if Arrow cannot read it (e.g. a row has the
    wrong number of fields).

    Arrow gets a copy of the bytes in its own memory and no Python callback (see the module's docstring).
    """
    names = [f"f{i}" for i in range(width)]  # the file's own names may repeat; these never do
    include = [names[i] for i in positions.values()]
    types = {
        names[i]: pa.dictionary(pa.int32(), pa.string()) if name in coded else pa.string()
        for name, i in positions.items()
    }
    own = pa.allocate_buffer(body.size)
    np.frombuffer(own, np.uint8)[:] = body
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(own),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pa_csv.ParseOptions(newlines_in_values=quoted_newline),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                include_columns=include,
                strings_can_be_null=False,  # "NA" and "" stay text; emptiness is judged later
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:
        return None
    return table


def _parse_csv_slowly(raw: RawTable, data: bytes, start: int, positions: dict[str, int]) -> None:
    """Exact but slow: the `csv` module, row by row (when quotes upset the fast scan, or it and Arrow
    disagree).

    A record whose cells run over several lines is read again strictly: when its quoting is malformed (a
    quote never closed, or a quoted cell running on to a quote that does not end a cell), the lines it
    swallowed are not rows of one cell, so it is refused (rule ``unclosed_quote``) and left out.
    """
    text = data[start:].decode("utf-8", "replace")
    lines = io.StringIO(text, newline="")
    taken: list[str] = []  # the lines of the record being read

    def feed() -> Iterator[str]:
        for text_line in lines:
            taken.append(text_line)
            yield text_line

    reader = csv.reader(feed())
    width = len(raw.header)
    cells: list[list[str]] = [[] for _ in positions]
    rows: list[int] = []
    bad_rows: list[int] = []
    bad_counts: list[int] = []
    unclosed = 0
    seen_header = False
    line = 1
    with _any_field_size():
        for record in reader:
            first_line, line = line, reader.line_num + 1
            own = "".join(taken) if line - first_line > 1 else ""
            taken.clear()
            if not record:  # a blank line: skipped, as the fast path does
                continue
            if not seen_header:
                seen_header = True
                continue
            if own and not _well_quoted(own):
                raw.issues.append(_unclosed_quote(raw, record, first_line, line - 1))
                unclosed += 1  # a record, read as no row
                continue
            if len(record) != width:
                bad_rows.append(first_line)
                bad_counts.append(len(record))
                continue
            rows.append(first_line)
            for out, i in zip(cells, positions.values(), strict=True):
                out.append(record[i])
    raw.rows = np.asarray(rows, np.int64)
    raw.n_rows = len(rows)
    raw.records = len(rows) + len(bad_rows) + unclosed
    raw.bad_field_rows = np.asarray(bad_rows, np.int64)
    raw.bad_field_counts = np.asarray(bad_counts, np.int64)
    raw.columns = {
        name: pa.chunked_array([pa.array(out, pa.string())])
        for name, out in zip(positions, cells, strict=True)
    }


@contextmanager
def _any_field_size() -> Iterator[None]:
    """The `csv` module without its limit on a cell's size (131,072 characters), which a quote never
    closed passes, the rest of the file running into one cell: that is reported, not raised."""
    before = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _well_quoted(record: str) -> bool:
    """Whether `record` (one record's text) reads without error when quoting is strict."""
    try:
        for _ in csv.reader(io.StringIO(record, newline=""), strict=True):
            pass
    except csv.Error:
        return False
    return True


def _unclosed_quote(raw: RawTable, record: list[str], first: int, last: int) -> Issue:
    """`record`: the cells as the `csv` module read them (none for the header)."""
    index = next((i for i, c in enumerate(record) if "\n" in c or "\r" in c), len(raw.header))
    column = raw.header[index] if index < len(raw.header) else None
    return Issue(
        first,
        column,
        "unclosed_quote",
        f"a quoted cell starts on this line and runs on to line {last} without ending where a cell "
        f'ends: a quote never closed, or a quote inside a quoted cell not written twice (""); the '
        f"{last - first + 1:,} lines would be read as one cell, not as rows: correct the quotes",
    )


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
