"""The border model's data from the shipped synthetic records, and the model built on them: made once for
every border test (building the model is the slow part)."""

from __future__ import annotations

import pytensor
import pytest
from pytensor.compile.mode import Mode

from estim.families.border import build_border
from estim.families.border.data_kind import BORDER_RECORDS
from estim.paths import SYNTHETIC_DIR
from estim.records import DEFAULT_KEY, load_records


@pytest.fixture(scope="session")
def data():
    """The border model's data as a spec reads them: with the linkage to the in-country registers."""
    return BORDER_RECORDS.from_records(load_records(SYNTHETIC_DIR, key=DEFAULT_KEY), {})


@pytest.fixture(scope="session")
def model(data):
    return build_border(data)


@pytest.fixture(autouse=True)
def unoptimised_graphs():
    """Compile the border tests' functions without PyTensor's graph rewrites: the rewrites of one gradient take
    ~12 s and are the suite's slowest part, and these tests check values, which the rewrites must not change
    (each test's data are small enough that the unoptimised Python evaluation is quick). A test that needs
    the rewritten graph sets its own mode."""
    with pytensor.config.change_flags(mode=Mode(linker="py", optimizer=None)):
        yield
