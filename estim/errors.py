"""Exceptions the CLI maps to exit codes: bad input -> 2; anything else -> 1."""

from __future__ import annotations


class EstimInputError(Exception):
    """The user's input (files, options, data) is wrong; the message says how. CLI exit code 2."""


class InvalidRecords(EstimInputError):
    """Records failed validation; `report` lists every violation found (up to the cap)."""

    def __init__(self, report: object) -> None:
        self.report = report
        super().__init__(str(report))
