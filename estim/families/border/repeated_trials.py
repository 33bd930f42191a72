"""Espenshade's repeated trials (r = 1 exactly) as a model nested in the border model, and averaged with it.

Why: when the truth is r = 1 a continuous prior on r puts r's posterior against the bound. Every equal-tailed
interval of r then excludes 1, and the unobserved crossings, which fall steeply as r falls (the repeats pin pr,
so p = pr/r rises), are biased low with intervals that miss high: on the shipped data (made with r = 1) the
whole border came out 7 % low, 5 of 12 years covered, although r's own interval reached 0.995.

The prior is a mixture: r = 1 with probability w [``repeated_trials_prior`` in a spec's [options]], else the
stated continuous prior of ``retry_probability`` (the *slab*). The sampler fits the slab model (r continuous)
and the two are averaged afterwards:

* the Bayes factor of r = 1 against the slab is the Savage–Dickey ratio (Dickey 1971; Wagenmakers et al. 2010)
  of the posterior to the prior density of h = −log r at h = 0, valid because the slab's prior of the other
  parameters given r does not depend on r. The posterior density at the boundary is that of a log-linear
  density fitted by maximum likelihood to the draws with h ≤ `WINDOW` (r > 0.98; `boundary_density`;
  exact when the likelihood is log-linear in h there). The slab's prior density of h at 0 is a for
  Beta(a, 1);
* P(r = 1 | data) = w B/(w B + 1 − w);
* the averaged posterior: each draw is, with that probability, replaced by a draw of the parameters given r = 1
  (a draw of the slab fit with h ≤ `WINDOW`, r then set to 1 and the levels that move with r along the ridge
  recomputed at r = 1 from the draw's r-relative coordinates, `at_repeated_trials`;
  the posterior given r = 1 is the slab's posterior given r, at r = 1, and those coordinates barely depend on r
  near 1, where the natural levels move by ~log r), and kept otherwise. `repeated_trials_source` records which (−1: kept), and every consumer of
  the posterior's draws reads them through `with_repeated_trials`, so the saved fit keeps its raw draws (the
  gate reads those) and the estimates, forecasts and checks see the averaged posterior.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
import xarray as xr

from estim.errors import EstimInputError
from estim.intervals import equal_tailed

# Prior probability of r = 1 exactly (Espenshade's repeated trials) when r is estimated.
REPEATED_TRIALS_PRIOR = 0.5
# the draws of h = −log r up to this (r > 0.980) estimate the density at h = 0 and stand for r = 1
WINDOW = 0.02
MIN_FIT = 50  # fewer draws in the window than this: no slope is fitted
SOURCE = "repeated_trials_source"
# the attribute of a quantity already computed from the averaged posterior (not to be gathered again)
AVERAGED = "averaged_with_repeated_trials"
SLAB_DENSITY = "retry_slab_density_at_one"
# r's 90 % interval "rests on 1" when its lower end is this close to 1: the averaged posterior is then
# (almost) the model with r = 1 exactly (the report warns; the recovery study splits its coverage there)
AT_ONE = 1.0 - 1e-6


def check_prior(value: Any) -> float:
    """``repeated_trials_prior``: a probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise EstimInputError(
            f"[options] repeated_trials_prior: the prior probability that r = 1, in [0, 1), got {value!r}"
        )
    return float(value)


def _truncated_exponential_rate(mean: float, window: float) -> float:
    """λ of the density ∝ e^{−λh} on [0, H] (λ < 0: rising) whose mean is `mean`: the maximum-likelihood
    rate given the draws' mean, solving 1/λ − H/(e^{λH} − 1) = mean."""
    x = mean / window  # in (0, 1); ½ is λ = 0
    if abs(x - 0.5) < 1e-9:
        return 0.0

    def gap(t: float) -> float:  # mean/H at λH = t, minus the target
        if abs(t) < 1e-6:
            return 0.5 - t / 12 - x
        return 1 / t - 1 / np.expm1(t) - x

    return float(scipy.optimize.brentq(gap, -700.0, 700.0)) / window


def boundary_density(h: np.ndarray, window: float = WINDOW) -> float:
    """The density of the draws `h` (≥ 0) at 0: a log-linear density f(0) e^{−λh} fitted by maximum
    likelihood to the draws in [0, `window`], so f(0) = F(window) λ/(1 − e^{−λ·window}); with fewer than
    `MIN_FIT` draws there, their mean density F(window)/window; 0 when no draw is there. Exact when the density is exponential near 0 (a likelihood log-linear in h), local (a posterior far
    from r = 1 has no draw in the window, and no tail of it is extrapolated to 0), and free of the slope bias
    of F(window)/window."""
    h = np.asarray(h, dtype=float).ravel()
    if h.size == 0:
        raise ValueError("no draws")
    inside = h[h <= window]
    if inside.size == 0:
        return 0.0
    share = inside.size / h.size
    if inside.size < MIN_FIT:
        # too few draws to fit a slope: their mean density over the window (3 draws near 0 of 2,000 made
        # the fit's density at 0 three times the window's mean, P(r = 1 | data) 0.18 for data with r = 0.8)
        return share / window
    x = float(inside.mean() / window)
    # beyond |λ·window| = 700 the fit is degenerate: all the window's draws at its top (no density at 0),
    # or piled against 0 (an exponential of that mean)
    if x >= 1 - 1 / 700:
        return 0.0
    if x <= 1 / 700:
        return share / (x * window)
    rate = _truncated_exponential_rate(x * window, window)
    if abs(rate * window) < 1e-9:
        return share / window
    return float(share * rate / -np.expm1(-rate * window))


def bayes_factor(retry: np.ndarray, slab_density: float) -> float:
    """B = p(data | r = 1)/p(data | slab) by Savage–Dickey: the posterior density of h = −log r at 0 (draws
    `retry` of the slab fit) over the slab's prior density of h at 0 (a for r ~ Beta(a, 1))."""
    if not slab_density > 0:
        raise ValueError(f"the slab's prior density at r = 1 must be positive, got {slab_density}")
    h = -np.log(np.clip(np.asarray(retry, dtype=float), 1e-300, 1.0))
    return boundary_density(h) / slab_density


def posterior_probability(bayes: float, prior: float) -> float:
    """P(r = 1 | data) from the Bayes factor of r = 1 and its prior probability."""
    if prior <= 0:
        return 0.0
    return prior * bayes / (prior * bayes + 1.0 - prior)


def repeated_trials_draws(
    posterior: xr.Dataset, prior: float, rng: np.random.Generator
) -> tuple[xr.DataArray, float, float]:
    """The averaged posterior's map (`SOURCE`: for each chain × draw, −1 to keep the slab draw, or the flat
    index of the slab draw near r = 1 that stands in for a draw given r = 1), with the Bayes factor and
    P(r = 1 | data)."""
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    n = shape[0] * shape[1]
    retry = np.broadcast_to(posterior["retry_probability"].values, shape).reshape(n)
    slab = float(np.asarray(posterior[SLAB_DENSITY].values).ravel()[0])
    bayes = bayes_factor(retry, slab)
    probability = posterior_probability(bayes, prior)
    h = -np.log(np.clip(retry, 1e-300, 1.0))
    pool = np.flatnonzero(h <= WINDOW)  # not empty when the probability is positive
    chosen = rng.random(n) < probability if pool.size else np.zeros(n, bool)
    source = np.full(n, -1, dtype=np.int64)
    source[chosen] = rng.choice(pool, int(chosen.sum()))
    da = xr.DataArray(
        source.reshape(shape),
        dims=("chain", "draw"),
        coords={k: posterior.coords[k] for k in ("chain", "draw") if k in posterior.coords},
        name=SOURCE,
    )
    da.attrs.update(
        description=(
            "averaged with repeated trials (r = 1): -1 keeps this draw of the fit with r estimated; otherwise "
            "the flat index of the draw nearest r = 1 that stands in for a draw given r = 1"
        ),
        bayes_factor=bayes,
        posterior_probability=probability,
        prior_probability=prior,
    )
    return da, bayes, probability


def with_repeated_trials(posterior: xr.Dataset) -> xr.Dataset:
    """The averaged posterior: every (chain, draw) variable gathered through `SOURCE` (except those marked
    `AVERAGED`, derived from the averaged posterior already), and r = 1 at the draws that stand for repeated
    trials. A posterior without `SOURCE` is returned as it is."""
    if SOURCE not in posterior:
        return posterior
    source = posterior[SOURCE].values
    shape = source.shape
    n = source.size
    flat = source.reshape(n)
    take = np.where(flat >= 0, flat, np.arange(n))
    out = {}
    for name, da in posterior.data_vars.items():
        if name == SOURCE:
            continue
        if da.dims[:2] != ("chain", "draw") or da.attrs.get(AVERAGED):
            out[name] = da
            continue
        values = da.values.reshape(n, *da.shape[2:])[take].reshape(da.shape)
        out[name] = da.copy(data=values)
    averaged = xr.Dataset(out, coords=posterior.coords, attrs=posterior.attrs)
    standing_in = (flat >= 0).reshape(shape)
    if "retry_probability" in averaged:
        r = np.broadcast_to(averaged["retry_probability"].values, shape).copy()
        r[standing_in] = 1.0
        averaged["retry_probability"] = (("chain", "draw"), r)
    # the stand-ins' levels moved along the ridge to r = 1 (`at_repeated_trials`)
    mask = xr.DataArray(standing_in, dims=("chain", "draw"))
    for name, value in at_repeated_trials(averaged).items():
        if name in averaged and not averaged[name].attrs.get(AVERAGED):
            moved = xr.where(mask, value, averaged[name], keep_attrs=True)
            averaged[name] = moved.transpose(*averaged[name].dims).astype(averaged[name].dtype)
    return averaged


def summary(posterior: xr.Dataset) -> dict[str, float] | None:
    """P(r = 1 | data), its prior and the Bayes factor, as the fit recorded them; None without averaging."""
    if SOURCE not in posterior:
        return None
    attrs = posterior[SOURCE].attrs
    return {
        "posterior_probability": float(attrs["posterior_probability"]),
        "prior_probability": float(attrs["prior_probability"]),
        "bayes_factor": float(attrs["bayes_factor"]),
    }


def at_repeated_trials(posterior: Any) -> dict[str, Any]:
    """The natural parameters that move with r along the ridge, at r = 1, from a draw's r-relative coordinates
    (``name_given_retry``, ``register_coverage_z``; `estim.families.border.retry`): the levels (`along_retry`) and the section hazards' mean
    are their ``_given_retry`` coordinates; the section hazards move by the mean's shift (centred or not);
    the registers' coverage is expit(z). A posterior (an xarray Dataset) with r fixed has none of these
    coordinates and gives {}. Why: a slab draw near r = 1 that stands in for a draw given r = 1
    (`estim.families.border.repeated_trials`) keeps these coordinates, whose posterior barely depends on r
    there, while its natural levels sit on the ridge at its own r (an r of 0.99 puts p 1.4 % higher and the
    journeys lower by as much: on the shipped data the whole border's unobserved crossings came out 1.1 %
    low, with its stand-ins left at their r)."""
    out: dict[str, Any] = {}
    names = set(posterior.data_vars)
    for name in names:
        if name.endswith("_given_retry"):
            out[name.removesuffix("_given_retry")] = posterior[name]
    if "hazard_section" in names and "hazard_section_given_retry" not in names:
        if "hazard_mean_given_retry" in names:  # non-centred: a_s = μ_a + t + σ_a z moves with μ_a
            mean_shift = posterior["hazard_mean"] - posterior["hazard_mean_given_retry"]
            out["hazard_section"] = posterior["hazard_section"] - mean_shift
    if "register_coverage_z" in names and "register_coverage" in names:
        out["register_coverage"] = 1.0 / (1.0 + np.exp(-posterior["register_coverage_z"]))
    return out


def retry_summary(
    post: xr.Dataset, prob: float = 0.9, months: np.ndarray | None = None
) -> dict[str, Any]:
    """The retry probability r of a fit: its posterior median and central `prob` interval, and where it comes
    from: ``fixed`` (a spec's option), ``linkage`` (apprehended journeys linked to two or more in-country
    registers, whose overlap separates the share that got through from the registers' coverage),
    ``one_list`` (linked to one register: the share seen on it is that product, so r is bounded below and
    rests above on its prior and the register's coverage prior) or ``prior`` (no linkage: the prior alone,
    which the estimate then rests on); with the apprehended journeys
    given up per year (whole border, median) when the fit has them: their total over the fitted `months`
    (``datetime64[M]``, `estim.families.border.report_years.fitted_months`) × 12 / their number
    (`_per_year`), with whole years the mean over the years to the bit; without `months` the
    years are taken as whole. A fit averaged with repeated trials (r = 1) gives r's averaged posterior and
    ``repeated_trials``: P(r = 1 | data), its prior, the Bayes factor."""
    if "retry_probability" not in post:
        return {"source": "fixed", "median": 1.0, "lower": 1.0, "upper": 1.0}
    averaging = summary(post)
    r = with_repeated_trials(post)["retry_probability"]
    q = equal_tailed(r, prob)
    out: dict[str, Any] = {k: float(q.sel(quantile=k)) for k in ("median", "lower", "upper")}
    if float(r.max() - r.min()) == 0.0:
        out["source"] = "fixed"
    else:
        out["source"] = "prior"
        if "register_coverage" in post:
            # one list sees a crossing with its own coverage π, and the linked journeys pin only s·π: r is
            # then bounded below (s ≥ s·π) and rests above on the priors of r and π
            lists = post["register_coverage"].sizes.get("in_country_list")
            out["source"] = "one_list" if lists == 1 else "linkage"
    if averaging is not None:
        out["repeated_trials"] = averaging
    if "abandoned_border_year" in post:
        given_up = _per_year(post["abandoned_border_year"], months)
        out["abandoned_per_year"] = float(np.median(given_up))
    return out


def _per_year(by_year: xr.DataArray, months: np.ndarray | None) -> np.ndarray:
    """Draws summed by calendar year as a rate per year, one value per draw: their total × 12 / the number
    of fitted `months` in their years — with whole years the mean over the years (to the bit, for counts:
    12·T/(12·n) and T/n round alike); with records that stop mid-year (June 2017) not the total of 11½
    years divided by 12. Without `months`, or without a ``year`` coordinate, the years are taken as whole.
    (`estim.families.border.frequency_loo.per_year` is the same, but imports this module.)"""
    total = by_year.sum("year").values.ravel()
    n_months = 12 * by_year.sizes["year"]
    if months is not None and "year" in by_year.coords:
        fitted = np.asarray(months).astype("datetime64[M]")
        in_year = fitted.astype("datetime64[Y]").astype(int) + 1970
        counts = {int(y): int((in_year == y).sum()) for y in by_year["year"].values}
        lacking = [y for y, n in counts.items() if not n]
        if lacking:
            raise EstimInputError(f"the fit's years {lacking} are not in its {fitted.size} months")
        n_months = sum(counts.values())
    return total * 12 / n_months
