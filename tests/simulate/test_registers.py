"""The simulator's registers (docs/simulator.md, step 6): the in-country lists see only people in Russia, one
chance per journey into Russia; deportations see the apprehended and those found in Russia; every entry names
its section. Checked against the journeys that made them and against the closed-form expected counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from estim import simulate as sim
from estim.families.base import DataFieldError
from estim.families.lists.data import list_table
from estim.paths import SECTIONS_CSV
from estim.records import load_records, validate_path
from estim.records.schemas import CATEGORIES, IN_COUNTRY_REGISTERS, REGISTERS, SECTIONS
from estim.simulate import process as P
from estim.simulate.config import POLICY_EVENTS

SEED = 5
CONFIG = sim.SimulationConfig(years=6, retry_probability=0.5)  # some journeys give up


class World:
    """The people and registers of one simulation, drawn step by step as `simulate` draws them."""

    def __init__(self, seed: int, cfg: sim.SimulationConfig) -> None:
        tl = P.Timeline.make(cfg.start_month, cfg.years)
        raw, sections = P.read_sections(SECTIONS_CSV)
        self.surveyed = [i for i, s in enumerate(SECTIONS) if sections.at[s, "surveyed"]]
        checkpoints = P.build_checkpoints(sections, raw, cfg.citizens_only_checkpoints)
        in_force = {ev: tl.in_force(cfg.policy_start[ev]) for ev in POLICY_EVENTS}
        flows = P.simulate_flows(seed, cfg, tl, checkpoints, in_force)
        jr = P.simulate_journeys(seed, cfg, tl, sections, flows, in_force)
        self.people = P.simulate_people(seed, cfg, tl, jr, self.surveyed, False)
        self.regs = P.simulate_registers(seed, cfg, tl, self.people, self.surveyed)
        self.tl, self.cfg = tl, cfg
        pp = self.people
        # the crossing day, from the records' fields: the journey's last apprehension, or its own day
        month_start = tl.months[pp.journey_month].astype("datetime64[D]").astype(np.int64)
        app_day = month_start[pp.app_journey] + pp.app_day - 1
        last = pd.Series(app_day).groupby(pp.app_journey).max()
        self.crossing = month_start + pp.journey_day - 1
        self.crossing[last.index.to_numpy()] = last.to_numpy()
        entered = pp.journey_success & pp.journey_to_russia
        self.journeys = pd.DataFrame(
            {
                "person": pp.journey_person,
                "crossing": self.crossing,
                "entered": entered,
                "apprehended": pp.journey_apprehensions > 0,
                "category": pp.person_category[pp.journey_person],
            }
        )
        crossers = self.regs.person < self.regs.n_crossers
        self.entries = pd.DataFrame(
            {
                "person": self.regs.person[crossers],
                "register": np.array(REGISTERS)[self.regs.register[crossers]],
                "day": self.regs.date[crossers].astype(np.int64),
            }
        )
        self.end = int(tl.end.astype(np.int64))


@pytest.fixture(scope="module")
def world() -> World:
    return World(SEED, CONFIG)


@pytest.fixture(scope="module")
def simulation() -> sim.Simulation:
    return sim.simulate(seed=SEED, config=CONFIG)


def test_the_step_by_step_world_is_the_simulation(world, simulation):
    reg = simulation.records["registers"]
    assert len(reg) == world.regs.person.size
    assert sorted(reg["date"]) == sorted(world.regs.date.astype(str))
    assert (
        reg["register"].value_counts()
        == pd.Series(np.array(REGISTERS)[world.regs.register]).value_counts()
    ).all()


def test_nobody_outside_russia_is_on_an_in_country_list(world):
    """A person who gave up (r < 1) or whose every journey went to Kazakhstan is on no in-country list."""
    pp = world.people
    by_person = pd.DataFrame(
        {"success": pp.journey_success, "to_russia": pp.journey_to_russia}
    ).groupby(pp.journey_person)
    gave_up_all = ~by_person["success"].any()
    to_kazakhstan_only = ~by_person["to_russia"].any()
    entered = set(world.journeys.loc[world.journeys["entered"], "person"])
    # the test has power: there are such people, and in-country entries
    assert gave_up_all.sum() > 100 and to_kazakhstan_only.sum() > 100
    in_country = world.entries[world.entries["register"].isin(IN_COUNTRY_REGISTERS)]
    assert len(in_country) > 500
    on_list = set(in_country["person"])
    assert on_list <= entered
    assert on_list.isdisjoint(gave_up_all.index[gave_up_all])
    assert on_list.isdisjoint(to_kazakhstan_only.index[to_kazakhstan_only])


def test_in_country_entries_follow_a_crossing_into_russia(world):
    """Each entry on L is dated in [crossing, crossing + Δ_L] of some journey of that person into Russia."""
    j = world.journeys[world.journeys["entered"]]
    for reg in IN_COUNTRY_REGISTERS:
        e = world.entries[world.entries["register"] == reg].reset_index(names="entry")
        pairs = e.merge(j, on="person")
        delay = pairs["day"] - pairs["crossing"]
        ok = (delay >= 0) & (delay <= world.cfg.register_delay_days[reg])
        assert ok.groupby(pairs["entry"]).any().reindex(e["entry"], fill_value=False).all(), reg
    # several entries into Russia give several chances: somebody is on a list more than once
    counts = world.entries[world.entries["register"] == "police_check"].groupby("person").size()
    assert (counts > 1).sum() >= 5


def _after_the_stay(world: World) -> tuple[int, int]:
    """(in-country entries dated on or after the start of their person's next journey after the crossing that
    made them, in-country entries): the crossing is the person's latest into Russia on or before the entry (an
    earlier one's stay ended before that crossing's journey began)."""
    pp, tl = world.people, world.tl
    month_start = tl.months[pp.journey_month].astype("datetime64[D]").astype(np.int64)
    start = month_start + pp.journey_day - 1
    first = pd.Series(month_start[pp.app_journey] + pp.app_day - 1).groupby(pp.app_journey).min()
    start[first.index.to_numpy()] = first.to_numpy()
    starts = pd.DataFrame({"person": pp.journey_person, "start": start}).sort_values("start")
    crossings = world.journeys[world.journeys["entered"]][["person", "crossing"]]
    entries = world.entries[world.entries["register"].isin(IN_COUNTRY_REGISTERS)]
    source = pd.merge_asof(
        entries.sort_values("day"),
        crossings.sort_values("crossing"),
        left_on="day",
        right_on="crossing",
        by="person",
    )
    following = pd.merge_asof(
        source.sort_values("crossing"),
        starts,
        left_on="crossing",
        right_on="start",
        by="person",
        allow_exact_matches=False,
        direction="forward",
    )
    return int((following["day"] >= following["start"]).sum()), len(following)


def test_entries_dated_within_the_stay_end_before_the_next_journey():
    # ``register_dating = "stay"``: no in-country entry after its person's next journey has begun; the
    # default ("delay") dates some there (the test has power)
    import dataclasses

    late, total = _after_the_stay(World(SEED, dataclasses.replace(CONFIG, register_dating="stay")))
    assert total > 500 and late == 0
    late, total = _after_the_stay(World(SEED, CONFIG))
    assert late > 0.05 * total


def test_register_dating_is_checked_and_left_out_of_the_config_at_its_default():
    import dataclasses

    with pytest.raises(ValueError, match="register_dating"):
        dataclasses.replace(CONFIG, register_dating="entry")
    assert "register_dating" not in CONFIG.to_json()
    assert (
        '"register_dating":"stay"' in dataclasses.replace(CONFIG, register_dating="stay").to_json()
    )


def test_deportations_date_from_the_last_apprehension_or_the_first_entry(world):
    j = world.journeys
    per = j.groupby("person")
    apprehended = per["apprehended"].any()
    last_app = j[j["apprehended"]].groupby("person")["crossing"].max()
    first_entry = j[j["entered"]].groupby("person")["crossing"].min()
    e = world.entries[world.entries["register"] == "deportation"]
    assert e["person"].is_unique  # person-level: at most once
    app = e[apprehended.loc[e["person"]].to_numpy()]
    never = e[~apprehended.loc[e["person"]].to_numpy()]
    assert len(app) > 200 and len(never) > 20
    delay = app["day"].to_numpy() - last_app.loc[app["person"]].to_numpy()
    assert delay.min() >= 0 and delay.max() <= world.cfg.register_delay_days["deportation"]
    assert never["person"].isin(first_entry.index).all()  # found in Russia
    delay = never["day"].to_numpy() - first_entry.loc[never["person"]].to_numpy()
    assert delay.min() >= 0 and delay.max() <= world.cfg.register_delay_days["deportation"]


def _seen(base: np.ndarray, delay_max: int, end: int) -> np.ndarray:
    """P(base + U{0..Δ} ≤ end): the entry is dated within the simulated period."""
    return np.clip((end - base + 1) / (delay_max + 1), 0.0, 1.0)


@pytest.mark.parametrize("register", REGISTERS)
def test_register_counts_match_their_law(world, register):
    """The number of crossers' entries on each list equals, within 4 standard deviations, the sum of the
    entries' probabilities under the stated law (λ·π per journey into Russia for the in-country lists, per
    eligible person for deportations, times the chance that the delay keeps the entry in the period)."""
    cfg = world.cfg
    pi = np.array([cfg.register_probability[register][c] for c in CATEGORIES])
    lam, delay = cfg.register_completeness[register], cfg.register_delay_days[register]
    j = world.journeys
    if register in IN_COUNTRY_REGISTERS:
        e = j[j["entered"]]
        prob = lam * pi[e["category"], e["apprehended"].astype(int)]
        prob = prob * _seen(e["crossing"].to_numpy(), delay, world.end)
    else:
        per = j.groupby("person")
        apprehended = per["apprehended"].any()
        entered = per["entered"].any()
        category = per["category"].first()
        last_app = j[j["apprehended"]].groupby("person")["crossing"].max()
        first_entry = j[j["entered"]].groupby("person")["crossing"].min()
        base = last_app.reindex(apprehended.index).fillna(first_entry.reindex(apprehended.index))
        eligible = (apprehended | entered).to_numpy()
        prob = np.where(
            eligible,
            lam * pi[category.to_numpy(), apprehended.to_numpy().astype(int)],
            0.0,
        ) * _seen(base.fillna(0).to_numpy(), delay, world.end)
    observed = int((world.entries["register"] == register).sum())
    expected, sd = prob.sum(), np.sqrt((prob * (1 - prob)).sum())
    assert observed > 100
    assert abs(observed - expected) < 4 * sd, (observed, expected, sd)


def test_every_entry_names_the_section_of_its_person(world, simulation):
    regs, pp = world.regs, world.people
    crossers = regs.person < regs.n_crossers
    assert (regs.section[crossers] == pp.person_section[regs.person[crossers]]).all()
    legal = regs.person[~crossers] - regs.n_crossers
    assert (regs.section[~crossers] == regs.legal_entrant_section[legal]).all()
    # in the records: a register person's section is the section of their apprehensions
    reg, app = simulation.records["registers"], simulation.records["apprehensions"]
    assert set(reg["section_id"]) == {"omsk", "orenburg"}
    pairs = reg.merge(app[["person_key", "section_id"]].drop_duplicates(), on="person_key")
    assert len(pairs) > 500
    assert (pairs["section_id_x"] == pairs["section_id_y"]).all()


def test_registers_without_section_id_validate_and_load(simulation, tmp_path):
    """A researcher's registers may lack the optional section_id: valid, loaded with it empty, fitted for the
    whole border; a section's list table is refused (its register people cannot be placed)."""
    with_section = tmp_path / "with"
    sim.write_simulation(simulation, with_section)
    without = tmp_path / "without"
    sim.write_simulation(simulation, without)
    path = without / "registers.csv"
    pd.read_csv(path, dtype=str).drop(columns="section_id").to_csv(path, index=False)
    assert validate_path(without).ok
    records = load_records(without, key=b"k")
    assert records.registers["section_id"].isna().all() and len(records.registers) > 500
    whole = list_table(records, period="2007")
    full = load_records(with_section, key=b"k")
    reference = list_table(full, period="2007")
    assert whole["history_count"].values.tolist() == reference["history_count"].values.tolist()
    with pytest.raises(DataFieldError, match="section_id"):
        list_table(records, period="2007", section="omsk")
    # with the column, each section's table holds its own people, and the two sections make the border
    parts = [
        int(list_table(full, period="2007", section=s)["history_count"].sum())
        for s in ("omsk", "orenburg")
    ]
    assert sum(parts) == int(reference["history_count"].sum())
