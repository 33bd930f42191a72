"""The speed scripts of issue 18 (scripts/border_profile.py, scripts/border_saddlepoint_bias.py,
scripts/border_start_trials.py) on tiny inputs:
their measuring functions run and measure what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from tests.studies.script_loader import load_script

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name):
    return load_script(name)


def test_gradient_costs_time_every_term_and_the_whole():
    profile = _script("border_profile")
    with pm.Model() as model:
        rate = pm.HalfNormal("rate", 5.0)
        pm.Poisson("counts", rate, observed=np.array([3, 4, 5]))
        pm.Normal("heights", rate, 1.0, observed=np.array([1.0, 2.0]))
    costs = profile.gradient_costs(model, repeats=5)
    assert set(costs) == {"whole", "counts", "heights", "priors"}
    for cost in costs.values():
        assert cost["calls"] == 5 and cost["wall_ms"] > 0 and cost["compile_s"] > 0
    only = profile.gradient_costs(model, repeats=3, terms=("counts",))
    assert set(only) == {"counts"}


def test_threshold_costs_build_the_model_at_each_threshold_in_interleaved_rounds(monkeypatch):
    profile = _script("border_profile")
    import estim.run.data as run_data

    built = []

    class Family:
        def build(self, data, priors, **options):
            built.append(options["saddlepoint_above"])
            with pm.Model() as model:
                rate = pm.HalfNormal("rate", 5.0)
                pm.Poisson("apprehensions", rate, observed=np.array([3, 4, 5]))
            return model

    class Spec:
        options = {"saddlepoint_above": 256, "other": 1}
        priors: dict = {}

    monkeypatch.setattr(run_data, "load_data", lambda spec: None)
    monkeypatch.setattr(run_data, "family_of", lambda spec: Family())
    rows = profile.threshold_costs(Spec(), [256, 16], rounds=2, repeats=3)
    assert built == [256, 16, 256, 16]
    assert [(r["threshold"], r["round"]) for r in rows] == [(256, 0), (16, 0), (256, 1), (16, 1)]
    assert all(set(r) == {"threshold", "round", "whole", "apprehensions"} for r in rows)


def test_lifting_the_plausible_bound_is_undone():
    profile = _script("border_profile")
    from estim.records.schemas import SCHEMAS

    before = SCHEMAS["apprehension_totals"]
    with profile._plausible_totals(float("inf")):
        column = next(
            c for c in SCHEMAS["apprehension_totals"].columns if c.name == "apprehensions"
        )
        assert column.plausible == (0, float("inf"))
    assert SCHEMAS["apprehension_totals"] is before


def test_weighted_quantiles_are_the_quantiles_under_flat_weights_and_follow_the_weights():
    bias = _script("border_saddlepoint_bias")
    values = np.random.default_rng(0).normal(size=20_000)
    flat = np.full(values.size, 1.0 / values.size)
    got = bias.weighted_quantiles(values, flat, [0.05, 0.5, 0.95])
    np.testing.assert_allclose(got, np.quantile(values, [0.05, 0.5, 0.95]), atol=0.01)
    # weights ∝ exp(x) turn N(0, 1) into N(1, 1): the median moves to 1
    tilted = np.exp(values) / np.exp(values).sum()
    assert bias.weighted_quantiles(values, tilted, [0.5])[0] == pytest.approx(1.0, abs=0.05)


def _gaussian(dim: int = 10, seed: int = 3):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.05, 2.0, dim)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = (q * scales) @ (q * scales).T  # correlated, scales 40 times apart
    mean = rng.normal(0.0, 2.0, dim)
    precision = np.linalg.inv(cov)
    log_norm = -0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]

    def logp_and_grad(x):
        d = x - mean
        return log_norm - 0.5 * d @ precision @ d, -precision @ d

    return mean, cov, logp_and_grad


def test_pathfinder_finds_a_gaussian_and_bounds_its_evidence():
    trials = _script("border_start_trials")
    mean, cov, logp_and_grad = _gaussian()
    result = trials.pathfinder(logp_and_grad, np.zeros(mean.size), seed=1)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(result.mean - mean) < 0.1 * sd)
    # the density is normalised: the ELBO is a lower bound of log 1 = 0 (up to its Monte Carlo error), and
    # the chosen approximation is better than the first one scored
    assert result.elbo[0] < result.elbo[result.chosen] < 0.1
    again = trials.pathfinder(logp_and_grad, np.zeros(mean.size), seed=1)
    assert again.mean.tobytes() == result.mean.tobytes()


def test_pathfinder_refuses_a_density_finite_nowhere():
    trials = _script("border_start_trials")
    with pytest.raises(RuntimeError, match="no finite ELBO"):
        trials.pathfinder(lambda x: (-np.inf, np.zeros_like(x)), np.zeros(3), seed=1)
