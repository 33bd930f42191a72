"""The one way estim writes a figure: atomically, in the format the file name says, then closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from estim.errors import EstimInputError
from estim.io import atomic_path

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
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        plt.close(figure)
    return path
