"""Periods and capture occasions, and the time axes of the statistics (months since 1970-01 as integers)."""

from __future__ import annotations

import numpy as np

from estim.errors import EstimInputError

PERIODS = ("year", "quarter", "month")
OCCASIONS = ("quarter", "month")

# (period, occasion) -> occasions per period.
_OCCASIONS_PER_PERIOD = {("year", "quarter"): 4, ("year", "month"): 12, ("quarter", "month"): 3}
_MONTHS_PER = {"year": 12, "quarter": 3, "month": 1}


def _check_period_occasion(period: str, occasion: str | None) -> int:
    if period not in PERIODS:
        raise EstimInputError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    if occasion is None:
        return 1
    if occasion not in OCCASIONS:
        raise EstimInputError(
            f"occasion must be one of {', '.join(OCCASIONS)} or None; got {occasion!r}"
        )
    n = _OCCASIONS_PER_PERIOD.get((period, occasion))
    if n is None:
        raise EstimInputError(
            f"occasion {occasion!r} must be finer than period {period!r}: use year/quarter, year/month or "
            "quarter/month (or occasion=None for frequencies only)"
        )
    return n


def _month_span(*months: np.ndarray) -> tuple[int, int]:
    """First month (months since 1970-01) and number of months of the contiguous span of all monthly data."""
    present = [m for m in months if m.size]
    if not present:
        return 0, 0
    lo = min(int(m.min()) for m in present)
    hi = max(int(m.max()) for m in present)
    return lo, hi - lo + 1


def _month_coord(month0: int, n_months: int) -> np.ndarray:
    return (np.arange(month0, month0 + n_months).astype("datetime64[M]")).astype("datetime64[ns]")


def _period_unit(month: np.ndarray | int, period: str) -> np.ndarray | int:
    """Absolute period number (years, quarters or months since 1970) of absolute month numbers."""
    return month // _MONTHS_PER[period]


def _period_span(month0: int, n_months: int, period: str) -> tuple[int, int]:
    if n_months == 0:
        return 0, 0
    first = int(_period_unit(month0, period))
    last = int(_period_unit(month0 + n_months - 1, period))
    return first, last - first + 1


def _period_label(unit: int, period: str) -> str:
    if period == "year":
        return f"{1970 + unit}"
    if period == "quarter":
        return f"{1970 + unit // 4}Q{unit % 4 + 1}"
    return f"{1970 + unit // 12}-{unit % 12 + 1:02d}"


def _period_labels(period0: int, n_periods: int, period: str) -> list[str]:
    return [_period_label(u, period) for u in range(period0, period0 + n_periods)]


def _period_starts(period0: int, n_periods: int, period: str) -> np.ndarray:
    start_months = np.arange(period0, period0 + n_periods) * _MONTHS_PER[period]
    return start_months.astype("datetime64[M]").astype("datetime64[ns]")


def _month_period_labels(month0: int, n_months: int, period: str) -> list[str]:
    return [
        _period_label(int(_period_unit(m, period)), period)
        for m in range(month0, month0 + n_months)
    ]


def _occasion_index(month: np.ndarray, period: str, occasion: str | None) -> np.ndarray:
    """Occasion number within its period, from 0 (e.g. the quarter of the year)."""
    if occasion is None:
        return np.zeros(month.shape, dtype=np.int8)
    within = month % _MONTHS_PER[period]  # month within the period, from 0
    return within // _MONTHS_PER[occasion]
