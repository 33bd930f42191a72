"""Loading a folder of records: validate every table, pseudonymise person keys, type the columns."""

from __future__ import annotations

import os
from pathlib import Path

from estim.errors import EstimInputError, InvalidRecords
from estim.records.dataset import check_dataset
from estim.records.pseudonymise import pseudonym_key
from estim.records.recordset import RecordSet, empty_frame
from estim.records.schemas import SCHEMAS


def load_records(
    path: str | os.PathLike[str],
    *,
    key: bytes | str | None = None,
    progress: bool = False,
    cap: int = 200,
) -> RecordSet:
    """Validate and load the record folder `path` into a `RecordSet`.

    Every table is checked first; any violation raises `InvalidRecords` whose report lists them (the first
    `cap`). Columns get the dtypes of `estim.records.recordset.typed_columns`, rows keep file order, absent
    optional tables are empty frames, and person keys are replaced by ``person_id`` (keyed with `key`, see
    `estim.records.pseudonymise`). Nothing is written. `progress` shows a bar over the files on stderr.
    """
    folder = Path(path)
    if not folder.exists():
        raise EstimInputError(f"no such folder: {path}")
    if not folder.is_dir():
        raise EstimInputError(
            f"{path} is a file; load_records reads a folder of record files "
            "(use validate_file to check a single file)"
        )
    secret = pseudonym_key(key)  # before reading: a misconfigured key fails fast
    checked = check_dataset(folder, str(path), cap=cap, key=secret, progress=progress)
    if not checked.report.ok:
        raise InvalidRecords(checked.report)
    tables = {
        name: checked.frames[name] if name in checked.frames else empty_frame(schema)
        for name, schema in SCHEMAS.items()
    }
    return RecordSet(**tables, source=folder)
