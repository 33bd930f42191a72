"""`estim forecast`: the three measures as counterfactual forecasts from a border fit."""

from __future__ import annotations

from pathlib import Path

import click

from estim.cli.common import (
    _figure_path,
    _fit_paths,
    _netcdf_out,
    _progress,
    _warn_spec_beside,
    cli,
    collect_warnings,
)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A --max-memory size in bytes, refused (exit 2) before any work if it is not one."""
    from estim.errors import EstimInputError
    from estim.measures.scenarios import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except EstimInputError as e:
        raise click.BadParameter(str(e)) from e


@cli.command("forecast")
@click.argument(
    "fit_path",
    metavar="FIT",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_fit_paths,
)
@click.option(
    "--measures",
    multiple=True,
    default=("all",),
    show_default=True,
    help="Comma-separated measure names (models/measures/NAME.toml) or spec paths, or 'all'; given "
    "twice, the lists are joined.",
)
@click.option(
    "--horizon", type=click.IntRange(1, 240), default=36, show_default=True, help="Months."
)
@click.option(
    "--start",
    default=None,
    metavar="YYYY-MM",
    help="First forecast month, and every measure's start (default: the month after the data; "
    "measures at their specs' start).",
)
@click.option("--draws", type=click.IntRange(10, 100_000), default=1000, show_default=True)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Random seed, a whole number >= 0 (default: the fit's seed).",
)
@click.option("--prob", type=click.FloatRange(0.5, 0.999), default=0.9, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_figure_path,
    help="Write the fan chart here, and the scenario × section heat map beside it (NAME_heatmap.EXT).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_netcdf_out,
    help="Save every draw as netCDF (NAME.nc; dims draw, scenario, section, month), with provenance. An "
    "existing file is replaced only if it is a forecast estim wrote (else give --force); never the FIT.",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing --out file even if it is not a forecast."
)
@click.option(
    "--by-category", is_flag=True, help="Keep the category dimension in --out (needs --out)."
)
@click.option(
    "--analogues", is_flag=True, help="Also print each measure's prior beside the data's analogue."
)
@click.option(
    "--trend-damping",
    type=click.FloatRange(0.01, 1.0),
    default=None,
    help="Fix the yearly damping of the trends beyond the data (1 = a straight line; default: the draws "
    "spread over 0.6, 0.7, 0.8, 0.9 and 1, since whether a trend persists is uncertain). Refused when the "
    "trends would move further beyond the data than the data's own span of years (docs/measures.md).",
)
@click.option(
    "--scenarios",
    "scenario_set",
    type=click.Choice(["combinations", "each"]),
    default="combinations",
    show_default=True,
    help="combinations: the baseline and every combination of the measures (2^n scenarios); each: the "
    "baseline, each measure alone and all together (n + 2), for many measures.",
)
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    callback=_size,
    help="Refuse, before any work, a forecast whose arrays would need more memory than this (e.g. 8GB, "
    "500MB; a bare number is GB). Default: half of this machine's memory.",
)
@click.option(
    "--level-sd",
    type=click.FloatRange(0.0, 2.0),
    default=None,
    help="Random-walk sd of each category's log level per √year (default 0.05).",
)
def forecast_cmd(
    fit_path: Path,
    measures: tuple[str, ...],
    horizon: int,
    start: str | None,
    draws: int,
    seed: int | None,
    prob: float,
    fmt: str,
    figure: Path | None,
    out: Path | None,
    force: bool,
    by_category: bool,
    analogues: bool,
    trend_damping: float | None,
    level_sd: float | None,
    scenario_set: str,
    max_memory: float | None,
) -> None:
    """How each measure, and each combination, would change illegal crossings (border model fits).

    From the fit's posterior: the baseline (no measure), each measure in models/measures/ and every
    combination (with --scenarios each: each measure alone and all together), over HORIZON months. Prints
    per scenario the change in unobserved crossings and in attempts per year against the baseline, for the
    whole border and per section: median, interval and the probability of a reduction; then each measure's
    effects as read from their specs, with the multiplier at full strength. Draws carry the parameters' uncertainty, the effect sizes' priors and the
    counts' own noise, with common random numbers across scenarios. Refuses a fit that failed its
    diagnostics gate (exit 3), data that changed since the fit, and a forecast too large for --max-memory
    (exit 2).
    """
    import dataclasses

    from estim.errors import EstimInputError
    from estim.measures.forecast import ForecastSettings, forecast
    from estim.measures.scenarios import scenario_count
    from estim.measures.spec import read_measures
    from estim.measures.store import fit_hash
    from estim.measures.summary import (
        analogues as analogue_rows,
    )
    from estim.measures.summary import (
        effects_table,
        forecast_json,
        forecast_table,
        format_analogues,
        format_effects,
        format_forecast,
    )
    from estim.run import store
    from estim.run.data import fit_data

    if by_category and out is None:
        raise click.UsageError(
            "--by-category needs --out: it keeps the category dimension in the saved draws "
            "(the printed tables are by section only)",
            ctx=click.get_current_context(),
        )
    said = collect_warnings() if fmt == "json" else []  # a JSON reader sees only stdout
    # each --measures given is read (click would keep only the last of a plain option: one measure dropped)
    specs = read_measures(",".join(measures))  # bad names fail before the slow work
    if out is not None:
        from estim.measures.store import check_out

        check_out(out, fit_path, force=force)
    tree = store.load_result(fit_path)
    if str(tree.attrs.get("family")) != "border":
        raise EstimInputError(
            f"{fit_path}: a fit of family {tree.attrs.get('family')!r}; forecasts of the measures need a "
            "border model fit"
        )
    _progress(f"reading the data of {fit_path} and checking them against the fit")
    data = fit_data(tree, fit_path)
    _warn_spec_beside(tree, fit_path)
    settings = ForecastSettings()
    changes = {
        k: v
        for k, v in {"trend_damping": trend_damping, "level_sd": level_sd}.items()
        if v is not None
    }
    settings = dataclasses.replace(settings, **changes)
    seed = int(tree.attrs.get("seed", 0)) if seed is None else seed
    posterior = tree["posterior"].to_dataset()
    available = posterior.sizes["chain"] * posterior.sizes["draw"]
    if draws > available:  # one forecast draw per posterior draw at most: said, not silently fewer
        _progress(
            f"--draws {draws:,}: the fit has {available:,} posterior draws, so the forecast has {available:,} "
            "(one per posterior draw; refit with more [sampler] draws for more)"
        )
        draws = available
    _progress(
        f"forecasting {scenario_count(len(specs), scenario_set)} scenarios × {horizon} months at {draws} "
        f"draws (seed {seed})"
    )
    fc = forecast(
        data,
        posterior,
        specs,
        start=start,
        horizon=horizon,
        draws=draws,
        seed=seed,
        settings=settings,
        by_category=by_category,
        scenarios=scenario_set,
        max_memory=max_memory,
    )
    fc.attrs.update(
        {
            "fit": str(fit_path),
            "fit_hash": fit_hash(tree.attrs),
            "synthetic": str(tree.attrs.get("data_synthetic", "false")),
            "measures": ",".join(s.name for s in specs),
        }
    )
    table = forecast_table(fc, prob)
    analogue_table = analogue_rows(specs, posterior, data, prob) if analogues else None
    if out is not None:
        from estim.measures.store import save_forecast

        save_forecast(fc, out)
        click.echo(f"wrote {out}", err=True)
    if figure is not None:
        from estim.measures.figures import change_heatmap, fan_chart
        from estim.report.figures import save_figure

        heatmap = figure.with_name(f"{figure.stem}_heatmap{figure.suffix}")
        save_figure(fan_chart(fc, prob=prob), figure)
        save_figure(change_heatmap(fc, prob=prob), heatmap)
        click.echo(f"wrote {figure} and {heatmap}", err=True)
    effect_table = effects_table(specs, prob)  # what the forecast read: M at full strength
    if fmt == "json":
        click.echo(forecast_json(fc, table, analogue_table, effect_table, prob, warned=said))
        return
    click.echo(format_forecast(fc, table, prob))
    click.echo("")
    click.echo(format_effects(effect_table, prob))
    if analogue_table is not None:
        click.echo("")
        click.echo(format_analogues(analogue_table, prob))
