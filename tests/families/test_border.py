"""The border model (estim/families/border.py): data, likelihood against independent formulas and brute-force
enumeration, the conditional draws of unobserved crossings, and the saved outputs."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.special
import scipy.stats
import xarray as xr

from estim.families.border import model as B
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.run.spec import parse_spec
from estim.statistics import sufficient_statistics


@pytest.fixture(scope="module")
def records():
    return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)


@pytest.fixture(scope="module")
def data(records):
    stats = sufficient_statistics(records, period="month", occasion=None)
    return B.border_data(stats, records.sections, records.policy_events)


@pytest.fixture(scope="module")
def truth():
    with xr.open_dataset(SYNTHETIC_DIR / "truth.nc") as t:
        return t.load()


@pytest.fixture(scope="module")
def model(data):
    return B.build_border(data)


def test_data_have_domain_dims_and_the_surveyed_sections(data, truth):
    assert data["apprehensions"].dims == ("section", "month", "category")
    assert set(data["section"].values[data["surveyed"].values]) == {"omsk", "orenburg"}
    assert list(data["category"].values) == list(B.CATEGORIES)
    # apprehensions equal the simulator's, cell by cell
    np.testing.assert_array_equal(
        data["apprehensions"].values,
        truth["apprehensions"].sel(section=data["section"], category=data["category"]).values,
    )
    # policy indicators computed from policy_events.csv equal the simulator's I_e(t)
    np.testing.assert_allclose(
        data["policy_in_force"].values, truth["policy_in_force"].values, atol=1e-12
    )
    # in a surveyed section-month each apprehended person is one journey: 1 ≤ A ≤ K when K > 0
    s = data["surveyed"].values
    assert (
        int(truth["abandoned"].sum()) == 0
    )  # retry probability 1: the model's assumption holds here
    a = data["apprehended_journeys"].values[s]
    k = data["apprehensions"].values[s]
    assert (a <= k).all() and ((a == 0) == (k == 0)).all()


def test_border_data_rejects_yearly_statistics(records):
    from estim.errors import EstimInputError

    stats = sufficient_statistics(records, period="year", occasion=None)
    with pytest.raises(EstimInputError, match="period='month'"):
        B.border_data(stats, records.sections, records.policy_events)


def test_gradient_is_finite_and_coords_are_labelled(model, data):
    ip = model.initial_point()
    assert np.isfinite(model.compile_logp()(ip))
    assert np.isfinite(model.compile_dlogp()(ip)).all()
    assert list(model.coords["section"]) == list(data["section"].values)
    assert list(model.coords["category"]) == list(B.CATEGORIES)
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
    fn = model.compile_fn(
        model.logp(vars=[model["hazard_section"]], sum=True),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    point = model.initial_point()
    point["hazard_mean"] = values["hazard_mean"]
    point["hazard_section_sd_log__"] = np.log(values["hazard_section_sd"])
    point["hazard_section"] = values["hazard_section"]
    transform = model.rvs_to_transforms[model["hazard_terrain"]]
    point["hazard_terrain_zerosum__"] = transform.forward(pt.as_tensor(terrain)).eval()
    of = [terrains.index(t) for t in data["terrain"].values]
    expected = scipy.stats.norm.logpdf(
        values["hazard_section"], -0.6 + terrain[of], values["hazard_section_sd"]
    ).sum()
    assert fn(point) == pytest.approx(expected, rel=1e-9)
    # without terrain, one mean for all sections
    plain = B.build_border(data, terrain_hazard=False)
    assert "hazard_terrain" not in plain.named_vars and "terrain" not in plain.coords


def _point(model, rng, scale=0.1):
    ip = model.initial_point()
    return {k: v + rng.normal(0, scale, size=np.shape(v)) for k, v in ip.items()}


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
    names = [
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
    # (model.compile_fn on the random variables would draw from the prior: evaluate the value variables)
    fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)
    values = dict(zip([v.name for v in model.unobserved_value_vars], fn(point), strict=True))
    values = {n: values[n] for n in names}
    mu, p, phi, shares = _by_hand(data, values)
    terms = model.point_logps(point, round_vals=12)
    s = data["surveyed"].values
    a = data["apprehended_journeys"].values[s]
    # apprehended journeys: NegBin(μp, φ) (scipy's parameterisation: n = φ, success prob φ/(φ + mean))
    m = mu[s] * p[s]
    nb = scipy.stats.nbinom.logpmf(a, phi, phi / (phi + m))
    assert terms["apprehended_journeys"] == pytest.approx(nb.sum(), rel=1e-9)
    # repeats: Σ f_k log[p^{k−1}(1 − p)]
    f = data["frequency"].values[s]
    k = data["k"].values
    rep = (f * ((k - 1) * np.log(p[s])[..., None] + np.log1p(-p[s])[..., None])).sum()
    assert terms["repeat_apprehensions"] == pytest.approx(rep, rel=1e-9)
    # unsurveyed totals: Σ_a NegBin(a; μp, φ) · NB₀(k − a; a, 1 − p), summed cell by cell with scipy
    ku = data["apprehensions"].values[~s]
    flow = data["land_foreign_crossings"].values[~s]
    mu_u, p_u = mu[~s], p[~s]
    phi_u = np.broadcast_to(phi, ku.shape)
    tot = 0.0
    for i in zip(*np.nonzero(np.ones(ku.shape, bool)), strict=True):
        if B.CATEGORIES[i[2]] == B.BYPASSER and flow[i[:2]] == 0:
            continue  # no foreign flow: no bypassers, no term
        k, f, m = int(ku[i]), phi_u[i], mu_u[i] * p_u[i]
        a = np.arange(0, k + 1) if k == 0 else np.arange(1, k + 1)
        log_a = scipy.stats.nbinom.logpmf(a, f, f / (f + m))
        log_rest = scipy.stats.nbinom.logpmf(k - a, np.maximum(a, 1), 1 - p_u[i]) if k else 0.0
        tot += scipy.special.logsumexp(log_a + log_rest)
    assert terms["apprehensions"] == pytest.approx(tot, rel=1e-9)
    # detector split: multinomial kernel Σ K_td log π_td
    kd = data["apprehensions_by_detector"].sum(["section", "category"]).values
    assert terms["apprehensions_by_detector"] == pytest.approx(
        (kd * np.log(shares.T)).sum(), rel=1e-9
    )


def _exact_k_law(mu, phi, p, k_max=400, j_max=400):
    """P(K = k) by enumeration: J ~ NegBin(μ, φ), K | J = sum of J geometrics ~ NB₀(J, 1 − p)."""
    j = np.arange(j_max)
    pj = scipy.stats.nbinom.pmf(j, phi, phi / (phi + mu))
    k = np.arange(k_max)
    pk = np.zeros(k_max)
    pk[0] += pj[0]
    for jj in range(1, j_max):
        pk += pj[jj] * scipy.stats.nbinom.pmf(k, jj, 1 - p)
    return k, pk


@pytest.mark.parametrize(("mu", "phi", "p"), [(3.0, 5.0, 0.4), (20.0, 10.0, 0.55), (0.5, 2.0, 0.3)])
def test_unsurveyed_moments_match_the_exact_compound_law(mu, phi, p):
    k, pk = _exact_k_law(mu, phi, p)
    assert pk.sum() == pytest.approx(1, abs=1e-9)
    q = p / (1 - p)
    mean = (k * pk).sum()
    var = (k**2 * pk).sum() - mean**2
    assert mean == pytest.approx(mu * q, rel=1e-8)
    assert var == pytest.approx(mu * q * (1 + 2 * q) + (mu * q) ** 2 / phi, rel=1e-8)


@pytest.mark.parametrize(
    ("mu", "phi", "p"),
    [(3.0, 5.0, 0.4), (20.0, 10.0, 0.55), (0.5, 2.0, 0.3), (8.0, 0.5, 0.7), (50.0, 300.0, 0.2)],
)
def test_unsurveyed_likelihood_is_the_exact_compound_law(mu, phi, p):
    # reference: enumeration over the journeys J (not over A, as the model sums); category 1 has twice the φ
    pk = np.stack(
        [_exact_k_law(mu, f, p, k_max=200, j_max=600)[1] for f in (phi, 2 * phi)], axis=-1
    )
    # totals spread over the block widths, two categories, one cell weighted out
    k = np.array([[0, 0], [1, 3], [2, 5], [7, 12], [17, 40], [60, 130]])[None]  # (1, 6, 2)
    keep = np.ones(k.shape)
    keep[0, 2, 1] = 0
    shape = k.shape
    logp = B._totals_logp(
        k,
        keep,
        pt.as_tensor(np.full(shape, np.log(mu * p))),
        pt.as_tensor(np.full(shape, np.log(p))),
        pt.as_tensor(np.full(shape, np.log1p(-p))),
        pt.as_tensor(np.array([phi, 2 * phi])),
    ).eval()
    ref = np.log(pk[k, np.arange(2)])
    assert logp[0, 2, 1] == 0.0
    mask = keep > 0
    np.testing.assert_allclose(logp[mask], ref[mask], rtol=1e-10, atol=1e-10)


def test_apprehended_journeys_given_totals_follow_the_exact_conditional_law():
    mu, phi, p, k_obs = 6.0, 4.0, 0.45, 7
    # brute force: P(A = a, K = k) = Σ_J NB(J; μ, φ) Bin(a; J, p) NB₀(k − a; a, 1 − p)
    joint = np.zeros(k_obs + 1)
    for j in range(200):
        pj = scipy.stats.nbinom.pmf(j, phi, phi / (phi + mu))
        for a in range(1, min(j, k_obs) + 1):
            joint[a] += (
                pj * scipy.stats.binom.pmf(a, j, p) * scipy.stats.nbinom.pmf(k_obs - a, a, 1 - p)
            )
    exact = joint / joint.sum()
    rng = np.random.default_rng(0)
    n = 40_000
    col = lambda x: np.full((n, 1), x)  # noqa: E731
    draws = B._sample_apprehended(
        rng, np.array([k_obs]), col(np.log(mu * p)), col(phi), col(np.log(p)), col(np.log1p(-p))
    )[:, 0]
    freq = np.bincount(draws, minlength=k_obs + 1) / n
    assert draws.min() >= 1 and draws.max() <= k_obs
    np.testing.assert_allclose(freq, exact, atol=0.01)


def test_apprehended_journeys_given_a_large_total_follow_the_exact_conditional_law():
    # the sampler walks the weights by their ratio (numba); check a large K against log-gamma weights
    mu, phi, p, k_obs = 80.0, 3.0, 0.5, 120
    a = np.arange(1, k_obs + 1)
    m = mu * p
    lw = (
        scipy.stats.nbinom.logpmf(a, phi, phi / (phi + m))
        + scipy.special.gammaln(k_obs)
        - scipy.special.gammaln(a)
        - scipy.special.gammaln(k_obs - a + 1)
        + (k_obs - a) * np.log(p)
        + a * np.log1p(-p)
    )
    exact = np.exp(lw - lw.max())
    exact /= exact.sum()
    n = 40_000
    col = lambda x: np.full((n, 1), x)  # noqa: E731
    draws = B._sample_apprehended(
        np.random.default_rng(4),
        np.array([k_obs]),
        col(np.log(m)),
        col(phi),
        col(np.log(p)),
        col(np.log1p(-p)),
    )[:, 0]
    freq = np.bincount(draws, minlength=k_obs + 1)[1:] / n
    assert 0.5 * np.abs(freq - exact).sum() < 0.02  # total variation
    assert draws.mean() == pytest.approx((a * exact).sum(), rel=0.01)


def test_segments_of_several_cells_are_drawn_independently():
    rng = np.random.default_rng(1)
    k = np.array([0, 1, 3, 0, 5])
    n = 2000
    ones = np.ones((n, len(k)))
    a = B._sample_apprehended(
        rng, k, np.log(2.0) * ones, 3 * ones, np.log(0.4) * ones, np.log(0.6) * ones
    )
    assert (a[:, k == 0] == 0).all()
    assert (a[:, 1] == 1).all()
    assert ((a >= (k > 0)) & (a <= k)).all()


def _fake_posterior(model, draws=8, seed=2, scale=0.05):
    """Draws near the initial point (the model's parameters, untransformed), shaped like a posterior."""
    rng = np.random.default_rng(seed)
    fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)
    names = [v.name for v in model.unobserved_value_vars]
    rows = [dict(zip(names, fn(_point(model, rng, scale)), strict=True)) for _ in range(draws)]
    dims = model.named_vars_to_dims
    return xr.Dataset(
        {
            n: (("chain", "draw", *dims.get(n, ())), np.stack([r[n] for r in rows])[None])
            for n in names
            if not n.endswith("__")  # transformed values
        },
        coords={k: list(v) for k, v in model.coords.items()},
    )


def test_unobserved_draws_are_the_conditional_law_of_journeys(model, data):
    """At fixed parameters, the mean of the drawn journeys in a surveyed cell equals the exact posterior mean
    E[J | A] by enumeration."""
    post = _fake_posterior(model, draws=1)
    post = post.isel(draw=[0] * 400)
    post = post.assign_coords(draw=np.arange(400))
    cr = B.crossings(data, post, np.random.default_rng(5))
    v, _ = B._posterior_values(post.isel(draw=[0]))
    log_mu, log_p, _, phi = B._rates_np(data, v, slice(None))
    s = int(np.flatnonzero(data["surveyed"].values)[0])
    t, c = 40, 1
    mu, p, ph = np.exp(log_mu[0, s, t, c]), np.exp(log_p[0, s, t, c]), phi[0, c]
    a = int(data["apprehended_journeys"].values[s, t, c])
    j = np.arange(a, a + 4000)
    w = scipy.stats.nbinom.pmf(j, ph, ph / (ph + mu)) * scipy.stats.binom.pmf(a, j, p)
    exact_mean = (j * w).sum() / w.sum()
    drawn = cr["unobserved"].values[0, :, s, t, c]
    se = drawn.std() / np.sqrt(len(drawn))
    assert abs(drawn.mean() - exact_mean) < 4 * se + 1e-9


def test_after_sampling_outputs(model, data):
    post = _fake_posterior(model, draws=8)
    groups = B.after_sampling(data, post, np.random.default_rng(0))
    p = groups["posterior"]
    assert p["unobserved_section_year"].dims == ("chain", "draw", "section", "year")
    assert list(p["unobserved_section_year"]["year"].values) == list(range(2006, 2018))
    np.testing.assert_array_equal(
        p["unobserved_border_year"].values, p["unobserved_section_year"].sum("section").values
    )
    t = groups["crossings"]
    assert (t["unobserved"].sel(quantile=0.05) <= t["unobserved"].sel(quantile=0.95)).all()
    np.testing.assert_allclose(
        t["attempts"].sel(quantile=0.5), t["unobserved"].sel(quantile=0.5) + t["apprehensions"]
    )
    pp, obs = groups["posterior_predictive"], groups["observed_data"]
    assert pp["monthly_apprehensions"].dims == ("chain", "draw", "section", "month")
    assert set(pp["frequency"]["surveyed_section"].values) == {"omsk", "orenburg"}
    assert obs["frequency"].shape == pp["frequency"].shape[2:]
    # the observed f_k add up to the surveyed sections' apprehended journeys (k capped at its maximum)
    s = data["surveyed"].values
    assert int(obs["frequency"].sum()) == int(data["apprehended_journeys"].values[s].sum())


def test_border_spec_reads_and_rejects_a_period():
    spec = parse_spec(
        {
            "name": "b",
            "family": "border",
            "seed": 1,
            "data": {"records": "data/synthetic"},
            "sampler": {"adaptation": "low_rank"},
        }
    )
    assert spec.sampler.adaptation == "low_rank"
    from estim.errors import EstimInputError

    with pytest.raises(EstimInputError, match="period"):
        parse_spec(
            {
                "name": "b",
                "family": "border",
                "seed": 1,
                "data": {"records": "data/synthetic", "period": "2010"},
            }
        )


def test_nb_kernel_matches_scipy():
    # the shared kernel the border likelihood uses, at the border's parameterisation (shape φ, α = 1/φ)
    a = np.array([0, 1, 5, 40])
    mean, phi = 7.5, 3.0
    got = B._nb_logp(a, np.log(mean), phi, np)
    np.testing.assert_allclose(got, scipy.stats.nbinom.logpmf(a, phi, phi / (phi + mean)))
