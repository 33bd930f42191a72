"""Leave-one-out comparison of border fits on the repeat-apprehension frequencies: is a person-level frailty
of the apprehension hazard (``frailty_sd``) supported, and what does it do to the estimates?

The repeat counts f_k of the surveyed sections are where a frailty shows: without it the number of times an
apprehended journey is apprehended is a zero-truncated geometric in pr; with it, a mixture of geometrics over
the frailty, whose tail is heavier. The pointwise log-likelihood of a fit is computed here from its posterior
draws, one point per surveyed section × month (the f_k of its categories together), and compared by PSIS-LOO
(Vehtari, Gelman and Gabry 2017) with ArviZ. The stacking weights (Yao et al. 2018) that give the averaged
estimate are computed here in log space (`stacking_weights`): a point's log density sums the f_k of a
section-month and falls below −745 in busy months, where its exponential is 0 in floating point; ArviZ's
optimiser, which exponentiates it, then returns its starting weights (1/K each). The
draws are those of the averaged posterior (`estim.families.border.repeated_trials`). The whole-border estimate
beside them is a rate per year over the data's months (`per_year`), as `estim.families.border.report` gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families import kernels as shared_kernels
from estim.families.border.generated import frailty_draws
from estim.families.border.rates import detection, posterior_parameters, rates, retry_draws
from estim.families.border.repeated_trials import with_repeated_trials
from estim.families.border.report_years import months_by_year


def frequency_log_likelihood(
    data: xr.Dataset, posterior: xr.Dataset, *, chunk: int = 100
) -> xr.DataArray:
    """log P(f_k of the month's categories | their apprehended journeys) per posterior draw and surveyed
    section × month: Σ_c Σ_k f_k log P(k | k ≥ 1), the model's repeat-count term (with the frailty mixture
    when the fit has a frailty). Dims (chain, draw, section, month), sections the surveyed ones."""
    posterior = with_repeated_trials(posterior)
    parameters, (n_chain, n_draw) = posterior_parameters(posterior)
    n = n_chain * n_draw
    retry = retry_draws(posterior)
    frailty = frailty_draws(posterior)
    surveyed = np.flatnonzero(data["surveyed"].values)
    frequency = data["frequency"].values[surveyed]  # (section, month, category, k)
    k = data["k"].values.astype(float)
    out = np.empty((n, len(surveyed), frequency.shape[1]))
    for start in range(0, n, chunk):
        pick = slice(start, min(start + chunk, n))
        _, log_p, log_1mp, _ = rates(data, {name: x[pick] for name, x in parameters.items()})
        log_p, log_1mp = log_p[:, surveyed], log_1mp[:, surveyed]
        log_r = np.minimum(np.log(retry[pick]), -1e-12)[:, None, None, None]
        sigma = None if frailty is None else frailty[pick][:, None, None, None]
        if sigma is not None and not np.any(sigma > 0):
            sigma = None
        det = detection(log_p, log_1mp, log_r, sigma, np)
        if det.nodes is None:
            log_q = (det.log_pr - det.log_1mpr)[..., None]
            log_pk = shared_kernels.log_truncated_pmf("geometric", k, log_q, np)
        else:
            log_w, log_p_q, log_pr_q, log_1mpr_q = det.nodes
            # (draw, section, month, category, node) → (…, k, node), summed over nodes
            terms = (
                log_w
                + log_p_q[..., None, :]
                + (k[:, None] - 1.0) * log_pr_q[..., None, :]
                + log_1mpr_q[..., None, :]
            )
            top = terms.max(axis=-1, keepdims=True)
            log_pk = (top + np.log(np.exp(terms - top).sum(-1, keepdims=True)))[..., 0]
            log_pk = log_pk - det.log_p[..., None]
        out[pick] = np.where(frequency[None] > 0, frequency[None] * log_pk, 0.0).sum(axis=(3, 4))
    return xr.DataArray(
        out.reshape(n_chain, n_draw, len(surveyed), -1),
        dims=("chain", "draw", "section", "month"),
        coords={
            "section": data["section"].values[surveyed],
            "month": data["month"].values,
        },
        name="frequency",
    )


def stacking_weights(
    elpd_pointwise: np.ndarray, *, tol: float = 1e-12, max_iter: int = 100_000
) -> np.ndarray:
    """Stacking weights of K models (Yao et al. 2018, eq. 4) from their pointwise LOO log predictive densities
    ``elpd_pointwise`` (points × models): the w on the simplex that maximises Σ_i log Σ_k w_k exp(elpd_ik).

    The objective is concave in w and is the log-likelihood of mixture weights with known components, so the
    EM fixed point w_k ← mean_i responsibility_ik climbs it monotonically to the global maximum. The
    responsibilities are computed with a log-sum-exp, so densities of e^-1000 are as good as of 1; subtracting
    max_k elpd_ik from point i changes the objective by a constant and not its maximiser."""
    elpd = np.asarray(elpd_pointwise, dtype=float)
    if elpd.ndim != 2 or elpd.shape[1] == 0 or not np.isfinite(elpd).all():
        raise ValueError("stacking needs a finite (points × models) array of pointwise elpd")
    elpd = elpd - elpd.max(axis=1, keepdims=True)
    n_models = elpd.shape[1]
    log_w = np.full(n_models, -np.log(n_models))
    for _ in range(max_iter):
        joint = elpd + log_w
        top = joint.max(axis=1, keepdims=True)
        log_mix = top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True))
        w_new = np.exp(joint - log_mix).mean(axis=0)
        with np.errstate(divide="ignore"):
            log_w_new = np.log(w_new)
        done = np.max(np.abs(w_new - np.exp(log_w))) < tol
        log_w = log_w_new
        if done:
            break
    w = np.exp(log_w)
    return w / w.sum()


def per_year(unobserved_border_year: xr.DataArray, months: np.ndarray) -> np.ndarray:
    """The whole border's unobserved crossings per year, one value per draw: their total over the fitted
    months × 12 / the number of months (`estim.families.border.report`) — with whole years the mean over the
    years (to the bit, for counts), with records that start or stop mid-year a rate per year, not the total
    of 11½ years divided by 12. `months`: the data's months; those in the draws' calendar years (their
    ``year`` coordinate) are counted, and draws without one are taken as of whole years."""
    total = unobserved_border_year.sum("year").values.ravel()
    n_months = 12 * unobserved_border_year.sizes["year"]
    if "year" in unobserved_border_year.coords:
        years = unobserved_border_year["year"].values
        covered = months_by_year(np.asarray(months).astype("datetime64[M]"), years)
        lacking = [y for y, m in covered.items() if not m]
        if lacking:
            raise EstimInputError(f"the fit's years {lacking} are not in the data's months")
        n_months = sum(len(m) for m in covered.values())
    return total * 12 / n_months


def compare_frequency_fits(
    fits: Mapping[str, xr.DataTree], data: xr.Dataset
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """PSIS-LOO of the repeat-count term of each fit (same data), best first (`az.compare`: elpd, its
    difference and standard error, Pareto-k diagnostics; its ``weight`` column replaced by `stacking_weights` of
    the pointwise LOO elpd); and per fit the whole-border unobserved crossings per year (median and 90 %
    interval of their rate over the data's months, `per_year`: with whole years the mean over the years) with
    the stacking-weighted mixture of the fits' draws."""
    import arviz as az

    trees: dict[str, xr.DataTree] = {}
    annual: dict[str, np.ndarray] = {}
    for name, tree in fits.items():
        posterior = tree["posterior"].to_dataset()
        ll = frequency_log_likelihood(data, posterior)
        trees[name] = xr.DataTree.from_dict(
            {"posterior": posterior[["unobserved_border_year"]], "log_likelihood": ll.to_dataset()}
        )
        annual[name] = per_year(posterior["unobserved_border_year"], data["month"].values)
    loos = {name: az.loo(tree, pointwise=True) for name, tree in trees.items()}
    with np.errstate(
        divide="ignore", invalid="ignore"
    ):  # its own stacking underflows; replaced below
        table = az.compare(loos, round_to="none")
    pointwise = np.column_stack([loos[name].elpd_i.values.ravel() for name in table.index])
    table["weight"] = stacking_weights(pointwise)
    estimates: dict[str, Any] = {
        name: dict(
            zip(
                ("lower", "median", "upper"),
                np.quantile(x, [0.05, 0.5, 0.95]).tolist(),
                strict=True,
            )
        )
        for name, x in annual.items()
    }
    rng = np.random.default_rng(0)
    weights = table["weight"].to_dict()
    n = min(len(x) for x in annual.values())
    w = np.array([max(float(weights[name]), 0.0) for name in annual])
    counts = rng.multinomial(n, w / w.sum())
    mixture = np.concatenate(
        [rng.choice(annual[name], c, replace=False) for name, c in zip(annual, counts, strict=True)]
    )
    estimates["stacked"] = dict(
        zip(
            ("lower", "median", "upper"),
            np.quantile(mixture, [0.05, 0.5, 0.95]).tolist(),
            strict=True,
        )
    )
    return table, estimates
