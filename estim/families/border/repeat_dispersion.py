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
Its null mean and variance are exact and in closed form (`square_sum_moments`): Y = K − 1 is a uniform weak
composition of m = S − n into n parts, the Dirichlet-multinomial with every α = 1, whose factorial moments are
E[Y_i^(a) Y_j^(b)] = a! b! m^(a+b) / n^[a+b] (falling and rising factorials), so a cell costs the same whatever
its S. z = (T − E T) / sd(T), and the p-value is two-sided from the normal law, which a sum over ~1,000
independent cells follows closely. The size of the departure is given as the ratio of the observed within-cell
variation Σ(K − S/n)² to its null expectation.

**Measured** (`scripts/border_dispersion.py`, docs/design.md §6) on 130 borders of the misspecification study:
without a frailty (70 borders, r = 0.6, 0.8, 1) z had mean −0.05 and sd 0.80, none failed; the sd below 1 is
chance (the same z on 60 further borders at r = 1, seeds 4030–4089: mean 0.05, sd 0.97). With a log-normal
frailty of spread σ = 0.5 on a person's hazard (60 borders) every one failed, z 7.4–17.3 at r = 0.6 and
58–133 at r = 1; σ = 0.2 failed five borders of five, σ = 0.1 none. The fit refuses data whose test fails
(`DISPERSION_P_MIN`), before sampling: the model's apprehension probability is identified through the repeat
counts, and a frailty the model does not have moves it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import xarray as xr

DISPERSION_P_MIN = 0.001  # the test fails below this two-sided p-value
NAME = "repeat_dispersion"


@dataclass(frozen=True)
class DispersionTest:
    """The exact conditional test of the repeat counts' geometric law (see the module's docstring)."""

    z: float
    p_value: float
    ratio: float  # observed within-cell variation of the repeat counts over its null expectation
    cells: int  # cells with a variable composition (n ≥ 2 people and S > n apprehensions)
    people: int
    apprehensions: int
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


def _falling(x: int, a: int) -> int:
    return math.prod(x - i for i in range(a))


def _rising(x: int, a: int) -> int:
    return math.prod(x + i for i in range(a))


def square_sum_moments(people: int, apprehensions: int) -> tuple[Fraction, Fraction]:
    """The exact mean and variance of Σ K² over a composition of ``apprehensions`` (S) into ``people`` (n)
    positive parts drawn uniformly (see the module's docstring), as fractions: exact in integers, so a cell of
    any size loses nothing to cancellation. With Y = K − 1, m = S − n and F(a) = m^(a) / n^[a],
    E[Y^(a)] = a! F(a), E[Y_1^(a) Y_2^(b)] = a! b! F(a + b); then Y² = Y^(2) + Y and
    Y⁴ = Y^(4) + 6 Y^(3) + 7 Y^(2) + Y (Stirling numbers of the second kind)."""
    n, s = int(people), int(apprehensions)
    if n < 1 or s < n:
        raise ValueError(f"no composition of {s} into {n} positive parts")
    m = s - n

    def f(a: int) -> Fraction:
        return Fraction(_falling(m, a), _rising(n, a))

    square = 2 * f(2) + f(1)  # E[Y²]
    fourth = 24 * f(4) + 36 * f(3) + 14 * f(2) + f(1)  # E[Y⁴]
    pair = 4 * f(4) + 4 * f(3) + f(2)  # E[Y_1² Y_2²]
    mean_y = n * square  # E Σ Y²
    var_y = n * fourth + n * (n - 1) * pair - mean_y * mean_y
    # Σ K² = Σ Y² + 2m + n: the same variance
    return mean_y + 2 * m + n, var_y


def dispersion_test(frequency: np.ndarray, k: np.ndarray) -> DispersionTest | None:
    """The test on repeat counts ``frequency`` (…, k): f_k people apprehended k times in each cell of the
    leading axes; None when no cell has a variable composition (nothing to test)."""
    f = np.asarray(frequency).reshape(-1, np.shape(frequency)[-1]).astype(np.int64)
    k = np.asarray(k, dtype=np.int64)
    n = f.sum(axis=1)
    s = (f * k).sum(axis=1)
    squares = (f * k**2).sum(axis=1)
    varying = np.flatnonzero((n >= 2) & (s > n))
    if varying.size == 0:
        return None
    mean, variance = Fraction(0), Fraction(0)
    centre = Fraction(0)  # Σ S²/n: Σ(K − S/n)² = T − this
    for i in varying:
        cell_mean, cell_variance = square_sum_moments(int(n[i]), int(s[i]))
        mean += cell_mean
        variance += cell_variance
        centre += Fraction(int(s[i]) ** 2, int(n[i]))
    observed = int(squares[varying].sum())
    z = float((observed - mean) / math.sqrt(variance)) if variance > 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return DispersionTest(
        z=float(z),
        p_value=float(p),
        ratio=float((observed - centre) / (mean - centre)),
        cells=int(varying.size),
        people=int(n.sum()),
        apprehensions=int(s.sum()),
        passed=bool(p >= DISPERSION_P_MIN),
    )


def applies(options: Mapping[str, Any]) -> bool:
    """Whether the test checks the model of these ``[options]``: only a model without a frailty has the
    geometric law (with one, the posterior predictive check of f_k judges the mixture)."""
    frailty = options.get("frailty_sd")
    return frailty is None or (not isinstance(frailty, str) and float(frailty) == 0.0)


def repeat_dispersion_test(data: xr.Dataset) -> DispersionTest | None:
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
