"""Schemas of the record types estim reads (docs/design.md §3).

One `Schema` per table. A schema says which columns a file must have, how each cell is read, which values
are impossible (a rule broken: negative counts, unparsable dates) and which are implausible (outside a
range no real border record reaches), which columns are keys, and which refer to another table.
`data/README.md` is the same content written for people; `tests/test_schemas_doc.py` keeps the two in step.

Cell kinds:
  id        non-empty text without surrounding spaces
  text      any text (may be empty when nullable)
  int       a whole number (``12``; ``12.0`` and ``1e3`` are rejected as not integer-formatted counts)
  float     a real number
  bool      ``true`` / ``false`` (also ``1``/``0``, ``yes``/``no``; case-insensitive)
  date      ``YYYY-MM-DD``
  month     ``YYYY-MM``
  choice    one of `choices`
  code      matches `pattern`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "text", "int", "float", "bool", "date", "month", "choice", "code"]

# The border between the Russian Federation and Kazakhstan exists since the dissolution of the USSR.
EARLIEST_DATE = "1991-12-26"

SECTIONS = (
    "astrakhan",
    "volgograd",
    "saratov",
    "samara",
    "orenburg",
    "chelyabinsk",
    "kurgan",
    "tyumen",
    "omsk",
    "novosibirsk",
    "altai_krai",
    "altai_republic",
)
"""Section ids, west to east: the twelve Russian regions that border Kazakhstan."""

CATEGORIES = ("border_resident", "labour_migrant", "transit_migrant", "smuggler", "bypasser")
"""Kinds of illegal crossing. ``bypasser``: a law-abiding foreigner who crosses outside a checkpoint."""

DETECTORS = ("patrol", "technical", "informant")
RECORDED = ("no_documents", "invalid_documents", "regime_violation", "smuggling")
DIRECTIONS = ("to_russia", "to_kazakhstan")
CHECKPOINT_TYPES = ("road", "rail", "air", "river")
TERRAINS = ("steppe", "semi_desert", "forest_steppe", "mountain", "river_delta")
REGISTERS = ("police_check", "overstay", "deportation")
IN_COUNTRY_REGISTERS = ("police_check", "overstay")
"""The registers that can only see a person who is in Russia (deportation also sees the apprehended)."""
POLICY_KINDS = (
    "border_residents_agreement",
    "customs_union",
    "joint_checkpoint_control",
    "other",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    unit: str = ""
    required: bool = True
    """The column must be present in the file."""
    nullable: bool = False
    """Empty cells are allowed."""
    minimum: float | None = None
    """Smaller values are impossible (rule ``minimum``)."""
    maximum: float | None = None
    """Larger values are impossible (rule ``maximum``)."""
    plausible: tuple[float, float] | None = None
    """Values outside this closed range are implausible (rule ``plausible``)."""
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    references: str | None = None
    """``"table.column"``: every value must occur there (rule ``unknown``); ``*`` (the whole border) is exempt."""
    not_after_today: bool = False
    """For dates and months: a value in the future is impossible."""


@dataclass(frozen=True)
class Schema:
    name: str
    """Record type name; also the file stem (``NAME.csv`` or ``NAME.parquet``)."""
    description: str
    columns: tuple[Column, ...]
    unique: tuple[tuple[str, ...], ...] = ()
    """Column sets that identify a row; a repeat is rule ``duplicate``."""
    optional: bool = False
    """The table may be absent from a dataset folder."""
    may_be_empty: bool = False
    """A file with a header and no rows is valid."""
    personal: tuple[str, ...] = field(default=())
    """Columns holding personal keys: pseudonymised at ingestion, never written out."""

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _src(value: str) -> Column:
    return Column(
        f"{value}_source",
        "text",
        f"where `{value}` comes from: a citation, a derivation, or `assumed`",
    )


SECTIONS_SCHEMA = Schema(
    name="sections",
    description="One row per border section (Russian region bordering Kazakhstan).",
    columns=(
        Column("section_id", "choice", "section id", choices=SECTIONS),
        Column("name", "text", "region name in English"),
        Column(
            "length_km",
            "float",
            "length of the section's border",
            "km",
            minimum=0.0,
            plausible=(10.0, 2500.0),
        ),
        _src("length_km"),
        Column(
            "checkpoints_road", "int", "road checkpoints", "count", minimum=0, plausible=(0, 30)
        ),
        Column(
            "checkpoints_rail", "int", "rail checkpoints", "count", minimum=0, plausible=(0, 15)
        ),
        Column("checkpoints_air", "int", "air checkpoints", "count", minimum=0, plausible=(0, 10)),
        Column(
            "checkpoints_river", "int", "river checkpoints", "count", minimum=0, plausible=(0, 10)
        ),
        _src("checkpoints"),
        Column("terrain", "choice", "dominant terrain along the line", choices=TERRAINS),
        _src("terrain"),
        Column(
            "border_population",
            "int",
            "people living in the near-border zone",
            "persons",
            minimum=0,
            plausible=(0, 3_000_000),
        ),
        _src("border_population"),
        Column("surveyed", "bool", "the study surveyed it: individual apprehension records exist"),
        _src("surveyed"),
    ),
    unique=(("section_id",),),
)

CHECKPOINTS_SCHEMA = Schema(
    name="checkpoints",
    description="One row per checkpoint (border crossing point) on the Russian side.",
    columns=(
        Column("checkpoint_id", "id", "checkpoint id"),
        Column(
            "section_id",
            "choice",
            "section the checkpoint lies in",
            choices=SECTIONS,
            references="sections.section_id",
        ),
        Column("name", "text", "checkpoint name"),
        Column("type", "choice", "checkpoint type", choices=CHECKPOINT_TYPES),
        Column(
            "source", "text", "where the checkpoint's existence and type come from, or `assumed`"
        ),
    ),
    unique=(("checkpoint_id",),),
)

CHECKPOINT_RECORDS_SCHEMA = Schema(
    name="checkpoint_records",
    description="One row per checkpoint and month: legal flows and what the control found.",
    columns=(
        Column("checkpoint_id", "id", "checkpoint", references="checkpoints.checkpoint_id"),
        Column("month", "month", "calendar month", not_after_today=True),
        Column(
            "crossings_citizens",
            "int",
            "legal crossings by Russian and Kazakh citizens",
            "crossings",
            minimum=0,
            plausible=(0, 1_500_000),
        ),
        Column(
            "crossings_foreigners",
            "int",
            "legal crossings by other foreigners",
            "crossings",
            minimum=0,
            plausible=(0, 1_000_000),
        ),
        Column(
            "refusals_of_entry",
            "int",
            "foreigners refused entry",
            "persons",
            minimum=0,
            plausible=(0, 20_000),
        ),
        Column(
            "invalid_documents",
            "int",
            "invalid documents detected",
            "documents",
            minimum=0,
            plausible=(0, 20_000),
        ),
        Column(
            "mean_wait_minutes",
            "float",
            "mean waiting time at control",
            "minutes",
            minimum=0.0,
            plausible=(0.0, 2880.0),
        ),
    ),
    unique=(("checkpoint_id", "month"),),
)

APPREHENSIONS_SCHEMA = Schema(
    name="apprehensions",
    description="One row per apprehension between checkpoints (surveyed sections only).",
    columns=(
        Column("apprehension_id", "id", "record id"),
        Column("date", "date", "date of apprehension", not_after_today=True),
        Column(
            "section_id", "choice", "section", choices=SECTIONS, references="sections.section_id"
        ),
        Column(
            "person_key",
            "id",
            "identifier of the person (personal data: pseudonymised at ingestion)",
        ),
        Column(
            "citizenship",
            "code",
            "citizenship, ISO 3166-1 alpha-3 (`XXX` stateless/unknown)",
            pattern=r"[A-Z]{3}",
        ),
        Column("border_zone_resident", "bool", "lives in the near-border zone"),
        Column("direction", "choice", "direction of the attempted crossing", choices=DIRECTIONS),
        Column("recorded", "choice", "what was recorded", choices=RECORDED),
        Column("detected_by", "choice", "who detected the crossing", choices=DETECTORS),
        Column("category", "choice", "case classification at apprehension", choices=CATEGORIES),
    ),
    unique=(("apprehension_id",),),
    personal=("person_key",),
)

APPREHENSION_TOTALS_SCHEMA = Schema(
    name="apprehension_totals",
    description="Monthly apprehension counts for sections without individual records.",
    columns=(
        Column(
            "section_id", "choice", "section", choices=SECTIONS, references="sections.section_id"
        ),
        Column("month", "month", "calendar month", not_after_today=True),
        Column("category", "choice", "case classification", choices=CATEGORIES),
        Column("detected_by", "choice", "who detected the crossing", choices=DETECTORS),
        Column(
            "apprehensions",
            "int",
            "apprehensions in the month",
            "apprehensions",
            minimum=0,
            plausible=(0, 5_000),
        ),
    ),
    unique=(("section_id", "month", "category", "detected_by"),),
    optional=True,
    may_be_empty=True,
)

REGISTERS_SCHEMA = Schema(
    name="registers",
    description="Person keys found on other lists, for multiple-systems estimation.",
    columns=(
        Column("entry_id", "id", "record id"),
        Column("register", "choice", "which list", choices=REGISTERS),
        Column(
            "person_key",
            "id",
            "identifier of the person (personal data: pseudonymised at ingestion)",
        ),
        Column("date", "date", "date of the entry", not_after_today=True),
        Column(
            "section_id",
            "choice",
            "border section of the person the entry is about (where they crossed or entered); without it "
            "register entries cannot be placed in a section",
            required=False,
            choices=SECTIONS,
            references="sections.section_id",
        ),
    ),
    unique=(("entry_id",),),
    optional=True,
    may_be_empty=True,
    personal=("person_key",),
)

POLICY_EVENTS_SCHEMA = Schema(
    name="policy_events",
    description="Dated changes of border regime (natural experiments).",
    columns=(
        Column("event_id", "id", "event id"),
        Column("kind", "choice", "kind of change", choices=POLICY_KINDS),
        Column("start_date", "date", "date the change took effect"),
        Column(
            "section_id",
            "choice",
            "section affected; `*` for the whole border",
            choices=(*SECTIONS, "*"),
            references="sections.section_id",
        ),
        Column("description", "text", "what changed"),
        Column("source", "text", "citation"),
    ),
    unique=(("event_id",),),
    optional=True,
    may_be_empty=True,
)

SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        SECTIONS_SCHEMA,
        CHECKPOINTS_SCHEMA,
        CHECKPOINT_RECORDS_SCHEMA,
        APPREHENSIONS_SCHEMA,
        APPREHENSION_TOTALS_SCHEMA,
        REGISTERS_SCHEMA,
        POLICY_EVENTS_SCHEMA,
    )
}
"""All record types, by name (= file stem), in dependency order (referenced tables first)."""
