"""The closed-population families' own generative models (for recovery studies): moments worked out by
hand, and agreement with the fitted model at the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from pytensor.compile.mode import Mode

from estim.families import FAMILIES
from estim.families import closed as closed_families
from estim.families.closed import recovery as closed_recovery

FAST = Mode(linker="py", optimizer="fast_compile")
CLOSED = tuple(closed_recovery.TRUTH)


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


def test_generative_histories_have_the_model_moments():
    """Fraction never seen (and, for Mb, seen every time) against P(0…0) worked out by hand."""
    rng = np.random.default_rng(2)
    size = 400_000
    truth = closed_recovery.TRUTH
    p_t = np.array([truth["Mt"][f"p{t + 1}"] for t in range(6)])

    def unseen(family):
        x = closed_recovery.simulate_histories(family, rng, size, truth[family])
        return x, np.mean(x.sum(axis=1) == 0)

    _, f0 = unseen("M0")
    assert f0 == pytest.approx(0.7**6, rel=0.01)
    _, f0 = unseen("Mt")
    assert f0 == pytest.approx(np.prod(1 - p_t), rel=0.01)
    x, f0 = unseen("Mb")
    assert f0 == pytest.approx(0.75**6, rel=0.01)
    assert np.mean(x.sum(axis=1) == 6) == pytest.approx(0.25 * 0.4**5, rel=0.05)
    # 1 0 1 0 0 0: p · (1 − c) · c · (1 − c)³
    assert np.mean((x == [1, 0, 1, 0, 0, 0]).all(axis=1)) == pytest.approx(
        0.25 * 0.6 * 0.4 * 0.6**3, rel=0.03
    )
    _, f0 = unseen("Mh_mixture")
    assert f0 == pytest.approx(0.6 * 0.85**6 + 0.4 * 0.4**6, rel=0.01)
    _, f0 = unseen("Mh_logitnormal")
    p0 = scipy.integrate.quad(
        lambda e: (1 - _expit(_logit(0.3) + e)) ** 6 * scipy.stats.norm.pdf(e), -12, 12
    )[0]
    assert f0 == pytest.approx(p0, rel=0.01)


def _model_values(family, params):
    """The truth in the model's own parameterisation (closed._log_probs), on the transformed scale."""
    p_t = np.array([[params[f"p{t + 1}"] for t in range(6)]]) if "p1" in params else None
    if family == "M0":
        return {"logit_p": _logit(np.array([params["p"]]))}
    if family == "Mt":
        return {"logit_p": _logit(p_t)}
    if family == "Mb":
        return {
            "logit_p": _logit(np.array([params["p"]])),
            "behaviour": np.array([_logit(params["c"]) - _logit(params["p"])]),
        }
    if family == "Mh_logitnormal":
        return {
            "logit_p": _logit(np.array([params["p"]])),
            "sigma_h_log__": np.log([params["sigma_h"]]),
        }
    if family == "Mh_mixture":
        # class 0 is the less catchable one; mixture_weight is the weight of class 1
        return {
            "logit_p": _logit(np.array([params["p_low"]])),
            "class_gap_log__": np.log([_logit(params["p_high"]) - _logit(params["p_low"])]),
            "mixture_weight_logodds__": _logit(np.array([1 - params["weight_low"]])),
        }
    out = {"logit_p": _logit(p_t), "sigma_h_log__": np.log([params["sigma_h"]])}
    if family == "Mtbh":
        out["behaviour"] = np.array([params["behaviour"]])
    return out


@pytest.mark.parametrize("family", CLOSED)
def test_simulator_matches_the_fitted_model_at_the_truth(family):
    """The simulator and the model agree: P(0…0) and P(h | seen) of the model at the truth against 300,000
    simulated people (catches a sign or a centring of the truth that differs from the model's)."""
    params = closed_recovery.TRUTH[family]
    size = 300_000
    x = closed_recovery.simulate_histories(family, np.random.default_rng(3), size, params)
    seen = x[x.sum(axis=1) > 0]
    table = (
        pd.DataFrame(seen, columns=closed_recovery.OCCASION_COLUMNS)
        .assign(n=1)
        .groupby(closed_recovery.OCCASION_COLUMNS, as_index=False)["n"]
        .sum()
    )
    data = closed_recovery.padded_history_data(table)
    model = FAMILIES[family].build(data)
    obs = model[closed_families.OBSERVED]
    cell_logp = model.logp(vars=[obs], sum=False)[0]  # n_h · log P(h | seen)
    (p0,) = model.replace_rvs_by_values([model["p_unseen"]])
    fn = model.compile_fn([cell_logp, p0], inputs=model.value_vars, point_fn=False, mode=FAST)
    point = _model_values(family, params)
    assert set(point) == {v.name for v in model.value_vars}
    logp, p_unseen = fn(*[point[v.name] for v in model.value_vars])
    counts = data[closed_families.OBSERVED].values[0]
    log_cond = np.where(counts > 0, logp[0] / np.maximum(counts, 1), np.nan)
    assert np.nansum(np.exp(log_cond)) <= 1 + 1e-9
    f0 = 1 - len(seen) / size
    assert f0 == pytest.approx(float(p_unseen[0]), abs=4 * np.sqrt(f0 * (1 - f0) / size))
    # chi-square of the observed history counts against the model's P(h | seen), cells with ≥ 5 expected
    expected_all = np.zeros(len(counts))
    for i, c in enumerate(counts):
        if c > 0:
            expected_all[i] = len(seen) * np.exp(log_cond[i])
    keep = expected_all >= 5
    assert keep.sum() >= 40
    chi2 = np.sum((counts[keep] - expected_all[keep]) ** 2 / expected_all[keep])
    assert scipy.stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, chi2
