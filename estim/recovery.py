"""Parameter recovery (coverage) study for the single-register families.

For one family: simulate many datasets from the family's *own* generative model at a fixed truth, fit each
with the family's default priors, and record whether the 90 % equal-tailed posterior interval of N covers the
true N. A calibrated model and sampler should cover in about 90 % of datasets (a Bayesian interval has exact
frequentist coverage only approximately; the acceptance band is 85–95 %).

Simulation (dataset i, ``np.random.default_rng(seed + i)``): N people (``population_size``) get an untruncated
count K from the family's generative model; the register sees those with K ≥ 1.

* ``ztpoisson``: K ~ Poisson(λ); ``ztgeometric``: K ~ Geometric with mean λ (P(k) = λ^k/(1 + λ)^{k+1});
  ``ztnegbin``: K ~ NegBin with mean λ and variance λ(1 + αλ) (gamma–Poisson);
* ``oiztpoisson`` / ``oiztgeometric`` (inflate, then truncate): with probability ω a person is "seen once,
  never again" (K = 1), otherwise K follows the base count;
* ``zelterman``: its generative assumption is the Poisson, K ~ Poisson(λ);
* with ``covariate_effect`` set, each person also gets a binary covariate ``group`` ∈ {a, b} (probability ½
  each) and the rate of group b is λ·exp(covariate_effect); the model is then fitted with that covariate.

Speed: the model is built and compiled (nutpie, JAX backend) once per study. The observed frequency array is
swapped for a named shared variable whose value is replaced per dataset (``CompiledModel.with_data``); its
shape is fixed by padding every dataset's frequencies with zeros up to the largest k seen in any dataset of the
study. A zero cell adds 0 · log P(k | k ≥ 1) = 0 to the log-likelihood (and to its gradient) as long as
log P(k) is finite, which it is for every family's k ≥ 1, so padding does not change the posterior.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytensor
import scipy.stats
import xarray as xr

from estim.diagnostics import check as gate_check
from estim.families import FAMILIES
from estim.families.single_register import OBSERVED, frequency_data  # registers its families

FAMILY_NAMES = ("ztpoisson", "ztgeometric", "zelterman", "ztnegbin", "oiztpoisson", "oiztgeometric")

# The fixed truth of the study, per family (λ: mean of the untruncated base count per person).
DEFAULT_TRUE_PARAMS: dict[str, dict[str, float]] = {
    "ztpoisson": {"lambda": 0.5},
    "ztgeometric": {"lambda": 0.5},
    "zelterman": {"lambda": 0.5},
    "ztnegbin": {"lambda": 0.5, "alpha": 1.0},
    "oiztpoisson": {"lambda": 0.5, "omega": 0.2},
    "oiztgeometric": {"lambda": 0.5, "omega": 0.2},
}
DEFAULT_POPULATION_SIZE = 2000
# Draws per chain (after as many tuning steps, 1,000 at most). The two-parameter families' posteriors are
# strongly correlated (λ with α or ω: ~0.2 effective draws per draw), so they need 2,000 draws per chain for
# the gate's bulk and tail ESS ≥ 400 (2 chains); 1,000 suffice for the one-parameter ones.
DEFAULT_DRAWS = {"ztnegbin": 2000, "oiztpoisson": 2000, "oiztgeometric": 2000}
INTERVAL = (0.05, 0.95)
COVARIATE = "group"
_SHARED_NAME = "recovery_frequency"

COLUMNS = [
    "dataset",
    "seed",
    "n_true",
    "n_observed",
    "n_median",
    "n_q05",
    "n_q95",
    "covered",
    "gate_passed",
    "gate_failed",
    "divergences",
    "seconds",
    "error",
]


# --------------------------------------------------------------------------------------------------------------
# simulation


def true_parameters(
    family_name: str, true_params: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The family's default truth with ``true_params`` applied (unknown names are an error)."""
    if family_name not in DEFAULT_TRUE_PARAMS:
        raise ValueError(
            f"no recovery study for family {family_name!r}; known: {', '.join(DEFAULT_TRUE_PARAMS)}"
        )
    params = dict(DEFAULT_TRUE_PARAMS[family_name])
    unknown = sorted(set(true_params or {}) - set(params))
    if unknown:
        raise ValueError(f"{family_name} takes true parameters {sorted(params)}, not {unknown}")
    params.update(true_params or {})
    return params


def simulate_counts(
    family_name: str,
    rng: np.random.Generator,
    size: int,
    params: Mapping[str, float],
    rate: np.ndarray | float | None = None,
) -> np.ndarray:
    """Untruncated counts K (zeros included) of ``size`` people under the family's generative model.

    ``rate`` (per person) overrides ``params["lambda"]`` (used for the covariate).
    """
    lam = np.broadcast_to(np.asarray(params["lambda"] if rate is None else rate, float), (size,))
    if family_name in ("ztpoisson", "zelterman", "oiztpoisson"):
        k = rng.poisson(lam)
    elif family_name in ("ztgeometric", "oiztgeometric"):
        # P(k) = λ^k/(1 + λ)^{k+1}: failures before the first success with success probability 1/(1 + λ)
        k = rng.negative_binomial(1, 1.0 / (1.0 + lam))
    elif family_name == "ztnegbin":
        alpha = params["alpha"]
        # gamma–Poisson: rates ~ Gamma(shape 1/α, mean λ), variance of K = λ(1 + αλ)
        k = rng.poisson(rng.gamma(1.0 / alpha, alpha * lam))
    else:
        raise ValueError(f"no generative model for family {family_name!r}")
    if family_name.startswith("oizt"):
        # inflate, then truncate: a share ω is seen exactly once
        k = np.where(rng.random(size) < params["omega"], 1, k)
    return k.astype(np.int64)


def simulate_dataset(
    family_name: str,
    seed: int,
    *,
    true_params: Mapping[str, float] | None = None,
    population_size: int = DEFAULT_POPULATION_SIZE,
    covariate_effect: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """One simulated register, deterministic in ``seed``: (table of the observed people, true N).

    The table has one row per cell: ``k`` (times seen, ≥ 1), ``n`` (people) and, with ``covariate_effect``,
    ``group``. Feed it to ``frequency_data(table, count="k", weight="n", covariates=...)``.
    """
    params = true_parameters(family_name, true_params)
    rng = np.random.default_rng(seed)
    if covariate_effect is None:
        k = simulate_counts(family_name, rng, population_size, params)
        seen = k[k >= 1]
        counts = np.bincount(seen)[1:]
        table = pd.DataFrame({"k": np.arange(1, len(counts) + 1), "n": counts})
    else:
        b = rng.random(population_size) < 0.5
        rate = params["lambda"] * np.exp(covariate_effect * b)
        k = simulate_counts(family_name, rng, population_size, params, rate=rate)
        obs = k >= 1
        table = (
            pd.DataFrame({COVARIATE: np.where(b[obs], "b", "a"), "k": k[obs], "n": 1})
            .groupby([COVARIATE, "k"], as_index=False)["n"]
            .sum()
        )
    return table[table["n"] > 0].reset_index(drop=True), int(population_size)


def padded_frequency_data(table: pd.DataFrame, n_k: int, covariates: list[str]) -> xr.Dataset:
    """``frequency_data`` with the k axis padded with zero cells up to ``n_k``."""
    data = frequency_data(table, count="k", weight="n", covariates=covariates)
    have = data.sizes["k"]
    if have > n_k:
        raise ValueError(f"dataset has counts up to {have}, more than the padding {n_k}")
    if have == n_k:
        return data
    pad = np.zeros((data.sizes["pattern"], n_k - have), dtype=np.int64)
    f = np.concatenate([data[OBSERVED].values, pad], axis=1)
    out = data.drop_vars(OBSERVED).drop_dims("k")
    out = out.assign_coords(k=np.arange(1, n_k + 1, dtype=np.int64))
    out[OBSERVED] = (("pattern", "k"), f)
    out.attrs.update(data.attrs)
    return out


# --------------------------------------------------------------------------------------------------------------
# one compiled model, many datasets


def _with_shared_observed(model: Any, initial: np.ndarray) -> Any:
    """A copy of ``model`` whose observed frequency array is a shared variable named ``_SHARED_NAME``."""
    from pymc.model.fgraph import ModelObservedRV, fgraph_from_model, model_from_fgraph

    fgraph, _ = fgraph_from_model(model)
    nodes = [n for n in fgraph.apply_nodes if isinstance(n.op, ModelObservedRV)]
    if len(nodes) != 1:
        raise RuntimeError(f"expected one observed variable, found {len(nodes)}")
    value = nodes[0].inputs[1]
    shared = pytensor.shared(
        np.asarray(initial, dtype=value.dtype), name=_SHARED_NAME, shape=value.type.shape
    )
    fgraph.replace(value, shared, import_missing=True)
    return model_from_fgraph(fgraph, mutate_fgraph=True)


def compile_study_model(family_name: str, data: xr.Dataset, covariates: list[str]) -> Any:
    """The family's model for ``data``'s shape (default priors), compiled once by nutpie's JAX backend."""
    import nutpie

    family = FAMILIES[family_name]
    model = family.build(data, None, covariates=covariates)
    shared_model = _with_shared_observed(model, data[OBSERVED].values)
    # freeze_model=False keeps the frequency array a runtime input rather than a compiled-in constant
    return nutpie.compile_pymc_model(
        shared_model, backend="jax", gradient_backend="jax", freeze_model=False
    )


def fit_dataset(
    compiled: Any,
    family_name: str,
    data: xr.Dataset,
    covariates: list[str],
    *,
    seed: int,
    draws: int,
    tune: int,
    chains: int,
) -> xr.DataTree:
    """NUTS (nutpie) on one dataset with the compiled model; the posterior gets the draws of N."""
    import nutpie

    family = FAMILIES[family_name]
    seeds = np.random.SeedSequence(seed).generate_state(2)
    idata = nutpie.sample(
        compiled.with_data(**{_SHARED_NAME: data[OBSERVED].values}),
        draws=draws,
        tune=tune,
        chains=chains,
        cores=chains,
        seed=int(seeds[0]),
        progress_bar=False,
    )
    posterior = idata["posterior"].to_dataset()
    n_draws = family.population(
        data, posterior, np.random.default_rng(int(seeds[1])), covariates=covariates
    )
    idata["posterior"] = xr.DataTree(posterior.assign(N=n_draws))
    return idata


def recovery_study(
    family_name: str,
    *,
    n_datasets: int = 100,
    seed: int = 20260101,
    true_params: Mapping[str, float] | None = None,
    population_size: int = DEFAULT_POPULATION_SIZE,
    covariate_effect: float | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 2,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulate ``n_datasets`` registers at a fixed truth, fit each, and check the 90 % interval of N.

    One row per dataset: ``n_true``, ``n_observed``, posterior median and 5 %/95 % quantiles of N,
    ``covered`` (n_q05 ≤ n_true ≤ n_q95), ``gate_passed`` (the diagnostics gate on the posterior including N),
    the names of failed gate checks, divergences, ``seconds`` (sampling + draws of N + gate for that dataset)
    and ``error`` (empty unless the fit raised). ``df.attrs`` records the settings and the compile time.

    ``draws`` per chain defaults to ``DEFAULT_DRAWS`` (1,000 unless listed), ``tune`` to min(draws, 1000).
    """
    if draws is None:
        draws = DEFAULT_DRAWS.get(family_name, 1000)
    if tune is None:
        tune = min(draws, 1000)
    if family_name not in FAMILIES or FAMILIES[family_name].data_kind != "frequency":
        raise ValueError(f"{family_name!r} is not a single-register family")
    params = true_parameters(family_name, true_params)
    covariates = [COVARIATE] if covariate_effect is not None else []
    seeds = [seed + i for i in range(n_datasets)]
    tables = [
        simulate_dataset(
            family_name,
            s,
            true_params=params,
            population_size=population_size,
            covariate_effect=covariate_effect,
        )
        for s in seeds
    ]
    n_k = max(2, *(int(t["k"].max()) for t, _ in tables))
    datasets = [padded_frequency_data(t, n_k, covariates) for t, _ in tables]
    patterns = {tuple(d["pattern"].values) for d in datasets}
    if len(patterns) != 1:
        raise RuntimeError(f"datasets differ in covariate patterns: {patterns}")

    start = time.perf_counter()
    compiled = compile_study_model(family_name, datasets[0], covariates)
    compile_seconds = time.perf_counter() - start

    rows = []
    for i, (s, data, (_, n_true)) in enumerate(zip(seeds, datasets, tables, strict=True)):
        t0 = time.perf_counter()
        row: dict[str, Any] = {
            "dataset": i,
            "seed": s,
            "n_true": n_true,
            "n_observed": int(data[OBSERVED].values.sum()),
        }
        try:
            idata = fit_dataset(
                compiled,
                family_name,
                data,
                covariates,
                seed=s,
                draws=draws,
                tune=tune,
                chains=chains,
            )
            n = idata["posterior"]["N"].values.ravel()
            q05, med, q95 = np.quantile(n, [INTERVAL[0], 0.5, INTERVAL[1]])
            verdict = gate_check(idata)
            row.update(
                n_median=float(med),
                n_q05=float(q05),
                n_q95=float(q95),
                covered=bool(q05 <= n_true <= q95),
                gate_passed=verdict.passed,
                gate_failed=",".join(verdict.failed),
                divergences=int(idata["sample_stats"]["diverging"].sum()),
                error="",
            )
        except Exception as e:  # noqa: BLE001 - one failed fit is a result of the study, not its end
            row.update(
                n_median=np.nan,
                n_q05=np.nan,
                n_q95=np.nan,
                covered=False,
                gate_passed=False,
                gate_failed="error",
                divergences=-1,
                error=f"{type(e).__name__}: {e}".splitlines()[0],
            )
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        if progress:
            print(
                f"{family_name} {i + 1}/{n_datasets}: N={n_true} median={row['n_median']:.0f} "
                f"[{row['n_q05']:.0f}, {row['n_q95']:.0f}] covered={row['covered']} "
                f"gate={row['gate_passed']} {row['seconds']:.1f}s",
                flush=True,
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update(
        family=family_name,
        true_params=params,
        population_size=population_size,
        covariate_effect=covariate_effect,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        n_k=n_k,
        compile_seconds=compile_seconds,
        wall_seconds=time.perf_counter() - start,
    )
    return df


# --------------------------------------------------------------------------------------------------------------
# summary


def coverage_summary(df: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Coverage of the 90 % interval with its exact (Clopper–Pearson) binomial ``level`` interval, relative
    error of the posterior median (median of |median − N|/N, and mean signed), gate failures and errors."""
    n = len(df)
    hits = int(df["covered"].astype(bool).sum())
    ci = scipy.stats.binomtest(hits, n).proportion_ci(level, method="exact") if n else None
    rel = (df["n_median"] - df["n_true"]) / df["n_true"]
    width = (df["n_q95"] - df["n_q05"]) / df["n_true"]
    return {
        "datasets": n,
        "covered": hits,
        "coverage": hits / n if n else float("nan"),
        "coverage_ci": (float(ci.low), float(ci.high)) if ci else (float("nan"), float("nan")),
        "median_abs_rel_error": float(rel.abs().median()),
        "mean_rel_error": float(rel.mean()),
        "median_rel_width": float(width.median()),
        "below": int((df["n_true"] < df["n_q05"]).sum()),
        "above": int((df["n_true"] > df["n_q95"]).sum()),
        "gate_failures": int((~df["gate_passed"].astype(bool)).sum()),
        # (a CSV read back gives NaN for the empty error strings)
        "errors": int((df["error"].notna() & (df["error"].astype(str) != "")).sum()),
        "seconds_per_dataset": float(df["seconds"].median()),
    }
