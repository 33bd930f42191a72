"""Conditional-likelihood ML fits (Huggins' covariate models, Mh_logitnormal, Mh_mixture, Mth, Mtbh) that
reported a number with status ok where the likelihood has no interior maximum or a singular information:
Mth with an occasion that caught everyone seen (N-hat = n, SE 1e-7), Mh_mixture on 3 occasions (3 parameters,
2 numbers from the data: N-hat with an SE of 8e5), Huggins' Mb with two collinear covariates past the design
check (SE 14, status ok)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from estim.benchmarks import load_benchmark
from estim.families import covariates as covariates_module
from estim.families.closed import history_data, table_histories
from estim.families.registry import load_all
from estim.run.mle import mle_dict

FAMILIES = load_all()
OCCASIONS = ["A", "B", "C"]
# A caught everyone seen
EVERYONE_ON_A = [(1, 0, 0, 60), (1, 1, 0, 20), (1, 0, 1, 10), (1, 1, 1, 5)]
# every history seen, no occasion catches everyone: an ordinary table
ORDINARY = [
    (1, 0, 0, 60),
    (0, 1, 0, 40),
    (0, 0, 1, 30),
    (1, 1, 0, 20),
    (1, 0, 1, 10),
    (0, 1, 1, 8),
    (1, 1, 1, 5),
]


def _histories(rows):
    table = pd.DataFrame(rows, columns=[*OCCASIONS, "count"])
    return history_data(table, occasions=OCCASIONS, count="count")


def _no_estimate(result) -> dict:
    payload = mle_dict(result)
    assert payload["status"] != "ok" and payload["n_hat"] is None
    return payload


# --------------------------------------------------------------------------------------------------------------
# a capture probability running to 1


def test_mth_with_an_occasion_that_caught_everyone_gives_no_estimate():
    """logit p_A ran to 36 and the fit said converged, not a boundary: N-hat = n = 95 with an SE of 1e-7."""
    result = FAMILIES["Mth"].mle(_histories(EVERYONE_ON_A))
    assert result.boundary
    assert "logit_p[0] → +∞" in result.message and "caught everyone seen" in result.message
    _no_estimate(result)


def test_mth_on_an_ordinary_table_is_still_an_estimate():
    result = FAMILIES["Mth"].mle(_histories(ORDINARY))
    assert result.converged and not result.boundary and np.isfinite(result.se)
    assert mle_dict(result)["status"] == "ok"


# --------------------------------------------------------------------------------------------------------------
# a flat direction: more parameters than the data give


def test_mh_mixture_on_three_occasions_gives_no_estimate():
    """Mh_mixture reads the data only through the shares seen 1, 2, 3 times (2 numbers) and has 3
    parameters: its maxima form a curve. The fit said ok: N-hat 344, SE 8.5e5."""
    result = FAMILIES["Mh_mixture"].mle(_histories(ORDINARY))
    assert not result.converged and np.isnan(result.se)
    assert "3 parameters but on 3 occasions the data give 2" in result.message
    _no_estimate(result)


def test_mh_logitnormal_on_three_occasions_is_still_an_estimate():
    # 2 parameters, 2 shares: identified
    result = FAMILIES["Mh_logitnormal"].mle(_histories(ORDINARY))
    assert result.converged and not result.boundary and np.isfinite(result.se)


def test_the_hare_references_keep_their_standard_errors():
    hare = history_data(load_benchmark("hare"))
    for name in ("Mh_logitnormal", "Mh_mixture", "Mth", "Mtbh"):
        result = FAMILIES[name].mle(hare)
        assert result.converged and not result.boundary and np.isfinite(result.se), name
        assert "Hessian singular" not in result.message


# --------------------------------------------------------------------------------------------------------------
# Huggins: collinear covariates given to the family past the design check


def _collinear_animals() -> pd.DataFrame:
    rows = [r for r in ORDINARY for _ in range(r[3])]
    table = pd.DataFrame([r[:3] for r in rows], columns=OCCASIONS)
    table["weight"] = 1.0 + 0.01 * (np.arange(len(table)) * 37 % 101)
    table["double"] = 2 * table["weight"] + 3
    return table


@pytest.mark.parametrize("name", ["M0", "Mt", "Mb"])
def test_huggins_with_collinear_covariates_is_not_an_estimate(monkeypatch, name):
    """As a design the check cannot see: Mb fitted them with status ok and an SE of 14 (M0 and Mt stopped
    unconverged, with an SE all the same)."""
    monkeypatch.setattr(covariates_module, "refuse_rank_deficient", lambda *a, **k: None)
    data = table_histories(
        _collinear_animals(),
        layout="individuals",
        occasions=OCCASIONS,
        covariates=["weight", "double"],
    )
    result = FAMILIES[name].mle(data)
    assert not result.converged and not result.boundary and np.isnan(result.se)
    assert "Hessian singular" in result.message
    assert _no_estimate(result)["status"] == "not converged"


def test_huggins_with_one_covariate_is_still_an_estimate():
    data = table_histories(
        _collinear_animals(), layout="individuals", occasions=OCCASIONS, covariates=["weight"]
    )
    result = FAMILIES["Mb"].mle(data)
    assert result.converged and not result.boundary and np.isfinite(result.se)
