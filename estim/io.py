"""Atomic file writes: a reader never sees a partial file, and a failed write leaves the old file intact.

A write goes to a temporary file beside the target, ``.NAME.PID-XXXXXXXX.tmp`` (PID: the writer's process id),
renamed over the target when complete. A writer killed outright (``kill -9``, power cut) cannot remove its
temporary file, so every write first removes the stale ones of its target: those whose writer is no longer
running (checked by PID) and that nothing has touched for `STALE_AFTER` seconds (so that a live writer on
another machine sharing the folder, whose PID means nothing here, is left alone), and those of unknown owner
(older naming) untouched for `STALE_UNKNOWN_AFTER` seconds. Temporary files of live writers are kept, so two
processes can write the same target at once (the last rename wins).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


STALE_AFTER = 120.0
"""Seconds untouched after which the temporary file of a writer that is no longer running is removed."""
STALE_UNKNOWN_AFTER = 24 * 3600.0
"""Seconds untouched after which a temporary file whose name carries no writer PID is removed."""

_OWNED = re.compile(r"(\d+)-[a-z0-9_]{8}")  # PID, then mkstemp's eight random characters
_UNOWNED = re.compile(r"[a-z0-9_]{8}")  # names before the PID was added


def remove_stale_temporaries(path: str | os.PathLike[str], now: float | None = None) -> list[Path]:
    """Remove the temporary files left beside `path` by writes that were killed; return those removed.

    Never raises: a file another process removes or replaces meanwhile is simply skipped.
    """
    target = Path(path)
    prefix = f".{target.name}."
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [
            p
            for p in target.parent.iterdir()
            if p.name.startswith(prefix) and p.name.endswith(".tmp")
        ]
    except OSError:
        return removed
    for p in candidates:
        middle = p.name[len(prefix) : -len(".tmp")]
        owner = _OWNED.fullmatch(middle)
        try:
            idle = now - p.lstat().st_mtime
            if owner is not None:
                stale = idle >= STALE_AFTER and not _alive(int(owner.group(1)))
            elif _UNOWNED.fullmatch(middle):
                stale = idle >= STALE_UNKNOWN_AFTER
            else:  # not a temporary file of this target (e.g. of a target named NAME.x)
                continue
            if stale and p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


def _alive(pid: int) -> bool:
    """Whether process `pid` is running here (True when that cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name != "posix" or pid <= 0:
        return True  # on Windows os.kill(pid, 0) would signal the process, not probe it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by another user
        return True
    return True


def unwritable(path: str | os.PathLike[str]) -> str | None:
    """Why a file could not be written at `path` (None when it can), found before any work: the nearest
    folder above it that exists (`atomic_path` makes the missing ones) must be a folder one can create a file
    in, which is tried (a temporary file, removed at once)."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"no file can be written in {folder} ({e.strerror or e})"
    return None


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha256(folder: str | os.PathLike[str]) -> str:
    """The SHA-256 of a folder's files: of each file's relative path and SHA-256, in sorted order, through
    subfolders; hidden files (a spreadsheet's lock file, .DS_Store) are left out, as no reader reads them."""
    root = Path(folder)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            h.update(f"{relative.as_posix()}\0{sha256(path)}\n".encode())
    return h.hexdigest()


def without_error(error: Any) -> Any:
    """A study's rows that ran without error, as a boolean pandas Series, from its ``error`` column: empty
    strings, which a CSV read back gives as NaN (so the column may be float)."""
    return error.isna() | (error.astype(str) == "")
