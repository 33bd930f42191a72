"""The border model's data from the shipped synthetic records, and the model built on them: made once for
every border test (building the model is the slow part)."""

from __future__ import annotations

import pytest

from estim.families.border import border_data, build_border
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records
from estim.statistics import sufficient_statistics


@pytest.fixture(scope="session")
def data():
    records = load_records(SYNTHETIC_DIR, key=DEFAULT_KEY)
    stats = sufficient_statistics(records, period="month", occasion=None)
    return border_data(stats, records.sections, records.policy_events)


@pytest.fixture(scope="session")
def model(data):
    return build_border(data)
