"""The Stan race (issue 18): the border model in Stan (benchmarks/stan/border.stan, PyStan 3) against estim
(PyMC + nutpie) on the shipped data with the same priors, chains, draws, warm-up and target acceptance.

Usage: `./run python scripts/stan_race.py [--spec models/border.toml] [--out paper/inputs/stan_race.json]
[--workdir out/stan_race] [--reuse estim,stan]`. It needs the Stan venv (benchmarks/stan/README.md):
PyStan runs there, in a subprocess (benchmarks/stan/run_stan.py), fed the data as JSON.

For each tool: compile time (estim: the PyMC model built and compiled by nutpie with the spec's backend;
Stan: ``stan.build`` into an empty httpstan cache, i.e. stanc and the C++ compile), warm-up and sampling
time (the slowest chain's, each by its sampler's own clock: Stan's "Elapsed Time", nutpie's chain runtime
interpolated at the end of tuning from the progress callback of `estim.run.sampler.draw`), the min bulk ESS
over every element of every sampled parameter (`model.free_RVs`, as a fit's posterior holds them; ArviZ),
ESS/s (min bulk ESS / sampling seconds) and the wall time to 400 ESS (compile + warm-up + other +
sampling × 400 / min ESS, "other" being the sampling call's wall time beyond the chains' own clocks:
start-up, JIT, collecting the draws); and estim's ratio to Stan on each. Then the posterior agreement: for
every scalar element, z = (mean_estim − mean_Stan) / √(MCSE_estim² + MCSE_Stan²); it passes when at most 5 %
of |z| exceed 2 and none exceeds 4. The posteriors compared are the raw (slab) draws: r continuous, before
the averaging with r = 1 (`estim.families.border.repeated_trials`), which is post-processing.

estim samples through its own path (`estim.run.sampler.compile_model` and `draw`, as `estim.run.fit` does,
with the fit's NUTS seed); the generated quantities, gate and saving that a full fit adds are not timed.
`stan_data` and `unconstrained` are also used by tests/benchmarks/test_stan_border.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
STAN_PYTHON = ROOT / ".venv-stan" / "bin" / "python"
RUNNER = ROOT / "benchmarks" / "stan" / "run_stan.py"
SPEC = ROOT / "models" / "border.toml"
TARGET_ESS = 400
GOALS = {"ess_per_second": 5.0, "wall_to_400_ess": 1.0 / 3.0}  # estim / Stan

STAN_REVISION = 6
"""The border model's revision border.stan writes out (`estim.families.border.revision`)."""
STAN_OPTIONS = {"terrain_journeys": True}
"""The shipped spec's [options], which border.stan writes out."""

# The priors border.stan writes out (DEFAULT_PRIORS as of this benchmark): checked before a race or test, so
# that a change of estim's defaults is not raced against a stale Stan program.
STAN_PRIORS = {
    "category_level": ("Normal", {"mu": 2.0, "sigma": 2.0}),
    "section_effect": ("ZeroSumNormal", {"sigma": "section_sd"}),
    "section_sd": ("HalfNormal", {"sigma": 0.5}),
    "season": ("Normal", {"mu": 0.0, "sigma": 0.5}),
    "trend": ("Normal", {"mu": 0.0, "sigma": 0.25}),
    "log_policy_effect": ("Normal", {"mu": 0.0, "sigma": 0.5}),
    "population_elasticity": ("Normal", {"mu": 1.0, "sigma": 0.5}),
    "overdispersion": ("HalfNormal", {"sigma": 0.5}),
    "bypass_eta0": ("Normal", {"mu": -8.0, "sigma": 2.0}),
    "bypass_eta1": ("Normal", {"mu": 0.0, "sigma": 2.0}),
    "hazard_section": ("Normal", {"mu": "hazard_mean", "sigma": "hazard_section_sd"}),
    "hazard_mean": ("Normal", {"mu": -0.5, "sigma": 1.0}),
    "hazard_section_sd": ("HalfNormal", {"sigma": 0.3}),
    "hazard_terrain": ("ZeroSumNormal", {"sigma": 0.5}),
    "journey_terrain": ("ZeroSumNormal", {"sigma": 0.5}),
    "hazard_category": ("ZeroSumNormal", {"sigma": 0.5}),
    "hazard_detector": ("Normal", {"mu": 0.0, "sigma": 1.5}),
    "technical_trend": ("Normal", {"mu": 0.0, "sigma": 0.2}),
    "retry_probability": ("Beta", {"alpha": 1.0, "beta": 1.0}),
    "register_coverage": ("LogitNormal", {"mu": -3.0, "sigma": 2.5}),
    "other_sightings": ("HalfNormal", {"sigma": 0.5}),
}


# ----------------------------------------------------------------------------------------------------------
# The model and its data, as the fit makes them
# ----------------------------------------------------------------------------------------------------------


def load(spec_path: Path = SPEC) -> tuple[Any, Any, xr.Dataset]:
    """The spec, its family and the xarray Dataset `estim.run.fit` builds the model from."""
    from estim.run.data import family_of, load_data
    from estim.run.spec import read_spec

    spec = read_spec(spec_path)
    return spec, family_of(spec), load_data(spec)


def check_spec(spec: Any) -> None:
    """border.stan is the shipped spec's border model at one revision: the model's revision, the spec's
    options and its priors must be the ones the Stan program writes out."""
    from estim.families.border.model import DEFAULT_PRIORS
    from estim.priors import merge_priors

    if spec.family != "border":
        raise SystemExit(f"{spec.name}: not a border spec")
    from estim.families.border.revision import MODEL_REVISION

    if MODEL_REVISION != STAN_REVISION:
        raise SystemExit(
            f"border.stan is the border model at revision {STAN_REVISION}, estim's is at {MODEL_REVISION} "
            "(estim/families/border/revision.py): bring border.stan up to date first"
        )
    if dict(spec.options) != STAN_OPTIONS:
        raise SystemExit(
            f"{spec.name}: [options] {dict(spec.options)}; border.stan is the model with {STAN_OPTIONS} only"
        )
    priors = merge_priors(DEFAULT_PRIORS, spec.priors)
    stated = {
        k: (p.distribution, dict(p.parameters)) for k, p in priors.items() if k != "frailty_sd"
    }
    if stated != STAN_PRIORS:
        wrong = sorted(
            k for k in set(stated) | set(STAN_PRIORS) if stated.get(k) != STAN_PRIORS.get(k)
        )
        raise SystemExit(f"priors differ from border.stan's: {', '.join(wrong)}")


def stan_data(data: xr.Dataset) -> dict[str, Any]:
    """border.stan's data from the border model's Dataset (`estim.families.border.data.border_data`): the same
    cells, counts and covariates `build_border` reads, cells numbered s + S t + S T c + 1 (0-based s, t, c)."""
    from estim.families.border.data import (
        BYPASSER,
        CATEGORIES,
        DETECTORS,
        RESIDENT,
        harmonics,
        no_bypass_flow,
    )
    from estim.families.border.kernels import SADDLEPOINT_ABOVE
    from estim.families.border.retry import RIDGE_COVERAGE_SLOPE, RIDGE_HAZARD_SLOPE

    n_s, n_t, n_c = (data.sizes[d] for d in ("section", "month", "category"))
    if tuple(data["category"].values) != CATEGORIES or CATEGORIES[-1] != BYPASSER:
        raise ValueError("categories out of the model's order")
    cell = (
        np.arange(n_s)[:, None, None]
        + n_s * np.arange(n_t)[None, :, None]
        + n_s * n_t * np.arange(n_c)[None, None, :]
        + 1
    )
    surveyed = data["surveyed"].values[:, None, None]
    no_flow = no_bypass_flow(data)
    # surveyed sections: A = Σ_k f_k and Σ_k (k − 1) f_k per cell
    freq = data["frequency"].values
    k = data["k"].values
    journeys, repeats = freq.sum(axis=-1), (freq * (k - 1)).sum(axis=-1)
    surv = surveyed & ~no_flow
    if freq[surveyed[:, 0, 0]][no_flow[surveyed[:, 0, 0]]].any():
        raise ValueError("repeat frequencies in a no-flow bypasser cell")
    if (journeys[surv] != data["apprehended_journeys"].values[surv]).any():
        raise ValueError("apprehended journeys differ from the frequencies' sum")
    # unsurveyed sections: the totals
    totals = data["apprehensions"].values
    unsurveyed = ~surveyed & ~no_flow
    zero, pos = unsurveyed & (totals == 0), unsurveyed & (totals > 0)
    if pos.any() and totals[pos].max() > SADDLEPOINT_ABOVE:
        raise ValueError(
            f"a total above {SADDLEPOINT_ABOVE}: border.stan has the exact law only, not the saddlepoint"
        )
    # linkage: two in-country lists (patterns none, 1, 2, both)
    lists = [str(x) for x in data["in_country_list"].values]
    linked, before = data["linked_journeys"].values, data["before_journeys"].values
    if len(lists) != 2 or linked.shape[-1] != 4:
        raise ValueError(f"border.stan links to exactly two in-country lists, got {lists}")
    link = surveyed & (linked.sum(axis=-1) > 0)
    if not link.any():
        raise ValueError("no linkage: border.stan needs the registers (r is not identified)")
    terrain_names, terrain_of = np.unique(data["terrain"].values.astype(str), return_inverse=True)
    if len(terrain_names) < 2:
        raise ValueError("one terrain: the model drops the terrain effect, border.stan does not")
    flow = data["land_foreign_crossings"].values.astype(float)
    wait = data["land_mean_wait"].values
    by_detector = data["apprehensions_by_detector"].sum(["section", "category"])
    return {
        "S": n_s,
        "T": n_t,
        "C": n_c,
        "E": data.sizes["event"],
        "R": len(terrain_names),
        "D": len(DETECTORS),
        "resident": CATEGORIES.index(RESIDENT) + 1,
        "technical": DETECTORS.index("technical") + 1,
        "log_length": np.log(data["length_km"].values / 1000.0),
        "log_population": np.log(data["border_population"].values / 1e5),
        "terrain": terrain_of + 1,
        "years": data["years"].values,
        "harmonics": harmonics(data["month_of_year"].values).T,
        "in_force": data["policy_in_force"].transpose("event", "month").values,
        "log_flow": np.log(np.maximum(flow, 1.0)),
        "log_wait": np.log(np.maximum(wait, 0.1) / 60.0),
        "ridge_hazard_slope": RIDGE_HAZARD_SLOPE,
        "ridge_coverage_slope": RIDGE_COVERAGE_SLOPE,
        "N_surv": int(surv.sum()),
        "surv_cell": cell[surv],
        "journeys": journeys[surv],
        "repeats": repeats[surv],
        "N_zero": int(zero.sum()),
        "zero_cell": cell[zero],
        "N_pos": int(pos.sum()),
        "pos_cell": cell[pos],
        "total": totals[pos],
        "N_link": int(link.sum()),
        "link_cell": cell[link],
        "linked": linked[link],
        "before": before[link],
        "by_detector": by_detector.transpose("month", "detector").values,
    }


def provenance() -> dict[str, Any]:
    """The commit raced, and whether the model's files differ from it in the working tree."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    model_files = ("estim/families/border", "models/border.toml")
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_model_changes": git("status", "--porcelain", "--", *model_files).splitlines(),
    }


def to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_data(data: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps({k: to_json(v) for k, v in data.items()}))
    return path


def stan_name(value_var: str) -> str:
    """border.stan's parameter for PyMC's value variable: the same unconstrained coordinate (Stan's lower = 0 is
    PyMC's log transform; the zero-sum free coordinates are PyMC's, named without the trailing __)."""
    for suffix, replacement in (("_log__", ""), ("_zerosum__", "_zerosum")):
        if value_var.endswith(suffix):
            return value_var[: -len(suffix)] + replacement
    return value_var


def unconstrained(model: Any, point: dict[str, np.ndarray]) -> np.ndarray:
    """A point of PyMC's unconstrained space (value variable -> array) as Stan's unconstrained vector: the
    value variables in order, each flattened column-major (Stan's order for matrices)."""
    return np.concatenate(
        [np.ravel(np.asarray(point[v.name], float), order="F") for v in model.value_vars]
    )


def run_stan(*args: str) -> None:
    if not STAN_PYTHON.exists():
        raise SystemExit(
            f"{STAN_PYTHON} is missing: set up the Stan venv (benchmarks/stan/README.md)"
        )
    subprocess.run([str(STAN_PYTHON), str(RUNNER), *args], check=True)


def stan_logp(data: dict[str, Any], points: list[np.ndarray]) -> dict[str, Any]:
    """Stan's log density (Jacobians included) and gradient at unconstrained points (run_stan.py logp)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_data(data, tmp_path / "data.json")
        (tmp_path / "points.json").write_text(json.dumps([p.tolist() for p in points]))
        run_stan(
            "logp",
            str(tmp_path / "data.json"),
            str(tmp_path / "points.json"),
            str(tmp_path / "logp.json"),
        )
        return json.loads((tmp_path / "logp.json").read_text())


# ----------------------------------------------------------------------------------------------------------
# The two fits
# ----------------------------------------------------------------------------------------------------------


class ChainClock:
    """A nutpie progress callback that records each chain's (runtime, draws done, tuning) as it goes."""

    def __init__(self) -> None:
        self.records: dict[int, list[tuple[float, int, bool]]] = {}

    def __call__(self, chains: Any) -> None:
        for i, c in enumerate(chains):
            if c.started:
                self.records.setdefault(i, []).append(
                    (c.runtime_ms / 1000.0, int(c.finished_draws), bool(c.tuning))
                )

    def warmup_end(self, tune: int) -> list[float]:
        """Each chain's runtime when its draws reached `tune`, interpolated between the records around it."""
        ends = []
        for records in self.records.values():
            before = [r for r in records if r[1] <= tune]
            after = [r for r in records if r[1] > tune]
            if not after:
                raise RuntimeError("no progress record after the warm-up")
            t1, n1, _ = before[-1] if before else (0.0, 0, True)
            t2, n2, _ = after[0]
            ends.append(t1 + (tune - n1) / (n2 - n1) * (t2 - t1))
        return ends

    def totals(self, total_draws: int) -> list[float | None]:
        """Each chain's runtime at its last draw, when the last record saw it."""
        return [
            next((t for t, n, _ in reversed(r) if n >= total_draws), None)
            for r in self.records.values()
        ]


def fit_estim(spec: Any, family: Any, data: xr.Dataset) -> tuple[dict[str, np.ndarray], dict]:
    """estim's NUTS on the spec: model built and compiled (`compile_model`), sampled by `draw` with the fit's
    NUTS seed; each chain's warm-up read off nutpie's progress callback (`draw` hands it to nutpie: the
    recorder stands in for `_progress_lines` while it runs)."""
    from estim.run import sampler as run_sampler

    s = spec.sampler
    seed = run_sampler.seeds(spec.seed, 4)[1]  # the fit's NUTS seed (`estim.run.fit.sample`)
    load = os.getloadavg()
    start, cpu = time.perf_counter(), time.process_time()
    model = family.build(data, dict(spec.priors), **spec.options)
    build_seconds = time.perf_counter() - start
    compiled = run_sampler.compile_model(model, s.backend)
    compile_seconds = time.perf_counter() - start
    compile_cpu_seconds = time.process_time() - cpu
    clock = ChainClock()
    original = run_sampler._progress_lines
    run_sampler._progress_lines = lambda progress, sampler: clock
    try:
        idata = run_sampler.draw(compiled, s, seed, progress=lambda line: None)
    finally:
        run_sampler._progress_lines = original
    attrs = idata["posterior"].attrs
    wall = float(attrs["sampling_time"])
    # a spec with init = "pathfinder" runs Pathfinder before the chains start: warm-up, in effect
    pathfinder = float(attrs.get("pathfinder_time", 0.0))
    warmup = [w + pathfinder for w in clock.warmup_end(s.tune)]
    totals = clock.totals(s.tune + s.draws)
    if all(t is not None for t in totals):
        sampling = max(t + pathfinder - w for t, w in zip(totals, warmup, strict=True))
    else:  # the last record before the end: the call's wall time less the warm-up
        sampling = wall - max(warmup)
    posterior = idata["posterior"].to_dataset()
    stats = idata["sample_stats"].to_dataset()
    draws = {rv.name: posterior[rv.name].values for rv in model.free_RVs}
    draws["n_steps"] = stats["n_steps"].values
    draws["diverging"] = stats["diverging"].values
    import nutpie

    report = {
        "tool": "estim (PyMC + nutpie)",
        "nutpie": nutpie.__version__,
        "backend": s.backend,
        "adaptation": s.adaptation,
        "build_seconds": build_seconds,
        "compile_seconds": compile_seconds,
        "compile_cpu_seconds": compile_cpu_seconds,
        "load_average": load,
        "warmup_seconds": max(warmup),
        "sampling_seconds": sampling,
        "sample_call_seconds": wall,
        "pathfinder_seconds": pathfinder,
        "chains": [{"warmup": w, "total": t} for w, t in zip(warmup, totals, strict=True)],
        "settings": {
            "chains": s.chains,
            "tune": s.tune,
            "draws": s.draws,
            "target_accept": s.target_accept,
            "seed": seed,
        },
    }
    return draws, report


def stan_inits(model: Any, chains: int, seed: int) -> list[dict[str, Any]]:
    """One start per chain, made as nutpie makes estim's (`nutpie.compile_pymc_model`): PyMC's support point
    (the priors' locations) with U(−1, 1) jitter on the unconstrained scale, as border.stan's parameters
    (constrained values: exp of a log-scale coordinate)."""
    from pymc.initial_point import make_initial_point_fn

    from estim.run.sampler import seeds

    make = make_initial_point_fn(
        model=model,
        jitter_rvs=set(model.free_RVs),
        default_strategy="support_point",
        return_transformed=True,
    )
    inits = []
    for chain_seed in seeds(seed, chains):
        point = make(chain_seed)
        inits.append(
            {
                stan_name(v.name): to_json(
                    np.exp(point[v.name]) if v.name.endswith("_log__") else point[v.name]
                )
                for v in model.value_vars
            }
        )
    return inits


def fit_stan(
    spec: Any, model: Any, data: dict[str, Any], workdir: Path, init: str = "support_point"
) -> tuple[dict[str, np.ndarray], dict]:
    """PyStan on border.stan, compiled cold, with the spec's chains, warm-up, draws and target acceptance
    (adapt delta); its diagonal metric is the only one PyStan 3 offers. ``init``: "support_point" starts the
    chains as estim's start (`stan_inits`), "random" leaves Stan its default (uniform(−2, 2) on the
    unconstrained scale)."""
    from estim.run.sampler import seeds

    s = spec.sampler
    seed = seeds(spec.seed, 5)[4] % (2**31 - 1)
    path = write_data(data, workdir / "stan_data.json")
    out = workdir / "stan"
    extra = []
    if init == "support_point":
        inits = workdir / "stan_inits.json"
        inits.write_text(json.dumps(stan_inits(model, s.chains, seed)))
        extra = ["--init", str(inits)]
    elif init != "random":
        raise ValueError(f"init: support_point or random, not {init!r}")
    run_stan(
        "sample",
        str(path),
        str(out),
        "--chains",
        str(s.chains),
        "--warmup",
        str(s.tune),
        "--samples",
        str(s.draws),
        "--delta",
        str(s.target_accept),
        "--seed",
        str(seed),
        "--cold",
        *extra,
    )
    draws, report = load_draws(workdir, "stan")
    report["init"] = init
    return draws, report


def save_draws(workdir: Path, name: str, draws: dict[str, np.ndarray], report: dict) -> None:
    np.savez_compressed(workdir / f"{name}.npz", **draws)
    atomic_write_text(workdir / f"{name}.json", json.dumps(report, indent=2))


def load_draws(workdir: Path, name: str) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(workdir / f"{name}.npz") as npz:
        draws = {k: npz[k] for k in npz.files}
    return draws, json.loads((workdir / f"{name}.json").read_text())


# ----------------------------------------------------------------------------------------------------------
# ESS, the race's table and the posteriors' agreement
# ----------------------------------------------------------------------------------------------------------


def elements(draws: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Every scalar element of the named parameters, (chain, draw) each, named name[i,j] (C order)."""
    out = {}
    for name in names:
        x = draws[name]
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        for i, index in enumerate(np.ndindex(*x.shape[2:])):
            label = f"{name}[{','.join(map(str, index))}]" if index else name
            out[label] = flat[:, :, i]
    return out


def summaries(scalars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import arviz as az

    stacked = np.stack(list(scalars.values()), axis=-1)  # (chain, draw, element)
    return {
        "mean": stacked.mean(axis=(0, 1)),
        "ess_bulk": np.asarray(az.ess(stacked, method="bulk")),
        "mcse_mean": np.asarray(az.mcse(stacked, method="mean")),
    }


def race_row(report: dict, ess: np.ndarray, labels: list[str]) -> dict[str, Any]:
    low = int(np.argmin(ess))
    min_ess = float(ess[low])
    warmup, sampling = report["warmup_seconds"], report["sampling_seconds"]
    # the sampling call's wall time beyond the chains' clocks: start-up (processes, JIT), the draws'
    # conversion at the end, and the gap between the chains (the slowest warm-up and the slowest sampling
    # need not be one chain's)
    other = max(report["sample_call_seconds"] - warmup - sampling, 0.0)
    return {
        "compile_seconds": report["compile_seconds"],
        "warmup_seconds": warmup,
        "sampling_seconds": sampling,
        "other_seconds": other,
        "min_bulk_ess": min_ess,
        "min_bulk_ess_parameter": labels[low],
        "ess_per_second": min_ess / sampling,
        "wall_to_400_ess": report["compile_seconds"]
        + warmup
        + other
        + sampling * TARGET_ESS / min_ess,
    }


COLUMNS = (
    ("compile_seconds", "compile s", "{:.1f}"),
    ("warmup_seconds", "warm-up s", "{:.1f}"),
    ("sampling_seconds", "sampling s", "{:.1f}"),
    ("other_seconds", "other s", "{:.1f}"),
    ("min_bulk_ess", "min bulk ESS", "{:.0f}"),
    ("ess_per_second", "ESS/s", "{:.2f}"),
    ("wall_to_400_ess", "wall to 400 ESS s", "{:.1f}"),
)


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = f"{'':18}" + "".join(f"{title:>19}" for _, title, _ in COLUMNS)
    lines = [head]
    for label, row in rows.items():
        cells = "".join(
            f"{'—' if row[key] is None else (fmt if label != 'estim / Stan' else '{:.3f}').format(row[key]):>19}"
            for key, _, fmt in COLUMNS
        )
        lines.append(f"{label:18}{cells}")
    return "\n".join(lines)


def agreement(est: dict[str, np.ndarray], stan: dict[str, np.ndarray], labels: list[str]) -> dict:
    z = (est["mean"] - stan["mean"]) / np.sqrt(est["mcse_mean"] ** 2 + stan["mcse_mean"] ** 2)
    beyond2 = float(np.mean(np.abs(z) > 2))
    beyond4 = int(np.sum(np.abs(z) > 4))
    order = np.argsort(-np.abs(z))[:8]
    return {
        "elements": len(z),
        "share_beyond_2": beyond2,
        "count_beyond_4": beyond4,
        "passed": beyond2 <= 0.05 and beyond4 == 0,
        "largest": [
            {
                "parameter": labels[i],
                "z": float(z[i]),
                "mean_estim": float(est["mean"][i]),
                "mean_stan": float(stan["mean"][i]),
                "mcse_estim": float(est["mcse_mean"][i]),
                "mcse_stan": float(stan["mcse_mean"][i]),
            }
            for i in order
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "inputs" / "stan_race.json")
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "stan_race")
    parser.add_argument(
        "--reuse",
        default="",
        help="comma-separated: estim, stan — reuse that fit's draws and timings from --workdir",
    )
    parser.add_argument(
        "--stan-init",
        choices=("support_point", "random"),
        default="support_point",
        help="Stan's starts: estim's (PyMC's support point, jittered; default) or Stan's own random ones",
    )
    args = parser.parse_args()
    reuse = {x.strip() for x in args.reuse.split(",") if x.strip()}
    args.workdir.mkdir(parents=True, exist_ok=True)
    spec, family, data = load(args.spec)
    check_spec(spec)
    sdata = stan_data(data)
    if "estim" in reuse:
        est_draws, est_report = load_draws(args.workdir, "estim")
    else:
        print("estim: building, compiling and sampling …", flush=True)
        est_draws, est_report = fit_estim(spec, family, data)
        save_draws(args.workdir, "estim", est_draws, est_report)
    if "stan" in reuse:
        stan_draws, stan_report = load_draws(args.workdir, "stan")
    else:
        print("Stan: compiling (cold cache) and sampling …", flush=True)
        model = family.build(data, dict(spec.priors), **spec.options)
        stan_draws, stan_report = fit_stan(spec, model, sdata, args.workdir, args.stan_init)
        atomic_write_text(args.workdir / "stan.json", json.dumps(stan_report, indent=2))
    names = [n for n in est_draws if n not in ("n_steps", "diverging")]
    est_scalars, stan_scalars = elements(est_draws, names), elements(stan_draws, names)
    labels = list(est_scalars)
    if labels != list(stan_scalars):
        raise SystemExit("the two fits' parameters differ")
    est, stan = summaries(est_scalars), summaries(stan_scalars)
    rows = {
        "estim (nutpie)": race_row(est_report, est["ess_bulk"], labels),
        "Stan (PyStan)": race_row(stan_report, stan["ess_bulk"], labels),
    }
    est_row, stan_row = rows["estim (nutpie)"], rows["Stan (PyStan)"]
    ratio = {
        key: est_row[key] / stan_row[key] if stan_row[key] > 0 else None for key, _, _ in COLUMNS
    }
    rows["estim / Stan"] = ratio
    agree = agreement(est, stan, labels)
    goals = {
        "ess_per_second_ratio": ratio["ess_per_second"],
        "ess_per_second_goal": GOALS["ess_per_second"],
        "ess_per_second_met": ratio["ess_per_second"] >= GOALS["ess_per_second"],
        "wall_to_400_ess_ratio": ratio["wall_to_400_ess"],
        "wall_to_400_ess_goal": GOALS["wall_to_400_ess"],
        "wall_to_400_ess_met": ratio["wall_to_400_ess"] <= GOALS["wall_to_400_ess"],
    }
    sampler_stats = {
        "estim (nutpie)": {
            "divergences": int(est_draws["diverging"].sum()),
            "leapfrog_steps_per_draw": float(est_draws["n_steps"].mean()),
        },
        "Stan (PyStan)": {
            "divergences": int(stan_draws["divergent__"].sum()),
            "leapfrog_steps_per_draw": float(stan_draws["n_leapfrog__"].mean()),
        },
    }
    print()
    print(table(rows))
    print()
    for label, st in sampler_stats.items():
        print(
            f"{label}: {st['divergences']} divergences, "
            f"{st['leapfrog_steps_per_draw']:.1f} leapfrog steps a draw"
        )
    print(
        f"goals: estim ESS/s {ratio['ess_per_second']:.2f}× Stan's (goal ≥ 5: "
        f"{'met' if goals['ess_per_second_met'] else 'not met'}); wall time to 400 ESS "
        f"{ratio['wall_to_400_ess']:.2f}× Stan's (goal ≤ 1/3: "
        f"{'met' if goals['wall_to_400_ess_met'] else 'not met'})"
    )
    print(
        f"posterior agreement over {agree['elements']} elements: {agree['share_beyond_2']:.1%} with "
        f"|z| > 2 (≤ 5 %), {agree['count_beyond_4']} with |z| > 4 (none): "
        f"{'PASS' if agree['passed'] else 'FAIL'}"
    )
    for item in agree["largest"][:5]:
        print(f"  {item['parameter']}: z = {item['z']:+.2f}")
    result = {
        "spec": str(args.spec.relative_to(ROOT) if args.spec.is_absolute() else args.spec),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "provenance": provenance(),
        "model_revision": STAN_REVISION,
        "notes": (
            "compile: estim = PyMC model built + nutpie/JAX compile; Stan = stan.build (stanc + C++) into an "
            "empty httpstan cache. Warm-up and sampling: the slowest chain, by the sampler's own clock. "
            "ESS over every element of every sampled parameter (model.free_RVs). Shared 2-core machine: "
            "other jobs ran alongside."
        ),
        "rows": rows,
        "goals": goals,
        "sampler_stats": sampler_stats,
        "agreement": agree,
        "estim": est_report,
        "stan": stan_report,
        "ess_bulk": {
            "estim": dict(zip(labels, map(float, est["ess_bulk"]), strict=True)),
            "stan": dict(zip(labels, map(float, stan["ess_bulk"]), strict=True)),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        args.out, json.dumps(result, indent=2, allow_nan=False, default=to_json) + "\n"
    )
    print(f"\nwritten: {args.out}")
    if not all(math.isfinite(ratio[k]) for k in ("ess_per_second", "wall_to_400_ess")):
        raise SystemExit("a ratio is not finite")


if __name__ == "__main__":
    main()
