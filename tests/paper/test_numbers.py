"""The paper's numbers store: JSON round trip, byte reproducibility, verification and Monte Carlo errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from estim.errors import EstimInputError
from estim.paper.numbers import (
    Number,
    compare,
    compare_timings,
    format_report,
    mc_mean,
    mc_quantile,
    read_numbers,
    verify_folder,
    write_numbers,
)


def _numbers(**changes: Number) -> dict:
    flat = {
        "whole_border.median": Number(123456.75, "monte_carlo", mcse=40.0, unit="crossings"),
        "whole_border.lower": Number(98000, "monte_carlo", mcse=55.5, unit="crossings"),
        "records.count": Number(10_000_000, "deterministic", note="shipped records"),
        "records.first_month": Number("2015-01", "deterministic"),
        "reference.rate": Number(0.1 + 0.2, "deterministic"),
        "timing.fit_seconds": Number(812.3, "timing", unit="s"),
        "sections": Number(12, "deterministic"),
    }
    flat.update(changes)
    return flat


def _nest(flat: dict) -> dict:
    tree: dict = {}
    for name, number in flat.items():
        *groups, leaf = name.split(".")
        node = tree
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = number
    return tree


def test_round_trip_keeps_values_kinds_and_nesting(tmp_path):
    path = write_numbers(tmp_path / "border.json", _nest(_numbers()))
    back = read_numbers(path)
    assert back == _numbers()
    assert back["records.first_month"].value == "2015-01"
    assert isinstance(back["sections"].value, int) and back["sections"].kind == "deterministic"
    tree = json.loads(path.read_text(encoding="utf-8"))
    # what the Typst manuscript reads: n.whole_border.median.value
    assert tree["whole_border"]["median"] == {
        "value": 123456.75,
        "kind": "monte_carlo",
        "mcse": 40.0,
        "unit": "crossings",
        "note": "",
    }
    assert '"value": 0.3\n' in path.read_text()  # 12 significant digits, not 0.30000000000000004


def test_same_numbers_give_the_same_bytes(tmp_path):
    a = write_numbers(tmp_path / "a.json", _nest(_numbers()))
    reordered = dict(reversed(list(_numbers().items())))
    b = write_numbers(tmp_path / "b.json", _nest(reordered))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes().endswith(b"}\n")
    write_numbers(a, _nest(_numbers(sections=Number(13, "deterministic"))))
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Number(1.0, "monte_carlo"),
        lambda: Number(1.0, "monte_carlo", mcse=0.0),
        lambda: Number(1.0, "deterministic", mcse=0.1),
        lambda: Number("x", "timing"),
        lambda: Number(math.nan, "deterministic"),
        lambda: Number(True, "deterministic"),
        lambda: Number(1, "guess"),
    ],
)
def test_bad_numbers_are_refused(make):
    with pytest.raises(EstimInputError, match="number"):
        make()


def test_bad_names_are_refused_and_named(tmp_path):
    with pytest.raises(EstimInputError, match="whole.border"):
        write_numbers(tmp_path / "x.json", {"whole.border": Number(1, "deterministic")})
    with pytest.raises(EstimInputError, match="group.median"):
        write_numbers(tmp_path / "x.json", {"group": {"median": 3.5}})
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"a": {"value": 1, "kind": "monte_carlo", "mcse": null, "unit": "", "note": ""}}'
    )
    with pytest.raises(EstimInputError, match="bad.json: a: .*mcse"):
        read_numbers(bad)


def test_identical_numbers_verify():
    assert compare(_numbers(), _numbers()) == []


def test_a_deterministic_number_moved_by_1e_9_is_caught():
    moved = _numbers(**{"reference.rate": Number(0.3 + 1e-9, "deterministic")})
    (diff,) = compare(_numbers(), moved)
    assert diff.name == "reference.rate" and diff.kind == "deterministic"
    assert diff.committed == 0.3 and diff.rebuilt == pytest.approx(0.300000001, abs=1e-15)
    assert diff.tolerance == 0.0
    assert compare(
        _numbers(), _numbers(**{"records.first_month": Number("2015-02", "deterministic")})
    )


def test_monte_carlo_numbers_pass_within_3_combined_mcse_and_fail_outside():
    combined = math.hypot(40.0, 30.0)  # committed mcse 40, rebuilt 30
    for factor, fails in [(2.0, False), (-2.9, False), (4.0, True), (-4.0, True)]:
        rebuilt = _numbers(
            **{
                "whole_border.median": Number(
                    123456.75 + factor * combined, "monte_carlo", 30.0, "crossings"
                )
            }
        )
        diffs = compare(_numbers(), rebuilt)
        assert bool(diffs) is fails, factor
        if fails:
            assert diffs[0].name == "whole_border.median"
            assert diffs[0].tolerance == pytest.approx(3 * combined)
            assert "whole_border.median" in format_report(diffs)


def test_timings_are_reported_not_verified():
    rebuilt = _numbers(**{"timing.fit_seconds": Number(2400.0, "timing", unit="s")})
    assert compare(_numbers(), rebuilt) == []
    (timing,) = compare_timings(_numbers(), rebuilt)
    assert (timing.name, timing.committed, timing.rebuilt) == ("timing.fit_seconds", 812.3, 2400.0)
    report = format_report([], [timing])
    assert "0 differences" in report and "timing.fit_seconds" in report and "2400" in report


def test_missing_new_and_changed_kind_are_caught():
    rebuilt = _numbers(sections=Number(12.0, "monte_carlo", mcse=0.1))
    del rebuilt["records.count"]
    rebuilt["whole_border.upper"] = Number(150000.0, "monte_carlo", mcse=60.0)
    reasons = {d.name: d.reason for d in compare(_numbers(), rebuilt)}
    assert reasons == {
        "records.count": "missing in the rebuild",
        "whole_border.upper": "new in the rebuild",
        "sections": "kind changed to monte_carlo",
    }


def test_verify_folder_names_every_difference_and_missing_file(tmp_path):
    committed, rebuilt = tmp_path / "committed", tmp_path / "rebuilt"
    for folder in (committed, rebuilt):
        write_numbers(folder / "border.json", _nest(_numbers()))
    assert verify_folder(committed, rebuilt)[0]
    write_numbers(committed / "data.json", {"rows": Number(5, "deterministic")})
    write_numbers(rebuilt / "border.json", _nest(_numbers(sections=Number(11, "deterministic"))))
    ok, report = verify_folder(committed, rebuilt)
    assert not ok
    assert "border.json: sections (deterministic)" in report
    assert "data.json" in report and "file missing in the rebuild" in report
    assert "2 differences" in report and "timing.fit_seconds" in report


# --- Monte Carlo errors against their known values ------------------------------------------------


def _chains(draws: np.ndarray) -> xr.DataArray:
    return xr.DataArray(draws, dims=("chain", "draw"))


def _ar1(rho: float, chains: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=(chains, n))
    x = np.empty_like(eps)
    x[:, 0] = eps[:, 0] / math.sqrt(1 - rho**2)  # start at stationarity
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    return x


def test_mcse_of_the_mean_is_sd_over_root_n_for_independent_draws():
    draws = np.random.default_rng(1).normal(10.0, 2.0, size=(4, 2500))
    truth = 2.0 / math.sqrt(draws.size)
    for number in (mc_mean(draws.ravel()), mc_mean(_chains(draws))):
        assert number.kind == "monte_carlo"
        assert number.mcse == pytest.approx(truth, rel=0.2)
        assert abs(number.value - 10.0) < 4 * truth


def test_mcse_of_the_mean_of_an_ar1_chain_has_the_known_inflation():
    rho = 0.9
    draws = _ar1(rho, chains=4, n=10_000, seed=2)
    iid = mc_mean(draws.ravel()).mcse
    chained = mc_mean(_chains(draws)).mcse
    inflation = math.sqrt((1 + rho) / (1 - rho))  # ≈ 4.36
    assert chained > 2 * iid
    assert chained / iid == pytest.approx(inflation, rel=0.3)


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_mcse_of_a_quantile_matches_the_asymptotic_formula(q):
    # iid N(0, 1): the sd of the sample q-quantile is sqrt(q (1 - q) / n) / (density at the quantile). One
    # estimate of it is noisy (±15 % at q = 0.9), so compare the average over 20 datasets.
    z = stats.norm.ppf(q)
    truth = math.sqrt(q * (1 - q) / 10_000) / stats.norm.pdf(z)
    iid, chained = [], []
    for seed in range(20):
        draws = np.random.default_rng(seed).normal(size=(4, 2500))
        iid.append(mc_quantile(draws.ravel(), q))
        chained.append(mc_quantile(_chains(draws), q))
        assert iid[-1].value == chained[-1].value
        assert abs(iid[-1].value - z) < 4 * truth
    assert np.mean([x.mcse for x in iid]) == pytest.approx(truth, rel=0.1)
    assert np.mean([x.mcse for x in chained]) == pytest.approx(truth, rel=0.1)


def test_mcse_of_a_quantile_of_an_ar1_chain_is_inflated():
    draws = _ar1(0.9, chains=4, n=10_000, seed=4)
    assert mc_quantile(_chains(draws), 0.5).mcse > 2 * mc_quantile(draws.ravel(), 0.5).mcse


def test_helpers_refuse_what_has_no_monte_carlo_error():
    with pytest.raises(EstimInputError, match="constant"):
        mc_mean(np.ones(100))
    with pytest.raises(EstimInputError, match="q must"):
        mc_quantile(np.arange(10.0), 1.0)
    with pytest.raises(EstimInputError, match="select one quantity"):
        mc_mean(xr.DataArray(np.zeros((2, 10, 3)), dims=("chain", "draw", "section")))
