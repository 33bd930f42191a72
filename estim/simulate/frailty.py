"""Person-level frailty in the apprehension hazard: the finite mixture both simulation paths draw from.

Person i's detection hazards are all multiplied by Z_i, log Z ~ N(−σ²/2, σ²) (so E Z = 1), discretised on the
Gauss–Hermite nodes: Z takes the value z_q = exp(−σ²/2 + σ√2 x_q) with probability w_q/√π, (x_q, w_q) the
nodes and weights of `numpy.polynomial.hermite.hermgauss`. The journeys drawn person by person (surveyed
sections) and those drawn in aggregate (the other sections, and the world with measures) thus share one law,
a finite mixture over the nodes, rather than two approximations of the log-normal one.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite import hermgauss

from estim.errors import EstimInputError

FRAILTY_NODES = 5
"""Gauss–Hermite nodes of the frailty law: E Z = 1 to 3e-8 at σ = 0.5 (3e-5 at σ = 1), sd of log Z exactly σ.
Five, not more: a node further out carries almost no weight (9 nodes: 2e-5 at z = 8.4 for σ = 0.5) but a hazard
so high that, at r = 1, its journeys would be apprehended thousands of times (`check_journeys_end` refused 14 of
60 recovery-design borders at σ = 0.5 with 9 nodes, none with 5)."""


def frailty_law(sd: float, nodes: int = FRAILTY_NODES) -> tuple[np.ndarray, np.ndarray]:
    """The frailty Z as a finite law (values z, probabilities w): log Z ~ N(−sd²/2, sd²) on Gauss–Hermite nodes.

    ``sd = 0`` gives the single node z = 1 with probability 1 (no frailty), so that a simulation without
    frailty draws nothing for it.
    """
    if not (np.isfinite(sd) and sd >= 0.0):
        raise ValueError(f"frailty sd must be a finite number ≥ 0, got {sd}")
    if sd == 0.0:
        return np.ones(1), np.ones(1)
    x, w = hermgauss(nodes)
    z = np.exp(-(sd**2) / 2.0 + sd * np.sqrt(2.0) * x)
    w = w / np.sqrt(np.pi)
    return z, w / w.sum()  # the sum is 1 up to rounding; exactly 1 for the multinomial split


FRAILTY_MEAN_TOLERANCE = 1e-3
"""Largest |E Z − 1| of the discretised frailty law a simulation accepts (σ up to about 1.49 on 5 nodes). Beyond
it the nodes no longer describe log Z ~ N(−σ²/2, σ²) with E Z = 1: E Z = 0.99 at σ = 2, 0.81 at σ = 3, 0.07 at
σ = 5 (a third of the apprehensions), and at σ = 10 the largest node is z = 5·10⁻¹⁰: a border without a single
apprehension was simulated (exit 0) while truth.nc gave the σ asked for and p ≈ 0.4."""


def frailty_sd_problem(sd: float) -> str | None:
    """What is wrong with `sd` as the frailty's spread σ (the rule it breaks, without the value), or None.

    σ must be finite and ≥ 0, and small enough that the discretised law `frailty_law` keeps E Z = 1 to
    `FRAILTY_MEAN_TOLERANCE`."""
    if not (np.isfinite(sd) and sd >= 0.0):
        return "must be a finite number ≥ 0"
    z, w = frailty_law(sd)
    mean = float(np.dot(z, w))
    if abs(mean - 1.0) > FRAILTY_MEAN_TOLERANCE:
        return (
            f"is too large: on the {z.size} Gauss–Hermite nodes of the frailty law E Z = {mean:.4g}, not 1 "
            f"(σ up to {_largest_sd():.2f} keeps it within {FRAILTY_MEAN_TOLERANCE:g})"
        )
    return None


def check_frailty_sd(sd: float, what: str) -> None:
    """`ValueError` "WHAT: SD RULE" when `frailty_sd_problem` finds something wrong with `sd`."""
    if problem := frailty_sd_problem(sd):
        raise ValueError(f"{what}: {sd} {problem}")


def _largest_sd() -> float:
    """The largest σ whose discretised law keeps |E Z − 1| ≤ `FRAILTY_MEAN_TOLERANCE` (bisection; the error
    grows with σ up to there)."""
    lo, hi = 0.0, 3.0
    for _ in range(50):
        mid = (lo + hi) / 2.0
        z, w = frailty_law(mid)
        if abs(float(np.dot(z, w)) - 1.0) > FRAILTY_MEAN_TOLERANCE:
            hi = mid
        else:
            lo = mid
    return lo


def frailty_p(p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-attempt apprehension probability of a person with frailty z_q in a cell whose p is `p` (the
    frailty-free probability): p_q = 1 − exp(−H z_q), H = −log(1 − p) the cell's total hazard. Shape
    ``p.shape + (len(z),)``; with the single node z = 1 it is `p` itself, bit for bit."""
    p = np.asarray(p, dtype=float)
    if z.size == 1 and z[0] == 1.0:
        return p[..., None]
    with np.errstate(divide="ignore"):
        return -np.expm1(np.log1p(-p)[..., None] * z)


MAX_MEAN_APPREHENSIONS = 10_000
"""Largest mean number of apprehensions of one journey the simulator draws (p/(1 − p r) at the frailest node)."""


def check_journeys_end(p: np.ndarray, sd: float, r: float, what: str) -> None:
    """`EstimInputError` naming `what` when, at some frailty node, a journey's apprehensions would never end
    (p r = 1) or would be more than `MAX_MEAN_APPREHENSIONS` on average (p_q/(1 − p_q r)): the draws would
    exhaust memory rather than describe a border."""
    z, _ = frailty_law(sd)
    pq = frailty_p(p, z)
    with np.errstate(divide="ignore"):
        mean = np.where(pq * r < 1.0, pq / (1.0 - pq * r), np.inf)
    worst = float(mean.max()) if mean.size else 0.0
    if worst > MAX_MEAN_APPREHENSIONS:
        frail = f" for the frailest people (apprehension_frailty_sd = {sd})" if z.size > 1 else ""
        raise EstimInputError(
            f"{what}: the detection hazards are so high{frail} that "
            + (
                "an apprehension is certain (p = 1) and a journey would never end"
                if np.isinf(worst)
                else f"a journey would make {worst:,.0f} apprehensions on average"
            )
            + f" (at most {MAX_MEAN_APPREHENSIONS:,} are simulated)"
        )
