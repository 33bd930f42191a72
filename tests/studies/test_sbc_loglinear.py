"""SBC of the log-linear families (estim/studies/sbc_loglinear.py): the simulator draws people from the law each
model states, P(h) ∝ exp(x_h · β) over all 2^t histories, written here once more by hand on Rcapture's
coefficient scale; the model's P(0) and conditional likelihood at the truth are that law's; and one replicate
runs end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from estim.families.registry import load_all
from estim.studies import sbc, sbc_designs

T = 6
ALPHA_T = np.array([-1.0, -0.5, -1.2, 0.0, -0.8, -1.5])  # Mth's occasion coefficients
# heterogeneity: (coefficient, h(k) by hand, the column's largest value over k = 1…6)
HET = {
    "darroch": (0.15, lambda k: k**2 / 2, 18.0),
    "gamma35": (1.5, lambda k: -np.log(1 + k / 3.5), np.log(1 + 6 / 3.5)),
    "poisson2": (0.02, lambda k: 2.0**k - 1, 63.0),
}
# η_3 … η_6, on columns (k − j + 1)⁺ of largest value 4, 3, 2, 1
CHAO_ETA = np.array([0.3, 0.2, 0.1, 0.4])
LISTS_BETA = np.array([-1.0, -0.3, -1.5, 0.2])
LISTS_PAIRS = {(0, 1): 0.8, (1, 2): -0.5, (2, 3): 1.0}  # A:B, B:C, C:D
FAMILIES = [f"{b}_{h}" for b in ("Mh", "Mth") for h in ("chao", "darroch", "gamma35", "poisson2")]
FAMILIES += ["loglinear"]


def _law(family: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The truth in the model's scaled parameters, every history (never seen first) and its exact P(h)."""
    if family == "loglinear":
        x = np.array(list(itertools.product([0, 1], repeat=4)))
        log_w = x @ LISTS_BETA + sum(g * x[:, i] * x[:, j] for (i, j), g in LISTS_PAIRS.items())
        effect = np.r_[LISTS_BETA, list(LISTS_PAIRS.values())]
        truth = {"effect": effect[None, :]}
    else:
        base, het = family.split("_")
        x = np.array(list(itertools.product([0, 1], repeat=T)))
        k = x.sum(axis=1)
        if base == "Mh":
            alpha = -0.8
            log_w, effect = alpha * k, [alpha * T]  # one coefficient per capture, scale t
        else:
            log_w, effect = x @ ALPHA_T, list(ALPHA_T)
        truth = {}
        if het == "chao":
            cols = np.stack([np.clip(k - j + 1, 0, None) for j in range(3, T + 1)], axis=1)
            log_w = log_w + cols @ CHAO_ETA
            truth["eta"] = (CHAO_ETA * np.array([4.0, 3.0, 2.0, 1.0]))[None, :]
        else:
            tau, h, peak = HET[het]
            log_w = log_w + tau * h(k)
            effect.append(tau * peak)
        truth["effect"] = np.array(effect)[None, :]
    w = np.exp(log_w - log_w.max())
    return truth, x, w / w.sum()


def _exact(data, x, p):
    """The exact P(h) of the data's histories, in its order, and P(0)."""
    rows = data["capture"].transpose("history", "occasion").values
    index = {tuple(r): i for i, r in enumerate(x)}
    return p[[index[tuple(r)] for r in rows]], p[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_simulator_draws_people_from_the_law_the_model_states(family):
    """300,000 people at a fixed truth: each history's count against its exact P(h), z < 4 (the never seen too)."""
    design = sbc.DESIGNS[family]
    truth, x, p = _law(family)
    size = 300_000
    data = design.simulate(np.random.default_rng(11), size, truth)
    counts = data["history_count"].values[0]
    assert data.sizes["history"] == len(x) - 1  # every observable history, zeros included
    p_h, p0 = _exact(data, x, p)
    observed = np.r_[counts, size - counts.sum()]
    expected = np.r_[p_h, p0]
    z = (observed - size * expected) / np.sqrt(size * expected * (1 - expected))
    assert np.abs(z).max() < 4, (family, np.abs(z).max())


@pytest.mark.parametrize("family", FAMILIES)
def test_the_models_p_unseen_and_likelihood_at_the_truth_are_the_laws(family):
    """The family's own model (its parameterisation, scales and likelihood) at the truth: P(0) and the
    conditional log-likelihood Σ n_h log[P(h)/(1 − P(0))] equal the hand-written law's."""
    design = sbc.DESIGNS[family]
    fam = load_all()[family]
    truth, x, p = _law(family)
    data = design.simulate(np.random.default_rng(12), 500, truth)
    model = fam.build(data, dict(design.priors), **design.options)
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        v = truth[rv.name]
        point[value.name] = np.log(v) if value.name.endswith("_log__") else v
    observed = model[fam.observed_name]
    (p_unseen,) = model.replace_rvs_by_values([model["p_unseen"]])  # at the point, not random draws
    fn = model.compile_fn([p_unseen, model.logp(vars=[observed], sum=True)], point_fn=True)
    p_unseen, loglik = fn(point)
    p_h, p0 = _exact(data, x, p)
    counts = data["history_count"].values[0]
    assert float(p_unseen[0]) == pytest.approx(p0, rel=1e-9)
    assert float(loglik) == pytest.approx(float(counts @ np.log(p_h / (1 - p0))), rel=1e-9)


def test_the_sbc_prior_gives_studies_where_n_is_uncertain():
    """The SBC prior (not the engine's Normal(0, 30)) draws truths whose P(never seen) spans the range of
    capture–recapture studies: below 5 % in some, above 40 % in others."""
    rng = np.random.default_rng(13)
    fam = load_all()["Mh_darroch"]
    design = sbc.DESIGNS["Mh_darroch"]
    priors = {**fam.default_priors, **design.priors}
    p0 = []
    for _ in range(400):
        effect = sbc_designs.draw_prior(priors["effect"], (1, 2), rng)
        k = np.arange(T + 1)
        log_w = effect[0, 0] / T * k + effect[0, 1] / 18.0 * k**2 / 2
        w = np.exp(log_w - log_w.max()) * np.array([1, 6, 15, 20, 15, 6, 1])
        p0.append(w[0] / w.sum())
    p0 = np.array(p0)
    assert (p0 < 0.05).mean() > 0.1 and (p0 > 0.4).mean() > 0.1


# one family (Chao's, with the most parameters) in the default suite; the others, ~4 s each, in the slow one
@pytest.mark.parametrize(
    "family",
    [f if f == "Mh_chao" else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES],
)
def test_one_replicate_runs_end_to_end(family):
    rows = sbc.replicate_rows((family, 0, 5), draws_per_rank=9, backend="numba")
    assert rows["error"].fillna("").eq("").all(), rows["error"].iloc[0]
    design = sbc.DESIGNS[family]
    names = {"N", "loglik"}
    for name, shape in design.parameters.items():
        size = int(np.prod(shape))
        names |= {name} if size == 1 else {f"{name}[{j + 1}]" for j in range(size)}
    assert set(rows["quantity"]) == names
    assert rows["rank"].between(0, 9).all()
