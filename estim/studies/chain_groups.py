"""A fit whose chains run in groups, each group saved as it finishes, then combined into one fit.

For a fit longer than a machine can give it at one go (a border sensitivity variant with a frailty: ~3 h on
two cores, where a working session is shorter), the spec's chains are run as `groups` independent fits of
``[sampler] chains`` chains each, every one with its own seed (`estim.run.sampler.seeds` of the spec's seed)
and its own warm-up, and saved as its own fit file (``NAME__chains{g}of{groups}.nc`` beside the output):
an interrupted run resumes from the groups already saved (`estim.run.fit.fit`'s cache). A group is not
retried (its gate sees only its share of the draws); the combined fit is gated.

Combining is exact for MCMC: chains that start apart and adapt on their own are what a single run of
``groups × chains`` chains would make, in law; the draws differ (each chain's random stream follows from
its group's seed), so a grouped fit is reproducible byte for byte from the same spec and seed, but is not
the same file as an ungrouped fit of the same spec. The posterior, the sampler statistics and the warm-up
are concatenated along ``chain``; the family's derived quantities and predictive checks (``after_sampling``)
are drawn again from the combined posterior with the spec's own seed, as a single fit draws them; the
diagnostics gate (R-hat across all chains, the summed ESS) judges the combined draws. The combined file's
spec is the spec with ``chains`` = groups × chains, its ``chain_groups_json`` naming each group's file,
seed and time. Only families that draw their derived quantities after sampling (``after_sampling``: the
border model) are fitted this way: the others' fits take seconds to minutes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.run import store
from estim.run.data import data_hash, family_of, load_data
from estim.run.diagnostics import check as gate_check
from estim.run.fit import FitResult, fit, gate_names
from estim.run.sampler import Progress, seeds
from estim.run.spec import ModelSpec

WARMUP = "warmup_posterior"  # nutpie's warm-up draws: their variables are exactly the sampler's


def combined_spec(spec: ModelSpec, groups: int) -> ModelSpec:
    """The spec of the combined fit: `spec` with ``groups`` × its chains."""
    sampler = dataclasses.replace(spec.sampler, chains=spec.sampler.chains * groups)
    return dataclasses.replace(spec, sampler=sampler)


def group_spec(spec: ModelSpec, group: int, groups: int) -> ModelSpec:
    """Group `group` (0-based) of `groups`: the spec's chains under a seed of its own, without retries."""
    seed = seeds(spec.seed, groups)[group]
    sampler = dataclasses.replace(spec.sampler, retries=0)
    return dataclasses.replace(
        spec, name=f"{spec.name}__chains{group + 1}of{groups}", seed=seed, sampler=sampler
    )


def combine(trees: list[xr.DataTree], spec: ModelSpec, data: xr.Dataset) -> xr.DataTree:
    """The groups' fits as one: the sampler's variables, statistics and warm-up concatenated along ``chain``
    (renumbered 0, 1, …), the family's ``after_sampling`` drawn again from the combined posterior with the
    seed a single fit of `spec` would use for it."""
    family = family_of(spec)
    if family.after_sampling is None:
        raise EstimInputError(
            f"{spec.name}: family {family.name!r} draws its derived quantities inside the sampler's "
            "post-processing, not after it: its chains are not fitted in groups"
        )
    if any(WARMUP not in t.children for t in trees):
        raise EstimInputError(
            f"{spec.name}: a group's fit has no {WARMUP}: its sampler's variables are unknown"
        )
    sampled = list(trees[0][WARMUP].to_dataset().data_vars)
    parts: dict[str, xr.Dataset] = {}
    for name in trees[0].children:
        sets = [t[name].to_dataset() for t in trees]
        if "chain" not in sets[0].dims or name not in (
            WARMUP,
            "posterior",
            "sample_stats",
            "warmup_sample_stats",
        ):
            continue
        if name == "posterior":
            sets = [s[sampled] for s in sets]
        joined = xr.concat(sets, dim="chain", coords="minimal", compat="override", join="exact")
        parts[name] = joined.assign_coords(chain=np.arange(joined.sizes["chain"]))
    seed_after = seeds(spec.seed, 4)[3]  # as `estim.run.fit._sample_custom` draws them
    derived = family.after_sampling(
        data, parts["posterior"], np.random.default_rng(seed_after), **spec.options
    )
    tree = xr.DataTree()
    for name, ds in parts.items():
        if name == "posterior" and "posterior" in derived:
            ds = ds.assign(derived["posterior"].data_vars)
        tree[name] = xr.DataTree(ds)
    for name, ds in derived.items():
        if name != "posterior":
            tree[name] = xr.DataTree(ds)
    tree.attrs = {
        k: v for k, v in trees[0].attrs.items() if not k.startswith(("gate_", "version_"))
    }
    return tree


def grouped_fit(
    spec: ModelSpec,
    groups: int,
    *,
    out: str | Path,
    force: bool = False,
    progress: Progress | None = None,
    idle_priors: str = "refuse",
) -> FitResult:
    """Fit `spec`'s chains in `groups` groups (each saved beside `out` as it finishes; a group already saved
    for this spec and data is reused) and save their combination, gated, to `out`: a fit of
    `combined_spec` (reused when `out` already holds it)."""
    if groups < 2:
        raise ValueError(f"{spec.name}: chain groups need at least 2 groups, got {groups}")
    whole = combined_spec(spec, groups)
    out = Path(out)
    store.check_out(out)
    data = load_data(spec)
    d_hash = data_hash(data)
    versions = store.library_versions()
    if not force:
        tree = store.cached(out, whole.spec_hash, d_hash, versions)
        if tree is not None:
            if progress is not None:
                progress(f"{spec.name}: {out} is a fit of this spec and these data: reused")
            attempts = tuple(json.loads(str(tree.attrs.get("attempts_json", "[]"))))
            return FitResult(whole, out, tree, store.verdict(tree, str(out)), True, 0.0, attempts)
    results = []
    for g in range(groups):
        gspec = group_spec(spec, g, groups)
        if progress is not None:
            progress(
                f"{spec.name}: chain group {g + 1} of {groups} ({spec.sampler.chains} chains, seed {gspec.seed})"
            )
        results.append(
            fit(
                gspec,
                out=out.parent / f"{gspec.name}.nc",
                force=force,
                progress=progress,
                idle_priors=idle_priors,
            )
        )
    began = time.perf_counter()
    tree = combine([r.idata for r in results], spec, data)
    family = family_of(spec)
    names = gate_names(family, tree)
    verdict = gate_check(tree) if names is None else gate_check(tree, var_names=names)
    attempts = [
        {**a, "group": g + 1, "seed": r.spec.seed}
        for g, r in enumerate(results)
        for a in r.attempts
    ]
    seconds = sum(float(r.idata.attrs.get("fit_seconds", r.seconds)) for r in results)
    seconds += time.perf_counter() - began
    provenance = {
        k: v
        for k, v in results[0].idata.attrs.items()
        if not k.startswith(("gate_", "version_")) and k != "created"
    }
    provenance.update(store.provenance_attrs(whole.spec_hash, d_hash, whole.seed, versions))
    provenance.update(
        {
            "model_name": whole.name,
            "spec_json": whole.canonical_json(),
            "sampler_json": json.dumps(whole.sampler.to_dict(), sort_keys=True),
            "attempts_json": json.dumps(attempts),
            "fit_seconds": round(seconds, 3),
            "chain_groups_json": json.dumps(
                [
                    {
                        "file": r.path.name,
                        "seed": r.spec.seed,
                        "chains": r.spec.sampler.chains,
                        "seconds": float(r.idata.attrs.get("fit_seconds", r.seconds)),
                    }
                    for r in results
                ]
            ),
        }
    )
    if progress is not None:
        progress(
            f"{spec.name}: {groups} chain groups combined; diagnostics gate: {verdict.describe()}"
        )
    store.save(tree, out, provenance, verdict)
    return FitResult(whole, out, store.load(out), verdict, False, seconds, tuple(attempts))
