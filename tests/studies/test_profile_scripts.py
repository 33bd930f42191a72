"""The speed scripts of issue 18 (scripts/border_profile.py, scripts/border_saddlepoint_bias.py) on tiny inputs:
their measuring functions run and measure what they say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
