"""How the simulated records compare with the public figures of docs/sources.md (docs/calibration.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from estim.simulate.config import SimulationConfig
from estim.simulate.core import Simulation

VIOLATORS = ("no_documents", "invalid_documents", "smuggling")
"""Recorded values counted as "border violators detained" (state-border regime); the rest is "regime violators"."""


@dataclass(frozen=True)
class Figure:
    figure: str
    public: str  # as published, with its qualifier (~, >)
    value: float  # the number the ratio divides by
    source: str
    note: str = ""


def _flows(sim: Simulation) -> pd.DataFrame:
    cr = sim.records["checkpoint_records"].merge(
        sim.records["checkpoints"][["checkpoint_id", "section_id", "type", "name"]],
        on="checkpoint_id",
    )
    cr["year"] = cr["month"].str[:4].astype(int)
    cr["moy"] = cr["month"].str[5:7].astype(int)
    cr["all"] = cr["crossings_citizens"] + cr["crossings_foreigners"]
    return cr


def _sum(
    cr: pd.DataFrame, section: str, year: int, column: str, months: range = range(1, 13)
) -> float:
    sel = (cr["section_id"] == section) & (cr["year"] == year) & cr["moy"].isin(list(months))
    return float(cr.loc[sel, column].sum())


def _apprehended(
    sim: Simulation, section: str, year: int, violators: bool, months: range = range(1, 13)
) -> float:
    a = sim.records["apprehensions"]
    date = pd.to_datetime(a["date"])
    sel = (a["section_id"] == section) & (date.dt.year == year) & date.dt.month.isin(list(months))
    kind = a["recorded"].isin(VIOLATORS)
    return float((sel & (kind if violators else ~kind)).sum())


def calibration_table(sim: Simulation) -> pd.DataFrame:
    """One row per public figure: the figure, its published value, source, the simulated value and the ratio.

    Simulated values are computed from the records (what a border service would publish), except the
    apprehension probability, which only the truth knows. Figures published for years after the simulated
    period are left out. Columns: figure, public, source, simulated, ratio, note.
    """
    cr = _flows(sim)
    jan_sep = range(1, 10)
    rows: list[tuple[Figure, float]] = []
    years = set(cr["year"])

    def add(fig: Figure, year: int, value: float) -> None:
        if year in years:
            rows.append((fig, value))

    src_2010, src_2014 = "oreneda.ru/article1377.php", "gtsmi.ru/news/read/4866"
    add(
        Figure("Orenburg: foreigners' legal crossings, 2011", "1,938,143", 1_938_143, "regnum.ru/news/1613353.html",
               "the source's 'foreigners' probably include Kazakh citizens; the schema's crossings_foreigners do not"),
        2011, _sum(cr, "orenburg", 2011, "crossings_foreigners"),
    )  # fmt: skip
    add(
        Figure("Orenburg: foreigners' legal crossings, 2012", "2,352,703", 2_352_703, "regnum.ru/news/1613353.html"),
        2012, _sum(cr, "orenburg", 2012, "crossings_foreigners"),
    )  # fmt: skip
    add(
        Figure("Orenburg: all legal crossings, Jan-Sep 2010", "~2.7 M", 2.7e6, "oreneda.ru"),
        2010, _sum(cr, "orenburg", 2010, "all", jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: all legal crossings, Jan-Sep 2014", "~3.5 M", 3.5e6, "gtsmi.ru"),
        2014, _sum(cr, "orenburg", 2014, "all", jan_sep),
    )  # fmt: skip
    add(
        Figure("Omsk: all legal crossings, 2009", "> 2 M", 2e6, "omsk.infomsk.ru"),
        2009, _sum(cr, "omsk", 2009, "all"),
    )  # fmt: skip
    days = {2: 28, 3: 31, 4: 30}
    add(
        Figure("Omsk: legal crossings per day, normal days (Feb-Apr 2009)", "~4,000", 4000, "omskzdes.ru",
               "'normal day' read as the quietest months"),
        2009, _sum(cr, "omsk", 2009, "all", range(2, 5)) / sum(days.values()),
    )  # fmt: skip
    add(
        Figure("Omsk: legal crossings per day, New-Year holidays (Dec 2009)", "~8,000", 8000, "omskzdes.ru"),
        2009, _sum(cr, "omsk", 2009, "all", range(12, 13)) / 31,
    )  # fmt: skip
    add(
        Figure("Orenburg: foreigners refused entry, Jan-Sep 2010", "~1,300", 1300, src_2010),
        2010, _sum(cr, "orenburg", 2010, "refusals_of_entry", jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: foreigners refused entry, Jan-Sep 2014", "~12,000", 12_000, src_2014),
        2014, _sum(cr, "orenburg", 2014, "refusals_of_entry", jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: invalid documents detected, Jan-Sep 2010", "> 4,800", 4800, src_2010),
        2010, _sum(cr, "orenburg", 2010, "invalid_documents", jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: false documents detected, Jan-Sep 2014", "> 1,500", 1500, src_2014),
        2014, _sum(cr, "orenburg", 2014, "invalid_documents", jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: border violators detained, Jan-Sep 2010", "~500", 500, src_2010,
               "recorded no_documents, invalid_documents or smuggling"),
        2010, _apprehended(sim, "orenburg", 2010, True, jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: border-regime violators, Jan-Sep 2010", "~1,650", 1650, src_2010, "recorded regime_violation"),
        2010, _apprehended(sim, "orenburg", 2010, False, jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: border violators detained, Jan-Sep 2014", "> 750", 750, src_2014),
        2014, _apprehended(sim, "orenburg", 2014, True, jan_sep),
    )  # fmt: skip
    add(
        Figure("Orenburg: border-regime violators, Jan-Sep 2014", "~850", 850, src_2014),
        2014, _apprehended(sim, "orenburg", 2014, False, jan_sep),
    )  # fmt: skip
    add(
        Figure("Omsk: state-border regime violators, 2010", "~400", 400, "omskinform.ru/news/31083",
               "recorded no_documents, invalid_documents or smuggling"),
        2010, _apprehended(sim, "omsk", 2010, True),
    )  # fmt: skip
    add(
        Figure("Omsk: border-zone regime violators, 2010", "> 1,000", 1000, "omskinform.ru/news/31083",
               "recorded regime_violation"),
        2010, _apprehended(sim, "omsk", 2010, False),
    )  # fmt: skip
    road = cr[cr["type"] == "road"]
    sag = cr[(cr["name"] == "Sagarchin") & (cr["moy"] == 12)]
    if len(sag):
        rows.append(
            (
                Figure("Sagarchin (Orenburg road): longest December mean wait, hours", "10-15 h", 12.5, "29ru.net",
                       "a monthly mean against the days just before New Year: expected to be lower"),
                float(sag["mean_wait_minutes"].max()) / 60,
            )
        )  # fmt: skip
    isk = cr[cr["name"] == "Isilkul"]
    if len(isk):
        rows.append(
            (
                Figure("Isilkul (Omsk rail): median monthly mean wait, minutes", "~1 h", 60, "Petropavlovsk.news 2019"),
                float(isk["mean_wait_minutes"].median()),
            )
        )  # fmt: skip
    late = road[road["year"] >= 2012]
    if len(late):
        rows.append(
            (
                Figure("Road checkpoints after 2011: median monthly mean wait, minutes", "15-20 min", 17.5,
                       "newsland.com", "one road crossing in the source; all road checkpoint-months 2012+ here"),
                float(late["mean_wait_minutes"].median()),
            )
        )  # fmt: skip
    if len(road):
        q10, q90 = np.percentile(road["mean_wait_minutes"], [10, 90])
        rows.append(
            (
                Figure("Road checkpoints: median monthly mean wait, minutes (all years)", "15-60 min (assumed)", 37.5,
                       "assumed range", f"10-90 % of road checkpoint-months: {q10:.0f}-{q90:.0f} min"),
                float(road["mean_wait_minutes"].median()),
            )
        )  # fmt: skip
    p = sim.truth["apprehension_probability"]
    w = sim.truth["journeys"]
    rows.append(
        (
            Figure("Per-attempt apprehension probability p (journey-weighted mean)", "~0.35", 0.35,
                   "Massey & Singer 1995 (US 1965-89); DHS 2017: 0.55-0.85",
                   f"range over sections, months, categories: {float(p.min()):.2f}-{float(p.max()):.2f}"),
            float((p * w).sum() / w.sum()),
        )
    )  # fmt: skip
    return pd.DataFrame(
        [
            {
                "figure": f.figure,
                "public": f.public,
                "source": f.source,
                "simulated": value,
                "ratio": value / f.value,
                "note": f.note,
            }
            for f, value in rows
        ]
    )


def assumptions_table(config: SimulationConfig | None = None) -> pd.DataFrame:
    """One row per parameter: name, status (sourced / calibrated / assumed / design), note, default value."""
    cfg = config if config is not None else SimulationConfig()
    rows = SimulationConfig.provenance()
    for r in rows:
        r["value"] = getattr(cfg, r["name"])
    return pd.DataFrame(rows, columns=["name", "status", "value", "note"])


def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _value_text(v: object) -> str:
    """Compact text of a parameter value for a markdown cell."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_value_text(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_value_text(x) for x in v) + ")"
    if v is None:
        return "—"
    return str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


NOT_USED = (
    (
        "Omsk: > 2.5 M crossings a year (2019)",
        "omsk.infomsk.ru; omskzdes.ru",
        "after the simulated period; it sets Omsk's flow trend (extrapolated)",
    ),
    (
        "Ozinki (Saratov): 5,200 persons a day against a capacity of 2,280 (2022)",
        "fn-volga.ru",
        "after the period; Saratov's flows are assumed",
    ),
    (
        "Whole border: 5.5 M vehicles (2023), 2.2 M trucks",
        "seanews.ru",
        "vehicles are not simulated",
    ),
    (
        "Orenburg 2012: 1.34 M foreigners entered, 110,872 registered in the region",
        "regnum.ru/news/1613353.html",
        "entries and registrations are not simulated",
    ),
    (
        "Russia-wide 2019: > 6,000 illegal-crossing attempts, ~1,000 detained",
        "news.ru",
        "after the period; 'turned back' is not a simulated outcome",
    ),
    (
        "Kazakh side 2023: 210 transit migrants detained in ~7.5 months",
        "kz.kursiv.media 2023-08-16",
        "Kazakh-side records are not simulated",
    ),
)


def calibration_markdown(sim: Simulation) -> str:
    """docs/calibration.md: the calibration table at the simulation's seed and the parameters by status."""
    table = calibration_table(sim)
    lines = [
        "# Calibration of the synthetic border",
        "",
        "<!-- generated: do not edit; regenerate with",
        "     ./run python scripts/calibration_table.py --out docs/calibration.md -->",
        "",
        f"Generated by `./run python scripts/calibration_table.py --out docs/calibration.md` (seed {sim.seed}, "
        f"{sim.config.years} years from {sim.config.start_month}). The simulator and its equations: "
        "docs/simulator.md; the public figures and their sources: docs/sources.md. The data are **SYNTHETIC**.",
        "",
        "## Public figures and the simulated records",
        "",
        "Simulated values are computed from the simulated *records* at this seed (what a border service would "
        "publish), except the apprehension probability, which only the truth knows. A ratio is simulated / "
        "public; for a published lower bound ('> x') it should be a little above 1. Parameters were tuned so "
        "that the *expected* values match; at one seed the apprehension counts scatter by about ±15 % "
        "(gamma-Poisson over-dispersion), the legal flows by a few per cent.",
        "",
        "| public figure | published | source | simulated | ratio | note |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {_cell(r.figure)} | {_cell(r.public)} | {_cell(r.source)} | {_fmt(r.simulated)} | "
            f"{r.ratio:.2f} | {_cell(r.note)} |"
        )
    lines += [
        "",
        "Public figures not used as calibration targets:",
        "",
        "| figure | source | why |",
        "|---|---|---|",
        *[f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in NOT_USED],
        "",
        "## Parameters: sourced, calibrated, assumed",
        "",
        "Every field of `estim.simulate.SimulationConfig` with its default. *sourced*: a public figure; "
        "*calibrated*: tuned to the figures above; *assumed*: no public figure exists, a plausible value chosen "
        "by us (these are the assumptions a reader should question); *design*: a choice about the simulation. "
        "Section properties (lengths, checkpoints, terrain, population) are in data/sections.csv with a source "
        "per value.",
        "",
        "| parameter | status | default | note |",
        "|---|---|---|---|",
    ]
    for r in assumptions_table(sim.config).itertuples(index=False):
        lines.append(
            f"| `{r.name}` | {r.status} | {_cell(_value_text(r.value))} | {_cell(r.note)} |"
        )
    counts = assumptions_table(sim.config)["status"].value_counts()
    lines += [
        "",
        "Count by status: "
        + ", ".join(
            f"{k} {counts.get(k, 0)}" for k in ("sourced", "calibrated", "assumed", "design")
        )
        + ".",
        "",
    ]
    return "\n".join(lines)
