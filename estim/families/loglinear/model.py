"""The Bayesian log-linear capture–recapture model, N marginalised.

Each stratum s has its own coefficients. A cell c (a capture history, or k captures of an f_k table) has the
expected count μ_sc = N_s-scale × exp(offset_c + x_c · β_s) and the never-seen history 0…0 has x = 0, so the
probability of being seen in cell c, and of never being seen, are

    P(c) = exp(offset_c + x_c · β_s) / (1 + Σ_c' exp(offset_c' + x_c' · β_s)),   P(0) = 1 / (1 + Σ_c' …).

As for the Otis models (`estim.families.closed`): under the prior p(N) ∝ 1/N, summing the full multinomial
likelihood over N leaves exactly the conditional likelihood Π_c [P(c)/(1 − P(0))]^y_c of the observed counts,
which the model samples; N − n | β ~ NegativeBinomial(n, 1 − P(0)) is drawn afterwards (`population`). The
intercept of the Poisson form (the log expected never-seen count) is not a parameter here: it is what N
marginalises. One log-likelihood term per cell of the data (a history, or k for an f_k table): the same
observations as the Otis models' on the same table, so LOO compares them, and a model fitted on the f_k
cells (M0, Mh) still scores every history of the data (P(h) = P(k)/C(t, k)).

Cells. As the Otis models' (`estim.families.closed.model`): up to `COMPLETE_OCCASIONS` occasions the data's
cells are every one of the 2^t − 1 histories, zero counts for those nobody showed (`complete_histories`; a
zero cell adds nothing to the likelihood, 0 · log P taken as 0), so that each stratum's n replicated people
fall on every history with its P(h | seen) — the fitted model's own predictive, which `estim check` compares
cell by cell. Beyond, the cells are the histories seen and the unseen ones' mass is replicated in no cell
(`kernels.observed_histories`, `replicate_counts(remainder=True)`). An f_k table's cells are its k, which
hold every outcome (for t = ∞ the model is normalised over the k the table holds). Before, the replicate
renormalised over the histories seen: nobody fell on an unseen one, and on the hares the Mh Chao check of the
33 observed history counts read Freeman–Tukey p 1.000, MISFIT, an artefact (docs/design.md §6 has the
numbers before and after; the posterior is unchanged). The lists_shrinkage family builds this model too.

Scale. Each term enters divided by its largest absolute value over the cells (k by t, 2^k − 1 by 2^t − 1, an
occasion's 0/1 by 1), so that ``effect`` is the change in the log expected count from a term's zero to its
largest value: coefficients of one scale, which NUTS needs (Poisson2's raw coefficient is a hundred times
smaller than an occasion's). ``coefficient`` = effect / scale is the deterministic on Rcapture's scale,
comparable with the ML estimates.

Priors (defaults in `DEFAULT_PRIORS`, each overridable by a spec): ``effect`` Normal(0, 30) for every capture,
interaction and Poisson/Darroch/Gamma heterogeneity term; ``eta`` HalfNormal(3) for Chao's terms, which must
be ≥ 0 (Rcapture drops a negative one; here the prior's support enforces it). The likelihood decides: the
Bayesian median lies within half an SE of the MLE on every shipped benchmark. Narrower effect priors do not
let it: the Gamma3.5 model of the Dutch counts has scaled effects of 23 and 26 at its MLE, and Normal(0, 10)
put its median 1.09 SE below the MLE (Normal(0, 30): 0.24). Chao's η goes the other way (the hares' Mh Chao:
−0.13 SE with HalfNormal(1), +0.34 with HalfNormal(3), +0.50 with HalfNormal(10), +0.50 with HalfNormal(30)):
the MLE sets a negative η to zero, on the boundary, where a posterior can only lie above it, and the wider
the prior the further above. The effect priors are so wide that the prior predictive check calls them
implausible (it puts nearly everyone in one cell): the price of letting the data decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import comb
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
from estim.families.loglinear.design import MULTIPLICITY, OBSERVED, Design, _codes
from estim.priors import Prior, merge_priors

DEFAULT_PRIORS: dict[str, Prior] = {
    "effect": Prior("Normal", mu=0, sigma=30),
    "eta": Prior("HalfNormal", sigma=3),
}


def priors_for(design: Design) -> dict[str, Prior]:
    """The default priors of the parameters this design has (no ``eta`` without Chao's terms)."""
    out = {}
    if (~design.nonnegative).any():
        out["effect"] = DEFAULT_PRIORS["effect"]
    if design.nonnegative.any():
        out["eta"] = DEFAULT_PRIORS["eta"]
    return out


def term_scale(matrix: np.ndarray) -> np.ndarray:
    """Each design column's largest absolute value over the cells (1 for a column of zeros)."""
    peak = np.abs(matrix).max(axis=0) if matrix.size else np.zeros(matrix.shape[1])
    return np.where(peak > 0, peak, 1.0)


def data_cells(design: Design, data: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data's own cells (its ``history`` coordinate): their counts (stratum, history), the design cell
    each falls in, and the log of its share of that cell (−log C(t, k) for a history in a k cell)."""
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.int64)
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    labels = list(design.cells)
    if MULTIPLICITY in data or labels == [str(h) for h in data["history"].values]:
        return counts, np.arange(len(labels)), np.zeros(len(labels))
    if labels[0].startswith("k="):
        k = x.sum(axis=1)
        t = x.shape[1]
        share = -np.log([comb(t, int(j)) for j in k])
        return counts, k - 1, share
    t = x.shape[1]
    return counts, 2**t - 1 - _codes(x), np.zeros(len(x))


def build_loglinear(
    design: Design,
    data: xr.Dataset,
    priors: Mapping[str, Prior] | None = None,
    *,
    effects: Callable[[], Any] | None = None,
) -> pm.Model:
    """The model of the module docstring, with dims stratum, history (the data's cells) and term.

    `effects`, if given, builds the free terms' scaled effects (stratum, term) inside the model in place of
    the independent ``effect`` prior: a structured prior over the terms (the horseshoe of
    `estim.families.lists.shrinkage`). The likelihood, P(0) and N are the engine's either way.

    The history cells are every history up to `COMPLETE_OCCASIONS` (`complete_histories`, zeros for those
    nobody showed), so that the replicates are the model's own (module docstring, "Cells")."""
    pri = merge_priors(priors_for(design), priors)
    data = complete_histories(data)
    counts, cell, share = data_cells(design, data)
    if (counts.sum(axis=1) == 0).any():
        raise EstimInputError("a stratum with nobody seen has no posterior for N")
    nn = design.nonnegative
    free = [t for t, c in zip(design.terms, nn, strict=True) if not c]
    chao = [t for t, c in zip(design.terms, nn, strict=True) if c]
    coords = {"stratum": list(design.strata), "history": [str(h) for h in data["history"].values]}
    if free:
        coords["term"] = free
    if chao:
        coords["chao_term"] = chao
    scale = term_scale(design.matrix)
    scaled = design.matrix / scale
    with pm.Model(coords=coords) as model:
        log_mu = pt.zeros((len(design.strata), 1)) + design.offset[None, :]
        if free:
            if effects is None:
                effect = pri["effect"].create("effect", dims=("stratum", "term"))
            else:
                effect = pm.Deterministic("effect", effects(), dims=("stratum", "term"))
            log_mu = log_mu + pt.dot(effect, scaled[:, ~nn].T)
            pm.Deterministic("coefficient", effect / scale[~nn], dims=("stratum", "term"))
        if chao:
            eta = pri["eta"].create("eta", dims=("stratum", "chao_term"))
            log_mu = log_mu + pt.dot(eta, scaled[:, nn].T)
            pm.Deterministic("chao_coefficient", eta / scale[nn], dims=("stratum", "chao_term"))
        log_seen = pt.logsumexp(log_mu, axis=1)  # log Σ_c μ_c, the never-seen cell's μ being 1
        log_p0 = -pt.log1pexp(log_seen)
        pm.Deterministic("p_unseen", pt.exp(log_p0), dims="stratum")
        log_cond = log_mu[:, cell] + share[None, :] - log_seen[:, None]
        observed_histories(OBSERVED, log_cond, counts)
    return model


def population(design: Design, posterior: xr.Dataset | Any, rng: Any = None) -> xr.DataArray:
    """Draws of N per stratum: N = n + NegativeBinomial(n, 1 − P(0)) at each posterior draw of P(0)."""
    return population_given_p_unseen(design.n, posterior, rng_from(rng))
