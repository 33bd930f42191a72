"""`estim paper`: rebuild the manuscript's numbers, tables and figures and typeset it, or verify them."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from estim.cli.common import _progress, cli

EXIT_VERIFY = 4


@cli.command("paper")
@click.option("--quick", is_flag=True, help="Fewer forecast draws (the title page says so).")
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild into a scratch folder and compare every number with the committed ones "
    "(deterministic: exactly; Monte Carlo: within 3 × the combined MCSE; timings reported). "
    "Exit 4 naming each difference.",
)
@click.option(
    "--paper-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The paper folder (default: paper/ of the repository).",
)
def paper_cmd(quick: bool, verify: bool, paper_dir: Path | None) -> None:
    """Build paper/paper.pdf: every number, table and figure from data/ and models/ (fits cached by their
    provenance; the expensive studies are read from paper/inputs/, made by their own scripts)."""
    from estim.paper.build import PAPER_DIR, build
    from estim.paper.numbers import verify_folder

    paper = paper_dir or PAPER_DIR
    if not (paper / "paper.typ").is_file():
        from estim.errors import EstimInputError

        raise EstimInputError(f"{paper}: no paper.typ to build")
    if not verify:
        result = build(paper, quick=quick, progress=_progress)
        click.echo(
            f"built {result['pdf']} ({result['mode']} build, {result['seconds']:.0f} s); "
            f"numbers, tables and figures in {paper / 'generated'}"
        )
        return
    with tempfile.TemporaryDirectory(prefix="estim-paper-") as scratch:
        copy = Path(scratch) / "paper"
        shutil.copytree(paper, copy, ignore=shutil.ignore_patterns("generated", "*.pdf"))
        build(copy, quick=quick, progress=_progress, pdf=False)
        ok, report = verify_folder(paper / "generated" / "numbers", copy / "generated" / "numbers")
    click.echo(report)
    if not ok:
        sys.exit(EXIT_VERIFY)
