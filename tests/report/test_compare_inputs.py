"""`estim compare` and `estim check` handed what a user plausibly hands them: fits of two periods whose
counts happen to coincide, two models with the same likelihood and draws (Zelterman and Chao), one fit,
a spec for a fit, fits edited or assembled from pieces, a fit whose posterior predictive draws are missing
or are not of its data. Hand-made fits of capture histories (no sampling): each test says what the old code
printed, and asserts what it got wrong.

The reference for an accepted comparison is importance-sampling LOO computed here by hand,
elpd_i = −log mean_s exp(−log p(y_i | θ_s)), which PSIS matches when the weights are tame (Pareto k̂ small).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.run import store
from estim.run.diagnostics import Check, GateVerdict

# two periods of a four-occasion study: other histories, the same counts in the same order (each period's
# histories sorted as estim sorts them), as in small studies where most histories are seen once or twice
PERIOD_2019 = {"1111": 3, "1100": 2, "1010": 2, "1000": 5, "0100": 4, "0010": 4, "0001": 3}
PERIOD_2020 = {"1110": 3, "1101": 2, "1011": 2, "1001": 5, "0110": 4, "0011": 4, "0001": 3}
CHAINS, DRAWS = 2, 200


def _fit(
    path,
    histories=PERIOD_2019,
    seed=1,
    spec_hash=None,
    data_hash="data-2019",
    groups=("posterior_predictive", "prior_predictive"),
    attrs=None,
):
    """A passed fit of capture histories, saved as `estim fit` saves one: per draw a P(h | seen) over the
    observed histories, the log-likelihood count × log P(h | seen), predictive draws multinomial."""
    rng = np.random.default_rng(seed)
    labels, counts = list(histories), np.array(list(histories.values()), dtype=float)
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)}
    cells = {"stratum": ["all"], "history": labels}
    p = rng.dirichlet(
        counts * 20, (CHAINS, DRAWS)
    )  # (chain, draw, history), near the observed shares
    n = int(counts.sum())
    tree = {
        "posterior": xr.Dataset(
            {"N": (("chain", "draw"), rng.poisson(n + 10, (CHAINS, DRAWS)))}, coords=coords
        ),
        "observed_data": xr.Dataset(
            {"history_count": (("stratum", "history"), counts[None, :])}, coords=cells
        ),
        "log_likelihood": xr.Dataset(
            {
                "history_count": (
                    ("chain", "draw", "stratum", "history"),
                    (counts * np.log(p))[:, :, None],
                )
            },
            coords={**coords, **cells},
        ),
    }
    draws = np.stack([[rng.multinomial(n, p[c, d]) for d in range(DRAWS)] for c in range(CHAINS)])
    for group in groups:
        tree[group] = xr.Dataset(
            {"history_count": (("chain", "draw", "stratum", "history"), draws[:, :, None, :])},
            coords={**coords, **cells},
        )
    fit = xr.DataTree.from_dict(tree)
    fit.attrs = {
        "model_name": path.stem,
        "family": "M0",
        "observed_name": "history_count",
        "data_kind": "histories",
        **(attrs or {}),
    }
    provenance = {
        "spec_hash": spec_hash or f"spec-{path.stem}",
        "data_hash": data_hash,
        "seed": seed,
    }
    return store.save(fit, path, provenance, GateVerdict(True, (Check("r_hat", 1.0, 1.01, True),)))


def _edit(path, edit):
    """The fit at `path` with `edit(tree)` applied, saved again (a file edited or assembled after the fit)."""
    tree = store.load(path)
    tree = edit(tree) or tree
    return store.save(tree, path, {}, store.verdict(tree))


def _without(tree, group):
    kept = {k: v for k, v in tree.to_dict().items() if k not in ("/", f"/{group}")}
    out = xr.DataTree.from_dict(kept)
    out.attrs = tree.attrs
    return out


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# --------------------------------------------------------------------------------------------------------------
# compare


def test_compare_refuses_two_periods_whose_counts_coincide(tmp_path):
    # a fit of 2019 and a fit of 2020 with the same counts in other histories were ranked (elpd_diff, weights,
    # exit 0) as fits of the same observations
    a = _fit(tmp_path / "M0_2019.nc")
    b = _fit(tmp_path / "Mt_2020.nc", PERIOD_2020, seed=2, data_hash="data-2020")
    run = _run("compare", a, b)
    assert run.exit_code == 2, run.output
    assert f"{b} and {a} are fits of different observations" in run.output
    assert "history '1110' vs '1111', cell 1 of 7" in run.output
    assert "elpd" not in run.output

    # another stratum label with the same counts: the same refusal
    def north(tree):
        for group in (
            "observed_data",
            "log_likelihood",
            "posterior_predictive",
            "prior_predictive",
        ):
            tree[group] = tree[group].to_dataset().assign_coords(stratum=["north"])

    c = _edit(_fit(tmp_path / "north.nc", seed=3, data_hash="data-north"), north)
    run = _run("compare", a, c)
    assert run.exit_code == 2 and "stratum 'north' vs 'all'" in run.output, run.output
    # the same people in the same histories, counted otherwise (the occasions in another order, say): not
    # the advice for covariate sets ("compare covariate sets by their ML log-likelihoods")
    counts = list(PERIOD_2019.values())
    shuffled = dict(zip(PERIOD_2019, counts[1:] + counts[:1], strict=True))
    d = _fit(tmp_path / "reordered.nc", shuffled, seed=4, data_hash="data-reordered")
    run = _run("compare", a, d)
    assert run.exit_code == 2, run.output
    assert "as many people, with other counts in their cells" in run.output
    assert "covariate" not in run.output


def test_compare_ranks_fits_of_the_same_observations_as_importance_sampling_loo(tmp_path):
    a = _fit(tmp_path / "a.nc")
    b = _fit(tmp_path / "b.nc", seed=2)
    run = _run("compare", a, b, "--format", "json")
    assert run.exit_code == 0, run.output
    table = json.loads(run.stdout)
    assert set(table) == {"a", "b"}
    for path in (a, b):
        tree = store.load(path)
        ll = tree["log_likelihood"]["history_count"].values.reshape(CHAINS * DRAWS, -1)
        n = tree["observed_data"]["history_count"].values.ravel().astype(int)
        per_person = np.repeat(ll / n, n, axis=1)  # (draws, individuals)
        ref = -np.log(np.mean(np.exp(-per_person), axis=0)).sum()
        assert table[path.stem]["elpd"] == pytest.approx(ref, abs=0.05)


def test_compare_of_fits_listing_unseen_histories_as_zeros_and_not(tmp_path):
    """The closed families' data list every history of ≤ 10 occasions, zeros included (for their predictive
    checks); the log-linear ones only those seen. They are fits of the same individuals: compared (it was
    refused, "33 vs 63"), each elpd the importance-sampling LOO over the people seen."""
    a = _fit(tmp_path / "loglinear.nc")
    unseen = [h for h in (format(i, "04b") for i in range(15, 0, -1)) if h not in PERIOD_2019]

    def complete(tree):
        for group in (
            "observed_data",
            "log_likelihood",
            "posterior_predictive",
            "prior_predictive",
        ):
            ds = tree[group].to_dataset()
            zeros = xr.zeros_like(ds.isel(history=[0] * len(unseen))).assign_coords(history=unseen)
            tree[group] = xr.concat([ds, zeros], "history")

    b = _edit(_fit(tmp_path / "otis.nc", seed=2), complete)
    assert store.load(b)["observed_data"].sizes["history"] == 15
    run = _run("compare", a, b, "--format", "json")
    assert run.exit_code == 0, run.output
    table = json.loads(run.stdout)
    tree = store.load(b)
    ll = tree["log_likelihood"]["history_count"].values.reshape(CHAINS * DRAWS, -1)[:, :7]
    n = np.array(list(PERIOD_2019.values()))
    ref = -np.log(np.mean(np.exp(-np.repeat(ll / n, n, axis=1)), axis=0)).sum()
    assert table["otis"]["elpd"] == pytest.approx(ref, abs=0.05)
    # other histories seen are still other observations
    c = _edit(_fit(tmp_path / "other.nc", PERIOD_2020, seed=3, data_hash="data-2020"), complete)
    assert _run("compare", b, c).exit_code == 2


def test_compare_refuses_fits_with_the_same_likelihood_at_every_draw(tmp_path):
    # Zelterman's and Chao's fits of the Dutch immigrants (same likelihood of f1, f2, same seed): "p_worse
    # 1.000" for an elpd_diff of −2e-6 with dse 1e-7, exit 0
    a = _fit(tmp_path / "zelterman.nc")
    b = _fit(tmp_path / "chao.nc")  # other spec hash, the same draws
    run = _run("compare", a, b)
    assert run.exit_code == 2, run.output
    assert f"{b} and {a} give every individual the same log-likelihood at every draw" in run.output
    assert "p_worse" not in run.output


@pytest.mark.parametrize(
    "edit, says",
    [
        (  # was "no pointwise log-likelihood of 'history_count'", not what the file holds
            lambda t: t.__setitem__(
                "log_likelihood", t["log_likelihood"].to_dataset().rename(history_count="other")
            ),
            "its log_likelihood group holds other, not the pointwise log-likelihood of its observed data "
            "'history_count'",
        ),
        (  # was "internal error: ValueError: conflicting sizes for dimension 'draw'", exit 1
            lambda t: t.__setitem__(
                "log_likelihood", t["log_likelihood"].to_dataset().isel(draw=slice(0, 50))
            ),
            "its pointwise log-likelihood has 2 chains × 50 draws, its posterior 2 × 200",
        ),
    ],
    ids=["variable renamed", "other draws"],
)
def test_compare_names_the_file_whose_log_likelihood_is_not_its_fits(tmp_path, edit, says):
    a = _fit(tmp_path / "a.nc")
    b = _edit(_fit(tmp_path / "b.nc", seed=2), edit)
    run = _run("compare", a, b)
    assert run.exit_code == 2, run.output
    assert f"{b}: {says}" in run.output
    assert "internal error" not in run.output


def test_compare_reads_a_fit_that_does_not_name_its_observed_data(tmp_path):
    # a fit without the observed_name attribute: "no observed data '' to compare on", exit 2
    a = _fit(tmp_path / "a.nc")
    b = _fit(tmp_path / "b.nc", seed=2)
    tree = store.load(b)
    del tree.attrs["observed_name"]
    store.save(tree, b, {}, store.verdict(tree))
    run = _run("compare", a, b, "--format", "json")
    assert run.exit_code == 0, run.output
    assert set(json.loads(run.stdout)) == {"a", "b"}


def test_compare_warns_when_the_same_counts_come_from_data_that_differ_elsewhere(tmp_path):
    a = _fit(tmp_path / "a.nc")
    b = _fit(tmp_path / "b.nc", seed=2, data_hash="data-renamed-occasions")
    run = _run("compare", a, b)
    assert run.exit_code == 0, run.output
    assert (
        "warning:" in run.stderr and "the data they were fitted to differ elsewhere" in run.stderr
    )
    same = _fit(tmp_path / "c.nc", seed=3)
    assert "warning" not in _run("compare", a, same).stderr


def test_compare_of_one_fit_or_of_a_spec_says_what_to_give(tmp_path):
    a = _fit(tmp_path / "a.nc")
    run = _run("compare", a)
    assert (
        run.exit_code == 2 and f"at least two fits of the same data (given only {a})" in run.output
    )
    spec = tmp_path / "a.toml"
    spec.write_text('family = "M0"\n')
    # each was "not a readable fit file ([Errno -51] NetCDF: Unknown file format …)"
    for args in (
        ["compare", a, spec],
        ["check", spec],
        ["summary", spec],
        ["report", spec],
        ["forecast", spec],
    ):
        run = _run(*args)
        assert run.exit_code == 2, run.output
        assert f"{spec}: a model spec, not a fit: `estim fit {spec}`" in " ".join(
            run.output.split()
        )


# --------------------------------------------------------------------------------------------------------------
# check


def test_check_without_posterior_predictive_draws_is_not_an_ok(tmp_path):
    # a fit whose posterior predictive draws failed (posterior_predictive_error): the prior check alone,
    # "verdict: ok", and exit 0 under --strict
    path = _fit(
        tmp_path / "a.nc",
        groups=("prior_predictive",),
        attrs={"posterior_predictive_error": "MemoryError"},
    )
    run = _run("check", path)
    assert run.exit_code == 0, run.output
    assert "== posterior predictive check ==" in run.stdout
    assert (
        "verdict: NOT MADE: the fit has no posterior predictive draws (MemoryError)" in run.stdout
    )
    strict = _run("check", path, "--strict")
    assert strict.exit_code == 3, strict.output
    assert "predictive check failed: posterior_predictive not made" in strict.stderr
    payload = json.loads(_run("check", path, "--format", "json").stdout)
    assert payload["posterior_predictive"]["verdicts"]["not made"]["passed"] is False
    # without the prior predictive draws only (lists_bma's exact posterior), --strict is not failed by it
    prior_only_missing = _fit(tmp_path / "b.nc", groups=("posterior_predictive",), seed=2)
    run = _run("check", prior_only_missing, "--strict")
    assert "no prior predictive draws" in run.stderr
    assert "not made" not in run.output


def test_check_refuses_draws_that_are_not_of_the_fits_data(tmp_path):
    path = _fit(tmp_path / "a.nc")
    other = store.load(_fit(tmp_path / "other.nc", PERIOD_2020, seed=2))
    # the posterior predictive draws of another period's fit: relabelled cells of the same sizes
    _edit(
        path,
        lambda t: t.__setitem__("posterior_predictive", other["posterior_predictive"].to_dataset()),
    )
    run = _run("check", path)
    assert run.exit_code == 2, run.output
    assert (
        f"{path}: its posterior_predictive draws of 'history_count' are not of its observed cells"
        in run.output
    )
    # of other cells (was "internal error: AlignmentError", exit 1)
    wider = {**PERIOD_2019, "0011": 1}
    more = store.load(_fit(tmp_path / "more.nc", wider, seed=3))
    _edit(
        path,
        lambda t: t.__setitem__("posterior_predictive", more["posterior_predictive"].to_dataset()),
    )
    run = _run("check", path)
    assert run.exit_code == 2 and "are not of its observed cells" in run.output, run.output


@pytest.mark.parametrize(
    "edit, says",
    [
        (  # was "internal error: KeyError: 'Could not find node at observed_data'", exit 1
            lambda t: _without(t, "observed_data"),
            "no observed data (its observed_data group is missing or empty)",
        ),
        (  # was "internal error: KeyError: \"No variable named 'history_count'\"", exit 1
            lambda t: t.__setitem__(
                "posterior_predictive",
                t["posterior_predictive"].to_dataset().rename(history_count="other"),
            ),
            "its posterior_predictive group holds other, not draws of its observed data 'history_count'",
        ),
    ],
    ids=["no observed data", "variable renamed"],
)
def test_check_names_the_file_that_lacks_what_it_checks(tmp_path, edit, says):
    path = _edit(_fit(tmp_path / "a.nc"), edit)
    run = _run("check", path)
    assert run.exit_code == 2, run.output
    assert f"{path}: {says}" in run.output


def test_compare_says_which_cell_differs_when_the_shapes_agree(tmp_path):
    # the message showed the same sizes twice ({'stratum': 1, 'history': 7} vs the same), as if they agreed
    a = _fit(tmp_path / "M0_a.nc")
    other = dict(PERIOD_2019, **{"0100": 9})
    b = _fit(tmp_path / "Mt_b.nc", other, seed=2, data_hash="data-b")
    run = _run("compare", a, b)
    assert run.exit_code == 2, run.output
    assert "history_count: 1 of 7 cells differ, the first at stratum all, history 0100: 9 vs 4" in (
        " ".join(run.output.split())
    )
