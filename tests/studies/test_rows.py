"""What every study shares (estim/studies/rows.py): the binomial test of a coverage below 0.90 when a dataset
gives many intervals that miss together, and rows written as CSV or gzipped CSV."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from estim.studies.rows import below_nominal, below_nominal_by_dataset, write_rows


def _below(k: int, n: int, p: float = 0.9) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p), summed exactly."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1))


def _rows(covered_by_dataset: list[list[bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"dataset": d, "year": y, "covered": c}
            for d, years in enumerate(covered_by_dataset)
            for y, c in enumerate(years)
        ]
    )


def test_one_interval_a_dataset_is_the_exact_binomial_test():
    covered = [[True]] * 16 + [[False]] * 4
    rows = _rows(covered)
    assert below_nominal_by_dataset(rows, "covered", by=["dataset"]) == pytest.approx(
        _below(16, 20), rel=1e-12
    )
    assert below_nominal(rows["covered"]) == pytest.approx(_below(16, 20), rel=1e-12)


def test_datasets_that_miss_all_their_years_or_none_count_as_one_trial_each():
    # 21 datasets of 12 years: 16 cover every year, 5 none. As 252 independent years the test would say
    # P(X ≤ 192 | 252, 0.9) ≈ 1e-6; the datasets are the trials: 16 of 21
    rows = _rows([[True] * 12] * 16 + [[False] * 12] * 5)
    p = below_nominal_by_dataset(rows, "covered", by=["dataset"])
    assert p == pytest.approx(_below(16, 21), rel=1e-9)
    assert below_nominal(rows["covered"]) < 1e-5 < p


def test_clustering_never_makes_the_test_stricter():
    # every dataset covers 11 of 12 years: less spread than independent years would show (deff < 1)
    rows = _rows([[True] * 11 + [False]] * 10)
    assert below_nominal_by_dataset(rows, "covered", by=["dataset"]) == pytest.approx(
        below_nominal(rows["covered"]), rel=1e-12
    )


def test_all_covered_or_none_and_no_rows():
    assert below_nominal_by_dataset(_rows([[True] * 12] * 3), "covered", by=["dataset"]) == 1.0
    p = below_nominal_by_dataset(_rows([[False] * 12] * 3), "covered", by=["dataset"])
    assert p == pytest.approx(0.1**36)
    empty = pd.DataFrame(columns=["dataset", "covered"])
    assert math.isnan(below_nominal_by_dataset(empty, "covered", by=["dataset"]))


def test_its_false_alarm_rate_is_near_the_level_when_datasets_miss_together():
    """Calibration against simulation: datasets whose years are covered with a dataset's own probability,
    Beta-distributed with mean 0.90 (coverage is nominal on average, but a dataset's years miss together).
    At the 5 % level the by-dataset test rejects about 5 % of studies; counting years as independent rejects
    far more."""
    rng = np.random.default_rng(20261203)
    studies, groups, years = 1000, 30, 12
    by_dataset, independent = 0, 0
    for _ in range(studies):
        share = rng.beta(1.8, 0.2, groups)  # mean 0.9, intra-dataset correlation 0.5
        hits = rng.random((groups, years)) < share[:, None]
        rows = _rows(hits.tolist())
        by_dataset += below_nominal_by_dataset(rows, "covered", by=["dataset"]) <= 0.05
        independent += below_nominal(rows["covered"]) <= 0.05
    assert by_dataset / studies < 0.08
    assert independent / studies > 0.15


def test_gzipped_rows_read_back_as_written_and_the_same_rows_give_the_same_bytes(tmp_path):
    rows = pd.DataFrame(
        {"dataset": [0, 1], "section": ["omsk", "orenburg"], "covered": [True, False]}
    )
    first = write_rows(rows, tmp_path / "a" / "grid.csv.gz")
    second = write_rows(rows, tmp_path / "b" / "grid.csv.gz")  # another folder, later: same bytes
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()).decode() == rows.to_csv(index=False)
    pd.testing.assert_frame_equal(pd.read_csv(first), rows)
    plain = write_rows(rows, tmp_path / "grid.csv")
    assert plain.read_text() == rows.to_csv(index=False)


def test_coverage_counts_an_empty_cell_read_back_from_a_csv_as_not_covered(tmp_path):
    from estim.studies.rows import coverage

    path = tmp_path / "rows.csv"
    pd.DataFrame({"covered": [True, None, False, True]}).to_csv(path, index=False)
    c = coverage(pd.read_csv(path)["covered"])  # the empty cell reads back as NaN
    assert (c["n"], c["covered"]) == (4, 2)
