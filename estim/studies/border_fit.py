"""One fit of the border model in a study, as ``estim fit`` makes it (`estim.studies.border_recovery`,
`estim.studies.border_misspecification`): the shipped spec's priors, options and sampler, the diagnostics gate,
its retries, and the named posterior predictive checks read off the fit.

An attempt's draws depend only on the spec's seed and the attempt's sampler settings (`estim.run.fit.sample`
draws every seed from the spec's), and a retry's settings only on the first attempt's and on the checks the
previous attempts failed (`estim.run.fit.retry_settings`). So attempts a study has already run on a dataset
and seen fail need not be run again: given the checks each failed (``known_failures``), the fit starts at the
next attempt and returns what the whole sequence would have returned, at the cost of the remaining attempts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.run.diagnostics import GateVerdict


def shipped_sampler() -> dict[str, Any]:
    """The sampler settings of ``models/border.toml`` (the study fits as the shipped spec does)."""
    return _shipped_spec().sampler.to_dict()


def _shipped_spec(path: Any = None) -> Any:
    """``models/border.toml``, or the border spec at ``path`` (a variant a recovery study compares with it), or
    ``path`` itself when it is already a spec (e.g. a sensitivity variant, `studies.sensitivity.variant_spec`)."""
    from estim.paths import REPO_ROOT
    from estim.run.spec import ModelSpec, read_spec

    if isinstance(path, ModelSpec):
        spec = path
    else:
        spec = read_spec(REPO_ROOT / "models" / "border.toml" if path is None else path)
    if spec.family != "border":
        raise EstimInputError(
            f"{spec.path or spec.name}: a border recovery study fits a border spec, not {spec.family!r}"
        )
    return spec


@dataclass(frozen=True)
class FitOutcome:
    """The last attempt of a fit and what the attempts cost. ``tree`` holds the posterior (with the draws of
    the unobserved crossings per section × year), ``posterior_predictive`` and ``observed_data``; ``verdict``
    is the gate's verdict on the last attempt; ``attempts`` counts the runs of the sampler (1 + retries);
    the seconds are summed over the attempts run (``fit_seconds``: their wall time, with the crossings, the
    predictive draws and the gate)."""

    tree: xr.DataTree
    verdict: GateVerdict
    attempts: int
    compile_seconds: float
    sample_seconds: float
    fit_seconds: float
    skipped: int = 0
    """Attempts not run again because they were known to fail (``known_failures``)."""


def fit_dataset(
    data: xr.Dataset,
    *,
    seed: int,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    target_accept: float | None = None,
    retries: int | None = None,
    spec: Any = None,
    known_failures: Sequence[Sequence[str]] = (),
) -> FitOutcome:
    """Fit the border model to ``data`` as ``estim fit`` fits ``models/border.toml`` (`estim.run.fit.fit`),
    with ``seed`` in place of the spec's: the spec's priors, options and sampler settings (each overridable),
    the family's ``after_sampling`` draws from every attempt, the diagnostics gate and, while it fails, up to
    ``retries`` (default the spec's) retries with `estim.run.fit.retry_settings`. ``spec``: another border spec
    (a path or a read spec) to fit in place of the shipped one (its priors, options and sampler; e.g. a
    variant of the terrain pooling or of the frailty). ``known_failures``: the gate's failed checks of each
    attempt already run on this dataset with this seed and these settings (first attempt first): those attempts
    are not run again (see the module's docstring); the outcome counts them in ``attempts`` and in
    ``skipped``, not in its seconds."""
    from estim.families.border import BORDER  # heavy imports (PyMC, JAX), only when fitting
    from estim.run.diagnostics import check as gate_check
    from estim.run.fit import gate_names, retry_settings, sample

    model_spec = _shipped_spec(spec)
    overrides = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    first = dataclasses.replace(
        model_spec.sampler, **{k: v for k, v in overrides.items() if v is not None}
    )
    n_retries = first.retries if retries is None else retries
    model_spec = dataclasses.replace(model_spec, seed=int(seed), sampler=first)
    compile_seconds = sample_seconds = fit_seconds = 0.0
    failed: tuple[str, ...] = ()
    settings = first
    known = [tuple(checks) for checks in known_failures]
    if any(not checks for checks in known):
        raise EstimInputError(
            "known_failures: an attempt given with no failed check did not fail the gate; name the checks it "
            "failed"
        )
    if len(known) > n_retries:
        raise EstimInputError(
            f"known_failures: {len(known)} failed attempts given (each with the checks it failed) for a fit "
            f"of at most {n_retries + 1} attempts; at least one attempt must be left to run"
        )
    for number, checks in enumerate(known, start=1):  # the settings the skipped attempts ran with
        settings = first if number == 1 else retry_settings(first, number - 1, failed, settings)
        failed = checks
    for number in range(len(known) + 1, n_retries + 2):
        settings = first if number == 1 else retry_settings(first, number - 1, failed, settings)
        began = time.perf_counter()
        tree = sample(dataclasses.replace(model_spec, sampler=settings), BORDER, data)
        names = gate_names(BORDER, tree)
        verdict = gate_check(tree) if names is None else gate_check(tree, var_names=names)
        attrs = tree["posterior"].attrs
        compile_seconds += float(attrs.get("compile_time", np.nan))
        sample_seconds += float(attrs.get("sampling_time", np.nan))
        fit_seconds += time.perf_counter() - began
        if verdict.passed:
            break
        failed = verdict.failed
    return FitOutcome(
        tree, verdict, number, compile_seconds, sample_seconds, fit_seconds, len(known)
    )


def predictive_verdicts(tree: xr.DataTree) -> dict[str, dict[str, Any]]:
    """The fit report's named posterior predictive checks (`border.report.predictive_check`) of a fit: per
    check, whether it passed, the share of observed values inside their 90 % predictive intervals and, for a
    check judged by a discrepancy (the linkage), its posterior predictive p-value."""
    from estim.families.border.report import predictive_check

    check = predictive_check(tree)
    out: dict[str, dict[str, Any]] = {}
    for name, v in check["verdicts"].items():
        # a test of the data (made before sampling) has no predictive coverage
        coverage = check["coverage"].get(name, {"inside": np.nan})
        out[name] = {"passed": bool(v["passed"]), "inside": float(coverage["inside"])}
        if "p_value" in coverage:
            out[name]["p_value"] = float(coverage["p_value"])
    return out


def parse_known_failures(values: Sequence[str]) -> dict[int, list[tuple[str, ...]]]:
    """The ``known_failures`` of a study from its command line: each value ``SEED:CHECK[,CHECK...]`` is one
    attempt on the dataset of simulator seed SEED that failed the gate's named checks (a seed given twice: its
    first and second attempts, in that order). Raises `EstimInputError` naming the value for a malformed one or
    a check the gate does not have."""
    from estim.run.fit import MIXING_CHECKS, SAMPLER_CHECKS

    known = sorted(MIXING_CHECKS | set(SAMPLER_CHECKS))
    out: dict[int, list[tuple[str, ...]]] = {}
    for value in values:
        seed, _, names = value.partition(":")
        checks = tuple(n.strip() for n in names.split(",") if n.strip())
        if not seed.strip().isdigit() or not checks:
            raise EstimInputError(f"--known-failure {value!r}: expected SEED:CHECK[,CHECK...]")
        if unknown := [c for c in checks if c not in known]:
            raise EstimInputError(
                f"--known-failure {value!r}: {', '.join(unknown)} is not a check of the gate "
                f"({', '.join(known)})"
            )
        out.setdefault(int(seed), []).append(checks)
    return out


def add_known_failure_argument(parser: Any, note: str = "") -> None:
    """``--known-failure SEED:CHECKS`` (repeatable) on a study script's ``parser``: read by
    `parse_known_failures`; ``note`` ends its help."""
    parser.add_argument(
        "--known-failure",
        action="append",
        default=[],
        metavar="SEED:CHECKS",
        help="an attempt on the dataset of simulator seed SEED already seen to fail the gate's CHECKS "
        "(comma-separated; repeat the seed for its next attempt): not run again, the fit starts at the next "
        "attempt (its draws are the same: an attempt depends only on the seed and its settings)"
        + note,
    )
