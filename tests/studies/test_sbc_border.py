"""Simulation-based calibration of the border model (estim/studies/sbc_border.py): the reduced design, the truth
drawn from the spike-and-slab prior, the journey-level generator against the moments of the model's law and
against the model's own rates, the ranked quantities' labels, the map from natural parameters to the model's
free variables; and (slow) two replicates end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.families.border.data import CATEGORIES, DETECTORS
from estim.families.border.revision import MODEL_REVISION
from estim.studies import sbc_border as B


@pytest.fixture(scope="module")
def covariates() -> xr.Dataset:
    return B.reduced_covariates()


@pytest.fixture(scope="module")
def fixed_truth(covariates) -> dict[str, np.ndarray]:
    """A truth with a retry probability inside (0, 1), moderate volumes and every list's coverage apart."""
    truth = B.draw_truth(covariates, np.random.default_rng(3))
    truth.update(
        retry_probability=np.asarray(0.7),
        category_level=np.array([2.5, 2.0, 1.5, 1.0]),
        overdispersion=np.array([0.3, 0.5, 0.2, 0.6, 0.4]),
        hazard_section=np.array([-1.2, -1.0, -0.6, -1.5]),
        hazard_category=np.array([0.3, -0.2, 0.1, -0.4, 0.2]),
        hazard_detector=np.array([-0.8, -1.3]),
        technical_trend=np.asarray(0.1),
        bypass_eta0=np.asarray(-7.0),
        bypass_eta1=np.asarray(0.8),
        register_coverage=np.array([[0.6, 0.5, 0.4, 0.3, 0.7], [0.2, 0.3, 0.5, 0.6, 0.1]]),
        other_sightings=np.full((3, 5), 0.1) * np.array([[1.0], [0.5], [0.2]]),
    )
    return truth


# --------------------------------------------------------------------------------------------------------------
# the design


def test_the_reduced_design_has_the_sections_months_and_event_it_claims(covariates):
    assert covariates["section"].values.tolist() == list(B.SECTIONS)
    assert covariates.sizes["month"] == B.MONTHS == 24
    assert str(covariates["month"].values[0])[:7] == B.FIRST_MONTH
    assert covariates["years"].values[0] == 0.0 and covariates["years"].values[12] == 1.0
    assert covariates["surveyed"].values.tolist() == [True, False, False, False]
    assert len(set(covariates["terrain"].values.tolist())) == 2
    # the one event that starts within the months (2009-04-27) is kept, the later ones dropped
    assert covariates["event"].values.tolist() == ["border_residents_agreement"]
    in_force = covariates["policy_in_force"].values[0]
    assert in_force[0] == 0.0 and in_force[-1] == 1.0 and 0.0 < in_force[9] < 1.0
    assert covariates["in_country_list"].values.tolist() == ["police_check", "overstay"]
    assert (covariates["land_foreign_crossings"].values > 0).all()


def test_a_simulated_dataset_has_the_models_layout_and_adds_up(covariates, fixed_truth):
    data, totals = B.simulate_border(covariates, fixed_truth, np.random.default_rng(5))
    assert dict(data["apprehensions"].sizes) == {"section": 4, "month": 24, "category": 5}
    assert data["category"].values.tolist() == list(CATEGORIES)
    assert data["detector"].values.tolist() == list(DETECTORS)
    assert data["k"].values[0] == 1 and np.all(np.diff(data["k"].values) == 1)
    assert data["link_pattern"].values.tolist()[0] == "none"
    surveyed = data["surveyed"].values
    freq = data["frequency"].values
    k = data["k"].values
    # as border_data checks: the repeat counts add up to the totals, and to the apprehended journeys
    np.testing.assert_array_equal(
        (freq * k).sum(-1)[surveyed], data["apprehensions"].values[surveyed]
    )
    np.testing.assert_array_equal(
        freq.sum(-1)[surveyed], data["apprehended_journeys"].values[surveyed]
    )
    assert (data["apprehended_journeys"].values[~surveyed] == -1).all()
    assert freq[~surveyed].sum() == 0 and data["linked_journeys"].values[~surveyed].sum() == 0
    np.testing.assert_array_equal(
        data["apprehensions_by_detector"].sum("detector").values, data["apprehensions"].values
    )
    linked = data["linked_journeys"].values.sum(-1)
    np.testing.assert_array_equal(linked, data["before_journeys"].values.sum(-1))
    assert (linked[surveyed] <= data["apprehended_journeys"].values[surveyed]).all()
    assert totals["apprehensions"] == int(data["apprehensions"].sum())
    assert 0 < totals["unobserved"] <= totals["journeys"]


def test_the_same_seed_gives_the_same_dataset_bytes(covariates):
    one = B.simulate_replicate(np.random.default_rng(11), covariates)
    two = B.simulate_replicate(np.random.default_rng(11), covariates)
    assert one[1].identical(two[1]) and one[2] == two[2]
    other = B.simulate_replicate(np.random.default_rng(12), covariates)
    assert not one[1].identical(other[1])


def test_absurd_datasets_are_redrawn_on_the_data_alone(covariates, monkeypatch):
    """With the limits lowered so that the first draw breaks them, the dataset returned is a later draw that
    keeps them (the limits read the observed repeat counts and totals, nothing else). The seed's first draw
    has a journey caught 19 times: most draws keep a limit of 18 (a limit no draw can keep would loop)."""
    first = B.simulate_replicate(np.random.default_rng(12), covariates)
    assert first[3] == 1
    freq = first[1]["frequency"].values
    k_seen = int(first[1]["k"].values[freq.sum(axis=(0, 1, 2)) > 0].max())
    assert k_seen > 1
    monkeypatch.setattr(B, "MAX_REPEATS", k_seen - 1)
    truth, data, _, attempts = B.simulate_replicate(np.random.default_rng(12), covariates)
    assert attempts > 1
    assert data["k"].values[data["frequency"].values.sum(axis=(0, 1, 2)) > 0].max() < k_seen
    assert not data.identical(first[1])
    cell = int(first[1]["apprehensions"].max())
    monkeypatch.setattr(B, "MAX_REPEATS", 100)
    monkeypatch.setattr(B, "MAX_CELL_APPREHENSIONS", cell - 1)
    _, data, _, attempts = B.simulate_replicate(np.random.default_rng(12), covariates)
    assert attempts > 1 and int(data["apprehensions"].max()) < cell


def test_the_truth_of_r_is_the_spike_and_slab_prior(covariates):
    rng = np.random.default_rng(7)
    r = np.array([float(B.draw_truth(covariates, rng)["retry_probability"]) for _ in range(2000)])
    spike = r == 1.0
    # r = 1 with probability ½ (sd of the share 0.011), the slab Beta(1, 1): mean ½, sd 0.29
    assert abs(spike.mean() - 0.5) < 0.045
    assert abs(r[~spike].mean() - 0.5) < 0.04
    assert abs(r[~spike].std() - np.sqrt(1 / 12)) < 0.03


def test_the_truth_shifts_the_journey_levels_by_terrain_as_the_model_does(covariates):
    """With ``terrain_journeys``, α_s = u_terrain(s) + α'_s, u and α' each summing to zero, u drawn at the
    prior's scale; without it no terrain shift is drawn. The design has two terrains."""
    _, terrain_of = np.unique(covariates["terrain"].values.astype(str), return_inverse=True)
    assert len(set(terrain_of)) == 2
    sigma = B.sbc_priors()["journey_terrain"].parameters["sigma"]
    shifts = []
    for seed in range(400):
        t = B.draw_truth(covariates, np.random.default_rng(seed), terrain_journeys=True)
        np.testing.assert_allclose(
            t["section_effect"], t["section_deviation"] + t["journey_terrain"][terrain_of]
        )
        assert abs(t["journey_terrain"].sum()) < 1e-12 and abs(t["section_deviation"].sum()) < 1e-12
        shifts.append(t["journey_terrain"][0])
    # ZeroSumNormal(σ) over 2 levels: each level has sd σ √(1/2); 400 draws put the sample sd within ~10 %
    assert np.std(shifts) == pytest.approx(sigma * np.sqrt(0.5), rel=0.15)
    plain = B.draw_truth(covariates, np.random.default_rng(0), terrain_journeys=False)
    assert "journey_terrain" not in plain and "section_deviation" not in plain


def test_the_generators_rates_are_the_models_rates(covariates, fixed_truth):
    """μ and p of the generator (written from the docstring) against the likelihood's own `rates`."""
    from estim.families.border.rates import rates

    data, _ = B.simulate_border(covariates, fixed_truth, np.random.default_rng(5))
    parameters = {k: np.asarray(v)[None] for k, v in fixed_truth.items()}
    log_mu, log_p, _, _ = rates(data, parameters)
    mu = B.journey_means(covariates, fixed_truth)
    p = 1.0 - np.exp(-B.detector_hazards(covariates, fixed_truth).sum(-1))
    np.testing.assert_allclose(np.exp(log_mu[0]), mu, rtol=1e-10)
    np.testing.assert_allclose(np.exp(log_p[0]), p, rtol=1e-10)


# --------------------------------------------------------------------------------------------------------------
# the generator's counts against the moments of the model's law at a fixed θ


def _patterns(coverage: np.ndarray, other: np.ndarray, through: bool) -> np.ndarray:
    """P(after pattern b) by enumeration: this crossing seen on each list with π_l if it got through, each
    set S of the other crossings' lists seen at least once with 1 − exp(−μ_S), independently."""
    n_lists = coverage.size
    out = np.zeros(2**n_lists)
    for own in itertools.product([0, 1], repeat=n_lists):
        p_own = np.prod([c if o else 1 - c for c, o in zip(coverage, own, strict=True)])
        if not through:
            p_own = float(not any(own))
        for sets in itertools.product([0, 1], repeat=2**n_lists - 1):
            q = np.exp(-other)
            p_sets = np.prod([1 - qi if s else qi for qi, s in zip(q, sets, strict=True)])
            b = sum(o << i for i, o in enumerate(own))
            for j, s in enumerate(sets):
                b |= (j + 1) if s else 0
            out[b] += p_own * p_sets
    return out


def test_the_generators_counts_have_the_moments_of_the_models_law(covariates, fixed_truth):
    truth = fixed_truth
    replicates = 150
    rng = np.random.default_rng(9)
    sims = [B.simulate_border(covariates, truth, rng) for _ in range(replicates)]
    mu = B.journey_means(covariates, truth)
    hazards = B.detector_hazards(covariates, truth)
    h = hazards.sum(-1)
    p = 1.0 - np.exp(-h)
    r = float(truth["retry_probability"])
    pr = p * r
    s = r * (1 - p) / (1 - pr)  # an apprehended journey gets through in the end
    surveyed = covariates["surveyed"].values

    def check(stat, expected):
        x = np.array([stat(d, t) for d, t in sims], float)
        z = (x.mean() - expected) / (x.std(ddof=1) / np.sqrt(replicates))
        assert abs(z) < 4, (x.mean(), expected, z)

    a = mu * p  # E A: the NegBin(μ, φ) journeys thinned by p
    check(lambda d, t: d["apprehended_journeys"].values[surveyed].sum(), a[surveyed].sum())
    for k in (1, 2, 3):  # E f_k = E A · (pr)^{k−1}(1 − pr)
        f_k = (a * pr ** (k - 1) * (1 - pr))[surveyed].sum()
        check(lambda d, t, k=k: d["frequency"].values[surveyed][..., k - 1].sum(), f_k)
    # unsurveyed totals: E K = μ p/(1 − pr); the detector split ∝ H_d
    check(lambda d, t: d["apprehensions"].values[~surveyed].sum(), (a / (1 - pr))[~surveyed].sum())
    technical = (a / (1 - pr) * hazards[..., 1] / h).sum()
    check(lambda d, t: d["apprehensions_by_detector"].values[..., 1].sum(), technical)
    # unobserved = never apprehended + apprehended and through
    check(lambda d, t: t["unobserved"], (mu * (1 - p) + a * s).sum())
    # linkage: a share of the apprehended journeys, by after and before pattern, per category
    for c in (1, 4):
        cov, other = truth["register_coverage"][:, c], truth["other_sightings"][:, c]
        got, not_got = _patterns(cov, other, True), _patterns(cov, other, False)
        linked = B.LINK_SHARE * a[surveyed][..., c]
        s_c = s[surveyed][..., c]
        for b in range(4):
            after = (linked * (s_c * got[b] + (1 - s_c) * not_got[b])).sum()
            check(
                lambda d, t, b=b, c=c: d["linked_journeys"].values[surveyed][:, :, c, b].sum(),
                after,
            )
            before = (linked * not_got[b]).sum()
            check(
                lambda d, t, b=b, c=c: d["before_journeys"].values[surveyed][:, :, c, b].sum(),
                before,
            )


# --------------------------------------------------------------------------------------------------------------
# the ranked quantities


def test_the_ranked_quantities_carry_the_right_labels():
    truth = {name: np.asarray(float(i)) for i, name in enumerate(B.NATURAL)}
    truth["overdispersion"] = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    values = B.truth_quantities(truth, {"unobserved": 1234}, -56.0)
    assert list(values) == list(B.RANKED)
    assert values["unobserved"] == 1234.0 and values["loglik"] == -56.0
    assert values["overdispersion[border_resident]"] == 0.1
    assert values["overdispersion[bypasser]"] == 0.5
    assert values["retry_probability"] == truth["retry_probability"]
    # posterior draws: (chain, draw) per quantity, the category picked by its label
    od = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    post = xr.Dataset(
        {
            "overdispersion": (("chain", "draw", "category"), od),
            **{
                n: (("chain", "draw"), np.full((2, 3), i, float))
                for i, n in enumerate(
                    ("retry_probability", "hazard_mean", "hazard_section_sd", "section_sd")
                )
            },
        },
        coords={"category": list(CATEGORIES)},
    )
    draws = B.parameter_draws(post)
    assert set(draws) == set(B.RANKED) - {"unobserved", "loglik"}
    np.testing.assert_array_equal(draws["overdispersion[bypasser]"], od[..., 4])
    np.testing.assert_array_equal(draws["overdispersion[border_resident]"], od[..., 0])
    np.testing.assert_array_equal(draws["section_sd"], np.full((2, 3), 3.0))
    assert len(B.RANKED) <= 8


@pytest.mark.parametrize("terrain_journeys", [False, True], ids=["one_level", "terrain_journeys"])
def test_natural_parameters_map_back_to_the_models_free_variables(covariates, terrain_journeys):
    """At a random point of the model's free variables, its natural parameters (the model's deterministics)
    mapped back by `free_values` give the same free variables (r's point of the plane up to its angle), also
    with the journey levels shifted by terrain (their deviations the free variables)."""
    import pytensor
    from pytensor.graph.replace import graph_replace

    from estim.families.border.model import build_border

    _, data, _, _ = B.simulate_replicate(np.random.default_rng(21), covariates)
    model = build_border(
        data,
        B.SBC_PRIORS,
        centered_hazard=B.DESIGN.centered_hazard,
        centered_section_effect=B.DESIGN.centered_section_effect,
        terrain_journeys=terrain_journeys,
    )
    assert ("journey_terrain" in model.named_vars) == terrain_journeys
    rng = np.random.default_rng(4)
    inputs = [rv.type() for rv in model.free_RVs]
    natural = [n for n in B.NATURAL if n in model.named_vars]
    outputs = graph_replace(
        [model[n] for n in natural], dict(zip(model.free_RVs, inputs, strict=True))
    )
    fn = pytensor.function(inputs, outputs, mode="FAST_COMPILE", on_unused_input="ignore")
    point = {
        rv.name: rng.normal(0.0, 0.3, tuple(rv.shape.eval())) + (0.5 if "sd" in rv.name else 0.0)
        for rv in model.free_RVs
    }
    zero_sum = (
        "section_effect",
        "section_effect_z",
        "section_deviation_z",
        "journey_terrain",
        "hazard_terrain",
        "hazard_category",
    )
    for name in (n for n in zero_sum if n in point):
        point[name] = point[name] - point[name].mean()  # zero-sum effects
    point["register_coverage_z"] = rng.normal(0.0, 1.0, point["register_coverage_z"].shape)
    values = fn(*(point[rv.name] for rv in model.free_RVs))
    back = B.free_values(
        list(point), dict(zip(natural, values, strict=True)), data["terrain"].values
    )
    for value, name in zip(back, point, strict=True):
        if name == "give_up_hazard_root":
            assert np.sum(value**2) == pytest.approx(np.sum(point[name] ** 2), rel=1e-10)
        else:
            np.testing.assert_allclose(value, point[name], rtol=1e-9, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------------------------------
# slow: the likelihood's score at the truth has mean zero under the generator


@pytest.mark.slow
def test_the_likelihoods_score_at_the_truth_has_mean_zero_under_the_generator(
    covariates, fixed_truth
):
    """If the journey-level generator draws from the law the likelihood states, the score (the derivative of
    log p(data | θ) at the true θ) has expectation zero, term by term. This checks the whole law, not only
    its means, in the directions the sections' estimates hang on: r (at a low r, 0.3, where the sampler and
    the ridge are furthest from repeated trials), every section hazard together, the journeys' levels and the
    registers' coverage. 60 datasets (~5 CPU-minutes); measured at r = 0.3 (60 and 40 datasets, two seeds)
    and 0.7 (60): |z| ≤ 3.3 in every direction and term."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    from estim.families.border.model import build_border

    truth = {**fixed_truth, "retry_probability": np.asarray(0.3)}
    step = 1e-3

    def moved(name, change):
        return {**truth, name: change(np.asarray(truth[name], dtype=float))}

    def logit_shift(pi, h):
        return 1.0 / (1.0 + np.exp(-(np.log(pi / (1.0 - pi)) + h)))

    directions = {
        "log r": lambda h: moved("retry_probability", lambda x: x * np.exp(h)),
        "section hazards": lambda h: moved("hazard_section", lambda x: x + h),
        "journey levels": lambda h: moved("category_level", lambda x: x + h),
        "logit coverage": lambda h: moved("register_coverage", lambda x: logit_shift(x, h)),
    }
    rng = np.random.default_rng(12)
    scores: dict[tuple[str, str], list[float]] = {}
    for _ in range(60):
        data, _ = B.simulate_border(covariates, truth, rng)
        model = build_border(
            data,
            B.SBC_PRIORS,
            centered_hazard=B.DESIGN.centered_hazard,
            centered_section_effect=B.DESIGN.centered_section_effect,
        )
        terms = pt.stack([pm.logp(rv, model.rvs_to_values[rv]).sum() for rv in model.observed_RVs])
        inputs = [rv.type() for rv in model.free_RVs]
        replaced = graph_replace(terms, dict(zip(model.free_RVs, inputs, strict=True)))
        fn = pytensor.function(inputs, replaced, mode="JAX", on_unused_input="ignore")
        free = [rv.name for rv in model.free_RVs]

        def loglik(natural, fn=fn, free=free, data=data):
            return np.asarray(fn(*B.free_values(free, natural, data["terrain"].values)))

        for direction, at in directions.items():
            score = (loglik(at(step)) - loglik(at(-step))) / (2 * step)
            for rv, value in zip(model.observed_RVs, score, strict=True):
                scores.setdefault((direction, rv.name), []).append(float(value))
            scores.setdefault((direction, "all"), []).append(float(score.sum()))
    for key, values in scores.items():
        x = np.asarray(values)
        if np.all(np.abs(x) < 1e-6):  # a term that does not depend on this direction
            continue
        z = x.mean() / (x.std(ddof=1) / np.sqrt(len(x)))
        assert abs(z) < 4.0, (key, x.mean(), z)


# --------------------------------------------------------------------------------------------------------------
# slow: two replicates end to end


def test_a_replicate_that_fails_keeps_its_error_and_the_model_revision(monkeypatch):
    """The paper's provenance check reads ``model_revision`` on every row; a failed simulation's row too."""

    def fails(rng):
        raise ValueError("no border today")

    monkeypatch.setattr(B, "simulate_replicate", fails)
    df = B.replicate_rows(("border", 3, 8))
    assert len(df) == 1 and "no border today" in df["error"].iloc[0]
    assert df["model_revision"].tolist() == [MODEL_REVISION]
    assert list(df.columns[-len(B.EXTRA_COLUMNS) :]) == list(B.EXTRA_COLUMNS)


@pytest.mark.slow
def test_two_replicates_of_the_border_run_end_to_end_and_resume(tmp_path):
    from estim.studies import sbc

    out = tmp_path / "sbc_border.csv"
    seed = 8  # two small borders (2,422 and 4,217 apprehensions; r = 0.51 and r = 1): minutes, not an hour
    df = sbc.sbc_study(["border"], replicates=2, seed=seed, out=str(out))
    assert (df["error"].fillna("") == "").all(), df["error"].tolist()
    assert df.groupby("replicate")["quantity"].apply(list).tolist() == [list(B.RANKED)] * 2
    assert df["rank"].between(0, 99).all() and df["pit"].between(0, 1).all()
    assert (df["n_true"] > 0).all() and (df["compile_seconds"] > 0).all()
    assert df["p_repeated_trials"].between(0, 1).all()
    assert (df["model_revision"] == MODEL_REVISION).all()
    report = sbc.study_report(df)["families"]["border"]
    assert report["replicates"] == 2 and set(report["quantities"]) == set(B.RANKED)
    again = sbc.sbc_study(["border"], replicates=2, seed=seed, out=str(out), resume=True)
    pd.testing.assert_frame_equal(
        again[["replicate", "quantity", "rank"]], df[["replicate", "quantity", "rank"]]
    )
