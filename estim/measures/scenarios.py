"""Which scenarios a forecast draws, and the memory their draws take, checked before any is allocated.

A forecast of n measures draws, by default, the baseline and every combination of them: 2^n scenarios
(``"combinations"``). ``"each"`` draws the baseline, each measure alone and all of them together: n + 2 (n + 1
for one measure, whose "all together" is itself). The effect sizes are the same in both (their own random
streams); the counts, coupled across the scenarios drawn (common random numbers), are other draws of the same
laws.

The memory grows with the scenarios. A forecast keeps, for every scenario × draw × section × month ×
category (a **cell**; the months run from the month after the data to the horizon's end), the journeys' rate μ
and the detection hazard H as float64 (16 bytes) to the end, and the three counts as int32 (12 bytes): 28
bytes a cell, held at once. The counts are drawn `CHUNK` draws at a time, with temporaries of about 120 bytes
a cell of one chunk (70 at r = 1, where fewer counts are drawn); the baseline's rates and the scenario being
built take about 140 bytes a draw × section × month × category, whatever the number of scenarios; summing over
the categories, 36 bytes a cell ÷ categories; the data period's history, about 16 bytes a history draw ×
section × data month × category and 175 for each of the 25 draws drawn at a time. These constants were measured with `tracemalloc` on the shipped synthetic
data (12 sections, 5 categories, 144 months), and the estimate is the largest of the phases
(`ForecastPlan.peak_bytes`): it lay 2–11 % above the measured peak from 1 to 8 scenarios and 10 to 1,000
draws (more for forecasts under ~10 MB, where a fixed 1 MB dominates). Three measures at 1,000 draws over
36 months need about 0.8 GB (5.5 GB over 240 months); twelve measures (4,096 scenarios) at 1,000 draws over
36 months, about 310 GB, and 1.3 GB with ``"each"`` (14 scenarios).

`check_memory` refuses (`EstimInputError`, exit 2) a forecast whose peak would pass the budget, by default
half of the machine's memory (`default_max_memory`), before anything is allocated, and says what would fit.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from estim.errors import EstimInputError
from estim.measures.spec import BASELINE, MeasureSpec

# posterior draws simulated at a time (memory); fixed, so that results do not depend on it
CHUNK = 50
SCENARIO_SETS = ("combinations", "each")
FALLBACK_MAX_MEMORY = 4e9  # bytes: the budget where the machine's memory cannot be read

# bytes, measured (module docstring)
_RATES = 16  # μ and H of a cell, float64, every scenario's until the counts are drawn
_COUNTS = 12  # unobserved, apprehensions, attempts of a cell, int32 (attempts made last, from the other two)
_SUMMED = 36  # a cell's three counts summed over the categories: int64 sums and their int32 copies, ÷ categories
_CHUNK_TEMPORARIES = 120  # a cell of the chunk being drawn (r < 1)
_CHUNK_TEMPORARIES_R1 = 70  # the same at r = 1
_BUILD = 140  # a draw × section × month × category, while the scenarios' rates are built
_BASE = 100  # the same, held while the counts are drawn
_HISTORY = 16  # a history draw × section × data month × category
_HISTORY_TEMPORARIES = 175  # the same, for each of the draws `crossings` draws at a time
_HISTORY_CHUNK = 25  # `estim.families.border.crossings`' draws at a time
_FIXED = 1_000_000  # what does not scale with the sizes


def scenario_count(n_measures: int, which: str = "combinations") -> int:
    """How many scenarios, the baseline included, a forecast of ``n_measures`` draws."""
    _check_set(which)
    if which == "combinations":
        return 2**n_measures
    return 1 + n_measures + (1 if n_measures >= 2 else 0)


def scenario_names(
    measures: Sequence[MeasureSpec], which: str = "combinations"
) -> list[tuple[str, tuple[int, ...]]]:
    """(name, indices of its measures) of the baseline and every combination (``"combinations"``), or of the
    baseline, each measure alone and all together (``"each"``), smallest first."""
    _check_set(which)
    n = len(measures)
    if which == "combinations":
        sizes = range(1, n + 1)
        combos = [c for size in sizes for c in itertools.combinations(range(n), size)]
    else:
        combos = [(i,) for i in range(n)] + ([tuple(range(n))] if n >= 2 else [])
    return [(BASELINE, ())] + [("+".join(measures[i].name for i in c), c) for c in combos]


def _check_set(which: str) -> None:
    if which not in SCENARIO_SETS:
        raise EstimInputError(
            f"--scenarios {which!r}: give 'combinations' (the baseline and every combination of the "
            "measures) or 'each' (the baseline, each measure alone and all together)"
        )


@dataclass(frozen=True)
class ForecastPlan:
    """The sizes of a forecast, known before it draws anything: its memory (module docstring)."""

    measures: int
    scenarios: str  # a SCENARIO_SETS value
    draws: int
    sections: int
    months: int  # from the month after the data to the horizon's end
    categories: int
    repeated_trials: bool = False  # r = 1 at every draw
    by_category: bool = False
    history_draws: int = 0
    data_months: int = 0

    @property
    def n_scenarios(self) -> int:
        return scenario_count(self.measures, self.scenarios)

    @property
    def cells(self) -> int:
        """scenario × draw × section × month × category."""
        return self.n_scenarios * self.draws * self.sections * self.months * self.categories

    @property
    def count_bytes(self) -> int:
        """The three count arrays by category (int32), the forecast's result before any sum."""
        return _COUNTS * self.cells

    @property
    def peak_bytes(self) -> int:
        """The forecast's estimated peak memory in bytes: the largest of its phases — building the scenarios'
        rates, drawing the counts a chunk at a time, summing them over the categories, drawing the data
        period's history — each with what is held then."""
        cells = self.cells
        per_draw = self.draws * self.sections * self.months * self.categories
        chunk = cells // self.draws * min(self.draws, CHUNK) if self.draws else 0
        temporaries = _CHUNK_TEMPORARIES_R1 if self.repeated_trials else _CHUNK_TEMPORARIES
        history = (
            (
                _HISTORY * self.history_draws
                + _HISTORY_TEMPORARIES * min(self.history_draws, _HISTORY_CHUNK)
            )
            * self.sections
            * self.data_months
            * self.categories
        )
        summing = 0 if self.by_category else _SUMMED * cells // self.categories
        summed = 0 if self.by_category else _COUNTS * cells // self.categories
        held = _RATES * cells + _BASE * per_draw  # the rates are kept to the end
        return _FIXED + max(
            _RATES * cells + _BUILD * per_draw,
            held + _COUNTS * 2 // 3 * cells + temporaries * chunk,
            held + _COUNTS * cells + summing,
            held + _COUNTS * cells + summed + history,
        )


def default_max_memory() -> float:
    """Half of the machine's physical memory in bytes (`FALLBACK_MAX_MEMORY` where it cannot be read)."""
    total = physical_memory()
    return total / 2 if total else FALLBACK_MAX_MEMORY


def physical_memory() -> float | None:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


_UNITS = {"": 1e9, "b": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(text: str) -> float:
    """Bytes of a size such as "8GB", "500 MB", "1.5T" or "16" (a bare number is GB; 1 GB = 10^9 bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)b?\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise EstimInputError(
            f"--max-memory {text!r}: give a size above 0 such as 8GB, 500MB or 16 (GB)"
        )
    unit = match.group(2) or ("b" if str(text).strip().lower().endswith("b") else "")
    return float(match.group(1)) * _UNITS[unit]


def human_size(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} bytes"


def check_memory(plan: ForecastPlan, max_memory: float | None = None) -> None:
    """Refuse a forecast whose estimated peak memory passes ``max_memory`` bytes (default: half of the
    machine's memory), naming its sizes and what would fit: fewer draws, fewer measures, ``--scenarios
    each``, or a larger budget."""
    default = max_memory is None
    budget = default_max_memory() if default else float(max_memory)
    if not budget > 0:
        raise EstimInputError(f"max_memory must be above 0 bytes, got {max_memory}")
    need = plan.peak_bytes
    if need <= budget:
        return
    n, s = plan.measures, plan.n_scenarios
    which = (
        f"the baseline and every combination of {n} measures, 2^{n}"
        if plan.scenarios == "combinations"
        else f"the baseline, each of {n} measures alone and all together"
    )
    machine = physical_memory()
    said = (
        f"the default, half of this machine's {human_size(machine)}"
        if default and machine
        else "the default"
        if default
        else "--max-memory"
    )
    ways = []
    draws = _most(lambda d: replace(plan, draws=d), plan.draws, budget)
    if draws >= 10:
        ways.append(f"--draws {draws} or fewer")
    if plan.scenarios == "combinations":
        fewer = _most(lambda k: replace(plan, measures=k), n, budget)
        if fewer >= 1:
            ways.append(f"at most {fewer} measures (each one more doubles the scenarios)")
        each = replace(plan, scenarios="each")
        if each.n_scenarios < s:
            fits = "fits" if each.peak_bytes <= budget else "still too large"
            ways.append(
                f"--scenarios each (the baseline, each measure alone and all together: "
                f"{each.n_scenarios} scenarios, about {human_size(each.peak_bytes)}: {fits})"
            )
    elif n > 1:
        fewer = _most(lambda k: replace(plan, measures=k), n, budget)
        if fewer >= 1:
            ways.append(f"at most {fewer} measures")
    ways.append("a larger --max-memory, if the machine has the memory free")
    months = f"{plan.months} months (from the month after the data to the horizon's end)"
    raise EstimInputError(
        f"the forecast would need about {human_size(need)} of memory, more than the "
        f"{human_size(budget)} allowed ({said}): {s:,} scenarios ({which}) × {plan.draws:,} draws × "
        f"{plan.sections} sections × {months} × {plan.categories} categories = {plan.cells:,} cells "
        f"(about 28 bytes each, held at once, plus the temporaries of drawing {min(plan.draws, CHUNK)} "
        "draws at a time and the data period's history). "
        f"Give {'; or '.join(ways)}"
    )


INT32_MAX = 2**31 - 1  # the forecast's counts are stored as int32


def check_counts(largest: float, why: str = "") -> None:
    """Refuse a forecast whose counts in a cell (a section's month, summed over the categories: the attempts)
    reach ``largest`` > `INT32_MAX`: stored as int32 they wrapped round to negative numbers, and the forecast
    printed a baseline of millions with its % changes blank, exit 0. Such counts come from a projection run
    away beyond the data (``why``: the level random walk of --level-sd, over a long horizon)."""
    if largest > INT32_MAX:
        raise EstimInputError(
            f"the forecast's counts reach {largest:,.0f} crossings in one section's month, more than "
            f"{INT32_MAX:,} (the most a count is stored as): the projection beyond the data has run away"
            f"{f' ({why})' if why else ''}; give a smaller --level-sd or a shorter --horizon"
        )


def _most(plan_of: Callable[[int], ForecastPlan], upto: int, budget: float) -> int:
    """The largest k in 0..upto whose plan fits the budget (the peak grows with k), 0 if none."""
    lo, hi = 0, upto
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plan_of(mid).peak_bytes <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
