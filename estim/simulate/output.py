"""Writing a simulation to a folder, byte-reproducibly, and comparing two folders byte for byte.

Determinism: CSVs are written by the `csv` module with "\\n" line ends and fixed float formatting (one decimal);
truth.nc is netCDF3 (64-bit offset) written by scipy through xarray. The netCDF4/HDF5 writer is byte-stable on
one machine, but it embeds the netCDF-C and HDF5 library versions in the file (`_NCProperties`), so the
shipped file would stop matching a fresh simulation as soon as those libraries change; the netCDF3 writer is
pure Python and embeds nothing about its environment.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd

from estim.io import atomic_path, atomic_write_text, sha256
from estim.records.schemas import SCHEMAS, Schema
from estim.simulate.config import DEFAULT_SEED, SimulationConfig
from estim.simulate.core import Simulation

FLOAT_DECIMALS = 1
"""Every float column of the records (lengths in km, waits in minutes) is written with one decimal."""


def _cell(value: object, kind: str) -> str:
    if kind == "float":
        return f"{float(value):.{FLOAT_DECIMALS}f}"
    if kind == "int":
        return str(int(value))
    if kind == "bool" and isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def table_csv(frame: pd.DataFrame, schema: Schema) -> str:
    """The CSV text of a record table: header = schema columns, fixed formatting, "\\n" line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(schema.names)
    kinds = [schema.column(n).kind for n in schema.names]
    columns = [frame[n].tolist() for n in schema.names]
    for row in zip(*columns, strict=True):
        w.writerow([_cell(v, k) for v, k in zip(row, kinds, strict=True)])
    return buf.getvalue()


def _readme(sim: Simulation, files: list[str], command: str | None = None) -> str:
    default = SimulationConfig()
    cmd = command or f"estim simulate --seed {sim.seed}"
    config = dataclasses.replace(sim.config, measures=())
    if command is None and config != default:
        if config == SimulationConfig(years=config.years):
            cmd += f" --years {config.years}"
        else:
            cmd += " (with a non-default configuration: see the `config` attribute of truth.nc)"
    measures = ""
    if sim.config.measures:
        names = ", ".join(m.name for m in sim.config.measures)
        measures = (
            f", with the measures {names} (their effects at full strength: the `measures` attribute of "
            "truth.nc; the same seed without them: its baseline_* variables)"
        )
    seed_note = " (the default seed)" if sim.seed == DEFAULT_SEED else ""
    lines = [
        "# SYNTHETIC data",
        "",
        f"SYNTHETIC data made by `{cmd}`{seed_note}{measures}. Not real border records.",
        "",
        "The process and its parameters: docs/simulator.md; calibration to public figures: docs/calibration.md.",
        "The ground truth (journeys, attempts, apprehensions, unobserved crossings, every parameter) is truth.nc.",
        "",
        "Files:",
        "",
        *[f"- {name}" for name in files],
        "",
    ]
    return "\n".join(lines)


def write_simulation(sim: Simulation, out: str | Path, command: str | None = None) -> list[Path]:
    """Write NAME.csv per record type, truth.nc, README.md and SHA256SUMS into `out` (created); atomic writes.

    README.md gives `command` as the one that made the folder (`estim simulate` passes its own options, so
    a simulation with measures, --retry or --frailty can be made again); without it, the seed and, for a
    non-default configuration, a pointer to truth.nc's ``config`` attribute. Files already in `out` under
    other names are left alone (and would show up in `compare_folders`).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, schema in SCHEMAS.items():
        written.append(atomic_write_text(out / f"{name}.csv", table_csv(sim.records[name], schema)))
    with atomic_path(out / "truth.nc") as tmp:
        sim.truth.to_netcdf(tmp, engine="scipy", format="NETCDF3_64BIT")
    written.append(out / "truth.nc")
    names = sorted([p.name for p in written] + ["README.md", "SHA256SUMS"])
    written.append(atomic_write_text(out / "README.md", _readme(sim, names, command)))
    sums = "".join(f"{sha256(out / n)}  {n}\n" for n in sorted(p.name for p in written))
    written.append(atomic_write_text(out / "SHA256SUMS", sums))
    return written


def compare_folders(a: str | Path, b: str | Path) -> list[str]:
    """Relative paths of files that differ byte-wise between folders `a` and `b`, or exist in only one.

    Nothing is ignored (hidden files included); subfolders are compared recursively. A missing folder counts
    as empty.
    """
    a, b = Path(a), Path(b)

    def files(root: Path) -> set[str]:
        return (
            {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
            if root.is_dir()
            else set()
        )

    fa, fb = files(a), files(b)
    differ = sorted(fa ^ fb)
    for name in sorted(fa & fb):
        pa, pb = a / name, b / name
        if pa.stat().st_size != pb.stat().st_size or pa.read_bytes() != pb.read_bytes():
            differ.append(name)
    return sorted(differ)
