"""Generated quantities of a border fit, drawn at each posterior draw of the parameters: the unobserved
crossings given the data (`crossings`), the counts the model predicts (`simulate_counts`), the replicated
statistics of the posterior predictive checks (`replicate` against `observed_checks`), and what a saved fit
keeps of them (`after_sampling`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from estim.families.base import rng_from
from estim.families.border.data import no_bypass_flow
from estim.families.border.kernels import sample_apprehended
from estim.families.border.linkage import pattern_probabilities
from estim.families.border.rates import (
    Detection,
    Rates,
    detection,
    posterior_parameters,
    rates,
    retry_draws,
)
from estim.families.border.repeated_trials import (
    AVERAGED,
    REPEATED_TRIALS_PRIOR,
    SLAB_DENSITY,
    SOURCE,
    repeated_trials_draws,
    with_repeated_trials,
)

QUANTILES = (0.05, 0.5, 0.95)


class Counts(NamedTuple):
    """Counts per (draw, section, month, category) cell: journeys J, apprehended journeys A, apprehensions K,
    and the journeys that ended in an unobserved crossing (J − A never apprehended, and the apprehended ones
    that got through in the end; all of J when r = 1)."""

    journeys: np.ndarray
    apprehended_journeys: np.ndarray
    apprehensions: np.ndarray
    unobserved: np.ndarray


def draw_detection(cell_rates: Rates, retry: np.ndarray, frailty: np.ndarray | None) -> Detection:
    """`estim.families.border.rates.detection` at each draw: ``retry`` r and ``frailty`` σ (None: no
    frailty) one per draw."""
    shape = (-1, *([1] * (cell_rates.log_p.ndim - 1)))
    with np.errstate(divide="ignore"):  # log(1 − r) = −inf at r = 1
        return detection(
            cell_rates.log_p,
            cell_rates.log_1mp,
            np.log(np.asarray(retry, float)).reshape(shape),
            None if frailty is None else np.asarray(frailty, float).reshape(shape),
            np,
        )


def _node_shares(det: Detection) -> np.ndarray | None:
    """With frailty, the share v_q = w_q p_q/p̄ of each node among a cell's apprehended journeys (…, node)."""
    if det.nodes is None:
        return None
    log_w, log_p_q, _, _ = det.nodes
    v = np.exp(log_w + log_p_q - det.log_p[..., None])
    return v / v.sum(-1, keepdims=True)


def simulate_counts(
    cell_rates: Rates,
    rng: Any = None,
    retry: np.ndarray | None = None,
    frailty: np.ndarray | None = None,
) -> Counts:
    """The model's predictive law of the counts given the rates (`rates`), the retry probability r and the
    frailty spread σ at each draw (``retry``, ``frailty``: one per draw; None: r = 1, no frailty): journeys
    J ~ NegBin(μ, φ) (a gamma–Poisson mixture), apprehended journeys A | J ~ Binomial(J, p̄), apprehensions
    K = A + the further apprehensions of the A journeys (each journey's geometric with continuation pr; with
    frailty, the journeys split over the frailty nodes by v_q, each node's with p_q r), and of the A journeys
    Binomial(A, s) got through, s = r(1 − p)/(1 − pr) (with frailty Σ_q v_q s_q)."""
    rng = rng_from(rng)
    mu = np.exp(cell_rates.log_mu)
    r = np.ones(mu.shape[0]) if retry is None else np.asarray(retry, float)
    det = draw_detection(cell_rates, r, frailty)
    phi = np.broadcast_to(cell_rates.phi[:, None, None, :], mu.shape)
    journeys = rng.poisson(rng.gamma(phi, mu / phi))
    apprehended = rng.binomial(journeys, np.exp(det.log_p))
    shares = _node_shares(det)
    if shares is None:
        p_miss = np.clip(np.exp(det.log_1mpr), 1e-12, 1.0)  # 1 − pr
        further = rng.negative_binomial(np.maximum(apprehended, 1), p_miss) * (apprehended > 0)
    else:
        by_node = rng.multinomial(apprehended, shares)
        p_miss = np.clip(np.exp(det.nodes[3]), 1e-12, 1.0)
        further = (rng.negative_binomial(np.maximum(by_node, 1), p_miss) * (by_node > 0)).sum(-1)
    s = np.clip(np.exp(det.log_s), 0.0, 1.0)
    unobserved = journeys - apprehended + rng.binomial(apprehended, s)
    return Counts(journeys, apprehended, apprehended + further, unobserved)


def frailty_draws(posterior: xr.Dataset) -> np.ndarray | None:
    """The frailty spread σ at each posterior draw (chains and draws on one axis); None for a fit without
    frailty."""
    if "frailty_sd" not in posterior:
        return None
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    return np.broadcast_to(posterior["frailty_sd"].values, shape).reshape(-1)


def _link_patterns(
    data: xr.Dataset, posterior: xr.Dataset, pick: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(pattern | got through) and P(pattern | not through) in the window after the journey, and P(pattern)
    in the window before it, per (draw, category, link_pattern) at the draws ``pick``, from the coverage π,
    the other crossings' sightings μ_S and their factor ρ after the journey (``after_background``, 1 when the
    fit has none; `linkage.link_terms`)."""
    n_lists = data.sizes["in_country_list"]
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    n_cat = data.sizes["category"]
    cov = posterior["register_coverage"].values.reshape(n, n_lists, n_cat)[pick]
    rate = posterior["other_sightings"].values.reshape(n, 2**n_lists - 1, n_cat)[pick]
    rho = 1.0
    if "after_background" in posterior:
        shape = (posterior.sizes["chain"], posterior.sizes["draw"])
        rho = np.broadcast_to(posterior["after_background"].values, shape).reshape(-1)[pick]
        rho = rho[:, None]  # (draw, 1): over categories

    def background(mask: np.ndarray, factor: Any = 1.0) -> np.ndarray:  # (draw, category)
        hits = np.array(
            [any(b >> i & 1 and mask[i] for i in range(n_lists)) for b in range(1, 2**n_lists)]
        )
        return np.exp(-factor * rate[:, hits].sum(axis=1))

    def this_crossing(mask: np.ndarray) -> np.ndarray:
        return np.where(mask[None, :, None], 1.0 - cov, 1.0).prod(axis=1)

    def patterns(no_sighting: Any) -> np.ndarray:  # (draw, category, pattern)
        return np.maximum(pattern_probabilities(no_sighting, n_lists, np), 1e-300)

    return (
        patterns(lambda m: this_crossing(m) * background(m, rho)),
        patterns(lambda m: background(m, rho)),
        patterns(background),
    )


def _link_posterior(
    data: xr.Dataset, posterior: xr.Dataset, pick: slice, s: np.ndarray
) -> np.ndarray | None:
    """P(got through | after pattern) per (draw, section, month, category, link_pattern), from s and the
    posterior coverage π and the other crossings' sightings μ_S (`estim.families.border.linkage.link_terms`):
    s P(pattern | got) / P(pattern). None without linkage in the fit."""
    if "register_coverage" not in posterior:
        return None
    g, e, _ = _link_patterns(data, posterior, pick)
    g, e = g[:, None, None], e[:, None, None]  # (draw, 1, 1, cat, pattern)
    num = s[..., None] * g
    return num / np.maximum(num + (1.0 - s[..., None]) * e, 1e-300)


def crossings(
    data: xr.Dataset,
    posterior: xr.Dataset,
    rng: Any = None,
    *,
    chunk: int = 25,
) -> xr.Dataset:
    """Posterior draws of the unobserved crossings U per section × month × category, from their conditional
    law given the data at each parameter draw. With G the gamma rate of the cell, G | A ~ Gamma(φ + A, φ/μ + p)
    and the journeys never apprehended J − A | G ~ Poisson(G(1 − p)); in unsurveyed cells A | K is drawn
    first (`sample_apprehended`, repeats continuing with pr). Of the A apprehended journeys, each got through
    with s = r(1 − p)/(1 − pr) (whatever its number of apprehensions), and a linked journey with its
    probability given its sightings on the in-country lists. U = (J − A) + those that got through.

    Returns ``unobserved`` and ``abandoned`` (apprehended journeys that gave up) (chain, draw, section, month,
    category) as int32, and the expected journeys μ (same dims) for reference."""
    rng = rng_from(rng)
    posterior = with_repeated_trials(posterior)
    parameters, (n_chain, n_draw) = posterior_parameters(posterior)
    retry = retry_draws(posterior)
    frailty = frailty_draws(posterior)
    n = n_chain * n_draw
    surveyed = data["surveyed"].values
    surveyed_idx = np.flatnonzero(surveyed)
    apprehensions = data["apprehensions"].values  # K, (section, month, category)
    apprehended_observed = data["apprehended_journeys"].values  # A of the surveyed sections
    linked = data["linked_journeys"].values * surveyed[:, None, None, None]  # (…, link_pattern)
    unlinked = np.where(surveyed[:, None, None], apprehended_observed - linked.sum(-1), 0)
    unobserved = np.zeros((n, *apprehensions.shape), dtype=np.int32)
    abandoned = np.zeros((n, *apprehensions.shape), dtype=np.int32)
    expected = np.zeros((n, *apprehensions.shape), dtype=np.float32)
    no_flow = no_bypass_flow(data)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        log_mu, log_p, log_1mp, phi = rates(data, {k: x[sl] for k, x in parameters.items()})
        d = log_mu.shape[0]
        det = draw_detection(
            Rates(log_mu, log_p, log_1mp, phi),
            retry[sl],
            None if frailty is None else frailty[sl],
        )
        log_p, log_1mp = det.log_p, det.log_1mp  # p̄: a journey apprehended at least once
        log_pr, log_1mpr = det.log_pr, det.log_1mpr
        phi_c = np.broadcast_to(phi[:, None, None, :], log_mu.shape)
        apprehended = np.broadcast_to(
            np.where(surveyed[:, None, None], apprehended_observed, 0), log_mu.shape
        ).copy()
        u = ~surveyed
        if u.any():
            shape_u = log_mu[:, u].shape
            a_u = sample_apprehended(
                rng,
                apprehensions[u].reshape(-1),
                *(x[:, u].reshape(d, -1) for x in (log_mu + log_p, phi_c, log_pr, log_1mpr)),
            )
            apprehended[:, u] = a_u.reshape(shape_u)
        mu = np.exp(log_mu)
        p = np.exp(log_p)
        g = rng.gamma(phi_c + apprehended, 1.0 / (phi_c / mu + p))
        missed = rng.poisson(g * np.exp(log_1mp))  # journeys never apprehended
        s = np.clip(np.exp(det.log_s), 0.0, 1.0)
        # linked journeys are in the surveyed sections only: their probabilities are computed there (a
        # binomial of 0 trials draws no random number, so the draws are those over every section)
        given_link = _link_posterior(data, posterior, sl, s[:, surveyed_idx])
        if given_link is None:
            through = rng.binomial(apprehended, s)
        else:
            rest = np.where(surveyed[None, :, None, None], unlinked[None], apprehended)
            through = rng.binomial(rest, s)
            through[:, surveyed_idx] += rng.binomial(
                np.broadcast_to(linked[surveyed_idx], given_link.shape),
                np.clip(given_link, 0.0, 1.0),
            ).sum(-1)
        unobserved[sl] = np.where(no_flow[None], 0, missed + through)
        abandoned[sl] = np.where(no_flow[None], 0, apprehended - through)
        expected[sl] = np.where(no_flow[None], 0, mu)
    dims = ("chain", "draw", "section", "month", "category")
    coords = {
        "section": data["section"].values,
        "month": data["month"].values,
        "category": data["category"].values,
    }
    shape = (n_chain, n_draw, *apprehensions.shape)
    return xr.Dataset(
        {
            "unobserved": (dims, unobserved.reshape(shape)),
            "abandoned": (dims, abandoned.reshape(shape)),
            "expected_journeys": (dims, expected.reshape(shape)),
        },
        coords=coords,
    )


def replicate(
    data: xr.Dataset, posterior: xr.Dataset, rng: Any = None, *, draws: int = 200
) -> xr.Dataset:
    """Posterior predictive replicates of the checked statistics at ``draws`` thinned posterior draws:
    monthly apprehension totals per section, the repeat-apprehension frequencies f_k per surveyed section
    (summed over months and categories) and, when the fit has the register linkage, the linked journeys by
    sighting pattern (`replicate_linkage`)."""
    rng = rng_from(rng)
    posterior = with_repeated_trials(posterior)
    parameters, (n_chain, n_draw) = posterior_parameters(posterior)
    n = n_chain * n_draw
    pick = np.unique(np.linspace(0, n - 1, min(draws, n)).astype(int))
    cell_rates = rates(data, {k: x[pick] for k, x in parameters.items()})
    retry = retry_draws(posterior)[pick]
    frailty = frailty_draws(posterior)
    frailty = None if frailty is None else frailty[pick]
    counts = simulate_counts(cell_rates, rng, retry, frailty)
    monthly = counts.apprehensions.sum(axis=3)  # (draw, section, month)
    det = draw_detection(cell_rates, retry, frailty)
    shares = _node_shares(det)
    # 1 − pr of each apprehended journey's further attempts: per cell, or per cell and frailty node
    p_miss = np.clip(np.exp(det.log_1mpr if shares is None else det.nodes[3]), 1e-12, 1.0)
    surveyed = data["surveyed"].values
    k_max = int(data["k"].values.max())
    s_idx = np.flatnonzero(surveyed)
    freq = np.zeros((len(pick), len(s_idx), k_max), dtype=np.int64)
    for i in range(len(pick)):
        for si, s in enumerate(s_idx):
            a = counts.apprehended_journeys[i, s].ravel()
            if shares is None:
                miss = np.repeat(p_miss[i, s].ravel(), a)
            else:  # each journey's frailty node, drawn by its share among the apprehended
                cells = np.repeat(np.arange(a.size), a)
                v = shares[i, s].reshape(a.size, -1)[cells]
                node = (rng.random(cells.size)[:, None] > np.cumsum(v, axis=1)).sum(axis=1)
                node = np.minimum(node, v.shape[1] - 1)
                miss = p_miss[i, s].reshape(a.size, -1)[cells, node]
            # apprehensions of one apprehended journey: 1 + failures before the first miss
            k = rng.geometric(miss)
            freq[i, si] = np.bincount(np.minimum(k, k_max), minlength=k_max + 1)[1:]
    out = xr.Dataset(
        {
            "monthly_apprehensions": (("sample", "section", "month"), monthly),
            "frequency": (("sample", "surveyed_section", "k"), freq),
        },
        coords={
            "section": data["section"].values,
            "month": data["month"].values,
            "surveyed_section": data["section"].values[s_idx],
            "k": np.arange(1, k_max + 1),
        },
        attrs={"note": f"k = {k_max} collects {k_max} or more apprehensions"},
    )
    s_through = np.clip(np.exp(det.log_s), 0.0, 1.0)
    linkage = replicate_linkage(data, posterior, pick, s_through, rng)
    return out if linkage is None else out.merge(linkage)


def _linkage_counts(data: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The surveyed sections' linked journeys by sighting pattern, (window, section, month, category,
    link_pattern), windows after and before the journey."""
    surveyed = np.flatnonzero(data["surveyed"].values)
    return surveyed, np.stack(
        [data["linked_journeys"].values[surveyed], data["before_journeys"].values[surveyed]]
    )


def replicate_linkage(
    data: xr.Dataset, posterior: xr.Dataset, pick: np.ndarray, s: np.ndarray, rng: Any
) -> xr.Dataset | None:
    """Posterior predictive replicates of the register linkage, the data that identify r: at each draw in
    ``pick`` (s: the share of apprehended journeys that got through, per (draw, section, month, category)),
    every surveyed cell's linked journeys are redrawn over the sighting patterns, after the journey from
    s P(· | got) + (1 − s) P(· | not) and before it from P(· | not) (`linkage.link_terms`), with the cell's
    observed number of linked journeys. Kept summed over months and categories, (sample, window,
    surveyed_section, link_pattern) as ``linkage``; and the χ² discrepancy Σ (y − E)²/E over those cells of
    the observed and of the replicated counts against the draw's expected counts E (``linkage_chi2_observed``,
    ``linkage_chi2_replicated``), whose posterior predictive p-value P(T(y_rep, θ) ≥ T(y, θ) | y) (Gelman,
    Meng and Stern 1996) is the check's verdict. None when the fit has no linkage."""
    if "register_coverage" not in posterior or "linked_journeys" not in data:
        return None
    surveyed, observed = _linkage_counts(data)
    if observed.sum() == 0:
        return None
    g, e, e_before = _link_patterns(data, posterior, pick)  # (draw, category, pattern)
    s_cell = s[:, surveyed][..., None]  # (draw, section, month, category, 1)
    after = s_cell * g[:, None, None] + (1.0 - s_cell) * e[:, None, None]
    before = np.broadcast_to(e_before[:, None, None], after.shape)
    prob = np.stack([after, before], axis=1)  # (draw, window, section, month, category, pattern)
    prob = prob / prob.sum(-1, keepdims=True)
    totals = np.broadcast_to(observed.sum(-1), prob.shape[:-1])
    replicated = rng.multinomial(totals, prob).sum(axis=(3, 4))  # (draw, window, section, pattern)
    expected = (totals[..., None] * prob).sum(axis=(3, 4))
    y = observed.sum(axis=(2, 3))  # (window, section, pattern)
    floor = 1e-9  # a pattern no draw expects (E = 0) adds nothing unless it is seen

    def chi2(counts: np.ndarray) -> np.ndarray:
        return ((counts - expected) ** 2 / np.maximum(expected, floor)).sum(axis=(1, 2, 3))

    dims = ("sample", "window", "surveyed_section", "link_pattern")
    return xr.Dataset(
        {
            "linkage": (dims, replicated),
            "linkage_chi2_observed": (("sample",), chi2(y[None])),
            "linkage_chi2_replicated": (("sample",), chi2(replicated)),
        },
        coords={
            "window": ["after", "before"],
            "surveyed_section": data["section"].values[surveyed],
            "link_pattern": data["link_pattern"].values,
        },
    )


def observed_checks(data: xr.Dataset) -> xr.Dataset:
    """The observed statistics the posterior predictive checks compare with `replicate`'s draws."""
    surveyed = data["surveyed"].values
    k_max = int(data["k"].values.max())
    freq = data["frequency"].isel(section=np.flatnonzero(surveyed)).sum(["month", "category"])
    out = xr.Dataset(
        {
            "monthly_apprehensions": data["apprehensions"].sum("category"),
            "frequency": (("surveyed_section", "k"), freq.values[:, :k_max]),
        },
        coords={
            "section": data["section"].values,
            "month": data["month"].values,
            "surveyed_section": data["section"].values[surveyed],
            "k": np.arange(1, k_max + 1),
        },
    )
    if "linked_journeys" in data and data["linked_journeys"].values[surveyed].sum() > 0:
        _, linked = _linkage_counts(data)
        out["linkage"] = xr.DataArray(
            linked.sum(axis=(2, 3)),
            dims=("window", "surveyed_section", "link_pattern"),
            coords={"window": ["after", "before"], "link_pattern": data["link_pattern"].values},
        )
    return out


def after_sampling(
    data: xr.Dataset,
    posterior: xr.Dataset,
    rng: Any = None,
    *,
    repeated_trials_prior: float = REPEATED_TRIALS_PRIOR,
    **_: Any,
) -> dict[str, xr.Dataset]:
    """Derived quantities and checks kept in the saved fit (the per-cell draws would take ~0.3 GB):

    * posterior: draws of unobserved crossings per section × year (``unobserved_section_year``), for the
      whole border per year (``unobserved_border_year``) and per category × year;
    * ``crossings``: per section × month × category, the 5 %, 50 % and 95 % posterior quantiles of the
      unobserved crossings and of the attempts (apprehensions + unobserved), with the apprehensions;
    * posterior_predictive / observed_data: monthly apprehension totals per section and the surveyed
      sections' repeat-apprehension frequencies (`replicate`, `observed_checks`);
    * with r estimated and ``repeated_trials_prior`` > 0, the map of the posterior averaged with r = 1
      (``repeated_trials_source``, `estim.families.border.repeated_trials`), which all of the above read.
    """
    rng = rng_from(rng)
    extra = {}
    if SLAB_DENSITY in posterior and repeated_trials_prior > 0:
        source, _, _ = repeated_trials_draws(posterior, repeated_trials_prior, rng)
        posterior = posterior.assign({SOURCE: source})
        extra[SOURCE] = source
    cr = crossings(data, posterior, rng)
    years = ("month", data["year"].values)
    u = cr["unobserved"].assign_coords(year=years).groupby("year").sum()
    post = xr.Dataset(
        {
            "unobserved_section_year": u.sum("category").astype(np.int64),
            "unobserved_border_year": u.sum(["section", "category"]).astype(np.int64),
            "unobserved_category_year": u.sum("section").astype(np.int64),
            "abandoned_border_year": cr["abandoned"]
            .assign_coords(year=years)
            .groupby("year")
            .sum()
            .sum(["section", "category"])
            .astype(np.int64),
            **extra,
        }
    )
    if (
        extra
    ):  # these draws were made from the averaged posterior: a reader must not average them again
        for name in post.data_vars:
            if name != SOURCE:
                post[name].attrs[AVERAGED] = 1
    post["abandoned_border_year"].attrs["description"] = (
        "apprehended journeys given up (the person did not try again), whole border per year: draws"
    )
    post["unobserved_section_year"].attrs["description"] = (
        "unobserved (undetected, successful) illegal crossings per section and year: draws of the count "
        "given the data"
    )
    k = data["apprehensions"]
    attempts = cr["unobserved"] + k.values[None, None]
    q = list(QUANTILES)
    table = xr.Dataset(
        {
            "unobserved": cr["unobserved"].quantile(q, dim=("chain", "draw")).astype(np.float32),
            "attempts": attempts.quantile(q, dim=("chain", "draw")).astype(np.float32),
            "apprehensions": k,
        }
    )
    table.attrs["description"] = "posterior quantiles per section x month x category"
    if "event_start" in data.coords:  # the policy events' dates, for figures
        table = table.assign_coords(event_start=data["event_start"])
    rep = replicate(data, posterior, rng)
    rep = rep.rename({"sample": "draw"}).expand_dims(chain=[0])
    return {
        "posterior": post,
        "crossings": table,
        "posterior_predictive": rep,
        "observed_data": observed_checks(data),
    }


def population(data: xr.Dataset, posterior: xr.Dataset, rng: Any = None, **_: Any) -> xr.DataArray:
    """Whole-border unobserved crossings per year (draws): the border model's analogue of N."""
    u = crossings(data, posterior, rng)["unobserved"]
    return u.groupby("year").sum().sum(["section", "category"]).rename("N")
