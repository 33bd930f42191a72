"""The diagnostics gate on hand-built fits whose diagnostics are known."""

from __future__ import annotations

import numpy as np
import xarray as xr

from estim.run.diagnostics import GateThresholds, GateVerdict, check, verdict_from_attrs


def _tree(posterior: dict, diverging=None, energy=None, chains=4, draws=1000) -> xr.DataTree:
    rng = np.random.default_rng(0)
    post = xr.Dataset({k: (("chain", "draw"), v) for k, v in posterior.items()})
    if diverging is None:
        diverging = np.zeros((chains, draws), dtype=bool)
    if energy is None:
        energy = rng.normal(size=(chains, draws))  # independent energies: E-BFMI ≈ 2
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), diverging), "energy": (("chain", "draw"), energy)}
    )
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def _iid(rng, chains=4, draws=1000):
    return rng.normal(size=(chains, draws))


def test_independent_draws_pass():
    rng = np.random.default_rng(1)
    verdict = check(_tree({"a": _iid(rng), "b": _iid(rng)}))
    assert verdict.passed, verdict.describe()
    assert [c.name for c in verdict.checks] == [
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "divergences",
        "e_bfmi",
    ]


def test_chains_that_disagree_fail_r_hat():
    rng = np.random.default_rng(2)
    stuck = _iid(rng) + np.array([0.0, 0.0, 0.0, 3.0])[:, None]  # one chain elsewhere: R-hat ≈ 1.5
    verdict = check(_tree({"a": _iid(rng), "mu": stuck}))
    assert not verdict.passed
    assert "r_hat" in verdict.failed
    r_hat = next(c for c in verdict.checks if c.name == "r_hat")
    assert r_hat.value > 1.3 and r_hat.worst == "mu"
    assert "r_hat = " in verdict.describe() and "needs ≤ 1.01" in verdict.describe()


def test_autocorrelated_draws_fail_ess():
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=(4, 1000)), axis=1) * 0.01 + rng.normal(size=(4, 1))
    verdict = check(_tree({"a": walk}))
    assert {"ess_bulk", "ess_tail"} <= set(verdict.failed)


def test_one_divergence_fails():
    rng = np.random.default_rng(4)
    div = np.zeros((4, 1000), dtype=bool)
    div[2, 17] = True
    verdict = check(_tree({"a": _iid(rng)}, diverging=div))
    assert verdict.failed == ("divergences",)


def test_low_e_bfmi_fails_and_names_the_chain():
    rng = np.random.default_rng(5)
    energy = rng.normal(size=(4, 1000))
    energy[1] = np.cumsum(rng.normal(size=1000)) * 0.1  # slowly wandering energy: E-BFMI ≪ 0.3
    verdict = check(_tree({"a": _iid(rng)}, energy=energy))
    assert verdict.failed == ("e_bfmi",)
    assert next(c for c in verdict.checks if c.name == "e_bfmi").worst == "chain 1"


def test_a_fit_without_sample_stats_is_not_a_result():
    rng = np.random.default_rng(6)
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": (("chain", "draw"), _iid(rng))})})
    verdict = check(tree)
    assert set(verdict.failed) == {"divergences", "e_bfmi"}


def test_thresholds_are_the_stated_ones():
    t = GateThresholds()
    assert (t.r_hat, t.ess_bulk, t.ess_tail, t.divergences, t.e_bfmi) == (1.01, 400, 400, 0, 0.3)


def test_verdict_round_trips_through_attributes():
    rng = np.random.default_rng(7)
    verdict = check(_tree({"a": _iid(rng, 1, 20)}, chains=1, draws=20))
    attrs = {"gate_passed": str(verdict.passed).lower(), "gate_checks": verdict.to_json()}
    back = verdict_from_attrs(attrs)
    assert isinstance(back, GateVerdict)
    assert back.passed is False and back.failed == verdict.failed
    np.testing.assert_equal([c.value for c in back.checks], [c.value for c in verdict.checks])


def test_a_constant_is_skipped_without_a_warning():
    """A quantity fixed by the spec (r = 1, say) has no R-hat: the gate reads the others' and warns of nothing
    (it printed "invalid value encountered in scalar divide" to users)."""
    import warnings

    rng = np.random.default_rng(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = check(_tree({"a": _iid(rng), "retry_probability": np.ones((4, 1000))}))
    assert verdict.passed, verdict.describe()
    r_hat = next(c for c in verdict.checks if c.name == "r_hat")
    assert r_hat.worst == "a" and np.isfinite(r_hat.value)
