"""The verdict of a predictive check, on hand-made results whose answer is known."""

from __future__ import annotations

import pandas as pd

from estim.report.checks import format_checks, verdict


def _result(group, p_chi, p_ft, observed, lower, upper):
    table = pd.DataFrame(
        {"observed": observed, "median": observed, "lower": lower, "upper": upper},
        index=pd.Index(["1", "2", "3"], name="k"),
    )
    table["inside"] = (table["observed"] >= table["lower"]) & (table["observed"] <= table["upper"])
    return {
        "group": group,
        "prob": 0.9,
        "tables": {"f_k": table},
        "p_values": {"f_k": {"chi_square": p_chi, "freeman_tukey": p_ft}},
    }


def test_a_calibrated_posterior_check_passes():
    r = _result("posterior_predictive", 0.41, 0.38, [10, 5, 1], [8, 3, 0], [12, 7, 2])
    v = verdict(r, "f_k")
    assert v["passed"] and v["text"].startswith("ok") and "3 of 3 cells inside" in v["text"]


def test_extreme_p_values_fail_either_way_and_name_the_cells():
    low = verdict(
        _result("posterior_predictive", 0.01, 0.30, [15, 5, 1], [8, 3, 0], [12, 7, 2]), "f_k"
    )
    assert (
        not low["passed"] and "more extreme" in low["text"] and "outside: 1 (above)" in low["text"]
    )
    high = verdict(
        _result("posterior_predictive", 0.50, 0.97, [10, 5, 1], [8, 3, 0], [12, 7, 2]), "f_k"
    )
    assert not high["passed"] and "vary less" in high["text"]
    # and says what else a p near 1 means: a near-saturated model (hare Mh_chao's f_k check, six cells for
    # five free parameters, read 0.986)
    assert "nearly as many parameters as these cells" in high["text"]


def test_a_prior_check_fails_when_the_data_fall_outside_the_prior_predictive():
    ok = verdict(_result("prior_predictive", 0.0, 0.0, [10, 5, 1], [0, 0, 0], [99, 99, 99]), "f_k")
    assert ok["passed"]  # prior p-values are not a test of fit
    bad = verdict(_result("prior_predictive", 0.5, 0.5, [10, 5, 1], [0, 0, 2], [99, 99, 99]), "f_k")
    assert not bad["passed"] and "3 (below)" in bad["text"]


def test_counts_print_as_counts():
    r = _result("posterior_predictive", 0.41, 0.38, [1645, 5, 1], [1500, 3, 0], [1700, 7, 2])
    r["verdicts"] = {"f_k": verdict(r, "f_k")}
    text = format_checks({"posterior_predictive": r})
    assert "1,645" in text and "1,645.0" not in text and "1,500 – 1,700" in text


def test_one_cell_outside_of_many_is_what_a_calibrated_prior_gives():
    # a 90 % interval leaves ~10 % of the cells outside: the hares' 33 histories failed with 32 inside
    def result(n_outside: int) -> dict:
        n = 33
        observed = [5] * n
        upper = [99] * (n - n_outside) + [2] * n_outside
        table = pd.DataFrame(
            {"observed": observed, "median": observed, "lower": [0] * n, "upper": upper},
            index=pd.Index([str(i) for i in range(n)], name="history"),
        )
        table["inside"] = table["observed"] <= table["upper"]
        return {"group": "prior_predictive", "prob": 0.9, "tables": {"h": table}, "p_values": {}}

    assert verdict(result(1), "h")["passed"]
    assert verdict(result(6), "h")["passed"]  # 27 of 33 = 0.82 ≥ 0.8
    bad = verdict(result(7), "h")  # 26 of 33 = 0.79
    assert not bad["passed"] and "26 of 33 cells inside" in bad["text"]


def test_per_person_counts_label_their_last_row_k_or_more():
    # Per-person counts are tabulated up to the most times anyone was seen (3); a replicate person seen 5
    # times falls in that row, so it is "3+", not "seen exactly 3 times".
    import numpy as np
    import xarray as xr

    from estim.report.checks import predictive_summary

    observed = np.array([1, 1, 2, 3])
    draws = np.tile(np.array([1, 1, 2, 5]), (1, 4, 1))
    tree = xr.DataTree.from_dict(
        {
            "/observed_data": xr.Dataset({"y": ("individual", observed)}),
            "/posterior_predictive": xr.Dataset({"y": (("chain", "draw", "individual"), draws)}),
        }
    )
    tree.attrs.update(observed_name="y", data_kind="frequency")
    table = predictive_summary(tree)["tables"]["f_k"]
    assert list(table.index) == ["1", "2", "3+"]
    assert list(table["median"]) == [2, 1, 1]
    assert "3+" in format_checks({"posterior_predictive": predictive_summary(tree)})
