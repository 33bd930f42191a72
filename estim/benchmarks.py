"""The real published capture–recapture datasets shipped in data/benchmarks/, with their reference estimates."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from estim.errors import EstimInputError
from estim.io import sha256
from estim.paths import BENCHMARKS_DIR


def reference_estimates(directory: Path = BENCHMARKS_DIR) -> dict[str, dict[str, Any]]:
    """Every benchmark with its citation and reference estimates (``references.toml``)."""
    with open(directory / "references.toml", "rb") as f:
        return tomllib.load(f)


def load_benchmark(
    name: str, *, frequencies: bool = False, directory: Path = BENCHMARKS_DIR
) -> pd.DataFrame:
    """One benchmark dataset as shipped (one row per individual, history pattern or frequency cell)."""
    refs = reference_estimates(directory)
    if name not in refs:
        raise EstimInputError(f"unknown benchmark {name!r}; known: {', '.join(sorted(refs))}")
    key = "frequency_file" if frequencies else "file"
    if key not in refs[name]:
        raise EstimInputError(f"benchmark {name!r} has no frequency table")
    return pd.read_csv(directory / refs[name][key])


def verify_checksums(directory: Path = BENCHMARKS_DIR) -> list[str]:
    """Files whose SHA-256 differs from ``SHA256SUMS`` (empty when all match)."""
    bad = []
    for line in (directory / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = directory / name.strip()
        if not path.exists() or sha256(path) != digest:
            bad.append(name.strip())
    return bad
