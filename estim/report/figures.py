"""The one way estim writes a figure: atomically, in the format the file name says, then closed; and the
house style every figure is drawn in (defined in `estim.figure_style`, so that families' reports use it too:
column widths, fonts >= 7 pt, count axes with thousands separators, interval levels in legends, policy events
on time axes, the SYNTHETIC stamp)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from estim.errors import EstimInputError
from estim.figure_style import (
    COLOURS,
    DOUBLE_COLUMN,
    FONT_PT,
    MIN_FONT_PT,
    SINGLE_COLUMN,
    SMALL_FONT_PT,
    STYLE_RC,
    count_axis,
    count_formatter,
    events_in_fit,
    figure_texts,
    finish_figure,
    format_count,
    house_style,
    interval_label,
    is_synthetic,
    mark_events,
    percent,
    policy_events,
    stamp_synthetic,
    subplots,
)
from estim.io import atomic_path

__all__ = [
    "COLOURS",
    "DOUBLE_COLUMN",
    "FONT_PT",
    "FORMATS",
    "MIN_FONT_PT",
    "SINGLE_COLUMN",
    "SMALL_FONT_PT",
    "STYLE_RC",
    "count_axis",
    "count_formatter",
    "events_in_fit",
    "figure_texts",
    "finish_figure",
    "format_count",
    "house_style",
    "interval_label",
    "is_synthetic",
    "mark_events",
    "percent",
    "policy_events",
    "save_figure",
    "stamp_synthetic",
    "subplots",
]

FORMATS = ("png", "pdf", "svg")


def save_figure(figure: Any, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a matplotlib Figure to `path` (png, pdf or svg by its suffix; png when it has none) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        plt.close(figure)
        raise EstimInputError(f"{path}: a figure is saved as {', '.join(FORMATS)}, not {fmt!r}")
    try:
        with atomic_path(path) as tmp, house_style():  # ticks made while saving follow the style
            figure.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        plt.close(figure)
    return path
