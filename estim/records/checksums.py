"""A records folder's SHA256SUMS, when it has one: record files changed since the folder was written.

`estim simulate` writes a SHA256SUMS beside the records it makes, and a data provider may ship one. A record
file that no longer matches its line was edited, cut short or replaced after the folder was written; such a
file can still validate (a file cut at a line boundary does), so the mismatch is worth a word. It is a warning,
not a refusal: editing a copy of the records is a legitimate thing to do, and the remedy (delete the line, or
the file SHA256SUMS) is the user's call.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from estim.records.schemas import SCHEMAS

_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
"""A line of ``sha256sum``'s output: the digest, a space, and a space (text) or ``*`` (binary), the name."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_warning(folder: Path, display: str, read: list[Path]) -> str | None:
    """A warning naming the record files in `read` whose SHA-256 differs from the folder's SHA256SUMS, and the
    record files it lists that the folder no longer has; None when there is no SHA256SUMS or all agree.

    Only record files are compared (README.md or truth.nc may be edited without changing the data).
    """
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return None
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return f"{display}/SHA256SUMS could not be read as checksums ({e}); the record files were not compared"
    listed: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            return (
                f"{display}/SHA256SUMS line {number} is not 'DIGEST  NAME' (sha256sum's format); "
                "the record files were not compared with it"
            )
        listed[m.group(2).strip()] = m.group(1).lower()
    by_name = {p.name: p for p in read}
    changed = sorted(n for n, p in by_name.items() if n in listed and _digest(p) != listed[n])
    gone = sorted(
        n
        for n in listed
        if Path(n).stem in SCHEMAS
        and Path(n).suffix.lower() in (".csv", ".parquet")
        and not (folder / n).exists()
    )
    if not changed and not gone:
        return None
    parts = []
    if changed:
        parts.append(
            f"{', '.join(changed)} {'differs' if len(changed) == 1 else 'differ'} from "
            f"{'its checksum' if len(changed) == 1 else 'their checksums'} in {display}/SHA256SUMS: "
            f"{'it was' if len(changed) == 1 else 'they were'} changed after the folder was written"
        )
    if gone:
        parts.append(f"SHA256SUMS lists {', '.join(gone)}, which the folder no longer has")
    return (
        "; ".join(parts)
        + ". The estimates are of the records as they are now; if the change is yours, remove the line from "
        "SHA256SUMS (or the file) to silence this warning"
    )
