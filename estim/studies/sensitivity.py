"""Prior sensitivity: refit a spec with some of its priors changed and see how its headline estimate moves.

The family says what to vary and what to watch (`estim.families.base.SensitivityDesign`); for the border model
that is the prior of the apprehension probability and the whole border's unobserved crossings per year
(`estim.families.border.sensitivity`). Each variant is a spec of its own (``NAME__variant``), fitted and cached
beside the spec like any other, and checked by the diagnostics gate.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from estim.errors import EstimInputError
from estim.families.base import SensitivityDesign
from estim.priors import Prior
from estim.run.data import family_of, load_data
from estim.run.fit import FitResult, fit
from estim.run.sampler import Progress
from estim.run.spec import ModelSpec
from estim.studies.chain_groups import grouped_fit


def design_of(spec: ModelSpec) -> SensitivityDesign:
    """The spec's family's sensitivity design; `EstimInputError` for a family without one."""
    family = family_of(spec)
    if family.sensitivity is None:
        raise EstimInputError(
            f"{spec.path or spec.name}: family {family.name!r} declares no prior-sensitivity report"
        )
    return family.sensitivity


def variant_spec(
    spec: ModelSpec,
    name: str,
    overrides: Mapping[str, Prior],
    target_accept: float = 0.9,
    options: Mapping[str, Any] | None = None,
    sampler_floor: Mapping[str, float] | None = None,
) -> ModelSpec:
    """The spec with `overrides` applied to its priors and `options` to its ``[options]``, named
    NAME__variant (its own fit file), sampled at target_accept ≥ `target_accept` and with its ``target_accept``,
    ``draws`` and ``tune`` at least `sampler_floor`'s (`SensitivityDesign.variant_sampler`)."""
    if not overrides and not options:
        return spec
    floor = {"target_accept": target_accept, **dict(sampler_floor or {})}
    unknown = set(floor) - {"target_accept", "draws", "tune"}
    if unknown:
        raise ValueError(
            f"variant {name!r}: sampler floors for {sorted(unknown)}: only target_accept, draws, tune"
        )
    raised = {
        k: type(getattr(spec.sampler, k))(max(getattr(spec.sampler, k), v))
        for k, v in floor.items()
    }
    sampler = dataclasses.replace(spec.sampler, **raised)
    return dataclasses.replace(
        spec,
        name=f"{spec.name}__{name}",
        priors={**dict(spec.priors), **dict(overrides)},
        options={**dict(spec.options), **dict(options or {})},
        sampler=sampler,
    )


def _fit_seconds(result: FitResult) -> float:
    """The wall time of a fit: of this run, or for a cached fit the time recorded when it was made."""
    if not result.reused:
        return result.seconds
    return float(result.idata.attrs.get("fit_seconds", math.nan))


def failed_checks(spec: ModelSpec, result: FitResult) -> list[str] | None:
    """The names of the family's named posterior predictive checks (its report's ``check``) that a fit fails;
    None when the family has no named checks, the fit failed the gate (its checks are not read) or it holds
    no posterior predictive draws."""
    report = family_of(spec).report
    if report is None or not result.passed:
        return None
    if "posterior_predictive" not in result.idata.children:
        return None
    verdicts = report.check(result.idata).get("verdicts", {})
    return [name for name, v in verdicts.items() if not v["passed"]]


def variant_row(
    spec: ModelSpec,
    name: str,
    overrides: Mapping[str, Prior],
    *,
    folder: str | Path,
    force: bool = False,
    prob: float = 0.9,
    data: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit one variant of ``spec`` (its cached fit in ``folder`` reused when its provenance matches) and give
    its row of `prior_sensitivity` (without ``shift_from_first``). ``data``: the spec's data, read here when
    None (a study's task on a dask worker)."""
    design = design_of(spec)
    options = design.variant_options.get(name, {})
    vspec = variant_spec(
        spec, name, overrides, design.target_accept, options, design.variant_sampler.get(name)
    )
    # a variant's options may leave out a parameter the spec has a prior for (r fixed), or be left without
    # effect by the data (after_background without registers): said, not refused, so the study goes on
    out = Path(folder) / f"{vspec.name}.nc"
    groups = design.variant_chain_groups.get(name, 1)
    if groups > 1:  # a fit longer than a machine gives at one go: its chains in groups, each saved
        result = grouped_fit(
            vspec, groups, out=out, force=force, progress=progress, idle_priors="warn"
        )
    else:
        result = fit(vspec, out=out, force=force, progress=progress, idle_priors="warn")
    return {
        "variant": name,
        "priors": {k: str(v) for k, v in overrides.items()},
        "options": {k: v for k, v in options.items()},
        "file": str(result.path),
        "gate_passed": result.passed,
        "checks_failed": failed_checks(vspec, result),
        # a reused fit took no time now: report the time it took when it was made
        "fit_seconds": round(_fit_seconds(result), 1),
        "attempts": len(result.attempts),
        "chain_groups": groups,
        **design.headline(result.idata, load_data(spec) if data is None else data, prob),
        # a cached fit is reused only when the package source is unchanged, so it is of this revision
        **({} if design.model_revision is None else {"model_revision": design.model_revision}),
    }


def prior_sensitivity(
    spec: ModelSpec,
    variants: Mapping[str, Mapping[str, Prior]] | None = None,
    *,
    out_dir: str | Path | None = None,
    force: bool = False,
    prob: float = 0.9,
    progress: Progress | None = None,
    client: Any = None,
) -> list[dict[str, Any]]:
    """Fit each variant (cached fits are reused) and report its headline estimate.

    One row per variant: the priors changed, the file and gate verdict, the predictive checks it fails
    (``checks_failed``, `failed_checks`), ``median``, ``lower`` and ``upper`` of the headline's `prob` interval
    with the family's further numbers, and ``shift_from_first``, the relative shift of the median from the
    first variant's (the spec's own fit). A variant that fails a check is one the data argue against: a
    wrong assumption that the gate alone does not see.

    With a dask ``client`` (`estim.studies.distributed`) the variants are fitted as tasks on its workers (the
    fits are written to ``out_dir``, which the workers must share); a study stopped part-way reuses the fits
    that finished, as their cache.
    """
    design = design_of(spec)
    variants = design.variants if variants is None else variants
    folder = Path(out_dir) if out_dir is not None else spec.default_output().parent
    names = list(variants)
    if client is not None:
        futures = client.map(
            lambda name: variant_row(
                spec, name, variants[name], folder=folder, force=force, prob=prob
            ),
            names,
            pure=False,
        )
        rows = []
        for i, future in enumerate(futures):
            rows.append(future.result())
            if progress is not None:
                progress(f"variant {i + 1} of {len(names)}: {names[i]} done")
    else:
        data = load_data(spec)
        rows = []
        for i, name in enumerate(names):
            if progress is not None:
                progress(f"variant {i + 1} of {len(names)}: {name}")
            rows.append(
                variant_row(
                    spec,
                    name,
                    variants[name],
                    folder=folder,
                    force=force,
                    prob=prob,
                    data=data,
                    progress=progress,
                )
            )
    base = rows[0]["median"]
    for r in rows:
        r["shift_from_first"] = r["median"] / base - 1.0
    return rows


def format_sensitivity(rows: list[dict[str, Any]], design: SensitivityDesign) -> str:
    """The rows as a table: variant, gate, the headline's median and interval, the further numbers, shift."""
    extra = dict(design.extra_names)
    lines = [
        *textwrap.wrap(f"varied: {design.varies}.", width=100, subsequent_indent="  "),
        *textwrap.wrap(f"not varied: {design.does_not_vary}.", width=100, subsequent_indent="  "),
        "",
        f"{'variant':24s} {'gate':6s} {design.headline_name:>13s} {'90% interval':>21s} "
        + "".join(f"{title:>8s}" for title in extra.values())
        + f" {'shift':>7s}  {'checks':10s} prior or assumption changed",
    ]
    for r in rows:
        failed = r.get("checks_failed")
        checks = "–" if failed is None else "MISFIT " + ",".join(failed) if failed else "ok"
        lines.append(
            f"{r['variant']:24s} {'ok' if r['gate_passed'] else 'FAIL':6s} "
            f"{r['median']:13,.0f} {r['lower']:10,.0f} – {r['upper']:8,.0f} "
            + "".join(f"{r[k]:8.3f}" for k in extra)
            + f" {r['shift_from_first']:+7.1%}  {checks:10s} "
            + (
                ", ".join(
                    [f"{k} ~ {v}" for k, v in r["priors"].items()]
                    + [f"{k} = {v}" for k, v in r.get("options", {}).items()]
                )
                or "(the spec's priors)"
            )
        )
    return "\n".join(lines)
