"""Misspecification study of the border model (issue 17): the design grid, the resumable seed-major runner and
the cell verdicts, on fake rows and a mocked fit (fast); one real fit end to end is slow."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from estim.families.border.generated import observed_checks
from estim.run.diagnostics import Check, GateVerdict
from estim.simulate.perturb import perturbed_config
from estim.studies import border_misspecification as M
from estim.studies import border_recovery as R
from estim.studies.rows import bootstrap_coverage, coverage

YEARS = tuple(range(2006, 2018))
SECTIONS = ("a", "b", "c")


# --------------------------------------------------------------------------------------------------------------
# fake study rows


def _dataset(
    seed: int,
    *,
    retry: float = 1.0,
    frailty: float = 0.0,
    covered: bool = True,
    section_covered: float | None = None,
    refused_gate: bool = False,
    refused_ppc: bool = False,
    attempts: int = 1,
    error: str = "",
) -> pd.DataFrame:
    """The rows `dataset_rows` writes for one dataset: whole-border years and period total all ``covered`` or
    all missed (from above), ``section_covered`` (default: ``covered``) the share of covered section-years."""
    share = float(covered) if section_covered is None else section_covered
    n_sy = len(SECTIONS) * len(YEARS)
    hits = np.arange(n_sy) < round(share * n_sy)
    rows = []
    for i, (s, y) in enumerate((s, y) for s in SECTIONS for y in YEARS):
        rows.append(
            {
                "section": s,
                "surveyed": s == "a",
                "year": y,
                "truth": 100,
                "median": 100.0 if hits[i] else 150.0,
                "q05": 90.0 if hits[i] else 120.0,
                "q95": 110.0 if hits[i] else 180.0,
                "covered": bool(hits[i]),
                "border_truth": 300,
                "border_median": 300.0 if covered else 400.0,
                "border_q05": 280.0 if covered else 350.0,
                "border_q95": 320.0 if covered else 450.0,
                "border_covered": covered,
                "border_period_truth": 3600,
                "border_period_median": 3600.0 if covered else 4800.0,
                "border_period_q05": 3400.0 if covered else 4500.0,
                "border_period_q95": 3800.0 if covered else 5100.0,
                "border_period_covered": covered,
            }
        )
    info = {
        "dataset": seed,
        "sim_seed": 4000 + seed,
        "sim_retry": retry,
        "sim_frailty": frailty,
        "retry_true": retry,
        "retry_median": retry,
        "retry_q05": retry - 0.05,
        "retry_q95": min(retry + 0.05, 1.0),
        "retry_covered": True,
        "attempts": attempts,
        "gate_passed": not refused_gate,
        "gate_failed": "rhat" if refused_gate else "",
        "divergences": 0,
        "ppc_monthly_apprehensions": True,
        "ppc_frequency": not refused_ppc,
        "ppc_failed": "frequency" if refused_ppc else "",
        "refused_gate": refused_gate,
        "refused_ppc": refused_ppc and not refused_gate,
        "refused": refused_gate or refused_ppc,
        "seconds": 1.0,
        "error": error,
    }
    if error:
        return pd.DataFrame([{"section": "", "year": -1, "covered": False}]).assign(
            **{**info, "attempts": 0, "refused": False, "refused_gate": False, "refused_ppc": False}
        )
    return pd.DataFrame(rows).assign(**info)


def _cell(datasets: list[pd.DataFrame]) -> dict:
    return M.cell_summary(pd.concat(datasets, ignore_index=True))


def _below(k: int, n: int, p: float = 0.9) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p), summed exactly."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1))


# --------------------------------------------------------------------------------------------------------------
# verdicts


def test_half_covered_accepted_fits_with_few_refusals_fail():
    sets = [_dataset(i, covered=i % 2 == 0) for i in range(20)]
    sets += [_dataset(20 + i, refused_gate=True, covered=False) for i in range(2)]
    c = _cell(sets)
    assert (c["seeds"], c["accepted"], c["refused"], c["refused_gate"]) == (22, 20, 2, 2)
    assert c["period_coverage"] == 0.5 and c["years_coverage"] == 0.5
    assert c["period_p"] == pytest.approx(_below(10, 20), rel=1e-9)
    # each dataset covers all its years or none: the 20 datasets are the trials, not the 240 years
    assert c["years_p"] == pytest.approx(_below(10, 20), rel=1e-9)
    assert c["years_p_independent"] == pytest.approx(_below(120, 240), rel=1e-9)
    assert c["verdict"] == "FAILS"


def test_a_cell_refused_in_19_of_20_datasets_is_refused():
    sets = [_dataset(0, covered=False)]  # the one accepted fit misses: the cell cannot pass
    sets += [_dataset(i, refused_ppc=True, covered=False) for i in range(1, 11)]
    sets += [_dataset(i, refused_gate=True, covered=False) for i in range(11, 20)]
    c = _cell(sets)
    assert (c["refused"], c["refused_ppc"], c["refused_gate"], c["accepted"]) == (19, 10, 9, 1)
    assert c["refused_share"] == pytest.approx(0.95)
    assert c["verdict"] == "refused"
    # 17 of 20 refused is not enough: the three accepted misses are a confident wrong number
    sets = [_dataset(i, covered=False) for i in range(3)]
    sets += [_dataset(i, refused_gate=True, covered=False) for i in range(3, 20)]
    assert _cell(sets)["verdict"] == "FAILS"


def test_a_calibrated_cell_passes_and_section_years_below_80_percent_do_not():
    # 18 of 20 period totals covered: P(X ≤ 18) = 0.61 for Binomial(20, 0.9); one dataset retried
    sets = [
        _dataset(i, covered=i >= 2, section_covered=0.9, attempts=2 if i == 5 else 1)
        for i in range(20)
    ]
    c = _cell(sets)
    assert c["period_p"] == pytest.approx(_below(18, 20)) and c["period_p"] > 0.5
    assert c["retried"] == 1 and c["refused"] == 0
    assert c["section_years_coverage"] == pytest.approx(32 / 36)  # round(0.9 × 36) of 36 each
    assert c["verdict"] == "passes"
    # the same whole-border coverage with section-years covered 75 % of the time: not a pass, not refused
    sets = [_dataset(i, covered=i >= 2, section_covered=0.75) for i in range(20)]
    c = _cell(sets)
    assert c["section_years_coverage"] == pytest.approx(27 / 36)
    assert c["verdict"] == "FAILS"


def test_far_misses_are_the_accepted_fits_off_by_more_than_the_threshold():
    sets = [_dataset(i) for i in range(3)]
    sets.append(_dataset(3, covered=False))  # 4,800 for 3,600: +33 %
    sets.append(_dataset(4, covered=False, refused_gate=True))  # refused: not a number anyone reads
    sets.append(_dataset(5, error="boom"))
    rows = pd.concat(sets, ignore_index=True)
    far = M.far_misses(rows)
    assert far["sim_seed"].tolist() == [4003]
    assert far["period_rel_error"].iloc[0] == pytest.approx(4800 / 3600 - 1)
    assert not far["border_period_covered"].iloc[0]
    assert M.far_misses(rows, threshold=0.34).empty


def test_errors_are_neither_accepted_nor_refused():
    sets = [_dataset(i) for i in range(18)] + [
        _dataset(18 + i, error="ValueError: x") for i in range(2)
    ]
    c = _cell(sets)
    assert (c["seeds"], c["errors"], c["accepted"], c["refused"]) == (20, 2, 18, 0)
    assert c["verdict"] == "passes"
    assert _cell([_dataset(0, error="ValueError: x")])["verdict"] == "no data"


def test_summary_has_one_row_per_cell_and_the_requirements():
    sets = []
    for r in (0.6, 1.0):
        for f in (0.0, 0.5):
            bad = r == 0.6 and f == 0.5
            sets += [
                _dataset(i, retry=r, frailty=f, covered=not bad, refused_gate=bad and i < 19)
                for i in range(20)
            ]
    df = pd.concat(sets, ignore_index=True)
    s = M.misspecification_summary(df)
    assert list(zip(s["retry"], s["frailty"], strict=True)) == [
        (0.6, 0.0),
        (0.6, 0.5),
        (1.0, 0.0),
        (1.0, 0.5),
    ]
    assert list(s["verdict"]) == ["passes", "refused", "passes", "passes"]
    assert M.requirements(s) == {
        "every cell has ≥ 20 seeds": True,
        "no cell fails": True,
        "r = 1, no frailty: refusals at most 10 %": True,
    }
    assert M.requirements(s.iloc[:2])["r = 1, no frailty: refusals at most 10 %"] is None  # not run
    table = M.format_summary(s)
    assert table.count("\n") == 5 and "refused" in table and "so far" not in table
    # a cell short of its seeds is provisional in the table and the requirements
    few = M.misspecification_summary(df[df["dataset"] < 5])
    assert not M.requirements(few)["every cell has ≥ 20 seeds"]
    assert M.format_summary(few).count("so far (5/20)") == 4
    # the baseline cell refusing 3 of 20 breaks the second requirement
    df.loc[
        (df["sim_retry"] == 1.0) & (df["sim_frailty"] == 0.0) & (df["dataset"] < 3), "refused"
    ] = True
    assert not M.requirements(M.misspecification_summary(df))[
        "r = 1, no frailty: refusals at most 10 %"
    ]


def test_the_bootstrap_resamples_datasets_not_section_years():
    # 20 datasets, each with all its 36 section-years covered or none: 720 rows, coverage 0.5
    df = pd.concat([_dataset(i, covered=i % 2 == 0) for i in range(20)], ignore_index=True)
    lo, hi = bootstrap_coverage(df, by=R.DATASET)
    # resampling 20 datasets makes the coverage Binomial(20, 0.5)/20: central 95 % from 0.30 to 0.70
    assert lo == pytest.approx(0.3, abs=0.03) and hi == pytest.approx(0.7, abs=0.03)
    # an interval counting the rows as independent trials is several times narrower
    row_lo, row_hi = coverage(df["covered"])["ci"]
    assert hi - lo > 4 * (row_hi - row_lo)
    assert bootstrap_coverage(df, by=R.DATASET) == [lo, hi]  # fixed seed
    c = _cell([_dataset(i, covered=i % 2 == 0) for i in range(20)])
    assert (c["section_years_lo"], c["section_years_hi"]) == (lo, hi)


def test_the_recovery_summary_reads_the_new_columns():
    sets = [
        _dataset(i, covered=i != 3, refused_ppc=i == 7, attempts=1 + (i == 2)) for i in range(10)
    ]
    s = R.coverage_summary(pd.concat(sets, ignore_index=True))
    assert s["datasets"] == 10 and s["refused"] == 1 and s["refused_ppc"] == 1 and s["retried"] == 1
    assert s["border_period"]["n"] == 10 and s["border_period"]["covered"] == 9
    # dataset 3 misses all its years, the others none: the 10 datasets are the trials
    assert s["border_years"]["p_below_90"] == pytest.approx(_below(9, 10))
    assert s["border_years"]["p_below_90_independent"] == pytest.approx(_below(108, 120))
    lo, hi = s["section_years"]["ci_datasets"]
    assert lo < 0.9 < hi  # 9 of 10 datasets all covered
    # section c's median errs by +50 % in dataset 3 only: its median over datasets stays 0
    assert s["sections_beyond_5_percent"] == []


# --------------------------------------------------------------------------------------------------------------
# designs and the runner


def test_designs_are_seed_major_with_common_seeds_across_cells():
    d = M.designs((0.6, 1.0), (0.0, 0.5), n_seeds=3, seed=100)
    assert len(d) == 12
    assert [x.seed for x in d] == [100] * 4 + [101] * 4 + [102] * 4
    assert [x.key() for x in d[:4]] == [
        (0.6, 0.0, 100),
        (0.6, 0.5, 100),
        (1.0, 0.0, 100),
        (1.0, 0.5, 100),
    ]
    assert [x.dataset for x in d] == [
        100 - M.DEFAULT_STUDY_SEED + k for k in (0, 1, 2) for _ in range(4)
    ]


def test_datasets_are_labelled_by_their_seed_so_runs_from_another_seed_merge():
    # a run started at seed 4029 holds the study's dataset 29, not a second dataset 0
    assert [x.dataset for x in M.designs((1.0,), (0.0,), n_seeds=2, seed=4029)] == [29, 30]
    assert [x.dataset for x in M.designs((1.0,), (0.0,), n_seeds=2)] == [0, 1]


def test_the_baseline_cell_is_the_recovery_design():
    for seed in (4000, 4001):
        base = dataclasses.replace(
            perturbed_config(seed), retry_probability=1.0, apprehension_frailty_sd=0.0
        )
        assert base == perturbed_config(seed)
    (baseline,) = M.designs((1.0,), (0.0,), n_seeds=1, seed=4000)
    assert baseline.key() == R.Design(0, 4000).key() == (1.0, 0.0, 4000)


def test_register_dating_is_a_change_only_when_not_the_default():
    (delay,) = M.designs((0.6,), (0.0,), n_seeds=1, seed=4000)
    # the grid's datasets are those made before the option
    assert "register_dating" not in delay.changes
    (stay,) = M.designs((0.6,), (0.0,), n_seeds=1, seed=4000, register_dating="stay")
    assert stay.changes["register_dating"] == "stay"
    config = dataclasses.replace(perturbed_config(4000), **dict(stay.changes))
    assert config.register_dating == "stay" and config.retry_probability == 0.6
    with pytest.raises(M.EstimInputError, match="register_dating"):
        M.designs((0.6,), (0.0,), register_dating="event")


def test_a_study_file_holds_one_register_dating(tmp_path, monkeypatch):
    out = tmp_path / "ms.csv"
    calls: list = []
    monkeypatch.setattr(R, "dataset_rows", _fake_rows(calls))
    M.misspecification_study((1.0,), (0.0,), n_seeds=1, seed=10, out=out)
    # rows of the default dating (the column absent, as in rows made before it existed) are not resumed as stay
    with pytest.raises(
        M.EstimInputError, match='made with other options.*"register_dating": "stay"'
    ):
        M.misspecification_study(
            (1.0,), (0.0,), n_seeds=2, seed=10, out=out, resume=True, register_dating="stay"
        )
    assert calls == [(10, 1.0, 0.0)]
    rows = pd.read_csv(out)
    mixed = pd.concat([rows, rows.assign(sim_register_dating="stay", sim_seed=11)])
    with pytest.raises(M.EstimInputError, match="mix register datings"):
        M.misspecification_summary(mixed)
    stay = M.misspecification_summary(rows.assign(sim_register_dating="stay"))
    assert list(stay["register_dating"]) == ["stay"]
    assert "register_dating" not in M.misspecification_summary(rows)


def _fake_rows(calls: list, stop_at: int | None = None):
    def run(seed, changes, *, dataset, **sampler):
        if stop_at is not None and len(calls) == stop_at:
            raise KeyboardInterrupt  # the study stopped half-way
        calls.append((seed, changes["retry_probability"], changes["apprehension_frailty_sd"]))
        return _dataset(
            dataset, retry=changes["retry_probability"], frailty=changes["apprehension_frailty_sd"]
        ).assign(sim_seed=seed)

    return run


def test_the_study_runs_seed_major_and_resumes_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "ms.csv"
    calls: list = []
    monkeypatch.setattr(R, "dataset_rows", _fake_rows(calls, stop_at=3))
    with pytest.raises(KeyboardInterrupt):
        M.misspecification_study((0.6, 1.0), (0.0, 0.5), n_seeds=2, seed=10, out=out)
    assert calls == [(10, 0.6, 0.0), (10, 0.6, 0.5), (10, 1.0, 0.0)]
    written = pd.read_csv(out)
    assert (
        written.groupby(["sim_retry", "sim_frailty", "sim_seed"]).ngroups == 3
    )  # kept every dataset done

    calls.clear()
    monkeypatch.setattr(R, "dataset_rows", _fake_rows(calls))
    df = M.misspecification_study((0.6, 1.0), (0.0, 0.5), n_seeds=2, seed=10, out=out, resume=True)
    assert calls == [(10, 1.0, 0.5), (11, 0.6, 0.0), (11, 0.6, 0.5), (11, 1.0, 0.0), (11, 1.0, 0.5)]
    assert df.groupby(["sim_retry", "sim_frailty", "sim_seed"]).ngroups == 8
    assert len(pd.read_csv(out)) == len(df) == 8 * len(SECTIONS) * len(YEARS)
    assert list(M.misspecification_summary(pd.read_csv(out))["seeds"]) == [2, 2, 2, 2]

    calls.clear()  # everything done: resuming runs nothing; without resume the old rows are kept unless forced
    M.misspecification_study((0.6, 1.0), (0.0, 0.5), n_seeds=2, seed=10, out=out, resume=True)
    assert calls == []
    with pytest.raises(M.EstimInputError, match="--resume.*--force"):
        M.misspecification_study((1.0,), (0.0,), n_seeds=1, seed=10, out=out)
    assert calls == [] and len(pd.read_csv(out)) == len(df)
    M.misspecification_study((1.0,), (0.0,), n_seeds=1, seed=10, out=out, force=True)
    assert calls == [(10, 1.0, 0.0)] and len(pd.read_csv(out)) == len(SECTIONS) * len(YEARS)


# --------------------------------------------------------------------------------------------------------------
# one dataset, with the simulator and a mocked fit


def _mock_fit(
    truth: xr.Dataset, *, gate: bool, frequency_fits: bool, linkage_misfit: bool | None = None
):
    """A fit whose draws of the section-year unobserved crossings are the truth ± 5 % noise, r about 0.8, and
    whose posterior predictive replicates equal the observed statistics (``frequency_fits`` False: the
    frequencies replicated ten times too large). ``linkage_misfit`` None: no linkage replicates (a fit
    without the linkage check); False: the replicated χ² discrepancy exceeds the observed one half the time;
    True: never."""

    def fit(data, *, seed, **_):
        rng = np.random.default_rng(seed)
        t = truth["unobserved"].assign_coords(year=("month", data["year"].values))
        t = t.groupby("year").sum().sum("category").transpose("section", "year")
        draws = rng.normal(1.0, 0.05, size=(2, 200, *t.shape)) * t.values
        obs = observed_checks(data)
        pp = xr.Dataset(
            {
                "monthly_apprehensions": obs["monthly_apprehensions"].expand_dims(
                    chain=2, draw=200
                ),
                "frequency": (
                    obs["frequency"] if frequency_fits else obs["frequency"] * 10 + 5
                ).expand_dims(chain=2, draw=200),
            }
        )
        if linkage_misfit is not None:
            pp["linkage"] = obs["linkage"].expand_dims(chain=2, draw=200)
            pp["linkage_chi2_observed"] = (("chain", "draw"), np.full((2, 200), 5.0))
            replicated = rng.uniform(0.0, 2.0 if linkage_misfit else 10.0, (2, 200))
            pp["linkage_chi2_replicated"] = (("chain", "draw"), replicated)
        posterior = xr.Dataset(
            {
                "unobserved_section_year": (("chain", "draw", "section", "year"), draws),
                "retry_probability": (("chain", "draw"), rng.uniform(0.75, 0.85, (2, 200))),
            },
            coords={"section": t["section"].values, "year": t["year"].values},
        )
        stats = xr.Dataset(
            {
                "diverging": (("chain", "draw"), np.zeros((2, 200), bool)),
                "n_steps": (("chain", "draw"), np.full((2, 200), 7)),
            }
        )
        tree = xr.DataTree.from_dict(
            {
                "posterior": posterior,
                "posterior_predictive": pp,
                "observed_data": obs,
                "sample_stats": stats,
            }
        )
        check = Check("r_hat", 1.0 if gate else 1.2, 1.01, gate)
        return R.FitOutcome(tree, GateVerdict(gate, (check,)), 1 if gate else 3, 1.0, 2.0, 4.0)

    return fit


def test_dataset_rows_with_a_mocked_fit(tmp_path, monkeypatch):
    changes = {"retry_probability": 0.8, "apprehension_frailty_sd": 0.5}
    data, truth = R.simulate_dataset(4000, tmp_path / "sim", changes)
    # the simulator's design, and the linkage the model estimates r from
    assert (
        float(truth["retry_probability"]) == 0.8 and float(truth["apprehension_frailty_sd"]) == 0.5
    )
    assert int(truth["abandoned"].sum()) > 0
    assert "linked_journeys" in data and int(data["linked_journeys"].sum()) > 0

    # simulated once: every dataset_rows below reads the same world
    monkeypatch.setattr(R, "simulate_dataset", lambda *_: (data, truth))
    monkeypatch.setattr(R, "fit_dataset", _mock_fit(truth, gate=True, frequency_fits=True))
    # the frailty fails the test of the repeat counts before sampling (test_border_recovery.py tests that);
    # here the rows of a fit are tested, so the test is passed by hand
    monkeypatch.setattr(R, "dispersion_before_fit", lambda *_: {"ppc_repeat_dispersion": True})
    f = R.dataset_rows(4000, changes, dataset=3)
    assert (f["error"] == "").all(), f["error"].iloc[0]
    assert len(f) == data.sizes["section"] * 12
    first = f.iloc[0]
    assert (first["sim_retry"], first["sim_frailty"], first["retry_true"], first["dataset"]) == (
        0.8,
        0.5,
        0.8,
        3,
    )
    assert first["sim_register_dating"] == "delay"
    assert 0.75 < first["retry_q05"] < first["retry_median"] < first["retry_q95"] < 0.85
    assert bool(first["retry_covered"])
    assert (
        first["ppc_monthly_apprehensions"] and first["ppc_frequency"] and first["ppc_failed"] == ""
    )
    assert not first["refused"] and (first["attempts"], first["attempts_skipped"]) == (1, 0)
    # the model revision that made the rows, so a later model can tell them apart
    from estim.families.border.revision import MODEL_REVISION

    assert (f["model_revision"] == MODEL_REVISION).all()
    # the period total is the truth summed over sections and years, and its draws' interval holds it
    assert first["border_period_truth"] == int(truth["unobserved"].sum())
    assert first["border_period_q05"] < first["border_period_truth"] < first["border_period_q95"]
    assert f["covered"].mean() > 0.8
    assert "r = 0.8, σ = 0.5, seed 4000" in R.describe_dataset(f)

    # attempts an earlier run saw fail reach the fit by the dataset's seed, and its rows count them
    seen: list = []
    mock = _mock_fit(truth, gate=True, frequency_fits=True)

    def fit_known(data, *, seed, known_failures=(), **kw):
        seen.append(list(known_failures))
        outcome = mock(data, seed=seed, **kw)
        return dataclasses.replace(outcome, attempts=2, skipped=len(known_failures))

    monkeypatch.setattr(R, "fit_dataset", fit_known)
    known = {4000: [("r_hat", "ess_bulk")], 4001: [("divergences",)]}
    first = R.dataset_rows(4000, changes, known_failures=known).iloc[0]
    assert seen == [[("r_hat", "ess_bulk")]]
    assert (first["attempts"], first["attempts_skipped"]) == (2, 1)
    R.dataset_rows(4002, changes, known_failures=known)
    assert seen[-1] == []

    monkeypatch.setattr(R, "fit_dataset", _mock_fit(truth, gate=True, frequency_fits=False))
    first = R.dataset_rows(4000, changes).iloc[0]
    assert first["ppc_failed"] == "frequency" and not first["ppc_frequency"]
    assert (first["refused_ppc"], first["refused_gate"], first["refused"]) == (True, False, True)

    # the linkage: its check's p-value is kept, and a misfit refuses the fit
    monkeypatch.setattr(
        R, "fit_dataset", _mock_fit(truth, gate=True, frequency_fits=True, linkage_misfit=False)
    )
    first = R.dataset_rows(4000, changes).iloc[0]
    assert first["ppc_linkage"] and 0.3 < first["ppc_linkage_p"] < 0.7 and not first["refused"]
    monkeypatch.setattr(
        R, "fit_dataset", _mock_fit(truth, gate=True, frequency_fits=True, linkage_misfit=True)
    )
    first = R.dataset_rows(4000, changes).iloc[0]
    assert first["ppc_failed"] == "linkage" and first["ppc_linkage_p"] == 0.0
    assert (first["refused_ppc"], first["refused_gate"], first["refused"]) == (True, False, True)

    monkeypatch.setattr(R, "fit_dataset", _mock_fit(truth, gate=False, frequency_fits=False))
    first = R.dataset_rows(4000, changes).iloc[0]
    assert (first["refused_ppc"], first["refused_gate"], first["refused"]) == (False, True, True)
    assert first["attempts"] == 3 and first["gate_failed"] == "r_hat"

    def broken(*_, **__):
        raise RuntimeError("sampler crashed\nsecond line")

    monkeypatch.setattr(R, "fit_dataset", broken)
    f = R.dataset_rows(4000, changes)
    assert len(f) == 1 and f["error"].iloc[0] == "RuntimeError: sampler crashed"
    assert "ERROR" in R.describe_dataset(f)


@pytest.mark.slow
def test_one_dataset_fitted_end_to_end():
    f = R.dataset_rows(4000, {"retry_probability": 0.8, "apprehension_frailty_sd": 0.5})
    assert (f["error"].fillna("") == "").all(), f["error"].iloc[0]
    first = f.iloc[0]
    assert first["attempts"] >= 1 and 0.0 < first["retry_q05"] <= first["retry_q95"] <= 1.0
    assert {"ppc_monthly_apprehensions", "ppc_frequency"} <= set(f.columns)
