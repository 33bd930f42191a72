"""Do the surveyed sections' repeat apprehensions have the model's geometric law? An exact conditional test,
made on the data before any sampling.

Without a person-level frailty (``frailty_sd`` unset or 0) the border model says that in a surveyed section ×
month × category cell, the number of times K an apprehended person is apprehended is zero-truncated geometric
in q = p·r: P(K = k) = (1 − q) q^(k−1), the same q for everyone in the cell. That holds whatever r is (a person
who gives up after the k-th apprehension and one who gets through after it both stop at k). People who differ
in how easily they are caught give a mixture of geometrics, whose tail is heavier; a rule that stops people
after a fixed number of attempts gives a lighter one.

**The test.** Given a cell's n people and S apprehensions, the geometric's sufficient statistic, the vector of
the n counts is uniform over the C(S − 1, n − 1) compositions of S into n positive parts, whatever q is: the
conditional law has no unknown parameter, so the test needs no estimate of p or r and no prior. The statistic is
T = Σ_cells Σ_people K², the sum of squares (given n and S, the within-cell variance), summed over the cells.
Its null law is simulated by drawing every cell's composition afresh (`composition_square_sums`) ``replicates``
times; z = (T − mean) / sd of the simulated T, and the p-value is two-sided from the normal law, which a sum
over ~1,000 independent cells follows closely. The size of the departure is given as the ratio of the observed
within-cell variation Σ(K − S/n)² to its null expectation.

**Measured** (`scripts/border_dispersion.py`, docs/design.md §6) on 130 borders of the misspecification study:
without a frailty (70 borders, r = 0.6, 0.8, 1) z had mean −0.03 and sd 0.79, none failed; with a log-normal
frailty of spread σ = 0.5 on a person's hazard (60 borders) every one failed, z 6.9–17.5 at r = 0.6 and
59–131 at r = 1; σ = 0.2 failed five borders of five, σ = 0.1 none. The fit refuses data whose test fails
(`DISPERSION_P_MIN`), before sampling: the model's apprehension probability is identified through the repeat
counts, and a frailty the model does not have moves it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

DISPERSION_P_MIN = 0.001  # the test fails below this two-sided p-value
REPLICATES = 400  # simulated null statistics: the z-score's sd known to ~3.5 %
NAME = "repeat_dispersion"
DRAW_CHUNK = (
    4_000_000  # uniform keys drawn at once (32 MB); a cell's cost is replicates × its apprehensions
)


@dataclass(frozen=True)
class DispersionTest:
    """The exact conditional test of the repeat counts' geometric law (see the module's docstring)."""

    z: float
    p_value: float
    ratio: float  # observed within-cell variation of the repeat counts over its null expectation
    cells: int  # cells with a variable composition (n ≥ 2 people and S > n apprehensions)
    people: int
    apprehensions: int
    replicates: int
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: the verdict, z, p and the variance ratio."""
        p = f"{self.p_value:.2g}" if self.p_value >= 1e-16 else "< 1e-16"
        return (
            f"{'ok' if self.passed else 'MISFIT'}: repeat apprehensions of the surveyed sections against the "
            f"model's geometric law (exact conditional test, {self.cells:,} section × month × category cells, "
            f"{self.people:,} people): z = {self.z:+.1f}, two-sided p {p}"
            f"{'' if self.passed else f' (below {DISPERSION_P_MIN} fails)'}; the counts vary "
            f"{self.ratio:.2f} times as much within a cell as the geometric allows"
        )


def composition_square_sums(
    people: int, apprehensions: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """Σ K² over the parts of ``replicates`` compositions of ``apprehensions`` into ``people`` positive parts,
    each drawn uniformly: the n − 1 cut points are a uniform (n − 1)-subset of the S − 1 gaps."""
    n, s = int(people), int(apprehensions)
    if n < 1 or s < n:
        raise ValueError(f"no composition of {s} into {n} positive parts")
    if n == 1 or s == n:
        return np.full(replicates, float(s * s if n == 1 else n))
    out = np.empty(replicates)
    # a few replicates at a time when a cell is large: memory bounded by DRAW_CHUNK keys, and the same numbers
    # (the generator fills row after row whatever the chunk)
    step = max(1, DRAW_CHUNK // (s - 1))
    for start in range(0, replicates, step):
        b = min(step, replicates - start)
        keys = rng.random((b, s - 1))
        cuts = np.sort(np.argpartition(keys, n - 2, axis=1)[:, : n - 1] + 1, axis=1)
        edges = np.concatenate(
            [np.zeros((b, 1), np.int64), cuts, np.full((b, 1), s, np.int64)], axis=1
        )
        out[start : start + b] = (np.diff(edges, axis=1).astype(float) ** 2).sum(axis=1)
    return out


def dispersion_test(
    frequency: np.ndarray, k: np.ndarray, *, replicates: int = REPLICATES, seed: int = 0
) -> DispersionTest | None:
    """The test on repeat counts ``frequency`` (…, k): f_k people apprehended k times in each cell of the
    leading axes; None when no cell has a variable composition (nothing to test)."""
    f = np.asarray(frequency).reshape(-1, np.shape(frequency)[-1]).astype(np.int64)
    k = np.asarray(k, dtype=np.int64)
    n = f.sum(axis=1)
    s = (f * k).sum(axis=1)
    squares = (f * k**2).sum(axis=1).astype(float)
    varying = np.flatnonzero((n >= 2) & (s > n))
    if varying.size == 0:
        return None
    rng = np.random.default_rng(seed)
    null = np.zeros(replicates)
    for i in varying:
        null += composition_square_sums(int(n[i]), int(s[i]), replicates, rng)
    observed = float(squares[varying].sum())
    centre = float(
        (s[varying].astype(float) ** 2 / n[varying]).sum()
    )  # Σ S²/n: Σ(K − S/n)² = T − this
    sd = float(null.std(ddof=1))
    z = (observed - float(null.mean())) / sd if sd > 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return DispersionTest(
        z=float(z),
        p_value=float(p),
        ratio=(observed - centre) / (float(null.mean()) - centre),
        cells=int(varying.size),
        people=int(n.sum()),
        apprehensions=int(s.sum()),
        replicates=int(replicates),
        passed=bool(p >= DISPERSION_P_MIN),
    )


def applies(options: Mapping[str, Any]) -> bool:
    """Whether the test checks the model of these ``[options]``: only a model without a frailty has the
    geometric law (with one, the posterior predictive check of f_k judges the mixture)."""
    frailty = options.get("frailty_sd")
    return frailty is None or (not isinstance(frailty, str) and float(frailty) == 0.0)


def repeat_dispersion_test(
    data: xr.Dataset, *, replicates: int = REPLICATES, seed: int = 0
) -> DispersionTest | None:
    """The test on the border data's surveyed sections (``frequency`` [section, month, category, k] where
    ``surveyed``); None without surveyed repeat counts."""
    if "frequency" not in data or "surveyed" not in data:
        return None
    surveyed = np.flatnonzero(data["surveyed"].values)
    if surveyed.size == 0:
        return None
    return dispersion_test(
        data["frequency"].values[surveyed],
        data["k"].values,
        replicates=replicates,
        seed=seed,
    )


def check_before_sampling(data: xr.Dataset, **options: Any) -> dict[str, Any] | None:
    """The border family's check of its data before sampling (`estim.families.base.Family.precheck`): the test
    as a dict (`DispersionTest.to_dict` with ``name``, ``text`` and ``remedy``, what to do when it fails), None when it does not apply (a frailty in
    the model, or no surveyed repeat counts)."""
    if not applies(options):
        return None
    test = repeat_dispersion_test(data)
    if test is None:
        return None
    return {"name": NAME, "text": test.describe(), "remedy": REMEDY, **test.to_dict()}


REMEDY = (
    "The model assumes that everyone in a section × month × category is caught with the same probability, "
    "and its estimate of how many get through unobserved rests on that. Not fitted. A model with a "
    'person-level frailty ([options] frailty_sd = "estimated", or a fixed spread) allows people to differ.'
)
