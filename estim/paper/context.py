"""What every step of the paper's pipeline shares: the build context (paths, mode, fits, manifest) and how a
step writes a table and enters its outputs in the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from estim.io import atomic_path


@dataclass
class Context:
    """What a step needs: where to read and write, the mode, and the fits made so far."""

    root: Path
    paper: Path
    quick: bool
    progress: Callable[[str], None] | None = None
    fits: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def generated(self) -> Path:
        return self.paper / "generated"

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def record(self, output: Path, step: Callable[..., Any], inputs: list[Path]) -> Path:
        """Enter an output in the manifest with the step (function) that made it and its inputs' hashes."""
        self.manifest[output.relative_to(self.paper).as_posix()] = {
            "made_by": f"{step.__module__}.{step.__qualname__}",
            "inputs": {_shown(p, self.root, self.paper): _digest(p) for p in inputs},
        }
        return output


def _shown(path: Path, root: Path, paper: Path) -> str:
    """An input as the manifest names it: under the paper folder as ``paper/…`` (wherever the folder is, so a
    copy built elsewhere writes the same manifest), else relative to the repository."""
    for base, prefix in ((paper, "paper/"), (root, "")):
        try:
            return prefix + path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def _digest(path: Path) -> str:
    """SHA-256 (16 hex) of a file, or of a folder's files in name order (not Python's bytecode caches or hidden
    files, which differ between machines that ran the same code)."""
    h = hashlib.sha256()
    files = (
        sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(
                part == "__pycache__" or part.startswith(".") for part in p.relative_to(path).parts
            )
        )
        if path.is_dir()
        else [path]
    )
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    return path


@dataclass(frozen=True)
class Fitted:
    """A fit the paper reads: its file and its tree as saved."""

    path: Path
    tree: Any


def fit_spec(ctx: Context, spec_path: Path) -> Fitted:
    """The spec's fit, reused from the fit store when spec, data and code match (else fitted now); a fit that
    fails the diagnostics gate raises `GateFailed`."""
    from estim.errors import GateFailed
    from estim.run.fit import fit
    from estim.run.spec import read_spec
    from estim.run.store import load_result

    key = str(spec_path)
    if key not in ctx.fits:
        ctx.say(f"fit {spec_path.name} (cached when unchanged) …")
        result = fit(read_spec(spec_path), progress=ctx.progress)
        if not result.passed:
            raise GateFailed(result.verdict, str(result.path))
        ctx.fits[key] = Fitted(
            result.path, load_result(result.path)
        )  # as saved, with its provenance
    return ctx.fits[key]
