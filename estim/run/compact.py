"""Compact fits: what grows with the number of covariate patterns or individuals is stored aggregated, in
a smaller type, or not at all, so that a fit of 12,000 people takes megabytes rather than a gigabyte.

Per group of a saved fit, at most `BUDGET_BYTES`:

* predictive draws (prior and posterior) are counts: stored as 32-bit integers; when they would still exceed
  the budget they are summed over their largest cell dimension(s) (covariate patterns, individuals) until they
  fit. The predictive checks compare the frequencies f_k (or history counts), which are sums over patterns,
  so nothing they use is lost. While drawing, at most `MEMORY_BYTES` of draws are held at once (the draws
  are made in chunks of the posterior, each summed before the next).
* the pointwise log-likelihood is stored in float64 when it fits, in float32 when that fits (PSIS-LOO needs
  about four significant digits), and otherwise not stored: `pointwise_log_likelihood` recomputes it from the
  posterior and the data re-read from their source (`estim.run.data.fit_data`, hash-checked), a batch of
  draws at a time, keeping only the cells with observations. Summing it over patterns is not an option: LOO leaves out one
  individual, and individuals of one pattern seen a different number of times have different terms.

What was done is recorded in the fit's root attributes (``compact_<group>``, ``log_likelihood_omitted``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

BUDGET_BYTES = 5_000_000
"""Largest size of a stored group that grows with patterns or individuals (predictive, log-likelihood)."""
MEMORY_BYTES = 200_000_000
"""Largest array of predictive draws held in memory at once while drawing; larger draws come in chunks."""
SUMMED_DRAWS = 500
"""Posterior predictive draws made when they must be summed over patterns (thinned evenly from the posterior)."""
MIN_DRAWS = 100
"""Fewest predictive draws kept when even the summed draws exceed the budget (they are then thinned)."""
SAMPLE_DIMS = ("chain", "draw")


def host_mode() -> dict[str, Any]:
    """Compile options for the one-off predictive and log-likelihood functions.

    These run once over all draws, so compile time dominates: PyTensor's default numba linker spends 3–4 s
    compiling the families' NumPy replicate generators in object mode, the C VM with light rewrites under 0.5 s
    (measured on hare_Mth: prior + posterior predictive 8.0 s → 1.4 s). Without a C compiler, keep the default.
    """
    import pytensor
    from pytensor.compile.mode import Mode

    if not pytensor.config.cxx:
        return {}
    return {"mode": Mode(linker="cvm", optimizer="fast_compile")}


KEPT_DIMS = ("k", "history")
"""Cell dims never summed over: the predictive checks' statistics are indexed by them (f_k, history counts)."""


def summed_dims(sizes: dict[str, int], samples: int, budget: int | None = None) -> list[str]:
    """The cell dims to sum predictive draws over (largest first) so that `samples` draws of 4-byte counts
    fit in `budget` (`BUDGET_BYTES`); empty when they fit as they are. Never `KEPT_DIMS`, dims of size 1, or
    the last cell dim left (draws with no cell left say nothing a check can use: they are thinned instead)."""
    budget = BUDGET_BYTES if budget is None else budget
    cells = {d: n for d, n in sizes.items() if d not in SAMPLE_DIMS}
    summed: list[str] = []

    def others_left(d: str) -> bool:
        return any(e != d and e not in summed and cells[e] > 1 for e in cells)

    while samples * 4 * _cells(cells, summed) > budget:
        rest = sorted(
            (
                d
                for d in cells
                if d not in summed and d not in KEPT_DIMS and cells[d] > 1 and others_left(d)
            ),
            key=lambda d: -cells[d],
        )
        if not rest:
            break
        summed.append(rest[0])
    return summed


def _cells(cells: dict[str, int], summed: Sequence[str]) -> int:
    return int(np.prod([n for d, n in cells.items() if d not in summed]))


def kept_draws(sizes: dict[str, int], summed: Sequence[str], samples: int, cap: int) -> int:
    """How many of `samples` predictive draws to make: at most `cap`, and few enough that the draws of the
    cells left after summing fit the budget (but at least `MIN_DRAWS`)."""
    cells = _cells({d: n for d, n in sizes.items() if d not in SAMPLE_DIMS}, summed)
    return min(samples, cap, max(MIN_DRAWS, BUDGET_BYTES // (4 * max(1, cells))))


def compact_counts(ds: xr.Dataset, summed: Sequence[str] = ()) -> xr.Dataset:
    """Predictive draws summed over `summed` and stored as integers (32-bit when they fit) when every value
    is a whole number: PyMC returns a CustomDist's draws as float64, eight bytes for a count."""
    out = {}
    for name, da in ds.data_vars.items():
        dims = [d for d in summed if d in da.dims]
        if dims:
            da = da.sum(dims)
        values = da.values
        if (
            values.dtype.kind == "f"
            and np.all(np.isfinite(values))
            and np.all(values == np.round(values))
        ):
            big = values.size and np.abs(values).max() >= np.iinfo(np.int32).max
            da = da.astype(np.int64 if big else np.int32)
        elif values.dtype == np.int64 and (not values.size or np.abs(values).max() < 2**31 - 1):
            da = da.astype(np.int32)
        out[name] = da
    return xr.Dataset(out, coords={k: v for k, v in ds.coords.items() if k not in summed})


def _chunks(n: int, per_draw: int) -> list[slice]:
    """Slices of `n` draws, each holding at most `MEMORY_BYTES` of float64 draws of `per_draw` cells."""
    size = max(1, MEMORY_BYTES // max(1, per_draw * 8))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _note(group: str, summed: Sequence[str], sizes: dict[str, int]) -> dict[str, str]:
    if not summed:
        return {}
    what = ", ".join(f"{d} ({sizes[d]:,})" for d in summed)
    return {
        f"compact_{group}": f"summed over {what}: the draws per cell exceed {BUDGET_BYTES / 1e6:g} MB"
    }


def prior_predictive(
    model: Any, draws: int, seed: int, observed_name: str
) -> tuple[xr.DataTree, dict[str, str]]:
    """Prior and prior predictive draws (groups ``prior`` and ``prior_predictive``), compact, with the note
    of what was summed. Large draws are made in chunks, each with its own seed derived from `seed`."""
    import pymc as pm

    from estim.run.sampler import seeds

    shape = _shape(model, observed_name)
    sizes = _sizes(model, observed_name, shape)
    summed = summed_dims(sizes, draws)
    wanted, draws = draws, kept_draws(sizes, summed, draws, draws)
    slices = _chunks(draws, int(np.prod(shape)))
    chunk_seeds = [seed] if len(slices) == 1 else seeds(seed, len(slices))
    parts: dict[str, list[xr.Dataset]] = {"prior": [], "prior_predictive": []}
    for sl, s in zip(slices, chunk_seeds, strict=True):
        result = pm.sample_prior_predictive(
            draws=sl.stop - sl.start, random_seed=s, compile_kwargs=host_mode()
        )
        for group in parts:
            if group in result.children:
                ds = result[group].to_dataset()
                parts[group].append(
                    compact_counts(ds, summed) if group == "prior_predictive" else ds
                )
    groups = {g: _concat_draws(v) for g, v in parts.items() if v}
    note = _note("prior_predictive", summed, sizes)
    if draws < wanted:
        note["compact_prior_predictive"] = (
            note.get("compact_prior_predictive", "over the budget")
            + f"; {draws:,} draws, not {wanted:,}"
        )
    return xr.DataTree.from_dict(groups), note


def posterior_predictive(
    model: Any, posterior: xr.Dataset, seed: int, observed_name: str
) -> tuple[xr.DataTree, dict[str, str]]:
    """Posterior predictive draws (group ``posterior_predictive``), compact, with the note of what was done.

    One replicate per posterior draw; but when the draws must be summed over patterns to fit the budget, only
    `SUMMED_DRAWS` posterior draws, evenly spaced within each chain, are replicated: what the checks compare
    (f_k, history counts) then has few cells, and 500 draws place their 90 % intervals and p-values well
    enough, while replicating every pattern for every draw is what costs the time. Large draws are made in
    chunks of draws, each with its own seed derived from `seed`.
    """
    import pymc as pm

    from estim.run.sampler import seeds

    shape = _shape(model, observed_name)
    sizes = _sizes(model, observed_name, shape)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    summed = summed_dims(sizes, n_chain * n_draw)
    keep = kept_draws(sizes, summed, n_chain * n_draw, SUMMED_DRAWS if summed else n_chain * n_draw)
    thinned = ""
    if keep < n_chain * n_draw:
        step = int(np.ceil(n_chain * n_draw / keep))
        posterior = posterior.isel(draw=slice(None, None, step))
        thinned = (
            f"; one draw in {step} of each chain ({posterior.sizes['draw'] * n_chain:,} draws)"
        )
        n_draw = posterior.sizes["draw"]
    slices = _chunks(n_draw, n_chain * int(np.prod(shape)))
    chunk_seeds = [seed] if len(slices) == 1 else seeds(seed, len(slices))
    parts = []
    for sl, s in zip(slices, chunk_seeds, strict=True):
        sub = xr.DataTree.from_dict({"posterior": posterior.isel(draw=sl)})
        result = pm.sample_posterior_predictive(
            sub, random_seed=s, progressbar=False, compile_kwargs=host_mode()
        )
        parts.append(compact_counts(result["posterior_predictive"].to_dataset(), summed))
        del result
    ds = xr.concat(parts, "draw") if len(parts) > 1 else parts[0]
    note = _note("posterior_predictive", summed, sizes)
    if thinned:
        note["compact_posterior_predictive"] = (
            note.get("compact_posterior_predictive", "over the budget") + thinned
        )
    return xr.DataTree.from_dict({"posterior_predictive": ds}), note


def _concat_draws(parts: list[xr.Dataset]) -> xr.Dataset:
    if len(parts) == 1:
        return parts[0]
    ds = xr.concat(parts, "draw")
    return ds.assign_coords(draw=np.arange(ds.sizes["draw"]))


def _shape(model: Any, name: str) -> tuple[int, ...]:
    """The observed variable's shape (its observed values)."""
    rv = model[name]
    return tuple(int(n) for n in np.shape(model.rvs_to_values[rv].data))


def _sizes(model: Any, name: str, shape: tuple[int, ...]) -> dict[str, int]:
    """The observed variable's dims and their lengths (``dim_0``, … for dims the model does not name)."""
    dims = tuple(model.named_vars_to_dims.get(name, ()) or ())
    names = [dims[i] if i < len(dims) and dims[i] else f"{name}_dim_{i}" for i in range(len(shape))]
    return dict(zip(names, shape, strict=True))


def log_likelihood(
    model: Any, idata: xr.DataTree, observed_name: str
) -> tuple[xr.Dataset | None, dict[str, str]]:
    """The pointwise log-likelihood group (float64, or float32 when that is what fits the budget), or None
    with the reason when even float32 would exceed `BUDGET_BYTES` (then `pointwise_log_likelihood`
    recomputes it when asked)."""
    import pymc as pm

    post = idata["posterior"]
    samples = post.sizes["chain"] * post.sizes["draw"]
    cells = int(np.prod(_shape(model, observed_name)))
    size64 = samples * cells * 8
    if size64 // 2 > BUDGET_BYTES:
        return None, {
            "log_likelihood_omitted": (
                f"{cells:,} cells × {samples:,} draws ({size64 / 2e6:,.1f} MB in float32) exceed "
                f"{BUDGET_BYTES / 1e6:g} MB: not stored; estim compare recomputes it from the posterior "
                "and the data re-read from their source"
            )
        }
    ds = pm.compute_log_likelihood(
        idata,
        model=model,
        extend_inferencedata=False,
        progressbar=False,
        compile_kwargs=host_mode(),
    )
    if size64 > BUDGET_BYTES:
        ds = ds.astype(np.float32)
        return ds, {"compact_log_likelihood": "stored as float32 (float64 exceeds the budget)"}
    return ds, {}


def pointwise_log_likelihood(
    tree: xr.DataTree, fit_path: str | Path
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise log-likelihood of a saved fit over the observed cells with a positive count, and those
    counts: arrays (chain, draw, cells) and (cells,), the cells in the order of the observed variable's
    values flattened (C order).

    Read from the fit when stored; otherwise recomputed, draw by draw, from the posterior and the data the
    fit's spec names (re-read and checked against the fit's data hash), with the fit's priors and options.
    `EstimInputError` when the data cannot be re-read (a table given from Python, a changed file).
    """
    from estim.errors import EstimInputError

    observed_name = str(tree.attrs.get("observed_name", ""))
    if "observed_data" not in tree.children or observed_name not in tree["observed_data"]:
        raise EstimInputError(f"{fit_path}: no observed data {observed_name!r}")
    counts = np.asarray(tree["observed_data"].to_dataset()[observed_name].values).ravel()
    positive = counts > 0
    if "log_likelihood" in tree.children and observed_name in tree["log_likelihood"]:
        ll = tree["log_likelihood"].to_dataset()[observed_name]
        cell_dims = [d for d in ll.dims if d not in SAMPLE_DIMS]
        values = ll.transpose(*SAMPLE_DIMS, *cell_dims).values
        flat = values.reshape(*values.shape[:2], -1)
        return np.asarray(flat[..., positive], dtype=np.float64), counts[positive]
    if "log_likelihood_omitted" not in tree.attrs:
        raise EstimInputError(f"{fit_path}: no pointwise log-likelihood of {observed_name!r}")
    try:
        return _recompute(tree, fit_path, observed_name, positive), counts[positive]
    except EstimInputError as e:
        why = tree.attrs.get("log_likelihood_omitted", "the fit does not store it")
        raise EstimInputError(
            f"{fit_path}: no pointwise log-likelihood ({why}), and it cannot be recomputed: {e}"
        ) from e


def _recompute(
    tree: xr.DataTree, fit_path: str | Path, observed_name: str, positive: np.ndarray
) -> np.ndarray:
    from pymc.model.transform.conditioning import remove_value_transforms

    from estim.errors import EstimInputError
    from estim.families.registry import load_all
    from estim.priors import Prior
    from estim.run.data import fit_data

    data = fit_data(tree, fit_path)
    family = load_all().get(str(tree.attrs.get("family")))
    if family is None:
        raise EstimInputError(f"family {tree.attrs.get('family')!r} is not registered")
    spec = json.loads(str(tree.attrs["spec_json"]))
    priors = {k: Prior.from_dict(v) for k, v in (spec.get("priors") or {}).items()}
    model = family.build(data, priors, **(spec.get("options") or {}))
    umodel = remove_value_transforms(model)
    logp = umodel.logp(vars=[umodel[observed_name]], sum=False)[0]
    post = tree["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    arrays = {
        v.name: post[v.name].transpose(*SAMPLE_DIMS, ...).values.astype(v.type.dtype)
        for v in umodel.value_vars
    }
    flat = {k: a.reshape(n_chain * n_draw, *a.shape[2:]) for k, a in arrays.items()}
    cells = np.flatnonzero(positive)
    try:
        values = _batched_logp(umodel.value_vars, logp, flat, cells, positive.size)
    except Exception:  # noqa: BLE001 - an op that cannot take a batch of draws: one draw at a time
        fn = umodel.compile_fn(
            inputs=umodel.value_vars, outs=logp, on_unused_input="ignore", **host_mode()
        )
        values = np.stack(
            [
                np.asarray(fn({k: a[i] for k, a in flat.items()})).ravel()[cells]
                for i in range(n_chain * n_draw)
            ]
        )
    return values.reshape(n_chain, n_draw, len(cells))


def _batched_logp(
    value_vars: list[Any], logp: Any, draws: dict[str, np.ndarray], cells: np.ndarray, n_cells: int
) -> np.ndarray:
    """The elementwise log-likelihood at `cells` (flat indices) for every draw, computed a batch of draws
    at a time by one function vectorised over a leading draw dimension (a Python call per draw costs more
    than the arithmetic when there are thousands of draws)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    batched = {
        v: pt.tensor(name=v.name, dtype=v.type.dtype, shape=(None, *v.type.shape))
        for v in value_vars
    }
    out = vectorize_graph(logp, replace=batched)
    out = out.reshape((out.shape[0], -1))[:, pt.as_tensor(cells)]
    inputs = list(batched.values())
    try:  # JAX runs the batched arithmetic 2–5 times faster than PyTensor's C or Numba backends here
        fn = pytensor.function(inputs, out, on_unused_input="ignore", mode="JAX")
    except Exception:  # noqa: BLE001 - an op JAX cannot take: PyTensor's own backend
        fn = pytensor.function(inputs, out, on_unused_input="ignore", **host_mode())
    n = len(next(iter(draws.values())))
    per_batch = max(1, 50_000_000 // (8 * max(1, n_cells)))  # ~50 MB of cells per batch
    parts = []
    for start in range(0, n, per_batch):
        batch = [draws[v.name][start : start + per_batch] for v in value_vars]
        parts.append(np.asarray(fn(*batch), dtype=np.float64))
    return np.concatenate(parts, axis=0)
