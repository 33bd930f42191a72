"""The ``[options]`` a family takes, declared (`Option`) so that a spec's values are checked when it is read.

TOML has types, and Python's would let the wrong ones through: ``true`` is the integer 1 (``threshold = true``
added every pair at p < 1, ``delta = true`` fitted δ = 1), ``int("20")`` reads a quoted string, and a negative
count of quadrature nodes surfaced as an internal error from NumPy in the middle of a fit. So a boolean is
never a number here, nor a number a boolean, nor a string either; a number must lie in its range, a choice
among its values. A refusal names the option, the value and what is allowed
(``[options] nodes: quadrature nodes …, a whole number in [21, 2001], got -3``).

`number_option` and `whole_option` are the same checks for a family that checks an option itself (one whose
range depends on the data).

An option may act only beside another's value (`Option.only_with`: the centred form of pooled intercepts only
with ``stratified = true``); given without it, it would change nothing, and the spec reader refuses it
(`Option.idle`) saying which value it needs, as it refuses an option a family does not take.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from estim.errors import EstimInputError

KINDS = ("any", "bool", "int", "number", "choice")


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """The range in words: "> 0", "≥ 1", "in [0, 1]", "in (0, 6)"; "" for none."""
    if low is None and high is None:
        return ""
    if high is None:
        return f"{'>' if low_open else '≥'} {low:g}"
    if low is None:
        return f"{'<' if high_open else '≤'} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _shown(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _refusal(value: Any, what: str, kind: str, interval: str) -> str:
    """What follows ``[options] NAME:`` in a refusal of a number."""
    note = ""
    if isinstance(value, bool):
        note = " (true/false is not a number)"
    elif isinstance(value, str):
        note = " (a string: write the number without quotes)"
    allowed = f"{kind} {interval}".strip()
    return f"{what}, {allowed}, got {_shown(value)}{note}"


def _number_problem(
    value: Any,
    what: str,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> str | None:
    interval = _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        return _refusal(value, what, "a number", interval)
    x = float(value)
    below = low is not None and (x <= low if low_open else x < low)
    above = high is not None and (x >= high if high_open else x > high)
    return _refusal(value, what, "a number", interval) if below or above else None


def _whole_problem(value: Any, what: str, low: float | None, high: float | None) -> str | None:
    interval = _interval(low, high, False, False)
    whole = isinstance(value, Integral) or (
        isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer()
    )
    if isinstance(value, bool) or not whole:
        return _refusal(value, what, "a whole number", interval)
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        return _refusal(value, what, "a whole number", interval)
    return None


def number_option(
    name: str,
    value: Any,
    what: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a float when it is a finite number (not a boolean, not a string) in the range given by
    `low` and `high` (open at either end with `low_open`, `high_open`); else `EstimInputError` naming the
    option `name` (`what` says what it is)."""
    problem = _number_problem(value, what, low, high, low_open, high_open)
    if problem is not None:
        raise EstimInputError(f"[options] {name}: {problem}")
    return float(value)


def whole_option(name: str, value: Any, what: str, *, low: int, high: int | None = None) -> int:
    """`value` as an int when it is a whole number (not a boolean, not a string, not 2.5; 3.0 is 3) in
    [`low`, `high`]; else `EstimInputError` naming the option `name` (`what` says what it is)."""
    problem = _whole_problem(value, what, low, high)
    if problem is not None:
        raise EstimInputError(f"[options] {name}: {problem}")
    return int(value)


@dataclass(frozen=True)
class Option:
    """One ``[options]`` entry of a family: its name, what it is (in words, for messages), and what it may be.

    kind
        ``"bool"`` (true or false), ``"int"`` (a whole number in [`low`, `high`]), ``"number"`` (in the range
        `low`…`high`, open at an end with `low_open`, `high_open`), ``"choice"`` (a string among `choices`),
        or ``"any"`` (the family checks it when it builds the model: a list, or a range that depends on the
        data).
    only_with
        Other options the model reads this one only beside: name -> the value (or a tuple of the values)
        under which it acts, None for "not given" (``{"stratified": True}``). Given from a mapping, kept as a
        tuple of (name, values) pairs. `because` says why, for the refusal (`idle`).
    """

    name: str
    what: str = ""
    kind: str = "any"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    only_with: Mapping[str, Any] | tuple[tuple[str, tuple[Any, ...]], ...] = ()
    because: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind {self.kind!r} is not one of {KINDS}")
        pairs = self.only_with.items() if isinstance(self.only_with, Mapping) else self.only_with
        normal = tuple((k, v if isinstance(v, tuple) else (v,)) for k, v in pairs)
        object.__setattr__(self, "only_with", normal)

    def idle(self, given: Mapping[str, Any]) -> str | None:
        """Why this option, given beside the spec's other ``[options]`` `given`, would change nothing (what
        follows ``[options] NAME:``), or None when the model reads it (`only_with` holds)."""
        unmet = [
            (k, values)
            for k, values in self.only_with  # type: ignore[misc]
            if not any(_same(given.get(k), v) for v in values)
        ]
        if not unmet:
            return None
        needs = " and ".join(f"{k} {_needed(values)}" for k, values in unmet)
        has = "; ".join(
            f"here {k} = {shown_toml(given[k])}" if k in given else f"here {k} is not given"
            for k, _ in unmet
        )
        why = f" ({self.because})" if self.because else ""
        fix = " and ".join(
            f"remove {k}" if values == (None,) else f"set {k} {_needed(values)}"
            for k, values in unmet
        )
        return f"has an effect only with {needs}{why}; {has}, so it would change nothing: remove it, or {fix}"

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be this option (what follows ``[options] NAME:``), or None when it can."""
        what = self.what or self.name
        if self.kind == "bool" and not isinstance(value, bool):
            note = " (without quotes)" if str(value).lower() in ("true", "false") else ""
            return f"{what}, true or false{note}, got {_shown(value)}"
        if self.kind == "int":
            return _whole_problem(value, what, self.low, self.high)
        if self.kind == "number":
            return _number_problem(value, what, self.low, self.high, self.low_open, self.high_open)
        if self.kind == "choice" and (not isinstance(value, str) or value not in self.choices):
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            values = ", ".join(map(repr, self.choices))
            return f"{what}, one of {values}, got {_shown(value)}{hint}"
        return None

    def check(self, value: Any) -> None:
        """`EstimInputError` naming the option, the value and what is allowed, unless `value` can be it."""
        problem = self.problem(value)
        if problem is not None:
            raise EstimInputError(f"[options] {self.name}: {problem}")


def _same(a: Any, b: Any) -> bool:
    """Equal as TOML values: true is not 1, 1 is 1.0."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def shown_toml(value: Any) -> str:
    """`value` as a spec writes it: ``true``, ``"gamma"``, ``0.7``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _needed(values: tuple[Any, ...]) -> str:
    """``= true``, ``not given``, ``= "poisson" or "gamma"``: the values an option needs another to have."""
    given = [v for v in values if v is not None]
    words = " or ".join(map(shown_toml, given))
    if None not in values:
        return f"= {words}"
    return "not given" + (f" or = {words}" if given else "")


_ANNOTATION_KINDS = {"bool": "bool", "int": "int", "float": "number"}


def from_parameter(name: str, annotation: Any) -> Option:
    """The `Option` a keyword argument of a family's `build` declares by its annotation: ``bool`` a boolean,
    ``int`` a whole number, ``float`` a number (each also ``… | None``: TOML has no None); any other (a union,
    a list) is the family's to check."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [p.strip() for p in str(text).split("|") if p.strip() != "None"]
    kind = _ANNOTATION_KINDS.get(parts[0], "any") if len(parts) == 1 else "any"
    return Option(name, kind=kind)
