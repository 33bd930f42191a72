"""The closed families' intervals and the log-linear fits behind them, against published numbers and brute force.

* ci95 is Chao's (1987) log-transformed interval n + (N̂ − n)/C … n + (N̂ − n)·C, written out here from its
  definition and checked against singleRcapture's published ``lognormal`` intervals; before, N̂ ± 1.96 SE
  reached below the people seen (Mb below 0 on the data of `_flat_removal`).
* Mb has a profile-likelihood interval from its removal likelihood, checked against the multinomial likelihood
  of every history enumerated and maximised over (p, c) by an optimiser; before it had none.
* Poisson2 on 12 occasions (h(k) = 2^k − 1 up to 4,095) is fitted, and its profile likelihood equals the
  multinomial likelihood maximised directly; before: ``LinAlgError: SVD did not converge`` (IRLS computed
  0/0 where an expected count underflowed, which R's log link floors at machine epsilon); over 28 occasions
  it is the likelihood's maximum, and beyond 30 (2^30) it is refused.
* Counts beyond 2^53 are no estimate, not a number with an SE of 0.007.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit, gammaln, logsumexp

from estim.benchmarks import load_benchmark
from estim.errors import EstimInputError
from estim.families import FAMILIES
from estim.families.closed import frequency_history_data, history_data
from estim.families.loglinear import Terms, model_design, profile_loglik
from estim.families.loglinear import fit as engine
from estim.paths import BENCHMARKS_DIR

Z = stats.norm.ppf(0.975)
CUT = stats.chi2.ppf(0.95, 1) / 2


def _chao_interval(n_hat: float, se: float, n: float) -> tuple[float, float]:
    """Chao (1987) eq. 12, as Rcapture's closedpCI writes it for its normal model."""
    c = math.exp(Z * math.sqrt(math.log(1 + se**2 / (n_hat - n) ** 2)))
    return n + (n_hat - n) / c, n + (n_hat - n) * c


def _p_history(h: tuple[int, ...], p: float, c: float) -> float:
    """P(h) under Mb, walking the occasions: p before the first capture, c after it."""
    prob, caught = 1.0, False
    for x in h:
        q = c if caught else p
        prob *= q if x else 1 - q
        caught = caught or bool(x)
    return prob


def _mb_brute(seen: dict[tuple[int, ...], int], t: int, big_n: float) -> float:
    """Mb's multinomial log-likelihood of N over every history, maximised over (p, c) by Nelder–Mead."""
    n = sum(seen.values())

    def negll(v: np.ndarray) -> float:
        p, c = expit(v)
        value = gammaln(big_n + 1) - gammaln(big_n - n + 1)
        value += (big_n - n) * math.log(_p_history((0,) * t, p, c))
        return -(value + sum(m * math.log(_p_history(h, p, c)) for h, m in seen.items()))

    opts = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000}
    best = min(
        (
            optimize.minimize(negll, s, method="Nelder-Mead", options=opts)
            for s in ([0, 0], [-2, 0])
        ),
        key=lambda r: r.fun,
    )
    return -float(best.fun)


def _flat_removal() -> pd.DataFrame:
    """135 animals over 5 occasions whose first captures barely decline (30, 28, 27, 26, 24): Mb's N̂ is 590
    with SE 609, so N̂ − 1.96 SE is −603."""
    rows = []
    for j, first in enumerate([30, 28, 27, 26, 24]):
        once = [int(i == j) for i in range(5)]
        again = [int(i in (j, j + 1)) for i in range(5)]
        rows += [(once, first - 5), (again, 5) if j < 4 else (once, 5)]
    table = pd.DataFrame([{**{f"o{i + 1}": v for i, v in enumerate(h)}, "n": m} for h, m in rows])
    return table.groupby([f"o{i + 1}" for i in range(5)], as_index=False)["n"].sum()


# --------------------------------------------------------------------------------------------------------------
# Chao's log-transformed interval


def test_log_interval_is_singlercaptures_published_lognormal_interval():
    refs = json.loads((BENCHMARKS_DIR / "r_references.json").read_text(encoding="utf-8"))
    cases = [
        ref
        for ref in refs["netherlands_immigrants"]["singleRcapture"].values()
        if "ci95_lognormal" in ref
    ]
    assert len(cases) >= 4
    for ref in cases:
        got = engine.log_interval(ref["point_estimate"], ref["stderr"], ref["observed"])
        assert got == pytest.approx(tuple(ref["ci95_lognormal"]), rel=1e-9)


def test_log_interval_edges():
    assert engine.log_interval(68.0, 0.0, 68.0) == (68.0, 68.0)
    assert engine.log_interval(68.0, 2.0, 68.0) == (68.0, math.inf)
    assert all(math.isnan(v) for v in engine.log_interval(math.nan, 1.0, 68.0))


HARE_FAMILIES = [
    "M0",
    "Mt",
    "Mb",
    "Mh_chao",
    "Mh_poisson2",
    "Mh_darroch",
    "Mh_gamma35",
    "Mth_chao",
    "Mth_poisson2",
    "Mth_darroch",
    "Mth_gamma35",
    "Mh_logitnormal",
    "Mh_mixture",
]


@pytest.mark.parametrize("name", HARE_FAMILIES)
def test_every_closed_familys_interval_is_chaos_on_the_hare(name):
    hare = history_data(load_benchmark("hare"))
    res = FAMILIES[name].mle(hare)
    assert res.converged and not res.boundary
    assert res.ci95 == pytest.approx(_chao_interval(res.n_hat, res.se, 68), rel=1e-12)
    assert res.ci95[0] > 68
    assert "Chao 1987" in res.extra["ci_kind"]


def test_mb_far_from_a_number_is_never_below_the_animals_seen():
    data = history_data(_flat_removal(), count="n")
    n = 135
    res = FAMILIES["Mb"].mle(data)
    assert res.converged and not res.boundary
    assert res.n_hat - Z * res.se < 0  # what the Wald interval gave: below zero
    assert res.ci95 == pytest.approx(_chao_interval(res.n_hat, res.se, n), rel=1e-12)
    assert res.ci95[0] > n
    # the removal likelihood does not bound N above: at 1,000 × N̂ it is within 1.92 of its maximum
    seen = {tuple(int(v) for v in r[:5]): int(r[5]) for r in _flat_removal().to_numpy()}
    lower, upper = res.profile["ci95"]
    assert upper == math.inf
    top = _mb_brute(seen, 5, res.profile["n_hat"])
    assert _mb_brute(seen, 5, 1000 * res.n_hat) > top - CUT
    assert _mb_brute(seen, 5, lower) == pytest.approx(top - CUT, abs=1e-5)


# --------------------------------------------------------------------------------------------------------------
# Mb's profile likelihood


def test_mb_profile_is_the_multinomial_likelihood_of_every_history():
    table = load_benchmark("hare")
    hare = history_data(table)
    seen = {tuple(int(v) for v in h): int(m) for h, m in table.value_counts().items()}
    design = model_design(Terms("Mb"), hare)
    base, base_brute = profile_loglik(design, 0, 80.0)[0], _mb_brute(seen, 6, 80.0)
    for big_n in (68.0, 70.0, 79.0, 95.0, 150.0):
        got = profile_loglik(design, 0, big_n)[0] - base
        assert got == pytest.approx(_mb_brute(seen, 6, big_n) - base_brute, abs=1e-7)
    res = FAMILIES["Mb"].mle(hare)
    top = _mb_brute(seen, 6, res.profile["n_hat"])
    for step in (-0.05, 0.05):  # the maximum
        assert _mb_brute(seen, 6, res.profile["n_hat"] + step) < top
    for end in res.profile["ci95"]:
        assert _mb_brute(seen, 6, end) == pytest.approx(top - CUT, abs=1e-5)
    assert "Otis" in res.profile["method"]


# --------------------------------------------------------------------------------------------------------------
# Poisson2 on 12 occasions

# f_k of one simulated section-year (estim simulate --seed 101 --years 1, Omsk, months): k ≤ 4 of 12
BORDER_FK = [621, 151, 41, 10] + [0] * 8


def _poisson2_multinomial(f_k: list[int], t: int, big_n: float) -> float:
    """The multinomial log-likelihood of N for the f_k cells of Mh Poisson2, maximised over (β, τ):
    P(k) ∝ C(t, k) exp(β k + τ (2^k − 1)), P(0) ∝ 1, up to the constant −Σ log f_k!."""
    y = np.asarray(f_k, float)
    k = np.arange(1, t + 1, dtype=float)
    log_comb = gammaln(t + 1) - gammaln(k + 1) - gammaln(t - k + 1)
    x = np.column_stack([k, 2.0**k - 1])
    n = y.sum()

    def negll(b: np.ndarray) -> float:
        eta = log_comb + x @ b
        lse = np.logaddexp(0.0, logsumexp(eta))
        return -(y @ eta - big_n * lse)

    res = optimize.minimize(
        negll,
        [-3.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-12, "maxiter": 20000},
    )
    return -float(res.fun) + gammaln(big_n + 1) - gammaln(big_n - n + 1)


def test_poisson2_on_twelve_occasions_is_fitted_and_its_profile_is_the_likelihoods():
    data = frequency_history_data(BORDER_FK, 12)
    res = FAMILIES["Mh_poisson2"].mle(data)
    assert res.converged and not res.boundary
    # N̂ = n + exp(β0) maximises the Poisson likelihood of f_k: maximised here by Nelder–Mead
    y = np.asarray(BORDER_FK, float)
    k = np.arange(1, 13, dtype=float)
    offset = gammaln(13) - gammaln(k + 1) - gammaln(13 - k)
    x = np.column_stack([np.ones(12), k, 2.0**k - 1])

    def negll(b: np.ndarray) -> float:
        mu = np.exp(offset + x @ b)
        return -(y @ np.log(mu) - mu.sum())

    ref = optimize.minimize(
        negll,
        [6.0, -3.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-12, "maxiter": 20000},
    )
    assert res.n_hat == pytest.approx(823 + math.exp(ref.x[0]), rel=1e-5)
    design = model_design(Terms("M0", "poisson"), data)
    base, base_ref = (
        profile_loglik(design, 0, 1748.0)[0],
        _poisson2_multinomial(BORDER_FK, 12, 1748.0),
    )
    for big_n in (823.0, 824.0, 1000.0, 1650.0, 2500.0):  # at N = n the unseen cell's count is 0
        got = profile_loglik(design, 0, big_n)[0] - base
        assert got == pytest.approx(
            _poisson2_multinomial(BORDER_FK, 12, big_n) - base_ref, abs=1e-6
        )
    lower, upper = res.profile["ci95"]
    assert 823 < lower < res.profile["n_hat"] < upper < math.inf


def _poisson2_poisson_maximum(f_k: dict[int, int], t: int) -> tuple[float, float]:
    """N̂ = n + exp(β0) of Mh Poisson2 on an f_k table and its log-likelihood, maximised by Nelder–Mead with
    τ = ±exp(ρ) (the scale at which it acts spans 2^t) and τ = 0, from several starts."""
    y = np.zeros(t)
    y[: len(f_k)] = list(f_k.values())
    k = np.arange(1, t + 1, dtype=float)
    offset = gammaln(t + 1) - gammaln(k + 1) - gammaln(t - k + 1)
    opts = {"xatol": 1e-12, "fatol": 1e-13, "maxiter": 40000}

    def loglik(b0: float, b1: float, tau: float) -> float:
        eta = offset + b0 + b1 * k + tau * (2.0**k - 1)
        return float(y @ eta - np.exp(np.minimum(eta, 700)).sum())

    best = (-np.inf, 0.0)
    for sign in (-1.0, 1.0):
        for start in ([4.0, -3.0, -3.0], [4.0, -3.0, -10.0], [5.0, -4.0, -5.0], [4.0, -2.0, -20.0]):
            res = optimize.minimize(
                lambda v, s=sign: -loglik(v[0], v[1], s * math.exp(v[2])),
                start,
                method="Nelder-Mead",
                options=opts,
            )
            best = max(best, (-float(res.fun), float(res.x[0])))
    res = optimize.minimize(
        lambda v: -loglik(v[0], v[1], 0.0), [4.0, -3.0], method="Nelder-Mead", options=opts
    )
    best = max(best, (-float(res.fun), float(res.x[0])))
    return y.sum() + math.exp(best[1]), best[0]


@pytest.mark.parametrize("t", [20, 28])
def test_poisson2_over_many_occasions_is_the_likelihoods_maximum(t):
    """Before: ``LinAlgError`` (exit 1). With μ floored but the normal equations not equilibrated, over 28
    occasions (2^28 − 1 = 2.7e8) τ was lost and IRLS stopped, as converged, at N̂ 62.7 with n = 62
    (interval 62.1 – 66.6), 117 below the maximum of the log-likelihood."""
    f_k = {1: 50, 2: 10, 3: 2}
    res = FAMILIES["Mh_poisson2"].mle(frequency_history_data(f_k, t))
    assert res.converged and not res.boundary
    n_hat, _ = _poisson2_poisson_maximum(f_k, t)
    assert res.n_hat == pytest.approx(n_hat, rel=1e-5)
    assert res.ci95[0] > 62


def test_poisson2_beyond_thirty_occasions_is_refused():
    """Beyond 2^30 the maximum along τ is lost in rounding (over 36 occasions the fit stopped, as converged,
    0.005 below it, N̂ 176 for the maximum's 171; from 50 the existence programme failed): a clear refusal."""
    data = frequency_history_data({1: 50, 2: 10, 3: 2}, 31)
    with pytest.raises(EstimInputError, match=r"31 occasions.*2\^30.*Mh_darroch"):
        FAMILIES["Mh_poisson2"].mle(data)
    assert FAMILIES["Mh_darroch"].mle(data).converged  # the alternative it names is fitted


def test_a_profile_whose_fits_do_not_converge_is_not_reported(monkeypatch):
    """A fit along the profile that did not converge gives no profile interval (and says so), not the end
    of a curve it would have bent."""
    hare = history_data(load_benchmark("hare"))
    cells = len(model_design(Terms("Mt"), hare).cells)
    real = engine.fit_cells

    def unconverged_on_the_augmented_table(y, *args, **kwargs):
        beta, cov, conv, keep = real(y, *args, **kwargs)
        return beta, cov, conv and len(y) == cells, keep

    monkeypatch.setattr(engine, "fit_cells", unconverged_on_the_augmented_table)
    res = FAMILIES["Mt"].mle(hare)
    assert res.profile is None
    assert "did not converge" in res.extra["profile"]


def test_the_interval_of_strata_is_of_their_sum():
    table = load_benchmark("hare")
    doubled = pd.concat([table.assign(s="x"), table.assign(s="y")], ignore_index=True)
    res = FAMILIES["M0"].mle(history_data(doubled, stratum="s"))
    assert res.ci95 == pytest.approx(_chao_interval(res.n_hat, res.se, 136), rel=1e-12)


@pytest.mark.parametrize("name", ["M0", "Mt", "Mb", "Mh_chao"])
def test_counts_beyond_the_integers_of_a_double_are_no_estimate(name):
    """Two cells of 5e18 animals (a dataset built in Python, past the table's own checks): n is not held
    exactly beyond 2^53. Before: Mt gave N̂ = 1e19 with SE 0.007 and Mb with SE 128, exit 0; Mh_chao an
    internal error (LinAlgError)."""
    hare = history_data(load_benchmark("hare"))
    counts = hare["history_count"].values.astype(np.int64)
    counts[0, [1, 2]] = 5 * 10**18
    huge = hare.assign(history_count=(hare["history_count"].dims, counts))
    res = FAMILIES[name].mle(huge)
    assert not res.converged and math.isnan(res.n_hat) and all(math.isnan(v) for v in res.ci95)
    assert "failed numerically" in res.message and "2^53" in res.message


def test_the_reports_name_the_interval_they_give():
    """`estim fit --mle` and the summary said "Wald" of every ML interval; the closed families' is Chao's."""
    from estim.paths import REPO_ROOT
    from estim.report.summary import mle_report
    from estim.run.spec import read_spec

    text, problem = mle_report(read_spec(REPO_ROOT / "models" / "hare_Mb.toml"))
    assert not problem
    line = next(row for row in text.splitlines() if row.startswith("95% interval"))
    assert line.endswith("(log-transformed (Chao 1987))") and "Wald" not in text
