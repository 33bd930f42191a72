"""What every `estim` command shares: the command group (exit codes for errors), and the options and progress
lines more than one command module uses."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import click

from estim.errors import EstimInputError, GateFailed, InvalidRecords, ModelRejected

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_GATE = 0, 1, 2, 3


def _fail_input(message: str) -> None:
    click.echo(f"estim: {message}", err=True)
    sys.exit(EXIT_INPUT)


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    # One line a user can read, without the source line Python's default shows.
    click.echo(f"estim: warning: {message}", err=True)


def collect_warnings() -> list[str]:
    """From now on in this command, each warning shown on stderr is also kept in the returned list, so that
    a JSON output can carry it (a program reading stdout never sees stderr)."""
    said: list[str] = []
    shown = warnings.showwarning

    def show_and_keep(
        message: Warning | str, category: type[Warning], *args: object, **kwargs: object
    ) -> None:
        if not issubclass(category, DeprecationWarning):  # a library's note to its developers
            said.append(str(message))
        shown(message, category, *args, **kwargs)  # type: ignore[arg-type]

    warnings.showwarning = show_and_keep  # type: ignore[assignment]
    return said


class _OnceCommand(click.Command):
    """A command whose options that take one value may be given once: click keeps the last of `--seed 1
    --seed 2` without a word, so the first was dropped (simulate's seed, years, measure start). Refused
    (exit 2), naming both values; an option that takes several (`multiple`) and a flag are not checked."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for param in self.params:
            if (
                not isinstance(param, click.Option)
                or param.multiple
                or param.is_flag
                or param.count
            ):
                continue
            names = [o for o in param.opts + param.secondary_opts if o.startswith("-")]
            given = []
            for i, token in enumerate(args):
                if token == "--":
                    break
                for name in names:
                    if token == name and i + 1 < len(args):
                        given.append(args[i + 1])
                    elif name.startswith("--") and token.startswith(name + "="):
                        given.append(token[len(name) + 1 :])
            if len(given) > 1:
                raise click.UsageError(
                    f"{names[0]} is given {len(given)} times ({', '.join(map(repr, given))}): it takes one "
                    "value, and all but the last would be dropped without a word; give it once",
                    ctx,
                )
        return super().parse_args(ctx, args)


class _EstimGroup(click.Group):
    """Maps exceptions to exit codes for every subcommand: bad input 2, a bug 1 (never a traceback). Its
    commands refuse an option given twice (`_OnceCommand`)."""

    command_class = _OnceCommand
    group_class = type  # a subgroup (estim data …) is one of these too

    def invoke(self, ctx: click.Context) -> object:
        warnings.showwarning = _show_warning
        # PyTensor's note that pip's NumPy has no BLAS it can link: not actionable, and the samplers compile
        # with numba or JAX, which do not use it
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except (GateFailed, ModelRejected) as e:
            click.echo(f"estim: {e}", err=True)
            sys.exit(EXIT_GATE)
        except InvalidRecords as e:
            click.echo(str(e.report), err=True)
            sys.exit(EXIT_INPUT)
        except EstimInputError as e:
            _fail_input(str(e))
        except Exception as e:  # noqa: BLE001 - last-resort boundary: a bug, not the user's fault
            if os.environ.get("ESTIM_DEBUG"):
                raise
            if isinstance(e, OSError) and e.filename and e.strerror:
                # a file that cannot be read or written (a full disk, a folder taken away meanwhile): the
                # machine's, not a bug; the path and the system's reason are what the user can act on
                target = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
                _fail_input(f"{target}: {e.strerror} (the file system refused it)")
            click.echo(
                f"estim: internal error: {type(e).__name__}: {e}\n(set ESTIM_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_EstimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="estim")
def cli() -> None:
    """Estimate unobserved illegal border crossings from checkpoint and apprehension records.

    With no data given, commands use the shipped SYNTHETIC Russia–Kazakhstan dataset (data/synthetic/),
    made by `estim simulate` at the default seed; its ground truth is in data/synthetic/truth.nc.
    """


def _writable(value: Path | None) -> Path | None:
    """Refuse an output file in a folder that cannot be written, before any work is done (exit 2): else the
    work (a fit, a forecast, a sensitivity study of hours) ends in an internal error when it is saved."""
    from estim.io import unwritable

    why = None if value is None else unwritable(value)
    if why is not None:
        raise click.BadParameter(f"{value}: cannot be written: {why}")
    return value


def _figure_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a figure file name estim cannot write before any work is done (exit 2)."""
    from estim.report.figures import FORMATS

    if value is not None and value.suffix.lstrip(".").lower() not in FORMATS:
        raise click.BadParameter(
            f"{value}: a figure is saved as {', '.join(FORMATS)} (by its suffix), not {value.suffix!r}"
        )
    return _writable(value)


def _netcdf_out(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse an output file name whose suffix says another format than the netCDF written, before any work
    is done (exit 2): a .csv that holds netCDF misleads whoever opens it. The name must end in .nc."""
    if value is not None and value.suffix.lower() != ".nc":
        said = f", not {value.suffix!r}" if value.suffix else " (this name has no suffix)"
        raise click.BadParameter(
            f"{value}: the file is written as netCDF, so its name must end in .nc{said}"
        )
    return _writable(value)


def _text_out(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse, before any work (exit 2), a text report's file name that says a fit or a spec (.nc, .toml):
    writing the report there would replace what the name says it is."""
    if value is not None and value.suffix.lower() in (".nc", ".toml"):
        raise click.BadParameter(
            f"{value}: the report is written as text (or JSON), so a name ending in {value.suffix} would "
            "replace a fit or a spec with it; give a .txt or .json name"
        )
    return _writable(value)


def _warn_spec_beside(tree: object, fit_path: Path) -> str | None:
    """Warn (on stderr) when the spec beside a fit is not the spec it was made of (`store.spec_beside`);
    return the warning, or None."""
    from estim.run import store

    message = store.spec_beside(tree, fit_path)  # type: ignore[arg-type]
    if message is not None:
        warnings.warn(message, stacklevel=2)
    return message


def _fit_paths(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """Refuse (exit 2) a model spec given where a saved fit is read, saying what to give instead: read as
    netCDF it was "not a readable fit file ([Errno -51] NetCDF: Unknown file format …)"."""
    for path in value if isinstance(value, tuple) else (value,):
        if isinstance(path, Path) and path.suffix.lower() == ".toml":
            raise click.BadParameter(
                f"{path}: a model spec, not a fit: `estim fit {path}` fits it and saves the fit (NAME.nc "
                "beside the spec, or --out); give that file"
            )
    return value


def _truth_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a truth file that is not a readable netCDF before any work is done (exit 2)."""
    if value is None:
        return value
    import xarray as xr

    if not value.is_file():
        raise click.BadParameter(f"{value}: no such file")
    try:
        xr.open_dataset(value).close()
    except (OSError, ValueError) as e:
        raise click.BadParameter(
            f"{value}: not a netCDF file (the truth.nc that `estim simulate` writes)"
        ) from e
    return value


def _progress(message: str) -> None:
    """Progress of long work, one line at a time on stderr (readable in a log: no carriage returns)."""
    click.echo(f"estim: {message}", err=True)
