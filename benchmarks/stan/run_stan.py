"""Build and run benchmarks/stan/border.stan with PyStan 3 (httpstan), for scripts/stan_race.py and
tests/benchmarks/test_stan_border.py.

It runs under the Stan venv (``.venv-stan``, Python 3.12: httpstan's compiled module does not import on 3.13),
not estim's: the data come in as JSON (made by ``stan_race.stan_data`` from the fit's own xarray Dataset), the
results go out as .npz/JSON. Two commands:

    run_stan.py sample DATA.json OUT --chains 2 --warmup 400 --samples 1000 --delta 0.95 --seed N [--cold]
        [--init INITS.json]
        OUT.npz: every parameter and transformed parameter as (chain, draw, …) plus the sampler's statistics
        (lp__, accept_stat__, stepsize__, treedepth__, n_leapfrog__, divergent__, energy__);
        OUT.json: the timings (build/compile, the chains' warm-up and sampling as Stan's own clocks report
        them, the wall clock of the sampling call) and versions.
    run_stan.py logp DATA.json POINTS.json OUT.json
        the log density with its Jacobians (``log_prob(adjust_transform=True)``) and its gradient at each
        unconstrained point (a list of vectors), with the model's parameter names and dims.

httpstan caches compiled models under $XDG_CACHE_HOME/httpstan. ``--cold`` compiles into a fresh, empty cache
directory (removed afterwards): the compile time of a first build. Otherwise the cache is
``.venv-stan/httpstan-cache`` (``--cache DIR`` to change), so that the test compiles once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "border.stan"
DEFAULT_CACHE = HERE.parents[1] / ".venv-stan" / "httpstan-cache"


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside `path` and rename it there: a killed run leaves the old
    file or none, never half of one (this venv has no estim, hence not ``estim.io.atomic_write``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


SAMPLER_STATS = (
    "lp__",
    "accept_stat__",
    "stepsize__",
    "treedepth__",
    "n_leapfrog__",
    "divergent__",
    "energy__",
)
ELAPSED = re.compile(r"([0-9.eE+-]+) seconds \((Warm-up|Sampling|Total)\)")


def use_cache(directory: Path) -> None:
    """Point httpstan's model cache at `directory` (appdirs reads XDG_CACHE_HOME when httpstan asks)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(directory)


STANC_TIMEOUT = 60.0


def allow_slow_stanc(seconds: float = STANC_TIMEOUT) -> None:
    """httpstan gives stanc 1 s (``subprocess.run(…, timeout=1)`` in httpstan.compile), and stanc's pedantic
    pass over border.stan takes about that long alone (0.15 s without it): on a busy machine the build fails
    with TimeoutExpired. The server runs in this process, so its stanc call gets `seconds` instead."""
    import subprocess
    import types

    import httpstan.compile

    def run(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.run(*args, **{**kwargs, "timeout": seconds})

    httpstan.compile.subprocess = types.SimpleNamespace(run=run)


def allow_slow_build() -> None:
    """PyStan talks to its in-process httpstan server through an aiohttp session with aiohttp's default
    5-minute limit per request, and the build is one request: a C++ compile of border.stan can outlast it on
    a busy machine (the module then appears in the cache, but ``stan.build`` has raised). No limit instead."""
    import functools

    import aiohttp

    aiohttp.ClientSession = functools.partial(
        aiohttp.ClientSession, timeout=aiohttp.ClientTimeout(total=None)
    )


def build(data: dict, seed: int | None = None) -> tuple[object, float]:
    """The compiled model (``stan.build``) and the seconds the build took."""
    import stan

    allow_slow_stanc()
    allow_slow_build()
    start = time.perf_counter()
    posterior = stan.build(PROGRAM.read_text(encoding="utf-8"), data=data, random_seed=seed)
    return posterior, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (stanc, the C++ compiler)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def elapsed(stan_output: bytes) -> dict[str, float]:
    """Stan's own clock of one chain: its "Elapsed Time" lines (warm-up, sampling, total seconds)."""
    times = {}
    for line in stan_output.splitlines():
        if b'"logger"' not in line or b"seconds (" not in line:
            continue
        text = json.loads(line)["values"][0]
        match = ELAPSED.search(text)
        if match:
            times[match.group(2).lower().replace("-", "")] = float(match.group(1))
    return times


def sample(args: argparse.Namespace) -> None:
    import httpstan
    import stan

    data = json.loads(Path(args.data).read_text())
    cold = tempfile.mkdtemp(prefix="httpstan-cold-") if args.cold else None
    use_cache(Path(cold) if cold else Path(args.cache))
    try:
        cpu = cpu_seconds()
        posterior, compile_seconds = build(data, args.seed)
        compile_cpu_seconds = cpu_seconds() - cpu
        start = time.perf_counter()
        inits = json.loads(Path(args.init).read_text()) if args.init else None
        fit = posterior.sample(
            num_chains=args.chains,
            num_samples=args.samples,
            num_warmup=args.warmup,
            delta=args.delta,
            **({"init": inits} if inits else {}),
        )
        call_seconds = time.perf_counter() - start
    finally:
        if cold:
            shutil.rmtree(cold, ignore_errors=True)
    chains = [elapsed(out) for out in fit.stan_outputs]
    arrays = {}
    n_draws = fit.num_samples
    dims_of = dict(zip(fit.param_names, fit.dims, strict=True))
    for name in (*SAMPLER_STATS, *fit.param_names):
        x = np.asarray(fit[name])  # (dims…, draws · chains), draws outer, chains inner
        x = x.reshape(*dims_of.get(name, ()), n_draws, args.chains)
        arrays[name] = np.moveaxis(np.moveaxis(x, -1, 0), -1, 1)  # (chain, draw, dims…)

    def savez(
        tmp: Path,
    ) -> None:  # to a file object: given a name, savez appends .npz to the temporary's
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)

    write_atomic(f"{args.out}.npz", savez)
    report = {
        "tool": "pystan",
        "pystan": stan.__version__ if hasattr(stan, "__version__") else _version("pystan"),
        "httpstan": httpstan.__version__,
        "stan": _stan_version(),
        "python": sys.version.split()[0],
        "cold_cache": bool(args.cold),
        "compile_seconds": compile_seconds,
        "compile_cpu_seconds": compile_cpu_seconds,
        "load_average": os.getloadavg(),
        "chains": chains,
        "warmup_seconds": max(c["warmup"] for c in chains),
        "sampling_seconds": max(c["sampling"] for c in chains),
        "sample_call_seconds": call_seconds,
        "settings": {
            "chains": args.chains,
            "num_warmup": args.warmup,
            "num_samples": args.samples,
            "delta": args.delta,
            "seed": args.seed,
            "metric": "diag_e",
            "init": "given" if args.init else "Stan's default: uniform(-2, 2), unconstrained",
        },
    }
    write_atomic(f"{args.out}.json", lambda tmp: tmp.write_text(json.dumps(report, indent=2)))


def logp(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.data).read_text())
    points = json.loads(Path(args.points).read_text())
    use_cache(Path(args.cache))
    posterior, compile_seconds = build(data)
    out = {
        "param_names": list(posterior.param_names),
        "dims": [list(d) for d in posterior.dims],
        "compile_seconds": compile_seconds,
        "log_prob": [posterior.log_prob(list(p), adjust_transform=True) for p in points],
        "grad": [list(posterior.grad_log_prob(list(p))) for p in points],
    }
    write_atomic(args.out, lambda tmp: tmp.write_text(json.dumps(out)))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _stan_version() -> str:
    import httpstan

    header = Path(httpstan.__file__).parent / "include" / "stan" / "version.hpp"
    parts = dict(re.findall(r"#define STAN_(MAJOR|MINOR|PATCH) (\d+)", header.read_text()))
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("sample")
    s.add_argument("data")
    s.add_argument("out", help="output path without extension (.npz and .json are written)")
    s.add_argument("--chains", type=int, default=2)
    s.add_argument("--warmup", type=int, default=400)
    s.add_argument("--samples", type=int, default=1000)
    s.add_argument("--delta", type=float, default=0.95)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--cold", action="store_true", help="compile into a fresh, empty httpstan cache")
    s.add_argument(
        "--init", help="JSON: a list of initial values (parameter -> value), one per chain"
    )
    s.add_argument("--cache", default=str(DEFAULT_CACHE))
    s.set_defaults(run=sample)
    p = commands.add_parser("logp")
    p.add_argument("data")
    p.add_argument("points")
    p.add_argument("out")
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.set_defaults(run=logp)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
