"""The Stan race's model (benchmarks/stan/border.stan) is estim's border model: on the shipped spec and data,
its log density with the Jacobians (PyStan's ``log_prob(adjust_transform=True)``) equals PyMC's
``model.compile_logp(jacobian=True)`` up to one constant at random points of the unconstrained space, and
its gradient equals PyMC's ``compile_dlogp(jacobian=True)``: the same parameters, priors and likelihood.

Needs the Stan venv (.venv-stan, benchmarks/stan/README.md); skipped without it. Slow: the first run compiles
the Stan program (a few minutes; httpstan caches it in .venv-stan/httpstan-cache)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
STAN_PYTHON = ROOT / ".venv-stan" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not STAN_PYTHON.exists(), reason="no Stan venv (.venv-stan)"),
]


def _race():
    spec = importlib.util.spec_from_file_location("stan_race", ROOT / "scripts" / "stan_race.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["stan_race"] = module
    spec.loader.exec_module(module)
    return module


def _split(model, flat):
    """PyMC's flat gradient (value variables in order, each C-ordered) as a point."""
    point, i = {}, 0
    for v in model.value_vars:
        shape = model.initial_point()[v.name].shape
        n = int(np.prod(shape))
        point[v.name] = np.asarray(flat[i : i + n]).reshape(shape)
        i += n
    return point


def test_stan_log_density_and_gradient_match_pymc():
    race = _race()
    spec, family, data = race.load()
    race.check_spec(spec)
    model = family.build(data, dict(spec.priors), **spec.options)
    logp = model.compile_logp(jacobian=True)
    dlogp = model.compile_dlogp(jacobian=True)
    start = model.initial_point()  # the priors' locations (bypass_eta0 at −8, …)
    rng = np.random.default_rng(18)
    points = [
        {k: v + rng.normal(0.0, scale, np.shape(v)) for k, v in start.items()}
        for scale in (0.1, 0.3, 0.3, 0.6, 1.0, 1.0)
    ]
    stan = race.stan_logp(race.stan_data(data), [race.unconstrained(model, p) for p in points])

    # the same parameters in the same order: Stan's unconstrained vector is PyMC's value variables
    names = [race.stan_name(v.name) for v in model.value_vars]
    assert stan["param_names"][: len(names)] == names
    sizes = [int(np.prod(d)) for d in stan["dims"][: len(names)]]
    assert sizes == [start[v.name].size for v in model.value_vars]

    pymc = np.array([logp(p) for p in points])
    offset = np.array(stan["log_prob"]) - pymc
    assert np.all(np.isfinite(pymc))
    # one constant (the normalising constants Stan's `~` drops and PyMC keeps), to rounding
    assert np.ptp(offset) < 1e-11 * np.abs(pymc).max(), (offset, pymc)
    for p, grad in zip(points, stan["grad"], strict=True):
        expected = race.unconstrained(model, _split(model, dlogp(p)))
        np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
