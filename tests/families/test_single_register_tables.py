"""A researcher's own table into the single-register families: the two layouts, every contradiction an error
naming column and row, continuous covariates against statsmodels, and the scale-aware convergence test."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats as st
from pytensor.compile.mode import Mode
from statsmodels.discrete.truncated_model import TruncatedLFPoisson

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.base import DataFieldError
from estim.families.single_register import FREQUENCY, design, frequency_data
from estim.families.single_register import mle as register_mle

FAST = Mode(linker="py", optimizer="fast_compile")
# The simulated register: log λ = −0.2 − 0.4 log distance + 0.012 age + region effect (east the reference).
TRUTH = {
    "beta_intercept": -0.2,
    "beta[log_distance]": -0.4,
    "beta[age]": 0.012,
    "beta[region[north]]": 0.3,
    "beta[region[south]]": -0.25,
}
ROWS = 12_000


def simulate_register(seed: int, rows: int = ROWS) -> tuple[pd.DataFrame, int]:
    """People drawn one after another until `rows` of them have been seen at least once (zero-truncated
    Poisson regression on a log distance, an age in years and a region); returns the seen people, one row
    each, and the true N (everyone drawn up to the last person seen)."""
    rng = np.random.default_rng(seed)
    size = 5 * rows
    log_distance = rng.normal(2.0, 0.8, size)
    age = rng.integers(18, 76, size)
    region = rng.choice(np.array(["east", "north", "south"]), size)
    effect = np.select([region == "north", region == "south"], [0.3, -0.25], 0.0)
    eta = TRUTH["beta_intercept"] - 0.4 * log_distance + 0.012 * age + effect
    k = rng.poisson(np.exp(eta))
    seen = np.flatnonzero(k > 0)[:rows]
    assert len(seen) == rows
    table = pd.DataFrame(
        {
            "times_seen": k[seen],
            "log_distance": log_distance[seen],
            "age": age[seen],
            "region": region[seen],
        }
    )
    return table, int(seen[-1]) + 1


@pytest.fixture(scope="module")
def register() -> tuple[pd.DataFrame, int]:
    return simulate_register(20260114)


def fields(**given) -> dict:
    """A spec's [data] fields with the defaults filled in, as the spec reader hands them over."""
    out = {f.name: (tuple(f.default) if f.many else f.default) for f in FREQUENCY.fields}
    out.update(given)
    return out


def _frequencies(table: pd.DataFrame, covariates: list[str], seed: int) -> pd.DataFrame:
    """The same people as a frequency table (one row per covariate pattern and k), rows shuffled."""
    cells = table.groupby([*covariates, "times_seen"], as_index=False).size()
    cells = cells.rename(columns={"size": "people"})
    return cells.sample(frac=1.0, random_state=seed).reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ layouts


def _same(a, b) -> None:
    np.testing.assert_array_equal(a["frequency"].values, b["frequency"].values)
    np.testing.assert_array_equal(a["pattern"].values, b["pattern"].values)
    for c in a.attrs["covariates"]:
        np.testing.assert_array_equal(a[c].values, b[c].values)


def test_the_two_layouts_give_the_same_frequencies(register):
    table = register[0].iloc[:600]
    covariates = ["log_distance", "age", "region"]
    people = FREQUENCY.from_benchmark(
        table, fields(layout="individuals", times_seen="times_seen", covariates=covariates)
    )
    cells = _frequencies(table, covariates, seed=1)
    # a row with nobody on it changes nothing
    cells = pd.concat([cells, cells.iloc[[0]].assign(times_seen=99, people=0)], ignore_index=True)
    counted = FREQUENCY.from_benchmark(
        cells,
        fields(
            layout="frequencies", times_seen="times_seen", count="people", covariates=covariates
        ),
    )
    _same(people, counted)
    assert int(people["frequency"].sum()) == 600
    # continuous covariates keep their values: one pattern per distinct (log distance, age, region)
    assert people.sizes["pattern"] == len(table.drop_duplicates(covariates))
    assert people["log_distance"].dtype == np.float64 and people["age"].dtype.kind == "i"
    # brute force: the people of one pattern, counted from the raw rows
    i = int(np.argmax(people["frequency"].values.sum(axis=1)))
    same = table[
        (table.log_distance == people["log_distance"].values[i])
        & (table.age == people["age"].values[i])
        & (table.region == people["region"].values[i])
    ]
    counts = np.bincount(same.times_seen, minlength=people.sizes["k"] + 1)[1:]
    np.testing.assert_array_equal(people["frequency"].values[i], counts)


def test_shipped_frequency_table_equals_the_people():
    dutch = load_benchmark("netherlands_immigrants")
    people = FREQUENCY.from_benchmark(dutch, fields(layout="individuals", times_seen="capture"))
    cells = FREQUENCY.from_benchmark(
        load_benchmark("netherlands_immigrants", frequencies=True),
        fields(layout="frequencies", times_seen="nbcap", count="freq"),
    )
    _same(people, cells)
    assert people["frequency"].values.tolist() == [[1645, 183, 37, 13, 1, 1]]
    by = ["gender", "age"]
    _same(
        FREQUENCY.from_benchmark(
            dutch, fields(layout="individuals", times_seen="capture", covariates=by)
        ),
        FREQUENCY.from_benchmark(
            _frequencies(dutch.rename(columns={"capture": "times_seen"}), by, seed=2),
            fields(layout="frequencies", times_seen="times_seen", count="people", covariates=by),
        ),
    )


PEOPLE = pd.DataFrame({"k": [1, 1, 2, 1, 3], "sex": ["f", "m", "m", "f", "m"]})
CELLS = pd.DataFrame({"k": [1, 2, 1, 3], "sex": ["f", "m", "m", "m"], "n": [2, 1, 1, 1]})
INDIVIDUALS = {"layout": "individuals", "times_seen": "k", "covariates": ("sex",)}
FREQUENCIES = {"layout": "frequencies", "times_seen": "k", "count": "n", "covariates": ("sex",)}


@pytest.mark.parametrize(
    ("table", "given", "says"),
    [
        (PEOPLE.assign(k=[1, 1, 2.5, 1, 3]), INDIVIDUALS, r"column 'k', row 3: 2\.5 is not a whole number ≥ 1"),
        (PEOPLE.assign(k=[1, 1, 2, 0, 3]), INDIVIDUALS, r"column 'k', row 4: 0 is not a whole number ≥ 1"),
        (PEOPLE.assign(k=["1", "two", "2", "1", "3"]), INDIVIDUALS, r"column 'k', row 2: 'two' is not"),
        (PEOPLE.assign(k=[1, None, 2, 1, 3]), INDIVIDUALS, r"column 'k', row 2: missing value"),
        (PEOPLE.assign(sex=["f", "m", None, "f", "m"]), INDIVIDUALS, r"column 'sex', row 3: missing value"),
        (CELLS.assign(n=[2, -1, 1, 1]), FREQUENCIES, r"column 'n', row 2: -1 is not a whole number ≥ 0"),
        (CELLS.assign(n=[2, 1, 0.5, 1]), FREQUENCIES, r"column 'n', row 3: 0\.5 is not a whole number"),
        (CELLS.assign(k=[1, 2, 1, 2]), FREQUENCIES, r"column 'k', rows 2 and 4: both give times seen = 2 and "
         r"covariates sex=m.*layout = \"individuals\""),
        (CELLS.drop(columns="sex"), {**FREQUENCIES, "covariates": ()}, r"column 'k', rows 1 and 3: both give"),
        (CELLS.assign(n=0), FREQUENCIES, r"column 'n': no people"),
    ],
)  # fmt: skip
def test_contradictions_name_column_and_row(table, given, says):
    with pytest.raises(EstimInputError, match=says):
        FREQUENCY.from_benchmark(table, fields(**given))


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        # the shipped netherlands specs before this layout: count held the times seen
        ({"count": "capture"}, "layout", r'missing.*the column of times seen is times_seen = "capture"'),
        ({"layout": "individuals", "count": "capture"}, "count",
         r'one person per row.*times_seen = "capture"'),
        ({"layout": "patterns", "count": "n"}, "layout", r'capture histories.*layout = "frequencies"'),
        ({"layout": "rows", "times_seen": "k"}, "layout", "one of individuals, frequencies"),
        ({"layout": "individuals"}, "times_seen", "missing"),
        ({"layout": "frequencies", "times_seen": "k"}, "count", "missing"),
        ({"layout": "individuals", "times_seen": "k", "covariates": ("a",), "formula": "a"}, "formula",
         "not both"),
        ({"layout": "individuals", "times_seen": "k", "covariates": ("a",), "categorical": ("b",)},
         "categorical", "not among the covariates"),
        ({"layout": "individuals", "times_seen": "k", "formula": "a + (b"}, "formula", "cannot read"),
        ({"layout": "individuals", "times_seen": "k", "section": "omsk"}, "section", "only for records"),
    ],
)  # fmt: skip
def test_field_rules_for_a_table(given, field, says):
    with pytest.raises(DataFieldError, match=says) as e:
        FREQUENCY.check(fields(**given), "file")
    assert e.value.field == field


def test_field_rules_for_records():
    ok = {"section": "omsk", "period": "2010"}
    FREQUENCY.check(fields(**ok, covariates=("category",)), "records")
    for name in ("layout", "times_seen", "count"):
        with pytest.raises(DataFieldError, match="not for records") as e:
            FREQUENCY.check(fields(**ok, **{name: "individuals"}), "records")
        assert e.value.field == name
    with pytest.raises(DataFieldError, match="only 'category'"):
        FREQUENCY.check(fields(**ok, formula="category * age"), "records")


def test_a_frequency_table_declared_as_people_is_refused():
    cells = load_benchmark("netherlands_immigrants", frequencies=True)
    with pytest.raises(
        EstimInputError, match=r"column 'freq'.*looks like a frequency table.*count = \"freq\""
    ):
        FREQUENCY.from_benchmark(cells, fields(layout="individuals", times_seen="nbcap"))


def test_missing_columns_name_the_field(register):
    table = register[0]
    for given, field in [
        ({"times_seen": "seen"}, "times_seen"),
        ({"covariates": ("distance",)}, "covariates"),
        ({"formula": "age * distance"}, "formula"),
    ]:
        with pytest.raises(DataFieldError, match="'distance'|'seen'") as e:
            FREQUENCY.from_benchmark(
                table, fields(**{"layout": "individuals", "times_seen": "times_seen", **given})
            )
        assert e.value.field == field


# ----------------------------------------------------------------------- continuous covariates, ML


def _statsmodels_fit(table: pd.DataFrame, columns: list[np.ndarray]):
    x = np.column_stack([np.ones(len(table)), *columns]).astype(float)
    return TruncatedLFPoisson(table["times_seen"].to_numpy(), x, truncation=0).fit(
        method="newton", disp=0, maxiter=100
    )


def test_12000_people_with_continuous_covariates_match_statsmodels(register):
    """The issue's benchmark: 12,000 people, two continuous covariates and one categorical. The ML fit (from
    the table, frequencies included) takes well under 10 s and matches statsmodels' zero-truncated Poisson
    (an independent implementation, fitted to the rows) in log-likelihood and coefficients."""
    table, _ = register
    start = time.perf_counter()
    data = FREQUENCY.from_benchmark(
        table,
        fields(
            layout="individuals",
            times_seen="times_seen",
            covariates=("log_distance", "age", "region"),
        ),
    )
    fit = FAMILIES["ztpoisson"].mle(data)
    seconds = time.perf_counter() - start
    assert seconds < 10.0
    # one pattern per person (continuous covariates), a handful of k: patterns × k cells, never people
    assert data["frequency"].shape == (ROWS, table.times_seen.max())
    reference = _statsmodels_fit(
        table,
        [table.log_distance, table.age, table.region == "north", table.region == "south"],
    )
    assert fit.converged and reference.mle_retvals["converged"]
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-9)
    np.testing.assert_allclose(list(fit.parameters.values()), reference.params, rtol=1e-6)
    np.testing.assert_allclose(
        list(fit.extra["standard_errors"].values()), reference.bse, rtol=1e-5
    )


def test_continuous_coefficients_and_n_are_recovered(register):
    # the simulation's truth lies within 3 standard errors of every estimate, N included
    table, n_true = register
    data = frequency_data(
        table, times_seen="times_seen", covariates=["log_distance", "age", "region"]
    )
    fit = FAMILIES["ztpoisson"].mle(data)
    for name, truth in TRUTH.items():
        assert abs(fit.parameters[name] - truth) < 3 * fit.extra["standard_errors"][name], name
    assert abs(fit.n_hat - n_true) < 3 * fit.se
    # the standardised design is what was fitted; the reported coefficients are per unit of the covariate
    assert fit.extra["scale"]["log_distance"] == pytest.approx(0.8, rel=0.05)


def test_formula_and_numeric_categories_match_statsmodels(register):
    table = register[0].iloc[:3000].copy()
    table["zone"] = np.where(table.age < 30, 2, np.where(table.age < 50, 10, 3))  # numeric codes
    data = FREQUENCY.from_benchmark(
        table,
        fields(
            layout="individuals",
            times_seen="times_seen",
            formula="log_distance * region + C(zone)",
        ),
    )
    assert list(design(data).terms) == [
        "log_distance",
        "region[north]",
        "region[south]",
        "log_distance:region[north]",
        "log_distance:region[south]",
        "zone[3]",
        "zone[10]",
    ]
    fit = FAMILIES["ztpoisson"].mle(data)
    north, south = table.region == "north", table.region == "south"
    d = table.log_distance
    reference = _statsmodels_fit(
        table, [d, north, south, d * north, d * south, table.zone == 3, table.zone == 10]
    )
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-9)
    np.testing.assert_allclose(list(fit.parameters.values()), reference.params, rtol=1e-6)


# ------------------------------------------------------------------------------------------ convergence


def test_huge_register_is_not_falsely_refused():
    """The Dutch frequencies × 10⁹ (1.9 × 10¹² people): the MLE of λ is unchanged and N̂ scales by 10⁹. At this
    size one ulp of log λ moves the score by more than 10⁻⁶, so a fixed absolute gradient tolerance of 10⁻⁶
    (the old test) cannot be met; the Newton decrement can."""
    scale = 1e9
    base = np.array([1645, 183, 37, 13, 1, 1])
    table = pd.DataFrame({"k": np.arange(1, 7), "n": (base * scale).astype(np.int64)})
    fit = FAMILIES["ztpoisson"].mle(frequency_data(table, times_seen="k", count="n"))
    assert fit.converged and not fit.boundary, fit.message
    # closed form: λ̂/(1 − e^{−λ̂}) = mean k (published: 0.30862), N̂ = n/(1 − e^{−λ̂})
    mean_k = (base * np.arange(1, 7)).sum() / base.sum()
    lam = scipy.optimize.brentq(lambda x: x / -np.expm1(-x) - mean_k, 1e-6, 10.0, xtol=1e-15)
    assert np.exp(fit.parameters["beta_intercept"]) == pytest.approx(lam, rel=1e-10)
    assert fit.n_hat == pytest.approx(base.sum() * scale / -np.expm1(-lam), rel=1e-10)
    # observed information × one ulp of θ̂ (d²ℓ/dη² = n λ d/dλ[λ/(1 − e^{−λ})] evaluated by hand)
    n = base.sum() * scale
    info = n * lam * (1 - np.exp(-lam) - lam * np.exp(-lam)) / (-np.expm1(-lam)) ** 2
    assert info * np.spacing(abs(np.log(lam))) > 1e-6


def test_convergence_test_is_scale_aware():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 3))
    for n in (1e2, 1e12):  # information grows with the people; the test's verdict must not
        hess = n * (a @ a.T + 3 * np.eye(3))
        se = np.sqrt(np.diag(np.linalg.inv(hess)))
        theta = np.array([0.5, -1.0, 2.0])
        for off, ok in ((1e-5, True), (1e-2, False)):
            grad = hess @ (off * se)  # the score at a point `off` standard errors from the maximum
            assert register_mle.converged_at(grad, hess, theta, -n) is ok
        assert np.abs(hess @ (1e-5 * se)).max() > 1e-6 or n < 1e3
    # a singular information: the relative gradient decides
    singular = np.diag([1.0, 0.0])
    assert register_mle.converged_at(np.array([1e-9, 0.0]), singular, np.ones(2), -10.0)
    assert not register_mle.converged_at(np.array([1e-3, 0.0]), singular, np.ones(2), -10.0)


def test_a_true_failure_is_still_reported(monkeypatch, register):
    # an optimiser that stops where it starts, and no polishing: the fit is refused, saying how far off it is
    def stuck(fun, x0, **_):
        return scipy.optimize.OptimizeResult(
            x=np.asarray(x0), fun=fun(x0)[0], nit=0, success=False, message="stopped"
        )

    monkeypatch.setattr(scipy.optimize, "minimize", stuck)
    monkeypatch.setattr(register_mle, "POLISH_STEPS", 0)
    data = frequency_data(register[0], times_seen="times_seen", covariates=["log_distance"])
    fit = FAMILIES["ztpoisson"].mle(data)
    assert not fit.converged and not fit.boundary
    assert "not converged: the estimate is" in fit.message and "standard errors" in fit.message


# ------------------------------------------------------------------------------ the Bayesian model


def test_bayesian_model_on_the_standardised_scale_is_the_raw_likelihood(register):
    """The model samples standardised coefficients; its likelihood must be that of the raw covariates with the
    coefficients on their own scale (scipy, person by person), and the reported original-scale coefficients
    must be those."""
    table = register[0].iloc[:400]
    data = frequency_data(
        table, times_seen="times_seen", covariates=["log_distance", "age", "region"]
    )
    model = FAMILIES["ztpoisson"].build(data)
    d = design(data)
    b0, beta = -0.5, np.array([-0.3, 0.2, 0.25, -0.1])
    point = {"beta_intercept": np.array(b0), "beta": beta}
    a, b = d.original_scale(b0, beta)
    lam = np.exp(
        a
        + b[0] * table.log_distance
        + b[1] * table.age
        + b[2] * (table.region == "north")
        + b[3] * (table.region == "south")
    ).to_numpy()
    k = table.times_seen.to_numpy()
    expected = (st.poisson.logpmf(k, lam) - np.log(-np.expm1(-lam))).sum()
    got = model.compile_logp(vars=[model["frequency"]], mode=FAST)(point)
    assert got == pytest.approx(expected, rel=1e-10)
    outputs = model.replace_rvs_by_values(
        [model["beta_intercept_original"], model["beta_original"]]
    )
    original = model.compile_fn(outputs, inputs=model.value_vars, mode=FAST)(point)
    assert float(original[0]) == pytest.approx(a, rel=1e-12)
    np.testing.assert_allclose(original[1], b, rtol=1e-12)
    assert list(model.coords["term"]) == ["log_distance", "age", "region[north]", "region[south]"]
