"""The cells and design matrices of Poisson log-linear capture–recapture models (Fienberg 1972; Cormack 1989;
Rivest & Baillargeon 2007, as Rcapture builds them).

A model is a set of `Terms`: how capture depends on the occasions (none, one effect of the number of captures
k, or one effect per occasion; or Rcapture's trap response), which pairs or sets of occasions (lists) interact,
and a heterogeneity term h(k) in the number of captures. The expected count of a capture history h is

    log μ_h = offset_h + β₀ + x_h · β,

with x_h its design row. The never-seen history 0…0 has x = 0 for every term here, so exp(β₀) is the expected
number of people never seen and N̂ = n + exp(β̂₀).

Cells. Models in which x_h depends on h only through k (M0 and the Mh models) are fitted on the f_k table:
summing the Poisson cells of all C(t, k) histories with k captures gives one Poisson cell with offset
log C(t, k), the same likelihood for β up to a constant (so 50 occasions cost 50 cells, not 2^50). For an
f_k table of counts with no upper bound on k (t = ∞, Rcapture's ``closedp.0(t = Inf)``), the binomial
coefficient's limit gives the offset −log k!: the Poisson mixture models of the counts. The other models
need every one of the 2^t − 1 observable histories, zero counts included (t ≤ `MAX_FULL_OCCASIONS`).

Heterogeneity h(k) (Rivest & Baillargeon 2007; Rcapture's ``closedp``): ``chao``, the columns (k − j + 1)⁺
for j = 3…t, whose coefficients η ≥ 0 make the fit reproduce Chao's lower bound; ``poisson`` θ^k − 1 (θ = 2:
Poisson2); ``darroch`` k²/2; ``gamma`` −log(θ + k) + log θ (θ = 3.5: Gamma3.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import comb, lgamma
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError

OBSERVED = (
    "history_count"  # the same name as the closed-population data's (estim.families.closed.data)
)
MULTIPLICITY = "multiplicity"
UNBOUNDED = "unbounded"  # attrs[OCCASIONS_ATTR] of an f_k table whose k has no upper bound (t = ∞)
OCCASIONS_ATTR = "occasions"
MAX_FULL_OCCASIONS = 20  # 2^20 − 1 cells; beyond, only the models in k (M0, Mh) from an f_k table
CAPTURE_EFFECTS = ("none", "M0", "Mt", "Mb")
HETEROGENEITY = ("chao", "poisson", "darroch", "gamma")
_DEFAULT_THETA = {"poisson": 2.0, "gamma": 3.5}
# the widest span (largest / smallest value) of a Poisson heterogeneity column θ^k − 1 fitted: 2^30, Poisson2
# on at most 30 occasions (`_check_range`)
MAX_HETEROGENEITY_RANGE = 2.0**30


@dataclass(frozen=True)
class Terms:
    """The terms of a log-linear capture–recapture model.

    capture
        ``"none"`` (intercept only), ``"M0"`` (one effect of the number of captures k: one capture probability),
        ``"Mt"`` (one effect per occasion or list: p_t), ``"Mb"`` (Rcapture's trap response: occasions before
        the first capture and captures after it).
    heterogeneity
        None, or ``"chao"``, ``"poisson"``, ``"darroch"``, ``"gamma"`` (module docstring).
    theta
        θ of the Poisson (default 2) or gamma (default 3.5) heterogeneity.
    interactions
        Sets of occasion (list) names whose joint capture has its own effect, as Rcapture's ``mX`` formula
        terms ``c1:c2``: the column is the product of their capture indicators.
    """

    capture: str = "M0"
    heterogeneity: str | None = None
    theta: float | None = None
    interactions: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.capture not in CAPTURE_EFFECTS:
            raise EstimInputError(
                f"capture effect {self.capture!r}: one of {', '.join(CAPTURE_EFFECTS)}"
            )
        if self.heterogeneity is not None and self.heterogeneity not in HETEROGENEITY:
            raise EstimInputError(
                f"heterogeneity {self.heterogeneity!r}: one of {', '.join(HETEROGENEITY)}"
            )
        if self.theta is not None and self.heterogeneity not in _DEFAULT_THETA:
            raise EstimInputError("theta is the parameter of the poisson or gamma heterogeneity")
        if self.theta is not None and not self.theta > (
            1 if self.heterogeneity == "poisson" else 0
        ):
            raise EstimInputError(f"theta = {self.theta}: must be > 1 (poisson) or > 0 (gamma)")
        if self.capture == "Mb" and (self.heterogeneity or self.interactions):
            raise EstimInputError("the trap-response model Mb takes no further terms here")
        for term in self.interactions:
            if len(term) < 2 or len(set(term)) != len(term):
                raise EstimInputError(
                    f"interaction {list(term)}: at least two different occasions (lists)"
                )

    @property
    def by_captures(self) -> bool:
        """True when a history's design row depends on it only through k (the model fits an f_k table)."""
        return self.capture in ("none", "M0") and not self.interactions

    @property
    def theta_value(self) -> float | None:
        if self.heterogeneity in _DEFAULT_THETA:
            return float(
                self.theta if self.theta is not None else _DEFAULT_THETA[self.heterogeneity]
            )
        return None

    @property
    def label(self) -> str:
        """Rcapture's name of the model, e.g. "Mth Poisson2", "Mh Gamma3.5", "Mt + EXH:ABA"."""
        base = {"none": "M0", "M0": "M0", "Mt": "Mt", "Mb": "Mb"}[self.capture]
        if self.heterogeneity:
            base = {"M0": "Mh", "Mt": "Mth"}.get(base, base)
            h = {"chao": "Chao (LB)", "darroch": "Darroch"}.get(self.heterogeneity, "")
            if not h:
                name = self.heterogeneity.capitalize()
                h = f"{name}{self.theta_value:g}"
            base = f"{base} {h}"
        for term in self.interactions:
            base += " + " + ":".join(term)
        return base

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Terms:
        """Terms from a spec's ``[options]``: ``capture``, ``heterogeneity``, ``theta``, ``interactions``."""
        known = {"capture", "heterogeneity", "theta", "interactions"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise EstimInputError(
                f"[options] {unknown}: the log-linear model takes {', '.join(sorted(known))}"
            )
        raw = options.get("interactions") or ()
        if isinstance(raw, str) or not all(
            isinstance(t, Sequence) and not isinstance(t, str) for t in raw
        ):
            raise EstimInputError(
                '[options] interactions: a list of lists of occasion names, e.g. [["EXH", "ABA"]]'
            )
        interactions = tuple(tuple(str(o) for o in t) for t in raw)
        seen: dict[frozenset[str], tuple[str, ...]] = {}
        for term in interactions:
            if len(set(term)) < len(term):
                raise EstimInputError(
                    f"[options] interactions: {list(term)} names an occasion twice; an interaction is "
                    "between different occasions"
                )
            key = frozenset(term)
            if (
                key in seen
            ):  # the design would hold the same column twice: "rank 8 < 9", not the reason
                raise EstimInputError(
                    f"[options] interactions: {list(term)} is the same interaction as {list(seen[key])}; "
                    "give each once"
                )
            seen[key] = term
        theta = options.get("theta")
        if theta is not None and (isinstance(theta, bool) or not isinstance(theta, (int, float))):
            raise EstimInputError(
                f"[options] theta: a number (the heterogeneity parameter), got {theta!r}"
            )
        return cls(
            capture=str(options.get("capture", "M0")),
            heterogeneity=options.get("heterogeneity"),
            theta=None if theta is None else float(theta),
            interactions=interactions,
        )


def heterogeneity_columns(terms: Terms, k: np.ndarray, t: int) -> tuple[np.ndarray, list[str]]:
    """The h(k) columns of `terms` for captures `k` over `t` occasions, with their names."""
    k = np.asarray(k, dtype=float)
    h = terms.heterogeneity
    if h is None:
        return np.zeros((len(k), 0)), []
    if h == "chao":
        js = np.arange(3, t + 1)
        return np.maximum(k[:, None] - js[None, :] + 1, 0), [f"eta{j}" for j in js]
    theta = terms.theta_value
    if h == "poisson":
        return (theta**k - 1)[:, None], ["tau"]
    if h == "darroch":
        return (k**2 / 2)[:, None], ["tau"]
    return (-np.log(theta + k) + np.log(theta))[:, None], ["tau"]


@dataclass(frozen=True)
class Design:
    """One model's cells: counts (stratum, cell) and the design (cell, term) without the intercept.

    ``nonnegative`` marks Chao's η columns (Rcapture drops an η that comes out negative); ``mb`` carries the
    trap-response model's occasion count, whose N̂ is not n + exp(β₀)."""

    counts: np.ndarray
    matrix: np.ndarray
    offset: np.ndarray
    terms: tuple[str, ...]
    cells: tuple[str, ...]
    strata: tuple[str, ...]
    nonnegative: np.ndarray
    occasions: int
    model: Terms
    # histories fitted as an f_k table: (counts over all 2^t − 1 histories, each history's cell), so that the
    # deviance and AIC are over the histories as Rcapture's (comparable with Mt's); None otherwise
    histories: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n(self) -> np.ndarray:
        return self.counts.sum(axis=1)


def all_histories(t: int) -> np.ndarray:
    """The 2^t − 1 possible non-empty histories in Rcapture's order (decreasing binary value, 11…1 first)."""
    codes = np.arange(2**t - 1, 0, -1)
    return ((codes[:, None] >> np.arange(t - 1, -1, -1)[None, :]) & 1).astype(np.int8)


def _capture_columns(
    terms: Terms, h: np.ndarray, k: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    if terms.capture == "none":
        return np.zeros((len(k), 0)), []
    if terms.capture == "M0":
        return k[:, None].astype(float), ["captures"]
    if terms.capture == "Mt":
        return h.astype(float), [f"occasion[{o}]" for o in names]
    first = h.argmax(axis=1)  # occasions before the first capture
    return np.column_stack([first, k - 1]).astype(float), ["before_first", "after_first"]


def _interaction_columns(
    terms: Terms, h: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    index = {o: i for i, o in enumerate(names)}
    cols, labels = [], []
    for term in terms.interactions:
        missing = [o for o in term if o not in index]
        if missing:
            raise EstimInputError(
                f"interaction {list(term)}: {missing} not among the occasions (lists) {list(names)}"
            )
        cols.append(np.prod(h[:, [index[o] for o in term]], axis=1))
        labels.append(":".join(term))
    return (np.column_stack(cols) if cols else np.zeros((len(h), 0))), labels


def model_design(terms: Terms, data: xr.Dataset) -> Design:
    """The cells and design of `terms` on closed-population data (`estim.families.closed.history_data` or an
    f_k table): collapsed to k = 1…t for the models in k, completed to all 2^t − 1 histories otherwise."""
    if "history_count" not in data or "capture" not in data:
        raise EstimInputError("log-linear models need capture histories or an f_k table")
    counts = data[OBSERVED].transpose("stratum", "history").values.astype(np.float64)
    x = data["capture"].transpose("history", "occasion").values.astype(np.int8)
    names = [str(o) for o in data["occasion"].values]
    strata = tuple(str(s) for s in data["stratum"].values)
    unbounded = data.attrs.get(OCCASIONS_ATTR) == UNBOUNDED
    histories = None
    if (x.sum(axis=1) == 0).any():
        raise EstimInputError("the all-zero history cannot be observed")
    if MULTIPLICITY in data:
        if not terms.by_captures:
            raise EstimInputError(
                f"{terms.label} needs capture histories: its design depends on which occasions a history "
                'has, which an f_k table (layout = "frequencies") does not say. Fit M0 or an Mh model to it'
            )
        k = x.sum(axis=1).astype(float)
        offset = np.log(data[MULTIPLICITY].transpose("history").values.astype(np.float64))
        t = int(k.max()) if unbounded else x.shape[1]
        cells, y, h = [str(c) for c in data["history"].values], counts, x
    elif terms.by_captures:
        t = x.shape[1]
        k = np.arange(1, t + 1, dtype=float)
        y = np.zeros((len(strata), t))
        np.add.at(y, (slice(None), x.sum(axis=1) - 1), counts)
        offset = np.array([np.log(comb(t, int(j))) for j in k])
        h = (np.arange(t)[None, :] < k[:, None]).astype(np.int8)
        cells = [f"k={int(j)}" for j in k]
        if t <= MAX_FULL_OCCASIONS:
            every = all_histories(t)
            full = np.zeros((len(strata), len(every)))
            full[:, 2**t - 1 - _codes(x)] = counts
            histories = (full, every.sum(axis=1) - 1)
    else:
        t = x.shape[1]
        if t > MAX_FULL_OCCASIONS:
            raise EstimInputError(
                f"{terms.label} on {t} occasions would need all 2^{t} − 1 histories: at most "
                f"{MAX_FULL_OCCASIONS} occasions (M0 and the Mh models take any number, as an f_k table)"
            )
        h = all_histories(t)
        y = np.zeros((len(strata), len(h)))
        y[:, 2**t - 1 - _codes(x)] = counts
        k = h.sum(axis=1).astype(float)
        offset = np.zeros(len(h))
        cells = ["".join(map(str, row)) for row in h]
    cap, cap_names = _capture_columns(terms, h, k, names)
    inter, inter_names = _interaction_columns(terms, h, names)
    het, het_names = heterogeneity_columns(terms, k, t)
    if terms.heterogeneity == "chao" and t < 3:
        raise EstimInputError("Chao's lower-bound model needs at least 3 occasions")
    _check_range(terms, het[:, 0] if het.shape[1] == 1 else np.ones(1), t)
    matrix = np.column_stack([cap, inter, het])
    nonneg = np.array(
        [False] * (len(cap_names) + len(inter_names))
        + [terms.heterogeneity == "chao"] * len(het_names)
    )
    return Design(
        counts=y,
        matrix=matrix,
        offset=offset,
        terms=tuple(cap_names + inter_names + het_names),
        cells=tuple(cells),
        strata=strata,
        nonnegative=nonneg,
        occasions=t,
        model=terms,
        histories=histories,
    )


def _check_range(terms: Terms, column: np.ndarray, t: int) -> None:
    """Refuse a Poisson heterogeneity column θ^k − 1 whose values span more than `MAX_HETEROGENEITY_RANGE`
    (Poisson2 beyond 30 occasions). Its coefficient τ then acts on cells 2^30 times apart, and the maximum
    along τ is lost in rounding: on an f_k table over 36 to 44 occasions the fit stopped, as converged, 0.005
    below the log-likelihood's maximum (N̂ 176 where the MLE is 171), from 50 the existence programme failed;
    the Bayesian model, which scales the column by its largest value, would put τ's prior 10⁹ times too wide."""
    if terms.heterogeneity != "poisson":
        return
    values = np.abs(column[column != 0])
    if values.size and values.max() / values.min() > MAX_HETEROGENEITY_RANGE:
        theta = terms.theta_value
        raise EstimInputError(
            f"{terms.label} on {t} occasions: its heterogeneity column h(k) = {theta:g}^k − 1 spans "
            f"{values.min():.3g} to {values.max():.3g}, more than the 2^30 within which its fit is reliable "
            "in double precision (the likelihood's maximum along its coefficient is lost in rounding). Fit "
            'Mh_darroch, Mh_gamma35 or Mh_chao, or the loglinear family with heterogeneity = "poisson" and '
            "a theta nearer 1"
        )


def _codes(x: np.ndarray) -> np.ndarray:
    t = x.shape[1]
    return x.astype(np.int64) @ (np.int64(1) << np.arange(t - 1, -1, -1, dtype=np.int64))


def log_factorial(k: np.ndarray) -> np.ndarray:
    """log k! for the offset of an unbounded f_k table."""
    return np.array([lgamma(float(j) + 1) for j in np.asarray(k)])
