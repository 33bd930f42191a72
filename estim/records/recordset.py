"""The typed, validated, pseudonymised tables that ingestion hands on (`load_records` makes them)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from estim.records.schemas import SCHEMAS, Schema

PERSON_ID = "person_id"
"""Column that replaces ``person_key`` after ingestion: a keyed hash (HMAC-SHA256, 16 hex characters)."""

_DTYPES = {
    "id": "string",
    "text": "string",
    "code": "string",
    "choice": "string",
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "date": "datetime64[s]",
    "month": "datetime64[s]",  # the first day of the month
}


def typed_columns(schema: Schema) -> dict[str, str]:
    """Column -> pandas dtype of a loaded table (person keys already replaced by ``person_id``)."""
    out = {}
    for c in schema.columns:
        name = PERSON_ID if c.name in schema.personal else c.name
        out[name] = _DTYPES[c.kind]
    return out


def empty_frame(schema: Schema) -> pd.DataFrame:
    """A table with the loaded columns and dtypes and no rows (an optional table that was absent)."""
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in typed_columns(schema).items()})


@dataclass
class RecordSet:
    """All record tables of one dataset, validated and typed.

    Conventions: text-like columns are pandas ``string``; ``int`` -> int64; ``float`` -> float64; ``bool`` ->
    bool; dates -> ``datetime64[s]``; months -> ``datetime64[s]`` at the first day of the month. Person keys are
    gone: ``person_id`` (a keyed hash) stands in their place. Absent optional tables are empty frames.
    """

    sections: pd.DataFrame
    checkpoints: pd.DataFrame
    checkpoint_records: pd.DataFrame
    apprehensions: pd.DataFrame
    apprehension_totals: pd.DataFrame
    registers: pd.DataFrame
    policy_events: pd.DataFrame
    source: Path | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SCHEMAS}
