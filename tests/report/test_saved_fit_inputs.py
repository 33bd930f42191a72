"""The commands that read or write saved fits, handed what a user plausibly hands them: a fit whose spec was
edited since, a fit copied or renamed, a spec copied with its name kept, an --out that is not a fit or
cannot be written, a fit without its draws, a fit with no pointwise log-likelihood, a fit whose records are
gone. Hand-made fits (no sampling): each test asserts what the old code got wrong."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from estim.cli import cli
from estim.errors import EstimInputError
from estim.run import fit as fit_module
from estim.run import store
from estim.run.data import fit_data, fit_records_folder
from estim.run.diagnostics import Check, GateVerdict
from estim.run.spec import read_spec

SPEC = """family = "ztpoisson"
seed = {seed}
[data]
benchmark = "netherlands_immigrants"
layout = "individuals"
times_seen = "capture"
"""


def _spec(folder, name, seed=5, body=SPEC):
    path = folder / f"{name}.toml"
    path.write_text(body.format(seed=seed))
    return path


def _fit(path, model_name, spec_hash="spec-a", posterior=True, loglik=True, observed="f", seed=1):
    """A passed fit of f_k (people seen once, twice, three times), saved as `estim fit` saves one; fits of
    other `seed`s have other draws."""
    rng = np.random.default_rng(seed)
    chains, draws = 2, 100
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    n = rng.poisson(3000, (chains, draws))
    seen = xr.Dataset({observed: ("k", np.array([800, 150, 50]))}, coords={"k": [1, 2, 3]})
    groups = {"observed_data": seen}
    if posterior:
        groups["posterior"] = xr.Dataset(
            {"N": (("chain", "draw"), n), "unobserved": (("chain", "draw"), n - 1000)},
            coords=coords,
        )
    if loglik:
        p = rng.dirichlet([80, 15, 5], (chains, draws))
        groups["log_likelihood"] = xr.Dataset(
            {observed: (("chain", "draw", "k"), seen[observed].values * np.log(p))},
            coords={**coords, "k": [1, 2, 3]},
        )
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {"model_name": model_name, "family": "ztpoisson", "observed_name": "f"}
    provenance = {"spec_hash": spec_hash, "data_hash": "data-a", "seed": 5}
    return store.save(tree, path, provenance, GateVerdict(True, (Check("r_hat", 1.0, 1.01, True),)))


def _no_sampling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("sampled: the refusal came too late")

    monkeypatch.setattr(fit_module, "sample", refuse)


def test_summary_warns_when_the_spec_beside_the_fit_was_edited_since(tmp_path):
    # the spec edited (another seed, a prior), not refitted: `estim summary` presented the old fit's numbers
    # under the spec's name, exit 0, without a word
    spec_path = _spec(tmp_path, "ztp")
    fit_path = _fit(tmp_path / "ztp.nc", "ztp", spec_hash=read_spec(spec_path).spec_hash)
    run = CliRunner().invoke(cli, ["summary", str(fit_path)])
    assert run.exit_code == 0 and "WARNING" not in run.output, run.output
    spec_path.write_text(SPEC.format(seed=6))
    for fmt, said in (("text", "WARNING: "), ("json", '"warning": "')):
        run = CliRunner().invoke(cli, ["summary", str(fit_path), "--format", fmt])
        assert run.exit_code == 0, run.output
        text = " ".join(run.output.split())  # the text wrapped at spaces
        assert f"{said}{spec_path} has changed since {fit_path} was fitted" in text, run.output
    # compare says it too (on stderr), of the file whose spec changed only
    other = _fit(tmp_path / "other.nc", "other", spec_hash="spec-b", seed=2)
    run = CliRunner().invoke(cli, ["compare", str(fit_path), str(other)])
    assert run.exit_code == 0, run.output
    assert f"warning: {spec_path} has changed since" in run.output
    assert "other.toml" not in run.output


def test_summary_warns_of_a_fit_named_after_another_spec(tmp_path):
    # a fit copied or renamed to another spec's name was presented as that spec's fit file
    _spec(tmp_path, "ztp")
    _spec(tmp_path, "wide", seed=9)
    shutil.copy(_fit(tmp_path / "ztp.nc", "ztp"), tmp_path / "wide.nc")
    run = CliRunner().invoke(cli, ["summary", str(tmp_path / "wide.nc")])
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    assert "holds the fit of model 'ztp', not of the spec wide.toml beside it" in text, run.output


def test_a_copied_spec_that_keeps_its_name_is_not_fitted_over_the_originals_fit(
    tmp_path, monkeypatch
):
    # `cp ztp.toml ztp_wide.toml`, a prior edited, `estim fit ztp_wide.toml`: saved as ztp.nc over the
    # original spec's fit, which `estim summary ztp.nc` then presented as ztp.toml's (exit 0)
    original = _spec(tmp_path, "ztp")
    fit_path = _fit(tmp_path / "ztp.nc", "ztp", spec_hash=read_spec(original).spec_hash)
    before = fit_path.read_bytes()
    copy = tmp_path / "ztp_wide.toml"
    copy.write_text('name = "ztp"\n' + SPEC.format(seed=7))
    _no_sampling(monkeypatch)
    run = CliRunner().invoke(cli, ["fit", str(copy)])
    assert run.exit_code == 2, run.output
    assert f"{copy}: name = 'ztp' is the name of ztp.toml beside it" in run.output
    assert fit_path.read_bytes() == before
    with pytest.raises(EstimInputError, match="is the name of ztp.toml beside it"):
        read_spec(copy).default_output()  # from Python (and `estim sensitivity`) too
    assert read_spec(original).default_output() == fit_path  # the spec of that name is its owner


def test_a_fit_is_never_saved_over_a_file_that_is_not_a_fit(tmp_path, monkeypatch):
    # `estim fit SPEC --out data/x/truth.nc` replaced the simulator's truth with a fit, exit 0
    spec_path = _spec(tmp_path, "ztp")
    truth = tmp_path / "truth.nc"
    xr.Dataset({"unobserved": ("month", np.arange(12))}).to_netcdf(truth)
    before = truth.read_bytes()
    _no_sampling(monkeypatch)
    for force in ([], ["--force"]):
        run = CliRunner().invoke(cli, ["fit", str(spec_path), "--out", str(truth), *force])
        assert run.exit_code == 2, run.output
        assert f"{truth}: the file exists and is not a fit made by `estim fit`" in run.output
    assert truth.read_bytes() == before
    with pytest.raises(EstimInputError, match="is not a fit made by"):
        fit_module.fit(read_spec(spec_path), out=truth)
    assert truth.read_bytes() == before


def test_the_fit_of_another_model_is_replaced_only_with_force(tmp_path, monkeypatch):
    spec_path = _spec(tmp_path, "ztp")
    other = _fit(tmp_path / "border.nc", "border")
    before = other.read_bytes()
    _no_sampling(monkeypatch)
    run = CliRunner().invoke(cli, ["fit", str(spec_path), "--out", str(other)])
    assert run.exit_code == 2, run.output
    assert f"{other}: holds the fit of model 'border', not of 'ztp'" in run.output
    assert other.read_bytes() == before

    def reached(*args, **kwargs):
        raise EstimInputError("the fit was reached")

    monkeypatch.setattr(fit_module, "fit", reached)
    run = CliRunner().invoke(cli, ["fit", str(spec_path), "--out", str(other), "--force"])
    assert "the fit was reached" in run.output, run.output


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    # a folder that cannot be made (a file in its place): the fit ran, then "internal error:
    # FileNotFoundError" (exit 1) when it was saved; a summary's figure likewise
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    spec_path = _spec(tmp_path, "ztp")
    fit_path = _fit(tmp_path / "ztp.nc", "ztp", spec_hash=read_spec(spec_path).spec_hash)
    _no_sampling(monkeypatch)
    for args in (
        ["fit", str(spec_path), "--out", str(blocker / "ztp.nc")],
        ["summary", str(fit_path), "--figure", str(blocker / "n.png")],
        ["check", str(fit_path), "--figure", str(blocker / "ppc.png")],
        ["forecast", str(fit_path), "--out", str(blocker / "f.nc")],
        ["forecast", str(fit_path), "--figure", str(blocker / "f.png")],
        ["report", str(fit_path), "--figure", str(blocker / "q.png")],
        ["sensitivity", str(spec_path), "--out", str(blocker / "s.txt")],
    ):
        run = CliRunner().invoke(cli, args)
        assert run.exit_code == 2, (args, run.output)
        assert f"cannot be written: {blocker} is a file, not a folder" in run.output, run.output
    # a spec whose own folder cannot take its fit: the same, before the data are read
    with pytest.raises(EstimInputError, match="the fit cannot be saved there"):
        store.check_out(blocker / "x.nc")


def test_the_sensitivity_report_is_not_written_over_a_fit_or_a_spec(tmp_path):
    # --out border.nc (as for `estim fit`) wrote the text report over the fit after hours of refits
    spec_path = _spec(tmp_path, "ztp")
    for name in ("ztp.nc", "ztp.toml"):
        run = CliRunner().invoke(
            cli, ["sensitivity", str(spec_path), "--out", str(tmp_path / name)]
        )
        assert run.exit_code == 2, run.output
        assert "the report is written as text (or JSON)" in run.output, run.output
    assert spec_path.read_text() == SPEC.format(seed=5)


def test_a_fit_without_its_draws_is_refused_naming_the_file(tmp_path):
    # a fit file whose posterior group was dropped: "internal error: KeyError" (exit 1)
    path = _fit(tmp_path / "cut.nc", "cut", posterior=False)
    for command in ("summary", "check"):
        run = CliRunner().invoke(cli, [command, str(path)])
        assert run.exit_code == 2, run.output
        assert f"{path}: not a whole fit: it has no posterior group" in run.output


def test_compare_says_a_fit_has_no_pointwise_log_likelihood(tmp_path):
    # a border fit: "no observed data 'apprehensions' to compare on", though its observed data are there
    a = _fit(tmp_path / "a.nc", "a", loglik=False, observed="monthly_apprehensions")
    b = _fit(
        tmp_path / "b.nc", "b", spec_hash="spec-b", loglik=False, observed="monthly_apprehensions"
    )
    for tree_path in (a, b):
        tree = store.load(tree_path)
        tree.attrs["observed_name"] = "apprehensions"
        tree.attrs["family"] = "border"
        store.save(tree, tree_path, {}, store.verdict(tree))
    run = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert run.exit_code == 2, run.output
    assert f"{a}: a fit of family 'border' with no pointwise log-likelihood" in run.output
    assert "no observed data" not in run.output


def test_a_fit_whose_records_are_gone_is_named_not_a_spec_it_does_not_have(tmp_path):
    # `estim report` / `estim forecast` said "lists.toml: [data] records: no folder my_records", a spec file
    # that is not there: the message must name the fit
    spec_path = tmp_path / "lists.toml"
    spec_path.write_text(
        'family = "lists_stepwise"\nseed = 1\n[data]\nrecords = "my_records"\nperiod = "2010"\n'
    )
    tree = xr.DataTree()
    tree.attrs = {"spec_json": read_spec(spec_path).canonical_json(), "data_hash": "d"}
    spec_path.unlink()
    fit_path = tmp_path / "lists.nc"
    for read in (fit_data, fit_records_folder):
        with pytest.raises(EstimInputError) as refused:
            read(tree, fit_path)
        message = str(refused.value)
        assert message.startswith(f"{fit_path}: the data it was fitted to are not there"), message
        assert f"no folder {tmp_path / 'my_records'}" in message, message
        assert "lists.toml" not in message


def test_a_fit_whose_bytes_were_damaged_is_refused_not_read_as_other_draws(tmp_path):
    # half the draws of N moved by 100 in the file's bytes (a bad copy, a disk): the summary gave another
    # N, exit 0; the arrays now carry checksums
    path = _fit(tmp_path / "ztp.nc", "ztp")
    tree = store.load(path)
    versions = store.library_versions()
    provenance = store.provenance_attrs("spec-a", "data-a", 5, versions)
    store.save(tree, path, provenance, store.verdict(tree))
    assert store.cached(path, "spec-a", "data-a", versions) is not None
    n = store.load(path)["posterior"]["N"].values
    raw = path.read_bytes()
    at = raw.find(np.ascontiguousarray(n).tobytes())
    assert at > 0
    damaged = n.copy()
    damaged.flat[: n.size // 2] += 100
    path.write_bytes(raw[:at] + damaged.tobytes() + raw[at + n.nbytes :])
    with pytest.raises(EstimInputError, match="not a readable fit file"):
        store.load(path)
    run = CliRunner().invoke(cli, ["summary", str(path)])
    assert run.exit_code == 2 and f"{path}: not a readable fit file" in run.output, run.output
    assert "N: " not in run.output
    assert (
        store.cached(path, "spec-a", "data-a", versions) is None
    )  # `estim fit` fits again, over it
