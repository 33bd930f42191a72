"""Latent-class multiple-systems estimation: LCMCR's model (Manrique-Vallier 2016), written for NUTS.

Each person belongs to one of K latent classes; within class k the lists capture independently, list j with
probability λ_kj. Heterogeneity of capture and dependence between lists both come from the mixing: people in
a class seen by one list are likely seen by another. The class weights π follow a Dirichlet process truncated at
K classes (stick-breaking):

    v_k ~ Beta(1, α), k = 1…K−1;   π_k = v_k Π_{l<k} (1 − v_l),   π_K = Π_{l<K} (1 − v_l);
    α ~ Gamma(a, b) (rate b; a = b = 0.25);   λ_kj ~ Beta(1, 1);   p(N) ∝ 1/N.

These are LCMCR 0.4.14's defaults (`lcmCR(K, a_alpha, b_alpha)`; its C++ sampler draws λ from Beta(1 + …,
1 + …) and α from Gamma(a + K − 1, b − log π_K), the full conditionals of exactly this prior).

LCMCR samples the class of every person, N and α by Gibbs with data augmentation. Here all three are
integrated out, so that NUTS sees a smooth density in (v, λ) alone:

* α: given the sticks, w_k = −log(1 − v_k) are iid Exponential(α), so integrating α ~ Gamma(a, b) gives
  p(w) = Γ(a + K − 1)/Γ(a) b^a (b + Σ_k w_k)^−(a+K−1), w > 0; NUTS samples log w (``log_cut``). α itself is
  drawn afterwards from its conditional Gamma(a + K − 1, b + Σ w) (`concentration`). With α a parameter,
  α and the sticks of the unused classes form a funnel, and fits of Kosovo diverged (40–160 per fit);

* the class: a pattern h = (x_1 … x_J) has probability P(h) = Σ_k π_k Π_j λ_kj^x_j (1 − λ_kj)^(1 − x_j),
  computed as a logsumexp over classes; the never-seen pattern has P(0) = Σ_k π_k Π_j (1 − λ_kj);
* N: under p(N) ∝ 1/N, summing the multinomial likelihood of all N people over N leaves exactly the
  conditional likelihood Π_h [P(h) / (1 − P(0))]^y_h of the observed patterns, which the model samples;
  N − n | π, λ ~ NegativeBinomial(n, 1 − P(0)) is drawn afterwards (`population`), as LCMCR's own n0 step
  does (LCMCR additionally rejects n0 > 20 n, a truncation that never binds on a sensible table).

Labels. The likelihood is unchanged by permuting the classes; the stick-breaking prior only favours large
weights first. Different chains settle on different labellings (and a chain can switch), so R-hat of
``class_capture``, ``class_weight``, ``stick`` and ``log_cut`` says nothing about convergence (on Kosovo it
runs 1.06–1.4 in fits whose N agrees across chains). Judge a fit on N and on the label-invariant
deterministics: ``p_unseen`` = P(0) and ``list_capture`` = Σ_k π_k λ_kj, each list's marginal capture
probability (`LABEL_INVARIANT`).

Sampling. At the project's default target acceptance (0.9) a fit of Kosovo still diverges now and then,
where a small class's weight and its capture probabilities trade off (a funnel); at `TARGET_ACCEPT` = 0.99
none of 16 chains did. The graph is tiny: nutpie's numba backend samples it ~15× faster than JAX.

Cells. Up to `COMPLETE_OCCASIONS` lists the patterns are every one of the 2^J − 1 (`complete_histories`),
zero counts for those nobody showed, which add nothing to the likelihood; so the replicates spread each
stratum's n people over every pattern with its P(h | seen), the model's own predictive. Beyond, the patterns
seen are the cells and the unseen ones' mass is replicated in no cell (`kernels.observed_histories`). Before,
the replicate renormalised over the patterns seen (on Kosovo, whose 15 patterns are all seen, nothing
changes; numbers in docs/design.md §6).

Dims: stratum (each has its own classes), history (every pattern, up to `COMPLETE_OCCASIONS` lists; the
patterns seen beyond), class, list (the data's occasions, one per list). Every stratum's parameters are
independent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import rng_from
from estim.families.kernels import (
    complete_histories,
    observed_histories,
    population_given_p_unseen,
)
from estim.families.options import whole_option
from estim.priors import Prior, merge_priors

OBSERVED = "history_count"

# Sampler settings with no divergence on Kosovo (4 seeds × 4 chains × 1,000 draws after 1,000 warm-up).
TARGET_ACCEPT = 0.99
BACKEND = "numba"
# What a diagnostics gate should look at: quantities unchanged by relabelling the classes.
LABEL_INVARIANT = ("p_unseen", "list_capture")
# The most classes a model is built with: LCMCR's analyses use 10–50; beyond a few hundred the model's
# (class × pattern) terms outgrow memory long before the extra classes could change N.
MAX_CLASSES = 500

DEFAULT_PRIORS: dict[str, Prior] = {
    # LCMCR's a_alpha = b_alpha = 0.25 (Gamma with shape a, rate b)
    "concentration": Prior("Gamma", alpha=0.25, beta=0.25),
    "class_capture": Prior("Beta", alpha=1, beta=1),
}


def _patterns(data: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The observed counts (stratum, history) and the 0/1 patterns (history, list), checked."""
    if OBSERVED not in data or "capture" not in data or "stratum" not in data[OBSERVED].dims:
        raise EstimInputError(
            "latent-class models need a pattern table from `estim.families.closed.history_data(...)`"
        )
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64)
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    if x.shape[1] < 2:
        raise EstimInputError(
            f"multiple-systems estimation needs at least 2 lists, got {x.shape[1]}"
        )
    if (x.sum(axis=1) == 0).any():
        raise EstimInputError("the pattern table holds the never-seen pattern 0…0: drop it")
    if (counts < 0).any():
        raise EstimInputError("negative counts in the pattern table")
    empty = [
        str(s) for s, c in zip(data["stratum"].values, counts.sum(axis=1), strict=True) if c == 0
    ]
    if empty:
        raise EstimInputError(
            f"strata {empty} have nobody seen: their N has no posterior under 1/N"
        )
    return counts, x


def log_pattern_probabilities(
    log_weight: Any, log_capture: Any, log_miss: Any, x: np.ndarray
) -> tuple[Any, Any]:
    """log P(h) (stratum, history) of each pattern and log P(0) (stratum) of the never-seen one, the class
    summed out: P(h) = Σ_k π_k Π_j λ_kj^x_hj (1 − λ_kj)^(1 − x_hj).

    ``log_weight`` (stratum, class) = log π; ``log_capture``, ``log_miss`` (stratum, class, list) = log λ,
    log(1 − λ), PyTensor tensors; ``x`` (history, list) the 0/1 patterns."""
    xf = np.asarray(x, dtype=float)
    # Σ_j x_hj log λ_kj + (1 − x_hj) log(1 − λ_kj): (stratum, class, history)
    within = pt.matmul(log_capture, xf.T) + pt.matmul(log_miss, (1.0 - xf).T)
    log_p = pt.logsumexp(log_weight[:, :, None] + within, axis=1)
    log_p0 = pt.logsumexp(log_weight + log_miss.sum(axis=2), axis=1)
    return log_p, log_p0


def _gamma_shape_rate(prior: Prior) -> tuple[float, float]:
    if prior.distribution != "Gamma":
        raise EstimInputError(
            f"the concentration's prior must be a Gamma (it is integrated out in closed form), got {prior}"
        )
    return float(prior.parameters["alpha"]), float(prior.parameters["beta"])


def _log_cut_logp(value: Any, a: Any, b: Any, _template: Any) -> Any:
    """log density of u = log w, w_k = −log(1 − v_k), v_k ~ Beta(1, α) iid, α ~ Gamma(a, b) integrated out:
    p(w) = Γ(a + m)/Γ(a) b^a (b + Σw)^−(a+m) on w > 0 (m cuts), times the Jacobian Π w_k."""
    m = value.shape[-1]
    total = pt.exp(value).sum(axis=-1)
    return (
        pt.gammaln(a + m)
        - pt.gammaln(a)
        + a * pt.log(b)
        - (a + m) * pt.log(b + total)
        + value.sum(axis=-1)
    )


def _log_cut_random(
    a: Any, b: Any, template: Any, rng: np.random.Generator | None = None, size: Any = None
) -> np.ndarray:
    """The generative form: α ~ Gamma(a, b), then w_k = −log(1 − v_k) ~ Exponential(α) iid (v ~ Beta(1, α))."""
    batch = tuple(size) if size is not None else ()
    alpha = rng.gamma(a, 1.0 / b, size=batch)
    w = rng.exponential(1.0, size=batch + np.shape(template)[-1:]) / np.asarray(alpha)[..., None]
    return np.log(w)


def build_latent_class(
    data: xr.Dataset, classes: int = 10, priors: Mapping[str, Prior] | None = None
) -> pm.Model:
    """The Dirichlet-process latent-class model of the module docstring, truncated at `classes` classes.

    Free parameters: ``log_cut`` (stratum, cut) and ``class_capture`` λ (stratum, class, list). Deterministics:
    ``stick`` v, ``class_weight`` π, and the label-invariant ``p_unseen`` P(0) and ``list_capture``. Priors
    overridable: ``concentration`` (a Gamma: integrated out, drawn afterwards by `concentration`) and
    ``class_capture``. A pattern table from `estim.families.closed.history_data`; its occasions are the lists.
    """
    classes = whole_option(
        "classes",
        classes,
        "the number of latent classes (where the Dirichlet process is truncated)",
        low=2,
        high=MAX_CLASSES,
    )
    pri = merge_priors(DEFAULT_PRIORS, priors)
    a, b = _gamma_shape_rate(pri["concentration"])
    _, lists = _patterns(data)
    if lists.shape[1] == 2:
        # any 2 × 2 law is a mixture of two with the lists independent (one class per row of the table), so
        # every number on neither list fits the seen patterns exactly: the likelihood is flat in P(0), and a
        # fit (exit 0, gate passed) returned the prior's N (1,145 [771, 1,552] for a Lincoln–Petersen 1,200)
        raise EstimInputError(
            "latent classes need at least 3 lists, got 2: any table of 2 lists is fitted exactly by two "
            "classes with the lists independent in each, whatever the number of people on neither list, so "
            "the data say nothing of N and its posterior would be the prior's (as for heterogeneity on 2 "
            "occasions). Fit Mt (Lincoln–Petersen, the lists independent) and say that it assumes so"
        )
    # every pattern a cell, up to COMPLETE_OCCASIONS lists (docstring)
    data = complete_histories(data)
    counts, x = _patterns(data)
    n_strata = counts.shape[0]
    coords = {
        "stratum": [str(s) for s in data["stratum"].values],
        "history": [str(h) for h in data["history"].values],
        "class": [str(k) for k in range(1, classes + 1)],
        "cut": [str(k) for k in range(1, classes)],
        "list": [str(o) for o in data["occasion"].values],
    }
    with pm.Model(coords=coords) as model:
        # Stick-breaking with α integrated out: NUTS samples u = log w, w_k = −log(1 − v_k). With α kept as a
        # parameter, the sticks of the unused classes and α form a funnel (Beta(1, α) widens without bound
        # in logit v as α → 0); integrated out, no fit of Kosovo diverged at target_accept 0.99.
        log_cut = pm.CustomDist(
            "log_cut",
            a,
            b,
            np.ones(classes - 1),
            logp=_log_cut_logp,
            random=_log_cut_random,
            signature="(),(),(k)->(k)",
            dims=("stratum", "cut"),
        )
        log_rest = -pt.exp(log_cut)  # log(1 − v_k)
        log_v = pt.log1mexp(log_rest)
        pm.Deterministic("stick", pt.exp(log_v), dims=("stratum", "cut"))
        # log π_k = log v_k + Σ_{l<k} log(1 − v_l); the last class takes what is left, Π_{l<K} (1 − v_l)
        zero = pt.zeros((n_strata, 1))
        before = pt.concatenate([zero, pt.cumsum(log_rest, axis=1)], axis=1)
        log_weight = before + pt.concatenate([log_v, zero], axis=1)
        weight = pm.Deterministic("class_weight", pt.exp(log_weight), dims=("stratum", "class"))
        lam = pri["class_capture"].create("class_capture", dims=("stratum", "class", "list"))
        log_p, log_p0 = log_pattern_probabilities(log_weight, pt.log(lam), pt.log1p(-lam), x)
        pm.Deterministic("p_unseen", pt.exp(log_p0), dims="stratum")
        pm.Deterministic(
            "list_capture", (weight[:, :, None] * lam).sum(axis=1), dims=("stratum", "list")
        )
        log_cond = log_p - pt.log1mexp(log_p0)[:, None]
        observed_histories(OBSERVED, log_cond, counts)
    return model


def population(data: xr.Dataset, posterior: xr.Dataset | Any, rng: Any = None) -> xr.DataArray:
    """Draws of N per stratum from the posterior of the latent-class model: at each draw of P(0),
    N = n + NegativeBinomial(n, 1 − P(0)), the law of N given the parameters under p(N) ∝ 1/N."""
    counts, _ = _patterns(data)
    return population_given_p_unseen(counts.sum(axis=1), posterior, rng_from(rng))


def concentration(
    posterior: xr.Dataset | Any, rng: Any = None, priors: Mapping[str, Prior] | None = None
) -> xr.DataArray:
    """Draws of the Dirichlet process's concentration α (chain, draw, stratum): given the sticks, α does not
    depend on the data, and α | v ~ Gamma(a + K − 1, rate b − log π_K), π_K = Π_k (1 − v_k) (LCMCR's own
    Gibbs step). `priors` as given to `build_latent_class`."""
    a, b = _gamma_shape_rate(merge_priors(DEFAULT_PRIORS, priors)["concentration"])
    post = posterior.dataset if hasattr(posterior, "dataset") else posterior
    w = np.exp(post["log_cut"].transpose("chain", "draw", "stratum", "cut").values)
    shape = a + w.shape[-1]
    draws = rng_from(rng).gamma(shape, 1.0 / (b + w.sum(axis=-1)))
    return xr.DataArray(
        draws,
        dims=("chain", "draw", "stratum"),
        coords={k: post[k].values for k in ("chain", "draw", "stratum")},
        name="concentration",
    )
