"""Where the shipped data live."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
BENCHMARKS_DIR = DATA_DIR / "benchmarks"
SECTIONS_CSV = DATA_DIR / "sections.csv"
