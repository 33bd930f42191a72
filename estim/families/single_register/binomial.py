"""Data of the zero-truncated binomial: frequencies f_{x,k} plus each pattern's number of occasions t_x.

A unit had t occasions to be seen (trapping nights, monthly lists, visits) and was seen on k ∈ {1, …, t} of
them. The number of occasions is a ``[data]`` field: ``trials = 6`` (the same for everyone) or
``trials_column = "nights"`` (a column: people with different t fall in different patterns, t kept as the
coordinate ``trials`` over ``pattern``, not as a covariate). Seen more often than there were occasions is an
error naming the row and the columns.

With one occasion nobody can be seen twice, so nothing tells the seen from the population: ``trials`` must be
at least 2, and a ``trials_column`` must give someone 2 or more (rows with one occasion beside them are
fine: their p comes from the others through the model).

(Read by the spec reader, ``trials`` must be an integer: the reader lets an integer through only for fields that
otherwise take a list of columns, so the column has a field of its own.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import DataField, DataFieldError, DataKind
from estim.families.covariates import parse_formula
from estim.families.single_register.data import (
    FREQUENCY,
    _check_fields,
    _whole_numbers,
    covariate_variable,
    frequency_data,
)
from estim.families.single_register.layout import refuse_frequency_table_read_as_people

TRIALS = "trials"
MIN_TRIALS = 2
_ONE_OCCASION = (
    "with one occasion nobody can be seen twice, so the data cannot tell how many were never seen (N is not "
    "identifiable)"
)


def binomial_data(
    table: pd.DataFrame,
    *,
    times_seen: str,
    trials: int | str,
    count: str | None = None,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    formula: str | None = None,
) -> xr.Dataset:
    """`frequency_data` with each pattern's number of occasions t (coordinate ``trials``): ``trials`` an
    integer ≥ 2 (everyone) or the name of a column of whole numbers ≥ 1, at least one of them ≥ 2 on a row
    with people. A row with k > t raises `EstimInputError` naming the row and the columns."""
    if isinstance(trials, str):
        if trials not in table.columns:
            raise EstimInputError(
                f"no column {trials!r} (the number of occasions) in the table; it has "
                f"{', '.join(map(str, table.columns))}"
            )
        named = (
            {c for term in parse_formula(formula)[0] for c in term} if formula else set(covariates)
        )
        if trials in named or trials == times_seen or trials == count:
            raise EstimInputError(
                f"column {trials!r}: the number of occasions cannot also be a covariate, the times seen or "
                "the number of people per row"
            )
        t = _whole_numbers(table, trials, 1, "number of occasions")
        where = f"column {trials!r}"
    elif (
        isinstance(trials, (int, np.integer))
        and not isinstance(trials, bool)
        and trials >= MIN_TRIALS
    ):
        t = np.full(len(table), int(trials), dtype=np.int64)
        where = f"trials = {int(trials)}"
    elif isinstance(trials, (int, np.integer)) and not isinstance(trials, bool) and trials == 1:
        raise EstimInputError(f"trials = 1: {_ONE_OCCASION}; trials must be at least {MIN_TRIALS}")
    else:
        raise EstimInputError(
            f"trials: the number of occasions must be a whole number ≥ {MIN_TRIALS} or a column, not "
            f"{trials!r}"
        )
    if times_seen in table.columns:
        k = _whole_numbers(
            table, times_seen, 1, "times seen; people seen 0 times are the unknown part"
        )
        weight = (
            _whole_numbers(table, count, 0, "number of people on the row")
            if count and count in table.columns
            else np.ones(len(table), dtype=np.int64)
        )
        over = (k > t) & (weight > 0)
        if over.any():
            row = int(np.flatnonzero(over)[0])
            raise EstimInputError(
                f"column {times_seen!r}, row {row + 1}: seen {int(k[row])} times in {int(t[row])} "
                f"occasions ({where}): nobody is seen more often than there were occasions"
            )
        if isinstance(trials, str) and (weight > 0).any() and t[weight > 0].max() < MIN_TRIALS:
            raise EstimInputError(
                f"column {trials!r}: every row with people on it has 1 occasion; {_ONE_OCCASION} (at "
                f"least one unit needs {MIN_TRIALS} or more occasions)"
            )
    varies = isinstance(trials, str) and len(np.unique(t)) > 1
    data = frequency_data(
        table,
        times_seen=times_seen,
        count=count,
        covariates=covariates,
        categorical=categorical,
        formula=formula,
        strata=[trials] if varies else (),
    )
    if varies:
        # stored under the column's name (prefixed if it is one of the data's own, such as "trials" or "k")
        data = data.rename({covariate_variable(trials): TRIALS})
        data = data.assign_coords({TRIALS: data[TRIALS].astype(np.int64)})
    else:
        data = data.assign_coords({TRIALS: ("pattern", np.full(data.sizes["pattern"], int(t[0])))})
    data.attrs["trials"] = trials
    return data


def _check_binomial_fields(fields: Mapping[str, Any], source: str) -> None:
    if source == "records":
        raise DataFieldError(
            "records",
            "the zero-truncated binomial needs a table (the records give no number of occasions)",
        )
    trials, column = fields.get("trials"), fields.get("trials_column")
    if (trials is None) == (column is None):
        raise DataFieldError(
            "trials",
            "give the number of occasions: trials = 6 (the same for everyone) or trials_column = "
            '"<column>" (one number per row), not both'
            if trials is not None
            else "missing: the number of occasions, trials = 6 (the same for everyone) or trials_column = "
            '"<column>"',
        )
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < MIN_TRIALS
    ):
        why = f" ({_ONE_OCCASION})" if trials == 1 and not isinstance(trials, bool) else ""
        raise DataFieldError(
            "trials",
            f"a whole number ≥ {MIN_TRIALS} (for a column of them, use trials_column), not "
            f"{trials!r}{why}",
        )
    _check_fields(fields, source)


def _from_table(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    _check_binomial_fields(fields, "file")
    formula = fields.get("formula")
    column = fields.get("trials_column")
    data = binomial_data(
        table,
        times_seen=fields["times_seen"],
        trials=fields["trials"] if fields.get("trials") is not None else column,
        count=fields.get("count"),
        covariates=list(fields.get("covariates") or ()) if formula is None else (),
        categorical=list(fields.get("categorical") or ()),
        formula=formula,
    )
    if fields["layout"] == "individuals":
        refuse_frequency_table_read_as_people(
            table,
            fields["times_seen"],
            covariates=list(data.attrs["covariates"]),
            categorical=list(data.attrs["categorical"]),
            declared=[column] if column is not None else [],
        )
    return data


_TABLE_FIELDS = ("layout", "times_seen", "count", "covariates", "categorical", "formula")

BINOMIAL = DataKind(
    name="binomial frequency",
    fields=(
        *(f for f in FREQUENCY.fields if f.name in _TABLE_FIELDS),
        # many=True: the spec reader then passes an integer through (a list of columns is refused in check)
        DataField("trials", "the number of occasions, the same for everyone (e.g. 6)", many=True),
        DataField(
            "trials_column", "instead of trials: the column holding each row's number of occasions"
        ),
    ),
    check=_check_binomial_fields,
    from_benchmark=_from_table,
)
