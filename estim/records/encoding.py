"""The bytes of a CSV file before it is read as a table: files that are not UTF-8 text at all (UTF-16, a
spreadsheet, an archive, a Parquet file named .csv), the first byte that is not UTF-8 (and the 8-bit
Cyrillic encoding it seems to be in), and classic Mac line endings."""

from __future__ import annotations

import codecs
import csv
import re

from estim.records.cells import _clip

_DECODE_CHUNK = 32 << 20
"""Bytes decoded at a time: bounds the memory of the UTF-8 check."""

_NOT_CSV = (
    (
        b"PK\x03\x04",
        "a ZIP archive, as an Excel workbook (.xlsx) or an OpenDocument sheet (.ods) is",
    ),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97–2003 workbook (.xls)"),
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PAR1", "a Parquet file"),
)
"""First bytes of files that are not text, and what they are."""


def not_text(data: bytes) -> tuple[str, str] | None:
    """Rule and message for a file that is not UTF-8 text at all (UTF-16, a spreadsheet, an archive, a
    Parquet file named .csv), which would otherwise be read as one garbled header; None for text."""
    utf16 = (
        "the file is UTF-16 encoded{how}; estim reads UTF-8: save it as UTF-8 (e.g. 'CSV UTF-8' "
        "rather than 'Unicode text')"
    )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "encoding", utf16.format(how="")
    head = data[:4096]
    for zeros in (head[1::2], head[0::2]):  # UTF-16 without a byte-order mark: every other byte 0
        if len(head) >= 4 and zeros.count(0) >= 0.4 * len(zeros):
            return "encoding", utf16.format(
                how=" without a byte-order mark (every other byte is 0)"
            )
    for signature, what in _NOT_CSV:
        if data.startswith(signature):
            advice = {
                "gzip-compressed": "decompress it",
                "a Parquet file": "name it .parquet",
            }.get(what, "open it in the spreadsheet and save the sheet as 'CSV UTF-8'")
            return "unreadable", f"the file is not CSV text; it is {what}: {advice}"
    return None


def lone_cr_to_lf(data: bytes) -> bytes:
    """`data` with every carriage return not followed by a line feed made a line feed.

    A lone CR ends a line for Arrow and the `csv` module, but not for the line counting here, which counts
    LFs: a file saved with classic Mac line endings (Excel's "CSV (Macintosh)") would be one line, read as
    a header and no rows, and a lone CR after the header would hide the first row in it. A file without a
    lone CR is returned as it is; in one with, CRLF becomes LF too (and a lone CR inside a quoted text cell
    a line feed: it still ends a line inside the cell).
    """
    if data.count(b"\r") == data.count(b"\r\n"):  # the usual case: no lone CR; two fast C scans
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def first_bad_utf8(data: bytes, start: int) -> int | None:
    """Offset of the first byte that is not valid UTF-8, or None; decodes in chunks to bound memory."""
    view = memoryview(data)
    pos, n = start, len(data)
    while pos < n:
        end = min(pos + _DECODE_CHUNK, n)
        try:
            _, used = codecs.utf_8_decode(view[pos:end], "strict", end == n)
        except UnicodeDecodeError as e:
            return pos + e.start
        pos += used
    return None


def encoding_issue(
    data: bytes, start: int, bad: int, hidden: tuple[str, ...]
) -> tuple[int, str | None, str]:
    """Line, column and message for the first byte that is not UTF-8 (at offset `bad`)."""
    line = data.count(b"\n", start, bad) + 1
    first = data.rfind(b"\n", 0, bad) + 1
    last = data.find(b"\n", bad)
    text = data[first : last if last >= 0 else len(data)].rstrip(b"\r")
    # The field holding the byte (quotes ignored: this is a hint, not a parse).
    k = data.count(b",", first, bad)
    cell = text.split(b",")[k]
    header_end = data.find(b"\n", start)
    header_line = data[start : header_end if header_end >= 0 else len(data)]
    header = next(csv.reader([header_line.decode("utf-8", "replace").rstrip("\r")]), [])
    column = header[k] if k < len(header) and line > 1 else None
    message = f"byte 0x{data[bad]:02x} is not valid UTF-8; estim reads UTF-8 text"
    cyrillic = _as_cyrillic(cell)
    if cyrillic is not None:
        name, text = cyrillic
        shown = "(not shown: personal data)" if column in hidden else repr(_clip(text))
        message += f"; it reads as {name} {shown}: save the file as UTF-8"
    else:
        message += "; save the file as UTF-8"
    return line, column, message


_CYRILLIC_CODECS = (
    ("cp1251", "Windows-1251 (cp1251)"),
    ("koi8_r", "KOI8-R"),
    ("cp866", "DOS code page 866 (Excel's 'CSV (MS-DOS)')"),
)


def _as_cyrillic(cell: bytes) -> tuple[str, str] | None:
    """The 8-bit Cyrillic encoding `cell` seems to be in, and its text so read, or None.

    Windows-1251, KOI8-R and code page 866 all read many Cyrillic bytes as Cyrillic letters, but one's
    lower case is another's upper case or a box-drawing sign: the reading whose Cyrillic words are written
    as words are (all lower case, all capitals, or a capital and lower case) is the one; on a tie (one
    word in capitals reads as another in lower case), the commonest encoding, Windows-1251."""
    best: tuple[int, str, str] | None = None
    for codec, name in _CYRILLIC_CODECS:
        try:
            text = cell.decode(codec)
        except UnicodeDecodeError:
            continue
        words = [w for w in re.findall(r"[^\W\d_]+", text) if re.search("[\u0400-\u04ff]", w)]
        if not words:
            continue
        score = sum(len(w) for w in words if w.islower() or w.isupper() or w.istitle())
        if best is None or score > best[0]:
            best = (score, name, text)
    return None if best is None else (best[1], best[2])
