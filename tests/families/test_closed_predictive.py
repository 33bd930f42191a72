"""The closed families' predictive draws are the fitted model's own (`estim.families.closed.model`).

The likelihood is conditional on being seen, over the histories the data hold; the replicate must spread each
stratum's n people over *every* observable history with its P(h | seen). The old replicate renormalised over
the observed histories only: nobody fell on an unseen history, the observed ones were inflated, and the hares'
Mt posterior check of history counts read Freeman–Tukey p 1.000 ("the data vary less than the model
predicts"), an artefact. References here are brute force: P(h) by enumerating every history.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr
from sampling import quick_nuts

from estim.benchmarks import load_benchmark
from estim.families.closed import build_closed, history_data
from estim.families.closed.model import COMPLETE_OCCASIONS, complete_histories
from estim.families.kernels import history_cell_logp, replicate_counts
from estim.report.checks import predictive_summary
from estim.report.compare import individual_log_likelihood
from estim.run.compact import host_mode

CHAINS, DRAWS = 2, 1000


@pytest.fixture(scope="module")
def hare() -> xr.Dataset:
    return history_data(load_benchmark("hare"))


def _posterior(
    values: dict[str, np.ndarray], dims: dict[str, tuple[str, ...]], coords
) -> xr.Dataset:
    return xr.Dataset(
        {k: (("chain", "draw", *dims[k]), v) for k, v in values.items()},
        coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), **coords},
    )


def _replicate(model: pm.Model, posterior: xr.Dataset, seed: int) -> xr.DataArray:
    tree = xr.DataTree.from_dict({"posterior": posterior})
    with model:
        out = pm.sample_posterior_predictive(
            tree, random_seed=seed, progressbar=False, compile_kwargs=host_mode()
        )
    return out["posterior_predictive"]["history_count"].isel(stratum=0)


def _p_given_seen(logits: np.ndarray, t: int) -> tuple[list[str], np.ndarray]:
    """Every history of t occasions but 0…0, and P(h | seen) per draw (draws, histories), by enumeration:
    P(h) = Π_j p_j^h_j (1 − p_j)^(1 − h_j), p_j = logit⁻¹(logits[..., j])."""
    p = 1.0 / (1.0 + np.exp(-logits))  # (draws, t)
    histories = [h for h in itertools.product((0, 1), repeat=t) if any(h)]
    x = np.array(histories, dtype=float)  # (H, t)
    ph = np.prod(np.where(x[None] == 1, p[:, None, :], 1.0 - p[:, None, :]), axis=-1)
    p0 = np.prod(1.0 - p, axis=-1)
    return ["".join(map(str, h)) for h in histories], ph / (1.0 - p0)[:, None]


@pytest.mark.parametrize("name", ["M0", "Mt"])
def test_replicated_history_counts_have_the_models_means_unseen_histories_included(hare, name):
    # "posterior" draws of p spread around the hares' estimates (p ≈ 0.3 per occasion)
    rng = np.random.default_rng(3)
    t, n = hare.sizes["occasion"], int(hare["history_count"].sum())
    shape = (CHAINS, DRAWS, 1) if name == "M0" else (CHAINS, DRAWS, 1, t)
    logit_p = rng.normal(-0.8, 0.15, shape)
    dims = {"logit_p": ("stratum",) if name == "M0" else ("stratum", "occasion")}
    coords = {"stratum": ["all"], "occasion": [str(o) for o in hare["occasion"].values]}
    rep = _replicate(build_closed(name, hare), _posterior({"logit_p": logit_p}, dims, coords), 9)

    assert rep.sizes["history"] == 2**t - 1  # every history a cell, the 30 nobody showed too
    draws = logit_p.reshape(CHAINS * DRAWS, -1)
    labels, p_seen = _p_given_seen(np.broadcast_to(draws, (CHAINS * DRAWS, t)), t)
    expected = pd.Series(n * p_seen.mean(axis=0), index=labels)
    got = rep.stack(s=("chain", "draw")).to_pandas().T  # (draws, history)
    got = got[labels]
    # the Monte Carlo error of a mean over the draws (each a multinomial at its own p)
    se = got.std(axis=0).to_numpy() / np.sqrt(CHAINS * DRAWS)
    np.testing.assert_array_less(
        np.abs(got.mean(axis=0).to_numpy() - expected.to_numpy()), 4.5 * se + 1e-3
    )
    assert (got.sum(axis=1) == n).all()
    unseen = [h for h in labels if h not in {str(v) for v in hare["history"].values}]
    assert len(unseen) == 30 and got[unseen].to_numpy().sum() > 0


def test_hare_mt_check_over_all_histories_is_no_longer_an_artefact(hare):
    """The hares under Mt, fitted: the posterior check of history counts is over all 63 histories, and its
    Freeman–Tukey p is no longer 1.000 (the old replicate's artefact). Measured with `estim fit` on
    models/hare_Mt.toml (4 × 1,000 draws): chi-square 0.127 → 0.135, Freeman–Tukey 1.000 → 0.804; here,
    2 × 500 draws, see the assertions. LOO still counts the 68 hares, not the 63 cells."""
    model = build_closed("Mt", hare)
    idata = quick_nuts(model, 21)
    with model:
        pm.compute_log_likelihood(idata)
        pp = pm.sample_posterior_predictive(
            idata, random_seed=4, progressbar=False, compile_kwargs=host_mode()
        )
    tree = xr.DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "observed_data": idata["observed_data"].to_dataset(),
            "log_likelihood": idata["log_likelihood"].to_dataset(),
            "posterior_predictive": pp["posterior_predictive"].to_dataset(),
        }
    )
    tree.attrs = {"observed_name": "history_count", "data_kind": "histories", "family": "Mt"}
    result = predictive_summary(tree, where="hare_Mt")
    assert len(result["tables"]["history_count"]) == 63
    assert "over all 63 histories of 6 occasions" in result["notes"]["history_count"]
    p = result["p_values"]["history_count"]
    assert 0.3 < p["freeman_tukey"] < 0.95, p
    # f_k from all the histories, k = 1…6
    assert list(result["tables"]["f_k"].index) == ["1", "2", "3", "4", "5", "6"]
    loo, used = individual_log_likelihood(tree, "history_count", "hare_Mt")
    assert loo["log_likelihood"].sizes["individual"] == 68 and used.sum() == 33
    assert np.isfinite(loo["log_likelihood"]["per_individual"].values).all()


def _wide(t: int) -> xr.Dataset:
    """Eleven occasions (beyond the cap): a few histories, 40 people."""
    rows = {"1" * t: 3, "1" + "0" * (t - 1): 20, "0" * (t - 1) + "1": 12, "11" + "0" * (t - 2): 5}
    table = pd.DataFrame(
        [[int(c) for c in h] for h, k in rows.items() for _ in range(k)],
        columns=[f"o{j}" for j in range(t)],
    )
    return history_data(table)


def test_beyond_the_cap_each_observed_cell_keeps_its_law_and_f_k_is_not_derived():
    t = COMPLETE_OCCASIONS + 1
    data = _wide(t)
    assert complete_histories(data) is data  # 2,047 histories: not made cells
    n = int(data["history_count"].sum())
    logit_p = np.full((CHAINS, DRAWS, 1), -1.0)
    model = build_closed("M0", data)
    rep = _replicate(
        model, _posterior({"logit_p": logit_p}, {"logit_p": ("stratum",)}, {"stratum": ["all"]}), 5
    )
    assert rep.sizes["history"] == 4
    p = 1.0 / (1.0 + np.exp(1.0))
    for h in rep["history"].values:
        k = str(h).count("1")
        ph = p**k * (1 - p) ** (t - k) / (1 - (1 - p) ** t)
        got = rep.sel(history=h).values.ravel()
        se = np.sqrt(n * ph * (1 - ph) / got.size)
        assert abs(got.mean() - n * ph) < 4.5 * se + 1e-9, (h, got.mean(), n * ph)
    # the people who fell on the 2,043 histories nobody showed are in no cell
    assert float(rep.sum("history").mean()) < 0.5 * n
    tree = xr.DataTree.from_dict(
        {
            "observed_data": data[["history_count"]],
            "posterior_predictive": rep.expand_dims(stratum=["all"], axis=2).to_dataset(),
        }
    )
    tree.attrs = {"observed_name": "history_count", "data_kind": "histories"}
    result = predictive_summary(tree, where="wide")
    assert set(result["tables"]) == {"history_count"}  # f_k would miss the people outside the cells
    assert "in no cell, so f_k is not derived" in result["notes"]["history_count"]


def test_a_cell_nobody_showed_adds_zero_even_where_its_probability_underflows():
    value = np.array([[3.0, 0.0, 0.0]])
    log_cond = pt.as_tensor(np.array([[-1.0, -np.inf, -2.0]]))
    np.testing.assert_array_equal(history_cell_logp(value, log_cond).eval(), [[-3.0, 0.0, 0.0]])


def test_replicate_with_remainder_drops_the_mass_outside_the_cells():
    rng = np.random.default_rng(1)
    log_prob = np.log(np.array([[0.2, 0.3]]))  # half the mass elsewhere
    draws = replicate_counts(
        np.broadcast_to(log_prob, (20000, 2)), np.full((20000, 1), 50), rng, remainder=True
    )
    np.testing.assert_allclose(draws.mean(axis=0), [10.0, 15.0], atol=0.15)
    # cells that exhaust the outcomes: everyone is replicated
    full = replicate_counts(np.log(np.array([[0.4, 0.6]])), np.array([[50]]), rng, remainder=True)
    assert full.sum() == 50
