"""Simulator configs with the parameters the border model estimates drawn around their defaults: the worlds of
the recovery studies (the border model's recovery, the measures' effect recovery).

Ranges (``U(a, b)`` uniform; "± x": default + U(−x, x), independently per element; "× U(a, b)": default times):

* ``section_effect`` α_s ± 0.2 each; ``category_effect`` β_c ± 0.2 (journey categories); ``trend`` τ_c ± 0.05;
* ``hazard_section`` a_s ± 0.2; ``hazard_category`` b_c ± 0.15 (all five categories);
* ``technical_trend`` δ ~ U(0.03, 0.10); ``bypass_eta1`` η1 ~ U(1.5, 2.5); ``bypass_eta0`` η0 ± 0.3;
* ``dispersion`` φ_c × U(0.7, 1.4) (all five categories);
* ``residents_take_up`` ~ U(0.2, 0.6) (θ of the residents' agreement on residents = 1 − take-up);
* ``customs_union_smuggler_effect`` ~ U(0.6, 0.9).

``retry_probability`` stays 1 and ``apprehension_frailty_sd`` 0: the border model assumes Espenshade's repeated
trials with one p for every journey of a cell.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from estim.records.schemas import CATEGORIES, SECTIONS
from estim.simulate.config import SimulationConfig

JOURNEY_CATEGORIES = tuple(c for c in CATEGORIES if c != "bypasser")

# name -> (kind, a, b, keys): kind "add" = default + U(a, b); "mul" = default × U(a, b); "set" = U(a, b)
RANGES: dict[str, tuple[str, float, float, tuple[str, ...] | None]] = {
    "section_effect": ("add", -0.2, 0.2, SECTIONS),
    "category_effect": ("add", -0.2, 0.2, JOURNEY_CATEGORIES),
    "trend": ("add", -0.05, 0.05, JOURNEY_CATEGORIES),
    "hazard_section": ("add", -0.2, 0.2, SECTIONS),
    "hazard_category": ("add", -0.15, 0.15, CATEGORIES),
    "technical_trend": ("set", 0.03, 0.10, None),
    "bypass_eta1": ("set", 1.5, 2.5, None),
    "bypass_eta0": ("add", -0.3, 0.3, None),
    "dispersion": ("mul", 0.7, 1.4, CATEGORIES),
    "residents_take_up": ("set", 0.2, 0.6, None),
    "customs_union_smuggler_effect": ("set", 0.6, 0.9, None),
}
"""The perturbed parameters of `perturbed_config` and their ranges (see the module docstring)."""

SCALAR_PARAMS = tuple(name for name, (_, _, _, keys) in RANGES.items() if keys is None)


def perturbed_config(seed: int) -> SimulationConfig:
    """The default `SimulationConfig` with the parameters of `RANGES` drawn from their ranges; deterministic
    in ``seed`` (its own random stream, independent of the simulator's streams for the same seed).
    ``retry_probability`` is kept at 1 and ``apprehension_frailty_sd`` at 0 (the border model's assumptions)."""
    default = SimulationConfig()
    rng = np.random.default_rng([int(seed), 0xB0DE5])
    changes: dict[str, Any] = {}
    for name, (kind, a, b, keys) in RANGES.items():  # fixed order: the draws are reproducible
        base = getattr(default, name)
        if keys is None:
            changes[name] = _apply(kind, base, float(rng.uniform(a, b)))
        else:
            new = dict(base)
            for k in keys:
                new[k] = _apply(kind, base[k], float(rng.uniform(a, b)))
            changes[name] = new
    changes["retry_probability"] = 1.0
    changes["apprehension_frailty_sd"] = 0.0
    return dataclasses.replace(default, **changes)


def _apply(kind: str, base: float, u: float) -> float:
    if kind == "add":
        return base + u
    if kind == "mul":
        return base * u
    return u
