"""The border fits' pointwise log-likelihood of the repeat counts, against the model's own term."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.families.border import build_border
from estim.families.border.frequency_loo import frequency_log_likelihood


def _one_draw(model, seed):
    """A point near the initial point: the model's log-density there and its parameters as a 1-draw posterior."""
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.1, np.shape(v)) for k, v in model.initial_point().items()}
    fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars)
    names = [v.name for v in model.unobserved_value_vars]
    dims = model.named_vars_to_dims
    values = dict(zip(names, fn(point), strict=True))
    post = xr.Dataset(
        {
            n: (("chain", "draw", *dims.get(n, ())), np.asarray(values[n])[None, None])
            for n in names
            if not n.endswith("__")
        },
        coords={k: list(v) for k, v in model.coords.items()},
    )
    term = model.compile_fn(
        model.logp(vars=[model["repeat_apprehensions"]], sum=True),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )(point)
    return post, float(term)


@pytest.mark.parametrize("frailty_sd", [None, "estimated"])
def test_the_frequency_log_likelihood_sums_to_the_models_repeat_term(data, frailty_sd):
    model = build_border(data, frailty_sd=frailty_sd)
    post, term = _one_draw(model, seed=3)
    ll = frequency_log_likelihood(data, post)
    assert ll.dims == ("chain", "draw", "section", "month")
    assert set(ll["section"].values) == {"omsk", "orenburg"}
    # the model's term leaves out log C(…)-free constants: none for f_k log P(k | k ≥ 1)
    assert float(ll.sum()) == pytest.approx(term, rel=1e-9)
