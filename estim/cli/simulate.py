"""`estim simulate`: the synthetic border's records and their ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from estim.cli.common import _fail_input, cli
from estim.errors import EstimInputError
from estim.simulate.config import MAX_YEARS
from estim.simulate.frailty import frailty_sd_problem


def effect_range(effect: Any) -> tuple[float, float, bool]:
    """The values an effect size may take: (low, high, ends included) (`EffectSpec.value_range`: the support
    of the effect's prior, cut to where the target's multiplier is ≥ 0)."""
    return effect.value_range()


def check_effect(measure: str, effect: Any, value: float) -> None:
    """Refuse an effect size outside its effect's domain (`effect_range`), naming effect, range and value."""
    effect.check_value(value, f"--effect {measure}.{effect.name}={value:g}")


_SIMULATION_FILES = ("truth.nc", "README.md", "SHA256SUMS")


def simulation_files() -> set[str]:
    """The names of every file `estim simulate` writes (estim.simulate.write_simulation)."""
    from estim.records.schemas import SCHEMAS

    return {f"{name}.csv" for name in SCHEMAS} | set(_SIMULATION_FILES)


def check_out_folder(out: Path, force: bool) -> None:
    """Refuse an --out folder that holds anything but a previous simulation's files, unless ``force``.

    A previous simulation is recognised by its SHA256SUMS, which lists its truth.nc and only files a simulation
    writes (real records shipped with their own checksums list no truth.nc), and every entry of the folder must
    be one of the files a simulation writes (no subfolders, no other files, no Parquet records); those are
    overwritten.
    """
    from estim.io import unwritable

    why = unwritable(out / "truth.nc")
    if why is not None:  # before the simulation's work, not as an internal error when it is written
        raise EstimInputError(f"--out {out}: the folder cannot be written: {why}")
    if force or not out.is_dir():
        return
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    if not entries:
        return
    ours = simulation_files()
    others = [e for e in entries if e not in ours]
    if others or not _lists_a_simulation(out / "SHA256SUMS"):
        shown = ", ".join((others or entries)[:8]) + (" …" if len(others or entries) > 8 else "")
        what = (
            f"files a simulation does not write: {shown}"
            if others
            else f"{shown}, but no SHA256SUMS of a previous simulation (one listing its truth.nc)"
        )
        raise EstimInputError(
            f"--out {out}: the folder is not empty ({what}); give an empty or new folder, one holding only a "
            "previous `estim simulate`'s files, or --force to write beside (and overwrite) what is there"
        )


def _lists_a_simulation(sums: Path) -> bool:
    """Whether `sums` is the SHA256SUMS of a simulation: "HASH  NAME" lines naming its truth.nc and only files a
    simulation writes (`write_simulation` writes it last, so the files it names were all written)."""
    try:
        if not sums.is_file() or sums.stat().st_size > 100_000:
            return False
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    names = {line.partition("  ")[2] for line in lines if line.strip()}
    return "truth.nc" in names and names <= simulation_files()


def _not_applied(owner: str, effect: str, specs: list[Any]) -> str:
    """A hint " (an effect of M, which is not applied: add --measure M)" when `effect` (of measure `owner`, if
    given) belongs to a shipped measure other than those applied; empty otherwise."""
    from estim.measures.spec import known_measures, read_measure

    applied = {s.name for s in specs}
    holders = [
        m
        for m in known_measures()
        if m not in applied
        and owner in ("", m)
        and effect in [e.name for e in read_measure(m).effects]
    ]
    if not holders:
        return ""
    add = " ".join(f"--measure {m}" for m in holders)
    return f" (an effect of {', '.join(holders)}, which is not applied: add {add})"


def _month_number(text: str) -> int:
    """Months since year 0 of a YYYY-MM month."""
    year, month = text.split("-")[:2]
    return 12 * int(year) + int(month) - 1


def _month_text(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


@cli.command()
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Random seed, a whole number ≥ 0 (default: the seed of the shipped data).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the records and truth.nc into (created if missing; if not empty, it may hold only "
    "a previous simulation's files, which are overwritten).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty --out folder whatever it holds (same-named files are overwritten).",
)
@click.option(
    "--years",
    type=click.IntRange(1, MAX_YEARS),
    default=None,
    help=f"Number of years to simulate from 2006-01 (default: 12, 2006–2017; at most {MAX_YEARS}: the "
    "calibrated trends are not extrapolated further).",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--measure",
    "measures",
    multiple=True,
    metavar="NAME_OR_PATH",
    help="Apply a measure (models/measures/NAME.toml, or a spec's path) with known effect sizes; repeatable.",
)
@click.option(
    "--measure-start",
    metavar="YYYY-MM",
    default=None,
    help="First month in force of every --measure, within the simulated period (default: each spec's "
    "start).",
)
@click.option(
    "--effect",
    "effects",
    multiple=True,
    metavar="NAME=VALUE",
    help="An effect size by its effect's name (MEASURE.NAME if two measures have it; default: the prior "
    "median); repeatable.",
)
@click.option(
    "--displacement",
    type=float,
    default=None,
    help="Share of the journeys a measure prevents that move to the neighbouring sections (default: the spec's).",
)
@click.option(
    "--retry",
    type=float,
    default=None,
    help="Probability that a person apprehended tries again (default 1: Espenshade's repeated trials).",
)
@click.option(
    "--frailty",
    type=float,
    default=None,
    help="Spread (sd of the log) of a person-level frailty of the apprehension hazard (default 0: none).",
)
def simulate(
    seed: int | None,
    out: Path,
    force: bool,
    years: int | None,
    quiet: bool,
    measures: tuple[str, ...],
    measure_start: str | None,
    effects: tuple[str, ...],
    displacement: float | None,
    retry: float | None,
    frailty: float | None,
) -> None:
    """Simulate every record type of the Russia–Kazakhstan border, with the ground truth.

    Writes sections, checkpoints, checkpoint_records, apprehensions (Omsk and Orenburg only, one row per
    apprehension), apprehension_totals (the other ten sections, monthly), registers, policy_events as CSV,
    the true attempts / apprehensions / unobserved crossings and every parameter as truth.nc, and SHA256SUMS.
    The same seed gives byte-identical files. The output is SYNTHETIC.

    With --measure the records are those of the world with the measures, and truth.nc also holds the same
    seed's baseline without them (baseline_journeys, baseline_unobserved, …; docs/simulator.md, Measures).
    --retry and --frailty make data the border model's default assumptions do not hold for (people who give
    up after an apprehension; people caught more easily than others), to see what a fit makes of them.
    """
    import dataclasses
    import re

    from estim import simulate as sim

    check_out_folder(out, force)
    applied = []
    if measures:
        from estim.measures.spec import read_measure

        if measure_start is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", measure_start):
            _fail_input(f"--measure-start {measure_start!r}: a month YYYY-MM, e.g. 2018-01")
        if displacement is not None and not 0.0 <= displacement <= 1.0:
            _fail_input(
                f"--displacement {displacement!r}: not a share in [0, 1] (the share of the journeys a "
                "measure prevents that move to the neighbouring sections)"
            )
        specs = [read_measure(m) for m in measures]
        if len({s.name for s in specs}) != len(specs):
            _fail_input(f"--measure: a measure is named twice: {', '.join(s.name for s in specs)}")
        values: dict[str, dict[str, float]] = {s.name: {} for s in specs}
        known = ", ".join(f"{s.name}.{e.name}" for s in specs for e in s.effects)
        for text in effects:
            name, eq, value = text.partition("=")
            try:
                number = float(value) if eq else None
            except ValueError:
                number = None
            if number is None:
                _fail_input(f"--effect {text!r}: NAME=VALUE with a number, e.g. take_up=0.4")
            owner, _, effect = name.strip().rpartition(".")
            owners = [
                s for s in specs if owner in ("", s.name) and effect in [e.name for e in s.effects]
            ]
            if len(owners) != 1:
                why = (
                    "no measure given has"
                    if not owners
                    else "several measures have (write MEASURE.NAME)"
                )
                _fail_input(
                    f"--effect {name}: {why} that effect{_not_applied(owner, effect, specs)}; known: {known}"
                )
            given = values[owners[0].name]
            if effect in given:  # the last of two values was taken without a word
                _fail_input(
                    f"--effect {owners[0].name}.{effect}: given twice ({given[effect]:g} and {number:g}); "
                    "give each effect once"
                )
            check_effect(owners[0].name, owners[0].effect(effect), number)  # type: ignore[arg-type]
            given[effect] = number  # type: ignore[assignment]
        applied = [
            s.applied(values=values[s.name] or None, start=measure_start, displacement=displacement)
            for s in specs
        ]
    elif effects or measure_start is not None or displacement is not None:
        _fail_input("--measure-start, --effect and --displacement need a --measure")
    changes: dict[str, Any] = {} if years is None else {"years": years}
    if retry is not None:
        changes["retry_probability"] = retry
    if frailty is not None:
        problem = frailty_sd_problem(frailty)
        if problem:
            _fail_input(f"--frailty {frailty:g}: {problem} (apprehension_frailty_sd)")
        changes["apprehension_frailty_sd"] = frailty
    try:  # the measures are checked against the period below, then added
        config = sim.SimulationConfig(**changes)
    except ValueError as e:  # the config's own checks name the field and its range
        message = str(e).removeprefix("SimulationConfig.")
        if "retry_probability" in message:
            message = f"--retry {retry}: not a probability in [0, 1] (retry_probability)"
        elif "frailty" in message:
            message = f"--frailty {frailty:g}: not a finite number ≥ 0 (apprehension_frailty_sd)"
        _fail_input(message)

    first = _month_number(config.start_month)
    last = first + 12 * config.years - 1
    period = f"{config.start_month} to {_month_text(last)}"
    # nothing documents a measure in force before the first simulated month (docs/simulator.md §8 counts its
    # lag and ramp from a start in the period), and one that acts only after the period simulates nothing (the
    # world with it is the baseline): both refused, here in the options' terms and by SimulationConfig too
    if measure_start is not None and not first <= _month_number(measure_start) <= last:
        _fail_input(
            f"--measure-start {measure_start}: outside the simulated period {period} "
            f"({config.years} year{'s' if config.years != 1 else ''} from {config.start_month}, --years); "
            "give a month within it, or more --years"
        )
    for m in applied:
        if _month_number(m.start_month) < first:
            _fail_input(
                f"measure {m.name}: its spec's start {m.start_month} is before the simulated period "
                f"{period}; give --measure-start within it"
            )
        acts = _month_number(m.start_month) + m.lag_months
        if acts > last:
            _fail_input(
                f"measure {m.name}: starts {m.start_month} and acts from {_month_text(acts)} (lag "
                f"{m.lag_months} months), after the simulated period {period}; give "
                + ("an earlier --measure-start" if measure_start else "--measure-start within it")
                + ", or more --years"
            )
    if applied:
        try:
            config = dataclasses.replace(config, measures=tuple(applied))
        except ValueError as e:
            _fail_input(str(e).removeprefix("SimulationConfig."))
    for m in applied:
        text = "; ".join(
            f"{e.target} × {e.multiplier:.4g}"
            + (f" ({', '.join(e.categories)})" if e.categories else "")
            for e in m.effects
        )
        click.echo(
            f"measure {m.name} from {m.start_month} (lag {m.lag_months}, ramp {m.ramp_months} months, "
            f"displacement {m.displacement:g}) at full strength: {text}"
        )
    try:
        result = sim.simulate(
            seed=sim.DEFAULT_SEED if seed is None else seed, config=config, progress=not quiet
        )
    except EstimInputError as e:
        # the hazards' check names the config field; say which option set it (a measure's multiplier is
        # named by its own message, which does not start with "SimulationConfig: ")
        text = str(e)
        if frailty is None or not text.startswith("SimulationConfig: ") or "frailest" not in text:
            raise
        _fail_input(
            f"--frailty {frailty:g}: {text.removeprefix('SimulationConfig: ')}; give a smaller one"
        )
    paths = sim.write_simulation(
        result,
        out,
        command=_command(
            result.seed, years, measures, measure_start, effects, displacement, retry, frailty
        ),
    )
    click.echo(f"wrote {len(paths)} files to {out} (synthetic, seed {result.seed})")
    _check_written(out, config)


def _check_written(out: Path, config: Any) -> None:
    """Exit 2 when the records written break the rules estim reads records by: the calibrated 2006–2017
    trends extrapolated over many --years (refusals of entry grow ~48 % a year) can leave a checkpoint's
    plausible range, and `estim validate`, `estim data` and every fit would then refuse the folder, later and
    far from the cause (seed 4 over 15 years: 22,273 refusals in a month at one checkpoint)."""
    from estim.records import validate_path

    report = validate_path(out, cap=3)
    if report.ok:
        return
    last = _month_text(_month_number(config.start_month) + 12 * config.years - 1)
    first = report.violations[0]
    _fail_input(
        f"the records written to {out} break {report.total:,} of the rules estim reads records by (first: "
        f"{Path(first.file).name} line {first.row}, column {first.column}: {first.rule}: {first.message}): "
        f"the simulation runs to {last}, and the calibrated 2006–2017 trends extrapolated that far leave "
        "the plausible ranges, so `estim validate`, `estim data` and fits will refuse the folder; simulate "
        "fewer --years or another --seed"
    )


def _command(
    seed: int,
    years: int | None,
    measures: tuple[str, ...],
    measure_start: str | None,
    effects: tuple[str, ...],
    displacement: float | None,
    retry: float | None,
    frailty: float | None,
) -> str:
    """The `estim simulate` options that make the same folder again (the folder and --quiet left out)."""
    import shlex

    parts = ["estim simulate", f"--seed {seed}"]
    parts += [f"--years {years}"] if years is not None else []
    parts += [f"--measure {shlex.quote(m)}" for m in measures]
    parts += [f"--measure-start {measure_start}"] if measure_start is not None else []
    parts += [f"--effect {shlex.quote(e)}" for e in effects]
    parts += [f"--displacement {displacement!r}"] if displacement is not None else []
    parts += [f"--retry {retry!r}"] if retry is not None else []
    parts += [f"--frailty {frailty!r}"] if frailty is not None else []
    return " ".join(parts)
