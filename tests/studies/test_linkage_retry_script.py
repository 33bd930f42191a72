"""scripts/linkage_retry.py: the linkage-only estimate of r recovers r from journeys drawn exactly from the
border model's linkage law (a reference with a known truth), and the script runs on a simulated border."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.studies.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("linkage_retry")


def _law_journeys(
    retry: float, rng: np.random.Generator, per_cell: int = 40
) -> dict[str, np.ndarray]:
    """Journeys from the model's linkage law: 2 sections × 24 months × 5 categories, p per cell in 0.3–0.6;
    a journey got through with s = r(1 − p)/(1 − pr); each list records that crossing with π_{l,c}; the
    person's other crossings are seen on exactly the sets {1}, {2}, {1, 2} at Poisson rates μ_c, the same
    before and after."""
    p = rng.uniform(0.3, 0.6, (2, 24, 5))
    coverage = np.array(
        [[0.3, 0.5, 0.2, 0.4, 0.35], [0.4, 0.25, 0.3, 0.45, 0.2]]
    )  # (list, category)
    rates = np.array([0.02, 0.03, 0.01])  # sets {1}, {2}, {1, 2}
    section, month, category = (a.ravel() for a in np.indices(p.shape))
    section, month, category = (np.repeat(a, per_cell) for a in (section, month, category))
    n = section.size
    cell_p = p[section, month, category]
    got = rng.random(n) < retry * (1 - cell_p) / (1 - cell_p * retry)

    def background() -> np.ndarray:
        pattern = np.zeros(n, np.int64)
        for bits, rate in zip((1, 2, 3), rates, strict=True):
            pattern |= np.where(rng.poisson(rate, n) > 0, bits, 0)
        return pattern

    crossing = np.zeros(n, np.int64)
    for bit in range(2):
        crossing |= (got & (rng.random(n) < coverage[bit, category])).astype(np.int64) << bit
    return {
        "person": np.arange(n),
        "section": section,
        "month": month,
        "category": category,
        "got": got,
        "after": crossing | background(),
        "before": background(),
        "p": p,
    }


@pytest.mark.parametrize("retry", [0.6, 0.9])
def test_r_is_recovered_from_the_models_own_linkage_law(script, retry):
    journeys = _law_journeys(retry, np.random.default_rng(int(retry * 10)))
    r_hat, best = script.linkage_fit(journeys)
    _, at_truth = script.linkage_fit(journeys, retry)
    assert abs(r_hat - retry) < 0.05
    assert 2 * (at_truth - best) < 9  # the truth inside the likelihood's 3-sd interval
    _, far = script.linkage_fit(journeys, 0.3)
    assert far - best > 10  # and a far r well outside it: the fit has power


def test_one_simulated_border(script, tmp_path):
    out = tmp_path / "rows.csv"
    script.main(["--retry", "0.6", "--seeds", "1", "--seed", "4000", "--out", str(out)])
    row = pd.read_csv(out).iloc[0]
    assert row["sim_seed"] == 4000 and row["journeys"] > 1000
    assert 0.3 < row["got_share"] < 0.7
    assert 0.3 < row["retry_ml"] < 1.0 and abs(row["z"]) < 4
    assert row["seen_after_not_got"] > 0 and row["seen_before_not_got"] > 0


def test_the_model_prior_leaves_r_where_the_linkage_puts_it_and_the_uniform_pulls_it_down(script):
    # journeys from the model's own law: the posterior median of r with the border model's coverage prior
    # (log-uniform) lies by the ML r̂; with revision 4's uniform one, each of the ten coverages adds a factor
    # 1/s, a log-slope of about −10 d log s/dr ≈ −23 at these p, so the median falls by ~23 var(r) ≈ 0.03
    # (few journeys a cell, so that the pull stands well clear of the draws' noise)
    from estim.priors import Prior

    journeys = _law_journeys(0.6, np.random.default_rng(6), per_cell=8)
    r_hat, _ = script.linkage_fit(journeys)
    model = script.linkage_posterior(journeys, seed=1, draws=500)
    uniform = script.linkage_posterior(
        journeys, Prior("Beta", alpha=1.0, beta=1.0), seed=1, draws=500
    )
    assert model["retry_lower"] < 0.6 < model["retry_upper"]
    sd = (model["retry_upper"] - model["retry_lower"]) / 3.29  # r's posterior sd, about 0.045
    assert (
        abs(model["retry_median"] - r_hat) < 0.4 * sd
    )  # measured: +0.22 sd (the posterior's skew)
    assert uniform["retry_median"] < model["retry_median"] - 0.5 * sd  # measured: −0.84 sd
