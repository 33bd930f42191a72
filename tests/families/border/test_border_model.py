"""The border model (estim/families/border/model.py): its likelihood against the model's equations evaluated
independently, its rates on posterior draws, the priors a spec can override (the hierarchies included) and the
likelihood terms' use of their values."""

from __future__ import annotations

import functools

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from pytensor.graph.traversal import ancestors

from estim.errors import EstimInputError
from estim.families.border import build_border, rates
from estim.families.border.data import BYPASSER, CATEGORIES
from estim.families.border.kernels import SADDLEPOINT_ABOVE
from estim.families.border.model import OBSERVED, _PriorTable
from estim.families.border.retry import RETRY_AUXILIARY, retry_log
from estim.priors import Prior
from estim.run.spec import parse_spec

PARAMETERS = [
    "section_effect",
    "category_level",
    "season",
    "trend",
    "log_policy_effect",
    "population_elasticity",
    "overdispersion",
    "bypass_eta0",
    "bypass_eta1",
    "hazard_section",
    "hazard_category",
    "hazard_detector",
    "technical_trend",
]


def test_gradient_is_finite_and_coords_are_labelled(model, data):
    ip = model.initial_point()
    assert np.isfinite(model.compile_logp()(ip))
    assert np.isfinite(model.compile_dlogp()(ip)).all()
    assert list(model.coords["section"]) == list(data["section"].values)
    assert list(model.coords["category"]) == list(CATEGORIES)
    assert model.named_vars_to_dims["section_effect"] == ("section",)
    assert model.named_vars_to_dims["log_policy_effect"] == ("event", "journey_category")


def test_section_hazards_are_pooled_around_their_terrains_mean(model, data):
    terrains = sorted(set(data["terrain"].values.tolist()))
    assert list(model.coords["terrain"]) == terrains
    assert dict(zip(data["section"].values, data["terrain"].values, strict=True))[
        "altai_republic"
    ] == ("mountain")
    rng = np.random.default_rng(3)
    terrain = rng.normal(0, 0.3, len(terrains))
    terrain -= terrain.mean()
    values = {
        "hazard_mean": -0.6,
        "hazard_section_sd": 0.15,
        "hazard_section": rng.normal(-0.6, 0.2, data.sizes["section"]),
        "hazard_terrain": terrain,
    }
    # a_s is sampled relative to r (a_s + log r/κ, its location moved by as much): its prior is unchanged
    retry = 0.7
    fn = model.compile_fn(
        model.logp(vars=[model["hazard_section_given_retry"]], sum=True),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    point = model.initial_point()
    point["give_up_hazard_root"] = np.array([np.sqrt(-2 * np.log(retry)), 0.0])  # r = exp(−|v|²/2)
    # μ_a moves with a_s along the ridge: sampled as μ_a + log r/κ
    point["hazard_mean_given_retry"] = values["hazard_mean"] + np.log(retry) / 0.73
    point["hazard_section_sd_log__"] = np.log(values["hazard_section_sd"])
    point["hazard_section_given_retry"] = values["hazard_section"] + np.log(retry) / 0.73
    transform = model.rvs_to_transforms[model["hazard_terrain"]]
    point["hazard_terrain_zerosum__"] = transform.forward(pt.as_tensor(terrain)).eval()
    of = [terrains.index(t) for t in data["terrain"].values]
    expected = scipy.stats.norm.logpdf(
        values["hazard_section"], -0.6 + terrain[of], values["hazard_section_sd"]
    ).sum()
    assert fn(point) == pytest.approx(expected, rel=1e-9)
    # without terrain, one mean for all sections
    plain = build_border(data, terrain_hazard=False)
    assert "hazard_terrain" not in plain.named_vars and "terrain" not in plain.coords


def _point(model, rng, scale=0.1):
    ip = model.initial_point()
    return {k: v + rng.normal(0, scale, size=np.shape(v)) for k, v in ip.items()}


def _values(model, point):
    """The parameters (untransformed) at a point of the value variables."""
    # (model.compile_fn on the random variables would draw from the prior: evaluate the value variables)
    fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)
    values = dict(zip([v.name for v in model.unobserved_value_vars], fn(point), strict=True))
    extra = (
        "retry_probability",
        "register_coverage",
        "other_sightings",
        "frailty_sd",
    )
    return {n: values[n] for n in (*PARAMETERS, *extra) if n in values}


def _by_hand(data, p):
    """μ, p, φ per (section, month, category) straight from the model's equations (NumPy, no kernels)."""
    years, moy = data["years"].values, data["month_of_year"].values
    w = 2 * np.pi * moy / 12
    harm = np.stack([np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)])  # (4, M)
    s_n, m_n, c_n = data["apprehensions"].shape
    log_mu = np.zeros((s_n, m_n, c_n))
    for ci in range(4):
        for si in range(s_n):
            pol = sum(
                np.log(1 + (np.exp(p["log_policy_effect"][e, ci]) - 1) * data["policy_in_force"][e])
                for e in range(3)
            )
            log_mu[si, :, ci] = (
                np.log(data["length_km"].values[si] / 1000)
                + p["section_effect"][si]
                + p["category_level"][ci]
                + p["season"][ci] @ harm
                + p["trend"][ci] * years
                + pol
                + (ci == 0)
                * p["population_elasticity"]
                * np.log(data["border_population"][si] / 1e5)
            )
    flow = data["land_foreign_crossings"].values
    wait = data["land_mean_wait"].values
    share = 1 / (1 + np.exp(-(p["bypass_eta0"] + p["bypass_eta1"] * np.log(wait / 60))))
    log_mu[:, :, 4] = np.log(flow * share)
    det = np.exp(
        np.array([0.0, *p["hazard_detector"]])[:, None]
        + p["technical_trend"] * np.outer([0, 1, 0], years)
    )
    h = np.exp(
        p["hazard_section"][:, None, None]
        + p["hazard_category"][None, None, :]
        + np.log(det.sum(0))[None, :, None]
    )
    return np.exp(log_mu), 1 - np.exp(-h), 1 / p["overdispersion"] ** 2, det / det.sum(0)


def test_likelihood_equals_the_model_equations_evaluated_independently(model, data):
    rng = np.random.default_rng(3)
    point = _point(model, rng)
    mu, p, phi, shares = _by_hand(data, _values(model, point))
    terms = model.point_logps(point, round_vals=12)
    s = data["surveyed"].values
    a = data["apprehended_journeys"].values[s]
    # apprehended journeys: NegBin(μp, φ) (scipy's parameterisation: n = φ, success prob φ/(φ + mean))
    m = mu[s] * p[s]
    nb = scipy.stats.nbinom.logpmf(a, phi, phi / (phi + m))
    assert terms["apprehended_journeys"] == pytest.approx(nb.sum(), rel=1e-9)
    # repeats: Σ f_k log[(pr)^{k−1}(1 − pr)]
    values = _values(model, point)
    r = float(values["retry_probability"])
    assert 0 < r < 1
    pr = p * r
    f = data["frequency"].values[s]
    k = data["k"].values
    rep = (f * ((k - 1) * np.log(pr[s])[..., None] + np.log1p(-pr[s])[..., None])).sum()
    assert terms["repeat_apprehensions"] == pytest.approx(rep, rel=1e-9)
    # unsurveyed totals: Σ_a NegBin(a; μp, φ) · NB₀(k − a; a, 1 − pr), summed cell by cell with scipy
    ku = data["apprehensions"].values[~s]
    flow = data["land_foreign_crossings"].values[~s]
    mu_u, p_u, pr_u = mu[~s], p[~s], pr[~s]
    phi_u = np.broadcast_to(phi, ku.shape)
    tot = 0.0
    for i in zip(*np.nonzero(np.ones(ku.shape, bool)), strict=True):
        if CATEGORIES[i[2]] == BYPASSER and flow[i[:2]] == 0:
            continue  # no foreign flow: no bypassers, no term
        k, f, m = int(ku[i]), phi_u[i], mu_u[i] * p_u[i]
        a = np.arange(0, k + 1) if k == 0 else np.arange(1, k + 1)
        log_a = scipy.stats.nbinom.logpmf(a, f, f / (f + m))
        log_rest = scipy.stats.nbinom.logpmf(k - a, np.maximum(a, 1), 1 - pr_u[i]) if k else 0.0
        tot += scipy.special.logsumexp(log_a + log_rest)
    assert terms["apprehensions"] == pytest.approx(
        tot, rel=1e-9
    )  # no total above SADDLEPOINT_ABOVE
    # linkage, by enumerating each journey's fate: got through (s = r(1 − p)/(1 − pr)) or not, and the
    # person's other crossings in the window recorded on exactly the lists S, M_S ~ Poisson(μ_S) (summed to
    # 25 each): list l misses the person when it misses this crossing ((1 − π_l)^{got}) and no M_S with l in S
    lists = list(data["in_country_list"].values)
    assert len(lists) == 2
    cov, rate = values["register_coverage"], values["other_sightings"]  # rate: (set, category)
    linked = data["linked_journeys"].values[s]
    before = data["before_journeys"].values[s]
    m = np.arange(25)

    @functools.cache
    def pattern_probability(on, c, got):
        total = 0.0
        for m1 in m:  # other crossings on list 1 only, list 2 only, both
            for m2 in m:
                w12 = scipy.stats.poisson.pmf(m, rate[2, c])
                w = scipy.stats.poisson.pmf(m1, rate[0, c]) * scipy.stats.poisson.pmf(
                    m2, rate[1, c]
                )
                for m12, weight in zip(m, w12, strict=True):
                    seen_other = [m1 + m12 > 0, m2 + m12 > 0]
                    prob = 1.0
                    for j, o in enumerate(on):
                        miss = 0.0 if seen_other[j] else (1 - cov[j, c]) ** got
                        prob *= (1 - miss) if o else miss
                    total += w * weight * prob
        return total

    link = before_total = 0.0
    for i in zip(*np.nonzero(linked.sum(-1)), strict=True):
        c = i[2]
        got = r * (1 - p[s][i]) / (1 - pr[s][i])
        for b in range(2 ** len(lists)):
            on = tuple(b >> j & 1 for j in range(len(lists)))
            if_got, if_not = pattern_probability(on, c, 1), pattern_probability(on, c, 0)
            link += linked[i][b] * np.log(got * if_got + (1 - got) * if_not)
            before_total += before[i][b] * np.log(if_not)
    assert linked.sum() > 0 and before[..., 1:].sum() > 0
    assert terms["linked_journeys"] == pytest.approx(link, rel=1e-9)
    assert terms["before_journeys"] == pytest.approx(before_total, rel=1e-9)
    # detector split: multinomial kernel Σ K_td log π_td
    kd = data["apprehensions_by_detector"].sum(["section", "category"]).values
    assert terms["apprehensions_by_detector"] == pytest.approx(
        (kd * np.log(shares.T)).sum(), rel=1e-9
    )


def test_rates_on_draws_equal_the_model_equations(model, data):
    rng = np.random.default_rng(8)
    draws = [_values(model, _point(model, rng)) for _ in range(3)]
    got = rates(data, {n: np.stack([d[n] for d in draws]) for n in PARAMETERS})
    assert got.log_mu.shape == (3, *data["apprehensions"].shape)
    assert got.phi.shape == (3, len(CATEGORIES))
    no_flow = data["land_foreign_crossings"].values == 0
    for i, d in enumerate(draws):
        mu, p, phi, _ = _by_hand(data, d)
        journeys = np.s_[:, :, :4]  # bypassers: the flow is floored at 1 where it is 0
        np.testing.assert_allclose(np.exp(got.log_mu[i][journeys]), mu[journeys], rtol=1e-10)
        np.testing.assert_allclose(
            np.exp(got.log_mu[i][..., 4][~no_flow]), mu[..., 4][~no_flow], rtol=1e-10
        )
        np.testing.assert_allclose(np.exp(got.log_p[i]), p, rtol=1e-10)
        # 1 − p by hand loses digits where p is near 1
        np.testing.assert_allclose(np.exp(got.log_1mp[i]), 1 - p, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(got.phi[i], phi, rtol=1e-12)


# ---- priors


def _law(model, name):
    """The distribution of model variable `name` and its parameters (graphs)."""
    node = model[name].owner
    return type(node.op).__name__.removesuffix("RV"), node.op.dist_params(node)


def _value(param):
    return float(np.unique(param.eval()).item())


def _names(model, param):
    """The hyperparameters `param` depends on."""
    return {v.name for v in ancestors([param]) if v in model.free_RVs}


def test_a_spec_can_override_the_hierarchies(data):
    spec = parse_spec(
        {
            "name": "b",
            "family": "border",
            "seed": 1,
            "data": {"records": "data/synthetic"},
            "priors": {
                "section_effect": {"distribution": "ZeroSumNormal", "sigma": 0.3},
                "hazard_section": {
                    "distribution": "StudentT",
                    "nu": 4,
                    "mu": "hazard_mean",
                    "sigma": 0.1,
                },
            },
        }
    )
    m = build_border(data, dict(spec.priors))
    # section effects of fixed scale: no σ_α in the model
    law, (sigma, *_) = _law(m, "section_effect")
    assert law == "ZeroSumNormal" and _value(sigma) == 0.3
    assert "section_sd" not in m.named_vars
    # section hazards: Student t around μ_a + t_terrain, of scale 0.1; no σ_a
    law, (nu, mu, sigma) = _law(m, "hazard_section_given_retry")
    assert law == "StudentT" and (_value(nu), _value(sigma)) == (4, 0.1)
    assert _names(m, mu) == {"hazard_mean_given_retry", "hazard_terrain", "give_up_hazard_root"}
    assert "hazard_section_sd" not in m.named_vars
    assert np.isfinite(m.compile_logp()(m.initial_point()))


def test_default_hierarchies_name_their_hyperparameters(model):
    law, (sigma, *_) = _law(model, "section_effect")
    assert law == "ZeroSumNormal" and _names(model, sigma) == {"section_sd"}
    law, (mu, sigma) = _law(model, "hazard_section_given_retry")
    assert law == "Normal"
    assert _names(model, mu) == {"hazard_mean_given_retry", "hazard_terrain", "give_up_hazard_root"}
    assert _names(model, sigma) == {"hazard_section_sd"}


def test_the_non_centred_hazard_keeps_the_overridden_law(data):
    law = Prior("StudentT", nu=5, mu="hazard_mean", sigma="hazard_section_sd")
    m = build_border(data, {"hazard_section": law}, centered_hazard=False)
    law, params = _law(m, "hazard_section_z")
    assert law == "StudentT" and [_value(x) for x in params] == [5, 0, 1]
    assert m["hazard_section"] in m.deterministics
    # a_s = μ_a + σ_a z moves with r through μ_a (sampled along the ridge as μ_a + log r/κ)
    assert _names(m, m["hazard_section"]) >= {
        "hazard_mean_given_retry",
        "give_up_hazard_root",
        "hazard_section_sd",
        "hazard_section_z",
    }
    assert np.isfinite(m.compile_dlogp()(m.initial_point())).all()


def test_the_non_centred_section_effects_are_the_scale_times_standard_scores(data):
    m = build_border(data, centered_section_effect=False)
    law, (sigma, *_) = _law(m, "section_effect_z")
    assert law == "ZeroSumNormal" and _value(sigma) == 1.0
    assert m["section_effect"] in m.deterministics
    assert _names(m, m["section_effect"]) == {"section_sd", "section_effect_z"}
    point = m.initial_point()
    assert np.isfinite(m.compile_dlogp()(point)).all()
    # α = σ_α z exactly, at a point where σ_α ≠ 1
    z = np.linspace(-1.0, 1.0, len(data["section"]))
    at = {"section_sd_log__": np.log(0.3), "section_effect_z_zerosum__": z[:-1] - z.mean()}
    outputs = m.replace_rvs_by_values([m["section_effect"], m["section_sd"], m["section_effect_z"]])
    inputs = [m.rvs_to_values[m[n]] for n in ("section_sd", "section_effect_z")]
    fn = pytensor.function(inputs, outputs, on_unused_input="ignore")
    alpha, sd, zs = fn(*(at[v.name] for v in inputs))
    np.testing.assert_allclose(alpha, sd * zs)
    assert sd == pytest.approx(0.3) and abs(zs.sum()) < 1e-12 and np.ptp(zs) > 0


@pytest.mark.parametrize("centered", [True, False])
def test_terrain_journeys_shift_each_sections_journey_level_by_its_terrain(data, centered):
    """α_s = u_{terrain(s)} + α'_s: evaluated at chosen u and α', section_effect is their sum section by section
    (a section alone in its terrain carries its terrain's shift), and the log density has the terrain prior's
    term."""
    m = build_border(data, terrain_journeys=True, centered_section_effect=centered)
    terrains = list(m.coords["terrain"])
    assert m.named_vars_to_dims["journey_terrain"] == ("terrain",)
    assert m["section_effect"] in m.deterministics
    law, (sigma, *_) = _law(m, "journey_terrain")
    assert law == "ZeroSumNormal" and _value(sigma) == 0.5
    inner = "section_deviation" if centered else "section_deviation_z"
    assert _names(m, m["section_effect"]) >= {"journey_terrain", inner}
    assert np.isfinite(m.compile_dlogp()(m.initial_point())).all()
    rng = np.random.default_rng(5)
    u = rng.normal(0, 0.4, len(terrains))
    u -= u.mean()
    dev = rng.normal(0, 0.3, len(data["section"]))
    dev -= dev.mean()
    names = ["journey_terrain", inner] + ([] if centered else ["section_sd"])
    values = [m.rvs_to_values[m[n]] for n in names]
    point = {
        "journey_terrain": u,
        inner: dev,
        "section_sd": 1.0,
    }
    forward = {
        v: m.rvs_to_transforms[m[n]].forward(pt.as_tensor(point[n])).eval()
        if m.rvs_to_transforms.get(m[n]) is not None
        else point[n]
        for n, v in zip(names, values, strict=True)
    }
    (alpha,) = pytensor.function(values, m.replace_rvs_by_values([m["section_effect"]]))(
        *forward.values()
    )
    of = [terrains.index(t) for t in data["terrain"].values]
    np.testing.assert_allclose(alpha, dev + u[of], atol=1e-12)
    # off by default: no terrain shift of the journeys
    assert "journey_terrain" not in build_border(data).named_vars


def test_non_centred_section_effects_need_a_scale_and_no_location(data):
    with pytest.raises(EstimInputError, match="centered_section_effect"):
        build_border(
            data,
            {"section_effect": Prior("Normal", mu=0.5, sigma="section_sd")},
            centered_section_effect=False,
        )


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        ({"section_effect": Prior("ZeroSumNormal", sigma="trend")}, "not a hyperparameter"),
        ({"hazard_section": Prior("Gamma", alpha=2.0, beta=1.0)}, "location-scale"),
        ({"section_sd": Prior("HalfNormal", sigma="hazard_mean")}, "numbers only"),
        (
            {
                "section_effect": Prior("ZeroSumNormal", sigma=0.3),
                "section_sd": Prior("HalfNormal", sigma=1.0),
            },
            "no prior names",
        ),
    ],
)
def test_prior_overrides_that_cannot_hold_are_errors(data, priors, message):
    with pytest.raises(EstimInputError, match=message):
        build_border(data, priors)


# ---- likelihood terms read their values


def _term_logp(model, name, value, point):
    """The log-likelihood of observed variable `name` at ``value`` (not its data), at `point`."""
    graph = model.replace_rvs_by_values([pm.logp(model[name], value).sum()])[0]
    return model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")(point)


@pytest.mark.parametrize(
    "name",
    ["apprehended_journeys", "repeat_apprehensions", "apprehensions", "apprehensions_by_detector"],
)
def test_each_likelihood_term_evaluates_the_value_it_is_given(model, name):
    point = _point(model, np.random.default_rng(5))
    observed = model.rvs_to_values[model[name]].data
    at_data = _term_logp(model, name, observed, point)
    assert at_data == pytest.approx(model.point_logps(point, round_vals=12)[name], rel=1e-9)
    other = observed.copy()
    other[np.unravel_index(np.flatnonzero(observed > 0)[:5], observed.shape)] += 1
    assert _term_logp(model, name, other, point) != pytest.approx(at_data, rel=1e-9)


@pytest.mark.parametrize("name", ["apprehended_journeys", "apprehensions"])
def test_a_term_at_other_counts_is_the_term_of_a_model_of_those_counts(model, data, name):
    point = _point(model, np.random.default_rng(6))
    sections = data["surveyed"].values == (name == "apprehended_journeys")
    changed = data.copy(deep=True)
    counts = changed[name].values
    counts[sections] += (
        (counts[sections] > 0)
        * np.arange(counts[sections].size).reshape(counts[sections].shape)
        % 3
    )
    other = build_border(changed)
    expected = other.point_logps(point, round_vals=12)[name]
    assert _term_logp(model, name, counts[sections], point) == pytest.approx(expected, rel=1e-9)
    assert expected != pytest.approx(model.point_logps(point, round_vals=12)[name], rel=1e-6)


# ---- options: the retry probability fixed, a person-level frailty


def test_frailty_repeat_counts_are_the_mixture_over_the_frailty_nodes(data):
    # With frailty σ the repeat counts of a cell follow P(k | k ≥ 1) = E[p_Z (p_Z r)^{k−1} (1 − p_Z r)] / E p_Z
    # over the discretised log-normal Z; checked against the same expectation computed node by node here, and
    # against σ → 0 (the geometric of continuation pr). The apprehended journeys: NegBin(μ E p_Z, φ).
    from numpy.polynomial.hermite import hermgauss

    model = build_border(data, frailty_sd=0.5)
    rng = np.random.default_rng(4)
    point = _point(model, rng)
    values = _values(model, point)
    mu, p, phi, _ = _by_hand(data, values)
    r = float(values["retry_probability"])
    terms = model.point_logps(point, round_vals=12)
    s = data["surveyed"].values
    x, w = hermgauss(5)
    z = np.exp(-(0.5**2) / 2 + 0.5 * np.sqrt(2) * x)
    w = w / np.sqrt(np.pi)
    hazard = -np.log1p(-p[s])[..., None] * z  # (section, month, category, node)
    p_q = -np.expm1(-hazard)
    p_bar = (w * p_q).sum(-1)
    f = data["frequency"].values[s]
    k = data["k"].values
    total = 0.0
    for i in zip(*np.nonzero(f), strict=True):
        cell, kk = i[:3], k[i[3]]
        pq = p_q[cell]
        total += f[i] * np.log((w * pq * (pq * r) ** (kk - 1) * (1 - pq * r)).sum() / p_bar[cell])
    assert terms["repeat_apprehensions"] == pytest.approx(total, rel=1e-9)
    a = data["apprehended_journeys"].values[s]
    m = mu[s] * p_bar
    nb = scipy.stats.nbinom.logpmf(a, phi, phi / (phi + m))
    assert terms["apprehended_journeys"] == pytest.approx(nb.sum(), rel=1e-9)
    # a frailty of spread 0 is no frailty
    plain = build_border(data).point_logps(point, round_vals=12)
    tiny = build_border(data, frailty_sd=1e-6).point_logps(point, round_vals=12)
    assert tiny["repeat_apprehensions"] == pytest.approx(plain["repeat_apprehensions"], rel=1e-8)


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_r_sampled_through_its_hazard_root_keeps_the_stated_beta_prior(alpha):
    """r = exp(−|v|²/2), v ~ Normal(0, I/a) in the plane: the law of r the model's density implies,
    integrated numerically over the plane, is the stated Beta(a, 1) (a = 1: uniform)."""
    prior = Prior("Beta", alpha=alpha, beta=1.0)
    with pm.Model(coords={"retry_root": ["first", "second"]}) as m:
        retry_log(_PriorTable({"retry_probability": prior}), prior, 0.0)
    assert [v.name for v in m.free_RVs] == [RETRY_AUXILIARY]
    logp = m.compile_logp()

    def ring(radius):  # the density on the circle of that radius, times its length
        return 2 * np.pi * radius * float(np.exp(logp({RETRY_AUXILIARY: np.array([radius, 0.0])})))

    for r in (0.05, 0.3, 0.6, 0.95, 0.999):
        edge = np.sqrt(-2 * np.log(r))  # P(R ≤ r) = P(|v|²/2 ≥ −log r)
        mass = scipy.integrate.quad(ring, edge, 40)[0]
        assert mass == pytest.approx(scipy.stats.beta(alpha, 1.0).cdf(r), abs=1e-7)
    # r = 1 is the centre of the plane: the density there is finite and positive, and smooth
    assert 0 < ring(1e-9) / (2 * np.pi * 1e-9) < np.inf


def test_a_prior_on_r_whose_density_at_one_is_zero_or_infinite_samples_r_itself():
    for b in (5.0, 0.5):
        prior = Prior("Beta", alpha=2.0, beta=b)
        with pm.Model(coords={"retry_root": ["first", "second"]}) as m:
            retry_log(_PriorTable({"retry_probability": prior}), prior, 0.0)
        assert [v.name for v in m.free_RVs] == ["retry_probability"]
    with pytest.raises(EstimInputError, match="a Beta law"):
        with pm.Model():
            bad = Prior("Uniform", lower=0.0, upper=1.0)
            retry_log(_PriorTable({"retry_probability": bad}), bad, 0.0)


def test_the_gate_reads_r_not_the_sign_of_its_auxiliary():
    """Chains at different angles of the plane are the same r: R-hat of v would fail a sound fit."""
    import xarray as xr

    from estim.families.border import BORDER
    from estim.run.diagnostics import check
    from estim.run.fit import gate_names

    rng = np.random.default_rng(3)
    h = rng.exponential(0.05, (2, 1000))
    # chain 0 on one side of the plane, chain 1 on the other: the same r
    angle = np.where(np.arange(2)[:, None] == 0, 0.3, 3.4) + rng.normal(0, 0.1, (2, 1000))
    root = np.sqrt(2 * h)[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    posterior = xr.Dataset(
        {
            RETRY_AUXILIARY: (("chain", "draw", "retry_root"), root),
            "retry_probability": (("chain", "draw"), np.exp(-h)),
        }
    )
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((2, 1000), bool)),
            "energy": (("chain", "draw"), rng.normal(size=(2, 1000))),
        }
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    names = gate_names(BORDER, tree)
    assert names == ["retry_probability"]
    assert check(tree, var_names=names).passed
    assert not check(tree).passed  # read naively, v's R-hat fails


def test_options_are_checked_and_a_fixed_retry_is_not_a_parameter(data):
    with pytest.raises(EstimInputError, match="retry_probability"):
        build_border(data, retry_probability=1.5)
    with pytest.raises(EstimInputError, match="frailty_sd"):
        build_border(data, frailty_sd="large")
    fixed = build_border(data, retry_probability=1.0)
    assert "retry_probability" not in {v.name for v in fixed.free_RVs}
    assert "retry_probability" in fixed.named_vars  # kept as a constant in the posterior
    estimated = build_border(data, frailty_sd="estimated")
    assert "frailty_sd" in {v.name for v in estimated.free_RVs}


def test_the_saddlepoint_option_changes_only_the_large_totals_within_their_bound(data):
    for bad in (0, -3, 2.5, True, "auto"):
        with pytest.raises(EstimInputError, match="saddlepoint_above"):
            build_border(data, saddlepoint_above=bad)
    surveyed = data["surveyed"].values
    totals = data["apprehensions"].values[~surveyed]
    # the shipped data are fitted with the exact law (largest total below the default threshold) ...
    assert totals.max() <= SADDLEPOINT_ABOVE
    # ... and with a threshold of 64, the cells above it move within the saddlepoint's bound at 64
    exact = build_border(data, saddlepoint_above=False)
    lower = build_border(data, saddlepoint_above=64)
    point = exact.initial_point()
    whole = [float(m.compile_logp()(point)) for m in (exact, lower)]
    totals_term = [float(m.compile_logp(vars=[m[OBSERVED]])(point)) for m in (exact, lower)]
    large = int((totals > 64).sum())
    assert large > 0
    difference = totals_term[1] - totals_term[0]
    assert 0 < abs(difference) < 1e-3 * large
    assert whole[1] - whole[0] == pytest.approx(difference, abs=1e-9)  # nothing else moved


def test_the_after_windows_background_factor_scales_the_other_crossings_after_the_journey_only(
    model, data
):
    # the model with ρ at a point is the model with ρ = 1 at the point whose μ_S are ρ times as large, for
    # the window after the journey; the window before keeps μ_S
    rho = 1.7
    scaled = build_border(data, after_background=rho)
    assert float(scaled["after_background"].eval()) == rho
    point = _point(model, np.random.default_rng(12))
    moved = {**point, "other_sightings_log__": point["other_sightings_log__"] + np.log(rho)}
    with_rho, plain, plain_moved = (
        m.point_logps(p, round_vals=12)
        for m, p in ((scaled, point), (model, point), (model, moved))
    )
    assert with_rho["linked_journeys"] == pytest.approx(plain_moved["linked_journeys"], rel=1e-9)
    assert with_rho["before_journeys"] == pytest.approx(plain["before_journeys"], rel=1e-9)
    assert with_rho["linked_journeys"] != pytest.approx(plain["linked_journeys"], rel=1e-6)
    for bad in (0.0, -1.0, "1.4", True):
        with pytest.raises(EstimInputError, match="after_background"):
            build_border(data, after_background=bad)
