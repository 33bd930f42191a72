"""Rank statistics of simulation-based calibration (SBC), their uniformity test, the verdict per family, and
the ECDF-difference plots (the study itself: `estim.studies.sbc`).

**Ranks.** A replicate draws a truth θ̃ from the prior, data from the likelihood at θ̃, and L posterior draws
θ_1 … θ_L (roughly independent, `thin`); the rank of a quantity f is #{l: f(θ_l) < f(θ̃)}, with ties (a
discrete N whose posterior sits on the truth) broken uniformly at random (`rank_of`). If the posterior is
computed correctly, the rank is uniform on {0, …, L} (Talts et al. 2018, Theorem 1), for every f.

**PIT.** A rank r becomes u = (r + V)/(L + 1) with V ~ Uniform(0, 1) (`pit`): exactly Uniform(0, 1) when r is
uniform on {0, …, L}, so the continuous test below applies without a correction for the discreteness.

**The test** (Säilynoja, Bürkner & Vehtari 2022, the simultaneous ECDF band ArviZ draws). For n PIT values,
the ECDF is compared with the uniform CDF at z_j = j/n (j = 1 … n − 1): at each z_j the count of u ≤ z_j is
Binomial(n, z_j) under uniformity, and the statistic is the smallest two-sided tail probability over all z_j,
s = min_j min(P(B ≤ c_j), P(B ≥ c_j)). Its law under uniformity is simulated (`NULL_SIMULATIONS` samples, a
fixed seed), and the p-value is P(S ≤ s). The ECDF leaves ArviZ's simultaneous band of probability 1 − a
exactly when the p-value is below a (up to the simulation's Monte Carlo error), so the band drawn in the plots
is the test.

**The verdict** (`family_verdicts`). A family's m ranked quantities are tested at α/m each (Bonferroni, family-
wise level ``ALPHA`` = 0.05); the family passes when every quantity does. ArviZ's own default test, POT-C
(Beta-based pointwise tests combined by the Cauchy rule), is reported beside it as a second opinion and shown
on the plots; the verdict does not use it.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import xarray as xr

from estim.io import without_error

DRAWS_PER_RANK = 99  # L: posterior draws a rank is computed from (ranks 0 … L, 100 values)
ALPHA = 0.05  # family-wise level of the uniformity tests (Bonferroni over the family's quantities)
NULL_SIMULATIONS = (
    10_000  # samples of the band statistic under uniformity (p-values to ±0.002 near 0.05)
)
NULL_SEED = 214  # the null samples are fixed: the same ranks give the same p-value
RULE = (
    "a quantity passes when the p-value of the simultaneous ECDF band test of its PIT values (Säilynoja, "
    "Bürkner & Vehtari 2022: the ECDF stays inside the band of probability 1 − α/m) is at least α/m, m the "
    "number of quantities ranked in its family (Bonferroni); a family passes when every quantity does"
)


# --------------------------------------------------------------------------------------------------------------
# ranks


# --------------------------------------------------------------------------------------------------------------
# a replicate's rows, streams and diagnostics (shared by every family's design, the border model's too)

REFIT_FACTOR = 4  # draws × this when the bulk ESS of a ranked quantity is below L + 1

COLUMNS = [
    "family",
    "replicate",
    "seed",
    "quantity",
    "truth",
    "rank",
    "pit",
    "draws",
    "n_true",
    "n_observed",
    "attempts",
    "ess_bulk_min",
    "rhat_max",
    "divergences",
    "refit",
    "seconds",
    "error",
]


def replicate_seeds(family: str, replicate: int, seed: int) -> list[np.random.SeedSequence]:
    """The replicate's independent streams: simulation, NUTS, posterior draws of N and ranks."""
    entropy = [int(seed), zlib.crc32(family.encode()), int(replicate)]
    return np.random.SeedSequence(entropy).spawn(3)


def diagnostics(draws: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """The smallest bulk ESS and the largest R-hat over the ranked quantities but N (drawn given θ)."""
    import arviz_stats  # noqa: F401 - registers the ``.azstats`` accessor

    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items() if k != "N"})
    ess = ds.azstats.ess(method="bulk")
    rhat = ds.azstats.rhat()
    return float(min(ess[k] for k in ess)), float(max(rhat[k] for k in rhat))


def thin(samples: int, draws: int = DRAWS_PER_RANK) -> np.ndarray:
    """Indices of ``draws`` equally spaced draws among ``samples`` (chains concatenated): with a sampler whose
    effective sample size is at least ``draws``, these are roughly independent, as the ranks need."""
    if samples < draws:
        raise ValueError(f"{samples} posterior draws cannot be thinned to {draws}")
    return np.round(np.linspace(0, samples - 1, draws)).astype(np.int64)


def rank_of(draws: np.ndarray, truth: float, rng: np.random.Generator) -> int:
    """#{draws < truth} plus a uniform share of the ties: a draw equal to the truth (a discrete N) is counted
    below it with probability ½ each, so that the rank stays uniform on 0 … L when the posterior is right.
    Always one draw from ``rng``, ties or not, so the stream does not depend on the data."""
    draws = np.asarray(draws)
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


def pit(rank: int | np.ndarray, draws: int, rng: np.random.Generator) -> Any:
    """The randomised PIT (rank + V)/(draws + 1), V ~ Uniform(0, 1): Uniform(0, 1) when the rank is uniform."""
    return (np.asarray(rank, dtype=float) + rng.random(np.shape(rank))) / (draws + 1)


def quantity_rows(
    base: Mapping[str, Any],
    truths: Mapping[str, float],
    draws: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    **fit: Any,
) -> list[dict[str, Any]]:
    """One row per ranked quantity (in the order of ``truths``): its truth, rank among its L ``draws``
    (`rank_of`) and PIT (`pit`), two draws from ``rng`` a quantity in that order; ``base`` (family, replicate,
    seed, draws, …) and ``fit`` (ess_bulk_min, rhat_max, divergences, refit, seconds, …) repeated on each."""
    rows = []
    for name, value in truths.items():
        rank = rank_of(draws[name], value, rng)
        rows.append(
            {
                **base,
                "quantity": name,
                "truth": value,
                "rank": rank,
                "pit": float(pit(rank, base["draws"], rng)),
                **fit,
                "error": "",
            }
        )
    return rows


def fit_columns(idata: Any, ess: float, rhat: float, refit: bool, seconds: float) -> dict[str, Any]:
    """A replicate's fit as its rows record it: the smallest bulk ESS and largest R-hat of the ranked
    quantities, the divergent transitions of the fit ``idata``, whether it was refitted, its seconds."""
    divergences = int(idata["sample_stats"]["diverging"].sum())
    return dict(
        ess_bulk_min=ess, rhat_max=rhat, divergences=divergences, refit=bool(refit), seconds=seconds
    )


def error_row(base: Mapping[str, Any], seconds: float, error: Exception) -> dict[str, Any]:
    """The one row of a replicate whose simulation or fit raised: a result of the study, not its end."""
    first_line = f"{type(error).__name__}: {error}".splitlines()[0]
    return {**base, "quantity": "", "seconds": seconds, "error": first_line}


# --------------------------------------------------------------------------------------------------------------
# the simultaneous ECDF band as a test


def band_statistic(u: np.ndarray) -> float:
    """The smallest two-sided binomial tail probability of the ECDF of ``u`` at z_j = j/n, j = 1 … n − 1
    (Säilynoja et al. 2022; ArviZ's ``gamma`` is 1 − 2 × this): small when the ECDF strays from uniform."""
    u = np.sort(np.asarray(u, dtype=float))
    n = u.size
    if n < 2:
        return 1.0
    z = np.arange(1, n) / n
    counts = np.searchsorted(u, z, side="right")
    lower = scipy.special.bdtr(counts, n, z)
    # P(B ≥ c) = 1 − P(B ≤ c − 1); bdtr is NaN at −1, where the probability is 1
    upper = np.where(counts > 0, 1.0 - scipy.special.bdtr(np.maximum(counts - 1, 0), n, z), 1.0)
    return float(np.min(np.minimum(lower, upper)))


@functools.lru_cache(maxsize=32)
def _null_statistics(n: int, simulations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.arange(1, n) / n
    out = np.empty(simulations)
    for start in range(0, simulations, 500):  # blocks: memory n × 500
        u = np.sort(rng.random((min(500, simulations - start), n)), axis=1)
        counts = np.stack([np.searchsorted(row, z, side="right") for row in u])
        lower = scipy.special.bdtr(counts, n, z)
        upper = np.where(counts > 0, 1.0 - scipy.special.bdtr(np.maximum(counts - 1, 0), n, z), 1.0)
        out[start : start + len(u)] = np.min(np.minimum(lower, upper), axis=1)
    return np.sort(out)


def band_p_value(
    u: np.ndarray, simulations: int = NULL_SIMULATIONS, seed: int = NULL_SEED
) -> float:
    """P(S ≤ s_observed) under uniformity, S the `band_statistic` of as many uniform values (simulated)."""
    u = np.asarray(u, dtype=float)
    if u.size < 2:
        return float("nan")
    null = _null_statistics(int(u.size), int(simulations), int(seed))
    below = np.searchsorted(null, band_statistic(u), side="right")
    return float((1 + below) / (1 + simulations))


def pot_c_p_value(u: np.ndarray) -> float:
    """ArviZ's POT-C uniformity p-value (its default test in ``plot_ecdf_pit``), for comparison."""
    import arviz_stats  # noqa: F401 - registers the ``.azstats`` accessor

    da = xr.DataArray(np.asarray(u, dtype=float), dims=["replicate"])
    p_value, _, _ = da.azstats.uniformity_test(dim="replicate", method="pot_c")
    return float(p_value)


# --------------------------------------------------------------------------------------------------------------
# verdicts


def ranked_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with a rank (replicates whose fit ran)."""
    if rows.empty:
        return rows
    return rows[without_error(rows["error"]) & rows["rank"].notna()]


def family_verdicts(rows: pd.DataFrame, alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """Per family: replicates ranked, errors, the per-quantity p-values (band test, POT-C) and verdicts at
    α/m, and whether the family passes (every quantity does). Also the median seconds per fit."""
    out: dict[str, dict[str, Any]] = {}
    for family, frame in rows.groupby("family", sort=False):
        good = ranked_rows(frame)
        errors = frame[~without_error(frame["error"])]
        quantities = list(dict.fromkeys(good["quantity"]))
        level = alpha / max(len(quantities), 1)
        tests = {}
        for q in quantities:
            u = good.loc[good["quantity"] == q, "pit"].to_numpy(float)
            p_band = band_p_value(u)
            tests[q] = {
                "replicates": int(u.size),
                "p_band": p_band,
                "p_pot_c": pot_c_p_value(u),
                "passed": bool(p_band >= level),
            }
        per_fit = frame.drop_duplicates("replicate")
        out[str(family)] = {
            "replicates": int(good["replicate"].nunique()),
            "errors": int(errors["replicate"].nunique()),
            "level_per_quantity": level,
            "passed": bool(tests) and all(t["passed"] for t in tests.values()),
            "quantities": tests,
            "seconds_per_fit_median": float(per_fit["seconds"].median()),
            "refits": int(per_fit["refit"].map(lambda v: str(v) in ("True", "1")).sum()),
            "ess_bulk_min_median": float(per_fit["ess_bulk_min"].median()),
            "divergent_fits": int((per_fit["divergences"].fillna(0) > 0).sum()),
        }
    return out


def verdict_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: one table per family (quantity, replicates, p-values, verdict)."""
    lines = [
        "# Simulation-based calibration",
        "",
        f"Rule: {report['rule']}; α = {report.get('alpha', ALPHA)}, L = "
        f"{report.get('draws_per_rank', DRAWS_PER_RANK)} posterior draws per rank.",
        "",
    ]
    for family, v in report["families"].items():
        verdict = "PASS" if v["passed"] else "FAIL"
        lines += [
            f"## {family}: {verdict}",
            "",
            f"{v['replicates']} replicates ranked ({v['errors']} errors); N's SBC prior: "
            f"{v.get('population_prior', '')}; median {v['seconds_per_fit_median']:.2f} s per fit; "
            f"{v['refits']} refits for ESS; {v['divergent_fits']} fits with divergences. "
            f"Each quantity tested at {v['level_per_quantity']:.4f}.",
            "",
            "| quantity | replicates | p (band) | p (POT-C) | verdict |",
            "|---|---:|---:|---:|---|",
        ]
        for q, t in v["quantities"].items():
            lines.append(
                f"| {q} | {t['replicates']} | {t['p_band']:.3f} | {t['p_pot_c']:.3f} | "
                f"{'pass' if t['passed'] else 'FAIL'} |"
            )
        if v.get("plot"):
            lines += ["", f"Plot: `{v['plot']}`"]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# plots


def rank_plot(rows: pd.DataFrame, alpha: float = ALPHA, *, title: str | None = None) -> Any:
    """ArviZ's ECDF-difference (PIT) plot of one family's ranked quantities, with the simultaneous band of
    probability 1 − α/m that the verdict uses drawn behind each curve (ArviZ's own band computation). Returns
    the ``arviz_plots.PlotCollection`` (its figure: ``.viz["figure"]``); nothing is written here."""
    import arviz_plots
    from arviz_stats.ecdf_utils import ecdf_pit

    from estim.figure_style import DOUBLE_COLUMN, finish_figure

    good = ranked_rows(rows)
    quantities = list(dict.fromkeys(good["quantity"]))
    wide = good.pivot(index="replicate", columns="quantity", values="pit")[quantities]
    wide = wide.dropna()  # a replicate ranks all its quantities or none
    ds = xr.Dataset({q: ("replicate", wide[q].to_numpy(float)) for q in quantities})
    level = alpha / max(len(quantities), 1)
    columns = min(4, len(quantities))
    height = 1.9 * int(np.ceil(len(quantities) / columns))
    pc = arviz_plots.plot_ecdf_pit(
        xr.DataTree.from_dict({"prior_sbc": ds}),
        sample_dims=["replicate"],
        envelope_prob=1 - level,
        backend="matplotlib",
        col_wrap=columns,
        figure_kwargs={
            "figsize": (DOUBLE_COLUMN, height + (0.3 if title else 0.0)),
            "sharex": True,
            "sharey": True,
            "layout": "constrained",  # room for the suptitle
        },
    )
    # ArviZ 1.3's method="envelope" cannot draw (np.linspace on a DataArray), so the band is drawn from the
    # same function it would call
    x, _, lower, upper = ecdf_pit(
        np.linspace(0, 1, len(wide)), 1 - level, 2000, rng=np.random.default_rng(NULL_SEED)
    )
    for q in quantities:
        ax = pc.get_target(q, {})
        ax.fill_between(x, lower - x, upper - x, step="post", color="0.85", zorder=0, lw=0)
    figure = pc.viz["figure"].item()
    if title:
        figure.suptitle(title)
    with warnings.catch_warnings():  # constrained layout may warn about tight axes; harmless
        warnings.simplefilter("ignore", UserWarning)
        finish_figure(figure)
    return pc


def quantities_of(rows: pd.DataFrame) -> Sequence[str]:
    """The family's ranked quantities in the order its replicates wrote them."""
    return list(dict.fromkeys(ranked_rows(rows)["quantity"]))
