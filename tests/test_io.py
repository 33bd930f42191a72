"""Atomic writes: no partial file, and temporary files of writes that were killed are cleaned up later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from estim.io import (
    STALE_AFTER,
    STALE_UNKNOWN_AFTER,
    atomic_path,
    atomic_write_text,
    remove_stale_temporaries,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="PIDs are probed with os.kill(pid, 0)")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_leaves_only_the_target(tmp_path):
    target = tmp_path / "fit.nc"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".fit.nc.{os.getpid()}-") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert _temporaries(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "fit.nc", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert _temporaries(tmp_path) == []


@posix_only
def test_a_stale_temporary_of_a_dead_writer_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / f".fit.nc.{_dead_pid()}-abcd1234.tmp"
    stale.write_text("half a fit")
    _age(stale, STALE_AFTER + 60)
    atomic_write_text(tmp_path / "fit.nc", "new")
    assert not stale.exists()
    assert _temporaries(tmp_path) == []
    assert (tmp_path / "fit.nc").read_text() == "new"


@posix_only
def test_a_temporary_of_a_live_writer_is_kept_however_old(tmp_path):
    live = tmp_path / f".fit.nc.{os.getppid()}-abcd1234.tmp"  # the parent: alive while we run
    live.write_text("being written")
    _age(live, STALE_UNKNOWN_AFTER + 60)
    atomic_write_text(tmp_path / "fit.nc", "new")
    assert live.exists()


@posix_only
def test_a_dead_writers_temporary_touched_recently_is_kept(tmp_path):
    # A PID means nothing for a writer on another machine sharing the folder: it is given time.
    recent = tmp_path / f".fit.nc.{_dead_pid()}-abcd1234.tmp"
    recent.write_text("being written elsewhere")
    atomic_write_text(tmp_path / "fit.nc", "new")
    assert recent.exists()
    _age(recent, STALE_AFTER + 1)
    assert remove_stale_temporaries(tmp_path / "fit.nc") == [recent]


def test_temporaries_without_a_pid_are_removed_only_when_old(tmp_path):
    old = tmp_path / ".fit.nc.abcd1234.tmp"  # named before the PID was added
    young = tmp_path / ".fit.nc.efgh5678.tmp"
    for p in (old, young):
        p.write_text("?")
    _age(old, STALE_UNKNOWN_AFTER + 60)
    _age(young, STALE_AFTER + 60)
    atomic_write_text(tmp_path / "fit.nc", "new")
    assert not old.exists()
    assert young.exists()


@posix_only
def test_temporaries_of_other_targets_are_left_alone(tmp_path):
    dead = _dead_pid()
    others = [
        tmp_path / f".fit.nc.x.{dead}-abcd1234.tmp",  # of fit.nc.x
        tmp_path / f".other.nc.{dead}-abcd1234.tmp",
        tmp_path / ".fit.nc.not-a-temporary.tmp",
        tmp_path / f"fit.nc.{dead}-abcd1234.tmp",  # not hidden: not ours
    ]
    for p in others:
        p.write_text("?")
        _age(p, STALE_UNKNOWN_AFTER + 60)
    atomic_write_text(tmp_path / "fit.nc", "new")
    assert all(p.exists() for p in others)


_WRITER = """
import sys
from estim.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    sys.stdin.readline()  # wait: killed here, or told to finish
    tmp.write_text(sys.argv[2])
"""


def _writer(target, content):
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target), content],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    tmp = child.stdout.readline().strip()
    assert tmp, "the writer did not start"
    return child, tmp


@posix_only
def test_kill_9_while_writing_leaves_a_temporary_that_a_later_write_removes(tmp_path):
    target = tmp_path / "fit.nc"
    child, tmp = _writer(target, "never")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _temporaries(tmp_path) == [os.path.basename(tmp)]  # what the issue saw
    _age(tmp, STALE_AFTER + 1)
    atomic_write_text(target, "new")
    assert _temporaries(tmp_path) == []
    assert target.read_text() == "new"


@posix_only
def test_two_writers_of_one_target_keep_each_others_temporaries(tmp_path):
    target = tmp_path / "fit.nc"
    child, tmp = _writer(target, "theirs")
    try:
        _age(tmp, STALE_UNKNOWN_AFTER + 60)  # however old: its writer is alive
        atomic_write_text(target, "ours")
        assert os.path.exists(tmp)
        assert target.read_text() == "ours"
        child.communicate("\n", timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert target.read_text() == "theirs"  # the last rename wins
    assert _temporaries(tmp_path) == []
