"""A spec can fit records (not only benchmarks): the data it hands the family equal counts made independently
from the raw CSV of the shipped synthetic records."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.paths import SYNTHETIC_DIR
from estim.run.fit import load_data
from estim.run.spec import parse_spec


def _spec(family: str, **data):
    return parse_spec(
        {"name": "t", "family": family, "seed": 1, "data": {"records": str(SYNTHETIC_DIR), **data}}
    )


@pytest.fixture(scope="module")
def omsk_2010() -> pd.DataFrame:
    a = pd.read_csv(SYNTHETIC_DIR / "apprehensions.csv", dtype=str)
    return a[(a.section_id == "omsk") & a.date.str.startswith("2010")]


def test_frequency_spec_counts_people_by_times_apprehended(omsk_2010):
    data = load_data(_spec("ztpoisson", section="omsk", period="2010"))
    per_person = Counter(omsk_2010.person_key)
    expected = Counter(per_person.values())  # k -> people seen k times
    f = data["frequency"].sum("pattern")
    got = {int(k): int(v) for k, v in zip(f.k.values, f.values, strict=True) if v}
    assert got == dict(expected)


def test_history_spec_counts_quarterly_capture_histories(omsk_2010):
    data = load_data(_spec("M0", section="omsk", period="2010", occasion="quarter"))
    quarter = (omsk_2010.date.str[5:7].astype(int) - 1) // 3
    seen = {}
    for person, q in zip(omsk_2010.person_key, quarter, strict=True):
        seen.setdefault(person, [0, 0, 0, 0])[q] = 1
    expected = Counter("".join(map(str, h)) for h in seen.values())
    counts = data["history_count"].sel(stratum="omsk")
    got = {str(h): int(v) for h, v in zip(counts.history.values, counts.values, strict=True) if v}
    assert got == dict(expected)
    assert np.array_equal(data["capture"].sel(history="1001").values, [1, 0, 0, 1])


def test_unknown_section_names_the_field():
    with pytest.raises(EstimInputError, match=r"\[data\] section"):
        load_data(_spec("ztpoisson", section="moscow", period="2010"))
