"""A list that lies inside another: a deportation register of apprehended people only. The stepwise search
reported N̂ = 4,716 for 4,706 people seen (deviance 410 on 5 df), with exit 0; 57,834 without that list.
Refused now, from a table and from records. The reference is what was put in: every deportee apprehended."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from estim import paths
from estim.errors import EstimInputError
from estim.families.closed import table_histories
from estim.families.lists.data import list_table
from estim.families.lists.table_checks import NESTED_MIN, refuse_unlinked_lists
from estim.records import DEFAULT_KEY, load_records

ABCD = ["A", "B", "C", "D"]


def _table(inner: int) -> pd.DataFrame:
    """Three overlapping lists, and D: `inner` people all on A."""
    rows = [
        (1, 0, 0, 0, 300), (0, 1, 0, 0, 280), (0, 0, 1, 0, 260), (1, 1, 0, 0, 60), (1, 0, 1, 0, 50),
        (0, 1, 1, 0, 45), (1, 1, 1, 0, 12), (1, 0, 0, 1, inner - inner // 3), (1, 1, 0, 1, inner // 3),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=[*ABCD, "n"])


def test_a_list_inside_another_is_refused_and_a_few_people_by_chance_are_not():
    data = table_histories(
        _table(30), layout="patterns", occasions=ABCD, count="n", takes_covariates=False
    )
    with pytest.raises(
        EstimInputError, match="the 30 people on the list 'D' are all also on the list 'A'"
    ):
        refuse_unlinked_lists(data, "the table")
    few = table_histories(
        _table(NESTED_MIN - 1), layout="patterns", occasions=ABCD, count="n", takes_covariates=False
    )
    refuse_unlinked_lists(few, "the table")


def test_deportations_of_apprehended_people_only_are_refused_from_records(tmp_path):
    folder = tmp_path / "records"
    shutil.copytree(paths.SYNTHETIC_DIR, folder, ignore=shutil.ignore_patterns("truth.nc"))
    registers = pd.read_csv(folder / "registers.csv", dtype=str, keep_default_na=False)
    apprehended = pd.read_csv(folder / "apprehensions.csv", dtype=str, keep_default_na=False)
    # every deportee of 2010 was apprehended in 2010: their keys replaced by such people's
    deported = (registers["register"] == "deportation") & registers["date"].str.startswith("2010")
    in_2010 = apprehended.loc[
        apprehended["date"].str.startswith("2010"), "person_key"
    ].drop_duplicates()
    keys = in_2010.sample(int(deported.sum()), random_state=1)
    registers.loc[deported, "person_key"] = keys.to_numpy()
    registers.to_csv(folder / "registers.csv", index=False)
    with pytest.raises(
        EstimInputError, match=r"on the list 'deportation' are all also on the list 'apprehensions'"
    ):
        list_table(load_records(folder, key=DEFAULT_KEY), period="2010")
