"""Generated quantities of the border model (estim/families/border/generated.py): the conditional draws of
unobserved crossings, the predictive law of the counts, and the outputs a fit saves."""

from __future__ import annotations

import numpy as np
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
    """At fixed parameters, the mean of the drawn journeys in a surveyed cell equals the exact posterior mean
    E[J | A] by enumeration."""
    post = _fake_posterior(model, draws=1)
    post = post.isel(draw=[0] * 400)
    post = post.assign_coords(draw=np.arange(400))
    cr = crossings(data, post, np.random.default_rng(5))
    parameters, shape = posterior_parameters(post.isel(draw=[0]))
    assert shape == (1, 1)
    log_mu, log_p, _, phi = rates(data, parameters)
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


def test_simulated_counts_have_the_model_moments():
    # one cell, two categories, 200,000 draws at fixed rates
    n = 200_000
    mu, p, phi = np.array([4.0, 30.0]), np.array([0.3, 0.6]), np.array([2.0, 8.0])
    cells = lambda x: np.broadcast_to(x, (n, 1, 1, 2))  # noqa: E731
    counts = simulate_counts(
        Rates(
            cells(np.log(mu)), cells(np.log(p)), cells(np.log1p(-p)), np.broadcast_to(phi, (n, 2))
        ),
        np.random.default_rng(7),
    )
    j, a, k = (x.reshape(n, 2) for x in counts)
    q = p / (1 - p)
    np.testing.assert_allclose(j.mean(0), mu, rtol=0.01)
    np.testing.assert_allclose(j.var(0), mu + mu**2 / phi, rtol=0.03)
    np.testing.assert_allclose(a.mean(0), mu * p, rtol=0.01)
    np.testing.assert_allclose(k.mean(0), mu * q, rtol=0.01)
    np.testing.assert_allclose(k.var(0), mu * q * (1 + 2 * q) + (mu * q) ** 2 / phi, rtol=0.03)
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
