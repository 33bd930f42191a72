"""Studies as tasks on dask.distributed (estim/studies/distributed.py): rows written as tasks finish, a study
resumed without redoing finished datasets, a killed worker's task rerun elsewhere, pinned one-thread workers,
and the border studies dispatched through a client."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from estim.studies import distributed as D

# the workers are spawned processes: they get this module's task functions by value, not by import
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with D.study_client(workers=2) as c:
        yield c


def _task(seed: int) -> pd.DataFrame:
    """A dataset of a toy study: three rows, the worker's process id and pinned environment."""
    rng = np.random.default_rng(seed)
    from estim.run.sampler import available_threads

    return pd.DataFrame(
        {
            "sim_seed": seed,
            "row": range(3),
            "value": rng.normal(size=3),
            "pid": os.getpid(),
            "threads": available_threads(),
            "omp": os.environ.get("OMP_NUM_THREADS", ""),
        }
    )


def _slow_task(seed: int) -> pd.DataFrame:
    time.sleep(0.3)
    return _task(seed)


def test_the_tasks_run_on_pinned_workers_and_every_row_is_written(client, tmp_path):
    out = tmp_path / "study.csv"
    df = D.run_tasks(client, list(range(8)), _slow_task, key=lambda s: s, out=out)
    assert sorted(df["sim_seed"].unique()) == list(range(8)) and len(df) == 24
    # the file holds what the call returned (order: as the tasks finished)
    written = pd.read_csv(out)
    assert len(written) == 24 and set(written["sim_seed"]) == set(range(8))
    # both workers took tasks, each with one thread for the fit and for the numerical libraries
    assert df["pid"].nunique() == 2 and os.getpid() not in set(df["pid"])
    assert df.groupby("worker")["pid"].nunique().eq(1).all() and df["worker"].nunique() == 2
    assert set(df["threads"]) == {1} and set(df["omp"]) == {"1"}
    # the same seed gives the same rows, whichever worker ran it
    again = D.run_tasks(client, [3], _task, key=lambda s: s)
    np.testing.assert_array_equal(again["value"], df[df["sim_seed"] == 3]["value"])


def test_a_resumed_study_skips_the_finished_datasets(client, tmp_path):
    out = tmp_path / "study.csv"
    first = D.run_tasks(client, [0, 1, 2], _task, key=lambda s: s, out=out)
    done = set(first["sim_seed"])
    df = D.run_tasks(
        client, list(range(5)), _task, key=lambda s: s, done=done, rows_so_far=first, out=out
    )
    assert sorted(df["sim_seed"].unique()) == [0, 1, 2, 3, 4]
    # the finished rows are kept as they were, not recomputed (pids of the first run)
    kept = df[df["sim_seed"] < 3]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), first.reset_index(drop=True))
    assert len(pd.read_csv(out)) == 15
    # nothing left to do: no task, the rows so far
    same = D.run_tasks(client, [0, 1], _never, key=lambda s: s, done={0, 1}, rows_so_far=first)
    assert len(same) == len(first)


def _never(seed: int) -> pd.DataFrame:
    raise AssertionError(f"dataset {seed} was already done and must not run again")


def _dies_once(args: tuple[int, str]) -> pd.DataFrame:
    """Kills its worker process the first time it runs (the marker file says whether it ran)."""
    seed, marker = args
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(1)  # no cleanup, no exception: as a killed process
    return _task(seed)


def test_a_killed_workers_task_is_run_again_elsewhere(client, tmp_path):
    marker = tmp_path / "killed.pid"
    tasks = [(0, str(tmp_path / "never")), (1, str(marker)), (2, str(tmp_path / "never"))]
    (tmp_path / "never").write_text("")
    df = D.run_tasks(client, tasks, _dies_once, key=lambda t: t[0], out=tmp_path / "s.csv")
    assert sorted(df["sim_seed"].unique()) == [0, 1, 2]
    killed = int(marker.read_text())
    # the task finished on another process than the one it killed (the nanny restarts a dead worker)
    assert killed not in set(df[df["sim_seed"] == 1]["pid"])
    assert len(pd.read_csv(tmp_path / "s.csv")) == 9


def test_a_task_that_raises_stops_the_study_with_its_error(client):
    def broken(seed: int) -> pd.DataFrame:
        raise RuntimeError(f"dataset {seed} broke")

    with pytest.raises(RuntimeError, match="dataset 1 broke"):
        D.run_tasks(client, [1], broken, key=lambda s: s)


def test_the_worker_cache_makes_once_per_process():
    made = []
    key = ("test_the_worker_cache", id(made))
    for _ in range(3):
        D.worker_cache(key, lambda: made.append(1) or len(made))
    assert made == [1]


def test_the_border_studies_run_their_designs_through_a_client(monkeypatch, tmp_path):
    """The grid through an in-process client (threads: the mocked dataset is seen by its workers): the same
    rows as without dask, written as they finish, and resumed."""
    from distributed import Client

    import estim.studies.border_misspecification as M
    import estim.studies.border_recovery as R

    def fake_rows(seed, changes, *, dataset=0, **_):
        return pd.DataFrame(
            {
                "sim_retry": [changes["retry_probability"]],
                "sim_frailty": [changes["apprehension_frailty_sd"]],
                "sim_seed": [seed],
                "dataset": [dataset],
                "section": ["a"],
                "year": [2020],
                "error": [""],
            }
        )

    monkeypatch.setattr(R, "dataset_rows", fake_rows)
    out = tmp_path / "grid.csv"
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        df = M.misspecification_study((0.6, 1.0), (0.0,), n_seeds=3, seed=10, out=out, client=c)
        key = ["sim_retry", "sim_seed"]
        serial = M.misspecification_study((0.6, 1.0), (0.0,), n_seeds=3, seed=10)
        # the same rows, and each says which worker ran it
        assert (
            df["worker"].str.startswith("inproc://").all() or df["worker"].str.contains("://").all()
        )
        pd.testing.assert_frame_equal(
            df.drop(columns="worker").sort_values(key).reset_index(drop=True),
            serial.sort_values(key).reset_index(drop=True),
        )
        assert len(pd.read_csv(out)) == 6
        more = M.misspecification_study(
            (0.6, 1.0), (0.0,), n_seeds=4, seed=10, out=out, resume=True, client=c
        )
    assert len(more) == 8 and sorted(more["sim_seed"].unique()) == [10, 11, 12, 13]


def test_a_recovery_study_on_workers_gives_the_serial_rows_and_resumes(client, tmp_path):
    """Each worker compiles the family's model once and fits its datasets: the same seeds give the same
    intervals as in this process, and a resumed study fits only what is missing."""
    from estim.studies import recovery

    settings = dict(n_datasets=3, seed=11, draws=200, tune=200, backend="jax")
    serial = recovery.recovery_study("ztpoisson", **settings)
    out = tmp_path / "rec.csv"
    first = recovery.recovery_study(
        "ztpoisson", **{**settings, "n_datasets": 2}, partial_out=str(out), client=client
    )
    assert first["seed"].tolist() == [11, 12]
    df = recovery.recovery_study(
        "ztpoisson", **settings, partial_out=str(out), resume=True, client=client
    )
    assert df["seed"].tolist() == [11, 12, 13] and list(df.columns) == [
        *recovery.COLUMNS,
        "settings",
        "worker",
    ]
    columns = ["n_true", "n_observed", "n_median", "n_q05", "n_q95", "covered"]
    pd.testing.assert_frame_equal(df[columns], serial[columns], check_dtype=False)
    # the two resumed rows are those of the first run (their fit times), not fits made again
    np.testing.assert_array_equal(df["seconds"][:2], first["seconds"])
    assert len(pd.read_csv(out)) == 3


def test_the_sensitivity_variants_run_as_tasks(monkeypatch, tmp_path):
    """`estim sensitivity --workers`: the variants fitted on a client's workers give the rows of the serial
    run, in the variants' order (the fit mocked: an in-process client's threads see the mock)."""
    import dataclasses

    import xarray as xr
    from distributed import Client

    import estim.studies.sensitivity as S
    from estim.paths import REPO_ROOT
    from estim.run.diagnostics import GateVerdict
    from estim.run.fit import FitResult
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    design = S.design_of(spec)

    def fake_fit(vspec, out, force, progress, **_):
        time.sleep(0.1 * (len(vspec.name) % 3))  # finish out of order
        tree = xr.DataTree(dataset=xr.Dataset(attrs={"median": float(len(vspec.name))}))
        return FitResult(vspec, out, tree, GateVerdict(True), False, 1.0, ({"attempt": 1},))

    def headline(tree, data, prob):
        m = tree.attrs["median"]
        return {"median": m, "lower": m - 1, "upper": m + 1}

    def fake_grouped_fit(vspec, groups, *, out, force, progress, **_):  # the frailty variants
        return fake_fit(vspec, out, force, progress)

    monkeypatch.setattr(S, "fit", fake_fit)
    monkeypatch.setattr(S, "grouped_fit", fake_grouped_fit)
    monkeypatch.setattr(S, "load_data", lambda spec: None)
    monkeypatch.setattr(S, "design_of", lambda spec: dataclasses.replace(design, headline=headline))
    serial = S.prior_sensitivity(spec, out_dir=tmp_path)
    groups = {r["variant"]: r["chain_groups"] for r in serial}
    assert {k for k, g in groups.items() if g > 1} == {"frailty_0.5", "frailty_estimated"}
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        parallel = S.prior_sensitivity(spec, out_dir=tmp_path, client=c)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "fit_seconds"} for r in rows]  # noqa: E731
    assert strip(parallel) == strip(serial)
    assert [r["variant"] for r in parallel] == list(design.variants)


def test_a_scheduler_address_serves_the_study_and_a_bad_one_leaves_no_client_behind(tmp_path):
    # a failed Client("nonsense://x") stayed the default client, and every later netCDF write in the process
    # asked that scheduler for a lock (four integration tests failed after the bad-address test)
    import dask
    import xarray as xr
    from distributed import LocalCluster

    from estim.errors import EstimInputError
    from estim.studies.distributed import study_client

    before = dask.config.get("scheduler", None)
    with pytest.raises(EstimInputError, match="cannot connect"), study_client("nonsense://x"):
        pass
    assert (
        dask.config.get("scheduler", None) == before
    )  # was "dask.distributed", for a client that failed
    xr.Dataset({"x": ("i", [1, 2])}).to_netcdf(tmp_path / "after.nc", engine="scipy")
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        study_client(cluster.scheduler_address) as client,
    ):
        assert client.submit(sum, [1, 2]).result() == 3
