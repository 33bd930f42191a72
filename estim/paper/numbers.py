"""The paper's numbers: each quoted number with its kind, written to JSON and checked against a rebuild.

A number is *deterministic* (a count, a published value, a maximum-likelihood estimate: a rebuild must give it
exactly), *Monte Carlo* (a posterior or study summary with its Monte Carlo standard error: a rebuild must land
within 3 × the combined MCSE of the two values) or a *timing* (reported, never verified). Files are JSON with
nested groups, read by the Typst manuscript as ``json("numbers/border.json").whole_border.median.value``, and
written byte for byte the same from the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.io import atomic_path

KINDS = ("deterministic", "monte_carlo", "timing")
MC_TOLERANCE = 3.0
"""A Monte Carlo number passes when |a − b| ≤ MC_TOLERANCE · sqrt(mcse_a² + mcse_b²)."""
DIGITS = 12
"""Significant digits a float keeps, in the file and in every comparison."""
_FIELDS = {"value", "kind", "mcse", "unit", "note"}

Value = int | float | str


def _round(x: float) -> float:
    # %.12g then float(): the shortest repr of the result is stable, so files are byte-reproducible
    return float(f"{x:.{DIGITS}g}")


def _plain(x: Any, what: str) -> Value:
    """A Python int, float (rounded, finite) or str; numpy scalars are converted, bools refused."""
    if isinstance(x, (bool, np.bool_)):
        raise EstimInputError(f"{what}: {x!r} is a bool; give an int, float or str")
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            raise EstimInputError(f"{what}: {x!r} is not finite; JSON cannot hold it")
        return _round(float(x))
    if isinstance(x, str):
        return x
    raise EstimInputError(f"{what}: {x!r} ({type(x).__name__}) is not an int, float or str")


@dataclass(frozen=True)
class Number:
    """One number the manuscript quotes. Floats are kept to 12 significant digits, as they are written.

    `kind` is "deterministic", "monte_carlo" (needs `mcse` > 0) or "timing"; `value` is an int or float (a str
    only for a deterministic number); `unit` and `note` are printed by the manuscript and the report.
    """

    value: Value
    kind: str
    mcse: float | None = None
    unit: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        what = f"number {self.value!r} ({self.kind})"
        if self.kind not in KINDS:
            raise EstimInputError(f"{what}: kind must be one of {', '.join(KINDS)}")
        value = _plain(self.value, what)
        if isinstance(value, str) and self.kind != "deterministic":
            raise EstimInputError(f"{what}: only a deterministic number may be a str")
        mcse = self.mcse
        if self.kind == "monte_carlo":
            if mcse is None or isinstance(mcse, str):
                raise EstimInputError(f"{what}: a Monte Carlo number needs its mcse (> 0)")
            mcse = float(_plain(mcse, f"{what}: mcse"))
            if not mcse > 0:
                raise EstimInputError(f"{what}: mcse must be > 0, got {mcse!r}")
        elif mcse is not None:
            raise EstimInputError(f"{what}: only a Monte Carlo number has an mcse")
        for name in ("unit", "note"):
            if not isinstance(getattr(self, name), str):
                raise EstimInputError(f"{what}: {name} must be a str")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "mcse", mcse)


def _tree(numbers: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The JSON tree of nested groups of numbers, every key checked."""
    tree = {}
    for key, item in numbers.items():
        name = f"{where}.{key}" if where else str(key)
        if not isinstance(key, str) or not key or "." in key:
            raise EstimInputError(
                f"numbers: key {name!r} must be a non-empty str without dots (nest groups instead)"
            )
        if isinstance(item, Number):
            tree[key] = asdict(item)
        elif isinstance(item, Mapping):
            if not item:
                raise EstimInputError(f"numbers: group {name!r} is empty")
            tree[key] = _tree(item, name)
        else:
            raise EstimInputError(f"numbers: {name!r} is a {type(item).__name__}, not a Number")
    return tree


def write_numbers(path: str | Path, numbers: Mapping[str, Number | Mapping[str, Any]]) -> Path:
    """Write nested groups of numbers to a JSON file, atomically; the same numbers give the same bytes."""
    text = json.dumps(
        _tree(numbers, ""), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def read_numbers(path: str | Path) -> dict[str, Number]:
    """The numbers of a JSON numbers file, by dotted name ("whole_border.median")."""
    path = Path(path)
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EstimInputError(f"{path}: cannot read the numbers file ({e})") from e
    flat: dict[str, Number] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict) or not node:
            raise EstimInputError(f"{path}: {prefix or 'the top level'} is not a group of numbers")
        if set(node) == _FIELDS:
            try:
                flat[prefix] = Number(**node)
            except (EstimInputError, TypeError) as e:
                raise EstimInputError(f"{path}: {prefix}: {e}") from e
            return
        for key, child in node.items():
            walk(child, f"{prefix}.{key}" if prefix else key)

    walk(tree, "")
    if "" in flat:
        raise EstimInputError(f"{path}: the top level must be a group, not one number")
    return flat


@dataclass(frozen=True)
class Difference:
    """A number that fails verification: which, both values, its kind, the tolerance used and why."""

    name: str
    reason: str
    kind: str
    committed: Value | None = None
    rebuilt: Value | None = None
    tolerance: float | None = None
    file: str = ""

    def describe(self) -> str:
        where = f"{self.file}: " if self.file else ""
        if self.kind == "file":  # a whole numbers file present on one side only
            return f"{where}{self.reason}"
        text = f"{where}{self.name} ({self.kind}): {self.reason}"
        if self.committed is not None or self.rebuilt is not None:
            text += f"; committed {_show(self.committed)}, rebuilt {_show(self.rebuilt)}"
        if self.tolerance is not None:
            text += f", tolerance {_show(self.tolerance)}"
        return text


@dataclass(frozen=True)
class Timing:
    """A timing, reported beside the verification and never checked; None where one side lacks it."""

    name: str
    committed: Value | None
    rebuilt: Value | None
    unit: str = ""
    file: str = ""

    def describe(self) -> str:
        where = f"{self.file}: " if self.file else ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{where}{self.name}: committed {_show(self.committed)}{unit}, rebuilt {_show(self.rebuilt)}{unit}"


def _show(x: Value | None) -> str:
    if x is None:
        return "—"
    return f"{x:.{DIGITS}g}" if isinstance(x, float) else repr(x) if isinstance(x, str) else str(x)


def _differ(name: str, a: Number, b: Number, file: str) -> Difference | None:
    reason, tolerance = "", None
    if a.kind != b.kind:
        reason = f"kind changed to {b.kind}"
    elif a.unit != b.unit:
        reason = f"unit changed from {a.unit!r} to {b.unit!r}"
    elif a.kind == "deterministic":
        tolerance = 0.0
        if a.value != b.value:  # exact: floats were rounded alike on construction; "3" != 3
            reason = "deterministic value differs"
    elif a.kind == "monte_carlo":
        tolerance = MC_TOLERANCE * math.hypot(a.mcse, b.mcse)  # type: ignore[arg-type]
        gap = abs(a.value - b.value)  # type: ignore[operator]
        if gap > tolerance:
            reason = f"|difference| {_show(_round(gap))} > 3 × combined MCSE"
        tolerance = _round(tolerance)
    return Difference(name, reason, a.kind, a.value, b.value, tolerance, file) if reason else None


def compare(
    committed: Mapping[str, Number], rebuilt: Mapping[str, Number], *, file: str = ""
) -> list[Difference]:
    """Every committed number the rebuild fails to reproduce, by name: missing, new, kind or unit changed,
    a deterministic value not exactly equal, a Monte Carlo value outside 3 × the combined MCSE. Timings are
    never differences (see `compare_timings`)."""
    out = []
    for name in sorted(set(committed) | set(rebuilt)):
        a, b = committed.get(name), rebuilt.get(name)
        if a is None or b is None:
            number = a or b
            if number is not None and number.kind != "timing":
                reason = "missing in the rebuild" if b is None else "new in the rebuild"
                values = (a.value if a else None, b.value if b else None)
                out.append(Difference(name, reason, number.kind, *values, None, file))
        elif (diff := _differ(name, a, b, file)) is not None:
            out.append(diff)
    return out


def compare_timings(
    committed: Mapping[str, Number], rebuilt: Mapping[str, Number], *, file: str = ""
) -> list[Timing]:
    """The timings of either side, committed beside rebuilt, to report (a timing is never verified)."""
    names = {n for side in (committed, rebuilt) for n, x in side.items() if x.kind == "timing"}
    out = []
    for name in sorted(names):
        a, b = committed.get(name), rebuilt.get(name)
        unit = (b if b is not None and b.kind == "timing" else a).unit  # type: ignore[union-attr]
        value = [x.value if x is not None and x.kind == "timing" else None for x in (a, b)]
        out.append(Timing(name, value[0], value[1], unit, file))
    return out


def format_report(differences: Sequence[Difference], timings: Sequence[Timing] = ()) -> str:
    """A plain-text report: every difference by name, then the timings (reported, not verified)."""
    n = len(differences)
    lines = [f"{n} difference{'s' if n != 1 else ''}" + (":" if n else " — the numbers verify")]
    lines += [f"  {d.describe()}" for d in differences]
    if timings:
        lines.append("timings (reported, not verified):")
        lines += [f"  {t.describe()}" for t in timings]
    return "\n".join(lines) + "\n"


def verify_folder(committed_dir: str | Path, rebuilt_dir: str | Path) -> tuple[bool, str]:
    """Compare every ``*.json`` numbers file of a rebuild with the committed one; (all verify, the report).

    A file present on one side only is a difference."""
    committed_dir, rebuilt_dir = Path(committed_dir), Path(rebuilt_dir)
    for folder in (committed_dir, rebuilt_dir):
        if not folder.is_dir():
            raise EstimInputError(f"{folder}: no such folder of numbers files")
    files = sorted({p.name for d in (committed_dir, rebuilt_dir) for p in d.glob("*.json")})
    differences: list[Difference] = []
    timings: list[Timing] = []
    for name in files:
        a, b = committed_dir / name, rebuilt_dir / name
        if not (a.is_file() and b.is_file()):
            reason = "file missing in the rebuild" if a.is_file() else "file new in the rebuild"
            differences.append(Difference("(whole file)", reason, "file", file=name))
            continue
        old, new = read_numbers(a), read_numbers(b)
        differences += compare(old, new, file=name)
        timings += compare_timings(old, new, file=name)
    header = f"compared {len(files)} numbers file{'s' if len(files) != 1 else ''}: "
    return not differences, header + format_report(differences, timings)


# --- Monte Carlo numbers from draws ---------------------------------------------------------------


def _draws(draws: Any, what: str) -> tuple[np.ndarray, xr.DataArray | None]:
    """The draws, flattened, and (for ArviZ) the DataArray when they have exactly dims chain and draw."""
    chained = None
    if isinstance(draws, xr.DataArray):
        if {"chain", "draw"} <= set(draws.dims):
            if set(draws.dims) != {"chain", "draw"}:
                raise EstimInputError(
                    f"{what}: draws have dims {draws.dims}; select one quantity (chain, draw) first"
                )
            chained = draws.astype(float)
    flat = np.asarray(draws, dtype=float).ravel()
    if flat.size < 2 or not np.all(np.isfinite(flat)):
        raise EstimInputError(f"{what}: need at least 2 finite draws, got {flat.size} draws")
    return flat, chained


def mc_mean(draws: Any, *, unit: str = "", note: str = "") -> Number:
    """The posterior (or study) mean as a Monte Carlo number: mcse = sd / sqrt(ESS).

    With an xarray DataArray of dims (chain, draw) the ESS is ArviZ's `ess(method="mean")`, which accounts
    for autocorrelation; any other array is taken as independent draws (ESS = n, mcse = sd/√n).
    """
    flat, chained = _draws(draws, "mc_mean")
    if chained is not None:
        import arviz as az  # slow to import; only the Monte Carlo helpers need it

        ess = float(az.ess(chained, method="mean"))
    else:
        ess = float(flat.size)
    sd = float(np.std(flat, ddof=1))
    mcse = sd / math.sqrt(ess) if ess > 0 and math.isfinite(ess) else math.nan
    if not mcse > 0:
        raise EstimInputError(
            "mc_mean: the draws are constant (mcse 0); report a deterministic number"
        )
    return Number(float(np.mean(flat)), "monte_carlo", mcse, unit, note)


def mc_quantile(draws: Any, q: float, *, unit: str = "", note: str = "") -> Number:
    """The q-quantile of the draws as a Monte Carlo number.

    With an xarray DataArray of dims (chain, draw) the mcse is ArviZ's `mcse(method="quantile", prob=q)`
    (order statistics at the effective sample size). Any other array is taken as n independent draws: the
    number of draws below the quantile is binomial, sd sqrt(n q (1 − q)), so the mcse is half the distance
    between the empirical quantiles at q ± sqrt(q (1 − q) / n) (the order-statistic interval of ±1 sd).
    """
    if not (isinstance(q, (int, float)) and 0 < q < 1):
        raise EstimInputError(f"mc_quantile: q must lie strictly between 0 and 1, got {q!r}")
    flat, chained = _draws(draws, f"mc_quantile(q={q})")
    if chained is not None:
        import arviz as az

        mcse = float(az.mcse(chained, method="quantile", prob=q))
    else:
        half = math.sqrt(q * (1 - q) / flat.size)
        lo, hi = np.quantile(flat, [max(q - half, 0.0), min(q + half, 1.0)])
        mcse = float(hi - lo) / 2
    if not mcse > 0:
        raise EstimInputError(
            f"mc_quantile(q={q}): the draws near the quantile are tied (mcse 0); use more draws"
        )
    return Number(float(np.quantile(flat, q)), "monte_carlo", mcse, unit, note)
