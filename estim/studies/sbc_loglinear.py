"""The law of people that the log-linear capture–recapture families state, for their simulation-based
calibration (`estim.studies.sbc_designs`): Rcapture's heterogeneity models ``Mh_*`` and ``Mth_*`` and the
``loglinear`` family of multiple lists.

**The law.** Each family states (`estim.families.loglinear.model`) that a person falls in capture history h
(of all 2^t, the never-seen 0…0 included) with probability

    P(h) = exp(x_h · β) / Σ_h' exp(x_h' · β),       x_0…0 = 0,

independently of everyone else; its Poisson form (cells Poisson(μ_h), μ_h ∝ exp(x_h · β)) is the same law
given N. A history's row x_h: the capture term (``M0``: the number of captures k; ``Mt``: one 0/1 column per
occasion or list), the interactions (the product of the lists' indicators) and the heterogeneity h(k)
(Rivest & Baillargeon 2007; Rcapture's ``closedp``): Chao's (k − j + 1)⁺ for j = 3…t with coefficients
η_j ≥ 0; Poisson2 2^k − 1; Darroch k²/2; Gamma3.5 −log(1 + k/3.5). Every column is 0 at k = 0.

This is a law of people for every β, negative heterogeneity coefficients included: P is a probability on the
2^t histories whatever the signs, and N people drawn from it give the model's multinomial likelihood. Where
τ < 0 (fewer people caught often than a binomial would put there) the law is no mixture of binomials — not a
"heterogeneity" that individual capture probabilities could produce — but it is still the law the model's
likelihood states, and SBC checks the computation of the posterior under the model's own law. So the
simulator draws N from the SBC prior and spreads them multinomially over the 2^t histories with P(h).

**Parameters.** The model's free parameters are scaled: ``effect`` (and Chao's ``eta``) is the coefficient
times the column's largest absolute value over the observable histories (k from 1 to t), so that effect =
coefficient × scale. The scales are computed here from the formulas above, not from the model's code.

**The SBC prior** (`sbc_priors`, used both to draw the truth and in the fit). The engine's default, Normal(0,
30) on every scaled effect, makes absurd populations to simulate from: an occasion's logit p ~ Normal(0, 30)
catches everyone or no one, and a heterogeneity term moves the log expected count of a history by ±30 (the
model's docstring: its prior predictive "puts nearly everyone in one cell"); and N is then known exactly in
most datasets. SBC checks a computation under whichever proper prior it draws from, so it uses one that gives
the data of a capture–recapture study: P(never seen) from under 1 % to over 70 % across truths.

Everything is computed in NumPy from the stated formulas (the model's design matrix and likelihood code are
not used), so SBC checks them against this law.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from estim.priors import Prior

GAMMA_THETA = 3.5  # Gamma3.5
POISSON_THETA = 2.0  # Poisson2


def every_history(t: int) -> np.ndarray:
    """All 2^t 0/1 histories (the never-seen one first), one per row; occasion 1 is the leading bit."""
    codes = np.arange(2**t)
    return ((codes[:, None] >> np.arange(t - 1, -1, -1)[None, :]) & 1).astype(np.int64)


def heterogeneity(name: str, k: np.ndarray, t: int) -> np.ndarray:
    """h(k) as columns (len(k), terms): one column, or Chao's t − 2 columns (k − j + 1)⁺, j = 3…t."""
    k = np.asarray(k, dtype=float)
    if name == "chao":
        return np.stack([np.clip(k - j + 1, 0.0, None) for j in range(3, t + 1)], axis=1)
    if name == "poisson":
        return (POISSON_THETA**k - 1.0)[:, None]
    if name == "darroch":
        return (k**2 / 2.0)[:, None]
    if name == "gamma":
        return (-np.log1p(k / GAMMA_THETA))[:, None]
    raise ValueError(f"unknown heterogeneity {name!r}")


@dataclass(frozen=True)
class LogLinearLaw:
    """A log-linear model of t occasions (lists): its capture term (``"M0"`` or ``"Mt"``), its interactions
    (pairs of occasion indices) and its heterogeneity (None or a name of `heterogeneity`)."""

    occasions: int
    capture: str = "M0"
    heterogeneity: str | None = None
    interactions: tuple[tuple[int, ...], ...] = ()

    @property
    def chao(self) -> bool:
        return self.heterogeneity == "chao"

    def columns(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unscaled columns of histories ``x`` (rows): the free terms (capture, interactions and a
        one-column heterogeneity, in the model's order) and Chao's η terms (none unless Chao)."""
        k = x.sum(axis=1).astype(float)
        cols = [k[:, None]] if self.capture == "M0" else [x.astype(float)]
        cols += [
            np.prod(x[:, list(term)], axis=1, dtype=float)[:, None] for term in self.interactions
        ]
        het = (
            heterogeneity(self.heterogeneity, k, self.occasions)
            if self.heterogeneity
            else np.zeros((len(x), 0))
        )
        if self.chao:
            return np.concatenate(cols, axis=1), het
        return np.concatenate([*cols, het], axis=1), np.zeros((len(x), 0))

    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """Each column's largest absolute value over the observable histories (the model's effect =
        coefficient × scale)."""
        free, chao = self.columns(every_history(self.occasions)[1:])
        return np.abs(free).max(axis=0), np.abs(chao).max(axis=0)

    def probabilities(self, effect: np.ndarray, eta: np.ndarray | None = None) -> np.ndarray:
        """P(h) over `every_history` (the never-seen history first) at the scaled effects (and η)."""
        x = every_history(self.occasions)
        free, chao = self.columns(x)
        scale_free, scale_chao = self.scales()
        log_w = free @ (np.ravel(effect) / scale_free)
        if self.chao:
            log_w = log_w + chao @ (np.ravel(eta) / scale_chao)
        log_w = log_w - log_w.max()
        w = np.exp(log_w)
        return w / w.sum()


# The SBC prior of the scaled effects, per term, stated on the coefficients' own scale: a capture coefficient
# (M0's per capture, Mt's per occasion: the logit of a capture probability) Normal(−1, 1.5); an interaction (a log
# odds ratio between two lists) Normal(0, 1); a one-column heterogeneity term Normal(0, 2) on its effect, the
# change it makes in the log expected count of the history caught every time. Chao's η keep the default.
CAPTURE_PRIOR = (-1.0, 1.5)
INTERACTION_PRIOR = (0.0, 1.0)
HETEROGENEITY_PRIOR = (0.0, 2.0)


def sbc_priors(law: LogLinearLaw) -> dict[str, Prior]:
    """The ``effect`` prior of SBC's truths and fits, one (mean, sd) per free term (module docstring)."""
    scale, _ = law.scales()
    n_capture = 1 if law.capture == "M0" else law.occasions
    # a capture coefficient's effect is coefficient × scale (M0: × t); the others are stated as effects
    terms = [
        (m * s, sd * s) for (m, sd), s in zip([CAPTURE_PRIOR] * n_capture, scale, strict=False)
    ]
    terms += [INTERACTION_PRIOR] * len(law.interactions)
    terms += [HETEROGENEITY_PRIOR] * (scale.size - len(terms))
    mu, sigma = ([float(term[i]) for term in terms] for i in (0, 1))
    return {"effect": Prior("Normal", mu=mu, sigma=sigma)}


def simulate_counts(
    law: LogLinearLaw, rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
) -> np.ndarray:
    """The number of people in each history of `every_history` (the never-seen first) among ``size``."""
    p = law.probabilities(truth["effect"], truth.get("eta"))
    return rng.multinomial(size, p)


def history_frame(law: LogLinearLaw, counts: np.ndarray, names: list[str]) -> pd.DataFrame:
    """The histories someone showed, one row each, with their count ``n`` (columns ``names``)."""
    x = every_history(law.occasions)
    seen = (np.arange(len(counts)) > 0) & (counts > 0)
    table = pd.DataFrame(x[seen], columns=names)
    table["n"] = counts[seen]
    return table


def simulated_data(
    law: LogLinearLaw,
    rng: np.random.Generator,
    size: int,
    truth: Mapping[str, np.ndarray],
    names: list[str],
    padded: Callable[[pd.DataFrame], xr.Dataset],
    min_seen: int,
) -> xr.Dataset | None:
    """A dataset over every observable history (``padded`` formats the table), or None with fewer than
    ``min_seen`` people seen."""
    counts = simulate_counts(law, rng, size, truth)
    if int(counts[1:].sum()) < min_seen:
        return None
    return padded(history_frame(law, counts, names))
