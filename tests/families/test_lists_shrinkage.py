"""All two-list interactions under a regularised horseshoe (`lists_shrinkage`) against brute force, the
horseshoe's published form (Piironen & Vehtari 2017) and a simulated truth."""

from __future__ import annotations

import itertools
from itertools import combinations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from lists_fixtures import SMALL

from estim.errors import EstimInputError
from estim.families.closed import history_data
from estim.families.lists.shrinkage import (
    DEFAULT_PRIORS,
    build_shrinkage,
    population,
    selected_pairs,
)
from estim.priors import Prior

FAST = "FAST_COMPILE"


def small_data():
    return history_data(SMALL, occasions=["A", "B", "C"], count="n")


def at_point(model: pm.Model, name: str):
    (out,) = model.replace_rvs_by_values([model[name]])
    return model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)


def test_coords_and_finite_gradient_at_the_initial_point():
    data = history_data(
        pd.DataFrame(
            [(1, 0, 0, 0, 9), (0, 1, 0, 0, 8), (0, 0, 1, 1, 3), (1, 1, 1, 1, 2), (0, 0, 0, 1, 5)],
            columns=["EXH", "ABA", "OSCE", "HRW", "n"],
        ),
        occasions=["EXH", "ABA", "OSCE", "HRW"],
        count="n",
    )
    model = build_shrinkage(data)
    lists = ["EXH", "ABA", "OSCE", "HRW"]
    assert list(model.coords["list"]) == lists
    assert list(model.coords["pair"]) == [f"{a}:{b}" for a, b in combinations(lists, 2)]
    assert model.named_vars_to_dims["pair_effect"] == ("stratum", "pair")
    assert model.named_vars_to_dims["effect"] == ("stratum", "term")
    assert list(model.coords["term"])[4:] == list(model.coords["pair"])
    grad = model.compile_dlogp(mode=FAST)(model.initial_point())
    assert grad.size > 0 and np.all(np.isfinite(grad))


def test_logp_is_the_brute_force_conditional_likelihood():
    """At random parameter values: the pair effects are Piironen & Vehtari's β = z τ λ̃ with
    λ̃² = c² λ² / (c² + τ² λ²), τ = τ0 g, τ0 = p0 / (D − p0) / √(median overlap), and the model's
    log-likelihood is Σ_h y_h log[P(h) / (1 − P(0))] over an enumeration of all 8 patterns."""
    data = small_data()
    model = build_shrinkage(data)
    logp = model.compile_fn(model.logp(vars=[model["history_count"]], sum=True), mode=FAST)
    pair_fn = at_point(model, "pair_effect")
    x = SMALL[["A", "B", "C"]].to_numpy()
    y = SMALL["n"].to_numpy()
    overlaps = [y @ (x[:, i] * x[:, j]) for i, j in combinations(range(3), 2)]  # 17, 14, 12
    tau0 = 1 / (3 - 1) / np.sqrt(np.median(overlaps))  # p0 = ⌊3/2⌋ = 1 of D = 3 pairs
    rng = np.random.default_rng(5)
    for _ in range(3):
        point = model.initial_point()
        for name in point:
            point[name] = rng.normal(0.0, 0.7, point[name].shape)
        alpha = point["list_effect"][0]
        z = point["pair_z"][0]
        lam = np.exp(point["local_scale_normal_log__"][0]) / np.sqrt(
            np.exp(point["local_scale_mixing_log__"][0])
        )
        tau = (
            tau0
            * np.exp(point["global_raw_normal_log__"][0])
            / np.sqrt(np.exp(point["global_raw_mixing_log__"][0]))
        )
        c2 = 1.0 / np.exp(point["slab_precision_log__"][0])
        lam_tilde = np.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))
        beta = z * tau * lam_tilde
        np.testing.assert_allclose(pair_fn(point)[0], beta, rtol=1e-10)
        pairs = dict(zip(combinations(range(3), 2), beta, strict=True))
        mu = {}
        for h in itertools.product([0, 1], repeat=3):
            log_mu = sum(alpha[j] for j in range(3) if h[j])
            log_mu += sum(b for (i, j), b in pairs.items() if h[i] and h[j])
            mu[h] = np.exp(log_mu)
        total = sum(mu.values())
        p0 = mu[(0, 0, 0)] / total
        expected = sum(
            n * np.log(mu[tuple(int(v) for v in row)] / total / (1 - p0))
            for row, n in zip(x, y, strict=True)
        )
        assert float(logp(point)) == pytest.approx(expected, rel=1e-10)


def test_priors_options_and_refusals():
    data = small_data()
    assert set(DEFAULT_PRIORS) == {"effect", "local", "global", "slab_precision"}
    # the slab's precision prior reaches the model: Gamma(2, 8) is c² ~ InverseGamma(2, 8), E[1/c²] = 1/4
    model = build_shrinkage(data)
    draws = pm.draw(model["slab_precision"], 20000, random_seed=1, mode=FAST)
    assert draws.mean() == pytest.approx(0.25, rel=0.03)
    tight = build_shrinkage(data, priors={"slab_precision": Prior("Gamma", alpha=50, beta=50)})
    assert pm.draw(tight["slab_precision"], 4000, random_seed=1, mode=FAST).mean() == (
        pytest.approx(1.0, rel=0.03)
    )
    # a local prior that is not half-Student-t is used as given (no scale mixture)
    other = build_shrinkage(data, priors={"local": Prior("HalfNormal", sigma=1)})
    assert "local_scale_normal" not in other.named_vars
    assert other["local_scale"] in other.free_RVs
    with pytest.raises(EstimInputError, match="does not have"):
        build_shrinkage(data, priors={"tau": Prior("HalfNormal", sigma=1)})
    with pytest.raises(EstimInputError, match="expected_pairs"):
        build_shrinkage(data, expected_pairs=3)
    with pytest.raises(EstimInputError, match="at least 3 lists"):
        build_shrinkage(history_data(SMALL, occasions=["A", "B"], count="n"))


def simulate(seed: int, size: int, capture: np.ndarray, pair: tuple[int, int], gamma: float):
    """`size` people over independent lists except one pair with log odds ratio `gamma`; seen patterns."""
    k = len(capture)
    x = np.array(list(itertools.product([0, 1], repeat=k)))
    log_p = x @ np.log(capture / (1 - capture)) + gamma * x[:, pair[0]] * x[:, pair[1]]
    counts = np.random.default_rng(seed).multinomial(
        size, np.exp(log_p - np.logaddexp.reduce(log_p))
    )
    table = pd.DataFrame(x, columns=[f"L{j + 1}" for j in range(k)]).assign(n=counts)
    return table[x.sum(axis=1) > 0]


@pytest.mark.slow
def test_six_lists_with_one_strong_pair_recover_n_and_the_pair():
    """6 lists, N = 2,000, lists 2 and 5 with log odds ratio +1.5: the true N lies in the posterior's 90 %
    interval, and L2:L5 is selected (its 95 % interval excludes 0). ~30 s (compile + sample)."""
    from estim.run.diagnostics import check
    from estim.run.sampler import nuts
    from estim.run.spec import SamplerSpec

    table = simulate(61, 2000, np.linspace(0.08, 0.3, 6), (1, 4), 1.5)
    data = history_data(table, occasions=[f"L{j + 1}" for j in range(6)], count="n")
    model = build_shrinkage(data)
    spec = SamplerSpec(draws=1000, tune=1000, chains=4, target_accept=0.99, backend="numba")
    idata = nuts(model, spec, seed=3)
    post = idata["posterior"].to_dataset()
    post["N"] = population(data, post, rng=3)
    idata["posterior"] = post
    lo, hi = np.quantile(post["N"].values.ravel(), [0.05, 0.95])
    assert lo <= 2000 <= hi
    assert "L2:L5" in selected_pairs(post)
    assert check(idata, var_names=["effect", "p_unseen", "global_scale", "N"]).passed


def test_registered_family_from_its_spec():
    """`lists_shrinkage` from models/uk_lists_shrinkage.toml: the UK's lists and pairs, the gate on the
    coefficients, P(0), τ and N (not the horseshoe's unidentified scale pieces); it has no ML mode and says
    where SparseMSE's stepwise model is."""
    import xarray as xr

    from estim.families.base import FAMILIES
    from estim.paths import REPO_ROOT
    from estim.run.data import load_data
    from estim.run.fit import gate_names
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    spec = read_spec(REPO_ROOT / "models" / "uk_lists_shrinkage.toml")
    family = FAMILIES["lists_shrinkage"]
    model = family.build(load_data(spec), dict(spec.priors), **spec.options)
    assert list(model.coords["list"]) == ["LA", "NG", "PFNCA", "GO", "GP"]
    assert len(model.coords["pair"]) == 10
    names = ("effect", "p_unseen", "global_scale", "N", "local_scale", "pair_z")
    tree = xr.DataTree.from_dict(
        {"posterior": xr.Dataset({v: (("chain", "draw"), np.zeros((1, 2))) for v in names})}
    )
    assert gate_names(family, tree) == ["effect", "p_unseen", "global_scale", "N"]
    assert not family.ml
    with pytest.raises(EstimInputError, match="lists_stepwise"):
        fit_mle(spec)
    with pytest.raises(EstimInputError, match="expected_pairs only"):
        family.build(load_data(spec), None, threshold=0.02)
