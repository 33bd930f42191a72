"""The one interval estim reports: the central (equal-tailed) posterior interval, with the median.

The equal-tailed interval of probability ``prob`` runs from the (1 − prob)/2 to the (1 + prob)/2 quantile of
the draws (NumPy's default linear interpolation between order statistics). For a count such as N or the
unobserved crossings it is invariant to monotone transformations, unlike a highest-density interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


def tail_probabilities(prob: float = 0.9) -> tuple[float, float]:
    """The quantiles that bound the central `prob` interval: (0.05, 0.95) for 0.9."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"an interval's probability lies strictly between 0 and 1, not {prob}")
    return (1 - prob) / 2, 1 - (1 - prob) / 2


def equal_tailed(
    draws: xr.DataArray, prob: float = 0.9, dims: Sequence[str] = SAMPLE_DIMS
) -> xr.DataArray:
    """Lower end, median and upper end of the central `prob` interval over `dims`, along a new dim
    ``quantile`` labelled ``"lower"``, ``"median"``, ``"upper"``."""
    lo, hi = tail_probabilities(prob)
    q = draws.quantile([lo, 0.5, hi], dim=list(dims))
    return q.assign_coords(quantile=["lower", "median", "upper"])


def equal_tailed_array(
    draws: np.ndarray, prob: float = 0.9, axis: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, median, upper) of the central `prob` interval of NumPy draws along `axis` (all, if None)."""
    lo, hi = tail_probabilities(prob)
    lower, median, upper = np.quantile(draws, [lo, 0.5, hi], axis=axis)
    return lower, median, upper
