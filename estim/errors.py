"""Exceptions the CLI maps to exit codes: bad input -> 2; anything else -> 1; and the hint their messages share
for a misspelt name (`did_you_mean`)."""

from __future__ import annotations

import difflib
from typing import Any


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


def did_you_mean(given: Any, known: Any) -> str:
    """`` (did you mean `x`?)`` for each name of `given` (one, or several) with a close one in `known`
    (`difflib.get_close_matches`); "" when none has."""
    names = [given] if isinstance(given, str) else list(given)
    pairs = [
        (name, close[0])
        for name in names
        if (close := difflib.get_close_matches(name, [str(k) for k in known if k != name], n=1))
    ]
    if not pairs:
        return ""
    if len(names) == 1:
        return f" (did you mean `{pairs[0][1]}`?)"
    return " (did you mean " + ", ".join(f"`{b}` for `{a}`" for a, b in pairs) + "?)"
