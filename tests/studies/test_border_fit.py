"""One fit of a border study (`estim.studies.border_fit`): the gate's retries, and attempts known to fail
skipped without changing what the fit returns."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.errors import EstimInputError
from estim.run import diagnostics
from estim.run import fit as run_fit
from estim.run.diagnostics import Check, GateVerdict
from estim.studies import border_fit as F


def _scripted_sampler(monkeypatch, outcomes: list[tuple[str, ...]]) -> list:
    """Replace the sampler and the gate: attempt i (from 1) fails ``outcomes[i - 1]``'s checks (passes when
    that is empty, or past the list). The draws are a function of the seed and settings only, as NUTS's are.
    Returns the list the attempts' settings are appended to."""
    runs: list = []

    def sample(spec, family, data):
        runs.append(spec.sampler)
        s = spec.sampler
        value = float(spec.seed * 1_000 + s.draws + s.tune + s.target_accept)
        posterior = xr.Dataset({"value": (("chain", "draw"), np.full((1, 2), value))})
        posterior.attrs.update(compile_time=1.0, sampling_time=2.0)
        tree = xr.DataTree.from_dict({"posterior": posterior})
        tree.attrs["attempt_settings"] = (s.draws, s.tune, s.target_accept)
        return tree

    def check(tree, var_names=None):
        number = len(runs)
        failed = outcomes[number - 1] if number <= len(outcomes) else ()
        checks = tuple(Check(name, 2.0, 1.0, False) for name in failed) or (
            Check("r_hat", 1.0, 1.01, True),
        )
        return GateVerdict(not failed, checks)

    monkeypatch.setattr(run_fit, "sample", sample)
    monkeypatch.setattr(run_fit, "gate_names", lambda family, tree: None)
    monkeypatch.setattr(diagnostics, "check", check)
    return runs


@pytest.mark.parametrize(
    "first_failed",
    [("r_hat", "ess_bulk", "ess_tail"), ("divergences",)],
    ids=["mixing", "divergences"],
)
def test_an_attempt_known_to_fail_is_skipped_and_the_fit_is_the_same(monkeypatch, first_failed):
    # the whole sequence: attempt 1 fails, attempt 2 passes
    runs = _scripted_sampler(monkeypatch, [first_failed])
    whole = F.fit_dataset(xr.Dataset(), seed=4028)
    assert (whole.attempts, whole.skipped, whole.verdict.passed) == (2, 0, True)
    assert len(runs) == 2
    second = runs[1]
    # attempt 1 skipped: only the second runs, with the settings it had in the whole sequence
    runs = _scripted_sampler(monkeypatch, [])
    resumed = F.fit_dataset(xr.Dataset(), seed=4028, known_failures=[first_failed])
    assert runs == [second]
    assert (resumed.attempts, resumed.skipped, resumed.verdict.passed) == (2, 1, True)
    assert resumed.tree.identical(whole.tree)
    # the seconds are those of the attempt run, not of the one skipped
    assert resumed.sample_seconds == pytest.approx(whole.sample_seconds / 2)
    # the retry's settings follow from what the first attempt failed: a mixing failure keeps target_accept
    shipped = F._shipped_spec().sampler
    assert second.draws == 2 * shipped.draws and second.tune == 2 * shipped.tune
    mixing_only = first_failed == ("r_hat", "ess_bulk", "ess_tail")
    assert (second.target_accept == shipped.target_accept) == mixing_only


def test_known_failures_must_leave_an_attempt_to_run(monkeypatch):
    _scripted_sampler(monkeypatch, [])
    retries = F._shipped_spec().sampler.retries
    with pytest.raises(EstimInputError, match="at least one attempt"):
        F.fit_dataset(xr.Dataset(), seed=1, known_failures=[("r_hat",)] * (retries + 1))
    with pytest.raises(EstimInputError, match="no failed check"):
        F.fit_dataset(xr.Dataset(), seed=1, known_failures=[()])


def test_known_failures_from_the_command_line():
    assert F.parse_known_failures(
        ["4028:r_hat,ess_bulk", "4028:divergences", "4003: ess_tail"]
    ) == {4028: [("r_hat", "ess_bulk"), ("divergences",)], 4003: [("ess_tail",)]}
    assert F.parse_known_failures([]) == {}
    for bad, message in [
        ("4028", "SEED:CHECK"),
        ("seed:r_hat", "SEED:CHECK"),
        ("4028:", "SEED:CHECK"),
        ("4028:rhat", "rhat is not a check of the gate"),
    ]:
        with pytest.raises(EstimInputError, match=message):
            F.parse_known_failures([bad])


def test_the_study_scripts_take_known_failures():
    import argparse

    parser = argparse.ArgumentParser()
    F.add_known_failure_argument(parser, "; a note")
    args = parser.parse_args(["--known-failure", "4028:r_hat", "--known-failure", "4028:ess_bulk"])
    assert F.parse_known_failures(args.known_failure) == {4028: [("r_hat",), ("ess_bulk",)]}
    assert "a note" in parser.format_help()
