"""The exact conditional test of the repeat counts' geometric law (`estim.families.border.repeat_dispersion`):
its null law against enumeration, its calibration on geometric counts whatever q, its power against a frailty,
the shipped data, and the fit that refuses before sampling."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import xarray as xr

from estim.errors import ModelRejected
from estim.families.border import BORDER
from estim.families.border import repeat_dispersion as D


def _compositions(total: int, parts: int):
    """Every composition of ``total`` into ``parts`` positive parts, by brute force."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        edges = (0, *cuts, total)
        yield tuple(b - a for a, b in zip(edges, edges[1:], strict=False))


def test_the_null_moments_are_those_of_enumeration():
    """The closed-form mean and variance of Σ K² equal, as exact fractions, those of enumerating every
    composition (each equally likely), for every n ≤ 6 people and S ≤ 14 apprehensions."""
    for people in range(1, 7):
        for total in range(people, 15):
            squares = [sum(k * k for k in c) for c in _compositions(total, people)]
            count = len(squares)
            mean = Fraction(sum(squares), count)
            variance = Fraction(sum(q * q for q in squares), count) - mean * mean
            assert D.square_sum_moments(people, total) == (mean, variance), (people, total)


def test_the_null_moments_match_uniform_draws_in_a_large_cell():
    """A cell of 40 people and 900 apprehensions, too large to enumerate: uniform compositions drawn as a
    uniform (n − 1)-subset of the S − 1 gaps have the closed form's mean and variance."""
    rng = np.random.default_rng(11)
    people, total, draws = 40, 900, 20_000
    keys = rng.random((draws, total - 1))
    cuts = np.sort(np.argpartition(keys, people - 2, axis=1)[:, : people - 1] + 1, axis=1)
    edges = np.concatenate(
        [np.zeros((draws, 1), np.int64), cuts, np.full((draws, 1), total, np.int64)], axis=1
    )
    squares = (np.diff(edges, axis=1).astype(float) ** 2).sum(axis=1)
    mean, variance = D.square_sum_moments(people, total)
    sd = float(variance) ** 0.5
    assert abs(squares.mean() - float(mean)) < 4 * sd / np.sqrt(draws)
    assert squares.var(ddof=1) / float(variance) == pytest.approx(1.0, abs=0.05)


def test_a_huge_cell_costs_what_a_small_one_does():
    """The moments are exact integers' ratios: a cell of 10⁶ apprehensions has a positive variance, and one
    with a single composition has none."""
    mean, variance = D.square_sum_moments(1_000, 1_000_000)
    assert variance > 0 and mean > 1_000_000**2 / 1_000
    assert D.square_sum_moments(1, 5) == (25, 0)
    assert D.square_sum_moments(4, 4) == (4, 0)
    with pytest.raises(ValueError, match="no composition"):
        D.square_sum_moments(3, 2)


def _geometric_cells(rng, n_cells, frailty_sd=0.0):
    """f_k (cell, k) of zero-truncated geometric repeat counts, q varying across cells (0.1–0.6); with a
    frailty, each person's hazard H = −log(1 − p) multiplied by a log-normal of spread ``frailty_sd``."""
    k_max = 200
    out = np.zeros((n_cells, k_max), dtype=np.int64)
    for c in range(n_cells):
        q = rng.uniform(0.1, 0.6)
        people = rng.integers(2, 60)
        hazard = -np.log1p(-q) * np.exp(frailty_sd * rng.standard_normal(people))
        q_person = np.minimum(-np.expm1(-hazard), 0.97)
        counts = rng.geometric(1.0 - q_person)  # 1, 2, …: zero-truncated geometric in q
        out[c] = np.bincount(np.minimum(counts, k_max) - 1, minlength=k_max)
    return out, np.arange(1, k_max + 1)


def test_the_test_is_calibrated_on_geometric_counts_whatever_q():
    """Without a frailty z is standard normal: over 40 simulated sets of 150 cells of varying q, its mean and
    sd are those of N(0, 1) within their sampling error, and no set fails at p 0.001."""
    rng = np.random.default_rng(7)
    zs = []
    for _ in range(40):
        f, k = _geometric_cells(rng, 150)
        test = D.dispersion_test(f, k)
        zs.append(test.z)
        assert test.passed
    zs = np.array(zs)
    assert abs(zs.mean()) < 3 / np.sqrt(len(zs))
    assert 0.7 < zs.std(ddof=1) < 1.35


def test_a_frailty_is_detected():
    """People whose hazards differ (log-normal spread 0.5) give heavier-tailed repeat counts: z large and
    positive, more within-cell variation than the geometric allows, the test failed."""
    f, k = _geometric_cells(np.random.default_rng(3), 400, frailty_sd=0.5)
    test = D.dispersion_test(f, k)
    assert test.z > 5 and test.p_value < D.DISPERSION_P_MIN and not test.passed
    assert test.ratio > 1.05
    assert "MISFIT" in test.describe()


def test_nothing_to_test_without_varying_cells():
    f = np.zeros((3, 4), dtype=np.int64)
    f[0, 0] = 5  # five people apprehended once: one composition
    f[1, 2] = 1  # one person, three times
    assert D.dispersion_test(f, np.arange(1, 5)) is None


def _border_data(frequency: np.ndarray) -> xr.Dataset:
    """The variables the test reads: two sections, the first surveyed."""
    cells, k_max = frequency.shape
    freq = np.zeros((2, cells, 1, k_max), dtype=np.int64)
    freq[0, :, 0] = frequency
    freq[1, :, 0] = frequency[::-1] * 3  # not surveyed: never read
    return xr.Dataset(
        {
            "frequency": (("section", "month", "category", "k"), freq),
            "surveyed": ("section", np.array([True, False])),
        },
        coords={"k": np.arange(1, k_max + 1)},
    )


def test_the_border_family_checks_its_surveyed_sections_unless_it_has_a_frailty():
    rng = np.random.default_rng(5)
    frail, _ = _geometric_cells(rng, 300, frailty_sd=0.5)
    data = _border_data(frail)
    result = BORDER.precheck(data)
    assert result["name"] == "repeat_dispersion" and not result["passed"]
    assert "frailty_sd" in result["remedy"]
    direct = D.dispersion_test(frail, np.arange(1, frail.shape[1] + 1))
    assert result["z"] == pytest.approx(direct.z)
    # a model with a frailty has no geometric law to test
    assert BORDER.precheck(data, frailty_sd="estimated") is None
    assert BORDER.precheck(data, frailty_sd=0.5) is None
    assert BORDER.precheck(data, frailty_sd=0) is not None
    none_surveyed = data.assign(surveyed=("section", np.array([False, False])))
    assert BORDER.precheck(none_surveyed) is None


def test_the_shipped_data_pass(data):
    """The shipped records (simulated without a frailty) are consistent with the geometric law."""
    result = BORDER.precheck(data)
    assert result["passed"] and abs(result["z"]) < 3
    assert result["cells"] > 1000


def test_a_fit_of_data_that_fail_is_refused_before_sampling(monkeypatch, tmp_path):
    """`estim.run.fit.fit` raises `ModelRejected` (the CLI's exit 3) naming the test, and never samples."""
    import estim.run.fit as run_fit
    from estim.paths import REPO_ROOT
    from estim.run.spec import read_spec

    frail, _ = _geometric_cells(np.random.default_rng(5), 300, frailty_sd=0.5)
    monkeypatch.setattr(run_fit, "load_data", lambda spec, table=None: _border_data(frail))
    monkeypatch.setattr(run_fit.store, "cached", lambda *a, **k: None)

    def sample(*args, **kwargs):
        raise AssertionError("sampled")

    monkeypatch.setattr(run_fit, "sample", sample)
    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    with pytest.raises(
        ModelRejected, match="before sampling: MISFIT: repeat apprehensions.*frailty_sd"
    ):
        # a folder it can write in (a fit is not begun where it cannot be saved): refused for the data
        run_fit.fit(spec, out=tmp_path / "never_written.nc")
    assert not (tmp_path / "never_written.nc").exists()


def test_model_rejected_exits_3():
    import click
    from click.testing import CliRunner

    from estim.cli.common import EXIT_GATE, _EstimGroup

    @click.group(cls=_EstimGroup)
    def group() -> None:
        pass

    @group.command()
    def refuse() -> None:
        raise ModelRejected("border: the data reject the model")

    result = CliRunner().invoke(group, ["refuse"])
    assert result.exit_code == EXIT_GATE
    assert "the data reject the model" in result.output
