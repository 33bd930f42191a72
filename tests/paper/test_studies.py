"""The paper's study steps on hand-made inputs: the misspecification grid's table and numbers (counted here by
hand), the sensitivity table with and without the options and r of the newer `estim sensitivity`, a missing
input naming the command that makes it, `refresh` updating only its steps' manifest entries, and the
manuscript typesetting every branch of its misspecification text."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.paper import studies
from estim.paper.build import PAPER_DIR, refresh
from estim.paper.context import Context
from estim.paper.numbers import read_numbers

SECTIONS = ("a", "b", "c")
YEARS = tuple(range(2006, 2018))


def _dataset(
    seed: int,
    *,
    retry: float,
    frailty: float,
    covered: bool = True,
    section_years_covered: int | None = None,
    period_error: float = 0.0,
    retry_median: float = 1.0,
    retry_q05: float = 0.9,
    attempts: int = 1,
    refused_gate: bool = False,
    refused_ppc: bool = False,
) -> list[dict]:
    """One dataset's rows as `dataset_rows` writes them: 3 sections × 12 years, the whole border's years and
    period total all ``covered`` or not, the first ``section_years_covered`` of the 36 section-years covered
    (default all or none), the period total's median off by ``period_error``."""
    n_sy = len(SECTIONS) * len(YEARS)
    hits = n_sy * covered if section_years_covered is None else section_years_covered
    rows = []
    for i, (section, year) in enumerate((s, y) for s in SECTIONS for y in YEARS):
        rows.append(
            {
                "section": section,
                "year": year,
                "covered": i < hits,
                "border_covered": covered,
                "border_period_truth": 1000,
                "border_period_median": 1000 * (1 + period_error),
                "border_period_covered": covered,
                "border_period_q05": 950 if covered else 1100,
                "border_period_q95": 1050 if covered else 1200,
                "dataset": seed,
                "sim_seed": 4000 + seed,
                "sim_retry": retry,
                "sim_frailty": frailty,
                "retry_median": retry_median,
                "retry_q05": retry_q05,
                "retry_covered": True,
                "attempts": attempts,
                "refused_gate": refused_gate,
                "refused_ppc": refused_ppc and not refused_gate,
                "refused": refused_gate or refused_ppc,
                "error": "",
                # the intervals behind `covered` (the recovery summary reads them)
                "surveyed": section == "a",
                "truth": 100,
                "median": 100 if i < hits else 130,
                "q05": 90 if i < hits else 120,
                "q95": 110 if i < hits else 140,
                "border_truth": 300,
                "border_q05": 280 if covered else 310,
                "border_q95": 320 if covered else 350,
                "gate_passed": not refused_gate,
                "gate_failed": "ess_bulk" if refused_gate else "",
                "divergences": 0,
            }
        )
    return rows


def _grid_rows() -> pd.DataFrame:
    """Two cells of three datasets. r = 1, σ = 0: all accepted, every whole-border interval covers, 36, 36 and
    27 of 36 section-years covered, one fit retried. r = 0.6, σ = 0.5: one fit refused by the gate, one by a
    predictive check, the accepted one misses everything and is 20 % high."""
    rows = []
    for i, (hits, err, r_hat) in enumerate(((36, 0.01, 1.0), (36, 0.02, 0.98), (27, -0.03, 0.99))):
        rows += _dataset(
            i,
            retry=1.0,
            frailty=0.0,
            section_years_covered=hits,
            period_error=err,
            retry_median=r_hat,
            retry_q05=1.0 if i == 0 else 0.9,  # the first fit put r at 1
            attempts=2 if i == 1 else 1,
        )
    rows += _dataset(0, retry=0.6, frailty=0.5, covered=False, period_error=0.2, retry_median=0.9)
    rows += _dataset(1, retry=0.6, frailty=0.5, covered=False, refused_gate=True)
    rows += _dataset(2, retry=0.6, frailty=0.5, covered=False, refused_ppc=True)
    return pd.DataFrame(rows)


def _paper(tmp_path: Path) -> Path:
    """A copy of the paper folder to write into (its inputs and generated outputs, without the PDF)."""
    copy = tmp_path / "paper"
    shutil.copytree(PAPER_DIR, copy, ignore=shutil.ignore_patterns("*.pdf", "figures"))
    return copy


def _context(paper: Path) -> Context:
    return Context(root=PAPER_DIR.parent, paper=paper, quick=False)


# --------------------------------------------------------------------------------------------------------------
# misspecification


def test_the_misspecification_step_counts_each_cell_of_the_grid(tmp_path):
    paper = _paper(tmp_path)
    _grid_rows().to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    ctx = _context(paper)
    table_path, numbers_path = studies.misspecification(ctx)
    table = pd.read_csv(table_path)
    # the whole design grid, r then σ; the four cells without datasets say so
    assert list(zip(table["retry"], table["frailty"], strict=True)) == [
        (0.6, 0.0),
        (0.6, 0.5),
        (0.8, 0.0),
        (0.8, 0.5),
        (1.0, 0.0),
        (1.0, 0.5),
    ]
    assert list(table["verdict"]) == ["no data", "FAILS", "no data", "no data", "passes", "no data"]
    assert table["seeds"].tolist() == [0, 3, 0, 0, 3, 0]
    base, bad = table.iloc[4], table.iloc[1]
    # r = 1, σ = 0: every whole-border interval covers; 36 + 36 + 27 of 108 section-years
    assert (base["retried"], base["refused_gate"], base["refused_ppc"], base["accepted"]) == (
        1,
        0,
        0,
        3,
    )
    assert (base["period_covered"], base["period_n"]) == (3, 3)
    assert (base["years_covered"], base["years_n"], base["years_p"]) == (36, 36, 1.0)
    assert base["section_years_coverage"] == pytest.approx(99 / 108, abs=1e-6)
    # resampling the three datasets: the coverage lies between 27/36 (all the third) and 1 (none of it)
    assert 0.75 <= base["section_years_lo"] <= 99 / 108 <= base["section_years_hi"] <= 1.0
    assert base["period_median_rel_error"] == pytest.approx(0.01)
    assert base["retry_median"] == pytest.approx(0.99)
    # r = 0.6, σ = 0.5: two of three refused (2/3 < 0.9), the accepted one misses: P(0 of 12 | 0.9) = 0.1¹²
    assert (bad["refused_gate"], bad["refused_ppc"], bad["refused"], bad["accepted"]) == (
        1,
        1,
        2,
        1,
    )
    assert (bad["period_covered"], bad["period_n"], bad["period_p"]) == (0, 1, pytest.approx(0.1))
    assert (bad["years_covered"], bad["years_n"]) == (0, 12)
    assert bad["years_p"] == pytest.approx(0.1**12, rel=1e-6)
    assert bad["period_median_rel_error"] == pytest.approx(0.2)
    empty = table.iloc[0]
    assert empty["accepted"] == 0 and math.isnan(empty["section_years_coverage"])

    n = {k: v.value for k, v in read_numbers(numbers_path).items()}
    assert (n["cells"], n["cells_run"], n["seeds"], n["seeds_min"], n["seeds_max"]) == (
        6,
        2,
        6,
        0,
        3,
    )
    assert (n["passes"], n["refused"], n["fails"], n["no_data"]) == (1, 0, 1, 4)
    assert n["seeds_planned"] == 20 and n["grid.retries"] == "0.6, 0.8, 1"
    assert n["baseline.border_years"] == 1.0 and n["baseline.refused_share"] == 0.0
    assert n["baseline.section_years"] == pytest.approx(99 / 108)
    assert (n["baseline.years_covered"], n["baseline.years_n"], n["baseline.retried"]) == (
        36,
        36,
        1,
    )
    assert ctx.manifest["generated/tables/misspecification.csv"]["made_by"] == (
        "estim.paper.studies.misspecification"
    )
    # the same input, the same bytes
    before = table_path.read_bytes(), numbers_path.read_bytes()
    studies.misspecification(ctx)
    assert (table_path.read_bytes(), numbers_path.read_bytes()) == before
    # the accepted fits far off (> 30 %) in period total: none at +20 %; one, high, once it is +40 %
    assert (n["far.count"], n["far.accepted"], n["far.threshold"]) == (0, 4, 0.3)
    rows = _grid_rows()
    far = (rows["sim_retry"] == 0.6) & (rows["dataset"] == 0)
    rows.loc[far, "border_period_median"] = rows.loc[far, "border_period_truth"] * 1.4
    rows.to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    n = {k: v.value for k, v in read_numbers(studies.misspecification(ctx)[1]).items()}
    assert (n["far.count"], n["far.high"], n["far.at_spike"]) == (1, 1, 0)
    assert n["far.worst"] == pytest.approx(0.4)


def test_the_border_recovery_is_the_grids_cell_of_the_calibrated_world(tmp_path):
    """The recovery step's border rows are the grid's cell r = 1, σ = 0 only (the r = 0.6 cell, which misses
    everything, must not count): 3 datasets, (36 + 36 + 27)/108 section-years, every whole-border year."""
    paper = _paper(tmp_path)
    rows = _grid_rows()
    # section c 10 % high wherever it covers (30 % where not) in the cell; section a 10 % high in the other
    # cell only, which must not count
    rows.loc[(rows["sim_retry"] == 1.0) & (rows["section"] == "c") & rows["covered"], "median"] = (
        110
    )
    rows.loc[(rows["sim_retry"] != 1.0) & (rows["section"] == "a"), "median"] = 110
    rows.to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    numbers = read_numbers(studies.recovery(_context(paper))[1])
    border = {
        k.removeprefix("border."): v.value for k, v in numbers.items() if k.startswith("border.")
    }
    assert border["datasets"] == 3
    assert border["section_years"] == pytest.approx(99 / 108)
    assert border["border_years"] == 1.0
    assert border["refused"] == 0 and border["gate_failures"] == 0
    assert border["sections_beyond_5_percent"] == 1
    assert border["beyond_5_percent"] == "c (+10.0 %)"
    # the whole border split by where the fit put r: dataset 0 at 1, its period interval 100/1010 wide
    assert border["at_one.datasets"] == 1 and border["below_one.datasets"] == 2
    assert border["at_one.years"] == 12 and border["at_one.years_covered"] == 12
    assert border["at_one.median_period_width"] == pytest.approx(100 / 1010)
    assert border["below_one.years"] == 24 and border["below_one.periods_covered"] == 2
    table = pd.read_csv(paper / "generated" / "tables" / "recovery.csv")
    assert table.loc[table["family"] == "border", "datasets"].tolist() == [3, 3]


def test_the_border_recovery_refuses_a_grid_without_its_cell(tmp_path):
    paper = _paper(tmp_path)
    rows = _grid_rows()
    rows[rows["sim_retry"] != 1.0].to_csv(
        paper / "inputs" / "border_misspecification.csv.gz", index=False
    )
    with pytest.raises(EstimInputError, match=r"r = 1, σ = 0"):
        studies.recovery(_context(paper))


def test_a_baseline_cell_without_an_accepted_fit_has_no_coverage(tmp_path):
    paper = _paper(tmp_path)
    rows = _dataset(0, retry=1.0, frailty=0.0, refused_gate=True)
    pd.DataFrame(rows).to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    n = {k: v.value for k, v in read_numbers(studies.misspecification(_context(paper))[1]).items()}
    assert n["baseline.refused_share"] == 1.0 and n["baseline.accepted"] == 0
    assert n["baseline.border_years"] == studies.NONE == n["baseline.section_years"]


def test_a_missing_study_names_the_command_that_makes_it(tmp_path):
    paper = _paper(tmp_path)
    (paper / "inputs" / "border_misspecification.csv.gz").unlink()
    with pytest.raises(EstimInputError, match=r"scripts/border_misspecification\.py"):
        studies.misspecification(_context(paper))
    (paper / "inputs" / "sensitivity.json").unlink()
    with pytest.raises(EstimInputError, match="estim sensitivity models/border.toml"):
        studies.sensitivity(_context(paper))


# --------------------------------------------------------------------------------------------------------------
# sensitivity


def _variant(
    name, shift, *, priors=None, options=None, retry=None, passed=True, checks_failed=None
) -> dict:
    row = {
        "variant": name,
        "priors": priors or {},
        "gate_passed": passed,
        "median": 1000 * (1 + shift),
        "lower": 900.0,
        "upper": 1100.0,
        "mean_p": 0.45,
        "shift_from_first": shift,
    }
    if options is not None:
        row["options"] = options
    if retry is not None:
        row["retry"] = retry
    if checks_failed is not None:
        row["checks_failed"] = checks_failed
    return row


def test_the_sensitivity_step_shows_options_and_r_and_groups_the_variants(tmp_path):
    paper = _paper(tmp_path)
    rows = [
        _variant("spec", 0.0, options={}, retry=0.97, checks_failed=[]),
        _variant("hazard_mean_wide", 0.01, priors={"hazard_mean": "Normal(mu=-0.5, sigma=3.0)"}),
        _variant("hazard_mean_lower", -0.02, priors={"hazard_mean": "Normal(mu=-1.5, sigma=0.5)"}),
        _variant(
            "retry_0.7",
            -0.3,
            options={"retry_probability": 0.7},
            retry=0.7,
            checks_failed=["linkage", "frequency"],
        ),
        _variant(
            "retry_prior_0.9",
            -0.08,
            priors={"retry_probability": "Beta(alpha=45.0, beta=5.0)"},
            options={"repeated_trials_prior": 0.0},
            retry=0.93,
        ),
        _variant("frailty_0.5", 0.5, options={"frailty_sd": 0.5}, retry=0.99, passed=False),
        _variant("frailty_estimated", 0.02, options={"frailty_sd": "estimated"}, retry=0.96),
    ]
    (paper / "inputs" / "sensitivity.json").write_text(json.dumps(rows), encoding="utf-8")
    table_path, numbers_path = studies.sensitivity(_context(paper))
    table = pd.read_csv(table_path, keep_default_na=False)
    assert table["varies"].tolist() == [
        "spec",
        "hazard",
        "hazard",
        "retry",
        "retry",
        "frailty",
        "frailty",
    ]
    assert table["changed"].tolist()[3:5] == [
        "retry_probability = 0.7",
        "retry_probability ~ Beta(alpha=45.0, beta=5.0); repeated_trials_prior = 0.0",
    ]
    assert table["changed"][0] == "the spec's priors and options"
    assert table["retry"][1] == ""  # a variant without r shows none
    # checks: none failed, not recorded, failed ones named
    assert table["checks_failed"].tolist()[:4] == ["", "–", "–", "linkage, frequency"]
    n = {k: v.value for k, v in read_numbers(numbers_path).items()}
    assert (n["variants"], n["gate_passed"]) == (7, 6)
    assert (n["hazard.variants"], n["hazard.largest"], n["hazard.largest_shift"]) == (
        2,
        "hazard_mean_lower",
        pytest.approx(-2.0),
    )
    assert (n["retry.largest"], n["retry.largest_shift"]) == ("retry_0.7", pytest.approx(-30.0))
    # the frailty of 0.5 failed the gate: its +50 % is not the group's largest shift
    assert (n["frailty.variants"], n["frailty.gate_passed"], n["frailty.largest"]) == (
        2,
        1,
        "frailty_estimated",
    )
    # r's median where estimated and passed: 0.97, 0.93, 0.96 (the 0.7 is fixed, the 0.99 failed)
    assert (n["retry_min"], n["retry_max"]) == (0.93, 0.97)
    assert n["max_abs_shift"] == pytest.approx(30.0)
    assert n["checks_misfit"] == 1


def test_an_older_sensitivity_input_without_options_or_r_still_reads(tmp_path):
    paper = _paper(tmp_path)
    rows = [
        _variant("spec", 0.0),
        _variant("hazard_mean_wide", 0.001, priors={"hazard_mean": "Normal(mu=-0.5, sigma=3.0)"}),
    ]
    (paper / "inputs" / "sensitivity.json").write_text(json.dumps(rows), encoding="utf-8")
    table_path, numbers_path = studies.sensitivity(_context(paper))
    table = pd.read_csv(table_path, keep_default_na=False)
    assert table["retry"].tolist() == ["", ""]
    assert table["changed"][1] == "hazard_mean ~ Normal(mu=-0.5, sigma=3.0)"
    n = {k: v.value for k, v in read_numbers(numbers_path).items()}
    assert n["retry.variants"] == 0 and n["retry.largest"] == studies.NONE
    assert n["retry_min"] == studies.NONE and n["hazard.largest"] == "hazard_mean_wide"
    assert table["checks_failed"].tolist() == ["–", "–"] and n["checks_misfit"] == studies.NONE


# --------------------------------------------------------------------------------------------------------------
# refresh and the manuscript


def test_refresh_replaces_only_its_steps_entries_in_the_manifest(tmp_path):
    paper = _paper(tmp_path)
    manifest_path = paper / "generated" / "manifest.json"
    before = json.loads(manifest_path.read_text(encoding="utf-8"))
    stale = "generated/tables/misspecification_old.csv"
    before[stale] = {"made_by": "estim.paper.studies.misspecification", "inputs": {"x": "0"}}
    manifest_path.write_text(json.dumps(before), encoding="utf-8")
    _grid_rows().to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    refresh(paper, steps=(studies.misspecification,))
    after = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert stale not in after  # an output the step no longer makes leaves the manifest
    entry = after["generated/tables/misspecification.csv"]
    assert entry["made_by"] == "estim.paper.studies.misspecification"
    assert list(entry["inputs"]) == ["paper/inputs/border_misspecification.csv.gz"]
    others = {k: v for k, v in before.items() if "misspecification" not in k}
    assert {k: v for k, v in after.items() if "misspecification" not in k} == others


def _typeset(paper: Path) -> None:
    import typst
    from PIL import Image

    # the figures come from fits, which this test does not make: blank stand-ins
    figures = paper / "generated" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sbc = json.loads((paper / "generated" / "numbers" / "sbc.json").read_text(encoding="utf-8"))
    shown = [f"sbc_{f}" for f in sbc["figures"]["value"].split(", ") if f != studies.NONE]
    for name in ("border", "questions", "measures_fan", "measures_heatmap", *shown):
        Image.new("RGB", (20, 10), "white").save(figures / f"{name}.png")
    typst.compile(str(paper / "paper.typ"), output=str(paper / "paper.pdf"), root=str(paper))


@pytest.mark.parametrize("grid", ["incomplete", "one cell fails", "none fails"])
def test_the_manuscript_typesets_every_state_of_the_grid(tmp_path, grid):
    paper = _paper(tmp_path)
    rows = _grid_rows()
    if (
        grid != "incomplete"
    ):  # 20 datasets in every cell, all covering but (maybe) r = 0.6 with a frailty
        bad = (0.6, 0.5) if grid == "one cell fails" else None
        rows = pd.DataFrame(
            [
                row
                for r in (0.6, 0.8, 1.0)
                for f in (0.0, 0.5)
                for i in range(20)
                for row in _dataset(i, retry=r, frailty=f, covered=(r, f) != bad)
            ]
        )
    rows.to_csv(paper / "inputs" / "border_misspecification.csv.gz", index=False)
    for step in (studies.sensitivity, studies.misspecification):  # the section reads both
        step(_context(paper))
    n = {
        k: v.value
        for k, v in read_numbers(paper / "generated/numbers/misspecification.json").items()
    }
    assert (n["seeds_min"], n["fails"]) == {
        "incomplete": (0, 1),
        "one cell fails": (20, 1),
        "none fails": (20, 0),
    }[grid]
    _typeset(paper)
    assert (paper / "paper.pdf").stat().st_size > 10_000


# --------------------------------------------------------------------------------------------------------------
# provenance


def test_the_provenance_step_names_the_inputs_an_earlier_border_model_made(tmp_path):
    """Current rows only: not named. Rows recording no revision, an earlier one, or a mix: named. A JSON list
    of variants is read variant by variant."""
    from estim.families.border.revision import MODEL_REVISION

    paper = _paper(tmp_path)
    inputs = paper / "inputs"
    grid = _grid_rows().assign(model_revision=MODEL_REVISION)
    grid.to_csv(inputs / "border_misspecification.csv.gz", index=False)
    (inputs / "sbc").mkdir(exist_ok=True)
    sbc_rows = pd.DataFrame({"replicate": [0, 0], "model_revision": [MODEL_REVISION] * 2})
    sbc_rows.to_csv(inputs / "sbc" / "sbc_border.csv", index=False)
    mixed = pd.DataFrame(
        {"series": ["a", "b"], "model_revision": [MODEL_REVISION, MODEL_REVISION - 1]}
    )
    mixed.to_csv(inputs / "backtest.csv", index=False)
    pd.DataFrame({"measure": ["x"]}).to_csv(inputs / "effect_recovery.csv", index=False)
    variants = [{"variant": "a", "model_revision": MODEL_REVISION}, {"variant": "b"}]
    (inputs / "sensitivity.json").write_text(json.dumps(variants), encoding="utf-8")
    numbers = {k: v.value for k, v in read_numbers(studies.provenance(_context(paper))[0]).items()}
    assert numbers["model_revision"] == MODEL_REVISION
    assert numbers["stale_inputs"] == "backtest.csv, effect_recovery.csv, sensitivity.json"
    assert numbers["stale_count"] == 3

    pd.DataFrame({"measure": ["x"], "model_revision": [MODEL_REVISION]}).to_csv(
        inputs / "effect_recovery.csv", index=False
    )
    mixed.assign(model_revision=MODEL_REVISION).to_csv(inputs / "backtest.csv", index=False)
    variants[1]["model_revision"] = MODEL_REVISION
    (inputs / "sensitivity.json").write_text(json.dumps(variants), encoding="utf-8")
    numbers = {k: v.value for k, v in read_numbers(studies.provenance(_context(paper))[0]).items()}
    assert numbers["stale_count"] == 0 and numbers["stale_inputs"] == studies.NONE

    sbc_rows.assign(model_revision=[MODEL_REVISION, None]).to_csv(
        inputs / "sbc" / "sbc_border.csv", index=False
    )
    numbers = {k: v.value for k, v in read_numbers(studies.provenance(_context(paper))[0]).items()}
    assert numbers["stale_inputs"] == "sbc/sbc_border.csv"
