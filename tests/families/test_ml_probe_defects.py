"""Maximum-likelihood fits that a probe found reporting numbers they should not, or crashing on bad input:
covariates with inf, values too large, collinear terms, stray spaces and capitals in levels, a covariate with
one value; Mt where an occasion caught everyone seen; lists_bma on two lists."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import covariates as covariates_module
from estim.families.closed import history_data
from estim.families.registry import load_all
from estim.run.data import table_data
from estim.run.mle import mle_dict

FAMILIES = load_all()


@pytest.fixture(scope="module")
def dutch() -> pd.DataFrame:
    return load_benchmark("netherlands_immigrants")


def _ztpoisson(table: pd.DataFrame, covariates: list[str]):
    data = table_data(
        table, "ztpoisson", layout="individuals", times_seen="capture", covariates=covariates
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the goodness-of-fit warning of the Dutch data
        return FAMILIES["ztpoisson"].mle(data)


# --------------------------------------------------------------------------------------------------------------
# covariates: inf, too large, collinear, one value


def test_an_inf_covariate_is_refused_naming_column_and_row(dutch):
    table = dutch.assign(weight=np.linspace(50.0, 90.0, len(dutch)))
    table.loc[4, "weight"] = np.inf
    with pytest.raises(
        EstimInputError, match=r"column 'weight', row 5: inf is not a finite number"
    ):
        table_data(
            table, "ztpoisson", layout="individuals", times_seen="capture", covariates=["weight"]
        )


def test_a_covariate_too_large_to_standardise_is_refused(dutch):
    table = dutch.assign(weight=np.linspace(50.0, 90.0, len(dutch)))
    table.loc[4, "weight"] = 1e308
    with pytest.raises(EstimInputError, match=r"column 'weight', row 5: 1e\+308 is too large"):
        table_data(
            table, "ztpoisson", layout="individuals", times_seen="capture", covariates=["weight"]
        )


def test_collinear_continuous_covariates_are_refused_naming_both(dutch):
    years = np.arange(len(dutch)) % 50 + 18
    table = dutch.assign(age_y=years, age_m=12 * years)
    with pytest.raises(
        EstimInputError,
        match=r"collinear: 'age_m' is a linear combination of 'age_y'.*drop 'age_m'",
    ):
        table_data(
            table,
            "ztpoisson",
            layout="individuals",
            times_seen="capture",
            covariates=["age_y", "age_m"],
        )


def test_a_categorical_copy_of_a_covariate_is_refused(dutch):
    table = dutch.assign(sex2=dutch["gender"].map({"male": "M", "female": "F"}))
    with pytest.raises(
        EstimInputError, match=r"'sex2\[M\]' is a linear combination of 'gender\[male\]'"
    ):
        table_data(
            table,
            "ztpoisson",
            layout="individuals",
            times_seen="capture",
            covariates=["gender", "sex2"],
        )


def test_nearly_collinear_covariates_are_fitted():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    matrix = np.column_stack([x, 2 * x + 1e-3 * rng.normal(size=200)])
    covariates_module.refuse_rank_deficient(matrix, ["a", "b"])  # not exactly dependent: no error


def test_a_covariate_with_one_value_is_refused_not_dropped(dutch):
    table = dutch.assign(when=pd.Timestamp("2020-01-01"))
    with pytest.raises(EstimInputError, match=r"covariate 'when' takes one value for everyone"):
        table_data(
            table,
            "ztpoisson",
            layout="individuals",
            times_seen="capture",
            covariates=["gender", "when"],
        )


def test_a_singular_hessian_is_not_reported_as_an_estimate(dutch, monkeypatch):
    # past the design check (as a design the check cannot see would be): the fit must not say "ok"
    monkeypatch.setattr(covariates_module, "refuse_rank_deficient", lambda *a, **k: None)
    years = np.arange(len(dutch)) % 50 + 18
    result = _ztpoisson(dutch.assign(age_y=years, age_m=12 * years), ["age_y", "age_m"])
    assert not result.converged
    assert "Hessian singular" in result.message
    payload = mle_dict(result)
    assert payload["status"] != "ok" and payload["n_hat"] is None


# --------------------------------------------------------------------------------------------------------------
# categorical levels: stray spaces, capitals, a level of one person


def test_a_trailing_space_in_a_level_is_not_a_level_of_its_own(dutch):
    clean = _ztpoisson(dutch, ["gender"])
    spaced = dutch.copy()
    spaced.loc[spaced.index[spaced["gender"] == "male"][0], "gender"] = "male "
    result = _ztpoisson(spaced, ["gender"])
    assert not any("male " in name for name in result.parameters)
    assert result.n_hat == pytest.approx(clean.n_hat, rel=1e-9)


def test_levels_differing_only_by_case_are_warned_about(dutch):
    table = dutch.copy()
    table["gender"] = table["gender"].replace({"female": "Feminine"})
    table.loc[table.index[table["gender"] == "male"][0], "gender"] = "MALE"
    with pytest.warns(
        UserWarning, match=r"covariate 'gender': levels that differ only by case.*'MALE'"
    ):
        table_data(
            table, "ztpoisson", layout="individuals", times_seen="capture", covariates=["gender"]
        )


def test_a_one_person_level_that_ends_the_fit_on_the_boundary_is_named(dutch):
    table = dutch.copy()
    table.loc[table.index[table["gender"] == "male"][0], "gender"] = "Male"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _ztpoisson(table, ["gender", "age"])
    assert result.boundary
    assert "gender='Male' (1 person)" in result.message


# --------------------------------------------------------------------------------------------------------------
# closed families: an occasion that caught everyone seen


def _histories(rows: list[tuple[int, int, int, int]]):
    table = pd.DataFrame(rows, columns=["A", "B", "C", "count"])
    return history_data(table, occasions=["A", "B", "C"], count="count")


def test_mt_with_an_occasion_that_caught_everyone_gives_no_estimate():
    data = _histories([(1, 0, 0, 60), (1, 1, 0, 20), (1, 0, 1, 10), (1, 1, 1, 5)])
    result = FAMILIES["Mt"].mle(data)
    assert result.boundary and np.isnan(result.n_hat)
    assert "does not exist" in result.message and "'A' caught everyone seen" in result.message
    assert mle_dict(result)["n_hat"] is None


def test_mt_with_everyone_seen_every_time_gives_no_estimate():
    result = FAMILIES["Mt"].mle(_histories([(1, 1, 1, 20)]))
    assert result.boundary and np.isnan(result.n_hat)


@pytest.mark.parametrize(
    ("name", "options"),
    [("Mth_chao", {}), ("loglinear", {"capture": "Mt", "heterogeneity": "chao"})],
)
def test_chao_models_with_an_occasion_that_caught_everyone_give_no_estimate(name, options):
    """Chao's models skip the existence test before fitting (their η ≥ 0 can keep a maximum finite) and the
    log-linear families did not run it after: Mth Chao on this table gave N-hat = n = 95, SE 3e-6, exit 0."""
    data = _histories([(1, 0, 0, 60), (1, 1, 0, 20), (1, 0, 1, 10), (1, 1, 1, 5)])
    result = FAMILIES[name].mle(data, **options)
    assert result.boundary and np.isnan(result.n_hat)
    assert "does not exist" in result.message and "'A' caught everyone seen" in result.message


def test_mt_with_a_zero_cell_whose_maximum_exists_still_gives_a_number():
    # 001 unseen, but no occasion catches everyone: the MLE exists
    data = _histories(
        [(1, 0, 0, 60), (0, 1, 0, 40), (1, 1, 0, 20), (1, 0, 1, 10), (0, 1, 1, 8), (1, 1, 1, 5)]
    )
    result = FAMILIES["Mt"].mle(data)
    assert not result.boundary and np.isfinite(result.n_hat) and result.n_hat > 143


# --------------------------------------------------------------------------------------------------------------
# lists_bma on two lists


def test_lists_bma_on_two_lists_warns_that_the_estimate_leans_on_the_prior():
    from estim.families.lists.bma_family import bma_posterior

    table = pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "count": [60, 40, 20]})
    data = history_data(table, occasions=["A", "B"], count="count")
    with pytest.warns(
        UserWarning, match=r"on 2 lists .*posterior weight 0\.3\d\d.*at least 3 lists"
    ):
        bma_posterior(data)
