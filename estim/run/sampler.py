"""The one way estim runs NUTS: nutpie, compiled from a PyMC model, with a seed.

`compile_model` and `draw` are the two steps; `nuts` does both. The fit runner, the recovery studies (one
compiled model, many datasets through ``compiled.with_data``) and the border recovery all sample through
here, so a sampler setting means the same everywhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.run.spec import BACKENDS, SamplerSpec


def seeds(seed: int, n: int) -> list[int]:
    """`n` independent seeds derived from one (prior, NUTS, predictive, N draws, …)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def compile_model(model: Any, backend: str = "jax", *, freeze: bool | None = None) -> Any:
    """nutpie's compiled log-density and gradient of `model`.

    With the JAX backend JAX differentiates its own graph: on the border model a gradient costs ~3.7 ms this
    way and ~4.9 ms through ``pm.sample`` (measured, 1 chain). ``freeze=False`` keeps shared variables as
    runtime inputs (None: nutpie's default), so ``compiled.with_data(name=array)`` can swap a dataset without recompiling.
    """
    import nutpie

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    return nutpie.compile_pymc_model(
        model,
        backend=backend,
        gradient_backend="jax" if backend == "jax" else "pytensor",
        freeze_model=freeze,
    )


Progress = Callable[[str], None]
PROGRESS_EVERY = 10.0  # seconds between progress lines: readable in a log, no carriage returns


def _progress_lines(progress: Progress, sampler: SamplerSpec) -> Callable[[Any], None]:
    """A nutpie progress callback that reports, as whole lines, where the slowest chain is (warm-up or
    sampling, draws done of its total) with the divergences so far, every ``PROGRESS_EVERY`` seconds."""
    state = {"last": time.perf_counter(), "phase": ""}

    def report(chains: Any) -> None:
        if not chains or not any(c.started for c in chains):
            return
        slowest = min(chains, key=lambda c: c.finished_draws)
        phase = "warm-up" if slowest.tuning else "sampling"
        now = time.perf_counter()
        if now - state["last"] < PROGRESS_EVERY and phase == state["phase"]:
            return
        state.update(last=now, phase=phase)
        done = slowest.finished_draws if slowest.tuning else slowest.finished_draws - sampler.tune
        total = sampler.tune if slowest.tuning else sampler.draws
        divergences = sum(int(c.divergences) for c in chains)
        progress(
            f"{phase}: {max(done, 0):,} of {total:,} draws in each of {len(chains)} chains, "
            f"{divergences} divergences so far, {slowest.runtime_ms / 1000:.0f} s"
        )

    return report


THREADS_ENV = "ESTIM_THREADS"
"""Environment variable: the threads a fit may use (nutpie's chains in parallel); unset, the CPUs this process
may run on. A study's pinned worker sets it to 1 (`estim.studies.distributed.PINNED`)."""


def available_threads() -> int:
    """The threads a fit may use: ``ESTIM_THREADS`` when set, else the CPUs this process may run on."""
    value = os.environ.get(THREADS_ENV)
    if value:
        return max(1, int(value))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def draw(
    compiled: Any,
    sampler: SamplerSpec,
    seed: int,
    *,
    cores: int | None = None,
    progress: Progress | None = None,
) -> xr.DataTree:
    """NUTS draws from a compiled model with the spec's settings; ``sampling_time`` (s) in the posterior's
    attributes. `progress`, if given, receives a line of text every ten seconds or so."""
    s = sampler
    # nutpie panics at tune = 0 (an assertion of its adaptation): said here, never sampled with another tune
    if s.tune < 1:
        raise EstimInputError(
            f"tune = {s.tune}: nutpie's NUTS needs at least 1 warm-up step (it adapts its step size and "
            "mass matrix there); a few hundred is usual"
        )
    import nutpie

    start = time.perf_counter()
    reporting = (
        {"progress_callback": _progress_lines(progress, s), "progress_rate": 1000}
        if progress is not None
        else {}
    )
    idata = nutpie.sample(
        compiled,
        draws=s.draws,
        tune=s.tune,  # what the fit records: ≥ 1, as the spec requires
        chains=s.chains,
        # as pm.sample: more threads than cores only contend
        cores=cores if cores is not None else min(s.chains, available_threads()),
        seed=seed,
        progress_bar=False,
        target_accept=s.target_accept,
        **({"adaptation": s.adaptation} if s.adaptation != "diagonal" else {}),
        **reporting,
    )
    idata["posterior"].attrs["sampling_time"] = round(time.perf_counter() - start, 3)
    return idata


def nuts(
    model: Any,
    sampler: SamplerSpec,
    seed: int,
    *,
    cores: int | None = None,
    with_data: bool = False,
    progress: Progress | None = None,
) -> xr.DataTree:
    """Compile and sample `model`; ``compile_time`` and ``sampling_time`` (s) in the posterior's attributes.

    ``with_data`` adds the model's ``observed_data`` and ``constant_data`` groups, which PyMC's
    log-likelihood and predictive functions read.
    """
    start = time.perf_counter()
    if progress is not None:
        progress(f"compiling the model ({sampler.backend}) …")
    compiled = compile_model(model, sampler.backend)
    compile_time = time.perf_counter() - start
    if progress is not None:
        progress(
            f"compiled in {compile_time:.0f} s; NUTS: {sampler.chains} chains × "
            f"({sampler.tune:,} warm-up + {sampler.draws:,}) draws …"
        )
    idata = draw(compiled, sampler, seed, cores=cores, progress=progress)
    idata["posterior"].attrs["compile_time"] = round(compile_time, 3)
    if with_data:
        from pymc.backends.arviz import patch_nutpie_idata

        patch_nutpie_idata(idata, model, sampling_time=idata["posterior"].attrs["sampling_time"])
    return idata
