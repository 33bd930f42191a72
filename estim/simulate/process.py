"""The generative process of the synthetic border, step by step (docs/simulator.md has it as equations).

Order of the steps, each drawing from its own random sub-stream so that changing one step's code leaves the
draws of the others unchanged:

1. checkpoints and their legal flows, refusals, invalid documents and waiting times;
2. illegal-crossing journeys per section × month × category (bypassers from flows and waits);
3. per-attempt apprehension under detection hazards, with repeated trials within a month;
4. for the surveyed sections, the people behind the journeys and one record per apprehension;
5. registers (police checks, overstays, deportations) over the surveyed sections' people and legal entrants.
"""

from estim.simulate.crossings import (
    WAIT_FLOOR_MINUTES,
    Flows,
    Journeys,
    Outcomes,
    journey_policy_effects,
    seasonal_effect,
    simulate_flows,
    simulate_journeys,
    simulate_outcomes_aggregate,
)
from estim.simulate.individuals import (
    People,
    Registers,
    people_outcomes,
    person_keys,
    simulate_people,
    simulate_registers,
)
from estim.simulate.setting import (
    Timeline,
    build_checkpoints,
    expit,
    negbin,
    policy_events_table,
    policy_multiplier,
    read_sections,
    rng_for,
)

__all__ = [
    "WAIT_FLOOR_MINUTES",
    "Flows",
    "Journeys",
    "Outcomes",
    "People",
    "Registers",
    "Timeline",
    "build_checkpoints",
    "expit",
    "journey_policy_effects",
    "negbin",
    "people_outcomes",
    "person_keys",
    "policy_events_table",
    "policy_multiplier",
    "read_sections",
    "rng_for",
    "seasonal_effect",
    "simulate_flows",
    "simulate_journeys",
    "simulate_outcomes_aggregate",
    "simulate_people",
    "simulate_registers",
]
