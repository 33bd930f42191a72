"""The `estim` command: a thin layer over the Python API.

Exit codes: 0 ok; 1 internal error (a bug: please report it); 2 bad input (the message says what to fix);
3 a fit failed the diagnostics gate (or a maximum-likelihood fit has no estimate): not a result; 4 `estim
paper --verify` found generated numbers that differ from the committed ones.
Set ESTIM_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from estim.cli.common import (  # noqa: F401 - the group and the helpers the commands below share
    EXIT_GATE,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    _fail_input,
    _figure_path,
    _fit_paths,
    _netcdf_out,
    _progress,
    _text_out,
    _truth_path,
    _warn_spec_beside,
    cli,
)
from estim.errors import EstimInputError, GateFailed


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option(
    "--max-errors", type=int, default=200, show_default=True, help="Stop listing after this many."
)
def validate(path: Path | None, max_errors: int) -> None:
    """Check record files against their schemas; list every violation.

    PATH is a record file (its name says its type: apprehensions.csv, checkpoint_records.parquet, …) or a
    folder of them (default: the shipped synthetic data). Each violation names the file, the row as counted in
    the file (the header is line 1), the column and the rule broken. Exit 0 when clean, 2 otherwise.
    """
    from estim.paths import SYNTHETIC_DIR
    from estim.records import validate_path

    report = validate_path(path or SYNTHETIC_DIR, cap=max_errors)
    if report.ok:
        click.echo(f"ok: {report.describe_checked()}")
        return
    click.echo(str(report), err=True)
    sys.exit(EXIT_INPUT)


@cli.group()
def data() -> None:
    """Look at record sets."""


@data.command("summary")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def data_summary_cmd(path: Path | None, fmt: str) -> None:
    """Per section: records, distinct people, apprehensions, re-apprehension rate, legal crossings, mean wait.

    PATH is a folder of records (default: the shipped synthetic data). The records are validated first.
    """
    from estim.statistics import data_summary

    records = _load(path)
    table = data_summary(records)
    if fmt == "json":
        click.echo(json.dumps(_plain_rows(table), indent=2))
    elif fmt == "csv":
        click.echo(table.to_csv(), nl=False)
    else:
        click.echo(_format_table(table))


def _plain_rows(table: Any) -> dict[str, dict[str, Any]]:
    """A table's rows as JSON-able dicts at full precision (pandas' to_json rounds to 10 decimals); a missing
    value is null, an integer column's values integers."""
    import pandas as pd

    def plain(v: Any) -> Any:
        return None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)

    # column by column: a row of only numbers would come out of iterrows as floats (8286.0)
    columns = {str(col): [plain(v) for v in table[col].tolist()] for col in table.columns}
    return {
        str(index): {col: values[i] for col, values in columns.items()}
        for i, index in enumerate(table.index)
    }


def _refuse_other_netcdf(out: Path) -> None:
    """Refuse to write statistics over a file that is not a statistics file: `--out truth.nc` in a simulated
    folder replaced its ground truth, exit 0."""
    import xarray as xr

    try:
        with xr.open_dataset(out) as existing:
            title = str(existing.attrs.get("description", existing.attrs.get("title", "")))
    except Exception:  # noqa: BLE001 - whatever it is, it is not a statistics file
        title = ""
    if not title.startswith("Sufficient statistics"):
        what = f"described as {title[:60]!r}" if title else "not a netCDF file estim wrote"
        raise EstimInputError(
            f"--out {out}: the file exists and is not a statistics file ({what}); give another name, or "
            "--force to replace it"
        )


@data.command("statistics")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    callback=_netcdf_out,
    help="netCDF file to write (NAME.nc).",
)
@click.option(
    "--period",
    type=click.Choice(["year", "quarter", "month"]),
    default="year",
    show_default=True,
    help="Period of the frequency tables and capture histories.",
)
@click.option(
    "--occasion",
    type=click.Choice(["quarter", "month", "none"]),
    default="quarter",
    show_default=True,
    help="Capture occasions within a period.",
)
@click.option(
    "--force", is_flag=True, help="Overwrite an existing .nc that is not a statistics file."
)
def data_statistics_cmd(
    path: Path | None, out: Path, period: str, occasion: str, force: bool
) -> None:
    """Write the sufficient statistics of a record set (counts only, no person keys) as netCDF.

    PATH is a folder of records (default: the shipped synthetic data); they are validated first and nothing is
    written if they are invalid. The file is written atomically. An existing --out that is not a statistics
    file (a simulation's truth.nc, a fit) is refused unless --force.
    """
    from estim.io import atomic_write
    from estim.statistics import sufficient_statistics

    if out.exists() and not force:
        _refuse_other_netcdf(out)

    records = _load(path)
    stats = sufficient_statistics(
        records, period=period, occasion=None if occasion == "none" else occasion
    )
    atomic_write(out, lambda p: stats.to_netcdf(p))
    click.echo(f"wrote {out}: " + ", ".join(f"{d}={n}" for d, n in stats.sizes.items()))


def _load(path: Path | None) -> object:
    """Validated, pseudonymised records of `path`, or of the shipped synthetic data when None."""
    from estim.paths import SYNTHETIC_DIR
    from estim.records import DEFAULT_KEY, load_records

    if path is None:  # the public default key is what the synthetic data are meant for: no warning
        return load_records(SYNTHETIC_DIR, key=DEFAULT_KEY, progress=True)
    if path.is_file():  # the API's message names Python functions
        raise EstimInputError(
            f"{path} is a file: give the folder of record files it belongs to ({path.parent}); "
            f"`estim validate {path}` checks one file"
        )
    return load_records(path, progress=True)


_TRUTH_OPTION = click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_truth_path,
    help="Synthetic data: the simulator's truth.nc, shown beside the estimates (border model).",
)
_PARAMETERS_OPTION = click.option(
    "--parameters", is_flag=True, help="Also list the model's parameters (median and interval)."
)


def _format_table(table: object) -> str:
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.3f}".format
    ):
        return table.to_string()


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to simulate (default: a temporary folder).",
)
def demo(out: Path | None) -> None:
    """The main job on the shipped SYNTHETIC data: simulate, check, validate, summarise.

    Re-simulates the shipped dataset from its seed and checks it is byte-identical to data/synthetic/, validates
    data/synthetic/, and prints the per-section data summary.
    """
    from estim import simulate as sim
    from estim.paths import SYNTHETIC_DIR
    from estim.records import validate_path
    from estim.statistics import data_summary

    click.echo(f"1/3 simulating the synthetic border at seed {sim.DEFAULT_SEED} …")
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / "synthetic"
        sim.write_simulation(sim.simulate(seed=sim.DEFAULT_SEED, progress=True), target)
        differing = sim.compare_folders(target, SYNTHETIC_DIR)
    if differing:
        _fail_input(
            f"the shipped data/synthetic/ differ from a fresh simulation: {', '.join(differing)}"
        )
    click.echo("    identical to data/synthetic/ byte for byte")
    click.echo("2/3 validating data/synthetic/ …")
    report = validate_path(SYNTHETIC_DIR)
    if not report.ok:
        click.echo(str(report), err=True)
        sys.exit(EXIT_INPUT)
    click.echo(f"    ok: {report.describe_checked()}")
    click.echo("3/3 per-section summary of the SYNTHETIC records:")
    click.echo(_format_table(data_summary(_load(None))))


# --------------------------------------------------------------------------------------------------------------
# Fitting: estim fit / summary / check / compare
# --------------------------------------------------------------------------------------------------------------


@cli.command("fit")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Refit even when a cached fit with matching provenance exists, and save over the fit of another "
    "model (never over a file that is not a fit).",
)
@click.option(
    "--mle",
    is_flag=True,
    help="Maximum-likelihood fit instead (printed, not saved: --out and --truth are refused with it).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_netcdf_out,
    help="Where to save the fit, a netCDF file (default: NAME.nc beside the spec).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output as text or JSON (--mle; a Bayesian fit's JSON is what `estim summary` gives).",
)
@_TRUTH_OPTION
@_PARAMETERS_OPTION
def fit_cmd(
    spec_path: Path,
    force: bool,
    mle: bool,
    out: Path | None,
    fmt: str,
    truth: Path | None,
    parameters: bool,
) -> None:
    """Fit the model spec SPEC (models/NAME.toml) and save it as models/NAME.nc.

    A saved fit whose provenance (spec hash, data hash, library versions) matches is reused. Refused before
    any work (exit 2): saving where the file cannot be written, over a file that is not a fit, over the fit
    of another model (without --force), or as NAME.nc when NAME.toml beside it is another spec. A family may test
    its assumptions on the data before sampling (the border model: the repeat apprehensions against its
    geometric law); data that fail are not fitted, and the command exits 3 naming the test. Every fit is
    checked by the diagnostics gate (R-hat, bulk and tail ESS, divergences, E-BFMI); a failed fit is saved,
    marked failed, and the command exits 3 naming the failed checks. Then prints what `estim summary` prints,
    and the wall time of the fit, compilation included. Takes seconds for the benchmark specs and 4–6
    minutes for the border model on 2 cores (248 s measured idle, compiling included). A failed
    fit is retried ([sampler] retries, 2 by default) at a higher target_accept with twice the draws each
    time; every attempt is printed and recorded in the fit file.

    With --mle: N-hat, SE, 95 % interval, log-likelihood and every parameter at full precision (--format
    json: as JSON); exit 3 when the maximum is on the boundary or did not converge (no estimate then).
    """
    from estim.report.summary import format_attempts, format_summary, mle_report, summarise
    from estim.run import store
    from estim.run.fit import fit
    from estim.run.spec import read_spec

    if mle and (out is not None or truth is not None):
        given = "--out" if out is not None else "--truth"
        raise click.UsageError(
            f"{given} is for a Bayesian fit (saved as netCDF, compared with a truth file); --mle prints the "
            "maximum-likelihood fit and saves nothing: to keep it, write it as JSON "
            "(estim fit SPEC --mle --format json > FILE.json)"
        )
    spec = read_spec(spec_path)
    if mle:
        text, problem = mle_report(spec, json_output=fmt == "json")
        if text:
            click.echo(text)
        if problem:
            click.echo(f"estim: {spec.name}: {problem}", err=True)
            sys.exit(EXIT_GATE)
        return
    # before any work: where it cannot be written, over a file that is not a fit or the fit of another model
    store.check_out(out or spec.default_output(), spec.name, force=force)
    result = fit(spec, out=out, force=force, progress=_progress)
    how = "reused cached fit" if result.reused else f"fitted in {result.seconds:.1f} s"
    how += f" ({len(result.attempts)} attempts)" if len(result.attempts) > 1 else ""
    click.echo(f"{spec.name}: {how} -> {result.path}", err=fmt == "json")
    if not result.passed:
        if len(result.attempts) > 1:
            click.echo("\n".join(format_attempts(result.attempts)), err=True)
        raise GateFailed(result.verdict, str(result.path))
    summary = summarise(store.load(result.path), truth=truth)
    if fmt == "json":
        click.echo(json.dumps({**summary, "file": str(result.path)}, indent=2, default=str))
    else:
        click.echo(format_summary(summary, parameters=parameters))


@cli.command("summary")
@click.argument(
    "fit_path",
    metavar="FIT",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_fit_paths,
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--prob", type=click.FloatRange(0.5, 0.999), default=0.9, show_default=True,
              help="Probability of the central interval.")  # fmt: skip
@_TRUTH_OPTION
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_figure_path,
    help="Border model: save the per-section and whole-border figure here (png, pdf, svg).",
)
@_PARAMETERS_OPTION
def summary_cmd(
    fit_path: Path,
    fmt: str,
    prob: float,
    truth: Path | None,
    figure: Path | None,
    parameters: bool,
) -> None:
    """What a saved fit says: N-hat or the family's own tables, each column explained, and the gate verdict.

    A fit that failed the diagnostics gate is not summarised as a result: it prints FAILED with the failed
    checks and exits 3. A fit of your own data file or record folder is refused (exit 2) when its data changed
    since the fit (the fit's data hash); a file saved again with the same data passes. A WARNING heads the
    summary when the fit's spec beside it (NAME.toml) was edited since the fit, or when the file is named
    after another spec beside it (copied or renamed): the numbers are not that spec's.
    """
    from estim.report.figures import save_figure
    from estim.report.summary import family_of_fit, format_summary, summarise
    from estim.run import store
    from estim.run.data import fit_data_file

    tree = store.load(fit_path)
    # the estimates are of the data as they were: refuse to present them as of a file that says otherwise now
    fit_data_file(tree, fit_path)
    summary = summarise(tree, prob=prob, truth=truth)
    summary["file"] = str(fit_path)
    # its spec beside it edited since, or the file named after another spec: said at the summary's head
    beside = store.spec_beside(tree, fit_path)
    if beside is not None:
        summary["warning"] = beside
    if figure is not None:
        family = family_of_fit(tree)
        if family is None or family.report is None or family.name not in summary:
            raise EstimInputError(
                "--figure applies to fits that passed the gate, of families with their own report "
                "(the border model)"
            )
        save_figure(family.report.figure(summary[family.name]), figure)
        click.echo(f"wrote {figure}", err=True)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        click.echo(format_summary(summary, parameters=parameters))
    if not summary["gate"]["passed"]:
        sys.exit(EXIT_GATE)


@cli.command("sensitivity")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Refit the variants even when cached fits match.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--workers",
    type=int,
    default=0,
    show_default=True,
    help="Fit the variants as tasks on a LocalCluster of this many one-thread worker processes "
    "(0: here, one after another).",
)
@click.option(
    "--scheduler",
    default=None,
    help="Fit the variants on the dask scheduler at this address instead.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_text_out,
    help="Write the report to this file, whole or not at all (a shell's > would empty it first, and a "
    "stopped run would leave it empty).",
)
def sensitivity_cmd(
    spec_path: Path,
    force: bool,
    fmt: str,
    workers: int,
    scheduler: str | None,
    out: Path | None,
) -> None:
    """Prior sensitivity: refit SPEC with some priors changed and report how its headline estimate moves.

    The family says which priors and which estimate: for the border model, the prior of the apprehension
    probability widened and shifted, the retry probability fixed at 1 (repeated trials) or 0.7 or under a
    strong prior, the registers' coverage uniform, the linkage's background after a journey 0.7 or 1.4 times
    the one before, and a person-level frailty of the apprehension hazard; the estimate watched is the
    whole-border unobserved crossings per year. What it does not vary, the report says.

    Each variant is saved beside the spec as NAME__VARIANT.nc (and reused when its provenance matches, so a
    stopped run resumes; a variant is saved only when its fit ends, except that the two frailty variants run
    their four chains in two groups of two, each saved when it ends). The border model's 13 fits take about 7
    hours on 2 cores (at revision 6: 3–14 min each, a frailty variant's chain group ~1–1.5 h); progress is
    shown on stderr. The table also names the predictive checks each variant fails.
    """
    from estim.run.spec import read_spec
    from estim.studies.distributed import optional_client
    from estim.studies.sensitivity import design_of, format_sensitivity, prior_sensitivity

    spec = read_spec(spec_path)
    design = design_of(spec)
    with optional_client(workers, scheduler) as client:
        rows = prior_sensitivity(spec, force=force, progress=_progress, client=client)
    text = json.dumps(rows, indent=2) if fmt == "json" else format_sensitivity(rows, design)
    if out is None:
        click.echo(text)
        return
    from estim.io import atomic_path

    with atomic_path(out) as tmp:
        Path(tmp).write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {out}", err=True)


@cli.command("check")
@click.argument(
    "fit_path",
    metavar="FIT",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_fit_paths,
)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_figure_path,
    help="Save the posterior predictive figure here (png, pdf, svg).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Exit 3 when a check fails.")
def check_cmd(fit_path: Path, figure: Path | None, fmt: str, strict: bool) -> None:
    """Prior and posterior predictive checks, each with a verdict.

    Single-register and closed-population fits: per cell of f_k (people seen k times) or of the capture
    histories, the observed count beside the predictive median and 90 % interval, and Bayesian p-values of a
    chi-square and a Freeman–Tukey discrepancy; a posterior predictive check fails when a p-value is below
    0.05 or above 0.95. The border model: the share of observed monthly totals and repeat frequencies inside
    their 90 % predictive intervals, and the register linkage's sighting patterns by the posterior predictive
    p-value of a chi-square discrepancy. Only for fits that passed the gate (else exit 3); with --strict, a
    failed check exits 3 too, and so does a fit without posterior predictive draws (its check is NOT MADE,
    said in the output, never left to read as the prior check's ok).
    """
    from estim.report.checks import check_fit, ppc_figure
    from estim.report.figures import save_figure
    from estim.report.summary import family_of_fit
    from estim.run import store
    from estim.run.data import fit_data_file

    tree = store.load_result(fit_path)
    fit_data_file(tree, fit_path)  # checks of a fit are of its data as they were
    _warn_spec_beside(tree, fit_path)
    family = family_of_fit(tree)
    if family is not None and family.report is not None:
        check = family.report.check(tree)
        text = family.report.format_check(check)
        verdicts = check.get("verdicts", {})
        payload = check
    else:
        if figure is not None and "posterior_predictive" not in tree.children:
            raise EstimInputError(f"{fit_path}: no posterior predictive draws to plot")
        text, verdicts, payload = check_fit(tree, str(fit_path))
    click.echo(json.dumps(payload, indent=2) if fmt == "json" else text)
    if figure is not None:
        fig = family.report.check_figure(tree) if family and family.report else ppc_figure(tree)
        save_figure(fig, figure)
        click.echo(f"wrote {figure}", err=True)
    failed = [name for name, v in verdicts.items() if not v["passed"]]
    if strict and failed:
        click.echo(f"estim: {fit_path}: predictive check failed: {', '.join(failed)}", err=True)
        sys.exit(EXIT_GATE)


@cli.command("compare")
@click.argument(
    "fit_paths",
    metavar="FIT...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_fit_paths,
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def compare_cmd(fit_paths: tuple[Path, ...], fmt: str) -> None:
    """PSIS-LOO comparison of fits of the same observations (best first).

    Refuses a fit that failed the diagnostics gate (exit 3), and with exit 2: fits of different data (other
    counts, or the same counts in cells labelled otherwise: another period, stratum or occasion definition),
    fits whose likelihoods use different cells, one fit given twice (the same file, or a copy: the same spec
    and data hashes), which would compare a model with itself, and fits that give every individual the same
    log-likelihood at every draw (Zelterman and Chao, say), which LOO cannot rank.
    """
    from estim.report.compare import compare, compare_json, format_compare

    table = compare(list(fit_paths))
    click.echo(compare_json(table) if fmt == "json" else format_compare(table))


def main() -> None:
    """Entry point of the `estim` command."""
    cli(prog_name="estim")


# The commands kept in their own modules add themselves to `cli` when imported (after `cli` exists).
from estim.cli import forecast as _forecast  # noqa: E402, F401
from estim.cli import paper as _paper  # noqa: E402, F401
from estim.cli import report as _report  # noqa: E402, F401
from estim.cli import simulate as _simulate  # noqa: E402, F401

if __name__ == "__main__":
    main()
