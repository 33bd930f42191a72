"""A researcher's table into the single-register families where it once went silently wrong: covariates named
like the data's own variables (pattern, k, frequency, …), the zero-truncated binomial with one occasion, a
frequency table declared one row per person (with covariates, with a repeated times seen), one typo in a
numeric covariate, and counts too large for an integer. Each is an error naming the column (and row), or an
N-hat equal to an independent reference: scipy's ML per group, or the same data under a harmless column name.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.base import DataFieldError
from estim.families.closed import table_checks
from estim.families.covariates import MAX_LEVELS, covariate_kinds
from estim.families.registry import load_all
from estim.families.single_register import BINOMIAL, binomial_data, design, frequency_data
from estim.paths import REPO_ROOT
from estim.run.data import read_table, table_data

load_all()

# Three groups' frequencies f_k (the probe's table): per group a different Poisson rate.
GROUPS = {"a": [162, 21], "b": [142, 45, 14, 2, 1], "c": [164, 44, 5]}
FREQUENCIES = {"layout": "frequencies", "times_seen": "times", "count": "n"}
FAMILIES_WITH_COVARIATES = [
    "ztpoisson",
    "ztgeometric",
    "oiztpoisson",
    "zelterman",
    "chao",
    "ztbinomial",
]


def group_table(name: str = "group") -> pd.DataFrame:
    """The frequency table with the group in column ``name``."""
    rows = [(g, k, n) for g, f in GROUPS.items() for k, n in enumerate(f, start=1)]
    return pd.DataFrame(rows, columns=[name, "times", "n"])


def ztpoisson_n_hat(f: list[int]) -> float:
    """The intercept-only zero-truncated Poisson's ML N-hat: λ solves λ/(1 − e^−λ) = mean k (brentq)."""
    f = np.asarray(f, dtype=float)
    k = np.arange(1, len(f) + 1)
    mean = (k * f).sum() / f.sum()
    lam = scipy.optimize.brentq(lambda x: x / -np.expm1(-x) - mean, 1e-9, 50.0)
    return float(f.sum() / -np.expm1(-lam))


def fit(table: pd.DataFrame, family: str, **fields) -> float:
    extra = {"trials": 6} if family == "ztbinomial" else {}
    data = table_data(table, family, **{**FREQUENCIES, **extra, **fields})
    result = FAMILIES[family].mle(data)
    assert not result.boundary
    return result.n_hat


# ------------------------------------------------------------------ 1. covariates named like the data's own


@pytest.mark.parametrize("name", ["pattern", "k", "frequency", "_k", "_w", "trials", "covariate_x"])
def test_a_covariate_named_like_an_internal_name_is_a_covariate(name):
    """The saturated ztpoisson is each group's own fit: N-hat is the sum of scipy's per-group estimates
    (1,884.365), whatever the column is called (`pattern` was dropped: 1,555.66; `k`, `frequency`, `_k`
    crashed)."""
    reference = sum(ztpoisson_n_hat(f) for f in GROUPS.values())
    assert reference == pytest.approx(1884.365, abs=1e-3)
    table = group_table(name)
    assert fit(table, "ztpoisson", covariates=[name]) == pytest.approx(reference, rel=1e-6)
    data = table_data(table, "ztpoisson", **FREQUENCIES, covariates=[name])
    assert list(design(data).terms) == [f"{name}[b]", f"{name}[c]"]
    assert data.sizes["pattern"] == 3 and data.attrs["n_observed"] == sum(map(sum, GROUPS.values()))
    # the Bayesian model sees the same design
    model = FAMILIES["ztpoisson"].build(data, {})
    assert list(model.coords["term"]) == [f"{name}[b]", f"{name}[c]"]


@pytest.mark.parametrize("family", FAMILIES_WITH_COVARIATES)
@pytest.mark.parametrize("name", ["pattern", "k", "frequency", "_w"])
def test_every_family_fits_an_internal_name_as_it_fits_a_harmless_one(family, name):
    reference = fit(group_table(), family, covariates=["group"])
    assert fit(group_table(name), family, covariates=[name]) == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("name", ["pattern", "k", "frequency"])
def test_a_formula_names_an_internal_name(name):
    """``formula = "pattern"`` was refused: "no covariate column(s) ['pattern']; it has []"."""
    reference = fit(group_table(), "ztpoisson", covariates=["group"])
    assert fit(group_table(name), "ztpoisson", formula=name) == pytest.approx(reference, rel=1e-9)
    assert fit(group_table(name), "ztpoisson", formula=f"C({name})") == pytest.approx(
        reference, rel=1e-9
    )


def test_the_binomial_keeps_a_trials_column_named_like_an_internal_name():
    """Occasions in a column called ``k`` (varying: a coordinate of its own) beside a covariate ``trials``."""
    rows = [("a", 1, 30, 4), ("a", 2, 9, 4), ("b", 1, 25, 7), ("b", 2, 12, 7), ("b", 3, 4, 7)]
    plain = pd.DataFrame(rows, columns=["group", "times", "n", "t"])
    renamed = plain.rename(columns={"group": "trials", "t": "k"})
    a = binomial_data(plain, times_seen="times", count="n", trials="t", covariates=["group"])
    b = binomial_data(renamed, times_seen="times", count="n", trials="k", covariates=["trials"])
    assert b["trials"].values.tolist() == [4, 7]
    assert FAMILIES["ztbinomial"].mle(b).n_hat == pytest.approx(
        FAMILIES["ztbinomial"].mle(a).n_hat, rel=1e-9
    )


@pytest.mark.parametrize(
    ("fields", "column"),
    [
        ({"covariates": ["times"]}, "times"),
        ({"covariates": ["group", "n"]}, "n"),
        ({"formula": "group + times"}, "times"),
    ],
)
def test_the_times_seen_or_count_column_as_a_covariate_is_refused_by_name(fields, column):
    with pytest.raises(
        EstimInputError, match=rf"column '{column}' is the .*cannot also be a covariate"
    ):
        table_data(group_table(), "ztpoisson", **FREQUENCIES, **fields)


def test_individuals_times_seen_as_covariate_is_refused():
    people = pd.DataFrame({"k": [1, 1, 2, 1, 3, 1]})
    with pytest.raises(EstimInputError, match=r"column 'k' is the times seen"):
        table_data(people, "ztpoisson", layout="individuals", times_seen="k", covariates=["k"])


# ------------------------------------------------------------------------- 2. the binomial with one occasion


ONE_NIGHT = pd.DataFrame({"nights": [1], "n": [25]})


def test_one_occasion_is_refused_in_the_spec_and_in_python():
    """``trials = 1`` gave N-hat 25.51 with SE nan; the spec check (Bayesian and ML alike) and
    `binomial_data` refuse it."""
    fields = {
        f.name: (tuple(f.default) if f.many and f.default else f.default) for f in BINOMIAL.fields
    }
    fields.update(layout="frequencies", times_seen="nights", count="n", trials=1)
    with pytest.raises(DataFieldError, match="≥ 2.*not identifiable") as e:
        BINOMIAL.check(fields, "file")
    assert e.value.field == "trials"
    with pytest.raises(EstimInputError, match="trials.*≥ 2.*not identifiable"):
        table_data(
            ONE_NIGHT, "ztbinomial", layout="frequencies", times_seen="nights", count="n", trials=1
        )
    with pytest.raises(
        EstimInputError, match="trials = 1: with one occasion nobody can be seen twice"
    ):
        binomial_data(ONE_NIGHT, times_seen="nights", count="n", trials=1)


def test_a_trials_column_of_ones_is_refused_but_ones_beside_more_are_not():
    table = pd.DataFrame({"k": [1, 1], "n": [25, 3], "t": [1, 1]})
    with pytest.raises(
        EstimInputError, match="column 't': every row with people on it has 1 occasion"
    ):
        binomial_data(table, times_seen="k", count="n", trials="t")
    # a row of 1 occasion with nobody on it does not rescue the table
    with pytest.raises(EstimInputError, match="column 't'"):
        binomial_data(
            pd.concat([table, pd.DataFrame({"k": [1], "n": [0], "t": [4]})]),
            times_seen="k",
            count="n",
            trials="t",
        )
    mixed = pd.DataFrame({"k": [1, 1, 2, 3], "n": [5, 30, 12, 3], "t": [1, 4, 4, 4]})
    data = binomial_data(mixed, times_seen="k", count="n", trials="t")
    assert sorted(data["trials"].values.tolist()) == [1, 4]


def test_nobody_seen_twice_under_the_binomial_is_treated_as_under_the_poisson():
    """Everyone seen once in t = 3 occasions: like the zero-truncated Poisson (and unlike a number), the ML
    fit is on the boundary (N-hat runs to infinity), which the CLI refuses (exit 3) and the Bayesian summary
    flags as set by the prior."""
    table = pd.DataFrame({"k": [1], "n": [25]})
    fields = {"layout": "frequencies", "times_seen": "k", "count": "n"}
    binomial = FAMILIES["ztbinomial"].mle(table_data(table, "ztbinomial", **fields, trials=3))
    poisson = FAMILIES["ztpoisson"].mle(table_data(table, "ztpoisson", **fields))
    assert binomial.boundary and poisson.boundary
    assert "no finite population-size estimate" in binomial.message


# --------------------------------------------------- 3. a frequency table declared one row per person


def _individuals(table: pd.DataFrame, family: str = "ztpoisson", **fields):
    return table_data(table, family, layout="individuals", **fields)


@pytest.mark.parametrize(
    ("table", "fields", "cells"),
    [
        # two rows (the guard needed three): chao gave N-hat 2.5
        (pd.DataFrame({"times": [1, 2], "people": [1645, 183]}), {"family": "chao"}, "distinct"),
        # a covariate (the guard ran only without): N-hat 7.53 for 1,865 people
        (
            pd.DataFrame(
                {
                    "sex": ["M", "M", "M", "F", "F", "F"],
                    "times": [1, 2, 3, 1, 2, 3],
                    "people": [900, 100, 20, 745, 83, 17],
                }
            ),
            {"covariates": ["sex"]},
            "distinct",
        ),
        # a times seen repeated on a row of nobody (the guard needed every k once)
        (pd.DataFrame({"times": [1, 2, 3, 3], "people": [1645, 183, 37, 0]}), {}, "distinct"),
        # a cell on two rows: under two rows per (times, sex) cell
        (
            pd.DataFrame(
                {
                    "sex": ["M", "M", "M", "F", "F"],
                    "times": [1, 1, 2, 1, 2],
                    "people": [800, 100, 100, 745, 83],
                }
            ),
            {"covariates": ["sex"]},
            "under 2 rows each",
        ),
        # a stratum the spec does not name
        (
            pd.DataFrame(
                {
                    "region": ["east"] * 3 + ["west"] * 3,
                    "times": [1, 2, 3] * 2,
                    "people": [900, 100, 20, 745, 83, 17],
                }
            ),
            {},
            "distinct",
        ),
    ],
)
def test_a_frequency_table_declared_as_people_is_refused(table, fields, cells):
    fields = dict(fields)
    family = fields.pop("family", "ztpoisson")
    evidence = "no two of its .* rows with people share" if cells == "distinct" else cells
    with pytest.raises(
        EstimInputError,
        match=rf"column 'people', row 1: .*{evidence}.*looks like a frequency table.*"
        r'layout = "frequencies", count = "people"',
    ):
        _individuals(table, family, times_seen="times", **fields)


def test_the_same_table_declared_as_frequencies_fits():
    table = pd.DataFrame(
        {
            "sex": ["M", "M", "M", "F", "F", "F"],
            "times": [1, 2, 3, 1, 2, 3],
            "people": [900, 100, 20, 745, 83, 17],
        }
    )
    data = table_data(
        table,
        "ztpoisson",
        layout="frequencies",
        times_seen="times",
        count="people",
        covariates=["sex"],
    )
    expected = ztpoisson_n_hat([900, 100, 20]) + ztpoisson_n_hat([745, 83, 17])
    assert FAMILIES["ztpoisson"].mle(data).n_hat == pytest.approx(expected, rel=1e-6)


def test_the_binomial_guards_its_individuals_too():
    table = pd.DataFrame({"k": [1, 2, 3], "t": [4, 4, 4], "people": [120, 40, 9]})
    with pytest.raises(EstimInputError, match="column 'people'.*count = \"people\""):
        _individuals(table, "ztbinomial", times_seen="k", trials_column="t")


@pytest.fixture(scope="module")
def apprehended() -> pd.DataFrame:
    return read_table(REPO_ROOT / "examples" / "own_file" / "apprehended.csv")


def test_the_shipped_individuals_example_still_fits(apprehended):
    data = _individuals(apprehended, times_seen="times_apprehended", formula="sex + age + region")
    assert data.attrs["n_observed"] == len(apprehended)
    assert np.isfinite(FAMILIES["ztpoisson"].mle(data).n_hat)


@pytest.mark.parametrize("rows", [150, 300, 1109])
def test_people_with_an_undeclared_whole_number_column_are_not_refused(apprehended, rows):
    """A genuine individuals table beside a column of whole numbers (a year, a number of children): people
    share their (times seen, sex, age, region, year), even a hundred and fifty of them with an age in years;
    averaged over the cells of the numeric columns too they would fall under two rows per cell."""
    rng = np.random.default_rng(7)
    table = apprehended.sample(rows, random_state=3).reset_index(drop=True)
    table = table.assign(
        year=rng.integers(2019, 2024, rows),
        children=rng.poisson(1.5, rows),
        nights=rng.integers(2, 40, rows),
    )
    _individuals(table, times_seen="times_apprehended", formula="sex + age + region")
    _individuals(table, times_seen="times_apprehended")


def test_a_person_id_is_not_a_count():
    table = pd.DataFrame({"id": [5, 3, 4, 2, 1, 6], "times": [1, 1, 2, 1, 3, 1]})
    _individuals(table, times_seen="times")


# ---------------------------------------------- 3b. one frequency table per region, the region undeclared

STRATUM_HINT = (
    r"column 'region' is not declared: declare it as a covariate .*or add up the counts over it"
)


def _regions(coded: bool) -> pd.DataFrame:
    """The three groups' frequency table, the group in column ``region`` as 1, 2, 3 or as text."""
    table = group_table("region")
    return table.assign(region=table.region.map({"a": 1, "b": 2, "c": 3})) if coded else table


@pytest.mark.parametrize("coded", [True, False])
def test_a_frequency_table_split_by_an_undeclared_region_names_the_region(coded):
    """Each times seen once per region: the old message named the times seen and advised layout =
    "individuals", which then read the 10 rows as 10 people."""
    with pytest.raises(
        EstimInputError,
        match=rf"column 'region', rows 1 and 3: the same times seen.*{STRATUM_HINT}",
    ):
        table_data(_regions(coded), "ztpoisson", **FREQUENCIES)


@pytest.mark.parametrize("family", ["ztpoisson", "chao", "ztbinomial"])
def test_an_undeclared_numeric_region_declared_as_people_is_refused(family):
    """Declared one row per person, the numeric region was left out of the cells: the 10 rows were fitted as 10
    people (ztpoisson N-hat 11.4, chao 11.5, ztbinomial 10.6 for a table of 600 people)."""
    extra = {"trials": 6} if family == "ztbinomial" else {}
    with pytest.raises(
        EstimInputError,
        match=r"column 'n', row 1: 162: no two of its 10 rows with people share their times seen and "
        rf"'region'.*count = \"n\", and {STRATUM_HINT}",
    ):
        _individuals(_regions(coded=True), family, times_seen="times", **extra)


def test_the_region_declared_fits_each_region_as_scipy():
    """Declared as a (categorical) covariate, the saturated ztpoisson is each region's own fit: the sum of
    scipy's per-group N-hats; declared continuous, the table is read, one pattern per region."""
    reference = sum(ztpoisson_n_hat(f) for f in GROUPS.values())
    table = _regions(coded=True)
    n_hat = fit(table, "ztpoisson", covariates=["region"], categorical=["region"])
    assert n_hat == pytest.approx(reference, rel=1e-6)
    data = table_data(table, "ztpoisson", **FREQUENCIES, covariates=["region"])
    assert data["frequency"].values.sum(axis=1).tolist() == [sum(f) for f in GROUPS.values()]
    assert list(design(data).terms) == ["region"]


def test_people_with_an_undeclared_region_code_and_year_are_not_refused():
    """A genuine individuals table with a region coded 1, 2, 3 and a year, neither declared: people share
    their (times seen, region) and (times seen, year), so neither is taken for a stratum of counts."""
    rng = np.random.default_rng(5)
    rows = 60
    table = pd.DataFrame(
        {
            "times": 1 + rng.poisson(0.4, rows),
            "region": rng.integers(1, 4, rows),
            "year": rng.integers(2019, 2024, rows),
        }
    )
    data = _individuals(table, times_seen="times")
    assert data.attrs["n_observed"] == rows


# One frequency table per (region, age): region coded 1, 2, 3, an age group in years; f_k per cell
BY_REGION_AND_AGE = {
    (1, 20): [115, 26, 4],
    (1, 40): [127, 35, 6, 1],
    (1, 60): [137, 46, 10, 2],
    (2, 20): [139, 45, 11, 2],
    (2, 40): [144, 59, 16, 3, 1],
    (2, 60): [147, 74, 25, 6, 1],
    (3, 20): [147, 74, 25, 6, 1],
    (3, 40): [144, 88, 36, 11, 3, 1],
    (3, 60): [134, 100, 50, 19, 6, 1],
}


def _regions_and_ages() -> pd.DataFrame:
    rows = [(r, a, k, n) for (r, a), f in BY_REGION_AND_AGE.items() for k, n in enumerate(f, 1)]
    return pd.DataFrame(rows, columns=["region", "age", "times", "n"])


@pytest.mark.parametrize("family", ["ztpoisson", "chao", "ztbinomial"])
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        # age a declared continuous covariate: it stayed out of the cells that the region should split
        (
            {"covariates": ["age"]},
            r"column 'region' is not declared.*one row per times seen and 'age'",
        ),
        # neither declared: each alone leaves a times seen on two rows
        ({}, r"columns 'region' and 'age' are not declared.*one row per times seen\)"),
    ],
)
def test_counts_by_an_undeclared_region_and_an_age_declared_as_people_are_refused(
    family, fields, named
):
    """The 42 rows, 2,028 people, were read as 42 people: ztpoisson N-hat 44.9 (45.0 with age declared),
    chao 46.5, ztbinomial 42.9, where declaring both gives 3,620 (the sum of scipy's per-cell N-hats, below)."""
    extra = {"trials": 6} if family == "ztbinomial" else {}
    with pytest.raises(
        EstimInputError,
        match=r"column 'n', row 1: 115: no two of its 42 rows with people share their times seen and "
        r"'(age|region)' and '(age|region)'.*about 14 pairs of rows sharing them by chance.*"
        rf'count = "n", and {named}',
    ):
        _individuals(_regions_and_ages(), family, times_seen="times", **fields, **extra)


def test_counts_by_an_undeclared_region_and_age_as_frequencies_name_both():
    """Neither alone tells the rows apart: the message named the times seen and advised layout =
    "individuals", which then read the 42 rows as 42 people."""
    with pytest.raises(
        EstimInputError,
        match=r"columns 'region' and 'age', rows 1 and 4: the same times seen, with \(1, 20\) and "
        r"\(1, 40\) in \('region', 'age'\).*columns 'region' and 'age' are not declared",
    ):
        table_data(_regions_and_ages(), "ztpoisson", **FREQUENCIES)


def test_counts_by_region_and_age_declared_fit_each_cell_as_scipy():
    """Declared as the message says, the saturated ztpoisson is each (region, age) table's own fit."""
    reference = sum(ztpoisson_n_hat(f) for f in BY_REGION_AND_AGE.values())
    assert reference == pytest.approx(3620.031, abs=1e-3)
    n_hat = fit(_regions_and_ages(), "ztpoisson", formula="C(region) * C(age)")
    assert n_hat == pytest.approx(reference, rel=1e-6)
    data = table_data(_regions_and_ages(), "ztpoisson", **FREQUENCIES, covariates=["age", "region"])
    assert data.attrs["n_observed"] == sum(map(sum, BY_REGION_AND_AGE.values()))


@pytest.mark.parametrize("rows", [40, 120, 400])
def test_people_with_an_age_and_an_undeclared_region_are_not_refused(rows):
    """A genuine individuals table, an age in years declared continuous, a region coded 1, 2, 3 and a number
    of children undeclared: people differ in (age, region) within their times seen by chance now and then, but
    not on enough pairs of rows to be taken for one table of counts per region."""
    rng = np.random.default_rng(rows)
    age = rng.integers(18, 71, rows)
    region = rng.integers(1, 4, rows)
    table = pd.DataFrame(
        {
            "times": 1 + rng.poisson(np.exp(-1.2 + 0.01 * (age - 40) + 0.3 * (region - 2))),
            "age": age,
            "region": region,
            "children": rng.poisson(1.5, rows),
        }
    )
    for fields in ({"covariates": ["age"]}, {}):
        assert _individuals(table, times_seen="times", **fields).attrs["n_observed"] == rows


def test_chance_pairs_is_the_mean_over_every_shuffle_of_the_strata():
    """`chance_pairs`: pairs sharing cell and stratum, averaged over all orderings of the strata."""
    cells = np.array([0, 0, 0, 1, 1, 2])
    strata = np.array([0, 1, 1, 2, 2, 2])
    shared = [
        sum(
            cells[i] == cells[j] and s[i] == s[j]
            for i in range(len(s))
            for j in range(i + 1, len(s))
        )
        for s in map(np.array, itertools.permutations(strata))
    ]
    assert table_checks.chance_pairs(cells, strata) == pytest.approx(np.mean(shared), rel=1e-12)


# ------------------------------------------------------------------- 4. one typo in a numeric covariate


def _ages(seed: int = 11, size: int = 742) -> pd.DataFrame:
    """People with an age 20–29 whose rate rises with it (zero-truncated Poisson), the seen ones."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 30, 4 * size)
    k = rng.poisson(np.exp(-0.9 + 0.06 * (age - 25)))
    seen = np.flatnonzero(k > 0)[:size]
    return pd.DataFrame({"times": k[seen], "age": age[seen]})


def _write(tmp_path: Path, table: pd.DataFrame, name: str = "people.csv") -> Path:
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def test_one_text_value_in_a_numeric_covariate_is_refused_naming_row_and_value(tmp_path):
    """``2O`` among 742 ages made the column categorical (11 levels, N-hat 2,884.8 for 2,791.3)."""
    clean = _ages()
    typo = clean.astype({"age": object})
    typo.loc[7, "age"] = "2O"
    path = _write(tmp_path, typo)
    assert read_table(path)["age"].dtype.kind not in "if"  # the reader keeps it as text
    with pytest.raises(
        EstimInputError,
        match=r"column 'age', row 8: '2O' is not a number, though 741 of 742 values are",
    ):
        table_data(path, "ztpoisson", layout="individuals", times_seen="times", covariates=["age"])
    with pytest.raises(EstimInputError, match=r"row 8: '2O'"):
        table_data(path, "ztpoisson", layout="individuals", times_seen="times", formula="age")
    # declared categorical, it is categories (the typo a level of its own), as the user asked
    data = table_data(
        path,
        "ztpoisson",
        layout="individuals",
        times_seen="times",
        covariates=["age"],
        categorical=["age"],
    )
    assert len(design(data).terms) == 10  # 11 levels
    data = table_data(path, "ztpoisson", layout="individuals", times_seen="times", formula="C(age)")
    assert len(design(data).terms) == 10
    # the clean column is continuous: one term
    clean_data = table_data(
        _write(tmp_path, clean, "clean.csv"),
        "ztpoisson",
        layout="individuals",
        times_seen="times",
        covariates=["age"],
    )
    assert list(design(clean_data).terms) == ["age"]


@pytest.mark.parametrize(
    ("numbers", "texts", "refused"),
    [(90, 10, True), (99, 1, True), (89, 11, False), (3, 7, False), (0, 10, False)],
)
def test_the_share_of_numbers_that_makes_a_text_column_a_typo(numbers, texts, refused):
    column = pd.Series([str(20 + i % 10) for i in range(numbers)] + ["x"] * texts)
    table = pd.DataFrame({"c": column})
    if refused:
        with pytest.raises(
            EstimInputError, match=rf"column 'c', row {numbers + 1}: 'x' is not a number"
        ):
            covariate_kinds(table, ["c"])
    else:
        assert covariate_kinds(table, ["c"]) == {"c": "categorical"}
    # declared categorical, never refused
    assert covariate_kinds(table, ["c"], ["c"]) == {"c": "categorical"}


def test_codes_with_a_leading_zero_stay_categories():
    table = pd.DataFrame({"region": ["01", "02", "2A", *[f"{i:02d}" for i in range(1, 40)]]})
    assert covariate_kinds(table, ["region"]) == {"region": "categorical"}


def test_too_many_levels_names_example_values():
    table = pd.DataFrame({"town": [f"town{i}" for i in range(MAX_LEVELS + 5)]})
    with pytest.raises(
        EstimInputError, match=r"covariate 'town' has 55 levels.*such as 'town0', 'town1'"
    ):
        covariate_kinds(table, ["town"])


# ----------------------------------------------------------------------------- 5. counts ≥ 2^63


def test_a_count_beyond_an_integer_is_refused_naming_the_value(tmp_path):
    """1e20 people on a row wrapped to a negative int64: "no people (every count is 0)" without covariates,
    and with them the group was silently dropped (chao gave 924.68, as without group a)."""
    huge = "100000000000000000000"
    (tmp_path / "plain.csv").write_text(f"times,n\n1,{huge}\n2,183\n3,37\n")
    with pytest.raises(EstimInputError, match=rf"column 'n', row 1: {huge} is too large"):
        table_data(
            tmp_path / "plain.csv", "ztpoisson", layout="frequencies", times_seen="times", count="n"
        )
    (tmp_path / "groups.csv").write_text(
        f"group,times,n\na,1,{huge}\na,2,21\nb,1,142\nb,2,45\nc,1,164\nc,2,44\n"
    )
    with pytest.raises(EstimInputError, match=rf"column 'n', row 1: {huge} is too large"):
        table_data(tmp_path / "groups.csv", "chao", **FREQUENCIES, covariates=["group"])


def test_an_int64_count_above_two_to_the_53_is_refused():
    table = pd.DataFrame({"times": [1, 2], "n": np.array([2**62, 5], dtype=np.int64)})
    with pytest.raises(
        EstimInputError, match=r"column 'n', row 1: 4611686018427387904 is too large"
    ):
        frequency_data(table, times_seen="times", count="n")
    many = pd.DataFrame({"times": [1, 2, 3], "n": [2**52, 2**52, 2**52]})
    with pytest.raises(EstimInputError, match=r"column 'n': the values add up to"):
        frequency_data(many, times_seen="times", count="n")
    fine = pd.DataFrame({"times": [1, 2], "n": [2**40, 5]})
    assert int(frequency_data(fine, times_seen="times", count="n")["frequency"].sum()) == 2**40 + 5


def test_a_space_typed_around_a_category_value_is_the_same_pattern():
    """ "male " is the level "male" in the design, so it is the same covariate pattern: the same frequencies
    and labels as the clean table (it had been a pattern of its own, labelled "gender=male ")."""
    clean = pd.DataFrame(
        {"k": [1, 1, 2, 1, 3, 1], "gender": ["male", "male", "female", "female", "male", "female"]}
    )
    typed = clean.assign(gender=["male ", "male", "female", " female", "male", "female\t"])
    a = frequency_data(clean, times_seen="k", covariates=["gender"])
    b = frequency_data(typed, times_seen="k", covariates=["gender"])
    assert list(b.pattern.values) == ["gender=female", "gender=male"]
    np.testing.assert_array_equal(b.frequency.values, a.frequency.values)
    np.testing.assert_array_equal(b.frequency.values, [[2, 1, 0], [2, 0, 1]])


def test_a_frequency_table_with_a_cell_on_two_rows_that_differ_by_a_space_says_so():
    table = pd.DataFrame({"k": [1, 1, 2], "sex": ["male", "male ", "female"], "n": [10, 5, 3]})
    with pytest.raises(EstimInputError) as e:
        frequency_data(table, times_seen="k", covariates=["sex"], count="n")
    assert "rows 1 and 2" in str(e.value)
    assert "'sex' is 'male' on one and 'male ' on the other" in str(e.value)
    assert "add the two rows' counts together" in str(e.value)
