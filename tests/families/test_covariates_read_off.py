"""A covariate read off the capture counts (the count itself, its log, a "seen more than once" flag) is no
covariate: the unseen have no value of it, and it makes the capture probability follow the counts. A
covariate equal to the count gave 537–542 for a simulated population of 400 (Huggins Mt), and 12,252 where
the same single-register data say ~7,319, with only a goodness-of-fit warning. Such a covariate is refused
(strictly monotone in the count) or said (a cruder function of it); real covariates pass without a word."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.closed import table_histories
from estim.families.closed.huggins import simulate_huggins
from estim.families.single_register.data import frequency_data

OCCASIONS = [f"o{j}" for j in range(1, 6)]


@pytest.fixture(scope="module")
def animals() -> pd.DataFrame:
    table = simulate_huggins("Mt", np.random.default_rng(2026), 400, (0.2, 0.3, 0.25, 0.35, 0.2))
    return table.assign(caught=table[OCCASIONS].sum(axis=1))


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """A Poisson register of 3,000 people whose rate follows age; the 1,000-odd seen at least once."""
    rng = np.random.default_rng(5)
    age = rng.normal(40, 10, 3000).round()
    seen = rng.poisson(np.exp(-0.5 + 0.02 * (age - 40)))
    table = pd.DataFrame({"seen": seen, "age": age, "sex": rng.choice(["F", "M"], 3000)})
    return table[table["seen"] > 0].reset_index(drop=True)


def _huggins(table: pd.DataFrame, covariate: str) -> None:
    table_histories(table, layout="individuals", occasions=OCCASIONS, covariates=[covariate])


def _read_off_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "function of the number of" in str(w.message)]


@pytest.mark.parametrize("derived", [lambda k: k, np.log, lambda k: 10 - 2 * k])
def test_huggins_covariate_monotone_in_the_captures_is_refused(animals, derived):
    table = animals.assign(times=derived(animals["caught"].to_numpy(float)))
    with pytest.raises(
        EstimInputError, match=r"'times' is a function of the number of occasions caught \(1 → "
    ):
        _huggins(table, "times")


def test_a_seen_more_than_once_flag_is_said_and_real_covariates_are_not(animals):
    flag = animals.assign(recaptured=np.where(animals["caught"] > 1, "yes", "no"))
    said = _read_off_warnings(lambda: _huggins(flag, "recaptured"))
    assert len(said) == 1 and "(1 → no, 2 → yes, 3 → yes" in said[0]
    for real in ("sex", "weight"):
        assert _read_off_warnings(lambda real=real: _huggins(animals, real)) == []


@pytest.mark.parametrize("layout", ["individuals", "frequencies"])
def test_single_register_covariate_equal_to_the_count_is_refused(people, layout):
    table = people.assign(times=people["seen"])
    if (
        layout == "frequencies"
    ):  # one row per count: the covariate is then a label of the row's count
        table = table.groupby(["seen", "times"]).size().rename("n").reset_index()
    count = "n" if layout == "frequencies" else None
    with pytest.raises(
        EstimInputError, match=r"'times' is a function of the number of times seen \(1 → 1, 2 → 2"
    ):
        frequency_data(table, times_seen="seen", count=count, covariates=["times"])


def test_single_register_flag_said_real_covariates_not(people):
    flagged = people.assign(recaptured=(people["seen"] > 1).astype(int))
    said = _read_off_warnings(
        lambda: frequency_data(flagged, times_seen="seen", covariates=["recaptured"])
    )
    assert len(said) == 1
    for real in ("age", "sex"):
        call = lambda real=real: frequency_data(people, times_seen="seen", covariates=[real])  # noqa: E731
        assert _read_off_warnings(call) == []


def test_a_few_people_whose_covariate_happens_to_follow_the_count_are_not_refused():
    """Five people seen 1, 1, 2, 3, 3 times, weighing 60, 60, 70, 80, 80 kg: with two people a count, a real
    covariate can follow the count by chance, so nothing is refused or said (fewer than 5 people a value)."""
    table = pd.DataFrame({"seen": [1, 1, 2, 3, 3], "weight": [60.0, 60.0, 70.0, 80.0, 80.0]})
    assert (
        _read_off_warnings(lambda: frequency_data(table, times_seen="seen", covariates=["weight"]))
        == []
    )
