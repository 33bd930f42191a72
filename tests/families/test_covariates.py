"""Covariates as researchers write them: formulas, the kind of each covariate, standardisation and the way back
to the covariates' own units, checked against design matrices written out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from estim.errors import EstimInputError
from estim.families.covariates import (
    MAX_LEVELS,
    covariate_design,
    covariate_kinds,
    parse_formula,
)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    rng = np.random.default_rng(20260107)
    n = 300
    return pd.DataFrame(
        {
            "weight": rng.normal(70.0, 12.0, n),
            "age": rng.integers(18, 80, n),
            "sex": rng.choice(["female", "male"], n),
            "region": rng.choice(["east", "north", "south"], n),
        }
    )


# ---------------------------------------------------------------------------------------------- formulas


@pytest.mark.parametrize(
    ("formula", "terms", "forced"),
    [
        ("sex * weight + C(age)", [("sex",), ("weight",), ("sex", "weight"), ("age",)], {"age"}),
        ("~ a + b:c", [("a",), ("b", "c")], set()),
        ("a * b * c", [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")],
         set()),
        ("a + a + a:b + a:b", [("a",), ("a", "b")], set()),
        ("1", [], set()),
        ("", [], set()),
        ("1 + x", [("x",)], set()),
    ],
)  # fmt: skip
def test_parse_formula(formula, terms, forced):
    assert parse_formula(formula) == (terms, forced)


@pytest.mark.parametrize("formula", ["a + (b", "a + ", "a + b^2", "log(x)"])
def test_parse_formula_refuses_what_it_cannot_read(formula):
    with pytest.raises(EstimInputError, match="formula"):
        parse_formula(formula)


# ------------------------------------------------------------------------------------------------- kinds


def test_kinds_inferred_or_declared(people):
    flags = people.assign(member=people["age"] > 40, decade=people["age"] // 10)
    kinds = covariate_kinds(flags, ["weight", "decade", "sex", "member"], categorical=["decade"])
    assert kinds == {
        "weight": "continuous",
        "decade": "categorical",
        "sex": "categorical",
        "member": "categorical",
    }


def test_level_limit(people):
    codes = people.assign(code=np.arange(len(people)) % (MAX_LEVELS + 10))
    with pytest.raises(
        EstimInputError, match=rf"'code' has {MAX_LEVELS + 10} levels.*at most {MAX_LEVELS}"
    ) as e:
        covariate_kinds(codes, ["code"], categorical=["code"])
    assert "continuous" in str(e.value)  # numeric: the way out is to leave it continuous
    names = codes.assign(code=codes["code"].astype(str) + "x")
    with pytest.raises(EstimInputError, match="recode it into fewer groups"):
        covariate_kinds(names, ["code"])
    assert covariate_kinds(codes, ["code"]) == {"code": "continuous"}


def test_missing_value_names_column_and_row(people):
    holes = people.copy()
    holes.loc[41, "region"] = None
    with pytest.raises(EstimInputError, match=r"column 'region', row 42: missing value"):
        covariate_design(holes, ["weight", "region"])


def test_constant_continuous_covariate_refused(people):
    with pytest.raises(EstimInputError, match="'height' takes one value for everyone"):
        covariate_design(people.assign(height=1.8), ["height"])


def test_numeric_categories_sort_as_numbers():
    table = pd.DataFrame({"zone": [2, 10, 3, 2, 10]})
    d = covariate_design(table, ["zone"], categorical=["zone"])
    # reference level 2 (the smallest number), not "10" (the first string)
    assert d.terms == ("zone[3]", "zone[10]")
    np.testing.assert_array_equal(d.matrix[:, 1], [0, 1, 0, 0, 1])


# ----------------------------------------------------------------------------------- the original scale


def _raw_design(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """`weight * region + age` written out by hand: treatment coding against "east", raw units."""
    north = (table["region"] == "north").to_numpy(float)
    south = (table["region"] == "south").to_numpy(float)
    w, age = table["weight"].to_numpy(float), table["age"].to_numpy(float)
    columns = [w, north, south, w * north, w * south, age]
    names = [
        "weight",
        "region[north]",
        "region[south]",
        "weight:region[north]",
        "weight:region[south]",
        "age",
    ]
    return np.column_stack(columns), names


@pytest.mark.parametrize("weighted", [False, True])
def test_original_scale_round_trip_against_the_raw_design(people, weighted):
    rng = np.random.default_rng(4)
    weights = rng.integers(1, 5, len(people)) if weighted else None
    d = covariate_design(people, formula="weight * region + age", weights=weights)
    raw, names = _raw_design(people)
    assert list(d.terms) == names
    assert d.kinds == {"weight": "continuous", "region": "categorical", "age": "continuous"}
    # 0/1 columns are left alone; the rest standardised over the people (weighted by their counts)
    w = np.ones(len(people)) if weights is None else weights.astype(float)
    for j in range(len(names)):
        col = raw[:, j]
        if set(np.unique(col)) <= {0.0, 1.0}:
            assert (d.center[j], d.scale[j]) == (0.0, 1.0)
        else:
            mean = np.average(col, weights=w)
            assert d.center[j] == pytest.approx(mean)
            assert d.scale[j] == pytest.approx(np.sqrt(np.average((col - mean) ** 2, weights=w)))
    np.testing.assert_allclose(d.matrix, (raw - d.center) / d.scale, atol=1e-12)
    # the same linear predictor on both scales
    intercept, beta = -0.7, rng.normal(0.0, 0.5, len(names))
    eta = intercept + d.matrix @ beta
    a, b = d.original_scale(intercept, beta)
    np.testing.assert_allclose(a + raw @ b, eta, rtol=1e-12, atol=1e-12)
    # per draw, and as a linear map
    draws = rng.normal(0.0, 0.5, (3, 7, len(names)))
    a3, b3 = d.original_scale(np.full((3, 7), intercept), draws)
    assert a3.shape == (3, 7) and b3.shape == draws.shape
    np.testing.assert_allclose(d.original_scale_matrix() @ np.r_[intercept, beta], np.r_[a, b])


def test_least_squares_on_either_scale_agree(people):
    # an independent check of the way back: OLS on the raw design versus OLS on the standardised one
    rng = np.random.default_rng(9)
    raw, _ = _raw_design(people)
    y = 1.0 + raw @ rng.normal(0, 0.05, raw.shape[1]) + rng.normal(0, 0.1, len(people))
    d = covariate_design(people, formula="weight * region + age")
    fit_raw = np.linalg.lstsq(np.column_stack([np.ones(len(y)), raw]), y, rcond=None)[0]
    fit_std = np.linalg.lstsq(np.column_stack([np.ones(len(y)), d.matrix]), y, rcond=None)[0]
    a, b = d.original_scale(fit_std[0], fit_std[1:])
    np.testing.assert_allclose(np.r_[a, b], fit_raw, rtol=1e-8, atol=1e-10)
