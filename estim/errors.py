"""Exceptions the CLI maps to exit codes: bad input -> 2; anything else -> 1."""

from __future__ import annotations


class EstimInputError(Exception):
    """The user's input (files, options, data) is wrong; the message says how. CLI exit code 2."""


class InvalidRecords(EstimInputError):
    """Records failed validation; `report` lists every violation found (up to the cap)."""

    def __init__(self, report: object) -> None:
        self.report = report
        super().__init__(str(report))


class DataChanged(EstimInputError):
    """The data a saved fit's spec names are not the data it was fitted to (their hash differs): a forecast,
    summary or check from the fit must not use them. Refit first."""


class GateFailed(Exception):
    """A fit failed the diagnostics gate; `verdict` (a GateVerdict) says which checks. The CLI exits 3.

    Not an input error: the data and spec were fine, the sampler did not give trustworthy draws.
    """

    def __init__(self, verdict: object, where: str = "") -> None:
        self.verdict = verdict
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{verdict.describe()}")  # type: ignore[attr-defined]


class ModelRejected(Exception):
    """The data reject an assumption of the model, by a test made before sampling (`Family.precheck`); the
    message names the test, its result and what to do. No fit was made. The CLI exits 3, as for a failed gate:
    the data and spec were readable, the model cannot give a trustworthy answer for them."""
