"""Studies as tasks on dask.distributed: a `LocalCluster` of worker processes by default, or a running scheduler
(a real cluster) by its address.

A study is a list of independent datasets — simulate, fit, compare with the truth — so each dataset is one task
(`run_tasks`). Rows are written as they arrive, the whole CSV rewritten atomically after each (so its columns
always line up and a stopped study keeps what it measured), and a study restarted with ``resume`` skips the
datasets already written. A task whose worker dies (killed, out of memory) is rescheduled on another worker by the
scheduler, up to ``distributed.scheduler.allowed-failures`` times (3 by default); a task that raises is the
study's own business (its rows record the error), so `run_tasks` retries only lost workers.

Workers run one task at a time with one thread each (`PINNED`): PyTensor, JAX and nutpie would otherwise each
use every core, and a comparison of 1 and 2 workers would measure contention, not throughput. The border
model cannot be compiled once per worker and fed new data: the layout of its exact law of the unsurveyed totals
is built from the observed totals themselves (`estim.families.border.kernels.totals_logp`); its compilation is
3–5 s of a fit of minutes. The single-register studies compile once per worker (`worker_cache`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from estim.errors import EstimInputError
from estim.io import unwritable
from estim.run.sampler import THREADS_ENV
from estim.studies.rows import write_rows

PINNED = {
    THREADS_ENV: "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    # JAX's CPU client: one thread for its operations (read when JAX is first imported in the worker)
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
"""The environment of a pinned worker process: every library that would start a thread pool gets one thread."""


@contextlib.contextmanager
def study_client(
    scheduler: str | None = None, workers: int = 2, *, pinned: bool = True
) -> Iterator[Any]:
    """A dask.distributed client: connected to the scheduler at ``scheduler`` (e.g. "tcp://10.0.0.5:8786", a
    real cluster whose workers were started with `PINNED` in their environment), or to a new `LocalCluster` of
    ``workers`` processes with one thread each (``pinned``: with `PINNED`'s environment). A script that makes a
    LocalCluster must guard its entry point with ``if __name__ == "__main__":`` (workers are spawned)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            # not the default client: a failed one would stay registered, and xarray would then take its file
            # locks from a scheduler that does not exist (every later netCDF write in the process failed)
            client = Client(scheduler, set_as_default=False)
        except (OSError, ValueError, TypeError) as e:  # a malformed or unreachable address
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EstimInputError(f"--scheduler {scheduler}: cannot connect ({detail})") from e
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            **({"env": dict(PINNED)} if pinned else {}),
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextlib.contextmanager
def optional_client(workers: int = 0, scheduler: str | None = None) -> Iterator[Any]:
    """A study script's ``--workers N`` and ``--scheduler ADDRESS``: a client of the scheduler, of a new
    LocalCluster of ``workers`` pinned processes, or None (``workers`` 0 and no scheduler: the study runs in
    this process, one dataset after another)."""
    if scheduler is None and workers <= 0:
        yield None
        return
    with study_client(scheduler, max(workers, 1)) as client:
        yield client


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (datasets, replicates, draws, N)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def add_resume_arguments(parser: Any, resume_help: str) -> None:
    """``--resume`` and ``--force`` on a study script whose ``--out`` collects rows (`estim.resume`)."""
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --out without --resume (without it such a file is refused, so that a "
        "forgotten --resume does not lose its rows)",
    )


def check_arguments(parser: Any, args: Any, *outputs: str) -> None:
    """Refuse, as argparse errors (exit 2) before any work: ``--workers`` negative or above 4 × the cores,
    ``--workers`` with ``--scheduler`` (one would silently win), ``--resume`` with ``--force``, and each output
    option named in ``outputs`` (e.g. "out", "report") whose path cannot be written (`estim.io.unwritable`)."""
    workers = getattr(args, "workers", 0)
    most = 4 * (os.cpu_count() or 1)
    if workers < 0:
        parser.error(
            f"--workers {workers}: a number of worker processes is at least 0 (0: in this process)"
        )
    if workers > most:
        parser.error(f"--workers {workers}: more than 4 × this machine's {most // 4} cores")
    if workers and getattr(args, "scheduler", None):
        parser.error(
            "--workers and --scheduler: give one (a LocalCluster of N workers, or a scheduler's)"
        )
    if getattr(args, "resume", False) and getattr(args, "force", False):
        parser.error("--resume and --force: give one (continue --out, or replace it)")
    for name in outputs:
        path = getattr(args, name, None)
        if path is None:
            continue
        if Path(path).is_dir() and name != "plots":
            parser.error(f"--{name} {path}: a folder, not a file")
        target = Path(path) / "x.png" if name == "plots" else Path(path)
        why = unwritable(target)
        if why is not None:
            parser.error(f"--{name} {path}: cannot be written: {why}")


def run_script(main: Callable[[], Any]) -> None:
    """Run a study script's ``main``: a refusal of its input (`EstimInputError`: a file it must not resume, say)
    is one line and exit 2, as argparse's errors are, not a traceback."""
    try:
        main()
    except EstimInputError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def add_arguments(parser: Any) -> None:
    """``--workers`` and ``--scheduler`` on a study script's argparse parser."""
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the datasets as tasks on a LocalCluster of this many one-thread worker processes "
        "(0: in this process, one after another)",
    )
    parser.add_argument(
        "--scheduler",
        help="run the datasets on the dask scheduler at this address (e.g. tcp://HOST:8786) instead",
    )


def worker_cache(key: Hashable, make: Callable[[], Any]) -> Any:
    """``make()`` once per worker process and ``key`` (e.g. a compiled model of one family and spec), then the
    same object for every later task on that worker; outside a worker, once per process."""
    store = _CACHE
    try:
        from distributed import get_worker

        worker = get_worker()
        store = worker.__dict__.setdefault("_estim_cache", {})
    except (ImportError, ValueError):  # not in a worker
        pass
    if key not in store:
        store[key] = make()
    return store[key]


_CACHE: dict[Hashable, Any] = {}


def run_tasks(
    client: Any,
    tasks: Sequence[Any],
    work: Callable[[Any], pd.DataFrame],
    *,
    key: Callable[[Any], Hashable],
    done: set[Hashable] | None = None,
    rows_so_far: pd.DataFrame | None = None,
    out: str | Path | None = None,
    describe: Callable[[pd.DataFrame], str] | None = None,
    name: str = "dataset",
    settings: str | None = None,
) -> pd.DataFrame:
    """Run ``work(task)`` for every task whose ``key(task)`` is not in ``done``, as tasks on ``client``,
    collecting the frames in the order they finish, each with a ``worker`` column (the address of the worker
    that ran it). With ``out``, after every finished task the CSV is
    rewritten (atomically) with ``rows_so_far`` and every frame so far; with ``describe``, a line per finished
    task on stderr; with ``settings``, each frame gets that ``settings`` column (`estim.resume`).
    Returns all rows (``rows_so_far`` first). A task that raises stops the study with its
    error (the study's ``work`` catches what it wants recorded as a row); a lost worker's task is rerun
    elsewhere by the scheduler."""
    from distributed import as_completed

    done = done or set()
    todo = [t for t in tasks if key(t) not in done]
    frames = [rows_so_far] if rows_so_far is not None and len(rows_so_far) else []
    if not todo:
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    start = time.perf_counter()
    futures = client.map(
        work, todo, pure=False, key=[f"{name}-{i}-{_label(key(t))}" for i, t in enumerate(todo)]
    )
    for number, future in enumerate(as_completed(futures), start=1):
        frame = future.result()
        if settings is not None:
            frame = frame.assign(settings=settings)
        # which worker ran it (its address): provenance, and how the tasks spread
        holders = client.who_has(future).get(future.key, ())
        frame = frame.assign(worker=str(holders[0]) if holders else "")
        frames.append(frame)
        future.release()
        if out is not None:
            write_rows(pd.concat(frames, ignore_index=True), out)
        if describe is not None:
            print(
                f"{name} {number}/{len(todo)} ({time.perf_counter() - start:.0f} s): "
                f"{describe(frame)}",
                flush=True,
                file=sys.stderr,
            )
    return pd.concat(frames, ignore_index=True)


def _label(key: Hashable) -> str:
    text = "-".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)
