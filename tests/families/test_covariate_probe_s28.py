"""Probe of the single-register families' covariate fits (session 28): each test failed on the code before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import xarray as xr

from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.single_register import frequency_data
from estim.run.data import table_data

NETHERLANDS = (
    Path(__file__).resolve().parents[2] / "data" / "benchmarks" / "netherlands_immigrants.csv"
)


def _people() -> pd.DataFrame:
    return pd.read_csv(NETHERLANDS)


def _leaked() -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """The Netherlands people with "prior arrests" = times seen − 1 as a covariate beside gender: their
    frequency data, and each person's k and design row (intercept, prior arrests, male) for a reference fit.
    One person seen once has 1 prior arrest: a covariate that is wholly a function of the count is refused
    (test_covariates_read_off.py), and this one tracks it as closely as the numerics need."""
    people = _people()
    people["prior_arrests"] = people["capture"] - 1
    people.loc[people.index[people["capture"] == 1][0], "prior_arrests"] = 1
    data = frequency_data(people, times_seen="capture", covariates=["prior_arrests", "gender"])
    k = people["capture"].to_numpy(dtype=float)
    x = np.column_stack(
        [
            np.ones(len(k)),
            people["prior_arrests"].to_numpy(dtype=float),
            (people["gender"] == "male").to_numpy(dtype=float),
        ]
    )
    return data, k, x


def test_ztpoisson_ml_with_a_covariate_that_tracks_k_matches_an_independent_fit() -> None:
    # "prior arrests" = times seen − 1: the fitted means of the people seen 5 or 6 times exceed e^7, where
    # the symbolic curvature of log(1 − p0) was inf/inf = nan and the optimiser stopped with an internal error
    # (`estim fit --mle` exit 1; the Bayesian fit lost the ML line beside its N)
    data, k, x = _leaked()
    ml = FAMILIES["ztpoisson"].mle(data)

    # reference: the zero-truncated Poisson likelihood written out here, one row per person, maximised by BFGS
    def nll(b: np.ndarray) -> float:
        eta = x @ b
        lam = np.exp(eta)
        return -float(np.sum(k * eta - lam - np.log(-np.expm1(-lam))))

    ref = scipy.optimize.minimize(nll, np.array([-2.0, 1.0, 0.0]), method="BFGS")
    n_ref = float(np.sum(1.0 / -np.expm1(-np.exp(x @ ref.x))))
    assert ml.converged
    assert ml.n_hat == pytest.approx(n_ref, rel=1e-5)
    assert ml.parameters["beta[prior_arrests]"] == pytest.approx(ref.x[1], rel=1e-4)


@pytest.mark.parametrize("family", ["zelterman", "chao"])
def test_zelterman_level_seen_only_three_or_more_times_is_refused(family: str) -> None:
    # 40 people, all seen 3+ times, in a level of their own: Zelterman's likelihood (people seen once or twice)
    # does not read them, so the level's coefficient was its prior and the Bayesian fit passed its gate with
    # N set by that prior for them
    people = _people()
    people["grp"] = "a"
    people.loc[people.index[people["capture"] >= 3][:40], "grp"] = "z"
    data = frequency_data(people, times_seen="capture", covariates=["gender", "grp"])

    # reference: the logistic log-likelihood of P(K = 2 | K ∈ {1, 2}) written out here is flat in grp[z]
    read = people[people["capture"] <= 2]
    y = (read["capture"] == 2).to_numpy(dtype=float)
    male = (read["gender"] == "male").to_numpy(dtype=float)
    z = (read["grp"] == "z").to_numpy(dtype=float)

    def loglik(b_grp: float) -> float:
        eta = -2.7 + 0.6 * male + b_grp * z
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    assert loglik(-5.0) == loglik(0.0) == loglik(5.0)

    with pytest.raises(EstimInputError, match=r"grp\[z\].*seen once or twice"):
        FAMILIES[family].build(data)
    # without the unread level the model builds
    FAMILIES[family].build(
        frequency_data(people, times_seen="capture", covariates=["gender", "age"])
    )


def test_one_inflated_ml_with_a_covariate_that_tracks_k_matches_an_independent_fit() -> None:
    # the same data with ω (one-inflation): the ψ curvatures took the same nan, the same internal error
    data, k, x = _leaked()
    ml = FAMILIES["oiztpoisson"].mle(data)

    # reference: singleRcapture's one-inflated zero-truncated Poisson (inflate, then truncate) written out here

    def nll(theta: np.ndarray) -> float:
        omega, eta = scipy.special.expit(theta[3]), x @ theta[:3]
        lam = np.exp(eta)
        lp = k * eta - lam - scipy.special.gammaln(k + 1)
        lp = np.where(
            k == 1, np.logaddexp(np.log(omega), np.log1p(-omega) + lp), np.log1p(-omega) + lp
        )
        return -float(np.sum(lp - np.log(-np.expm1(np.log1p(-omega) - lam))))

    ref = scipy.optimize.minimize(nll, np.array([-1.9, 1.05, 0.25, -2.4]), method="BFGS")
    omega = scipy.special.expit(ref.x[3])
    n_ref = float(np.sum(1.0 / -np.expm1(np.log1p(-omega) - np.exp(x @ ref.x[:3]))))
    assert ml.converged
    assert ml.n_hat == pytest.approx(n_ref, rel=1e-5)
    assert ml.parameters["omega"] == pytest.approx(omega, rel=1e-3)


def test_a_level_only_on_a_row_of_nobody_is_no_level():
    # a patterns table's count-0 row at a level found nowhere else was refused as "covariate 'sex' takes one
    # value for everyone"; the reference is the same table without that row
    rows = [
        (1, 0, 0, "f", 30), (0, 1, 0, "f", 28), (0, 0, 1, "f", 25), (1, 1, 0, "f", 9), (1, 0, 1, "f", 8),
        (0, 1, 1, "f", 7), (1, 1, 1, "f", 3), (1, 0, 0, "m", 20), (0, 1, 0, "m", 22), (0, 0, 1, "m", 19),
        (1, 1, 0, "m", 5), (1, 0, 1, "m", 4), (0, 1, 1, "m", 6), (1, 1, 1, "m", 1),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["o1", "o2", "o3", "sex", "n"])
    fields = dict(layout="patterns", occasions=["o1", "o2", "o3"], count="n", covariates=["sex"])
    reference = FAMILIES["Mt"].mle(table_data(table, "Mt", **fields))
    extra = pd.DataFrame([(1, 1, 1, "x", 0)], columns=table.columns)
    with_zero = table_data(pd.concat([table, extra], ignore_index=True), "Mt", **fields)
    assert FAMILIES["Mt"].mle(with_zero).n_hat == pytest.approx(reference.n_hat, rel=1e-9)
    assert list(with_zero["term"].values) == ["sex[m]"]
