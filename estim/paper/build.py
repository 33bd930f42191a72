"""The paper's pipeline: every number, table and figure the manuscript (``paper/paper.typ``) reads, generated
from ``data/`` and ``models/`` into ``paper/generated/``, then typeset to ``paper/paper.pdf``.

Each step is a function of the build context that writes its outputs (numbers as JSON through
`estim.paper.numbers`, tables as CSV, figures as PNG) and returns their paths; the manifest
(``generated/manifest.json``) records, per output, the step (function) that made it and the inputs it read
with their hashes. Heavy fits are cached by their provenance (the fit store: `estim.run.fit.fit` reuses a fit
of the same spec, data and code). Expensive studies (effect recovery, backtest) are inputs made by their own
scripts and committed under ``paper/inputs/``; a build reads them and never reruns them, and `refresh`
reruns only the steps that read them (`STUDY_STEPS`) when one changes. ``quick`` draws fewer
forecast draws and says so on the title page.

Steps that read expensive studies live in `estim.paper.studies`. Adding a section: write a step (outputs under
``generated/``, entered in the manifest by `Context.record`), add it to `STEPS`, and read its outputs from the
manuscript; the README's "The paper" says the same for authors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estim.io import atomic_path
from estim.paper import calibration, lists, studies
from estim.paper.context import Context, fit_spec, write_csv
from estim.paths import REPO_ROOT

PAPER_DIR = REPO_ROOT / "paper"


# ----------------------------------------------------------------------------------------------------------
# steps


def data(ctx: Context) -> list[Path]:
    """The synthetic data against the public figures they were calibrated to (``docs/calibration.md``)."""
    from estim.paper.numbers import Number, write_numbers
    from estim.simulate import DEFAULT_SEED, calibration_table, simulate

    ctx.say("simulating the shipped data for the calibration table …")
    table = calibration_table(simulate(seed=DEFAULT_SEED))
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "calibration.csv"),
        write_csv(record_types(), out / "tables" / "records.csv"),
    ]
    ratio = table["ratio"].astype(float)
    numbers = {
        "seed": Number(DEFAULT_SEED, "deterministic"),
        "figures": Number(len(table), "deterministic"),
        "within_25_percent": Number(int(((ratio - 1).abs() <= 0.25).sum()), "deterministic"),
    }
    paths.append(write_numbers(out / "numbers" / "data.json", numbers))
    inputs = [
        ctx.root / "estim" / "simulate",
        ctx.root / "estim" / "records" / "schemas.py",
        ctx.root / "data" / "sections.csv",
    ]
    return [ctx.record(p, data, inputs) for p in paths]


def record_types() -> pd.DataFrame:
    """The record types a dataset folder holds (estim's schemas): name, what a row is, whether required, and
    which columns hold personal keys (pseudonymised at ingestion)."""
    from estim.records.schemas import SCHEMAS

    return pd.DataFrame(
        [
            {
                "table": s.name,
                "row": s.description,
                "required": not s.optional,
                "columns": len(s.columns),
                "personal": ", ".join(s.personal),
            }
            for s in SCHEMAS.values()
        ]
    )


def _median_mcse(draws: Any) -> float:
    """The Monte Carlo error of the posterior median of N; N is a count, and where its draws tie at the
    median the error is that of its resolution, half a person."""
    from estim.errors import EstimInputError
    from estim.paper.numbers import mc_quantile

    try:
        return max(float(mc_quantile(draws, 0.5).mcse), 0.5)
    except EstimInputError:
        return 0.5


def _estimate(mle: Any) -> bool:
    """Whether a maximum-likelihood fit (None: the family has none) gives an estimate of N."""
    return mle is not None and mle.converged and not mle.boundary


def _profile_end(mle: Any, end: int) -> float:
    if not _estimate(mle) or not mle.profile:
        return float("nan")
    return float(mle.profile["ci95"][end])


def _reference_profile(reference: dict[str, Any], end: int) -> float:
    if reference.get("ci95_kind") == "profile likelihood":
        return float(reference["ci95"][end])
    if "profile_ci95" in reference:
        return float(reference["profile_ci95"][end])
    return float("nan")


def validation(ctx: Context) -> list[Path]:
    """estim against the established tools on public data: every benchmark spec in models/ that names its
    reference (the Dutch police records, the snowshoe hares, the Kosovo and UK lists), its maximum-likelihood
    and Bayesian estimates of N beside the published or R-package value (``data/benchmarks/references.toml``).
    Where the ML is on the boundary or did not converge, neither estimate is reported, only the note."""
    import re
    import tomllib

    from estim.errors import GateFailed
    from estim.paper.numbers import Number, write_numbers
    from estim.run.data import family_of
    from estim.run.mle import fit_mle
    from estim.run.spec import read_spec

    references = tomllib.loads(
        (ctx.root / "data" / "benchmarks" / "references.toml").read_text(encoding="utf-8")
    )
    rows, inputs = [], [ctx.root / "data" / "benchmarks"]
    for path in sorted((ctx.root / "models").glob("*.toml")):
        spec = read_spec(path)
        if spec.data.benchmark is None:
            continue
        found = re.search(r"references\.toml, ([\w.]+)\)", path.read_text(encoding="utf-8"))
        if not found:
            continue
        dataset, _, key = found.group(1).split(".", 2)
        reference = references[dataset]["estimates"][key]
        inputs.append(path)
        family = family_of(spec)
        # a Bayesian-only family (model averaging, latent classes): its Bayesian estimate stands alone
        mle = fit_mle(spec) if family.ml else None
        note = [] if mle is not None else ["no ML for this model"]
        n = np.full(1, np.nan)
        median_mcse = np.nan
        if reference.get("boundary"):
            note.append("the reference fails here too")
        if mle is not None and (mle.boundary or not mle.converged):
            # no estimate from these data: a Bayesian posterior there is the prior's, so none is reported
            note.insert(
                0,
                "ML on the boundary: no estimate from these data"
                if mle.boundary
                else "ML did not converge",
            )
        elif not family.bayesian:
            note.append("ML only")
        else:
            try:
                draws = fit_spec(ctx, path).tree["posterior"]["N"]
                n = draws.values.ravel()
                extra = [d for d in draws.dims if d not in ("chain", "draw")]
                if all(draws.sizes[d] == 1 for d in extra):  # the median's Monte Carlo error
                    median_mcse = _median_mcse(draws.isel({d: 0 for d in extra}))
            except GateFailed as e:  # reported in the table, never as a number
                note.append(f"Bayesian fit failed the gate ({', '.join(e.verdict.failed)})")
        rows.append(
            {
                "model": spec.name,
                "family": spec.family,
                "dataset": dataset,
                # the reference is the same estimator (else a related one, e.g. Chao's bound for Mh)
                "same_estimator": key in (spec.family, f"{spec.family}_regression"),
                "reference_model": key,
                "reference": float(reference.get("n_hat", np.nan)),
                "reference_from": str(reference.get("from", reference.get("note", ""))),
                "ml": float(mle.n_hat) if _estimate(mle) else np.nan,
                "ml_se": float(mle.se) if _estimate(mle) else np.nan,
                # the profile-likelihood interval, where the family has a likelihood in N
                "ml_profile_lower": _profile_end(mle, 0),
                "ml_profile_upper": _profile_end(mle, 1),
                "reference_profile_lower": _reference_profile(reference, 0),
                "reference_profile_upper": _reference_profile(reference, 1),
                "bayes_median": float(np.median(n)),
                "bayes_median_mcse": float(median_mcse) if median_mcse is not None else np.nan,
                "bayes_lower": float(np.quantile(n, 0.05)),
                "bayes_upper": float(np.quantile(n, 0.95)),
                "note": "; ".join(note),
            }
        )
    table = pd.DataFrame(rows)
    # how far the prior moves the Bayesian median from the MLE, in the MLE's standard errors
    table["bayes_minus_ml_se"] = (table["bayes_median"] - table["ml"]) / table["ml_se"]
    same = table[table["same_estimator"]]
    ml_error = (same["ml"] / same["reference"] - 1).abs().dropna()
    profile_error = pd.concat(
        [
            (same[f"ml_profile_{end}"] / same[f"reference_profile_{end}"] - 1).abs()
            for end in ("lower", "upper")
        ]
    ).dropna()
    pull = table["bayes_minus_ml_se"].abs().dropna()
    worst = pull.idxmax()
    numbers = {
        "models": Number(len(table), "deterministic"),
        "same_estimator": Number(int(len(ml_error)), "deterministic"),
        "max_ml_relative_error": Number(float(ml_error.max()), "deterministic"),
        "profile_compared": Number(int(len(profile_error) // 2), "deterministic"),
        "max_profile_relative_error": Number(float(profile_error.max()), "deterministic"),
        "bayes_compared": Number(int(len(pull)), "deterministic"),
        # the largest |Bayesian median − MLE| in SEs, with its median's Monte Carlo error
        "max_bayes_minus_ml_se": Number(
            float(pull.max()),
            "monte_carlo",
            float(table.at[worst, "bayes_median_mcse"] / table.at[worst, "ml_se"]),
        ),
        "max_bayes_minus_ml_model": Number(str(table.at[worst, "model"]), "deterministic"),
        # the specs whose ML is on the boundary, named in the text
        "boundary": Number(
            ", ".join(table.loc[table["note"].str.contains("boundary"), "model"]), "deterministic"
        ),
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "validation.csv"),
        write_numbers(out / "numbers" / "validation.json", numbers),
    ]
    return [ctx.record(p, validation, inputs) for p in paths]


def border(ctx: Context) -> list[Path]:
    """The border analysis: unobserved crossings per section and year against the simulator's truth."""
    from estim.families.border.report import border_figure
    from estim.paper.numbers import Number, mc_quantile, write_numbers
    from estim.report.figures import save_figure
    from estim.report.summary import summarise

    spec = ctx.root / "models" / "border.toml"
    truth = ctx.root / "data" / "synthetic" / "truth.nc"
    tree = fit_spec(ctx, spec).tree
    tables = summarise(tree, prob=0.9, truth=truth)["border"]
    inputs = [spec, ctx.root / "data" / "synthetic"]
    out = ctx.generated
    paths = [
        write_csv(pd.DataFrame(tables["sections"]), out / "tables" / "border_sections.csv"),
        write_csv(
            pd.DataFrame(tables["whole_border_by_year"]), out / "tables" / "border_years.csv"
        ),
    ]
    # a rate per year, as the report's: the total over the fitted months × 12 / their number (with the shipped
    # whole years the mean over the years, to the bit; records cut mid-year are not 11½ years divided by 12)
    total = tree["posterior"]["unobserved_border_year"].sum("year")  # (chain, draw)
    mean = total * 12 / tables["months"]["count"]
    covered = tables["truth"]
    n_sections, n_years = len(tables["sections"]), len(tables["whole_border_by_year"])
    numbers: dict[str, Any] = {
        "whole_border": {
            "median": mc_quantile(mean, 0.5, unit="crossings a year"),
            "lower": mc_quantile(mean, 0.05, unit="crossings a year"),
            "upper": mc_quantile(mean, 0.95, unit="crossings a year"),
            "truth": Number(float(tables["whole_border"]["truth"]), "deterministic"),
            "apprehensions": Number(
                float(tables["whole_border"]["apprehensions_per_year"]), "deterministic"
            ),
        },
        # interval ends move with the Monte Carlo draws: a count of covered cells is not exact across machines
        "covered": {
            "sections": Number(int(covered["sections_covered"]), "monte_carlo", mcse=0.5),
            "sections_of": Number(n_sections, "deterministic"),
            "border_years": Number(int(covered["border_years_covered"]), "monte_carlo", mcse=0.5),
            "border_years_of": Number(n_years, "deterministic"),
        },
        "fit_seconds": Number(float(tree.attrs.get("fit_seconds", 0.0)), "timing", unit="s"),
    }
    paths.append(write_numbers(out / "numbers" / "border.json", numbers))
    fig = out / "figures" / "border.png"
    fig.parent.mkdir(parents=True, exist_ok=True)
    paths.append(save_figure(border_figure(tables), fig))
    return [ctx.record(p, border, inputs) for p in paths]


def questions(ctx: Context) -> list[Path]:
    """The study's questions (scale, character, routes, causes) from the border fit."""
    from estim.families.border.questions import questions_figure, study_questions
    from estim.paper.numbers import Number, mc_quantile, write_numbers
    from estim.report.figures import save_figure

    spec = ctx.root / "models" / "border.toml"
    tree = fit_spec(ctx, spec).tree
    tables = study_questions(tree, prob=0.9)
    out = ctx.generated
    paths = [
        write_csv(t.reset_index(drop=True), out / "tables" / f"questions_{name}.csv")
        for name, t in tables.items()
    ]
    post = tree["posterior"]
    by_section = post["unobserved_section_year"].sum("year")  # (chain, draw, section)
    share = (
        100.0
        * by_section.sel(section=["omsk", "orenburg"]).sum("section")
        / by_section.sum("section")
    )
    from estim.families.border.questions import section_lengths

    length = section_lengths(tree)
    halving = 100.0 * (
        0.5 ** post["bypass_eta1"] - 1.0
    )  # % change of the bypass odds when waits halve
    numbers = {
        "study_sections_length_share": Number(
            round(100.0 * float(length[["omsk", "orenburg"]].sum() / length.sum()), 6),
            "deterministic",
            unit="% of the border's length",
        ),
        "halving_waits_bypass_odds": {
            q: mc_quantile(halving, p, unit="% change of the bypass odds")
            for q, p in (("median", 0.5), ("lower", 0.05), ("upper", 0.95))
        },
        "study_sections_share": {
            q: mc_quantile(share, p, unit="% of the border's unobserved crossings")
            for q, p in (("median", 0.5), ("lower", 0.05), ("upper", 0.95))
        },
        "bypass_eta1": {
            q: mc_quantile(post["bypass_eta1"], p)
            for q, p in (("median", 0.5), ("lower", 0.05), ("upper", 0.95))
        },
    }
    paths.append(write_numbers(out / "numbers" / "questions.json", numbers))
    fig = out / "figures" / "questions.png"
    fig.parent.mkdir(parents=True, exist_ok=True)
    paths.append(save_figure(questions_figure(tables), fig))
    return [ctx.record(p, questions, [spec, ctx.root / "data" / "synthetic"]) for p in paths]


def measures(ctx: Context) -> list[Path]:
    """The three measures' forecasts (every scenario), their figures, and their priors beside the data."""
    from estim.measures.figures import change_heatmap, fan_chart
    from estim.measures.forecast import BASELINE, forecast
    from estim.measures.spec import read_measures
    from estim.measures.summary import analogues, area_totals, forecast_table
    from estim.paper.numbers import Number, mc_quantile, write_numbers
    from estim.report.figures import save_figure
    from estim.run.data import fit_data

    spec = ctx.root / "models" / "border.toml"
    result = fit_spec(ctx, spec)
    tree = result.tree
    fitted_data = fit_data(tree, result.path)
    specs = read_measures("all")
    draws = 300 if ctx.quick else 1000
    ctx.say(f"forecasting the measures ({draws} draws) …")
    posterior = tree["posterior"].to_dataset()
    fc = forecast(
        fitted_data, posterior, specs, horizon=36, draws=draws, seed=int(tree.attrs["seed"])
    )
    fc.attrs["synthetic"] = str(tree.attrs.get("data_synthetic", "false"))
    out = ctx.generated
    paths = [
        write_csv(forecast_table(fc, 0.9), out / "tables" / "measures_changes.csv"),
        write_csv(
            analogues(specs, posterior, fitted_data, 0.9), out / "tables" / "measures_analogues.csv"
        ),
    ]
    totals = area_totals(fc, "unobserved").sel(area="whole border")  # (draw, scenario)
    base = totals.sel(scenario=BASELINE)
    scenarios: dict[str, Any] = {}
    for name in fc["scenario"].values[1:]:
        pct = (100.0 * (totals.sel(scenario=name) - base) / base).values
        scenarios[str(name).replace("+", "_and_")] = {
            "median": mc_quantile(pct, 0.5, unit="% change in unobserved crossings"),
            "lower": mc_quantile(pct, 0.05, unit="%"),
            "upper": mc_quantile(pct, 0.95, unit="%"),
            "p_reduction": Number(
                float(np.mean(pct < 0)),
                "monte_carlo",
                mcse=max(float(np.sqrt(np.mean(pct < 0) * np.mean(pct >= 0) / len(pct))), 1e-3),
            ),
        }
    numbers = {
        "draws": Number(int(fc.sizes["draw"]), "deterministic"),
        "start": Number(str(fc.attrs["start"]), "deterministic"),
        "baseline_per_year": mc_quantile(base.values, 0.5, unit="unobserved crossings a year"),
        "scenarios": scenarios,
    }
    paths.append(write_numbers(out / "numbers" / "measures.json", numbers))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths.append(save_figure(fan_chart(fc, prob=0.9), out / "figures" / "measures_fan.png"))
    paths.append(
        save_figure(change_heatmap(fc, prob=0.9), out / "figures" / "measures_heatmap.png")
    )
    inputs = [spec, ctx.root / "data" / "synthetic", ctx.root / "models" / "measures"]
    return [ctx.record(p, measures, inputs) for p in paths]


STEPS: tuple[Callable[[Context], list[Path]], ...] = (
    data,
    validation,
    border,
    questions,
    measures,
    studies.forecasts,
    studies.recovery,
    studies.sensitivity,
    studies.misspecification,
    lists.multiple_lists,
    lists.lists_recovery,
    calibration.sbc,
    calibration.stan_race,
    studies.provenance,
)
STUDY_STEPS: tuple[Callable[[Context], list[Path]], ...] = (
    studies.forecasts,
    studies.recovery,
    studies.sensitivity,
    studies.misspecification,
    lists.lists_recovery,
    calibration.sbc,
    calibration.stan_race,
    studies.provenance,
)
"""The steps that only read the committed studies in ``paper/inputs/`` (no fit): `refresh` reruns them."""


# ----------------------------------------------------------------------------------------------------------
# the build


def typeset(paper: Path, root: Path | None = None) -> Path:
    """Compile ``paper.typ`` to ``paper.pdf`` (Typst, offline; no timestamp, so rebuilds are identical).

    The manuscript reads only files under ``paper/`` (``generated/``), so the paper folder is Typst's root by
    default: a copy of it builds anywhere."""
    import typst

    pdf = paper / "paper.pdf"
    with atomic_path(pdf) as tmp:
        typst.compile(
            str(paper / "paper.typ"), output=str(tmp), root=str(root if root is not None else paper)
        )
    return pdf


def _write_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def refresh(
    paper: str | Path = PAPER_DIR,
    *,
    root: str | Path = REPO_ROOT,
    steps: tuple[Callable[[Context], list[Path]], ...] = STUDY_STEPS,
) -> list[Path]:
    """Rerun only ``steps`` (by default `STUDY_STEPS`, which fit nothing) and put their outputs in the existing
    manifest in place of what those steps made before; every other output and entry is left as it is. For a
    study's new committed output in ``paper/inputs/``: ``./run python -c "from estim.paper.build import
    refresh; refresh()"``, then typeset (`typeset`) or build."""
    ctx = Context(root=Path(root), paper=Path(paper), quick=False)
    path = ctx.generated / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    made_by = {f"{step.__module__}.{step.__qualname__}" for step in steps}
    outputs = [out for step in steps for out in step(ctx)]
    manifest = {k: v for k, v in manifest.items() if v.get("made_by") not in made_by}
    _write_manifest(path, {**manifest, **ctx.manifest})
    return outputs


def build(
    paper: str | Path = PAPER_DIR,
    *,
    quick: bool = False,
    root: str | Path = REPO_ROOT,
    progress: Callable[[str], None] | None = None,
    steps: tuple[Callable[[Context], list[Path]], ...] = STEPS,
    pdf: bool = True,
) -> dict[str, Any]:
    """Run every step, write the manifest and the build's own numbers (mode, timings), typeset the PDF."""
    from estim.paper.numbers import Number, write_numbers

    ctx = Context(root=Path(root), paper=Path(paper), quick=quick, progress=progress)
    start = time.perf_counter()
    timings = {}
    for step in steps:
        t0 = time.perf_counter()
        step(ctx)
        timings[step.__name__] = Number(round(time.perf_counter() - t0, 1), "timing", unit="s")
    mode = "quick" if quick else "full"
    # the mode is a number the manuscript reads; timings change with every build, so they live apart
    # (generated/timings.json, not committed) and number files stay byte-identical between builds
    write_numbers(ctx.generated / "numbers" / "build.json", {"mode": Number(mode, "deterministic")})
    write_numbers(ctx.generated / "timings.json", {"seconds": timings})
    manifest = _write_manifest(ctx.generated / "manifest.json", ctx.manifest)
    result: dict[str, Any] = {"mode": mode, "manifest": manifest}
    if pdf:
        ctx.say("typesetting paper.pdf …")
        result["pdf"] = typeset(ctx.paper)
    result["seconds"] = time.perf_counter() - start
    return result
