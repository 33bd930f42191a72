"""Generated quantities of the border model (estim/families/border/generated.py): the conditional draws of
unobserved crossings, the predictive law of the counts, and the outputs a fit saves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from estim.families.border import (
    Rates,
    after_sampling,
    crossings,
    posterior_parameters,
    rates,
    simulate_counts,
)


def _fake_posterior(model, draws=8, seed=2, scale=0.05):
    """Draws near the initial point (the model's parameters, untransformed), shaped like a posterior."""
    rng = np.random.default_rng(seed)
    fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)
    names = [v.name for v in model.unobserved_value_vars]
    ip = model.initial_point()
    rows = []
    for _ in range(draws):
        point = {k: v + rng.normal(0, scale, size=np.shape(v)) for k, v in ip.items()}
        rows.append(dict(zip(names, fn(point), strict=True)))
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
    """At fixed parameters, the mean of the drawn unobserved crossings in a surveyed cell equals the exact
    posterior mean by enumeration: E[J − A | A] journeys never apprehended, plus the apprehended journeys that
    got through (s = r(1 − p)/(1 − pr) each; a linked journey by its sightings, so a cell without linked
    journeys is checked)."""
    post = _fake_posterior(model, draws=1)
    retry = float(post["retry_probability"].values.ravel()[0])
    assert 0 < retry < 1
    post = post.isel(draw=[0] * 400)
    post = post.assign_coords(draw=np.arange(400))
    cr = crossings(data, post, np.random.default_rng(5))
    parameters, shape = posterior_parameters(post.isel(draw=[0]))
    assert shape == (1, 1)
    log_mu, log_p, _, phi = rates(data, parameters)
    s = int(np.flatnonzero(data["surveyed"].values)[0])
    c = 1
    unlinked = data["linked_journeys"].values[s, :, c].sum(-1) == 0
    t = int(np.flatnonzero(unlinked & (data["apprehended_journeys"].values[s, :, c] > 0))[0])
    mu, p, ph = np.exp(log_mu[0, s, t, c]), np.exp(log_p[0, s, t, c]), phi[0, c]
    a = int(data["apprehended_journeys"].values[s, t, c])
    j = np.arange(a, a + 4000)
    w = scipy.stats.nbinom.pmf(j, ph, ph / (ph + mu)) * scipy.stats.binom.pmf(a, j, p)
    got_through = retry * (1 - p) / (1 - p * retry)
    exact_mean = (j * w).sum() / w.sum() - a + a * got_through
    drawn = cr["unobserved"].values[0, :, s, t, c]
    se = drawn.std() / np.sqrt(len(drawn))
    assert abs(drawn.mean() - exact_mean) < 4 * se + 1e-9


@pytest.mark.parametrize("retry", [1.0, 0.6])
def test_simulated_counts_have_the_model_moments(retry):
    # one cell, two categories, 200,000 draws at fixed rates; repeats go on with pr, apprehended journeys
    # get through with s = r(1 − p)/(1 − pr)
    n = 200_000
    mu, p, phi = np.array([4.0, 30.0]), np.array([0.3, 0.6]), np.array([2.0, 8.0])
    cells = lambda x: np.broadcast_to(x, (n, 1, 1, 2))  # noqa: E731
    counts = simulate_counts(
        Rates(
            cells(np.log(mu)), cells(np.log(p)), cells(np.log1p(-p)), np.broadcast_to(phi, (n, 2))
        ),
        np.random.default_rng(7),
        np.full(n, retry),
    )
    j, a, k, u = (x.reshape(n, 2) for x in counts)
    s = retry * (1 - p) / (1 - p * retry)
    np.testing.assert_allclose(u.mean(0), mu * (1 - p) + mu * p * s, rtol=0.01)
    assert (u <= j).all() and (retry < 1 or (u == j).all())
    q = p * retry / (1 - p * retry)
    np.testing.assert_allclose(k.mean(0), mu * p / (1 - p * retry), rtol=0.01)
    np.testing.assert_allclose(j.mean(0), mu, rtol=0.01)
    np.testing.assert_allclose(j.var(0), mu + mu**2 / phi, rtol=0.03)
    np.testing.assert_allclose(a.mean(0), mu * p, rtol=0.01)
    # K = A + NegBin(A, 1 − pr): E K = μp(1 + q), Var K = μp(1+q)² + μp q(1+q) ... by the laws of total
    # expectation and variance, with A ~ NegBin(μp, φ) (thinning keeps the gamma mixture)
    ma, va = mu * p, mu * p + (mu * p) ** 2 / phi
    np.testing.assert_allclose(k.var(0), va * (1 + q) ** 2 + ma * q * (1 + q), rtol=0.03)
    assert ((a <= j) & (a <= k) & ((a == 0) == (k == 0))).all()


def test_after_sampling_outputs(model, data):
    post = _fake_posterior(model, draws=8)
    groups = after_sampling(data, post, np.random.default_rng(0))
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


def test_after_sampling_averages_with_repeated_trials_when_the_data_favour_them(model, data):
    """Half the draws at r = 0.6, half within 0.001 of r = 1: the posterior density of −log r at 0 is 25
    against the uniform prior's 1, so P(r = 1 | data) = 25/26, and the derived quantities are those of r = 1
    (no journey given up) at the draws replaced. Without the prior's atom, the draws at 0.6 give some up."""
    from estim.families.border.repeated_trials import SOURCE

    post = _fake_posterior(model, draws=40)
    near_one = np.exp(-np.random.default_rng(1).uniform(0, 0.001, 20))
    post["retry_probability"] = (
        ("chain", "draw"),
        np.concatenate([np.full(20, 0.6), near_one])[None],
    )
    plain = after_sampling(data, post, np.random.default_rng(0), repeated_trials_prior=0.0)
    assert SOURCE not in plain["posterior"]
    assert (plain["posterior"]["abandoned_border_year"].values[0, :20].sum(-1) > 0).all()
    averaged = after_sampling(data, post, np.random.default_rng(0), repeated_trials_prior=0.5)
    source = averaged["posterior"][SOURCE]
    # 20 of 40 draws in the window r > 0.98, too few to fit a slope: density 0.5/0.02 = 25, B = 25
    assert source.attrs["bayes_factor"] == pytest.approx(25.0)
    assert source.attrs["posterior_probability"] == pytest.approx(25 / 26)
    replaced = source.values[0] >= 0
    assert replaced.sum() >= 32 and (source.values[0][replaced] >= 20).all()
    assert (averaged["posterior"]["abandoned_border_year"].values[0, replaced] == 0).all()
    # the derived draws are averaged already: reading the saved posterior averaged leaves them as they are
    from estim.families.border.repeated_trials import with_repeated_trials

    saved = post.assign(averaged["posterior"].data_vars)
    again = with_repeated_trials(saved)
    np.testing.assert_array_equal(
        again["unobserved_border_year"].values, saved["unobserved_border_year"].values
    )
    assert (again["retry_probability"].values[0, replaced] == 1.0).all()


def test_the_report_says_where_the_retry_probability_comes_from():
    from estim.families.border.repeated_trials import retry_summary

    def posterior(values, linked, lists=2):
        ds = xr.Dataset(
            {"retry_probability": (("chain", "draw"), np.asarray(values, float).reshape(1, -1))}
        )
        if linked:
            ds["register_coverage"] = (
                ("chain", "draw", "in_country_list"),
                np.zeros((1, len(values), lists)),
            )
        return ds

    draws = np.linspace(0.8, 1.0, 101)
    assert retry_summary(posterior(draws, True))["source"] == "linkage"
    # one register cannot say how complete it is: the linkage bounds r below, the priors do the rest
    assert retry_summary(posterior(draws, True, lists=1))["source"] == "one_list"
    assert retry_summary(posterior(draws, False))["source"] == "prior"
    fixed = retry_summary(posterior(np.ones(50), False))
    assert fixed["source"] == "fixed" and fixed["median"] == 1.0
    q = retry_summary(posterior(draws, True), prob=0.9)
    assert q["lower"] == pytest.approx(0.81) and q["upper"] == pytest.approx(0.99)
    # a fit made before r was a parameter: repeated trials
    assert retry_summary(xr.Dataset())["source"] == "fixed"


def test_simulated_counts_with_frailty_have_the_mixtures_moments():
    # σ = 0.5 on 5 Gauss–Hermite nodes: E A = μ Σ w_q p_q, E K = μ Σ w_q p_q/(1 − p_q r), and of the
    # apprehended journeys Σ w_q p_q s_q got through (s_q = r(1 − p_q)/(1 − p_q r))
    from numpy.polynomial.hermite import hermgauss

    n, retry, sigma = 200_000, 0.7, 0.5
    mu, p, phi = np.array([4.0, 30.0]), np.array([0.3, 0.6]), np.array([2.0, 8.0])
    cells = lambda x: np.broadcast_to(x, (n, 1, 1, 2))  # noqa: E731
    counts = simulate_counts(
        Rates(
            cells(np.log(mu)), cells(np.log(p)), cells(np.log1p(-p)), np.broadcast_to(phi, (n, 2))
        ),
        np.random.default_rng(9),
        np.full(n, retry),
        np.full(n, sigma),
    )
    j, a, k, u = (x.reshape(n, 2) for x in counts)
    x, w = hermgauss(5)
    w = w / np.sqrt(np.pi)
    z = np.exp(-(sigma**2) / 2 + sigma * np.sqrt(2) * x)
    p_q = 1 - (1 - p[:, None]) ** z[None, :]  # (category, node)
    s_q = retry * (1 - p_q) / (1 - p_q * retry)
    np.testing.assert_allclose(a.mean(0), mu * (w * p_q).sum(1), rtol=0.01)
    np.testing.assert_allclose(k.mean(0), mu * (w * p_q / (1 - p_q * retry)).sum(1), rtol=0.01)
    np.testing.assert_allclose(
        u.mean(0), mu * (1 - (w * p_q).sum(1)) + mu * (w * p_q * s_q).sum(1), rtol=0.01
    )


def test_the_chance_a_linked_journey_got_through_given_its_sightings_is_bayes_rule():
    """P(got through | after pattern) from `_link_posterior`, against a direct simulation of the linkage's
    generative story: the journey got through with s; each list records that crossing with π_l; the person's
    other crossings seen on exactly the lists S number Poisson(μ_S); the pattern is the set of lists with any
    sighting (index Σ 2^l)."""
    from estim.families.border.generated import _link_posterior

    coverage = np.array([0.55, 0.3])  # police_check, overstay
    other = np.array([0.2, 0.05, 0.1])  # sets {police}, {overstay}, {both}
    s = 0.7
    data = xr.Dataset(coords={"in_country_list": ["police_check", "overstay"], "category": ["c"]})
    post = xr.Dataset(
        {
            "register_coverage": (
                ("chain", "draw", "in_country_list", "category"),
                coverage[None, None, :, None],
            ),
            "other_sightings": (
                ("chain", "draw", "link_set", "category"),
                other[None, None, :, None],
            ),
        }
    )
    got = _link_posterior(data, post, slice(0, 1), np.full((1, 1, 1, 1), s))[0, 0, 0, 0]
    rng = np.random.default_rng(11)
    n = 2_000_000
    through = rng.random(n) < s
    seen = (through[:, None] & (rng.random((n, 2)) < coverage)).astype(int)
    counts = rng.poisson(other, (n, 3))
    seen[:, 0] |= (counts[:, 0] + counts[:, 2]) > 0
    seen[:, 1] |= (counts[:, 1] + counts[:, 2]) > 0
    pattern = seen[:, 0] + 2 * seen[:, 1]
    for b in range(4):
        mask = pattern == b
        expected = through[mask].mean()
        assert got[b] == pytest.approx(
            expected, abs=4 * np.sqrt(expected * (1 - expected) / mask.sum())
        )
    # seeing nothing makes getting through less likely, seeing both lists more likely
    assert got[0] < s < got[3]


# ----------------------------------------------------------------------------------------------------------------
# the posterior predictive check of the register linkage


def _linkage_world(n_months=6, n_draws=1, s=0.7, coverage=(0.55, 0.3), other=(0.2, 0.05, 0.1)):
    """Data holders and a posterior (``n_draws`` identical draws) for one surveyed and one unsurveyed section,
    one category, two in-country lists: what `replicate_linkage` reads."""
    lists = ["police_check", "overstay"]
    data = xr.Dataset(
        {"surveyed": ("section", [True, False])},
        coords={
            "section": ["omsk", "altai"],
            "month": np.arange(n_months),
            "category": ["c"],
            "in_country_list": lists,
            "link_pattern": ["none", "police_check", "overstay", "police_check+overstay"],
        },
    )
    post = xr.Dataset(
        {
            "register_coverage": (
                ("chain", "draw", "in_country_list", "category"),
                np.broadcast_to(np.array(coverage)[None, None, :, None], (1, n_draws, 2, 1)),
            ),
            "other_sightings": (
                ("chain", "draw", "link_set", "category"),
                np.broadcast_to(np.array(other)[None, None, :, None], (1, n_draws, 3, 1)),
            ),
        }
    )
    s_cells = np.full((n_draws, 2, n_months, 1), s)
    return data, post, s_cells


def _simulate_linkage(rng, n, s, coverage, other, after_background=1.0):
    """The linkage's generative story, journey by journey: got through with s, each list records that
    crossing with π_l, the person's other crossings seen on exactly the lists S number Poisson(μ_S) (ρ μ_S
    after the journey, ρ = ``after_background``); counts by pattern (index Σ 2^l) after the journey and before
    it (other crossings only)."""
    through = rng.random(n) < s
    out = []
    for window_through, factor in ((through, after_background), (np.zeros(n, bool), 1.0)):
        seen = (window_through[:, None] & (rng.random((n, 2)) < coverage)).astype(int)
        counts = rng.poisson(factor * np.asarray(other), (n, 3))
        seen[:, 0] |= (counts[:, 0] + counts[:, 2]) > 0
        seen[:, 1] |= (counts[:, 1] + counts[:, 2]) > 0
        out.append(np.bincount(seen[:, 0] + 2 * seen[:, 1], minlength=4))
    return np.stack(out)  # (window, pattern)


def _with_counts(data, counts_by_month):
    """``counts_by_month``: (window, month, pattern) of the surveyed section; the unsurveyed one has none."""
    shape = (2, data.sizes["month"], 1, 4)
    after = np.zeros(shape, int)
    before = np.zeros(shape, int)
    after[0, :, 0] = counts_by_month[0]
    before[0, :, 0] = counts_by_month[1]
    dims = ("section", "month", "category", "link_pattern")
    return data.assign(linked_journeys=(dims, after), before_journeys=(dims, before))


def test_the_linkage_replicates_follow_the_generative_story():
    from estim.families.border.generated import replicate_linkage

    s, coverage, other = 0.7, np.array([0.55, 0.3]), np.array([0.2, 0.05, 0.1])
    data, post, s_cells = _linkage_world(n_months=4, n_draws=4000, s=s)
    rng = np.random.default_rng(3)
    per_month = np.stack(
        [_simulate_linkage(rng, 500, s, coverage, other) for _ in range(4)], axis=1
    )
    data = _with_counts(data, per_month)
    rep = replicate_linkage(data, post, np.arange(4000), s_cells, np.random.default_rng(4))
    assert rep["linkage"].dims == ("sample", "window", "surveyed_section", "link_pattern")
    assert list(rep["surveyed_section"].values) == ["omsk"]
    # the replicates' mean share per pattern, against 200,000 journeys simulated directly
    direct = _simulate_linkage(np.random.default_rng(5), 200_000, s, coverage, other) / 200_000
    mean = rep["linkage"].mean("sample").values[:, 0] / 2000
    np.testing.assert_allclose(mean, direct, atol=0.004)
    # each replicate keeps the observed number of linked journeys
    assert (rep["linkage"].sum("link_pattern").values == 2000).all()


def test_the_linkage_replicates_carry_the_after_windows_background_factor():
    from estim.families.border.generated import replicate_linkage

    s, coverage, other, rho = 0.7, np.array([0.55, 0.3]), np.array([0.2, 0.05, 0.1]), 2.5
    data, post, s_cells = _linkage_world(n_months=1, n_draws=4000, s=s)
    post["after_background"] = (("chain", "draw"), np.full((1, 4000), rho))
    data = _with_counts(data, np.ones((2, 1, 4), int) * 500)
    rep = replicate_linkage(data, post, np.arange(4000), s_cells, np.random.default_rng(4))
    direct = _simulate_linkage(np.random.default_rng(5), 200_000, s, coverage, other, rho) / 200_000
    np.testing.assert_allclose(
        rep["linkage"].mean("sample").values[:, 0] / 2000, direct, atol=0.004
    )
    # and the factor shows: after the journey, "none" is rarer than with ρ = 1
    plain = _simulate_linkage(np.random.default_rng(5), 200_000, s, coverage, other) / 200_000
    assert direct[0, 0] < plain[0, 0] - 0.05 and abs(direct[1, 0] - plain[1, 0]) < 0.005


def test_the_linkage_check_is_calibrated_where_the_model_is_right_and_fails_where_s_is_wrong():
    from estim.families.border.generated import replicate_linkage

    coverage, other = np.array([0.55, 0.3]), np.array([0.2, 0.05, 0.1])
    rng = np.random.default_rng(7)

    def p_value(true_s, fitted_s):
        data, post, s_cells = _linkage_world(n_months=3, n_draws=300, s=fitted_s)
        counts = np.stack(
            [_simulate_linkage(rng, 300, true_s, coverage, other) for _ in range(3)], axis=1
        )
        rep = replicate_linkage(_with_counts(data, counts), post, np.arange(300), s_cells, rng)
        return float((rep["linkage_chi2_replicated"] >= rep["linkage_chi2_observed"]).mean())

    right = np.array([p_value(0.7, 0.7) for _ in range(200)])
    # under the data's own parameters the p-value is uniform: about 5 % of them below 0.05
    assert 0.01 <= (right < 0.05).mean() <= 0.10
    assert 0.4 <= np.median(right) <= 0.6
    # s = 0.7 fitted to journeys that all got through (r = 1): 900 linked journeys are enough to see it
    wrong = np.array([p_value(1.0, 0.7) for _ in range(20)])
    assert (wrong < 0.01).all()


def test_a_fit_with_linkage_saves_and_checks_it(model, data):
    from estim.families.border.report import predictive_check

    post = _fake_posterior(model, draws=8)
    groups = after_sampling(data, post, np.random.default_rng(0))
    pp, obs = groups["posterior_predictive"], groups["observed_data"]
    assert pp["linkage"].dims == ("chain", "draw", "window", "surveyed_section", "link_pattern")
    assert obs["linkage"].shape == pp["linkage"].shape[2:]
    s = data["surveyed"].values
    assert int(obs["linkage"].sel(window="after").sum()) == int(data["linked_journeys"][s].sum())
    tree = xr.DataTree.from_dict({k: v for k, v in groups.items()})
    check = predictive_check(tree)
    assert "linkage" in check["verdicts"]
    assert 0.0 <= check["coverage"]["linkage"]["p_value"] <= 1.0
    # the test of the repeat counts made before sampling, as `estim.run.fit` records it, is among the verdicts
    import json

    from estim.families.border import BORDER

    assert "repeat_dispersion" not in check["verdicts"]
    tree.attrs["precheck_json"] = json.dumps(BORDER.precheck(data))
    verdict = predictive_check(tree)["verdicts"]["repeat_dispersion"]
    assert verdict["passed"] and verdict["text"].startswith("ok: repeat apprehensions")


def _report_tables() -> dict:
    """The fewest tables `format_border` prints: no section, no year; the retry summary is the test's."""
    whole = {"apprehensions_per_year": 10.0, "median": 20.0, "lower": 15.0, "upper": 30.0}
    return {
        "interval": {"prob": 0.9},
        "years": [2006, 2017],
        "sections": [],
        "whole_border": whole,
        "whole_border_by_year": [],
    }


def test_the_report_says_one_register_cannot_identify_r():
    from estim.families.border.report import format_border

    one_list = {"source": "one_list", "median": 0.9, "lower": 0.6, "upper": 1.0}
    text = format_border({**_report_tables(), "retry": one_list})
    assert "ONE in-country register" in text and "PRIOR" in text
    assert "learnt from" not in text


def test_the_report_warns_when_r_rests_on_1():
    from estim.families.border.report import format_border

    tables = _report_tables()
    at_one = {"source": "linkage", "median": 1.0, "lower": 1.0, "upper": 1.0}
    assert "r rests on 1" in format_border({**tables, "retry": at_one})
    below = {**at_one, "lower": 0.97}
    assert "r rests on 1" not in format_border({**tables, "retry": below})
