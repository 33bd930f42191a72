"""The shipped benchmark datasets are intact and agree with the published descriptions of them."""

import pandas as pd
import pytest

from estim.benchmarks import load_benchmark, reference_estimates, verify_checksums
from estim.errors import EstimInputError


def test_checksums_match():
    assert verify_checksums() == []


def test_observed_counts_match_publications():
    refs = reference_estimates()
    dutch = load_benchmark("netherlands_immigrants")
    assert len(dutch) == refs["netherlands_immigrants"]["observed"] == 1880
    assert len(load_benchmark("hare")) == refs["hare"]["observed"] == 68
    uk = load_benchmark("uk_modern_slavery_5lists")
    assert uk["count"].sum() == refs["uk_modern_slavery_5lists"]["observed"] == 2744
    kosovo = load_benchmark("kosovo_4lists")
    assert kosovo["Freq"].sum() == refs["kosovo_4lists"]["observed"] == 4400


def test_dutch_frequency_table_agrees_with_individual_rows():
    dutch = load_benchmark("netherlands_immigrants")
    freq = load_benchmark("netherlands_immigrants", frequencies=True)
    counts = dutch["capture"].value_counts().sort_index()
    assert list(freq["freq"]) == [1645, 183, 37, 13, 1, 1]  # van der Heijden et al. (2003), Table 1
    pd.testing.assert_series_equal(
        counts.rename(None),
        freq.set_index("nbcap")["freq"].rename(None),
        check_names=False,
        check_index=False,
    )


def test_closed_form_references_follow_from_the_data():
    # Chao's and Zelterman's closed forms depend only on n, f1, f2: if the data were altered these would move.
    import math

    ref = reference_estimates()["netherlands_immigrants"]["estimates"]
    n, f1, f2 = 1880, 1645, 183
    assert n + f1**2 / (2 * f2) == pytest.approx(ref["chao"]["n_hat"], abs=0.01)
    assert n / (1 - math.exp(-2 * f2 / f1)) == pytest.approx(ref["zelterman"]["n_hat"], abs=0.01)


def test_unknown_benchmark_is_a_clear_error():
    with pytest.raises(EstimInputError, match="unknown benchmark"):
        load_benchmark("nope")
