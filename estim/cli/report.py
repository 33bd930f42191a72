"""`estim report`: the study's own questions (scale, character, routes, causes) answered from a border fit."""

from __future__ import annotations

from pathlib import Path

import click

from estim.cli.common import _figure_path, _fit_paths, _warn_spec_beside, cli
from estim.errors import EstimInputError


@cli.command("report")
@click.argument(
    "fit_path",
    metavar="FIT",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_fit_paths,
)
@click.option("--prob", type=click.FloatRange(0.5, 0.999), default=0.9, show_default=True,
              help="Probability of the central interval.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_figure_path,
    help="Save the 2 × 2 figure of the four questions here (png, pdf, svg).",
)
def report_cmd(fit_path: Path, prob: float, fmt: str, figure: Path | None) -> None:
    """The study's questions answered from a border fit FIT (models/border.nc).

    Scale: the whole border's unobserved crossings and attempts per year, and the share unobserved.
    Character: unobserved crossings by category. Routes: by section, per 100 km, and Omsk + Orenburg
    against the other sections. Causes: waiting time -> bypass (η1, and waits halved), the season of
    journeys, and the policy events' effects. Posterior medians with central intervals (--prob); SYNTHETIC
    when the fit's data were simulated. Section lengths and the mean wait are read from the fit's record
    folder, found from where the fit lives and refused if the records changed since the fit. Only for border
    fits that passed the diagnostics gate (else exit 3).
    """
    from estim.families.border.questions import (
        format_questions,
        questions_figure,
        questions_json,
        study_questions,
    )
    from estim.report.figures import save_figure
    from estim.run import store
    from estim.run.data import fit_records_folder

    tree = store.load_result(fit_path)
    family = tree.attrs.get("family")
    if family != "border":
        raise EstimInputError(
            f"{fit_path}: a fit of family {family!r}; `estim report` answers the study's questions from a "
            "border model fit (estim fit models/border.toml)"
        )
    # the fit's own records (resolved from where the fit lives, and refused if they changed since the fit):
    # section lengths and checkpoint waits come from them
    folder = fit_records_folder(tree, fit_path)
    _warn_spec_beside(tree, fit_path)
    questions = study_questions(tree, prob=prob, folder=folder)
    click.echo(questions_json(questions) if fmt == "json" else format_questions(questions))
    if figure is not None:
        save_figure(questions_figure(questions), figure)
        click.echo(f"wrote {figure}", err=True)
