"""Prior sensitivity: the variants a family declares become specs of their own; a family without a design is
refused. The refits themselves are run by `estim sensitivity` (README), minutes each."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from estim.errors import EstimInputError
from estim.families.border.sensitivity import BORDER_SENSITIVITY
from estim.paths import REPO_ROOT
from estim.priors import Prior
from estim.run.spec import read_spec
from estim.studies.sensitivity import design_of, format_sensitivity, variant_spec


def test_variants_change_their_priors_or_options_and_get_their_own_fit():
    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    design = design_of(spec)
    assert design is BORDER_SENSITIVITY
    variants = design.variants
    assert variant_spec(spec, "spec", variants["spec"]) is spec
    for name, overrides in variants.items():
        options = design.variant_options.get(name, {})
        if not overrides and not options:
            continue
        v = variant_spec(spec, name, overrides, design.target_accept, options)
        assert v.name == f"border__{name}"
        assert dict(v.priors) == {**dict(spec.priors), **overrides}
        assert dict(v.options) == {**dict(spec.options), **options}
        assert v.spec_hash != spec.spec_hash  # never reuses the spec's cached fit
        assert v.sampler.target_accept == max(spec.sampler.target_accept, design.target_accept)
        assert (v.sampler.draws, v.sampler.chains, v.seed) == (
            spec.sampler.draws,
            spec.sampler.chains,
            spec.seed,
        )
    # the shipped variants widen and shift the level of the log hazard both ways
    mus = sorted(o["hazard_mean"].parameters["mu"] for o in variants.values() if "hazard_mean" in o)
    assert mus[0] < -0.5 < mus[-1]
    assert isinstance(variants["hazard_mean_wide"]["hazard_mean"], Prior)
    # the retry probability: fixed at 1 (repeated trials) and below, and under a strong prior; a frailty
    fixed = [design.variant_options[n]["retry_probability"] for n in ("retry_1", "retry_0.7")]
    assert fixed == [1.0, 0.7]
    assert variants["retry_prior_0.9"]["retry_probability"].distribution == "Beta"
    # a Beta(45, 5) has no density at r = 1 to average with; the variant without the atom keeps r uniform
    for name in ("retry_prior_0.9", "retry_no_atom"):
        assert design.variant_options[name] == {"repeated_trials_prior": 0.0}
    assert design.variant_options["frailty_0.5"] == {"frailty_sd": 0.5}
    assert design.variant_options["frailty_estimated"] == {"frailty_sd": "estimated"}


def test_a_variant_starts_at_its_sampler_floor_and_the_others_at_the_spec():
    """The frailty variants (a funnel) start where the gate's retries would reach only at their third attempt;
    a floor never lowers what the spec asks, and the other variants keep the spec's draws and warm-up."""
    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    design = design_of(spec)
    for name in design.variants:
        options = design.variant_options.get(name, {})
        floor = design.variant_sampler.get(name)
        v = variant_spec(spec, name, design.variants[name], design.target_accept, options, floor)
        if floor is None:
            assert (v.sampler.draws, v.sampler.tune) == (spec.sampler.draws, spec.sampler.tune)
            continue
        assert v.sampler.target_accept == max(spec.sampler.target_accept, floor["target_accept"])
        assert v.sampler.draws == max(spec.sampler.draws, floor["draws"]) > spec.sampler.draws
        assert isinstance(v.sampler.draws, int) and isinstance(v.sampler.tune, int)
    assert set(design.variant_sampler) == {"frailty_0.5", "frailty_estimated"}
    # a floor below the spec's settings leaves them as they are
    low = variant_spec(spec, "x", {}, 0.5, {"frailty_sd": 0.5}, {"draws": 10, "tune": 10})
    assert (low.sampler.draws, low.sampler.tune, low.sampler.target_accept) == (
        spec.sampler.draws,
        spec.sampler.tune,
        spec.sampler.target_accept,
    )
    with pytest.raises(ValueError, match="only target_accept, draws, tune"):
        variant_spec(spec, "x", {}, 0.5, {"frailty_sd": 0.5}, {"chains": 8})


def test_a_family_without_a_design_is_refused():
    spec = read_spec(REPO_ROOT / "models" / "hare_M0.toml")
    with pytest.raises(EstimInputError, match="declares no prior-sensitivity report"):
        design_of(spec)


def test_the_table_shows_each_variant_and_its_shift():
    rows = [
        {"variant": "spec", "priors": {}, "gate_passed": True, "median": 1000.0, "lower": 900.0,
         "upper": 1100.0, "mean_p": 0.45, "retry": 0.97, "shift_from_first": 0.0},
        {"variant": "wide", "priors": {"hazard_mean": "Normal(mu=-0.5, sigma=3.0)"}, "gate_passed": False,
         "median": 1050.0, "lower": 940.0, "upper": 1160.0, "mean_p": 0.44, "retry": 0.96, "shift_from_first": 0.05},
        {"variant": "retry_1", "priors": {}, "options": {"retry_probability": 1.0}, "gate_passed": True,
         "median": 1200.0, "lower": 1100.0, "upper": 1300.0, "mean_p": 0.43, "retry": 1.0, "shift_from_first": 0.2,
         "checks_failed": []},
        {"variant": "retry_0.7", "priors": {}, "options": {"retry_probability": 0.7}, "gate_passed": True,
         "median": 500.0, "lower": 480.0, "upper": 520.0, "mean_p": 0.6, "retry": 0.7, "shift_from_first": -0.5,
         "checks_failed": ["linkage"]},
    ]  # fmt: skip
    lines = format_sensitivity(rows, BORDER_SENSITIVITY).splitlines()
    # it says what it varies and what it does not, before the table
    preamble = " ".join(" ".join(lines[: lines.index("")]).split())
    assert preamble.startswith("varied: the prior of the log-hazard level hazard_mean")
    assert "the retry probability r" in preamble and "not varied: the bypass law" in preamble
    text = lines[lines.index("") + 1 :]
    assert "unobserved/yr" in text[0] and "mean p" in text[0]
    assert text[1].split()[:3] == ["spec", "ok", "1,000"] and "(the spec's priors)" in text[1]
    assert text[2].split()[:3] == ["wide", "FAIL", "1,050"] and "+5.0%" in text[2]
    assert "hazard_mean ~ Normal(mu=-0.5, sigma=3.0)" in text[2]
    assert (
        text[3].split()[:3] == ["retry_1", "ok", "1,200"] and "retry_probability = 1.0" in text[3]
    )
    # the predictive checks: not read (no entry), passed, or the names of those that fail
    assert "checks" in text[0]
    assert "+20.0%  ok " in text[3] and "MISFIT linkage" in text[4] and "+5.0%  – " in text[2]


def test_a_reused_fit_reports_the_time_it_took_when_it_was_made(monkeypatch):
    """`estim sensitivity` reuses cached fits; their row gives the time recorded in the file (it gave 0 s),
    and the number of attempts."""
    import xarray as xr

    import estim.studies.sensitivity as S
    from estim.run.diagnostics import GateVerdict
    from estim.run.fit import FitResult

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    tree = xr.DataTree(dataset=xr.Dataset(attrs={"fit_seconds": 612.3}))

    def fake_fit(vspec, out, force, progress, **_):
        reused = vspec.name.endswith("wide")
        attempts = ({"attempt": 1}, {"attempt": 2}) if reused else ({"attempt": 1},)
        return FitResult(
            vspec, out, tree, GateVerdict(True), reused, 0.0 if reused else 41.0, attempts
        )

    monkeypatch.setattr(S, "fit", fake_fit)
    monkeypatch.setattr(S, "load_data", lambda spec: None)
    design = S.design_of(spec)
    monkeypatch.setattr(
        S,
        "design_of",
        lambda spec: dataclasses.replace(
            design, headline=lambda tree, data, prob: {"median": 10.0, "lower": 9.0, "upper": 11.0}
        ),
    )
    wide = design.variants["hazard_mean_wide"]
    rows = S.prior_sensitivity(spec, {"spec": {}, "hazard_mean_wide": wide})
    assert [(r["fit_seconds"], r["attempts"]) for r in rows] == [(41.0, 1), (612.3, 2)]


def test_a_variant_row_names_the_predictive_checks_it_fails(monkeypatch):
    """A wrong fixed r passes the gate; the row must say which predictive check sees it."""
    import xarray as xr

    import estim.studies.sensitivity as S
    from estim.families.base import FamilyReport
    from estim.run.diagnostics import GateVerdict
    from estim.run.fit import FitResult

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    tree = xr.DataTree.from_dict({"posterior_predictive": xr.Dataset({"x": ("draw", [1.0])})})
    verdicts = {"frequency": {"passed": True}, "linkage": {"passed": False}}
    report = FamilyReport(
        tables=None,
        format=None,
        figure=None,
        check=lambda tree: {"verdicts": verdicts},
        format_check=None,
        check_figure=None,
    )
    monkeypatch.setattr(S, "family_of", lambda spec: SimpleNamespace(report=report))
    passed = FitResult(spec, None, tree, GateVerdict(True), False, 1.0, ({"attempt": 1},))
    assert S.failed_checks(spec, passed) == ["linkage"]
    failed = dataclasses.replace(passed, verdict=GateVerdict(False))
    assert S.failed_checks(spec, failed) is None
    bare = dataclasses.replace(passed, idata=xr.DataTree())
    assert S.failed_checks(spec, bare) is None


def test_every_variant_row_records_the_border_model_revision(monkeypatch, tmp_path):
    """The paper's provenance check reads ``model_revision`` from each row of the saved report: a border
    report must carry the current revision on every row, and a family that keeps none writes no such key."""
    import xarray as xr

    import estim.studies.sensitivity as S
    from estim.families.border.revision import MODEL_REVISION
    from estim.paper.studies import input_revisions
    from estim.run.diagnostics import GateVerdict
    from estim.run.fit import FitResult

    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    tree = xr.DataTree(dataset=xr.Dataset(attrs={"fit_seconds": 1.0}))
    monkeypatch.setattr(
        S,
        "fit",
        lambda vspec, out, force, progress, **_: FitResult(
            vspec, out, tree, GateVerdict(True), False, 1.0, ({"attempt": 1},)
        ),
    )
    monkeypatch.setattr(S, "load_data", lambda spec: None)
    design = dataclasses.replace(
        S.design_of(spec),
        headline=lambda tree, data, prob: {"median": 10.0, "lower": 9.0, "upper": 11.0},
    )
    assert design.model_revision == MODEL_REVISION
    monkeypatch.setattr(S, "design_of", lambda spec: design)
    variants = {"spec": {}, "hazard_mean_wide": design.variants["hazard_mean_wide"]}
    rows = S.prior_sensitivity(spec, variants)
    assert [r["model_revision"] for r in rows] == [MODEL_REVISION, MODEL_REVISION]

    import json

    path = tmp_path / "sensitivity.json"
    monkeypatch.setattr(
        S, "design_of", lambda spec: dataclasses.replace(design, model_revision=None)
    )
    unrevised = S.prior_sensitivity(spec, variants)
    assert all("model_revision" not in r for r in unrevised)
    path.write_text(json.dumps(rows))
    assert input_revisions(path) == {MODEL_REVISION}
    path.write_text(json.dumps(unrevised))
    assert input_revisions(path) != {MODEL_REVISION}


def test_the_command_writes_its_out_file_whole_or_not_at_all(tmp_path, monkeypatch):
    # `estim sensitivity … > sensitivity.json` emptied the committed report before the first fit, and a
    # stopped run left it empty; --out replaces it only with a finished report
    import json

    from click.testing import CliRunner

    import estim.studies.sensitivity as study
    from estim.cli import cli
    from estim.paths import REPO_ROOT

    out = tmp_path / "sensitivity.json"
    out.write_text("[]\n", encoding="utf-8")
    spec = str(REPO_ROOT / "models" / "border.toml")

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "prior_sensitivity", stopped)
    result = CliRunner().invoke(cli, ["sensitivity", spec, "--format", "json", "--out", str(out)])
    assert result.exit_code != 0 and out.read_text(encoding="utf-8") == "[]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sensitivity.json"]  # no temporary left

    rows = [{"variant": "spec", "median": 11000.0}]
    monkeypatch.setattr(study, "prior_sensitivity", lambda *a, **k: rows)
    result = CliRunner().invoke(cli, ["sensitivity", spec, "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == rows
