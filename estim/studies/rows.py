"""What every study shares: its rows written atomically as it goes, and the coverage of its intervals."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import scipy.stats

from estim.io import atomic_path


def write_rows(
    rows: pd.DataFrame | Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
) -> Path:
    """Write a study's rows so far as CSV, whole and atomically: a study stopped half-way keeps every row it
    measured, and a reader never sees a partial file."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def coverage(covered: pd.Series, level: float = 0.95) -> dict[str, Any]:
    """The share of intervals that covered the truth, with its exact (Clopper–Pearson) ``level`` interval."""
    n = int(len(covered))
    k = int(covered.astype(bool).sum())
    if n == 0:
        return {"n": 0, "covered": 0, "coverage": float("nan"), "ci": [float("nan"), float("nan")]}
    ci = scipy.stats.binomtest(k, n).proportion_ci(level, method="exact")
    return {"n": n, "covered": k, "coverage": k / n, "ci": [float(ci.low), float(ci.high)]}
