"""Whether a measure's effect prior lies where an effect can: the refusals of a prior whose multiplier lies where a
percent, a log or a rate written in its place puts it (above ×10, or a LogNormal median below 0.01), of a
reduction ("1 - value") whose every value is negative (an increase, written as a cut), and the warning of a
median multiplier above ×2 (a rise of more than 100 %: LogNormal mu = 0.75 meant as M = 0.75 is M = 2.12)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

# A measure's full-strength multiplier whose prior puts more than 5 % above this is refused: no border measure
# in docs/sources.md multiplies journeys, detection hazards or waits ten-fold, while a percent written as a
# multiplier (20 for ±20 %) or a log-scale value (LogNormal mu = 20) lands there.
MULTIPLIER_CEILING = 10.0
# A LogNormal multiplier whose median (exp mu) is below this is refused: mu is log M, and mu = -20 written for
# "−20 %" is a median of 2e-9 (every journey gone). A measure meant to remove (nearly) all of its target is
# written with "1 - value" and a share near 1, or a Uniform near 0.
LOGNORMAL_MEDIAN_FLOOR = 0.01
# The laws of a multiplier itself (support [0, inf)) the floor applies to: a Gamma of shape < 1 has its median
# far below its mean (the "vague" Gamma(0.01, 0.01), mean 1, forecast −49 % crossings with P(red.) 0.96 on the
# shipped fit from a labour-migrant effect meant to be centred on no change). A Beta or Uniform near 0 is how
# a measure removing nearly all of its target is written, and stays allowed.
_FLOORED_LAWS = ("LogNormal", "Gamma", "HalfNormal")
# A median multiplier above this is warned of: a measure that more than doubles journeys, hazards or waits is
# rare, and a LogNormal mu = 0.75 written for M = 0.75 (M = 2.12), a Gamma's rate taken for its scale (3.4) or a
# percent below 10 written as M (5) land there, under the ceiling.
MULTIPLIER_WARN = 2.0


def check_plausible(effect: Any, law: str, refuse: Callable[[str], None]) -> None:
    """Of an `estim.measures.spec.EffectSpec` (``effect``; ``law``: its prior as written): refuse a prior
    whose multiplier lies where a percent or a log-scale number written in its place puts it
    (`MULTIPLIER_CEILING`, `LOGNORMAL_MEDIAN_FLOOR`), or a reduction whose every value is below 0 (an
    increase: "-50 %" written as a cut of -0.5), saying what a multiplier is; warn of a median above
    `MULTIPLIER_WARN`."""
    m05, m50, m95 = np.sort(effect.multiplier_of(effect.quantiles([0.05, 0.5, 0.95])))
    unit = (
        "a multiplier is the factor at full strength, not a percent: a change of p % is M = 1 + p/100 "
        "(a 20 % cut: 0.8; 20 % more: 1.2)"
    )
    if effect.prior.distribution == "LogNormal":
        unit += (
            "; a LogNormal's mu is log M (a 20 % cut: mu = log 0.8 = -0.223) and sigma its spread"
        )
    if m95 > MULTIPLIER_CEILING:
        refuse(
            f"the prior {law} gives {effect.target} a multiplier M with median {m50:.3g} and 90 % interval "
            f"{m05:.3g} to {m95:.3g}, above {MULTIPLIER_CEILING:g} (a ten-fold rise) with probability "
            f"over 5 %: no measure's effect lies there; {unit}"
        )
    if effect.prior.distribution in _FLOORED_LAWS and m50 < LOGNORMAL_MEDIAN_FLOOR:
        said = "exp(mu) = " if effect.prior.distribution == "LogNormal" else ""
        if effect.prior.distribution == "Gamma":  # a "vague" Gamma(ε, ε) has mean 1 and median ~0
            unit += (
                "; a Gamma with alpha < 1 piles its mass at 0 whatever its mean (Gamma(0.01, 0.01), a "
                "'vague' prior of mean 1, has median 4.5e-29: every journey gone); a wide prior centred "
                "on no change is a LogNormal(mu = 0, sigma)"
            )
        refuse(
            f"the prior {law} gives {effect.target} a median multiplier M = {said}{m50:.3g}, a "
            f"reduction of {100 * (1 - m50):.1f} %, below {LOGNORMAL_MEDIAN_FLOOR:g}; {unit}. A "
            'measure meant to remove nearly all of it: multiplier = "1 - value" with a share near 1'
        )
    low, high = effect.value_range()[:2]
    if effect.multiplier == "1 - value" and high <= 0:
        refuse(
            f'the prior {law} gives every value of "1 - value" at or below 0 (its support: {low:g} to {high:g}), '
            f"so M = 1 - value is at least 1: a rise of {effect.target} (median M {m50:.3g}), written as a "
            'reduction. With "1 - value" the value is the share removed (a 50 % cut: 0.5); a rise is written '
            'with multiplier = "value" (50 % more: M = 1.5)'
        )
    if m50 > MULTIPLIER_WARN:
        mu = effect.prior.parameters.get("mu")
        meant = (
            f"; if M = {mu:g} was meant, mu = log {mu:g} = {np.log(mu):.3f}"
            if effect.prior.distribution == "LogNormal"
            and isinstance(mu, int | float)
            and 0 < mu < 1
            else ""
        )
        warnings.warn(
            f"effect {effect.name}: the prior {law} gives {effect.target} a median multiplier M = {m50:.3g}, a "
            f"rise of {100 * (m50 - 1):.0f} % (90 % interval {m05:.3g} to {m95:.3g}); if a cut was meant, "
            f"{unit}{meant}",
            UserWarning,
            stacklevel=4,
        )
