"""Simulation-based calibration (SBC; Talts et al. 2018, Modrák et al. 2023) of the single-register, closed and
multiple-list families: is the posterior each family computes the right one, for N and its main parameters?

**Procedure** (one replicate, `replicate_rows`). Draw a truth θ̃ and a population size Ñ from the SBC prior;
simulate the data from the family's own generative model (its recovery simulator, people one by one, not the
model's likelihood code); fit the family's model with the same prior (nutpie NUTS); draw N from its exact
conditional law at each posterior draw; thin to L = 99 draws (`estim.studies.sbc_ranks.thin`; the fit is
redone with four times the draws when the bulk ESS of a ranked quantity is below L + 1); and record, for N,
each main parameter and the data's log-likelihood, the rank of the truth among the L draws (ties broken at
random). Replicate i of a family uses ``SeedSequence([seed, crc32(family), i])``: the same seed gives the same
data, draws and ranks, byte for byte, whichever worker runs it. The ranks are tested for uniformity in
`estim.studies.sbc_ranks` (the rule, α, the plots).

**The prior on N.** Every family here marginalises N under its default prior p(N) ∝ 1/N. The default's 1/N is
improper (SBC cannot draw a truth from it), so SBC uses a proper prior: N | Λ ~ Poisson(Λ), Λ ~ Gamma(a, rate b), i.e. N ~
NegativeBinomial(a, b/(1 + b)), mean a/b and variance a/b + a/b² (`PopulationPrior`; a = 4, so the coefficient
of variation is about ½; means in `DESIGNS`: 1,000 for a register and for 4 lists, 200 for 6 capture
occasions). N stays marginalised exactly: with q(θ) = 1 − P(unseen | θ), the people seen, n, are Poisson(Λq)
given Λ, so integrating Λ and N out multiplies the family's conditional likelihood by
P(n | θ) ∝ q^n (b + q)^−(n + a), added to the model as a potential; and given θ and the data, the unseen are
N − n ~ NegativeBinomial(a + n, (b + q)/(b + 1)) (Λ | n ~ Gamma(a + n, b + q), the unseen Poisson(Λ(1 − q))
independently of the seen). With a, b → 0 both reduce to the family's own 1/N law.
The other parameters keep the family's default priors (all proper). Datasets in which nobody is seen are
redrawn: conditioning on an event of the data alone leaves every posterior, and so SBC, valid.

**Quantities ranked.** N; every free parameter (single-register: ``beta_intercept`` [``alpha``, ``omega``];
closed: ``logit_p`` per occasion, ``behaviour``, ``sigma_h``, …); for the latent classes, whose labels are
not identified, the label-invariant P(unseen), each list's marginal capture probability and the Dirichlet
process's concentration; and ``loglik``, log p(data | θ) with N marginalised, a test quantity that Modrák et
al. (2023) show catches what the parameters' ranks miss.

The designs (the prior on N, the parameters drawn, the simulators) are in `estim.studies.sbc_designs`. Speed:
the model is compiled once per worker and data shape (`estim.studies.distributed.worker_cache`, nutpie's numba
backend: ~30–90 s to compile, then a fraction of a second per fit of the small models) and each dataset is
swapped in (`estim.studies.recovery.with_shared_observed`).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from estim.families.registry import load_all
from estim.resume import StudyRows, study_rows_so_far
from estim.run.sampler import available_threads, compile_model, draw
from estim.run.spec import SamplerSpec
from estim.studies.recovery import SHARED_NAME, with_shared_observed
from estim.studies.rows import write_rows
from estim.studies.sbc_designs import (
    DESIGNS,
    MIN_SEEN,
    PopulationPrior,
    SbcDesign,
    labelled,
    simulate_replicate,
)
from estim.studies.sbc_ranks import (
    ALPHA,
    COLUMNS,
    DRAWS_PER_RANK,
    REFIT_FACTOR,
    RULE,
    diagnostics,
    error_row,
    family_verdicts,
    fit_columns,
    quantity_rows,
    replicate_seeds,
    thin,
)

__all__ = [
    "COLUMNS",
    "DESIGNS",
    "MIN_SEEN",
    "PopulationPrior",
    "SbcDesign",
    "SbcModel",
    "replicate_rows",
    "sbc_study",
    "simulate_replicate",
    "study_report",
]

SEED = 20260418
# --------------------------------------------------------------------------------------------------------------
# the model with the proper prior on N, compiled once per worker and shape


class SbcModel:
    """The family's model for one data shape with the SBC prior on N (a potential), its P(unseen) and the
    data's log-likelihood as deterministics, compiled by nutpie with the observed counts swappable; and the
    log-likelihood at a truth, compiled by PyTensor."""

    def __init__(self, design: SbcDesign, data: xr.Dataset, backend: str | None = None) -> None:
        family = load_all()[design.family]
        self.design = design
        self.observed_name = family.observed_name
        model = family.build(data, dict(design.priors) or None, **design.options)
        observed = model[family.observed_name]
        value = model.rvs_to_values[observed]
        with model:
            log_p0 = design.log_p_unseen(model)
            # the people seen, read from the observed counts, so the swapped data reach the potential too
            log_seen = design.population.log_seen(pt.sum(value), pt.log1mexp(log_p0), pt)
            pm.Potential("sbc_population_prior", log_seen)
            if "p_unseen" not in model.named_vars:
                pm.Deterministic("p_unseen", pt.exp(log_p0))
            pm.Deterministic("sbc_loglik", pm.logp(observed, value).sum() + log_seen)
        shared = with_shared_observed(model, data[family.observed_name].values)
        self.free = [rv.name for rv in shared.free_RVs]
        self.compiled = compile_model(shared, backend or design.backend, freeze=False)
        self._loglik = _loglik_function(shared)

    def loglik(self, truth: Mapping[str, np.ndarray], data: xr.Dataset) -> float:
        """log p(data | θ̃), N marginalised under the SBC prior (up to a constant in θ)."""
        args = [np.asarray(truth[name], dtype=float) for name in self.free]
        return float(self._loglik(*args, data[self.observed_name].values))

    def fit(self, data: xr.Dataset, seed: int, draws: int) -> xr.DataTree:
        d = self.design
        sampler = SamplerSpec(
            draws=draws, tune=d.tune, chains=d.chains, target_accept=d.target_accept
        )
        swapped = self.compiled.with_data(**{SHARED_NAME: data[self.observed_name].values})
        return draw(swapped, sampler, seed, cores=min(d.chains, available_threads()))


def _loglik_function(model: pm.Model) -> Callable[..., Any]:
    """``sbc_loglik`` as a function of the free parameters and the observed counts."""
    from pytensor.graph.replace import graph_replace
    from pytensor.graph.traversal import graph_inputs

    target = model["sbc_loglik"]
    shared = next(v for v in graph_inputs([target]) if getattr(v, "name", None) == SHARED_NAME)
    inputs = [rv.type() for rv in model.free_RVs]
    observed = shared.type()
    replaced = graph_replace(
        target, {**dict(zip(model.free_RVs, inputs, strict=True)), shared: observed}, strict=False
    )
    return pytensor.function([*inputs, observed], replaced, on_unused_input="ignore")


# --------------------------------------------------------------------------------------------------------------
# one replicate


def _quantities(
    design: SbcDesign, post: xr.Dataset, n_seen: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every ranked quantity's posterior draws, (chain, draw) each, N first."""
    q = 1.0 - post["p_unseen"].values.reshape(post.sizes["chain"], post.sizes["draw"])
    out = {"N": n_seen + design.population.unseen(n_seen, q, rng)}
    if design.posterior_quantities is not None:
        out.update(design.posterior_quantities(post, rng))
    else:
        for name in design.parameters:
            out.update(labelled(name, post[name].transpose("chain", "draw", ...).values, 2))
    out["loglik"] = post["sbc_loglik"].values
    return out


def replicate_rows(
    task: tuple[str, int, int], *, draws_per_rank: int = DRAWS_PER_RANK, backend: str | None = None
) -> pd.DataFrame:
    """Replicate ``task`` = (family, replicate, seed) of the study: one row per ranked quantity (`COLUMNS`), or
    one row with the error when the simulation or the fit raised. The compiled model is made once per worker
    and data shape."""
    from estim.studies.distributed import worker_cache

    family, replicate, seed = task
    if family == BORDER:  # its own design, data and quantities (`estim.studies.sbc_border`)
        from estim.studies import sbc_border

        return sbc_border.replicate_rows(task, draws_per_rank=draws_per_rank, backend=backend)
    design = DESIGNS[family]
    sim_seq, fit_seq, post_seq = replicate_seeds(family, replicate, seed)
    base: dict[str, Any] = {
        "family": family,
        "replicate": int(replicate),
        "seed": int(seed),
        "draws": draws_per_rank,
    }
    start = time.perf_counter()
    try:
        truth, n_true, data, attempts = simulate_replicate(design, np.random.default_rng(sim_seq))
        shape = tuple(sorted((str(k), int(v)) for k, v in data.sizes.items()))
        model = worker_cache(
            ("sbc", family, backend or design.backend, shape),
            lambda: SbcModel(design, data, backend),
        )
        n_seen = int(data[model.observed_name].values.sum())
        base.update(n_true=n_true, n_observed=n_seen, attempts=attempts)
        start = time.perf_counter()  # a fit's time, without the model's compilation
        rng = np.random.default_rng(post_seq)
        nuts_seed = int(fit_seq.generate_state(1)[0])
        idata = model.fit(data, nuts_seed, design.draws)
        draws = _quantities(design, idata["posterior"].to_dataset(), n_seen, rng)
        ess, rhat = diagnostics(draws)
        refit = ess < draws_per_rank + 1
        if refit:  # too few effective draws for L roughly independent ones: a longer chain
            idata = model.fit(data, nuts_seed, design.draws * REFIT_FACTOR)
            draws = _quantities(design, idata["posterior"].to_dataset(), n_seen, rng)
            ess, rhat = diagnostics(draws)
        chosen = thin(next(iter(draws.values())).size, draws_per_rank)
        truths = {"N": float(n_true)}
        if design.truth_quantities is not None:
            truths.update(design.truth_quantities(truth))
        else:
            for name in design.parameters:
                truths.update({k: float(v) for k, v in labelled(name, truth[name], 0).items()})
        truths["loglik"] = model.loglik(truth, data)
        seconds = time.perf_counter() - start
        thinned = {name: draws[name].ravel()[chosen] for name in truths}
        rows = quantity_rows(
            base, truths, thinned, rng, **fit_columns(idata, ess, rhat, refit, seconds)
        )
    except Exception as e:  # noqa: BLE001 - a failed replicate is a result of the study, not its end
        rows = [error_row(base, time.perf_counter() - start, e)]
    return pd.DataFrame(rows, columns=COLUMNS)


# --------------------------------------------------------------------------------------------------------------
# the study


BORDER = "border"  # the border model's SBC: `estim.studies.sbc_border`


def study_families() -> tuple[str, ...]:
    return (*DESIGNS, BORDER)


def _key(row_or_task: Any) -> tuple[str, int, int]:
    family, replicate, seed = row_or_task
    return (str(family), int(replicate), int(seed))


def _describe(frame: pd.DataFrame) -> str:
    r = frame.iloc[0]
    if str(r["error"]) not in ("", "nan"):
        return f"{r['family']} #{r['replicate']}: error {r['error']}"
    headline = "unobserved" if r["family"] == BORDER else "N"
    n = frame[frame["quantity"] == headline].iloc[0]
    return (
        f"{r['family']} #{r['replicate']}: {headline}={n['truth']:.0f} seen={r['n_observed']} "
        f"rank({headline})={n['rank']:.0f} ess={r['ess_bulk_min']:.0f} "
        f"divergences={r['divergences']} {r['seconds']:.1f}s"
    )


def sbc_study(
    families: Sequence[str],
    *,
    replicates: int = 200,
    seed: int = SEED,
    out: str | None = None,
    resume: bool = False,
    force: bool = False,
    client: Any = None,
    progress: bool = False,
    draws_per_rank: int = DRAWS_PER_RANK,
    backend: str | None = None,
) -> pd.DataFrame:
    """SBC of each family in ``families``: ``replicates`` replicates each, one row per replicate × quantity
        (`COLUMNS`). With ``out`` the rows so far are written after every replicate; with ``resume`` the
        replicates already there are kept, not redone — the file is refused when its rows were made with other
    options (`study_rows`, `estim.resume`) — and without it a non-empty ``out`` is refused unless
    ``force``. With a dask ``client``
        (`estim.studies.distributed`) the replicates are tasks on its workers, each compiling a model once per
        family and data shape. ``backend`` overrides the designs' nutpie backend (numba)."""
    unknown = [f for f in families if f not in study_families()]
    if unknown:
        raise ValueError(f"no SBC design for {unknown}; known: {', '.join(study_families())}")
    twice = sorted({f for f in families if list(families).count(f) > 1})
    if twice:  # each replicate would be fitted, and each of its ranks counted, twice
        raise ValueError(f"families named twice: {', '.join(twice)}")
    tasks = [(f, i, int(seed)) for f in families for i in range(replicates)]
    study = study_rows(families, seed=seed, draws_per_rank=draws_per_rank, backend=backend)
    done_rows = study_rows_so_far(out, study, resume=resume, force=force)
    done = set()
    if done_rows is not None and len(done_rows):
        done = {_key(t) for t in done_rows[["family", "replicate", "seed"]].itertuples(index=False)}
    work = functools.partial(replicate_rows, draws_per_rank=draws_per_rank, backend=backend)
    if client is not None:
        from estim.studies.distributed import run_tasks

        df = run_tasks(
            client,
            tasks,
            work,
            key=_key,
            done=done,
            rows_so_far=done_rows,
            out=out,
            describe=_describe if progress else None,
            name="sbc",
            settings=study.settings(),
        )
    else:
        frames = [done_rows] if done_rows is not None and len(done_rows) else []
        for task in tasks:
            if _key(task) in done:
                continue
            frame = study.stamp(work(task))
            frames.append(frame)
            if out is not None:
                write_rows(pd.concat(frames, ignore_index=True), out)
            if progress:
                print(_describe(frame), flush=True, file=sys.stderr)
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    if len(df):
        order = {f: i for i, f in enumerate(families)}
        df = df.sort_values(
            ["family", "replicate"], key=lambda c: c.map(order) if c.name == "family" else c
        )
        df = df.reset_index(drop=True)
    return df


def study_rows(
    families: Sequence[str], *, seed: int, draws_per_rank: int, backend: str | None
) -> StudyRows:
    """What an SBC study's rows are, and the options that determine them: the families (in the order given:
    the report's), the seed, the draws per rank and the backend, with each family's sampler settings."""
    samplers = {  # and what the truths are drawn from: a prior changed in code makes other rows
        f: [
            d.chains,
            d.tune,
            d.draws,
            d.target_accept,
            d.backend,
            d.population.describe(),
            {k: str(v) for k, v in (d.priors or {}).items()},
        ]
        for f, d in DESIGNS.items()
        if f in families
    }
    options = {
        "study": "sbc",
        "families": list(families),
        "seed": int(seed),
        "draws_per_rank": int(draws_per_rank),
        "backend": backend,
        "samplers": samplers,
    }
    return StudyRows(
        name="simulation-based calibration",
        columns=COLUMNS,
        unit=("family", "replicate", "seed"),
        key=("family", "replicate", "seed", "quantity"),
        options=options,
        numbers=("replicate", "seed"),
    )


def study_report(
    df: pd.DataFrame,
    *,
    alpha: float = ALPHA,
    plots: Mapping[str, str] | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """The verdict per family (`estim.studies.sbc_ranks.family_verdicts`) with its proper prior on N, its
    sampler settings and its plot, and the rule: JSON-ready, what `scripts/sbc.py` writes."""
    verdicts = family_verdicts(df, alpha)
    for family, v in verdicts.items():
        if family == BORDER:
            from estim.studies import sbc_border

            v.update(sbc_border.report_info(backend), plot=(plots or {}).get(family, ""))
            continue
        d = DESIGNS[family]
        v["population_prior"] = d.population.describe()
        if d.priors:  # the SBC's own priors, in the truth and the fit
            v["priors"] = {name: p.to_dict() for name, p in d.priors.items()}
        v["sampler"] = {
            "backend": backend or d.backend,
            "chains": d.chains,
            "tune": d.tune,
            "draws": d.draws,
            "target_accept": d.target_accept,
            "refit_factor": REFIT_FACTOR,
        }
        v["plot"] = (plots or {}).get(family, "")
    return {"rule": RULE, "alpha": alpha, "draws_per_rank": DRAWS_PER_RANK, "families": verdicts}
