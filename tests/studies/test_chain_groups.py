"""A fit whose chains run in groups (`estim.studies.chain_groups`): each group under a seed of its own, saved as
it finishes and reused; the combination concatenates the chains, draws the family's derived quantities again
from all of them, and is gated on all of them. The fake family's draws are iid normal, so their ESS is known:
150 draws a chain give ~300 in a group of two chains (below the gate's 400) and ~600 in four."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

import estim.studies.chain_groups as C
from estim.paths import REPO_ROOT
from estim.run import store
from estim.run.diagnostics import check as gate_check
from estim.run.fit import FitResult
from estim.run.spec import read_spec


@pytest.fixture(scope="module")
def spec():
    return read_spec(REPO_ROOT / "models" / "border.toml")


def _group_tree(seed: int, chains: int = 2, draws: int = 150) -> xr.DataTree:
    rng = np.random.default_rng(seed)
    dims = ("chain", "draw")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    mu = rng.normal(size=(chains, draws))
    stats = {
        "diverging": (dims, np.zeros((chains, draws), bool)),
        "energy": (dims, rng.normal(size=(chains, draws))),
    }
    return xr.DataTree.from_dict(
        {
            # "double" is a derived quantity: stale here (−1), it must be drawn again from the combination
            "posterior": xr.Dataset(
                {"mu": (dims, mu), "double": (dims, -np.ones_like(mu))}, coords=coords
            ),
            "sample_stats": xr.Dataset(stats, coords=coords),
            "warmup_posterior": xr.Dataset(
                {"mu": (dims, mu[:, :10])}, coords={"chain": coords["chain"], "draw": np.arange(10)}
            ),
            "checks": xr.Dataset({"stale": ("x", [1.0])}),
        },
        name=None,
    )


def _after_sampling(data, posterior, rng, **_):
    """The fake family's derived quantities: twice mu, and a check drawn with the rng it is given."""
    return {
        "posterior": xr.Dataset({"double": 2 * posterior["mu"]}),
        "checks": xr.Dataset({"draw_of_rng": ("x", rng.normal(size=3))}),
    }


@dataclasses.dataclass
class _Family:
    name: str = "fake"
    after_sampling: object = _after_sampling
    gate_variables: object = None
    gate_skip: tuple = ()


FAKE = _Family()


def test_groups_have_seeds_of_their_own_and_the_combination_all_their_chains(spec):
    groups = [C.group_spec(spec, g, 3) for g in range(3)]
    assert len({g.seed for g in groups}) == 3 and spec.seed not in {g.seed for g in groups}
    assert [g.seed for g in groups] == [
        C.group_spec(spec, g, 3).seed for g in range(3)
    ]  # reproducible
    assert [g.name for g in groups] == [f"border__chains{g}of3" for g in (1, 2, 3)]
    assert all(g.sampler.retries == 0 and g.sampler.chains == spec.sampler.chains for g in groups)
    whole = C.combined_spec(spec, 3)
    assert whole.sampler.chains == 3 * spec.sampler.chains and whole.seed == spec.seed
    assert whole.spec_hash != spec.spec_hash  # a grouped fit is never a cached fit of fewer chains


def test_combine_concatenates_the_chains_and_redraws_the_derived_quantities(spec, monkeypatch):
    monkeypatch.setattr(C, "family_of", lambda spec: FAKE)
    trees = [_group_tree(1), _group_tree(2)]
    trees[0].attrs.update({"gate_passed": "false", "version_estim": "x", "data_source": "shipped"})
    tree = C.combine(trees, spec, xr.Dataset())
    post = tree["posterior"].to_dataset()
    assert post["chain"].values.tolist() == [0, 1, 2, 3]
    expected = np.concatenate([t["posterior"]["mu"].values for t in trees])
    np.testing.assert_array_equal(post["mu"].values, expected)
    np.testing.assert_array_equal(post["double"].values, 2 * expected)  # not the groups' stale −1
    assert tree["warmup_posterior"].sizes["chain"] == 4 and tree["sample_stats"].sizes["chain"] == 4
    assert "stale" not in tree["checks"] and "draw_of_rng" in tree["checks"]
    # the derived draws use the seed a single fit of the spec uses for them
    rng = np.random.default_rng(C.seeds(spec.seed, 4)[3])
    np.testing.assert_array_equal(tree["checks"]["draw_of_rng"].values, rng.normal(size=3))
    assert tree.attrs == {
        "data_source": "shipped"
    }  # a group's verdict and versions are not the whole's


def test_a_family_without_after_sampling_is_refused(spec, monkeypatch):
    monkeypatch.setattr(C, "family_of", lambda spec: dataclasses.replace(FAKE, after_sampling=None))
    with pytest.raises(C.EstimInputError, match="not fitted in groups"):
        C.combine([_group_tree(1), _group_tree(2)], spec, xr.Dataset())


def test_grouped_fit_gates_the_combination_saves_each_group_and_resumes(
    spec, monkeypatch, tmp_path
):
    """Each group alone fails the gate on bulk ESS (~300 < 400); their combination passes (~600). The groups
    are fitted under their own specs into their own files, the whole saved under the combined spec, and a
    second run reuses it without fitting anything."""
    monkeypatch.setattr(C, "family_of", lambda spec: FAKE)
    monkeypatch.setattr(C, "load_data", lambda spec: xr.Dataset({"y": ("i", [1, 2, 3])}))
    calls = []

    def fake_fit(gspec, *, out, force, progress, idle_priors):
        calls.append((gspec.name, gspec.seed, out.name, idle_priors))
        tree = _group_tree(gspec.seed % 1000)
        verdict = gate_check(tree, var_names=["mu"])
        tree.attrs.update({"fit_seconds": 100.0, "data_source": "shipped"})
        attempt = {"attempt": 1, "passed": verdict.passed, "failed": list(verdict.failed)}
        return FitResult(gspec, out, tree, verdict, False, 100.0, (attempt,))

    monkeypatch.setattr(C, "fit", fake_fit)
    out = tmp_path / "border__frailty.nc"
    result = C.grouped_fit(spec, 2, out=out, idle_priors="warn")
    assert [c[2] for c in calls] == ["border__chains1of2.nc", "border__chains2of2.nc"]
    assert {c[3] for c in calls} == {"warn"}
    # each group alone: too few draws (300: its ESS, bulk or tail, falls short of 400)
    assert all(
        not a["passed"] and set(a["failed"]) <= {"ess_bulk", "ess_tail"} for a in result.attempts
    )
    assert result.passed and not result.reused and result.spec.sampler.chains == 4
    saved = store.load(out)
    assert saved.attrs["spec_hash"] == C.combined_spec(spec, 2).spec_hash
    assert saved.attrs["gate_passed"] == "true" and saved["posterior"].sizes["chain"] == 4
    groups = json.loads(saved.attrs["chain_groups_json"])
    assert [g["seed"] for g in groups] == [c[1] for c in calls]
    assert result.seconds >= 200.0
    calls.clear()
    again = C.grouped_fit(spec, 2, out=out)
    assert again.reused and calls == [] and again.passed


@pytest.mark.slow
def test_the_border_model_in_two_groups_of_one_chain(spec, tmp_path):
    """End to end on the shipped data (30 warm-up + 30 draws a chain, ~80 s): the combination holds both
    groups' draws as saved in their files, the derived quantities drawn from all of them, and is reused."""
    small = dataclasses.replace(
        spec, sampler=dataclasses.replace(spec.sampler, draws=30, tune=30, chains=1)
    )
    out = tmp_path / "border__grouped.nc"
    result = C.grouped_fit(small, 2, out=out, idle_priors="warn")
    groups = [store.load(tmp_path / f"border__chains{g}of2.nc") for g in (1, 2)]
    post = result.idata["posterior"].to_dataset()
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30
    for name in groups[0]["warmup_posterior"].data_vars:
        expected = np.concatenate([g["posterior"][name].values for g in groups])
        np.testing.assert_array_equal(post[name].values, expected)
    assert "unobserved_border_year" in post and "crossings" in result.idata.children
    assert json.loads(result.idata.attrs["sampler_json"])["chains"] == 2
    assert C.grouped_fit(small, 2, out=out).reused
