"""Averaging the border fit with Espenshade's repeated trials (r = 1): the Savage–Dickey Bayes factor against
its closed form, and the averaged posterior's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border import build_border
from estim.families.border.repeated_trials import (
    SLAB_DENSITY,
    SOURCE,
    bayes_factor,
    boundary_density,
    check_prior,
    posterior_probability,
    repeated_trials_draws,
    summary,
    with_repeated_trials,
)
from estim.priors import Prior


@pytest.mark.parametrize("rate", [3.0, 30.0, 120.0, 400.0])
def test_the_density_at_the_boundary_is_recovered_from_draws(rate):
    h = np.random.default_rng(1).exponential(1 / rate, 400_000)
    # F(w)/w alone would be biased by the density's slope
    assert boundary_density(h) == pytest.approx(rate, rel=0.03)


@pytest.mark.parametrize("exposure", [0.0, 10.0, 40.0])
def test_the_bayes_factor_of_repeated_trials_equals_its_closed_form(exposure):
    """Prior r ~ U(0, 1), i.e. h = −log r ~ Exp(1); a likelihood exp(−c h) (c: the exposure to giving up,
    none seen). Then p(data | r = 1) = 1, p(data | slab) = ∫ e^{−h} e^{−ch} dh = 1/(1 + c): B = 1 + c, and the
    slab's posterior of h is Exp(1 + c), whose draws the estimator reads."""
    h = np.random.default_rng(2).exponential(1 / (1 + exposure), 400_000)
    b = bayes_factor(np.exp(-h), slab_density=1.0)
    assert b == pytest.approx(1 + exposure, rel=0.03)
    # with prior probability ½ on r = 1: P(r = 1 | data) = B/(B + 1)
    assert posterior_probability(b, 0.5) == pytest.approx(b / (b + 1))
    assert posterior_probability(b, 0.0) == 0.0
    # r far from 1: no draw near it, no evidence for repeated trials
    assert bayes_factor(np.full(1000, 0.6), 1.0) == 0.0


def _posterior(rng, retry):
    chains, draws = retry.shape
    return xr.Dataset(
        {
            "retry_probability": (("chain", "draw"), retry),
            "hazard_mean": (("chain", "draw"), rng.normal(size=retry.shape)),
            "season": (("chain", "draw", "harmonic"), rng.normal(size=(chains, draws, 3))),
            SLAB_DENSITY: (("chain", "draw"), np.ones(retry.shape)),
            "fixed": ("harmonic", np.arange(3.0)),
        },
        coords={"chain": range(chains), "draw": range(draws), "harmonic": ["a", "b", "c"]},
    )


def test_the_averaged_posterior_replaces_draws_by_draws_given_r_equal_one():
    rng = np.random.default_rng(3)
    h = rng.exponential(1 / 20.0, (2, 4000))  # B = 20 in the closed form above
    post = _posterior(rng, np.exp(-h))
    source, b, prob = repeated_trials_draws(post, 0.5, np.random.default_rng(4))
    assert b == pytest.approx(20, rel=0.1) and prob == pytest.approx(b / (b + 1))
    chosen = source.values >= 0
    assert chosen.mean() == pytest.approx(prob, abs=0.02)
    flat_h = h.reshape(-1)
    assert (
        flat_h[source.values[chosen]].max() <= 0.02
    )  # stand-ins come from the draws nearest r = 1
    averaged = with_repeated_trials(post.assign({SOURCE: source}))
    assert SOURCE not in averaged
    assert (averaged["retry_probability"].values[chosen] == 1.0).all()
    np.testing.assert_array_equal(
        averaged["retry_probability"].values[~chosen], post["retry_probability"].values[~chosen]
    )
    # every per-draw variable comes from the same stand-in draw
    flat_mean = post["hazard_mean"].values.reshape(-1)
    np.testing.assert_array_equal(
        averaged["hazard_mean"].values[chosen], flat_mean[source.values[chosen]]
    )
    flat_season = post["season"].values.reshape(-1, 3)
    np.testing.assert_array_equal(
        averaged["season"].values[chosen], flat_season[source.values[chosen]]
    )
    np.testing.assert_array_equal(averaged["fixed"].values, post["fixed"].values)
    assert with_repeated_trials(averaged) is averaged  # nothing left to average
    assert with_repeated_trials(post) is post
    recorded = summary(post.assign({SOURCE: source}))
    assert recorded is not None and recorded["posterior_probability"] == pytest.approx(prob)
    assert summary(post) is None


def test_data_far_from_repeated_trials_leave_the_fit_as_it_is():
    rng = np.random.default_rng(5)
    post = _posterior(rng, rng.uniform(0.55, 0.65, (2, 1000)))
    source, b, prob = repeated_trials_draws(post, 0.5, rng)
    assert b == 0.0 and prob == 0.0 and (source.values == -1).all()


def test_the_prior_probability_of_repeated_trials_is_checked(data):
    for bad in (1.0, -0.1, "half", True):
        with pytest.raises(EstimInputError, match="repeated_trials_prior"):
            check_prior(bad)
    # a slab whose density at r = 1 is 0 cannot be averaged with r = 1 (the Bayes factor is undefined)
    beta = {"retry_probability": Prior("Beta", alpha=45.0, beta=5.0)}
    with pytest.raises(EstimInputError, match="repeated_trials_prior = 0"):
        build_border(data, beta)
    assert "retry_probability" in {
        v.name for v in build_border(data, beta, repeated_trials_prior=0.0).free_RVs
    }


def test_a_posterior_away_from_r_equal_one_gives_repeated_trials_no_weight():
    """r's posterior around 0.8 with a tail towards 1 that stops short of 0.98 (as data made with r = 0.8
    give): no draw near r = 1, so nothing is extrapolated to it."""
    rng = np.random.default_rng(6)
    retry = np.clip(rng.normal(0.8, 0.05, 4000), 0.01, 0.975)
    assert bayes_factor(retry, 1.0) == 0.0


def test_a_few_stray_draws_near_one_are_not_extrapolated_to_a_large_density():
    """Three draws of 2,000 just below r = 1 (a posterior's thin tail): the density at h = 0 is their mean
    density over the window, not a slope fitted to three points."""
    retry = np.concatenate([np.full(1997, 0.8), np.exp(-np.array([0.001, 0.002, 0.004]))])
    assert bayes_factor(retry, 1.0) == pytest.approx(3 / 2000 / 0.02)


RIDGE = ("category_level", "bypass_eta0", "hazard_mean", "hazard_section", "register_coverage")


@pytest.mark.parametrize("centred", [True, False])
def test_a_stand_in_is_moved_along_the_ridge_to_the_models_own_values_at_r_equal_one(data, centred):
    """Reference: the model's own deterministics at the same r-relative coordinates with r = 1 (the retry
    root at 0). A slab draw at r ≈ 0.95 standing in for r = 1 must take exactly those levels, not keep the
    ones its r put on the ridge (which biased the unobserved crossings low)."""
    model = build_border(data, centered_hazard=centred)
    # every free variable on its natural scale and every deterministic, as the posterior stores them
    stored = {v.name for v in (*model.free_RVs, *model.deterministics)}
    outputs = [v for v in model.unobserved_value_vars if v.name in stored]
    names = [v.name for v in outputs]
    values = model.compile_fn(outputs, inputs=model.value_vars, point_fn=False)
    rng = np.random.default_rng(11)
    point = {k: v + rng.normal(0, 0.1, np.shape(v)) for k, v in model.initial_point().items()}
    point["give_up_hazard_root"] = np.array([0.3, 0.1])  # h = 0.05: r = 0.951
    at_r = dict(zip(names, values(**point), strict=True))
    point["give_up_hazard_root"] = np.zeros(2)
    at_one = dict(zip(names, values(**point), strict=True))
    assert at_r["retry_probability"] == pytest.approx(np.exp(-0.05))
    dims = model.named_vars_to_dims
    post = xr.Dataset(
        {
            n: (("chain", "draw", *dims.get(n, ())), np.asarray(v)[None, None])
            for n, v in at_r.items()
        },
        coords={"chain": [0], "draw": [0], **{k: list(v) for k, v in model.coords.items()}},
    )
    averaged = with_repeated_trials(post.assign({SOURCE: (("chain", "draw"), [[0]])}))
    assert averaged["retry_probability"].item() == 1.0
    for name in RIDGE:
        moved = averaged[name].values[0, 0]
        assert not np.allclose(at_r[name], at_one[name]), name  # the ridge does move it
        np.testing.assert_allclose(moved, at_one[name], rtol=1e-9, atol=1e-12, err_msg=name)
    for name in ("section_effect", "hazard_category", "overdispersion", "trend"):
        np.testing.assert_array_equal(averaged[name].values[0, 0], at_r[name])
    # a draw that is kept (source −1) keeps its own r and levels
    kept = with_repeated_trials(post.assign({SOURCE: (("chain", "draw"), [[-1]])}))
    for name in RIDGE:
        np.testing.assert_array_equal(kept[name].values[0, 0], at_r[name])
