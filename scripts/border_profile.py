"""Where the border fit's time goes (issue 18): the cost of one gradient of the log posterior, whole and term
by term, and the stages of a cold fit (statistics, compile, warm-up, sampling, generated quantities, gate,
saving).

Usage: `./run python scripts/border_profile.py [--spec models/border.toml] [--repeats 200] [--fit]
[--out FILE.json]`. Without ``--fit`` only the gradients are timed (a minute); ``--fit`` also fits the spec
cold (nothing cached; the fit is written to a temporary directory) and times each stage from the fit's own
progress lines. Times are wall and CPU seconds of this process: on a shared machine compare the terms as
ratios measured in one run.

Each term's gradient is JAX's ``value_and_grad`` of that term's log density alone (``model.logp(vars=[term])``)
with respect to every free parameter on the unconstrained scale, compiled with ``jax.jit``, timed at the
model's initial point after a warm-up call; "priors" are the free variables' own terms.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def gradient_costs(
    model: Any, repeats: int, terms: tuple[str, ...] | None = None
) -> dict[str, dict[str, float]]:
    """Wall and CPU milliseconds of one value-and-gradient call, whole model and per observed term."""
    import jax
    from pymc.model.transform.optimization import freeze_dims_and_data
    from pymc.sampling.jax import get_jaxified_graph

    frozen = freeze_dims_and_data(model)
    free = frozen.value_vars
    point = frozen.initial_point()
    values = [np.asarray(point[v.name], dtype="float64") for v in free]
    terms_of: dict[str, list[Any]] = {"whole": frozen.free_RVs + frozen.observed_RVs}
    terms_of.update({rv.name: [rv] for rv in frozen.observed_RVs})
    terms_of["priors"] = list(frozen.free_RVs)
    out = {}
    for name, rvs in terms_of.items():
        if terms is not None and name not in terms:
            continue
        logp = frozen.logp(vars=rvs)
        fn = get_jaxified_graph(inputs=free, outputs=[logp])

        def total(*xs: Any, fn: Any = fn) -> Any:
            return fn(*xs)[0]

        grad = jax.jit(jax.value_and_grad(total, argnums=tuple(range(len(free)))))
        began = time.perf_counter()
        jax.block_until_ready(grad(*values))  # compile
        compile_s = time.perf_counter() - began
        wall, cpu = time.perf_counter(), cpu_seconds()
        done = 0
        # `repeats` calls, or fewer (at least 3) once 5 s have passed: a large border's exact law is slow
        while done < repeats and (done < 3 or time.perf_counter() - wall < 5.0):
            jax.block_until_ready(grad(*values))
            done += 1
        out[name] = {
            "wall_ms": 1000 * (time.perf_counter() - wall) / done,
            "cpu_ms": 1000 * (cpu_seconds() - cpu) / done,
            "calls": done,
            "compile_s": compile_s,
        }
    return out


@contextlib.contextmanager
def _plausible_totals(high: float) -> Iterator[None]:
    """Monthly totals above the validation's plausible 5,000 a cell are refused; a border scaled up ×100 has
    them, so the bound is lifted while its records are read (and restored after)."""
    from estim.records.schemas import SCHEMAS

    schema = SCHEMAS["apprehension_totals"]
    columns = tuple(
        dataclasses.replace(c, plausible=(0, high)) if c.name == "apprehensions" else c
        for c in schema.columns
    )
    SCHEMAS["apprehension_totals"] = dataclasses.replace(schema, columns=columns)
    try:
        yield
    finally:
        SCHEMAS["apprehension_totals"] = schema


def numba_gradient_cost(model: Any, repeats: int) -> dict[str, float]:
    """Wall and CPU milliseconds of one value-and-gradient call of the whole model compiled by PyTensor's
    numba backend (what nutpie's ``backend="numba"`` samples with), and its compile time."""
    import pytensor
    from pymc.model.transform.optimization import freeze_dims_and_data

    frozen = freeze_dims_and_data(model)
    free = frozen.value_vars
    logp = frozen.logp()
    fn = pytensor.function(free, [logp, *pytensor.grad(logp, free)], mode="NUMBA")
    point = frozen.initial_point()
    values = [np.asarray(point[v.name], dtype="float64") for v in free]
    began = time.perf_counter()
    fn(*values)
    compile_s = time.perf_counter() - began
    wall, cpu = time.perf_counter(), cpu_seconds()
    done = 0
    while done < repeats and (done < 3 or time.perf_counter() - wall < 5.0):
        fn(*values)
        done += 1
    return {
        "wall_ms": 1000 * (time.perf_counter() - wall) / done,
        "cpu_ms": 1000 * (cpu_seconds() - cpu) / done,
        "calls": done,
        "compile_s": compile_s,
    }


def scaled_records(scale: float, folder: Path, seed: int) -> dict[str, Any]:
    """Simulate the border with every journey category's level (β_c) raised by log(scale) (the bypassers, tied
    to the legal foreign flow, unchanged), write its records to `folder`, and time the statistics step
    (reading the records and reducing them to the border model's data). Returns the data and the figures."""
    from estim.families.border.data_kind import BORDER_RECORDS
    from estim.records import DEFAULT_KEY
    from estim.records.load import load_records
    from estim.simulate import SimulationConfig, simulate, write_simulation

    config = SimulationConfig()
    levels = {
        c: (v + float(np.log(scale)) if v is not None else None)
        for c, v in config.category_effect.items()
    }
    config = dataclasses.replace(config, category_effect=levels)
    t = time.perf_counter()
    sim = simulate(seed=seed, config=config)
    write_simulation(sim, folder)
    simulate_s = time.perf_counter() - t
    t, c = time.perf_counter(), cpu_seconds()
    with _plausible_totals(float("inf")):
        records = load_records(folder, key=DEFAULT_KEY)
    data = BORDER_RECORDS.from_records(records, {})
    statistics = {"wall_s": time.perf_counter() - t, "cpu_s": cpu_seconds() - c}
    surveyed = data["surveyed"].values
    totals = data["apprehensions"].values[~surveyed]
    return {
        "data": data,
        "scale": scale,
        "simulate_and_write_s": simulate_s,
        "apprehension_records": int(len(records.apprehensions)),
        "statistics_step": statistics,
        "unsurveyed_cells": int(totals.size),
        "unsurveyed_total": int(totals.sum()),
        "largest_total": int(totals.max()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def growth(scales: list[float], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Per scale: the statistics step and the gradient cost with the exact compound law everywhere and with
    the saddlepoint above `SADDLEPOINT_ABOVE` (whole model and the unsurveyed totals' term)."""
    from estim.families.border.model import OBSERVED, build_border

    rows = []
    for scale in scales:
        with tempfile.TemporaryDirectory() as tmp:
            row = scaled_records(scale, Path(tmp), seed)
        data = row.pop("data")
        for law, above in (("saddlepoint", 64), ("exact", False)):
            model = build_border(data, saddlepoint_above=above)
            costs = gradient_costs(model, repeats, terms=("whole", OBSERVED))
            row[law] = costs
        rows.append(row)
        print(
            f"scale {scale:g}: {row['apprehension_records']:,} apprehension records, statistics step "
            f"{row['statistics_step']['wall_s']:.1f} s wall ({row['statistics_step']['cpu_s']:.1f} CPU); "
            f"unsurveyed Σk {row['unsurveyed_total']:,} (largest {row['largest_total']:,}); gradient ms "
            f"whole/totals: saddlepoint {row['saddlepoint']['whole']['cpu_ms']:.2f}/"
            f"{row['saddlepoint'][OBSERVED]['cpu_ms']:.2f}, exact {row['exact']['whole']['cpu_ms']:.2f}/"
            f"{row['exact'][OBSERVED]['cpu_ms']:.2f} (CPU)",
            flush=True,
        )
    return rows


def fit_stages(spec_path: str, keep: str | None = None) -> dict[str, Any]:
    """A cold fit of the spec, its stages timed from the fit's progress lines (wall and CPU seconds)."""
    from estim.run.fit import fit
    from estim.run.spec import read_spec

    marks: list[tuple[str, float, float]] = []

    def progress(line: str) -> None:
        marks.append((line, time.perf_counter(), cpu_seconds()))

    stage_of = (
        ("reading the data", "statistics"),
        ("compiling the model", "compile"),
        ("compiled in", "warm-up"),
        ("sampling:", "sampling"),
        ("generated quantities", "generated quantities and checks"),
        ("diagnostics gate", "gate"),
        ("retrying with", "retries (every stage of the later attempts)"),
        ("saving", "saving"),
    )
    spec = read_spec(spec_path)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(keep) if keep else Path(tmp) / "fit.nc"
        result = fit(spec, out=out, force=True, progress=progress)
    end, cpu1 = time.perf_counter(), cpu_seconds()
    # the first line matching each stage opens it; it runs until the next stage opens
    opened: list[tuple[str, float, float]] = []
    for line, t, c in marks:
        for key, stage in stage_of:
            if key in line and stage not in {s for s, *_ in opened}:
                opened.append((stage, t, c))
    opened.append(("end", end, cpu1))
    stages = {
        a[0]: {"wall_s": round(b[1] - a[1], 2), "cpu_s": round(b[2] - a[2], 2)}
        for a, b in zip(opened, opened[1:], strict=False)
    }
    stats = result.idata["sample_stats"]
    steps = int(stats["n_steps"].sum()) if "n_steps" in stats else None
    return {
        "total": {"wall_s": round(end - start, 2), "cpu_s": round(cpu1 - cpu0, 2)},
        "stages": stages,
        "passed": bool(result.passed),
        "attempts": len(result.attempts),
        "sampling_leapfrog_steps": steps,
        "draws": int(stats.sizes["chain"] * stats.sizes["draw"]),
    }


def threshold_costs(
    spec: Any, thresholds: list[int], rounds: int, repeats: int
) -> list[dict[str, Any]]:
    """CPU and wall ms of one value-and-gradient call, whole model and the unsurveyed totals' term, with the
    saddlepoint law above each threshold; rounds interleaved so that a busy spell hits every threshold."""
    from estim.run.data import family_of, load_data

    data = load_data(spec)
    family = family_of(spec)
    rows = []
    for round_ in range(rounds):
        for threshold in thresholds:
            options = {**spec.options, "saddlepoint_above": threshold}
            model = family.build(data, dict(spec.priors), **options)
            costs = gradient_costs(model, repeats, terms=("whole", "apprehensions"))
            rows.append({"threshold": threshold, "round": round_, **costs})
            print(
                f"saddlepoint above {threshold:>5}, round {round_}: "
                + ", ".join(
                    f"{k} {v['cpu_ms']:.2f} CPU ms ({v['wall_ms']:.2f} wall)"
                    for k, v in costs.items()
                ),
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="models/border.toml")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--fit", action="store_true", help="also time a cold fit, stage by stage")
    parser.add_argument(
        "--numba",
        action="store_true",
        help="also time the whole gradient on PyTensor's numba backend",
    )
    parser.add_argument("--keep", metavar="FIT.nc", help="save that fit here (default: discarded)")
    parser.add_argument(
        "--scale",
        type=float,
        nargs="+",
        help="instead: simulate borders with journeys × each factor (167: ~10 M apprehension records) and "
        "time the statistics step and the gradient, exact law against saddlepoint",
    )
    parser.add_argument(
        "--thresholds",
        type=int,
        nargs="+",
        help="instead: time the gradient (whole and the unsurveyed totals' term) with the saddlepoint "
        "approximation above each of these totals, interleaved over --rounds rounds",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --thresholds")
    parser.add_argument("--seed", type=int, default=20061, help="simulator seed for --scale")
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args(argv)

    from estim.run.data import family_of, load_data
    from estim.run.spec import read_spec

    if args.scale:
        rows = growth(args.scale, args.repeats, args.seed)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1, default=float))
        return 0
    spec = read_spec(args.spec)
    if args.thresholds:
        rows = threshold_costs(spec, args.thresholds, args.rounds, args.repeats)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1, default=float))
        return 0
    t, c = time.perf_counter(), cpu_seconds()
    data = load_data(spec)
    statistics = {"wall_s": time.perf_counter() - t, "cpu_s": cpu_seconds() - c}
    t = time.perf_counter()
    model = family_of(spec).build(data, dict(spec.priors), **spec.options)
    build = time.perf_counter() - t
    report: dict[str, Any] = {
        "spec": args.spec,
        "statistics_step": statistics,
        "build_s": build,
        "gradient": gradient_costs(model, args.repeats),
    }
    if args.numba:
        report["gradient_numba"] = numba_gradient_cost(model, args.repeats)
    print(f"statistics step {statistics['wall_s']:.1f} s wall; model built in {build:.1f} s")
    print(f"{'term':<28} {'wall ms':>8} {'cpu ms':>8}")
    for name, cost in report["gradient"].items():
        print(f"{name:<28} {cost['wall_ms']:8.2f} {cost['cpu_ms']:8.2f}")
    if args.numba:
        cost = report["gradient_numba"]
        print(
            f"{'whole, numba backend':<28} {cost['wall_ms']:8.2f} {cost['cpu_ms']:8.2f}"
            f"   (compiled in {cost['compile_s']:.0f} s; JAX: {report['gradient']['whole']['compile_s']:.0f} s)"
        )
    if args.fit:
        report["fit"] = fit_stages(args.spec, args.keep)
        f = report["fit"]
        print(
            f"cold fit: {f['total']['wall_s']:.1f} s wall, {f['total']['cpu_s']:.1f} s CPU; "
            f"gate {'passed' if f['passed'] else 'FAILED'} after {f['attempts']} attempt(s)"
        )
        for stage, cost in f["stages"].items():
            print(f"  {stage:<34} {cost['wall_s']:8.1f} s wall {cost['cpu_s']:8.1f} s CPU")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
