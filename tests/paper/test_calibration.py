"""The paper's SBC and Stan-race steps on hand-made inputs: a family whose ranks are uniform passes and one whose
ranks pile up at the ends fails; the border model's verdict is absent until its study has run; the race's table
and ratios are those of the input; a missing input names the command that makes it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.paper import calibration
from estim.paper.numbers import read_numbers
from tests.paper.test_studies import _context, _paper

DRAWS = 99


def _rows(family: str, replicates: int, *, narrow: bool, seed: int) -> pd.DataFrame:
    """SBC rows as `estim.studies.sbc.replicate_rows` writes them: N and one parameter per replicate. With
    ``narrow`` the ranks of N sit in the outer tenths (a posterior too narrow), otherwise they are uniform."""
    rng = np.random.default_rng(seed)
    rows = []
    for replicate in range(replicates):
        for quantity in ("N", "logit_p"):
            if narrow and quantity == "N":
                rank = int(rng.choice([rng.integers(0, 10), rng.integers(90, DRAWS + 1)]))
            else:
                rank = int(rng.integers(0, DRAWS + 1))
            rows.append(
                {
                    "family": family,
                    "replicate": replicate,
                    "seed": seed,
                    "quantity": quantity,
                    "rank": rank,
                    "pit": (rank + rng.uniform()) / (DRAWS + 1),
                    "draws": DRAWS,
                    "ess_bulk_min": 500.0,
                    "divergences": 1 if replicate == 0 else 0,
                    "refit": replicate < 3,
                    "seconds": 2.0,
                    "error": "",
                }
            )
    return pd.DataFrame(rows)


class _Figure:
    """A stand-in for `rank_plot`'s PlotCollection once the real plot has been checked (each takes seconds)."""

    def __init__(self, rows, alpha, title=None):
        import matplotlib.pyplot as plt

        self.viz = {"figure": np.array(plt.figure(figsize=(1, 1)))}


def _good_and_bad(tmp_path):
    """A paper copy with an empty SBC inputs folder, and the rows of a family with uniform ranks ("good", seed 1)
    and one whose posterior of N is too narrow ("bad", seed 2), 200 replicates each."""
    paper = _paper(tmp_path)
    folder = paper / "inputs" / "sbc"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.csv"):
        stale.unlink()
    rows = pd.concat(
        [_rows("good", 200, narrow=False, seed=1), _rows("bad", 200, narrow=True, seed=2)]
    )
    return paper, folder, rows


def test_the_sbc_step_passes_uniform_ranks_and_fails_a_narrow_posterior(tmp_path, monkeypatch):
    paper, folder, rows = _good_and_bad(tmp_path)
    monkeypatch.setattr(calibration, "FIGURE_FAMILIES", ("good", "bad", "border"))
    rows.to_csv(folder / "sbc.csv", index=False)
    paths = calibration.sbc(_context(paper))
    table = pd.read_csv(paper / "generated" / "tables" / "sbc.csv")
    assert table["family"].tolist() == ["good", "bad"]
    assert table["verdict"].tolist() == ["pass", "FAIL"]
    assert table["p_min_quantity"].tolist()[1] == "N"
    assert table["p_min"][1] < 0.025 <= table["p_min"][0]  # α/m = 0.05/2
    assert table["refits"].tolist() == [3, 3] and table["divergent_fits"].tolist() == [1, 1]
    n = {k: v.value for k, v in read_numbers(paper / "generated" / "numbers" / "sbc.json").items()}
    assert (n["families"], n["passed"], n["failed"]) == (2, 1, 1)
    assert n["border"] == "–" and n["names"] == "good, bad"
    figures = {p.name for p in paths if p.suffix == ".png"}
    assert figures == {"sbc_good.png", "sbc_bad.png"}

    # the border model's rows join the others once its study has ranked enough replicates
    import estim.studies.sbc_ranks

    monkeypatch.setattr(estim.studies.sbc_ranks, "rank_plot", _Figure)
    _rows("border", calibration.MIN_REPLICATES - 1, narrow=False, seed=4).to_csv(
        folder / calibration.SBC_BORDER, index=False
    )
    calibration.sbc(_context(paper))
    n = {k: v.value for k, v in read_numbers(paper / "generated" / "numbers" / "sbc.json").items()}
    assert n["border"] == "–" and n["families"] == 2
    _rows("border", 100, narrow=False, seed=4).to_csv(folder / calibration.SBC_BORDER, index=False)
    calibration.sbc(_context(paper))
    n = {k: v.value for k, v in read_numbers(paper / "generated" / "numbers" / "sbc.json").items()}
    assert n["border"] == "pass" and n["families"] == 3 and n["replicates_min"] == 100
    assert n["failed_names"] == "bad" and n["reruns"] == "–"
    assert (n["unresolved"], n["unresolved_names"]) == (1, "bad")


def test_a_failing_family_is_shown_with_its_independent_rerun(tmp_path, monkeypatch):
    import estim.studies.sbc_ranks

    monkeypatch.setattr(estim.studies.sbc_ranks, "rank_plot", _Figure)
    paper, folder, main = _good_and_bad(tmp_path)
    main.to_csv(folder / "sbc.csv", index=False)
    rerun = folder / calibration.SBC_RERUN.format(family="bad")
    _rows("bad", 300, narrow=False, seed=7).to_csv(rerun, index=False)
    paths = calibration.sbc(_context(paper))
    table = pd.read_csv(paper / "generated" / "tables" / "sbc.csv")
    bad = table.set_index("family").loc["bad"]
    assert (bad["verdict"], bad["rerun_verdict"], bad["rerun_replicates"], bad["rerun_seed"]) == (
        "FAIL",
        "pass",
        300,
        7,
    )
    assert bad["p_min"] < 0.025 <= bad["rerun_p_min"]  # the main run's own p beside the rerun's
    assert pd.isna(table.set_index("family").loc["good", "rerun_seed"])
    n = {k: v.value for k, v in read_numbers(paper / "generated" / "numbers" / "sbc.json").items()}
    assert (n["failed"], n["failed_rerun_passed"], n["failed_names"]) == (1, 1, "bad")
    assert (n["unresolved"], n["unresolved_names"]) == (0, "–")
    assert n["reruns"].startswith("bad: 300 replicates, seed 7, smallest p ")
    assert n["reruns"].endswith(", pass")
    assert paths  # the rerun is an input of the step's outputs
    written = (paper / "generated" / "tables" / "sbc.csv").read_text()
    assert ",300,7," in written  # integers, not 300.0 and 7.0
    # the main run's own seed again is no independent rerun: refused, not shown as one
    _rows("bad", 300, narrow=False, seed=2).to_csv(rerun, index=False)
    with pytest.raises(EstimInputError, match="another seed"):
        calibration.sbc(_context(paper))


def _race() -> dict:
    def row(compile_s, warmup, sampling, ess):
        return {
            "compile_seconds": compile_s,
            "warmup_seconds": warmup,
            "sampling_seconds": sampling,
            "other_seconds": 1.0,
            "min_bulk_ess": ess,
            "min_bulk_ess_parameter": "section_sd",
            "ess_per_second": ess / sampling,
            "wall_to_400_ess": compile_s + warmup + 1.0 + sampling * 400 / ess,
        }

    estim, stan = row(10.0, 100.0, 100.0, 600.0), row(200.0, 300.0, 600.0, 400.0)
    ratio = {k: estim[k] / stan[k] for k in calibration.RACE_COLUMNS[1:]}
    return {
        "rows": {"estim (nutpie)": estim, "Stan (PyStan)": stan, "estim / Stan": ratio},
        "goals": {
            "ess_per_second_ratio": ratio["ess_per_second"],
            "ess_per_second_goal": 5.0,
            "ess_per_second_met": False,
            "wall_to_400_ess_ratio": ratio["wall_to_400_ess"],
            "wall_to_400_ess_goal": 1 / 3,
            "wall_to_400_ess_met": True,
        },
        "agreement": {
            "elements": 200,
            "share_beyond_2": 0.03,
            "count_beyond_4": 1,
            "passed": False,
        },
        "sampler_stats": {
            "estim (nutpie)": {"divergences": 0, "leapfrog_steps_per_draw": 20.0},
            "Stan (PyStan)": {"divergences": 2, "leapfrog_steps_per_draw": 30.0},
        },
        "estim": {"settings": {"chains": 2, "tune": 400, "draws": 1000}},
    }


def test_the_race_step_reports_the_ratios_and_a_disagreement(tmp_path):
    paper = _paper(tmp_path)
    (paper / "inputs" / "stan_race.json").write_text(json.dumps(_race()), encoding="utf-8")
    calibration.stan_race(_context(paper))
    table = pd.read_csv(paper / "generated" / "tables" / "stan_race.csv")
    assert table["tool"].tolist() == ["estim (nutpie)", "Stan (PyStan)", "estim / Stan"]
    assert table["ess_per_second"][2] == pytest.approx(6.0 / (400 / 600))
    numbers = read_numbers(paper / "generated" / "numbers" / "stan_race.json")
    n = {k: v.value for k, v in numbers.items()}
    assert n["ratio.ess_per_second"] == pytest.approx(9.0)
    assert n["ratio.wall_to_400_ess"] == pytest.approx(
        (10 + 100 + 1 + 100 * 400 / 600) / (200 + 300 + 1 + 600)
    )
    # one element beyond 4: the posteriors differ, whatever the share beyond 2
    assert n["agreement.verdict"] == "differ" and n["divergences.stan"] == 2
    assert numbers["estim.sampling_seconds"].kind == "timing"
    assert (n["chains"], n["tune"], n["draws"]) == (2, 400, 1000)


def test_a_missing_study_names_its_command(tmp_path):
    paper = _paper(tmp_path)
    (paper / "inputs" / "stan_race.json").unlink(missing_ok=True)
    with pytest.raises(EstimInputError, match="scripts/stan_race.py"):
        calibration.stan_race(_context(paper))
    shutil.rmtree(paper / "inputs" / "sbc", ignore_errors=True)
    with pytest.raises(EstimInputError, match="scripts/sbc.py"):
        calibration.sbc(_context(paper))


def test_families_calibrated_after_the_main_run_join_the_table_once(tmp_path, monkeypatch):
    import estim.studies.sbc_ranks

    monkeypatch.setattr(estim.studies.sbc_ranks, "rank_plot", _Figure)
    paper, folder, main = _good_and_bad(tmp_path)
    main.to_csv(folder / "sbc.csv", index=False)
    _rows("later", 200, narrow=False, seed=5).to_csv(folder / calibration.SBC_MORE, index=False)
    calibration.sbc(_context(paper))
    table = pd.read_csv(paper / "generated" / "tables" / "sbc.csv")
    assert table["family"].tolist() == ["good", "bad", "later"]
    # a family in two files would be tested twice, with one verdict hiding the other
    _rows("good", 200, narrow=False, seed=6).to_csv(folder / calibration.SBC_MORE, index=False)
    with pytest.raises(EstimInputError, match="rows of good, which an earlier SBC file has too"):
        calibration.sbc(_context(paper))
