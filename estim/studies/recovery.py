"""Parameter recovery (coverage) study for the single-register and closed-population families.

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

Closed-population families (``estim.families.closed``; dataset i again uses ``default_rng(seed + i)``):
N people (``population_size``, 150 by default) in one stratum are exposed to T = 6 capture occasions; each
person is caught on occasion t with probability p_it, independently across occasions given p_it; people never
caught are unobserved. The truth (``DEFAULT_TRUE_PARAMS``) is stated in the model's own parameterisation
(``closed._log_probs``):

* ``M0``: p_it = p = 0.3 for everyone;
* ``Mt``: p_it = p_t = (0.2, 0.35, 0.25, 0.4, 0.3, 0.2) (params ``p1`` … ``p6``);
* ``Mb``: p = 0.25 until a person's first capture, c = 0.4 on every later occasion (the model's
  behaviour effect is β = logit c − logit p ≈ 0.69, trap-happy);
* ``Mh_logitnormal``: logit p_i ~ Normal(logit 0.3, 1) per person, the same on every occasion (params ``p``:
  the median person's p; ``sigma_h``);
* ``Mh_mixture``: each person is in the low class (p = 0.15) with probability 0.6, else in the high class
  (p = 0.6) (params ``p_low``, ``p_high``, ``weight_low``; the model's ``mixture_weight`` is the weight of the
  *high* class, 0.4, and its ``class_gap`` is logit 0.6 − logit 0.15 ≈ 2.14);
* ``Mth``: logit p_it = α_t + ε_i with α_t = logit p_t of Mt (the occasion logits are free, not centred,
  exactly as the model's ``logit_p``) and ε_i ~ Normal(0, 1) per person;
* ``Mtbh``: as Mth plus β = 0.5 on the logit scale on every occasion after the person's first capture
  (``behaviour``; positive = trap-happy, as in the model).

Each dataset is the count of each of the 2^T − 1 = 63 observable histories, padded with zero counts for the
histories nobody had, in one fixed order (``closed.all_histories``: 111111 first), so every dataset of a study
has the same shape. A zero count adds 0 · log P(h | seen) = 0 (P(h) > 0 for every model and history), so the
padding leaves the likelihood unchanged. N = 150 and T = 6 give about 110–135 people seen: a small but typical
closed-population survey, where the interval for N is wide enough for the priors to matter. N is an integer
and its 90 % interval then spans only ~20 values, so the truth sits exactly on an endpoint in a few per cent
of datasets; such a dataset counts as covered (``at_endpoint`` in `coverage_summary`), which lifts coverage
a few points above 90 %. (The cost does not grow with N: the data are always 63 history counts.)

Speed: the model is built and compiled (nutpie, JAX backend) once per study. The observed frequency array is
swapped for a named shared variable whose value is replaced per dataset (``CompiledModel.with_data``); its
shape is fixed by padding every dataset's frequencies with zeros up to the largest k seen in any dataset of the
study (for the closed families: with zero counts up to all 63 histories). A zero cell adds
0 · log P(k | k ≥ 1) = 0 to the log-likelihood (and to its gradient) as long as log P(k) is finite, which it
is for every family's k ≥ 1, so padding does not change the posterior.
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

from estim.families import FAMILIES
from estim.families.closed import all_histories, history_data  # registers its families
from estim.families.single_register import OBSERVED, frequency_data  # registers its families
from estim.io import atomic_path
from estim.run.diagnostics import check as gate_check

FAMILY_NAMES = ("ztpoisson", "ztgeometric", "zelterman", "ztnegbin", "oiztpoisson", "oiztgeometric")
CLOSED_FAMILY_NAMES = ("M0", "Mt", "Mb", "Mh_logitnormal", "Mh_mixture", "Mth", "Mtbh")
STUDY_FAMILY_NAMES = FAMILY_NAMES + CLOSED_FAMILY_NAMES
OCCASIONS = 6  # capture occasions T of the closed-population studies
OCCASION_COLUMNS = [f"o{t + 1}" for t in range(OCCASIONS)]
_MT_P = (
    0.2,
    0.35,
    0.25,
    0.4,
    0.3,
    0.2,
)  # Mt's p_t; logit p_t are Mth's and Mtbh's occasion logits α_t
_P_T = {f"p{t + 1}": p for t, p in enumerate(_MT_P)}

# The fixed truth of the study, per family (λ: mean of the untruncated base count per person).
DEFAULT_TRUE_PARAMS: dict[str, dict[str, float]] = {
    "ztpoisson": {"lambda": 0.5},
    "ztgeometric": {"lambda": 0.5},
    "zelterman": {"lambda": 0.5},
    # λ = 1: at λ = 0.5 few people are seen twice, α is barely identified (the Dutch data's boundary problem)
    # and the interval, wide and prior-led, over-covers (0.96 at two seeds)
    "ztnegbin": {"lambda": 1.0, "alpha": 1.0},
    "oiztpoisson": {"lambda": 0.5, "omega": 0.2},
    "oiztgeometric": {"lambda": 0.5, "omega": 0.2},
    # closed populations (p: capture probability per occasion; see the module docstring)
    "M0": {"p": 0.3},
    "Mt": dict(_P_T),
    "Mb": {"p": 0.25, "c": 0.4},
    "Mh_logitnormal": {"p": 0.3, "sigma_h": 1.0},
    "Mh_mixture": {"p_low": 0.15, "p_high": 0.6, "weight_low": 0.6},
    "Mth": {**_P_T, "sigma_h": 1.0},
    "Mtbh": {**_P_T, "behaviour": 0.5, "sigma_h": 1.0},
}
DEFAULT_POPULATION_SIZE = 2000  # single-register families
DEFAULT_CLOSED_POPULATION_SIZE = 150  # closed-population families
# Draws per chain (after as many tuning steps, 1,000 at most) — what the gate's bulk and tail ESS ≥ 400 (2 chains)
# needs, measured over 100 datasets each (seed 20260101): the two-parameter single-register families' posteriors
# are strongly correlated (λ with α or ω: ~0.2 effective draws per draw); oiztpoisson failed the gate in 6 of
# 100 fits at 2,000 and in 0 at 4,000. Mh_logitnormal failed in 15 at 1,000 and 0 at 2,000; Mth in 7 at 1,000
# (tail ESS) and 0 at 2,000. Mh_mixture's heavy-tailed posterior needs 4,000 after 2,000 tuning steps at
# target_accept 0.95 (1 failure in 100; 38 at 1,000 with the former flat weight prior).
DEFAULT_DRAWS = {
    "ztnegbin": 2000,
    "oiztpoisson": 4000,
    "oiztgeometric": 2000,
    "Mh_logitnormal": 2000,
    "Mh_mixture": 4000,
    "Mth": 2000,
    "Mtbh": 2000,  # as Mth: 0 gate failures in 100 fits
}
DEFAULT_TUNE = {"Mh_mixture": 2000}
DEFAULT_TARGET_ACCEPT = {"Mh_mixture": 0.95}
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


def _logit(p: Any) -> Any:
    p = np.asarray(p, float)
    return np.log(p) - np.log1p(-p)


def _expit(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def simulate_histories(
    family_name: str,
    rng: np.random.Generator,
    size: int,
    params: Mapping[str, float],
    occasions: int = OCCASIONS,
) -> np.ndarray:
    """0/1 capture histories (``size`` people × ``occasions``, the never-caught included) under the closed
    family's generative model, with the parameters of ``DEFAULT_TRUE_PARAMS`` (see the module docstring)."""
    t = occasions
    if family_name in ("Mt", "Mth", "Mtbh"):
        alpha = _logit([params[f"p{j + 1}"] for j in range(t)])  # occasion logits α_t
    if family_name == "M0":
        eta = np.full((size, t), _logit(params["p"]))
    elif family_name == "Mt":
        eta = np.broadcast_to(alpha, (size, t))
    elif family_name == "Mb":
        eta = np.full((size, t), _logit(params["p"]))
    elif family_name == "Mh_logitnormal":
        eps = rng.normal(0.0, params["sigma_h"], size)
        eta = np.broadcast_to((_logit(params["p"]) + eps)[:, None], (size, t))
    elif family_name == "Mh_mixture":
        low = rng.random(size) < params["weight_low"]
        eta = np.broadcast_to(
            np.where(low, _logit(params["p_low"]), _logit(params["p_high"]))[:, None], (size, t)
        )
    elif family_name in ("Mth", "Mtbh"):
        eps = rng.normal(0.0, params["sigma_h"], size)
        eta = alpha[None, :] + eps[:, None]
    else:
        raise ValueError(f"no capture-history model for family {family_name!r}")
    u = rng.random((size, t))
    if family_name not in ("Mb", "Mtbh"):
        return (u < _expit(eta)).astype(np.int8)
    # trap response: the logit shifts by β on every occasion after the first capture
    beta = _logit(params["c"]) - _logit(params["p"]) if family_name == "Mb" else params["behaviour"]
    x = np.zeros((size, t), dtype=np.int8)
    seen = np.zeros(size, dtype=bool)
    for j in range(t):
        x[:, j] = u[:, j] < _expit(eta[:, j] + beta * seen)
        seen |= x[:, j].astype(bool)
    return x


def simulate_dataset(
    family_name: str,
    seed: int,
    *,
    true_params: Mapping[str, float] | None = None,
    population_size: int | None = None,
    covariate_effect: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """One simulated register, deterministic in ``seed``: (table of the observed people, true N).

    The table has one row per cell: ``k`` (times seen, ≥ 1), ``n`` (people) and, with ``covariate_effect``,
    ``group``. Feed it to ``frequency_data(table, count="k", weight="n", covariates=...)``.

    Closed-population families: one row per distinct observed capture history, the 0/1 occasion columns
    ``OCCASION_COLUMNS`` and ``n`` (people); feed it to ``padded_history_data``. ``population_size`` defaults
    to ``DEFAULT_POPULATION_SIZE`` (single register) or ``DEFAULT_CLOSED_POPULATION_SIZE`` (closed).
    """
    params = true_parameters(family_name, true_params)
    rng = np.random.default_rng(seed)
    if family_name in CLOSED_FAMILY_NAMES:
        if covariate_effect is not None:
            raise ValueError("the closed-population recovery study has no covariate")
        size = DEFAULT_CLOSED_POPULATION_SIZE if population_size is None else population_size
        x = simulate_histories(family_name, rng, size, params)
        x = x[x.sum(axis=1) > 0]
        table = (
            pd.DataFrame(x, columns=OCCASION_COLUMNS)
            .assign(n=1)
            .groupby(OCCASION_COLUMNS, as_index=False)["n"]
            .sum()
            .sort_values(OCCASION_COLUMNS, ascending=False)
        )
        return table.reset_index(drop=True), int(size)
    if population_size is None:
        population_size = DEFAULT_POPULATION_SIZE
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


def padded_history_data(table: pd.DataFrame, occasions: int = OCCASIONS) -> xr.Dataset:
    """``history_data`` over all 2^T − 1 observable histories (zero counts for those nobody had), in
    ``all_histories`` order (decreasing binary value, 11…1 first), one stratum "all"."""
    cols = OCCASION_COLUMNS[:occasions] if occasions <= OCCASIONS else None
    if cols is None or list(table.columns[:occasions]) != cols:
        raise ValueError(f"expected occasion columns {cols}, got {list(table.columns)}")
    full = pd.DataFrame(all_histories(occasions), columns=cols)
    merged = full.merge(table, on=cols, how="left", validate="one_to_one")
    if int(merged["n"].sum()) != int(table["n"].sum()):
        raise ValueError("the table has histories that are not observable (all zeros?)")
    merged["n"] = merged["n"].fillna(0).astype(np.int64)
    return history_data(merged, occasions=cols, count="n")


def _is_closed(family_name: str) -> bool:
    if family_name not in FAMILIES or family_name not in DEFAULT_TRUE_PARAMS:
        raise ValueError(
            f"no recovery study for family {family_name!r}; known: {', '.join(STUDY_FAMILY_NAMES)}"
        )
    kind = FAMILIES[family_name].data_kind
    if kind not in ("frequency", "histories"):
        raise ValueError(f"no recovery study for data kind {kind!r}")
    return kind == "histories"


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


def compile_study_model(
    family_name: str, data: xr.Dataset, covariates: list[str], backend: str = "jax"
) -> Any:
    """The family's model for ``data``'s shape (default priors), compiled once by nutpie.

    ``backend`` "jax" compiles in seconds but pays ~0.3 ms of dispatch per gradient; "numba" compiles for
    ~30 s and then samples these small models several times faster, so it pays off over a long study.
    """
    if backend not in ("jax", "numba"):
        raise ValueError(f"backend must be 'jax' or 'numba', not {backend!r}")
    import nutpie

    family = FAMILIES[family_name]
    if _is_closed(family_name):
        if covariates:
            raise ValueError("the closed-population recovery study has no covariate")
        model = family.build(data, None)
    else:
        model = family.build(data, None, covariates=covariates)
    shared_model = _with_shared_observed(model, data[family.observed_name].values)
    # freeze_model=False keeps the frequency array a runtime input rather than a compiled-in constant
    return nutpie.compile_pymc_model(
        shared_model,
        backend=backend,
        gradient_backend="jax" if backend == "jax" else "pytensor",
        freeze_model=False,
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
    target_accept: float = 0.9,
) -> xr.DataTree:
    """NUTS (nutpie) on one dataset with the compiled model; the posterior gets the draws of N."""
    import nutpie

    family = FAMILIES[family_name]
    seeds = np.random.SeedSequence(seed).generate_state(2)
    idata = nutpie.sample(
        compiled.with_data(**{_SHARED_NAME: data[family.observed_name].values}),
        draws=draws,
        tune=tune,
        chains=chains,
        cores=chains,
        seed=int(seeds[0]),
        progress_bar=False,
        # A low-rank mass matrix adapts to correlated posteriors (λ with ω or α, intercept with covariate
        # effects): with nutpie's diagonal default 12 of 100 oiztpoisson fits failed the gate, with it none.
        adaptation="low_rank",
        target_accept=target_accept,  # 0.9 is the specs' default (estim.run.spec.SamplerSpec); nutpie's is 0.8
    )
    posterior = idata["posterior"].to_dataset()
    n_draws = family.population(
        data, posterior, np.random.default_rng(int(seeds[1])), covariates=covariates
    )
    # (closed families: N has a stratum dimension of length 1)
    idata["posterior"] = xr.DataTree(posterior.assign(N=n_draws))
    return idata


def recovery_study(
    family_name: str,
    *,
    n_datasets: int = 100,
    seed: int = 20260101,
    true_params: Mapping[str, float] | None = None,
    population_size: int | None = None,
    covariate_effect: float | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 2,
    progress: bool = False,
    backend: str = "jax",
    target_accept: float | None = None,
    partial_out: str | None = None,
) -> pd.DataFrame:
    """Simulate ``n_datasets`` registers at a fixed truth, fit each, and check the 90 % interval of N.

    One row per dataset: ``n_true``, ``n_observed``, posterior median and 5 %/95 % quantiles of N,
    ``covered`` (n_q05 ≤ n_true ≤ n_q95), ``gate_passed`` (the diagnostics gate on the posterior including N),
    the names of failed gate checks, divergences, ``seconds`` (sampling + draws of N + gate for that dataset)
    and ``error`` (empty unless the fit raised). ``df.attrs`` records the settings and the compile time.

    ``draws`` per chain defaults to ``DEFAULT_DRAWS`` (1,000 unless listed), ``tune`` to ``DEFAULT_TUNE`` or
    min(draws, 1000), ``target_accept`` to ``DEFAULT_TARGET_ACCEPT`` or 0.9 (the specs' default). ``backend``
    "numba" compiles for ~30 s once and then samples these small models 3–4× faster than "jax". With
    ``partial_out`` the rows so far are written to that CSV after every dataset.
    Single-register families (``data_kind`` "frequency") and closed-population families ("histories") alike;
    ``population_size`` defaults per kind (``DEFAULT_POPULATION_SIZE``, ``DEFAULT_CLOSED_POPULATION_SIZE``).
    """
    closed = _is_closed(family_name)
    if closed and covariate_effect is not None:
        raise ValueError("the closed-population recovery study has no covariate")
    if population_size is None:
        population_size = DEFAULT_CLOSED_POPULATION_SIZE if closed else DEFAULT_POPULATION_SIZE
    if draws is None:
        draws = DEFAULT_DRAWS.get(family_name, 1000)
    if tune is None:
        tune = DEFAULT_TUNE.get(family_name, min(draws, 1000))
    if target_accept is None:
        target_accept = DEFAULT_TARGET_ACCEPT.get(family_name, 0.9)
    observed = FAMILIES[family_name].observed_name
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
    if closed:
        n_k = None
        datasets = [padded_history_data(t) for t, _ in tables]
    else:
        n_k = max(2, *(int(t["k"].max()) for t, _ in tables))
        datasets = [padded_frequency_data(t, n_k, covariates) for t, _ in tables]
        patterns = {tuple(d["pattern"].values) for d in datasets}
        if len(patterns) != 1:
            raise RuntimeError(f"datasets differ in covariate patterns: {patterns}")

    start = time.perf_counter()
    compiled = compile_study_model(family_name, datasets[0], covariates, backend)
    compile_seconds = time.perf_counter() - start

    rows = []
    for i, (s, data, (_, n_true)) in enumerate(zip(seeds, datasets, tables, strict=True)):
        t0 = time.perf_counter()
        row: dict[str, Any] = {
            "dataset": i,
            "seed": s,
            "n_true": n_true,
            "n_observed": int(data[observed].values.sum()),
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
                target_accept=target_accept,
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
        if partial_out is not None:  # a long study keeps what it has measured if it is stopped
            with atomic_path(partial_out) as tmp:
                pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False)
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
        occasions=OCCASIONS if closed else None,
        compile_seconds=compile_seconds,
        backend=backend,
        target_accept=target_accept,
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
        # N is an integer: with a narrow interval (small N) the truth can sit exactly on an endpoint, which
        # counts as covered (n_q05 ≤ n_true ≤ n_q95) and pushes coverage above the nominal 90 %
        "at_endpoint": int(((df["n_true"] == df["n_q05"]) | (df["n_true"] == df["n_q95"])).sum()),
        "gate_failures": int((~df["gate_passed"].astype(bool)).sum()),
        # (a CSV read back gives NaN for the empty error strings)
        "errors": int((df["error"].notna() & (df["error"].astype(str) != "")).sum()),
        "seconds_per_dataset": float(df["seconds"].median()),
    }
