"""A measure's mechanism: what it changes, where, from when, and by how much at full strength.

One definition for the two places a measure acts: the simulator applies it with known effect sizes (the truth
of the effect-recovery study), and the forecasts of `estim.measures` apply it to the border model's rates
with effect sizes drawn from their priors. Both read `AppliedMeasure` and compute its strength by month with
`strength`, so the simulator's mechanism and the forecast's are the same unless a study changes one on
purpose (e.g. displacement that the forecast lacks).

Targets (per section s in the measure's sections, month t, category c in the effect's categories):

* ``journeys``         — the expected journeys μ_{s,t,c} × m(t);
* ``guard_hazard``     — the patrol and technical detectors' hazards × m(t) (guards' effort);
* ``informant_hazard`` — the informant detector's hazard × m(t) (local people's help);
* ``wait``             — the mean wait at the section's land checkpoints × m(t) (categories do not apply):
                         the bypass share follows through its elasticity.

m(t) = 1 + (M − 1) · r(t), with M the full-strength multiplier and r(t) the measure's strength: 0 before
start + lag, then rising linearly to 1 over ``ramp_months`` months (a month counts in full from its first day).

Displacement: a share d of the expected journeys a ``journeys`` effect prevents in a section moves to its
neighbours along the border (the order of `SECTIONS`, west to east), split equally; the displaced journeys
are not reduced again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from estim.errors import EstimInputError
from estim.records.schemas import CATEGORIES, SECTIONS

TARGETS = ("journeys", "guard_hazard", "informant_hazard", "wait")


@dataclass(frozen=True)
class MeasureEffect:
    """One effect of a measure at full strength: ``target`` × ``multiplier`` for ``categories``."""

    target: str
    multiplier: float
    categories: tuple[str, ...] = CATEGORIES

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise EstimInputError(
                f"measure effect target {self.target!r}: one of {', '.join(TARGETS)}"
            )
        if not np.isfinite(self.multiplier) or self.multiplier < 0:
            raise EstimInputError(
                f"measure effect on {self.target}: the multiplier must be finite and >= 0, "
                f"got {self.multiplier}"
            )
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise EstimInputError(
                f"measure effect on {self.target}: unknown categories {unknown}; known: "
                f"{', '.join(CATEGORIES)}"
            )


@dataclass(frozen=True)
class AppliedMeasure:
    """A measure with known effect sizes, as the simulator applies it (module docstring)."""

    name: str
    start_month: str
    effects: tuple[MeasureEffect, ...]
    lag_months: int = 0
    ramp_months: int = 0
    sections: tuple[str, ...] = field(default=SECTIONS)
    displacement: float = 0.0

    def __post_init__(self) -> None:
        try:
            np.datetime64(self.start_month, "M")
        except ValueError as e:
            raise EstimInputError(
                f"measure {self.name}: start month {self.start_month!r} is not YYYY-MM"
            ) from e
        if self.lag_months < 0 or self.ramp_months < 0:
            raise EstimInputError(f"measure {self.name}: lag and ramp months must be >= 0")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise EstimInputError(f"measure {self.name}: unknown sections {unknown}")
        if not 0.0 <= self.displacement <= 1.0:
            raise EstimInputError(f"measure {self.name}: displacement must lie in [0, 1]")


def simulated_period(start_month: str, years: int) -> tuple[np.datetime64, np.datetime64]:
    """The first and last month (datetime64[M]) of ``years`` simulated years from ``start_month``."""
    first = np.datetime64(start_month, "M")
    return first, first + np.timedelta64(12 * years - 1, "M")


def check_in_period(
    measures: tuple[AppliedMeasure, ...] | list[AppliedMeasure], start_month: str, years: int
) -> None:
    """Refuse (ValueError naming the measure, the period and the rule) a measure that starts before the
    simulated period, whose lag and ramp would then have run before its first month (it would act there at a
    strength nothing documents), or that would not act within it (start + lag after its last month: the world
    with the measure would be the baseline's, and its effect 0, a statement about the timing only)."""
    first, last = simulated_period(start_month, years)
    period = f"{first} to {last} ({years} year{'s' if years != 1 else ''} from {start_month})"
    for m in measures:
        start = np.datetime64(m.start_month, "M")
        acts = start + np.timedelta64(m.lag_months, "M")
        if start < first:
            raise ValueError(
                f"SimulationConfig.measures: measure {m.name} starts {start}, before the simulated period "
                f"{period}; give a start month within it"
            )
        if acts > last:
            raise ValueError(
                f"SimulationConfig.measures: measure {m.name} starts {start} and acts from {acts} (lag "
                f"{m.lag_months} months), after the simulated period {period}; give an earlier start, or "
                "more years"
            )


def strength(measure: AppliedMeasure, months: np.ndarray) -> np.ndarray:
    """r(t) in [0, 1] for each month (datetime64 months): 0 before start + lag, then linear to 1 over the ramp."""
    months = np.asarray(months).astype("datetime64[M]")
    begin = np.datetime64(measure.start_month, "M") + np.timedelta64(measure.lag_months, "M")
    elapsed = (months - begin).astype(int) + 1  # months in force, counting the current one
    if measure.ramp_months == 0:
        return (elapsed >= 1).astype(float)
    return np.clip(elapsed / measure.ramp_months, 0.0, 1.0)


def section_mask(measure: AppliedMeasure, sections: tuple[str, ...] | list[str]) -> np.ndarray:
    """True for the sections (in the given order) the measure applies to."""
    return np.isin(np.asarray(sections, dtype=object), np.asarray(measure.sections, dtype=object))


def neighbours(sections: tuple[str, ...] | list[str]) -> np.ndarray:
    """(section, section) matrix W with W[n, s] = 1/|neighbours of s| when n is next to s along the border
    (the order of `SECTIONS`): the share of s's displaced journeys that n receives."""
    order = [SECTIONS.index(s) for s in sections]
    w = np.zeros((len(sections), len(sections)))
    for j, sj in enumerate(order):
        near = [i for i, si in enumerate(order) if abs(si - sj) == 1]
        for i in near:
            w[i, j] = 1.0 / len(near)
    return w


@dataclass(frozen=True)
class Multipliers:
    """The measures' multipliers m(t) by target, on the simulator's (section, month, category) cells.

    ``journeys`` keeps one layer per measure (the product of its journeys effects) because each measure
    displaces its own prevented journeys; the other targets are products over every measure.
    """

    journeys: np.ndarray  # (measure, section, month, category)
    guard_hazard: np.ndarray  # (section, month, category)
    informant_hazard: np.ndarray  # (section, month, category)
    wait: np.ndarray  # (section, month)
    displacement: np.ndarray  # (measure,)


def multipliers(
    measures: tuple[AppliedMeasure, ...] | list[AppliedMeasure],
    months: np.ndarray,
    sections: tuple[str, ...] = SECTIONS,
    categories: tuple[str, ...] = CATEGORIES,
) -> Multipliers:
    """m(t) = 1 + (M − 1)·r(t) of every effect, in its sections and categories, multiplied over effects.

    Where a measure is not (yet) in force r(t) = 0 and m(t) is exactly 1.0, so a product with it leaves a
    number bit for bit unchanged.
    """
    shape = (len(sections), np.asarray(months).size, len(categories))
    journeys = np.ones((len(measures), *shape))
    guard, informant, wait = np.ones(shape), np.ones(shape), np.ones(shape[:2])
    for i, measure in enumerate(measures):
        r = strength(measure, months)
        where = section_mask(measure, sections)
        for e in measure.effects:
            m = 1.0 + (e.multiplier - 1.0) * r  # (month,)
            if e.target == "wait":
                wait[where] *= m[None, :]
                continue
            cats = np.isin(
                np.asarray(categories, dtype=object), np.asarray(e.categories, dtype=object)
            )
            cell = np.where(where[:, None, None] & cats[None, None, :], m[None, :, None], 1.0)
            target = {"journeys": journeys[i], "guard_hazard": guard, "informant_hazard": informant}
            target[e.target] *= cell
    return Multipliers(
        journeys=journeys,
        guard_hazard=guard,
        informant_hazard=informant,
        wait=wait,
        displacement=np.array([m.displacement for m in measures], dtype=float),
    )


def displaced_journeys(
    expected: np.ndarray, mult: Multipliers, sections: tuple[str, ...] = SECTIONS
) -> np.ndarray:
    """μ under the measures: μ·Π_i F_i + Σ_i d_i · W · μ·max(1 − F_i, 0), per (section, month, category).

    F_i is measure i's journeys multiplier and W the neighbour matrix (`neighbours`): a share d_i of the journeys
    measure i prevents in a section moves to its neighbours, same month and category, and is not reduced again.
    Each measure's prevented journeys are counted against μ before any measure (as the forecasts do); a
    multiplier above 1 prevents nothing.
    """
    mu = expected * np.prod(mult.journeys, axis=0) if len(mult.journeys) else expected.copy()
    w = neighbours(sections)
    for factor, share in zip(mult.journeys, mult.displacement, strict=True):
        if share > 0:
            prevented = expected * np.maximum(1.0 - factor, 0.0)
            mu = mu + share * np.einsum("ns,stc->ntc", w, prevented)
    return mu
