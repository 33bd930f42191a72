"""The setting of the generative process: random sub-streams, the calendar, sections, checkpoints, policies.

Shared by the steps (`estim.simulate.crossings`, `estim.simulate.individuals`); draws nothing itself except
through `rng_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.records.schemas import CHECKPOINT_TYPES, SCHEMAS, SECTIONS
from estim.simulate.config import POLICY_EVENTS, SimulationConfig

# Sub-stream ids: fixed integers, never derived from dict or set order.
_STREAMS = {
    "checkpoints": 1,
    "legal": 2,
    "waits": 3,
    "journeys": 4,
    "apprehensions": 5,
    "individuals": 6,
    "records": 7,
    "registers": 8,
    "keys": 9,
    # a world with measures, coupled to the baseline (estim.simulate.coupling)
    "measure_journeys": 10,
    "measure_attempts": 11,
    "measure_individuals": 12,
    "measure_keys": 13,
}

# Real checkpoint names, with the published source that names them (docs/sources.md).
_NAMED_CHECKPOINTS = {
    "orenburg-road-1": (
        "Sagarchin",
        "29ru.net (name); type count: time56.ru; orenburg-news.net 2023-07-06",
    ),
    "omsk-rail-1": (
        "Isilkul",
        "Petropavlovsk.news 2019 (name); type count: tass.ru/obschestvo/25745513",
    ),
    "saratov-road-1": ("Ozinki", "fn-volga.ru (name); type: assumed"),
}

_POLICY_TEXT = {
    "border_residents_agreement": (
        "Agreement between Russia and Kazakhstan on crossings by residents of border territories (signed "
        "2006-10-03) in force: residents may cross at simplified crossing points, e.g. Novoshkatovka-Naidorf (Omsk)",
        "Agreement of the Governments of Kazakhstan and Russia on the crossing of the state border by residents "
        "of border territories, signed at Oral 2006-10-03; Law of the Republic of Kazakhstan No. 290 of 2007-07-21 "
        "ratifying it, text noting entry into force on 2009-04-27 (legal database document Z070000290_); "
        "docs/sources.md",
    ),
    "customs_union": (
        "Customs Union of Russia, Belarus and Kazakhstan removes internal customs controls at the border",
        "Russia Briefing, 2011-07-04 (after The Moscow Times): the last customs posts between Russia and "
        "Kazakhstan closed on 2011-07-01; the Customs Union's legal instrument not located; docs/sources.md",
    ),
    "joint_checkpoint_control": (
        "Agreement on joint control at checkpoints (signed 2009-09-11) in force",
        "Agreement of the Governments of Kazakhstan and Russia on cooperation in joint control at the state "
        "border, signed at Orenburg 2009-09-11; Law of the Republic of Kazakhstan No. 117-V of 2013-07-02 "
        "ratifying it, in force 2013-07-30 (adilet.zan.kz/kaz/docs/Z1300000117); docs/sources.md",
    ),
}


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """The random generator of one named sub-stream: PCG64 seeded by SeedSequence(seed, spawn_key=(id,))."""
    if seed < 0:
        raise EstimInputError(f"seed must be a non-negative integer, got {seed}")
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)))
    )


def negbin(rng: np.random.Generator, mean: np.ndarray, shape: float | np.ndarray) -> np.ndarray:
    """Gamma-Poisson counts with the given mean and shape φ (variance mean + mean²/φ).

    A mean below 0 (e.g. a volume multiplied by a reduction of more than 100 %) or a shape ≤ 0 has no such law:
    refused here, naming the rule, rather than left to numpy's "p <= 0, p > 1 or p contains NaNs"; the
    configuration's own checks (`SimulationConfig`) refuse the inputs that would lead to one."""
    mean = np.asarray(mean, dtype=float)
    shape = np.broadcast_to(np.asarray(shape, dtype=float), mean.shape)
    bad_mean = ~(np.isfinite(mean) & (mean >= 0))
    bad_shape = ~(np.isfinite(shape) & (shape > 0))
    if bad_mean.any() or bad_shape.any():
        raise ValueError(
            "negative-binomial counts need finite means ≥ 0 and finite shapes > 0; got "
            f"{int(bad_mean.sum())} other mean(s) (e.g. {mean[bad_mean][:3].tolist()}) and "
            f"{int(bad_shape.sum())} other shape(s) (e.g. {shape[bad_shape][:3].tolist()})"
        )
    return rng.negative_binomial(shape, shape / (shape + mean)).astype(np.int64)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------------------------------
# time


@dataclass(frozen=True)
class Timeline:
    """Calendar of the simulation: months, trend time t (years since the start), month of year, days."""

    months: np.ndarray  # datetime64[M]
    t: np.ndarray  # years since the first month: 0, 1/12, 2/12, …
    month_of_year: np.ndarray  # 1..12
    days: np.ndarray  # days in the month
    end: np.datetime64  # last day, datetime64[D]

    @classmethod
    def make(cls, start: str, years: int) -> Timeline:
        months = np.datetime64(start, "M") + np.arange(12 * years).astype("timedelta64[M]")
        first = months.astype("datetime64[D]")
        nxt = (months + np.timedelta64(1, "M")).astype("datetime64[D]")
        return cls(
            months=months,
            t=np.arange(months.size) / 12.0,
            month_of_year=(months.astype(int) % 12) + 1,
            days=(nxt - first).astype(int),
            end=nxt[-1] - np.timedelta64(1, "D"),
        )

    def in_force(self, start_date: str) -> np.ndarray:
        """I_e(t): the share of the days of month t on or after `start_date` (0 before, 1 after)."""
        first = self.months.astype("datetime64[D]")
        d = np.datetime64(start_date, "D")
        after = (first + self.days.astype("timedelta64[D]") - np.maximum(first, d)).astype(int)
        return np.clip(after / self.days, 0.0, 1.0)


def policy_multiplier(effect: float, in_force: np.ndarray) -> np.ndarray:
    """1 + (θ − 1)·I(t): the effect θ applied to the share of the month the change was in force."""
    return 1.0 + (effect - 1.0) * in_force


# ----------------------------------------------------------------------------------------------------------
# sections and checkpoints


def read_sections(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """sections.csv as a record table (numbers typed, bools as text) and indexed by section for the process.

    Rows come out in SECTIONS order.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    schema = SCHEMAS["sections"]
    if tuple(raw.columns) != schema.names:
        raise EstimInputError(f"{path}: columns must be {schema.names}")
    if sorted(raw["section_id"]) != sorted(SECTIONS):
        raise EstimInputError(f"{path}: needs one row for each of {SECTIONS}")
    raw = raw.set_index("section_id", drop=False).loc[list(SECTIONS)].reset_index(drop=True)
    for col in schema.columns:
        if col.kind == "int":
            raw[col.name] = raw[col.name].astype(np.int64)
        elif col.kind == "float":
            raw[col.name] = raw[col.name].astype(float)
        elif col.kind == "bool":
            raw[col.name] = np.where(
                raw[col.name].str.lower().isin(("true", "1", "yes")), "true", "false"
            )
    typed = raw.set_index("section_id")[[]].copy()
    typed["name"] = raw["name"].to_numpy()
    typed["length_km"] = raw["length_km"].astype(float).to_numpy()
    typed["border_population"] = raw["border_population"].astype(np.int64).to_numpy()
    typed["surveyed"] = (raw["surveyed"] == "true").to_numpy()
    typed["terrain"] = raw["terrain"].to_numpy()
    for kind in CHECKPOINT_TYPES:
        typed[kind] = raw[f"checkpoints_{kind}"].astype(np.int64).to_numpy()
    return raw, typed


def _short_name(section_name: str) -> str:
    return section_name.removesuffix(" Oblast")


def build_checkpoints(
    sections: pd.DataFrame, sections_raw: pd.DataFrame, citizens_only: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per checkpoint: id SECTION-TYPE-i, section, name, type, source; real names where known.

    Checkpoints in `citizens_only` (open to Russian and Kazakh citizens only) say so in their name, since the
    checkpoints table has no column for it and their foreign crossings are always 0.
    """
    rows = []
    src = dict(zip(sections_raw["section_id"], sections_raw["checkpoints_source"], strict=True))
    for s in SECTIONS:
        for kind in CHECKPOINT_TYPES:
            for i in range(1, int(sections.at[s, kind]) + 1):
                cid = f"{s}-{kind}-{i}"
                if cid in _NAMED_CHECKPOINTS:
                    name, source = _NAMED_CHECKPOINTS[cid]
                else:
                    name = f"{_short_name(sections.at[s, 'name'])} {kind} {i}"
                    source = (
                        src[s]
                        if src[s].startswith("assumed")
                        else f"type count: {src[s]}; name assumed"
                    )
                if cid in citizens_only:
                    name += " (citizens only)"
                    source += (
                        "; open to Russian and Kazakh citizens only: orenburg-news.net 2023-07-06"
                    )
                rows.append((cid, s, name, kind, source))
    return pd.DataFrame(rows, columns=list(SCHEMAS["checkpoints"].names))


def policy_events_table(cfg: SimulationConfig) -> pd.DataFrame:
    rows = []
    for ev in POLICY_EVENTS:
        desc, src = _POLICY_TEXT[ev]
        rows.append((f"{ev}-{cfg.policy_start[ev][:4]}", ev, cfg.policy_start[ev], "*", desc, src))
    return pd.DataFrame(rows, columns=list(SCHEMAS["policy_events"].names))
