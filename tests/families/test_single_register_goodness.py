"""The single-register families' goodness of fit to f_k, made with every ML fit (and so every Bayesian fit).

Before, a zero-truncated model that does not describe its f_k gave N̂ and a narrow interval without a word
(on simulated border records, tests/families/test_families_on_border_records.py). The references here are
the true N of data drawn from the model itself and the chi-square computed by hand from the closed-form
Poisson fit on the Dutch data, never estim's output.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from estim.families.registry import load_all
from estim.families.single_register import frequency_data
from estim.families.single_register.goodness import ALPHA
from estim.report.summary import format_summary
from estim.run.mle import mle_dict

FAMILIES = load_all()
DUTCH = np.array([1645, 183, 37, 13, 1, 1])  # van der Heijden et al. (2003), f_1 … f_6


def _frequencies(f: np.ndarray):
    import pandas as pd

    table = pd.DataFrame({"k": np.arange(1, len(f) + 1), "n": f})
    return frequency_data(table, times_seen="k", count="n")


def _mle(family: str, data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FAMILIES[family].mle(data)
    said = [str(w.message) for w in caught if "does not describe" in str(w.message)]
    return result, said


@pytest.mark.parametrize("family", ["ztpoisson", "ztgeometric"])
def test_data_from_the_model_itself_pass_and_cover_n(family: str) -> None:
    """1,000 draws of N = 3,000 people from the family's own law (rate 1.2): the test passes, N̂ covers N."""
    rng = np.random.default_rng(5)
    n_true, lam = 3000, 1.2
    k = (
        rng.poisson(lam, n_true)
        if family == "ztpoisson"
        else rng.geometric(1 / (1 + lam), n_true) - 1
    )
    k = k[k > 0]
    f = np.bincount(k)[1:]
    result, said = _mle(family, _frequencies(f))
    fit = result.extra["goodness_of_fit"]
    assert fit["passed"] and fit["p_value"] >= ALPHA and not said
    assert result.ci95[0] <= n_true <= result.ci95[1]


def test_the_chi_square_on_the_dutch_data_is_the_hand_computed_one() -> None:
    """Intercept-only zero-truncated Poisson on the Dutch f_k: λ̂ solves mean = λ/(1 − e^{−λ}); cells k = 1,
    2 and k ≥ 3 (k ≥ 4 expects fewer than 5, so it joins k = 3); df = 3 − 1 − 1."""
    n = DUTCH.sum()
    mean = (DUTCH * np.arange(1, 7)).sum() / n
    lam = scipy.optimize.brentq(lambda x: x / -np.expm1(-x) - mean, 1e-6, 10)
    p = scipy.stats.poisson.pmf(np.arange(1, 4), lam) / -np.expm1(-lam)
    assert n * (1 - p.sum()) < 5 <= n * p[2]
    expected = n * np.r_[p[:2], 1 - p[:2].sum()]
    observed = np.r_[DUTCH[:2], DUTCH[2:].sum()]
    x2 = ((observed - expected) ** 2 / expected).sum()
    result, said = _mle("ztpoisson", _frequencies(DUTCH))
    fit = result.extra["goodness_of_fit"]
    assert [c["cell"] for c in fit["cells"]] == ["k = 1", "k = 2", "k ≥ 3"]
    assert fit["statistic"] == pytest.approx(x2, rel=1e-6)
    assert fit["df"] == 1
    assert fit["p_value"] == pytest.approx(scipy.stats.chi2.sf(x2, 1), rel=1e-5)
    # the Dutch ztpoisson N̂ (7,080) lies below Chao's lower bound 1,880 + 1645²/366 = 9,274
    assert not fit["passed"] and "9,274" in said[0]


def test_a_bayesian_summary_repeats_the_misfit_as_a_warning() -> None:
    """A saved fit's ML record (``mle_json``) carries the test; `estim summary` prints it as a WARNING line."""
    result, _ = _mle("ztpoisson", _frequencies(DUTCH))
    summary = {
        "model": "m",
        "family": "ztpoisson",
        "gate": {"passed": True, "checks": []},
        "interval": {"prob": 0.9},
        "parameters": {},
        "mle": json.loads(json.dumps(mle_dict(result), default=str)),
    }
    lines = format_summary(summary).splitlines()
    assert any(
        line.startswith("WARNING: ztpoisson: the fitted model does not describe") for line in lines
    )
