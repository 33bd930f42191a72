"""What every study shares: its rows written atomically as it goes, and the coverage of its intervals (with a
bootstrap over datasets where one dataset gives many intervals)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats

from estim.io import atomic_path


def write_rows(
    rows: pd.DataFrame | Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
) -> Path:
    """Write a study's rows so far as CSV, whole and atomically: a study stopped half-way keeps every row it
    measured, and a reader never sees a partial file. A path ending in ``.gz`` is gzipped (``pd.read_csv``
    reads it as it is), with no file name and no time in the gzip header: the same rows give the same bytes."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".gz":
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            ):
                zipped.write(frame.to_csv(index=False).encode("utf-8"))
        else:
            frame.to_csv(tmp, index=False)
    return Path(path)


def coverage(covered: pd.Series, level: float = 0.95) -> dict[str, Any]:
    """The share of intervals that covered the truth, with its exact (Clopper–Pearson) ``level`` interval."""
    n = int(len(covered))
    k = int(
        flag(covered).sum()
    )  # an empty cell read back from a CSV is NaN, which astype(bool) makes True
    if n == 0:
        return {"n": 0, "covered": 0, "coverage": float("nan"), "ci": [float("nan"), float("nan")]}
    ci = scipy.stats.binomtest(k, n).proportion_ci(level, method="exact")
    return {"n": n, "covered": k, "coverage": k / n, "ci": [float(ci.low), float(ci.high)]}


BOOTSTRAP_SEED = (
    17  # the dataset bootstrap's resamples are fixed: the same rows give the same interval
)
BOOTSTRAP_DRAWS = 4000


def flag(values: pd.Series) -> pd.Series:
    """A boolean column as a study wrote it, read back from a CSV: True only for True (or "True"); missing
    values — an errored dataset's — are False, where ``astype(bool)`` would make NaN True."""
    return values.map(lambda v: str(v) in ("True", "1", "1.0")).astype(bool)


def below_nominal(covered: pd.Series, nominal: float = 0.9) -> float:
    """One-sided exact binomial p-value of a coverage below ``nominal`` (NaN without intervals): small when
    fewer intervals covered the truth than ``nominal`` of them would by chance."""
    n = int(len(covered))
    if n == 0:
        return float("nan")
    k = int(flag(covered).sum())
    return float(scipy.stats.binomtest(k, n, nominal, alternative="less").pvalue)


def below_nominal_by_dataset(
    rows: pd.DataFrame, column: str, *, by: Sequence[str], nominal: float = 0.9
) -> float:
    """One-sided p-value of a coverage below ``nominal`` when the intervals come in datasets (the groups of the
    columns ``by``) that miss together: the exact binomial test of `below_nominal` at Kish's effective number
    of intervals n/deff, deff the design effect — the variance of the coverage ĉ = Σk_g/Σm_g as a ratio
    estimator over the datasets, Σ(k_g − ĉ m_g)²/n², over the binomial variance ĉ(1 − ĉ)/n — and at least 1
    (clustering never makes the test stricter than counting intervals as independent). The binomial's tail
    P(X ≤ ĉ n_eff) at a non-integer n_eff is its regularised incomplete beta form. When every dataset misses
    all its intervals or none, n_eff is the number of datasets: they are the trials; with one interval a
    dataset, or coverage 0 or 1, this is `below_nominal`. NaN without intervals."""
    keys = [c for c in by if c in rows]
    hits = rows.assign(_hit=flag(rows[column])).groupby(keys, sort=False)["_hit"]
    k, m = hits.sum().to_numpy(float), hits.count().to_numpy(float)
    n, groups = float(m.sum()), len(m)
    if n == 0:
        return float("nan")
    share = float(k.sum() / n)
    deff = 1.0
    if groups > 1 and 0.0 < share < 1.0:
        var = float(np.sum((k - share * m) ** 2)) / n**2
        deff = max(1.0, var / (share * (1.0 - share) / n))
    if deff == 1.0:
        return below_nominal(rows[column], nominal)
    n_eff = n / deff
    covered = share * n_eff
    # P(X ≤ x) for X ~ Binomial(n, p) is I_{1−p}(n − x, x + 1), defined for real n and x
    return float(scipy.special.betainc(n_eff - covered, covered + 1.0, 1.0 - nominal))


def bootstrap_coverage(
    rows: pd.DataFrame,
    column: str = "covered",
    level: float = 0.95,
    *,
    by: Sequence[str],
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
) -> list[float]:
    """A ``level`` percentile interval for the coverage of ``rows[column]``, resampling datasets (the groups
    of the columns ``by``) with replacement rather than rows: the intervals of one dataset (its section-years,
    say) share its parameters and its posterior, so they miss together, and an interval that counts them as
    independent trials is too narrow. Each resample's coverage is its covered intervals over its intervals."""
    if len(rows) == 0:
        return [float("nan"), float("nan")]
    keys = [c for c in by if c in rows]
    per = (
        rows.assign(_hit=flag(rows[column])).groupby(keys, sort=False)["_hit"].agg(["sum", "count"])
    )
    k, n = per["sum"].to_numpy(float), per["count"].to_numpy(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(per), np.full(len(per), 1.0 / len(per)), size=draws)
    shares = (weights @ k) / (weights @ n)
    lo, hi = np.quantile(shares, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]
