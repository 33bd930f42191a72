"""Leave-one-out comparison of border fits on the repeat-apprehension frequencies: is a person-level frailty
of the apprehension hazard (``frailty_sd``) supported, and what does it do to the estimates?

The repeat counts f_k of the surveyed sections are where a frailty shows: without it the number of times an
apprehended journey is apprehended is a zero-truncated geometric in pr; with it, a mixture of geometrics over
the frailty, whose tail is heavier. The pointwise log-likelihood of a fit is computed here from its posterior
draws, one point per surveyed section × month (the f_k of its categories together), and compared by PSIS-LOO
(Vehtari, Gelman and Gabry 2017) with ArviZ, whose stacking weights (Yao et al. 2018) give the averaged
estimate. The draws are those of the averaged posterior (`estim.families.border.repeated_trials`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.families import kernels as shared_kernels
from estim.families.border.generated import frailty_draws
from estim.families.border.rates import detection, posterior_parameters, rates, retry_draws
from estim.families.border.repeated_trials import with_repeated_trials


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


def compare_frequency_fits(
    fits: Mapping[str, xr.DataTree], data: xr.Dataset
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """PSIS-LOO of the repeat-count term of each fit (same data), best first (`az.compare`: elpd, its
    difference and standard error, Pareto-k diagnostics, stacking weights); and per fit the whole-border
    unobserved crossings per year (median and 90 % interval of the mean over the fitted years) with the
    stacking-weighted mixture of the fits' draws."""
    import arviz as az

    trees: dict[str, xr.DataTree] = {}
    annual: dict[str, np.ndarray] = {}
    for name, tree in fits.items():
        posterior = tree["posterior"].to_dataset()
        ll = frequency_log_likelihood(data, posterior)
        trees[name] = xr.DataTree.from_dict(
            {"posterior": posterior[["unobserved_border_year"]], "log_likelihood": ll.to_dataset()}
        )
        years = posterior["unobserved_border_year"]
        annual[name] = years.sum("year").values.ravel() / years.sizes["year"]
    table = az.compare(trees, round_to="none")
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
