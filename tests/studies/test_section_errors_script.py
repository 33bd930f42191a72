"""scripts/border_section_errors.py: the per-section errors and the pull regression recover what rows built
with a known error give back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from estim.simulate.perturb import perturbed_config
from tests.studies.script_loader import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "border_section_errors.py"


@pytest.fixture(scope="module")
def script():
    return load_script("border_section_errors")


def _rows(slope: float, seeds=(4000, 4001, 4002), surveyed=("omsk", "orenburg")) -> pd.DataFrame:
    """Rows whose unsurveyed sections' medians are off by exactly ``slope`` % per unit of α_s − mean α (and the
    surveyed ones by a constant +50 %, which the regression must leave out); a misspecified cell's rows too."""
    out = []
    for seed in seeds:
        alpha = pd.Series(perturbed_config(seed).section_effect)
        for section, dev in (alpha - alpha.mean()).items():
            error = 50.0 if section in surveyed else slope * dev
            for year in (0, 1):
                out.append(
                    dict(sim_seed=seed, section=section, surveyed=section in surveyed, year=year,
                         truth=100.0, median=100.0 * np.exp(error / 100), covered=year == 0,
                         sim_retry=1.0, sim_frailty=0.0)
                )  # fmt: skip
    rows = pd.DataFrame(out)
    noise = rows.assign(sim_retry=0.6, median=1.0)  # another cell: must be ignored
    return pd.concat([rows, noise], ignore_index=True)


def test_the_pull_regression_recovers_a_known_slope_from_unsurveyed_sections_only(script):
    fit = script.pull_regression(script.baseline(_rows(-12.0)))
    assert fit["slope"] == pytest.approx(-12.0, abs=1e-6)
    assert fit["intercept"] == pytest.approx(0.0, abs=1e-6)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["points"] == 3 * 10  # ten unsurveyed sections × three datasets


def test_per_section_errors_are_medians_of_mean_log_errors(script):
    table = script.by_section(script.baseline(_rows(-12.0)))
    assert table.loc["omsk", "median_error_pct"] == pytest.approx(50.0)
    assert table["coverage"].eq(0.5).all()
    assert len(table) == 12


def test_files_with_no_paired_dataset_are_refused_with_a_message(script, tmp_path, capsys):
    _rows(-12.0, seeds=(4000,)).to_csv(tmp_path / "a.csv", index=False)
    _rows(-12.0, seeds=(4001,)).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SystemExit):
        script.main(["--rows", str(tmp_path / "a.csv"), "--variant", str(tmp_path / "b.csv")])
    assert "no fitted dataset" in capsys.readouterr().err
