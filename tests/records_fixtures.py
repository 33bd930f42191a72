"""A tiny, valid record dataset written by hand, and helpers to break it one cell at a time.

The fixtures reach the tests through ``tests/conftest.py``; the helpers are imported directly
(``from records_fixtures import CLEAN_CSV, set_cell``: pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from estim.paths import SYNTHETIC_DIR

_SOURCE = "assumed"

CLEAN_CSV: dict[str, list[str]] = {
    "sections": [
        "section_id,name,length_km,length_km_source,checkpoints_road,checkpoints_rail,checkpoints_air,"
        "checkpoints_river,checkpoints_source,terrain,terrain_source,border_population,"
        "border_population_source,surveyed,surveyed_source",
        'omsk,Omsk Oblast,1204.2,"derived: 41 % of 7,512.8 km",4,2,1,1,tass.ru,forest_steppe,assumed,'
        "400000,assumed,true,the study",
        "orenburg,Orenburg Oblast,1876.0,kommersant.ru,7,2,3,0,time56.ru,steppe,assumed,900000,assumed,"
        "true,the study",
        "kurgan,Kurgan Oblast,420.0,assumed,2,1,0,0,assumed,forest_steppe,assumed,300000,assumed,false,"
        "the study",
    ],
    "checkpoints": [
        "checkpoint_id,section_id,name,type,source",
        "OMS-1,omsk,Isilkul,road,assumed",
        "OMS-2,omsk,Omsk airport,air,assumed",
        "ORE-1,orenburg,Orenburg road,road,assumed",
    ],
    "checkpoint_records": [
        "checkpoint_id,month,crossings_citizens,crossings_foreigners,refusals_of_entry,"
        "invalid_documents,mean_wait_minutes",
        "OMS-1,2010-01,12000,800,3,1,25.5",
        "OMS-1,2010-02,11000,750,2,0,30",
        "OMS-2,2010-01,4000,300,0,0,12.0",
        "ORE-1,2010-01,25000,1500,10,4,45.25",
    ],
    "apprehensions": [
        "apprehension_id,date,section_id,person_key,citizenship,border_zone_resident,direction,"
        "recorded,detected_by,category",
        "A1,2010-01-05,omsk,PK0000000001,KAZ,true,to_russia,no_documents,patrol,border_resident",
        "A2,2010-01-17,omsk,PK0000000002,UZB,false,to_russia,invalid_documents,technical,"
        "labour_migrant",
        "A3,2010-02-03,omsk,PK0000000001,KAZ,TRUE,to_kazakhstan,regime_violation,informant,"
        "border_resident",
        "A4,2010-01-20,orenburg,PK0000000003,TJK,0,to_russia,smuggling,patrol,smuggler",
    ],
    "apprehension_totals": [
        "section_id,month,category,detected_by,apprehensions",
        "kurgan,2010-01,border_resident,patrol,4",
        "kurgan,2010-01,labour_migrant,patrol,2",
        "kurgan,2010-02,border_resident,technical,0",
    ],
    "registers": [
        "entry_id,register,person_key,date",
        "R1,police_check,PK0000000002,2010-03-01",
        "R2,overstay,PK0000000009,2010-04-11",
    ],
    "policy_events": [
        "event_id,kind,start_date,section_id,description,source",
        'E1,customs_union,2010-07-01,*,"Customs union: no customs checks, same regime",eurasian treaty',
        "E2,joint_checkpoint_control,2012-03-01,omsk,Joint checks at Isilkul,assumed",
    ],
}
"""Lines of each record file (line 1 is the header), all valid."""

TOTALS_TO_DECEMBER = [*CLEAN_CSV["apprehension_totals"], "kurgan,2010-12,border_resident,patrol,0"]
"""The clean totals and a Kurgan total of December 2010: the records' span (the first to the last month of the
apprehensions, totals and checkpoint records) then runs to 2010-12 instead of 2010-02, so that register entries
of March to December 2010 are inside it (entries outside the span are on no list of multiple-list estimation)."""

RAW_PERSON_KEYS = ("PK0000000001", "PK0000000002", "PK0000000003", "PK0000000009")


def write_dataset(
    folder: Path, tables: dict[str, list[str]] | None = None, **replace: list[str] | None
) -> Path:
    """Write `tables` (default: the clean dataset) as CSV into `folder`; `replace` swaps or (None) drops tables."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, list[str] | None] = dict(tables or CLEAN_CSV)
    chosen.update(replace)
    for name, lines in chosen.items():
        if lines is not None:
            (folder / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def copy_synthetic(folder: Path, keep: Callable[[str, str], bool]) -> Path:
    """The shipped synthetic records copied into `folder`, each dated row of every file kept when
    `keep(file name, the row's date or month)`; files without a date or month column linked as shipped. A
    link is the shipped file itself: unlink it before writing an edited copy in its place."""
    folder.mkdir()
    for name in sorted(os.listdir(SYNTHETIC_DIR)):
        if not name.endswith(".csv"):
            continue
        lines = (SYNTHETIC_DIR / name).read_text(encoding="utf-8").splitlines()
        header = lines[0].split(",")
        column = "date" if "date" in header else "month" if "month" in header else None
        if column is None:
            (folder / name).symlink_to(SYNTHETIC_DIR / name)
            continue
        i = header.index(column)
        kept = [lines[0]] + [line for line in lines[1:] if keep(name, line.split(",")[i])]
        (folder / name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder


def set_cell(lines: list[str], line: int, column: str, value: str) -> list[str]:
    """A copy of `lines` with the cell of `column` on file line `line` (1-based; header is 1) replaced."""
    header = next(csv.reader([lines[0]]))
    out = list(lines)
    row = next(csv.reader([out[line - 1]]))
    row[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    out[line - 1] = buffer.getvalue()
    return out


@pytest.fixture
def clean_dataset_dir(tmp_path: Path) -> Path:
    """A folder holding the clean hand-written dataset as CSV files."""
    return write_dataset(tmp_path / "records")


@pytest.fixture
def isolated_pseudonym_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key from the environment or the user's home: tests see only what they set."""
    monkeypatch.delenv("ESTIM_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("ESTIM_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
