"""`estim summary` and `estim compare` on small hand-made fits: what the summary counts as the model's
parameters, and a fit refused when compared with itself."""

from __future__ import annotations

import json
import shutil

import numpy as np
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.run import store
from estim.run.diagnostics import Check, GateVerdict

TERMS = ["region[b]", "region[c]", "x"]


def _fit(path, spec_hash="spec-a", data_hash="data-a", seed=1):
    """A passed ztpoisson fit with one categorical covariate of three levels and one continuous: three
    coefficients beside the intercept, four in all. Fits of other `seed`s have other draws."""
    rng = np.random.default_rng(seed)
    chains, draws = 2, 200
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "term"), rng.normal(0, 1, (chains, draws, len(TERMS)))),
            "beta_intercept": (("chain", "draw"), rng.normal(-1, 0.1, (chains, draws))),
            "N": (("chain", "draw"), rng.poisson(3000, (chains, draws))),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "term": TERMS},
    )
    posterior["unobserved"] = posterior["N"] - 1000
    # people seen once, twice, three times, and each cell's log-likelihood term (count × log P), for LOO
    seen = xr.Dataset({"f": ("k", np.array([800, 150, 50]))}, coords={"k": [1, 2, 3]})
    p = rng.dirichlet([80, 15, 5], (chains, draws))
    loglik = xr.Dataset(
        {"f": (("chain", "draw", "k"), seen["f"].values * np.log(p))},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], "k": [1, 2, 3]},
    )
    tree = xr.DataTree.from_dict(
        {"posterior": posterior, "observed_data": seen, "log_likelihood": loglik}
    )
    tree.attrs = {"model_name": path.stem, "family": "ztpoisson", "observed_name": "f"}
    provenance = {"spec_hash": spec_hash, "data_hash": data_hash, "seed": 1}
    verdict = GateVerdict(True, (Check("r_hat", 1.001, 1.01, True),))
    return store.save(tree, path, provenance, verdict)


def test_the_summary_counts_every_coefficient_not_every_named_array(tmp_path):
    # it said "(2 model parameters: …)" beside the four coefficients --parameters lists: it counted the
    # arrays beta and beta_intercept, not what is estimated
    path = _fit(tmp_path / "regression.nc")
    run = CliRunner().invoke(cli, ["summary", str(path)])
    assert run.exit_code == 0, run.output
    assert "(4 parameter values: beta (3), beta_intercept (1); add --parameters" in run.output
    assert "2 model parameters" not in run.output
    listed = CliRunner().invoke(cli, ["summary", str(path), "--parameters"])
    assert listed.exit_code == 0, listed.output
    assert sum(line.startswith("  beta") for line in listed.output.splitlines()) == 4


def test_compare_refuses_one_fit_given_twice(tmp_path, monkeypatch):
    # `estim compare X.nc X.nc` printed a comparison of a fit with itself, equally good, weight 0.5 each
    path = _fit(tmp_path / "a.nc")
    monkeypatch.chdir(tmp_path)
    for twice in (["a.nc", "a.nc"], ["a.nc", str(path)], ["a.nc", "../" + tmp_path.name + "/a.nc"]):
        run = CliRunner().invoke(cli, ["compare", *twice])
        assert run.exit_code == 2, run.output
        assert f"are the same file ({path.resolve()})" in run.output, run.output
    # a copy, or the same spec fitted to the same data again: equal spec and data hashes
    shutil.copy(path, tmp_path / "copy.nc")
    refit = _fit(tmp_path / "refit.nc")
    for other in ("copy.nc", "refit.nc"):
        run = CliRunner().invoke(cli, ["compare", "a.nc", other])
        assert run.exit_code == 2, run.output
        assert f"{other} and a.nc are fits of the same spec to the same data" in run.output
    assert refit.exists()
    # another spec of the same data is compared (its own draws: the same draws cannot be ranked)
    _fit(tmp_path / "other.nc", spec_hash="spec-b", seed=2)
    run = CliRunner().invoke(cli, ["compare", "a.nc", "other.nc", "--format", "json"])
    assert run.exit_code == 0, run.output
    assert set(json.loads(run.stdout)) == {"a", "other"}


def test_a_tiny_coefficient_is_listed_in_significant_figures(tmp_path):
    # a coefficient per rouble (2.1e-6) was listed as "0.0000 (90 % interval 0.0000 – 0.0000)"
    path = _fit(tmp_path / "tiny.nc")
    tree = store.load(path)
    posterior = tree["posterior"].to_dataset()
    posterior["beta"] = posterior["beta"] * 1e-6 + 2.1e-6
    tree["posterior"] = xr.DataTree(posterior)
    expected = np.quantile(posterior["beta"].sel(term="x").values, [0.5, 0.05, 0.95])
    provenance = {"spec_hash": "spec-a", "data_hash": "data-a", "seed": 1}
    verdict = GateVerdict(True, (Check("r_hat", 1.001, 1.01, True),))
    store.save(tree, tmp_path / "tiny2.nc", provenance, verdict)
    listed = CliRunner().invoke(cli, ["summary", str(tmp_path / "tiny2.nc"), "--parameters"])
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if x.startswith("  beta [term=x]"))
    assert "0.0000" not in line and f"{expected[0]:.3g}" in line, line


def _with_spec(path, **spec):
    """The fit at `path` with the parsed spec it says it is a fit of (`spec_json`)."""
    tree = store.load(path).load()
    data = {"file": "nl.csv", "layout": "frequencies", "times_seen": "k", "count": "f"}
    base = {"name": path.stem, "family": "ztpoisson", "seed": 1, "data": data}
    tree.attrs["spec_json"] = json.dumps({"priors": {}, "options": {}, **base, **spec})
    tree.to_netcdf(path.with_suffix(".tmp.nc"))
    path.with_suffix(".tmp.nc").replace(path)
    return path


def test_compare_refuses_one_model_fitted_under_two_seeds(tmp_path, monkeypatch):
    # the same ztpoisson spec under another name and seed: p_worse 0.992, Monte Carlo noise read as a ranking
    monkeypatch.chdir(tmp_path)
    _with_spec(_fit(tmp_path / "a.nc"), seed=1)
    _with_spec(_fit(tmp_path / "a2.nc", spec_hash="spec-a2", seed=7), seed=7)
    run = CliRunner().invoke(cli, ["compare", "a.nc", "a2.nc"])
    assert run.exit_code == 2, run.output
    assert "fits of the same model to the same data" in run.output
    # another prior is another model
    prior = {"beta_intercept": {"distribution": "Normal", "mu": 0.0, "sigma": 5.0}}
    _with_spec(_fit(tmp_path / "b.nc", spec_hash="spec-b", seed=3), seed=3, priors=prior)
    run = CliRunner().invoke(cli, ["compare", "a.nc", "b.nc", "--format", "json"])
    assert run.exit_code == 0, run.output
