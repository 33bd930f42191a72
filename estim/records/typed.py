"""The typed loading: a validated file's checked columns as a typed, pseudonymised table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from estim.records.cells import _Checked
from estim.records.parse import _TEXT_KINDS
from estim.records.read import RawTable
from estim.records.recordset import PERSON_ID, typed_columns
from estim.records.schemas import Schema


def _typed_frame(
    raw: RawTable, schema: Schema, columns: dict[str, _Checked], key: bytes
) -> pd.DataFrame:
    """The loaded table: dtypes of `typed_columns(schema)`, person keys replaced by ``person_id``.

    Consumes `columns` and ``raw.columns`` as it goes, so that each raw column is freed once typed.
    """
    from estim.records.pseudonymise import pseudonymise_codes

    dtypes = typed_columns(schema)
    data: dict[str, pd.Series] = {}
    n = raw.n_rows
    for col in schema.columns:
        checked = columns.pop(col.name, None)
        raw.columns.pop(col.name, None)
        if col.name in schema.personal:
            assert checked is not None and checked.codes is not None and checked.uniques is not None
            data[PERSON_ID] = pseudonymise_codes(checked.codes, checked.uniques, key)
            continue
        dtype = dtypes[col.name]
        if checked is None:  # an optional column the file lacks
            data[col.name] = pd.Series(pd.array([None] * n, dtype=_nullable(dtype)))
        elif col.kind in _TEXT_KINDS:
            text = checked.typed
            assert isinstance(text, pa.ChunkedArray)
            series = pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.string())))
            if checked.null.any():
                series[checked.null] = pd.NA
            data[col.name] = series
        else:
            values = checked.typed
            assert isinstance(values, np.ndarray)
            if checked.null.any():
                series = pd.Series(values).astype(_nullable(dtype))
                series[checked.null] = pd.NA if dtype in ("int64", "bool") else np.nan
                data[col.name] = series
            else:
                data[col.name] = pd.Series(values.astype(dtype, copy=False))
    return pd.DataFrame(data, copy=False)


def _nullable(dtype: str) -> str:
    return {"int64": "Int64", "bool": "boolean"}.get(dtype, dtype)
