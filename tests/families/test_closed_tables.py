"""Closed-population data from a researcher's table: the three layouts, errors that name column and row, Rcapture's
published ML numbers on the multiple-list files read with their count columns, and f_k tables (exact
likelihood, the same M0 estimates as from the histories)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sampling import quick_nuts

from estim.benchmarks import load_benchmark, reference_estimates
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.base import DataFieldError
from estim.families.closed import (
    HISTORIES,
    build_closed,
    frequency_history_data,
    history_data,
    population,
    table_histories,
)

KOSOVO_LISTS = ["EXH", "ABA", "OSCE", "HRW"]
UK_LISTS = ["LA", "NG", "PFNCA", "GO", "GP"]
HARE_OCCASIONS = [f"c{i}" for i in range(1, 7)]
REFS = reference_estimates()


@pytest.fixture(scope="module")
def kosovo() -> xr.Dataset:
    return table_histories(
        load_benchmark("kosovo_4lists"), layout="patterns", occasions=KOSOVO_LISTS, count="Freq"
    )


@pytest.fixture(scope="module")
def uk() -> xr.Dataset:
    return table_histories(
        load_benchmark("uk_modern_slavery_5lists"),
        layout="patterns",
        occasions=UK_LISTS,
        count="count",
    )


@pytest.fixture(scope="module")
def hare() -> xr.Dataset:
    return table_histories(load_benchmark("hare"), layout="individuals", occasions=HARE_OCCASIONS)


@pytest.fixture(scope="module")
def hare_fk() -> xr.Dataset:
    """The hares as an f_k table over t = 6 occasions, read from a table in the frequencies layout."""
    k = load_benchmark("hare").sum(axis=1).value_counts().sort_index()
    table = pd.DataFrame({"times": k.index, "hares": k.to_numpy()})
    return table_histories(
        table, layout="frequencies", occasions=6, times_seen="times", count="hares"
    )


# --------------------------------------------------------------------------------------------------------------
# The bug: a pattern table read as one person per row


def test_kosovo_patterns_read_as_individuals_is_an_error_naming_the_count_column():
    # estim once returned N̂ = 16 with exit 0 here (15 rows read as 15 people)
    with pytest.raises(EstimInputError) as e:
        table_histories(
            load_benchmark("kosovo_4lists"), layout="individuals", occasions=KOSOVO_LISTS
        )
    message = str(e.value)
    assert "column 'Freq', row 1: 1131" in message
    assert "integers > 1" in message and "looks like a count column" in message
    assert 'layout = "patterns", count = "Freq"' in message


def test_individuals_with_repeated_histories_and_an_integer_covariate_are_fine():
    # hares with an integer column (say age in years) beside repeated histories: one row per animal is plausible
    table = load_benchmark("hare").assign(age=np.arange(68) % 4 + 1)
    data = table_histories(table, layout="individuals", occasions=[f"c{i}" for i in range(1, 7)])
    assert int(data["history_count"].sum()) == 68


def _kosovo_split_row() -> pd.DataFrame:
    """Kosovo's pattern table with its first row's 1,131 people on two rows (1,000 and 131)."""
    table = load_benchmark("kosovo_4lists")
    first = table.iloc[[0]].copy()
    table.loc[table.index[0], "Freq"] = 1000
    first["Freq"] = 131
    return pd.concat([table, first], ignore_index=True)


def test_a_pattern_on_two_rows_read_as_individuals_is_still_an_error():
    # one repeated history switched the check off: lists_stepwise gave N̂ = 17.3 (14,341.7 as patterns)
    table = _kosovo_split_row()
    with pytest.raises(EstimInputError) as e:
        table_histories(table, layout="individuals", occasions=KOSOVO_LISTS)
    assert "column 'Freq', row 1: 1000" in str(e.value)
    assert (
        'looks like a count column (people per capture pattern): declare layout = "patterns"'
        in str(e.value)
    )
    data = table_histories(
        table.groupby(KOSOVO_LISTS, as_index=False)["Freq"].sum(),
        layout="patterns",
        occasions=KOSOVO_LISTS,
        count="Freq",
    )
    assert int(data["history_count"].sum()) == 4400


def test_a_stratified_pattern_table_read_as_individuals_is_an_error():
    # the same 7 histories for two regions: each history on two rows (N̂ = 16 for 2,003 as individuals)
    histories = [h for h in itertools.product([0, 1], repeat=3) if any(h)]
    rows = [
        (region, *h, 50 + 10 * i) for region in ("north", "south") for i, h in enumerate(histories)
    ]
    table = pd.DataFrame(rows, columns=["region", "A", "B", "C", "n"])
    with pytest.raises(
        EstimInputError, match=r"column 'n', row 1: 50, .* \(0/1 history, 'region'\)"
    ):
        table_histories(table, layout="individuals", occasions=["A", "B", "C"])
    summed = table.groupby(["A", "B", "C"], as_index=False)["n"].sum()
    data = table_histories(summed, layout="patterns", occasions=["A", "B", "C"], count="n")
    assert int(data["history_count"].sum()) == int(table["n"].sum())


def test_individuals_with_an_id_an_age_and_a_region_are_fine():
    # an id (unique per row) is not a stratum, and people share histories within regions
    rng = np.random.default_rng(7)
    n = 300
    x = (rng.random((n, 3)) < 0.4).astype(int)
    x = x[x.sum(axis=1) > 0]
    table = pd.DataFrame(x, columns=["A", "B", "C"]).assign(
        id=[f"p{i}" for i in range(len(x))],
        age=rng.integers(18, 70, len(x)),
        region=rng.choice(["north", "south", "east"], len(x)),
    )
    data = table_histories(table, layout="individuals", occasions=["A", "B", "C"])
    plain = table_histories(table[["A", "B", "C"]], layout="individuals", occasions=["A", "B", "C"])
    xr.testing.assert_equal(data, plain)


def test_a_two_in_a_declared_occasion_does_not_suggest_it_is_the_count_column():
    table = pd.DataFrame({"c1": [1, 0, 1, 1, 0], "c2": [0, 1, 1, 2, 1], "c3": [1, 1, 0, 0, 1]})
    with pytest.raises(EstimInputError) as e:
        table_histories(table, layout="individuals", occasions=["c1", "c2", "c3"])
    assert "column 'c2', row 4: 2 is not 0 or 1" in str(e.value)
    assert "count column" not in str(e.value)
    # with the occasions not declared the refusal names a column that looks like counts as such
    with pytest.raises(DataFieldError, match="looks like a count column"):
        table_histories(table.assign(c2=[0, 1, 3, 2, 1]), layout="individuals")


def test_a_count_too_large_for_an_integer_is_named_not_wrapped():
    # 1e20 people wrapped to a negative int64 and was reported as -9223372036854775808
    table = pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "n": ["100000000000000000000", "5", "3"]})
    with pytest.raises(
        EstimInputError, match=r"column 'n', row 1: '100000000000000000000' is too large"
    ):
        table_histories(table, layout="patterns", occasions=["A", "B"], count="n")


def test_kosovo_patterns_total_the_freq_column(kosovo):
    assert int(kosovo["history_count"].sum()) == REFS["kosovo_4lists"]["observed"] == 4400
    # the same people one row each give the same data
    table = load_benchmark("kosovo_4lists")
    people = table.loc[table.index.repeat(table["Freq"]), KOSOVO_LISTS].reset_index(drop=True)
    xr.testing.assert_equal(
        table_histories(people, layout="individuals", occasions=KOSOVO_LISTS), kosovo
    )


# --------------------------------------------------------------------------------------------------------------
# Rcapture closedp.t(dfreq = TRUE) on the multiple-list files (references.toml)


@pytest.mark.parametrize("name", ["Mt", "M0", "Mth_chao", "Mb"])
def test_kosovo_reproduces_rcapture(kosovo, name):
    ref = REFS["kosovo_4lists"]["estimates"][name]
    res = FAMILIES[name].mle(kosovo)
    assert res.converged and not res.boundary
    # published to one decimal: agree to its rounding
    assert abs(res.n_hat - ref["n_hat"]) <= 0.05, res.n_hat
    if "se" in ref:
        assert abs(res.se - ref["se"]) <= 0.05, res.se


def test_uk_mt_reproduces_rcapture(uk):
    ref = REFS["uk_modern_slavery_5lists"]["estimates"]["Mt"]
    res = FAMILIES["Mt"].mle(uk)
    assert res.converged and not res.boundary
    assert abs(res.n_hat - ref["n_hat"]) <= 0.05 and abs(res.se - ref["se"]) <= 0.05


def test_uk_mb_is_a_failure_not_a_number(uk):
    # Rcapture prints N̂ = −3,763 and flags the fit; estim reports a boundary and gives no number
    assert REFS["uk_modern_slavery_5lists"]["estimates"]["Mb"]["boundary"] is True
    res = FAMILIES["Mb"].mle(uk)
    assert res.boundary
    assert math.isnan(res.n_hat) and math.isnan(res.se)
    assert "-3,763" in res.message and "p ≤ 0" in res.message


def test_mth_chao_drops_negative_eta_as_rcapture(kosovo):
    # the full Mth Chao fit has a negative η for (k − 3)⁺ on these data: Rcapture drops it (8,591.2, not 8,594.2)
    res = FAMILIES["Mth_chao"].mle(kosovo)
    assert res.extra["dropped_terms"] == ["eta4"]


# --------------------------------------------------------------------------------------------------------------
# f_k tables: exact for the models whose P(h) depends only on k


@pytest.mark.parametrize("name", ["M0", "Mh_chao", "Mh_poisson2"])
def test_fk_table_gives_the_histories_ml(hare, hare_fk, name):
    a, b = FAMILIES[name].mle(hare), FAMILIES[name].mle(hare_fk)
    assert b.converged and not b.boundary
    assert b.n_hat == pytest.approx(a.n_hat, rel=1e-9)
    assert b.se == pytest.approx(a.se, rel=1e-7)
    if name == "M0":
        assert b.n_hat == pytest.approx(75.4, abs=0.05) and b.se == pytest.approx(3.5, abs=0.05)


_P = 1 / (1 + np.exp(0.8))


def _brute_fk(name, t, point):
    """P(seen k times | seen), k = 1…t, summing P(h) over all 2^t histories."""
    p = 1 / (1 + np.exp(-point["logit_p"][0]))
    if name == "M0":
        classes = [(1.0, p)]
    else:
        gap, w = (
            np.exp(point["class_gap_log__"][0]),
            1 / (1 + np.exp(-point["mixture_weight_logodds__"][0])),
        )
        classes = [(1 - w, p), (w, 1 / (1 + np.exp(-(point["logit_p"][0] + gap))))]
    by_k = np.zeros(t + 1)
    for h in itertools.product((0, 1), repeat=t):
        k = sum(h)
        by_k[k] += sum(c * q**k * (1 - q) ** (t - k) for c, q in classes)
    return by_k[1:] / (1 - by_k[0])


@pytest.mark.parametrize("name", ["M0", "Mh_mixture"])
def test_fk_likelihood_and_replicates_are_exact(hare_fk, name):
    model = build_closed(name, hare_fk)
    rng = np.random.default_rng(3)
    point = {k: rng.normal(0, 0.7, size=np.shape(v)) for k, v in model.initial_point().items()}
    cells = model.compile_fn(
        model.logp(vars=[model["history_count"]], sum=False)[0],
        inputs=model.value_vars,
        on_unused_input="ignore",
        mode="FAST_COMPILE",
    )(point)
    f = hare_fk["history_count"].values
    expected = f * np.log(_brute_fk(name, 6, point))
    np.testing.assert_allclose(cells, expected, rtol=1e-10)
    # every k = 1…t is a cell: P(k | seen) sums to one over the cells, so the predictive replicates (a
    # multinomial over the cells given) are exact, not renormalised over the k that happen to be observed
    assert np.exp(cells / f).sum() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("name", ["Mt", "Mb", "Mth", "Mtbh", "Mth_poisson2", "Mth_chao"])
def test_fk_table_is_refused_by_models_of_which_occasions(hare_fk, name):
    with pytest.raises(EstimInputError, match=f"{name} needs capture histories"):
        FAMILIES[name].mle(hare_fk)
    if name in ("Mt", "Mb", "Mth", "Mtbh"):
        with pytest.raises(EstimInputError, match="needs capture histories"):
            FAMILIES[name].build(hare_fk)


def test_bayesian_m0_from_fk_table_matches_histories(hare, hare_fk):
    # The two likelihoods differ by the constant Σ f_k log C(6, k): the same posterior. NUTS under one seed
    # follows the same path until rounding (the gradients are summed differently) makes it drift, so the
    # posteriors agree within Monte Carlo error, not bit for bit.
    draws = {}
    for label, data in (("histories", hare), ("f_k", hare_fk)):
        idata = quick_nuts(FAMILIES["M0"].build(data), 11, draws=500, tune=300)
        draws[label] = (
            idata.posterior["logit_p"].values,
            population(data, idata.posterior, 5).values,
        )
    (la, na), (lb, nb) = draws["histories"], draws["f_k"]
    # MCSE of a posterior mean over 1,000 draws ≲ sd/√(1000/2); 4 MCSE of the difference
    assert abs(la.mean() - lb.mean()) < 4 * math.sqrt(2) * la.std() / math.sqrt(500)
    assert abs(np.median(na) - np.median(nb)) <= 1.5
    assert np.median(nb) == pytest.approx(75.4, rel=0.03)


# --------------------------------------------------------------------------------------------------------------
# Errors name the field, or the column and the 1-based row


def _patterns(**change):
    table = pd.DataFrame({"a": [1, 0, 1], "b": [0, 1, 1], "n": [5, 3, 2]})
    return table.assign(**change)


@pytest.mark.parametrize(
    ("table", "kwargs", "match"),
    [
        (_patterns(n=[5, 2.5, 2]), {}, r"column 'n', row 2: 2\.5 is not a non-negative integer"),
        (_patterns(n=[5, 3, -1]), {}, r"column 'n', row 3: -1 is not a non-negative integer"),
        (_patterns(b=[0, 2, 1]), {}, r"column 'b', row 2: 2 is not 0 or 1"),
        (_patterns(a=[1, 1, 1], b=[0, 0, 1]), {}, r"rows 1 and 2 have the same history"),
        (_patterns(a=[0, 0, 1], b=[0, 1, 1]), {}, r"row 1: never seen"),
        (_patterns(), {"count": "m"}, r"\[data\] count: no column\(s\) 'm'"),
    ],
)
def test_pattern_table_errors(table, kwargs, match):
    with pytest.raises(EstimInputError, match=match):
        table_histories(
            table, layout="patterns", **{"occasions": ["a", "b"], "count": "n", **kwargs}
        )


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([(1, 5), (2, 3), (1, 2)], r"column 'k', row 3: k = 1 again \(also row 1\)"),
        ([(1, 5), (7, 3)], r"column 'k', row 2: k = 7 captures, more than the 6 occasions"),
        ([(0, 4), (1, 5)], r"column 'n', row 1: 4 people seen 0 times"),
        ([(1, 5), (2, "x")], r"column 'n', row 2: 'x' is not a non-negative integer"),
    ],
)
def test_frequency_table_errors(rows, match):
    table = pd.DataFrame(rows, columns=["k", "n"])
    with pytest.raises(EstimInputError, match=match):
        table_histories(table, layout="frequencies", occasions=6, times_seen="k", count="n")


def test_frequency_table_zero_rows_and_missing_k_are_cells():
    table = pd.DataFrame({"k": [0, 1, 3], "n": [0, 7, 2]})  # k = 0 with nobody, k = 2 absent
    data = table_histories(table, layout="frequencies", occasions=3, times_seen="k", count="n")
    assert list(data["history"].values) == ["k=1", "k=2", "k=3"]
    np.testing.assert_array_equal(data["history_count"].values, [[7, 0, 2]])
    np.testing.assert_array_equal(data["multiplicity"].values, [3, 3, 1])
    xr.testing.assert_equal(data, frequency_history_data([7, 0, 2], 3))


FIELDS = {
    "layout": None,
    "occasions": None,
    "count": None,
    "times_seen": None,
    "covariates": (),
    "categorical": (),
    "formula": None,
    "section": None,
    "period": None,
    "period_kind": "year",
    "occasion": "quarter",
}


@pytest.mark.parametrize(
    ("source", "change", "field"),
    [
        ("file", {}, "layout"),
        ("benchmark", {"layout": "rows"}, "layout"),
        ("file", {"layout": "individuals", "count": "Freq"}, "count"),
        ("file", {"layout": "patterns"}, "count"),
        ("file", {"layout": "patterns", "count": "n", "times_seen": "k"}, "times_seen"),
        ("file", {"layout": "patterns", "count": "n", "occasions": 4}, "occasions"),
        ("file", {"layout": "frequencies", "times_seen": "k", "count": "n"}, "occasions"),
        ("file", {"layout": "frequencies", "count": "n", "occasions": 6}, "times_seen"),
        (
            "file",
            {
                "layout": "frequencies",
                "times_seen": "k",
                "count": "n",
                "occasions": 6,
                "covariates": ("sex",),
            },
            "covariates",
        ),
        ("file", {"layout": "individuals", "categorical": ("sex",)}, "categorical"),
        ("file", {"layout": "individuals", "covariates": ("a",), "formula": "a"}, "formula"),
        ("records", {"layout": "individuals", "period": "2010"}, "layout"),
        ("records", {"covariates": ("sex",), "period": "2010"}, "covariates"),
    ],
)
def test_field_rules_name_the_field(source, change, field):
    with pytest.raises(DataFieldError) as e:
        HISTORIES.check({**FIELDS, **change}, source)
    assert e.value.field == field


def test_field_rules_accept_each_layout():
    HISTORIES.check({**FIELDS, "layout": "individuals"}, "file")
    HISTORIES.check({**FIELDS, "layout": "patterns", "count": "n"}, "benchmark")
    HISTORIES.check(
        {**FIELDS, "layout": "frequencies", "times_seen": "k", "count": "n", "occasions": 6}, "file"
    )
    HISTORIES.check({**FIELDS, "period": "2010"}, "records")


def test_a_spec_reading_kosovo_as_individuals_fails_naming_the_column(tmp_path):
    from estim.run.data import load_data
    from estim.run.spec import read_spec

    spec = tmp_path / "kosovo.toml"
    spec.write_text(
        'name = "kosovo"\nfamily = "Mt"\nseed = 1\n[data]\nbenchmark = "kosovo_4lists"\n'
        'layout = "individuals"\noccasions = ["EXH", "ABA", "OSCE", "HRW"]\n',
        encoding="utf-8",
    )
    with pytest.raises(EstimInputError, match="column 'Freq', row 1"):
        load_data(read_spec(spec))


def test_history_data_still_reads_individual_rows(hare):
    # the hare specs' data (layout individuals) are the old histories exactly: their numbers stand
    xr.testing.assert_equal(hare, history_data(load_benchmark("hare")))


def test_optimiser_runs_to_the_maximum_not_to_its_own_stop(uk):
    # L-BFGS-B's default stop (relative change of the objective) ended here at a saddle: N̂ 14,966 with a
    # Hessian that is not positive definite, reported as converged. Run to the end from the priors' initial
    # point it reaches M0's boundary (the classes merge: log-likelihood −5,372.67); from a start with a small
    # class weight it reaches a higher maximum (−5,372.19), where about 1.4 people form a class of their own.
    # estim starts from both and keeps the higher.
    res = FAMILIES["Mh_mixture"].mle(uk)
    assert res.converged and res.loglik > -5372.2
    weight = 1 / (1 + np.exp(-res.parameters["mixture_weight_logodds__[0]"]))
    assert 0.5 < min(weight, 1 - weight) * res.n_hat < 3
    assert res.loglik > FAMILIES["Mh_logitnormal"].mle(uk).loglik + 0.4


def test_a_capture_column_cannot_also_be_a_covariate():
    # M0 with c1 as its own Huggins covariate gave N-hat 76.79 (75.43 without), exit 0
    table = load_benchmark("hare")
    occasions = [f"c{i}" for i in range(1, 7)]
    with pytest.raises(DataFieldError) as e:
        table_histories(table, layout="individuals", occasions=occasions, covariates=["c1"])
    assert (
        e.value.field == "covariates"
        and "'c1' is also listed among the occasions" in e.value.message
    )


# --------------------------------------------------------------------------------------------------------------
# A patterns table split by a column it does not declare: one table of counts per region, named as such


def _kosovo_by_region() -> pd.DataFrame:
    """Kosovo's 15 patterns once per region 1, 2, 3 (about half, a third and a fifth of each count)."""
    table = load_benchmark("kosovo_4lists")
    parts = [
        table.assign(Freq=np.floor(table["Freq"] * share + 0.5).astype(int) + region).assign(
            region=region
        )
        for region, share in ((1, 0.5), (2, 0.3), (3, 0.2))
    ]
    return pd.concat(parts, ignore_index=True)[["region", *KOSOVO_LISTS, "Freq"]]


def test_a_patterns_table_split_by_an_undeclared_region_names_it():
    # the message was "rows 1 and 16 have the same history: ... (sum their counts first)"
    with pytest.raises(EstimInputError) as e:
        table_histories(
            _kosovo_by_region(), layout="patterns", occasions=KOSOVO_LISTS, count="Freq"
        )
    message = str(e.value)
    assert message.startswith(
        "column 'region', rows 1 and 16: the same history, with 1 and 2 in 'region': the table holds one "
        "table of counts per value of 'region'; column 'region' is not declared"
    )
    assert 'covariates = [..., "region"], with categorical = ["region"]' in message
    assert "(M0, Mt and Mb only" in message
    assert "fit each value's rows as a table of its own" in message
    assert "add up the counts over it (one row per history)" in message
    assert "sum their counts first" not in message


def test_the_advised_fixes_for_a_region_fit():
    # declared as a categorical covariate, M0 has a capture probability per region: its N̂ is the sum of the
    # regions' own M0 fits (the reference), to rounding
    table = _kosovo_by_region()
    regions = [
        table_histories(
            table[table["region"] == r], layout="patterns", occasions=KOSOVO_LISTS, count="Freq"
        )
        for r in (1, 2, 3)
    ]
    reference = sum(FAMILIES["M0"].mle(d).n_hat for d in regions)
    declared = table_histories(
        table,
        layout="patterns",
        occasions=KOSOVO_LISTS,
        count="Freq",
        covariates=["region"],
        categorical=["region"],
    )
    res = FAMILIES["M0"].mle(declared)
    assert res.converged and not res.boundary
    assert res.n_hat == pytest.approx(reference, rel=1e-9)
    assert int(declared["history_count"].sum()) == int(table["Freq"].sum())
    # Mt and Mb fit by it too (their occasion and behaviour effects shared across regions)
    for name in ("Mt", "Mb"):
        assert FAMILIES[name].mle(declared).converged
    # or the counts added up over the regions: one row per history, everyone kept
    summed = table.groupby(KOSOVO_LISTS, as_index=False)["Freq"].sum()
    pooled = table_histories(summed, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")
    assert int(pooled["history_count"].sum()) == int(table["Freq"].sum())


def test_two_undeclared_columns_that_split_the_patterns_are_named_together():
    table = _kosovo_by_region()
    table = pd.concat([table.assign(age=a) for a in ("young", "old")], ignore_index=True)
    with pytest.raises(EstimInputError) as e:
        table_histories(table, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")
    message = str(e.value)
    assert message.startswith(
        "columns 'region' and 'age', rows 1 and 16: the same history, with (1, 'young') and (2, 'young')"
    )
    assert "one table of counts per combination of 'region' and 'age'" in message
    assert 'covariates = [..., "region", "age"]' in message
    assert "fit each combination's rows as a table of its own" in message


def test_a_hidden_region_beside_a_declared_covariate_is_named():
    table = _kosovo_by_region().assign(sex=lambda t: np.arange(len(t)) % 2)
    with pytest.raises(EstimInputError) as e:
        table_histories(
            table, layout="patterns", occasions=KOSOVO_LISTS, count="Freq", covariates=["sex"]
        )
    message = str(e.value)
    assert message.startswith(
        "column 'region', rows 1 and 31: the same (covariate pattern, history), with 1 and 3 in 'region'"
    )
    assert "one row per (covariate pattern, history)" in message


@pytest.mark.parametrize("extra", [{}, {"note": "as received"}])
def test_a_history_repeated_with_no_column_telling_the_rows_apart_keeps_the_plain_message(extra):
    table = load_benchmark("kosovo_4lists")
    table = pd.concat([table, table.iloc[[0]]], ignore_index=True).assign(**extra)
    with pytest.raises(
        EstimInputError,
        match=r"^rows 1 and 16 have the same history: a patterns table has one row per distinct one "
        r"\(sum their counts first\)$",
    ):
        table_histories(table, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")


def test_a_spec_reading_a_table_split_by_region_fails_naming_the_column(tmp_path):
    from estim.run.data import load_data
    from estim.run.spec import read_spec

    _kosovo_by_region().to_csv(tmp_path / "by_region.csv", index=False)
    spec = tmp_path / "by_region.toml"
    spec.write_text(
        'name = "by_region"\nfamily = "M0"\nseed = 1\n[data]\nfile = "by_region.csv"\n'
        'layout = "patterns"\ncount = "Freq"\noccasions = ["EXH", "ABA", "OSCE", "HRW"]\n',
        encoding="utf-8",
    )
    with pytest.raises(EstimInputError, match="column 'region', rows 1 and 16: the same history"):
        load_data(read_spec(spec))
    spec.write_text(
        spec.read_text(encoding="utf-8") + 'covariates = ["region"]\ncategorical = ["region"]\n',
        encoding="utf-8",
    )
    data = load_data(read_spec(spec))
    assert int(data["history_count"].sum()) == int(_kosovo_by_region()["Freq"].sum())


# --------------------------------------------------------------------------------------------------------------
# The occasions are declared, never every other column: a 0/1 column that is not one was one more occasion


def _with_urban(name: str) -> pd.DataFrame:
    """A benchmark table with a 0/1 column that is not an occasion (urban, alternating over the rows)."""
    table = load_benchmark(name)
    return table.assign(urban=np.arange(len(table)) % 2)


def test_an_undeclared_0_1_column_is_refused_not_read_as_an_occasion():
    table = _with_urban("hare")
    # what estim did: urban read as a 7th occasion, a confident wrong N̂ (71.5 for 75.4) with exit 0
    wrong = FAMILIES["M0"].mle(history_data(table)).n_hat
    assert abs(wrong - REFS["hare"]["estimates"]["M0"]["n_hat"]) > 1
    with pytest.raises(DataFieldError) as e:
        table_histories(table, layout="individuals")
    assert e.value.field == "occasions"
    message = e.value.message
    assert message.startswith('missing: layout "individuals" reads each history from the declared')
    assert "would be read as one more occasion and change N̂" in message
    assert "undeclared 0/1 columns, in file order: c1, c2, c3, c4, c5, c6, urban." in message
    assert 'Declare occasions = ["c1", "c2", "c3", "c4", "c5", "c6", "urban"]' in message
    assert "keeping only the occasion columns, in time order" in message
    assert "covariates = [...] for any individual covariates among the rest" in message
    # declared, urban is left out (or a Huggins covariate): the hares' N̂ as Rcapture gives it
    for covariates in ((), ("urban",)):
        data = table_histories(
            table, layout="individuals", occasions=HARE_OCCASIONS, covariates=covariates
        )
        res = FAMILIES["M0"].mle(data)
        assert res.converged and not res.boundary
        if not covariates:
            assert res.n_hat == pytest.approx(REFS["hare"]["estimates"]["M0"]["n_hat"], abs=0.05)
            assert res.n_hat == pytest.approx(
                FAMILIES["M0"].mle(history_data(load_benchmark("hare"))).n_hat
            )


def test_an_undeclared_0_1_column_in_a_patterns_table_is_refused():
    table = _with_urban("kosovo_4lists").assign(region=lambda t: np.arange(len(t)) % 3 + 1)
    with pytest.raises(DataFieldError) as e:
        table_histories(table, layout="patterns", count="Freq")
    message = e.value.message
    assert e.value.field == "occasions"
    # the count is declared, so not a candidate; a region coded 1, 2, 3 is named as no occasion
    assert (
        "in file order: EXH, ABA, OSCE, HRW, urban (not 0/1, so not occasions: region)." in message
    )
    assert 'Declare occasions = ["EXH", "ABA", "OSCE", "HRW", "urban"]' in message
    assert "count column" not in message
    data = table_histories(table, layout="patterns", occasions=KOSOVO_LISTS, count="Freq")
    res = FAMILIES["M0"].mle(data)
    assert res.n_hat == pytest.approx(REFS["kosovo_4lists"]["estimates"]["M0"]["n_hat"], abs=0.05)


def test_a_spec_without_occasions_names_the_file_and_fits_once_they_are_declared(tmp_path):
    from estim.run.data import load_data
    from estim.run.spec import read_spec

    _with_urban("hare").to_csv(tmp_path / "hares.csv", index=False)
    spec = tmp_path / "hares.toml"
    spec.write_text(
        'name = "hares"\nfamily = "M0"\nseed = 1\n[data]\nfile = "hares.csv"\nlayout = "individuals"\n',
        encoding="utf-8",
    )
    with pytest.raises(EstimInputError) as e:
        load_data(read_spec(spec))
    message = str(e.value)
    assert "hares.csv: [data] occasions: missing" in message
    assert 'Declare occasions = ["c1", "c2", "c3", "c4", "c5", "c6", "urban"]' in message
    spec.write_text(
        spec.read_text(encoding="utf-8") + 'occasions = ["c1", "c2", "c3", "c4", "c5", "c6"]\n',
        encoding="utf-8",
    )
    res = FAMILIES["M0"].mle(load_data(read_spec(spec)))
    assert res.n_hat == pytest.approx(REFS["hare"]["estimates"]["M0"]["n_hat"], abs=0.05)
