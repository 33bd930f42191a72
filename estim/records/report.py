"""The validation report: violations, and the batches that word them only when they are listed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (file, row, column), which rule, and a sentence for people."""

    file: str
    row: int | None
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            parquet = self.file.lower().endswith(".parquet")
            where = f"{self.file}: row {self.row}" if parquet else f"{self.file}:{self.row}"
        column = f" column '{self.column}':" if self.column is not None else ""
        return f"{where}:{column} {self.rule}: {self.message}"


@dataclass
class ValidationReport:
    """The violations found (the first `cap` of them), how many in all, and how much was checked."""

    violations: list[Violation] = field(default_factory=list)
    total: int = 0
    files: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return self.total == 0

    def describe_checked(self) -> str:
        """E.g. ``7 files, 81,234 rows checked``."""
        return f"{_plural(self.files, 'file')}, {_plural(self.rows, 'row')} checked"

    def __str__(self) -> str:
        lines = [str(v) for v in self.violations]
        if self.total > len(self.violations):
            more = self.total - len(self.violations)
            lines.append(f"… and {_plural(more, 'more violation')} ({self.total:,} in all)")
        lines.append(f"{_plural(self.total, 'violation')} ({self.describe_checked()})")
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass
class _Batch:
    """Violations of one rule in one column of one file, worded only when listed."""

    file: str
    rule: str
    column: str | None
    labels: np.ndarray
    """Row of each violation as the user counts it; 0 for none (sorts first)."""
    index: np.ndarray
    """Argument given to `message` for each violation (usually the data-row index)."""
    message: Callable[[int], str]

    def __len__(self) -> int:
        return int(self.labels.size)

    def violation(self, k: int) -> Violation:
        row = int(self.labels[k])
        return Violation(
            self.file, row or None, self.column, self.rule, self.message(int(self.index[k]))
        )


def _single(file: str, row: int | None, column: str | None, rule: str, message: str) -> _Batch:
    return _Batch(
        file, rule, column, np.array([row or 0]), np.zeros(1, np.int64), lambda _: message
    )


class _Collector:
    """Counts every violation, keeps the first `cap` (by file, then row, then column)."""

    def __init__(self, cap: int) -> None:
        self.cap = max(cap, 0)
        self.listed: list[Violation] = []
        self.total = 0

    def add(self, batches: list[_Batch]) -> None:
        sizes = [len(b) for b in batches]
        n = sum(sizes)
        self.total += n
        room = self.cap - len(self.listed)
        if n == 0 or room <= 0:
            return
        labels = np.concatenate([b.labels for b in batches])
        which = np.repeat(np.arange(len(batches)), sizes)
        within = np.concatenate([np.arange(s) for s in sizes])
        order = np.argsort(labels, kind="stable")[:room]  # ties keep batch order: column order
        self.listed.extend(batches[which[o]].violation(within[o]) for o in order)
