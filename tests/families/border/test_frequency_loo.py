"""The border fits' pointwise log-likelihood of the repeat counts, against the model's own term."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.families.border import build_border
from estim.families.border.frequency_loo import frequency_log_likelihood, stacking_weights


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


# ----------------------------------------------------------------------------------------------------------------
# stacking weights (Yao et al. 2018) in log space


def test_stacking_finds_the_known_optimum_where_the_densities_underflow():
    # two points with predictive densities (2c, c) and (c, 3c): d/dw Σ log(...) = 1/(1+w) − 2/(3−2w) = 0 at
    # w = 1/4. With c = e^-1000 the densities are 0 in floating point; the optimum does not depend on c.
    c = -1000.0
    elpd = np.array([[c + np.log(2.0), c], [c, c + np.log(3.0)]])
    assert np.exp(elpd).max() == 0.0
    assert stacking_weights(elpd) == pytest.approx([0.25, 0.75], abs=1e-6)


def test_a_model_worse_at_every_point_gets_no_weight():
    rng = np.random.default_rng(5)
    good = rng.normal(-900.0, 5.0, size=48)
    elpd = np.column_stack([good, good - 100.0 / 48 + rng.normal(0, 0.1, 48)])
    w = stacking_weights(elpd)
    assert w[0] > 0.999 and w.sum() == pytest.approx(1.0)


def test_stacking_agrees_with_a_direct_optimiser_where_nothing_underflows():
    from scipy.optimize import minimize

    rng = np.random.default_rng(11)
    elpd = rng.normal(-1.0, 1.0, size=(60, 3))
    elpd[:, 2] -= 0.4

    def negative(z):
        w = np.exp(np.append(z, 0.0))
        w /= w.sum()
        return -np.log(np.exp(elpd) @ w).sum()

    z = minimize(
        negative, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
    ).x
    reference = np.exp(np.append(z, 0.0)) / np.exp(np.append(z, 0.0)).sum()
    assert stacking_weights(elpd) == pytest.approx(reference, abs=1e-4)


def test_the_stacked_estimate_leaves_out_a_rejected_fit(monkeypatch, data):
    import estim.families.border.frequency_loo as frequency_loo

    rng = np.random.default_rng(2)
    sections, months = ["omsk", "orenburg"], data["month"].values
    base = rng.normal(-900.0, 3.0, size=(len(sections), len(months)))

    def fake_fit(shift, level):
        draws = rng.normal(0.0, 0.05, size=(2, 200, len(sections), len(months)))
        ll = xr.DataArray(
            base + shift + draws,
            dims=("chain", "draw", "section", "month"),
            coords={"section": sections, "month": months},
            name="frequency",
        )
        years = xr.DataArray(
            rng.normal(level, 10.0, size=(2, 200, 3)), dims=("chain", "draw", "year")
        )
        return ll, xr.DataTree.from_dict(
            {"posterior": xr.Dataset({"unobserved_border_year": years})}
        )

    good_ll, good = fake_fit(0.0, 3000.0)
    bad_ll, bad = fake_fit(
        -4.0, 1000.0
    )  # ~ −100 elpd in all, as the wrong fixed frailty on the shipped data
    lls = iter([good_ll, bad_ll])
    monkeypatch.setattr(
        frequency_loo, "frequency_log_likelihood", lambda data, posterior: next(lls)
    )
    table, estimates = frequency_loo.compare_frequency_fits({"good": good, "bad": bad}, data)
    assert table.loc["bad", "weight"] < 1e-3
    assert table.loc["good", "weight"] > 0.999
    # per-year mean of 3 years of N(3000, 10): its median is ~9,000 / 3 = 3,000, nothing of the 1,000s
    assert estimates["stacked"]["lower"] > 2900
