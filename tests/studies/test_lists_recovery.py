"""The multiple-list recovery study: the simulator against its exact pattern probabilities, the padding of the
latent-class data, and a resumable mini-study of BMA fits (fast); a 20-dataset BMA study (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from pytensor.compile.mode import Mode

from estim.families.closed import history_data
from estim.families.lists.latent_class import build_latent_class
from estim.families.lists.simulate import (
    COUNT,
    DESIGNS,
    FOUR_LISTS,
    SIX_LISTS,
    ListsDesign,
    pair_table,
    pattern_probabilities,
    patterns,
    seen_share,
    simulate_lists,
)
from estim.studies import lists_recovery as study

FAST = Mode(linker="py", optimizer="fast_compile")


@pytest.mark.parametrize(
    "p1, p2, odds_ratio", [(0.3, 0.25, 3.0), (0.1, 0.08, 3.0), (0.4, 0.6, 0.5)]
)
def test_the_pair_table_has_the_margins_and_odds_ratio_asked(p1, p2, odds_ratio):
    t = pair_table(p1, p2, odds_ratio)
    assert (t > 0).all() and t.sum() == pytest.approx(1)
    assert t[1].sum() == pytest.approx(p1) and t[:, 1].sum() == pytest.approx(p2)
    assert t[1, 1] * t[0, 0] / (t[1, 0] * t[0, 1]) == pytest.approx(odds_ratio)


@pytest.mark.parametrize("design", list(DESIGNS.values()), ids=list(DESIGNS))
def test_the_pattern_probabilities_have_the_design_margins(design):
    p = pattern_probabilities(design)
    x = patterns(len(design.lists))
    assert p.sum() == pytest.approx(1)
    # each list's marginal capture probability is the class-weighted mean, whatever the dependence
    marginal = np.asarray(design.class_share) @ np.asarray(design.capture)
    np.testing.assert_allclose(x.T @ p, marginal, rtol=1e-12)
    # a realistic share seen, as the designs promise
    assert 0.4 <= seen_share(design) <= 0.7


@pytest.mark.parametrize("design", [FOUR_LISTS, SIX_LISTS], ids=["4 lists", "6 lists"])
def test_large_simulations_match_the_enumerated_pattern_probabilities(design):
    size = 400_000
    table = simulate_lists(np.random.default_rng(11), size, design)
    k = len(design.lists)
    code = table[list(design.lists)].to_numpy() @ (1 << np.arange(k))
    observed = np.zeros(1 << k)
    observed[code] = table[COUNT]
    expected = size * pattern_probabilities(design)
    observed[0] = size - observed.sum()
    assert (table[COUNT] > 0).all() and table[COUNT].sum() < size
    # Pearson's test over all 2^K cells (the expected counts are ≥ 5 here)
    assert expected.min() > 5
    stat, p = scipy.stats.chisquare(observed, expected)
    assert p > 0.001, (stat, p)
    # and a misspecified truth (independent lists 1 and 2) is rejected by the same test
    independent = ListsDesign(
        "independent", design.lists, design.class_share, design.capture, odds_ratio=1.0
    )
    _, p_wrong = scipy.stats.chisquare(observed, size * pattern_probabilities(independent))
    assert p_wrong < 1e-10


def test_simulation_is_deterministic_in_the_seed():
    a = simulate_lists(np.random.default_rng(5), 500, FOUR_LISTS)
    b = simulate_lists(np.random.default_rng(5), 500, FOUR_LISTS)
    c = simulate_lists(np.random.default_rng(6), 500, FOUR_LISTS)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a.columns) == [*FOUR_LISTS.lists, COUNT]


def _logp(model, point):
    return float(model.compile_logp(mode=FAST)(point))


def test_padding_to_every_pattern_leaves_the_latent_class_likelihood_unchanged():
    table = simulate_lists(np.random.default_rng(2), 300, SIX_LISTS)
    assert len(table) < 63  # some patterns unseen, so the padding adds zero cells
    padded = study.padded_history_data(table, SIX_LISTS.lists)
    assert padded.sizes["history"] == 63
    plain = history_data(table, occasions=list(SIX_LISTS.lists), count=COUNT)
    a = build_latent_class(plain, classes=3)
    b = build_latent_class(padded, classes=3)
    point = {k: v + 0.2 for k, v in a.initial_point().items()}
    assert _logp(b, point) == pytest.approx(_logp(a, point), rel=1e-12)


def test_summary_p_value_is_the_binomial_lower_tail():
    rows = pd.DataFrame(
        {
            "design": "d",
            "model": "m",
            "n_true": 100,
            "median": [90.0] * 50 + [110.0] * 50,
            "q05": 50.0,
            "q95": [150.0] * 85 + [99.0] * 15,
            "covered": [True] * 85 + [False] * 15,
            "gate_passed": True,
            "error": "",
            "seconds": 1.0,
        }
    )
    s = study.summary(rows).iloc[0]
    assert s["coverage"] == 0.85
    # P(X ≤ 85) for X ~ Binomial(100, 0.9), summed term by term
    reference = sum(scipy.stats.binom.pmf(j, 100, 0.9) for j in range(86))
    assert s["p_value"] == pytest.approx(reference, rel=1e-9)
    assert s["median_abs_rel_error"] == pytest.approx(0.1)
    assert s["above"] == 15 and s["below"] == 0


def test_a_mini_study_writes_rows_and_resumes_without_redoing_them(tmp_path, monkeypatch):
    out = tmp_path / "rows.csv"
    design = "4 lists, N=500"
    rows = study.run_study(out, designs=[design], models=["bma"], n_datasets=3)
    assert list(rows.columns) == [*study.COLUMNS, "settings"]
    assert list(rows["dataset"]) == [0, 1, 2]
    assert list(rows["seed"]) == [study.SEED, study.SEED + 1, study.SEED + 2]
    assert (rows["error"] == "").all() and rows["gate_passed"].all()
    assert (rows["q05"] <= rows["median"]).all() and (rows["median"] <= rows["q95"]).all()
    # the simulated number seen is near the design's expectation (0.49 N; sd ≈ 11)
    assert (abs(rows["n_observed"] - 500 * seen_share(FOUR_LISTS)) < 60).all()
    np.testing.assert_array_equal(rows["covered"], (rows["q05"] <= 500) & (rows["q95"] >= 500))

    calls = []
    real = study.fit_row

    def counted(*args, **kwargs):
        calls.append(args[:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(study, "fit_row", counted)
    again = study.run_study(out, designs=[design], models=["bma"], n_datasets=3)
    assert calls == []
    pd.testing.assert_frame_equal(again, rows)
    # an interrupted append (a line without its newline) is dropped and redone
    text = out.read_text()
    out.write_text(text + "4 lists, N=500,bma,3,2026")
    more = study.run_study(out, designs=[design], models=["bma"], n_datasets=4)
    assert calls == [(design, "bma", 3)]
    assert list(more["dataset"]) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(more.iloc[:3], rows)


def test_bma_skips_designs_with_more_lists_than_it_takes(tmp_path):
    said = []
    rows = study.run_study(
        tmp_path / "rows.csv",
        designs=["6 lists, N=500"],
        models=["bma"],
        n_datasets=2,
        progress=said.append,
    )
    if len(SIX_LISTS.lists) > study.bma.MAX_LISTS:
        assert rows.empty and "skipped" in said[0]
    else:
        assert len(rows) == 2


@pytest.mark.slow
def test_bma_covers_n_when_its_model_holds_and_runs_the_study_designs(tmp_path):
    # A truth inside dga's model (one class, independent lists): the 90 % interval should cover about 90 %
    # of the time; with 40 datasets, fewer than 30 covered has probability 0.0001 under 0.9.
    inside = ListsDesign(
        "independent", ("A", "B", "C", "D"), (1.0,), ((0.2, 0.15, 0.25, 0.15),), odds_ratio=1.0
    )
    covered = 0
    for i in range(40):
        table = simulate_lists(np.random.default_rng(100 + i), 1000, inside)
        fit = study.bma_fit(table, inside.lists)
        covered += fit["q05"] <= 1000 <= fit["q95"]
    assert covered >= 30
    rows = study.run_study(
        tmp_path / "rows.csv",
        designs=["4 lists, N=500", "4 lists, N=5000"],
        models=["bma"],
        n_datasets=20,
    )
    assert len(rows) == 40 and (rows["error"] == "").all()
    s = study.summary(rows)
    assert set(s["design"]) == {"4 lists, N=500", "4 lists, N=5000"}


def test_summary_counts_errors_in_rows_read_back_from_the_csv(tmp_path):
    # an empty error string comes back from a CSV as NaN: it is not an error (it once counted every row)
    rows = pd.DataFrame(
        {
            "design": "d",
            "model": "m",
            "n_true": 100,
            "median": 100.0,
            "q05": 90.0,
            "q95": 110.0,
            "covered": True,
            "gate_passed": True,
            "error": ["", "", "ValueError: boom"],
            "seconds": 1.0,
        }
    )
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    assert study.summary(pd.read_csv(path)).iloc[0]["errors"] == 1


def test_a_file_that_is_not_this_studys_rows_is_refused_untouched(tmp_path):
    design = "4 lists, N=500"
    run = dict(designs=[design], models=["bma"], n_datasets=1)
    notes = tmp_path / "notes.json"
    notes.write_text('{"not": "a study"}')  # no final newline: once truncated to nothing
    with pytest.raises(study.EstimInputError, match="notes.json: its columns are not those"):
        study.run_study(notes, **run)
    assert notes.read_text() == '{"not": "a study"}'
    with pytest.raises(study.EstimInputError, match="gzipped file cannot take"):
        study.run_study(tmp_path / "rows.csv.gz", **run)
    out = tmp_path / "rows.csv"
    rows = study.run_study(out, **run)
    # another seed, or other latent-class settings for a latent-class row, made other rows
    with pytest.raises(study.EstimInputError, match="made with other options"):
        study.run_study(out, **run, seed=study.SEED + 1)
    latent = study.LatentClassSettings(draws=10)
    assert len(study.run_study(out, **run, settings=latent)) == 1  # BMA rows do not depend on it
    # the same columns in another order: appended rows would not line up
    rows[list(reversed(rows.columns))].to_csv(out, index=False)
    with pytest.raises(study.EstimInputError, match="not in the order"):
        study.run_study(out, **{**run, "n_datasets": 2})
    with pytest.raises(study.EstimInputError, match="no such file"):
        study.read_rows(tmp_path / "absent.csv")


def test_a_row_that_ran_with_an_error_is_fitted_again(tmp_path):
    out = tmp_path / "rows.csv"
    run = dict(designs=["4 lists, N=500"], models=["bma"], n_datasets=2)
    rows = study.run_study(out, **run)
    rows.loc[1, ["covered", "error"]] = [False, "RuntimeError: boom"]
    rows.to_csv(out, index=False)
    said = []
    again = study.run_study(out, **run, progress=said.append)
    assert any("ran with an error" in line for line in said)
    assert list(again["dataset"]) == [0, 1] and (again["error"] == "").all()
