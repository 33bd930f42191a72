"""The log-linear engine against Rcapture 1.4-4 (every model it fits on the four benchmarks, point estimate,
SE, deviance and profile interval, as `scripts/r_references.R` recorded them in
data/benchmarks/r_references.json) and against brute force (the likelihood, the f_k collapse, the profile)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import gammaln

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families.base import FAMILIES
from estim.families.closed import frequency_history_data, history_data
from estim.families.loglinear import (
    Terms,
    build_loglinear,
    mle,
    model_design,
    population,
    profile_loglik,
)
from estim.paths import BENCHMARKS_DIR

R = json.loads((BENCHMARKS_DIR / "r_references.json").read_text(encoding="utf-8"))


def _terms(label: str, lists: list[str]) -> Terms:
    """Rcapture's model name ("Mth Poisson2", "Mt + c1:c3 + c2:c4") as Terms (c1… = the lists in order)."""
    base, *inter = [p.strip() for p in label.split("+")]
    words = base.split(" ", 1)
    capture = {"M0": "M0", "Mt": "Mt", "Mb": "Mb", "Mh": "M0", "Mth": "Mt"}[words[0]]
    het = None
    if len(words) > 1:
        het = {"Chao": "chao", "Poisson2": "poisson", "Darroch": "darroch", "Gamma3.5": "gamma"}[
            words[1].split(" ")[0]
        ]
    interactions = tuple(tuple(lists[int(c[1:]) - 1] for c in t.split(":")) for t in inter)
    return Terms(capture=capture, heterogeneity=het, interactions=interactions)


def _hare() -> tuple:
    occ = [f"c{i}" for i in range(1, 7)]
    return history_data(load_benchmark("hare"), occasions=occ), occ


def _lists(name: str, count: str) -> tuple:
    table = load_benchmark(name)
    lists = [c for c in table.columns if c != count]
    return history_data(table, occasions=lists, count=count), lists


def _datasets() -> dict:
    hare, occ = _hare()
    kosovo = _lists("kosovo_4lists", "Freq")
    uk = _lists("uk_modern_slavery_5lists", "count")
    hare_fk = frequency_history_data([25, 22, 13, 5, 1, 2], 6)
    dutch = load_benchmark("netherlands_immigrants", frequencies=True)
    dutch_fk = frequency_history_data(dict(zip(dutch["nbcap"], dutch["freq"], strict=True)), "inf")
    return {
        ("hare", "closedp.t"): (hare, occ),
        ("hare", "closedpCI.t"): (hare, occ),
        ("hare", "closedp.0"): (hare_fk, occ),
        ("hare", "closedpCI.0"): (hare_fk, occ),
        ("netherlands_immigrants", "closedp.0"): (dutch_fk, []),
        ("netherlands_immigrants", "closedpCI.0"): (dutch_fk, []),
        ("kosovo", "closedp.t"): kosovo,
        ("kosovo", "closedpCI.t"): kosovo,
        ("uk", "closedp.t"): uk,
        ("uk", "closedpCI.t"): uk,
    }


DATA = _datasets()
CASES = [
    (dataset, function, model)
    for (dataset, function) in DATA
    for model in R[dataset].get(function, {})
    if model != "Mbh"  # Rcapture's Mbh is not implemented (noted in docs/closed.md)
]


def test_the_hare_frequency_table_is_the_hare_histories():
    table = load_benchmark("hare", frequencies=True)
    k = load_benchmark("hare").sum(axis=1).value_counts()
    assert dict(zip(table["nbcap"], table["freq"], strict=True)) == {
        int(j): int(k.get(j, 0)) for j in range(1, 7)
    }


@pytest.mark.parametrize(("dataset", "function", "model"), CASES)
def test_reproduces_rcapture(dataset, function, model):
    ref = R[dataset][function][model]
    data, lists = DATA[(dataset, function)]
    terms = _terms(model, lists)
    res = mle(terms, model_design(terms, data))
    if dataset == "uk" and model == "Mb":
        # Rcapture prints N̂ = −3,763; estim reports the failure and no number
        assert res.boundary and math.isnan(res.n_hat)
        return
    assert res.converged and not res.boundary, res.message
    assert res.n_hat == pytest.approx(ref["abundance"], rel=1e-6)
    assert res.se == pytest.approx(ref["stderr"], rel=1e-4)
    assert res.extra["deviance"] == pytest.approx(ref["deviance"], rel=1e-5, abs=1e-5)
    assert res.extra["df"] == ref["df"]
    if ref.get("neg_eta"):
        assert {f"{t}[all]".split("[")[0] for t in res.extra["dropped_terms"]} == set(
            ref["neg_eta"].split(", ") if isinstance(ref["neg_eta"], str) else ref["neg_eta"]
        )
    if "infCL" in ref:
        # Rcapture's profile uses Stirling's formula above N = 100: agreement to 1e-4 relative
        assert res.profile is not None
        assert res.profile["n_hat"] == pytest.approx(ref["multinomial_abundance"], rel=1e-4)
        assert res.profile["ci95"][0] == pytest.approx(ref["infCL"], rel=1e-4)
        assert res.profile["ci95"][1] == pytest.approx(ref["supCL"], rel=1e-4)


def test_issue_figures():
    hare, occ = DATA[("hare", "closedp.t")]
    mth = FAMILIES["Mth_poisson2"].mle(hare)
    assert round(mth.n_hat, 1) == 81.1 and round(mth.se, 1) == 5.6
    assert round(mth.profile["n_hat"], 1) == 80.1
    assert [round(v, 1) for v in mth.profile["ci95"]] == [71.8, 93.8]
    assert round(FAMILIES["Mh_poisson2"].mle(hare).n_hat, 1) == 81.5
    assert round(FAMILIES["Mh_poisson2"].mle(DATA[("hare", "closedp.0")][0]).n_hat, 1) == 81.5
    dutch = DATA[("netherlands_immigrants", "closedp.0")][0]
    for name, value in (("Mh_poisson2", 8617.6), ("Mh_darroch", 15562.1), ("Mh_gamma35", 29058.3)):
        assert round(FAMILIES[name].mle(dutch).n_hat, 1) == value
    kosovo = DATA[("kosovo", "closedp.t")][0]
    for name, value in (("Mh_darroch", 12448.4), ("Mh_gamma35", 17102.6), ("Mth_chao", 8591.2)):
        assert round(FAMILIES[name].mle(kosovo).n_hat, 1) == value


# --------------------------------------------------------------------------------------------------------------
# brute force


def _h(kind: str, k: np.ndarray, t: int) -> np.ndarray:
    """h(k) written from Rivest & Baillargeon (2007) directly."""
    if kind == "poisson":
        return (2.0**k - 1)[:, None]
    if kind == "darroch":
        return (k**2 / 2)[:, None]
    if kind == "gamma":
        return np.log(3.5 / (3.5 + k))[:, None]
    return np.column_stack([np.clip(k - j + 1, 0, None) for j in range(3, t + 1)])


@pytest.mark.parametrize(
    ("capture", "het", "pairs"),
    [
        ("Mt", "chao", ()),
        ("Mt", "poisson", ()),
        ("Mt", "darroch", ()),
        ("Mt", "gamma", ()),
        ("M0", "poisson", ()),
        ("Mt", None, ((0, 1), (2, 5))),
    ],
)
def test_model_logp_is_the_conditional_likelihood_of_every_history(capture, het, pairs):
    """The Bayesian model's log-likelihood at a point equals Σ_h y_h log[P(h) / (1 − P(0))] over the hare
    histories, with every one of the 2^6 histories enumerated by itertools and μ_h written out from the model's
    definition (Mh is fitted on the f_k cells and must still score each history)."""
    hare, occ = DATA[("hare", "closedp.t")]
    inter = tuple((occ[a], occ[b]) for a, b in pairs)
    design = model_design(Terms(capture, het, interactions=inter), hare)
    model = build_loglinear(design, hare)
    rng = np.random.default_rng(1)
    point = model.initial_point()
    n_free = (6 if capture == "Mt" else 1) + len(pairs)
    n_free += 0 if het in ("chao", None) else 1
    point["effect"] = rng.normal(0, 0.5, (1, n_free))
    eta = rng.uniform(0.1, 0.5, (1, 4)) if het == "chao" else None
    if eta is not None:
        point["eta_log__"] = np.log(eta)
    logp = model.compile_fn(model.logp(vars=[model["history_count"]], sum=True))
    got = float(logp(point))
    seen = {tuple(r): c for r, c in load_benchmark("hare").value_counts().items()}
    # terms divided by their largest value over the histories (k = 6 captures)
    base_scale = np.ones(6) if capture == "Mt" else np.array([6.0])
    het_scale = np.abs(_h(het, np.array([6.0]), 6)[0]) if het else np.zeros(0)
    scale = np.concatenate([base_scale, np.ones(len(pairs)), het_scale])
    coef = point["effect"][0] if eta is None else np.concatenate([point["effect"][0], eta[0]])
    log_mu = {}
    for h in itertools.product([0, 1], repeat=6):
        if sum(h) == 0:
            continue
        k = np.array([sum(h)], dtype=float)
        first = np.array(h, float) if capture == "Mt" else k
        products = [h[a] * h[b] for a, b in pairs]
        x = np.concatenate([first, products, _h(het, k, 6)[0] if het else []])
        log_mu[h] = (x / scale) @ coef
    log_seen = np.logaddexp.reduce(list(log_mu.values()))  # the never-seen history has μ = 1
    expected = sum(seen.get(h, 0) * (v - log_seen) for h, v in log_mu.items())
    assert got == pytest.approx(expected, rel=1e-10)


def test_the_f_k_table_is_the_same_likelihood_up_to_a_constant():
    """Mh on all 63 hare histories and on their f_k table: the log-likelihoods differ by the same constant
    at any parameter value (so the same estimates and posterior)."""
    hare, _ = DATA[("hare", "closedp.t")]
    fk = DATA[("hare", "closedp.0")][0]
    terms = Terms("M0", "darroch")
    full_design = model_design(terms, hare)  # collapsed to k internally; check the collapse itself
    assert full_design.cells == tuple(f"k={k}" for k in range(1, 7))
    fk_design = model_design(terms, fk)
    np.testing.assert_allclose(full_design.counts, fk_design.counts)
    np.testing.assert_allclose(full_design.offset, fk_design.offset)
    every = load_benchmark("hare")
    y = np.zeros(64)
    for r, c in every.value_counts().items():
        y[int("".join(map(str, r)), 2)] += c
    codes = np.arange(1, 64)
    k = np.array([bin(c).count("1") for c in codes], dtype=float)
    diffs = []
    for beta in ([1.0, -0.5, 0.1], [0.3, 0.2, -0.05]):
        mu_h = np.exp(beta[0] + beta[1] * k + beta[2] * k**2 / 2)
        full = np.sum(stats.poisson.logpmf(y[codes], mu_h))
        mu_k = np.exp(fk_design.offset + beta[0] + fk_design.matrix @ np.array(beta[1:]))
        diffs.append(full - np.sum(stats.poisson.logpmf(fk_design.counts[0], mu_k)))
    assert diffs[0] == pytest.approx(diffs[1], rel=1e-12)


def test_profile_likelihood_is_the_multinomial_likelihood_maximised_directly():
    """ℓ(N) from the augmented Poisson fit equals, up to one constant, the multinomial log-likelihood of N
    maximised over the cell probabilities of the log-linear model by a general-purpose optimiser."""
    hare, _ = DATA[("hare", "closedp.t")]
    terms = Terms("M0", "poisson")
    design = model_design(terms, hare)
    y = design.counts[0]
    n = y.sum()
    x = np.vstack([design.matrix, np.zeros((1, design.matrix.shape[1]))])
    off = np.concatenate([design.offset, [0.0]])

    def multinomial(big_n: float) -> float:
        n0 = big_n - n

        def negll(beta: np.ndarray) -> float:
            logits = off + x @ beta
            logp = logits - np.logaddexp.reduce(logits)
            return -(np.sum(y * logp[:-1]) + n0 * logp[-1])

        best = optimize.minimize(negll, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-9})
        return gammaln(big_n + 1) - gammaln(n0 + 1) - best.fun

    grid = np.array([70.0, 80.0, 95.0])
    ours = profile_loglik(design, 0, grid)
    direct = np.array([multinomial(v) for v in grid])
    np.testing.assert_allclose(ours - ours[0], direct - direct[0], atol=1e-6)


def test_population_draws_the_unseen_as_a_negative_binomial():
    # N − n | P(0) ~ NegativeBinomial(n, 1 − P(0)): mean n P(0)/(1 − P(0)), variance n P(0)/(1 − P(0))²
    hare, _ = DATA[("hare", "closedp.t")]
    design = model_design(Terms("M0", "poisson"), hare)
    import xarray as xr

    p0 = 0.2
    post = xr.Dataset(
        {"p_unseen": (("chain", "draw", "stratum"), np.full((2, 20000, 1), p0))},
        coords={"chain": [0, 1], "draw": np.arange(20000), "stratum": ["all"]},
    )
    unseen = population(design, post, rng=3).values.ravel() - 68
    mean, var = 68 * p0 / (1 - p0), 68 * p0 / (1 - p0) ** 2
    assert abs(unseen.mean() - mean) < 4 * math.sqrt(var / unseen.size)
    assert unseen.var() == pytest.approx(var, rel=0.05)


def test_refusals():
    hare_fk = DATA[("hare", "closedp.0")][0]
    with pytest.raises(EstimInputError, match="needs capture histories"):
        model_design(Terms("Mt", "poisson"), hare_fk)
    dutch = DATA[("netherlands_immigrants", "closedp.0")][0]
    with pytest.raises(EstimInputError, match="no upper bound"):
        FAMILIES["Mh_logitnormal"].mle(dutch)
    kosovo, _ = DATA[("kosovo", "closedp.t")]
    with pytest.raises(EstimInputError, match="not among the occasions"):
        model_design(Terms("Mt", interactions=(("EXH", "nope"),)), kosovo)
    with pytest.raises(EstimInputError, match="heterogeneity"):
        Terms("Mt", "lognormal")
    with pytest.raises(EstimInputError, match="interactions"):
        Terms.from_options({"capture": "Mt", "interactions": "EXH:ABA"})
    # the same interaction twice was reported as a rank deficit ("rank 8 < 9"), exit 3
    with pytest.raises(
        EstimInputError, match=r"\['ABA', 'EXH'\] is the same interaction as \['EXH', 'ABA'\]"
    ):
        Terms.from_options({"capture": "Mt", "interactions": [["EXH", "ABA"], ["ABA", "EXH"]]})
    with pytest.raises(EstimInputError, match="names an occasion twice"):
        Terms.from_options({"capture": "Mt", "interactions": [["EXH", "EXH"]]})
    with pytest.raises(EstimInputError, match="theta: a number"):
        Terms.from_options({"heterogeneity": "gamma", "theta": True})
    # all 2^K − 1 histories are needed beyond the models in k: refused past 20 lists
    wide = pd.DataFrame(np.eye(21, dtype=int), columns=[f"l{i}" for i in range(21)])
    with pytest.raises(EstimInputError, match="at most 20"):
        model_design(Terms("Mt"), history_data(wide))


def test_gradient_is_finite_and_coords_carry_labels():
    kosovo, lists = DATA[("kosovo", "closedp.t")]
    terms = Terms("Mt", "chao", interactions=(("EXH", "ABA"),))
    model = build_loglinear(model_design(terms, kosovo), kosovo)
    ip = model.initial_point()
    grads = model.compile_dlogp()(ip)
    assert np.all(np.isfinite(grads))
    assert list(model.coords["term"]) == [f"occasion[{o}]" for o in lists] + ["EXH:ABA"]
    assert list(model.coords["chao_term"]) == ["eta3", "eta4"]
    # the data's own cells: the 15 observed list patterns of the Kosovo table
    assert list(model.coords["history"]) == [str(h) for h in kosovo["history"].values]


@pytest.mark.parametrize("occasions", ['"inf"', "inf"])
def test_a_spec_reads_counts_with_no_upper_bound(tmp_path, occasions):
    """`occasions = "inf"` (or TOML's inf) in a spec: Rcapture's closedp.0(t = Inf) Mh Poisson2 on the
    Dutch f_k table, from a file; an Otis model refuses the same table."""
    from estim.errors import EstimInputError as InputError
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    (tmp_path / "fk.csv").write_text("k,people\n1,1645\n2,183\n3,37\n4,13\n5,1\n6,1\n")
    body = (
        '[data]\nfile = "fk.csv"\nlayout = "frequencies"\ntimes_seen = "k"\ncount = "people"\n'
        f"occasions = {occasions}\n"
    )
    (tmp_path / "mh.toml").write_text('family = "Mh_poisson2"\nseed = 1\n' + body)
    ref = R["netherlands_immigrants"]["closedp.0"]["Mh Poisson2"]
    assert fit_mle(read_spec(tmp_path / "mh.toml")).n_hat == pytest.approx(
        ref["abundance"], rel=1e-8
    )
    (tmp_path / "otis.toml").write_text('family = "Mh_logitnormal"\nseed = 1\n' + body)
    with pytest.raises(InputError, match="no upper bound"):
        fit_mle(read_spec(tmp_path / "otis.toml"))


def test_a_model_whose_mle_does_not_exist_is_no_estimate():
    # No one in the UK table is on both LA and GP: with LA:GP the likelihood grows without bound as that
    # term runs to −∞, so IRLS would stop at an arbitrary N̂. The LP test refuses the model before fitting.
    uk, _names = _lists("uk_modern_slavery_5lists", "count")
    family = FAMILIES["loglinear"]
    refused = family.mle(uk, capture="Mt", interactions=[["LA", "GP"]])
    assert refused.boundary and not math.isfinite(refused.n_hat)
    assert "does not exist" in refused.message and "LA:GP" in refused.message
    assert refused.extra["exists"] is False
    # a model that does exist on the same table is fitted as before
    fitted = family.mle(uk, capture="Mt", interactions=[["LA", "NG"]])
    assert (
        not fitted.boundary
        and math.isfinite(fitted.n_hat)
        and fitted.n_hat > int(uk["history_count"].sum())
    )
