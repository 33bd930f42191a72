"""The border model's rates: the journeys' mean μ, the apprehension probability p and the dispersion φ of every
section × month × category cell, given the parameters (equations in `estim.families.border.model`).

One formula, `log_rates`, serves the model (PyTensor, the parameters as model variables) and the analyses of a
fit (NumPy, each parameter with a leading draw axis): `rates` evaluates it on posterior draws, as
`posterior_parameters` lays them out, for the unobserved crossings, the predictive checks, the prior
sensitivity study and forecasts (a ``data`` set with future months, flows and policy indicators).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import scipy.special
import xarray as xr

from estim.families import kernels
from estim.families.border.data import DETECTORS, JOURNEY_CATEGORIES, RESIDENT, harmonics

# The model's parameters, as named in the model and in a fit's posterior.
PARAMETERS = (
    "section_effect",
    "category_level",
    "season",
    "trend",
    "log_policy_effect",
    "population_elasticity",
    "overdispersion",
    "bypass_eta0",
    "bypass_eta1",
    "hazard_section",
    "hazard_category",
    "hazard_detector",
    "technical_trend",
)


class Rates(NamedTuple):
    """log μ, log p, log(1 − p) (…, section, month, category) and φ (…, category)."""

    log_mu: Any
    log_p: Any
    log_1mp: Any
    phi: Any


def _trailing(x: Any, n: int) -> Any:
    """x with n axes of length 1 appended (a parameter broadcast against the cells' axes)."""
    for _ in range(n):
        x = x[..., None]
    return x


def _logsumexp(x: Any, axis: int, xp: Any) -> Any:
    return (
        xp.logsumexp(x, axis=axis)
        if hasattr(xp, "logsumexp")
        else scipy.special.logsumexp(x, axis=axis)
    )


def log_rates(data: xr.Dataset, parameters: Mapping[str, Any], xp: Any) -> Rates:
    """The rates of every cell on the log scale, for parameters in the array namespace ``xp``: ``numpy``
    (each parameter with leading draw axes) or ``pytensor.tensor`` (the model's variables).

    ``parameters`` holds the names of `PARAMETERS`, with ``hazard_detector_full`` (e_d of every detector,
    patrol's 0 first) in place of ``hazard_detector``."""
    years = data["years"].values  # y(t)
    # journeys of the log-linear categories (…, category, month): β_c + S_c(m) + τ_c y + policy
    season = parameters["season"] @ harmonics(data["month_of_year"].values).T  # S_c(m(t))
    in_force = data["policy_in_force"].values  # I_e(t), (event, month)
    theta = xp.exp(parameters["log_policy_effect"])  # θ_{e,c}, (…, event, category)
    # Σ_e log(1 + (θ_{e,c} − 1) I_e(t))
    policy = xp.log(1.0 + (_trailing(theta, 1) - 1.0) * in_force[:, None, :]).sum(axis=-3)
    category_month = (
        _trailing(parameters["category_level"], 1)
        + season
        + _trailing(parameters["trend"], 1) * years
        + policy
    )
    # … + log(ℓ_s/1000) + α_s + γ log(N_s/10⁵) [c = border_resident]: (…, section, category, month)
    log_length = np.log(data["length_km"].values / 1000.0)
    log_population = np.log(data["border_population"].values / 1e5)
    resident = np.array([c == RESIDENT for c in JOURNEY_CATEGORIES], float)
    section = _trailing(parameters["section_effect"], 2) + log_length[:, None, None]
    population = _trailing(parameters["population_elasticity"], 3) * (
        log_population[:, None, None] * resident[None, :, None]
    )
    log_mu_journeys = section + population + xp.expand_dims(category_month, -3)
    # bypassers: F_{s,t} expit(η0 + η1 log(max(w_{s,t}, 0.1)/60)), (…, section, month)
    flow = data["land_foreign_crossings"].values.astype(float)
    log_wait = np.log(np.maximum(data["land_mean_wait"].values, 0.1) / 60.0)
    eta0, eta1 = _trailing(parameters["bypass_eta0"], 2), _trailing(parameters["bypass_eta1"], 2)
    log_share = -kernels.softplus(-(eta0 + eta1 * log_wait), xp)  # log expit
    log_mu_bypass = np.log(np.maximum(flow, 1.0)) + log_share
    log_mu = xp.concatenate([log_mu_journeys, xp.expand_dims(log_mu_bypass, -2)], axis=-2)
    # detection: log H = a_s + b_c + log Σ_d exp(e_d + δ y [d = technical]), (…, section, category, month)
    technical = np.array([d == "technical" for d in DETECTORS], float)
    detector = _trailing(parameters["hazard_detector_full"], 1) + _trailing(
        parameters["technical_trend"], 2
    ) * (technical[:, None] * years[None, :])  # (…, detector, month)
    log_detectors = _logsumexp(detector, -2, xp)  # (…, month)
    log_hazard = (
        _trailing(parameters["hazard_section"], 2)
        + _trailing(parameters["hazard_category"], 1)[..., None, :, :]
        + xp.expand_dims(xp.expand_dims(log_detectors, -2), -3)
    )
    hazard = xp.exp(log_hazard)
    log_p = kernels.log1mexp(-hazard, xp)  # p = 1 − exp(−H)
    log_1mp = -hazard
    phi = 1.0 / parameters["overdispersion"] ** 2
    # (…, section, category, month) -> (…, section, month, category)
    return Rates(log_mu.swapaxes(-1, -2), log_p.swapaxes(-1, -2), log_1mp.swapaxes(-1, -2), phi)


def posterior_parameters(posterior: xr.Dataset) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """The model's parameters (`PARAMETERS`) in a posterior (dims chain, draw, …), chains and draws on one
    leading axis; with (chains, draws) to restore it."""
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    parameters = {}
    for name in PARAMETERS:
        x = posterior[name].values
        parameters[name] = x.reshape(shape[0] * shape[1], *x.shape[2:])
    return parameters, shape


FRAILTY_NODES = 5  # Gauss–Hermite nodes of the discretised log-normal frailty (the simulator's law)


def frailty_nodes(n: int = FRAILTY_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Standard nodes x_q and log weights of E f(X), X ~ N(0, 1): Σ_q w_q f(√2 x_q), Σ w_q = 1."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return np.sqrt(2.0) * x, np.log(w / np.sqrt(np.pi))


class Detection(NamedTuple):
    """What the apprehensions of a cell's journeys follow, per cell (log scale): p̄ the probability that a
    journey is apprehended at least once, pr the continuation of its further apprehensions (with frailty the
    value that matches their mean), s the probability that an apprehended journey gets through; and, with
    frailty, the nodes' terms for the repeat counts' exact mixture (node axis last): log w_q, log p_q,
    log p_q r, log(1 − p_q r)."""

    log_p: Any
    log_1mp: Any
    log_pr: Any
    log_1mpr: Any
    log_s: Any
    log_1ms: Any
    nodes: tuple[Any, Any, Any, Any] | None = None


def detection(log_p: Any, log_1mp: Any, log_retry: Any, frailty_sd: Any, xp: Any) -> Detection:
    """The apprehension law of every cell (`Detection`) given p = 1 − exp(−H), the retry probability r
    (``log_retry``, broadcastable to the cells) and the frailty spread σ (None: no frailty).

    Without frailty: pr, s = r(1 − p)/(1 − pr), 1 − s = (1 − r)/(1 − pr). With frailty a journey's hazard is
    H·Z, log Z ~ N(−σ²/2, σ²) on `FRAILTY_NODES` Gauss–Hermite nodes (E Z = 1), p_q = 1 − exp(−H z_q):
    p̄ = Σ w_q p_q; an apprehended journey is at node q with v_q = w_q p_q/p̄, so s = Σ v_q s_q, and its
    further apprehensions have mean m = Σ v_q p_q r/(1 − p_q r), matched by the geometric of continuation
    m/(1 + m) (the unsurveyed totals' law uses it: an approximation; the repeat counts use the exact
    mixture)."""
    if frailty_sd is None:
        log_pr = log_p + log_retry
        log_1mpr = kernels.log1mexp(log_pr, xp)
        log_1mr = kernels.log1mexp(log_retry, xp)  # −inf at r = 1: no journey is given up
        return Detection(
            log_p, log_1mp, log_pr, log_1mpr, log_retry + log_1mp - log_1mpr, log_1mr - log_1mpr
        )
    x, log_w = frailty_nodes()
    sigma = xp.expand_dims(frailty_sd, -1) if _has_axes(frailty_sd) else frailty_sd
    lr = xp.expand_dims(log_retry, -1) if _has_axes(log_retry) else log_retry
    log_z = -0.5 * sigma**2 + sigma * x  # (…, node)
    log_1mp_q = xp.expand_dims(log_1mp, -1) * xp.exp(log_z)  # −H z_q
    log_p_q = kernels.log1mexp(log_1mp_q, xp)
    log_p_bar = _logsumexp(log_w + log_p_q, -1, xp)
    log_1mp_bar = _logsumexp(log_w + log_1mp_q, -1, xp)
    log_v = log_w + log_p_q - xp.expand_dims(log_p_bar, -1)
    log_pr_q = log_p_q + lr
    log_1mpr_q = kernels.log1mexp(log_pr_q, xp)
    log_m = _logsumexp(log_v + log_pr_q - log_1mpr_q, -1, xp)
    log_s = _logsumexp(log_v + lr + log_1mp_q - log_1mpr_q, -1, xp)
    log_1ms = _logsumexp(log_v + kernels.log1mexp(lr, xp) - log_1mpr_q, -1, xp)
    return Detection(
        log_p_bar,
        log_1mp_bar,
        log_m - kernels.softplus(log_m, xp),
        -kernels.softplus(log_m, xp),
        log_s,
        log_1ms,
        (log_w, log_p_q, log_pr_q, log_1mpr_q),
    )


def _has_axes(x: Any) -> bool:
    return getattr(x, "ndim", 0) > 0


def retry_draws(posterior: xr.Dataset) -> np.ndarray:
    """The retry probability r at each posterior draw (chains and draws on one axis); 1 for a fit made before r
    was a parameter (Espenshade's repeated trials)."""
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    if "retry_probability" not in posterior:
        return np.ones(n)
    return np.broadcast_to(
        posterior["retry_probability"].values, (posterior.sizes["chain"], posterior.sizes["draw"])
    ).reshape(n)


def rates(data: xr.Dataset, parameters: Mapping[str, np.ndarray]) -> Rates:
    """μ, p and φ of every cell at each draw of the parameters (`PARAMETERS`, each with a leading draw axis,
    as `posterior_parameters` gives them): log μ, log p, log(1 − p) with dims (draw, section, month,
    category); φ (draw, category)."""
    other = parameters["hazard_detector"]
    patrol = np.zeros((other.shape[0], 1))  # e_patrol = 0
    return log_rates(
        data, {**parameters, "hazard_detector_full": np.concatenate([patrol, other], axis=1)}, np
    )
