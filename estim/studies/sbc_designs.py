"""The designs of simulation-based calibration (`estim.studies.sbc`): per family, the proper prior on N, the
free parameters drawn from the family's default priors, the simulator of its data at a truth, and P(unseen) in
the model's own terms.

The prior on N (`PopulationPrior`) replaces the families' improper p(N) ∝ 1/N: N | Λ ~ Poisson(Λ), Λ ~
Gamma(a, rate b), so N ~ NegativeBinomial(a, b/(1 + b)); why it keeps N exactly marginalised, and the law of N
given the parameters it implies, are in `estim.studies.sbc`. Data are simulated by the families' own recovery
simulators (people one by one: `estim.families.single_register.recovery`, `estim.families.closed.recovery`) or,
for the latent classes, by drawing each person's class and lists here; never by the model's likelihood code,
which SBC checks. Single-register data are padded with zero cells to k = 8, 32, 128, … so that a few compiled
shapes serve every dataset (a zero cell adds nothing to the likelihood).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.special
import scipy.stats
import xarray as xr

from estim.families import kernels
from estim.families.closed.recovery import OCCASIONS, history_table, simulate_histories
from estim.families.closed.recovery import padded_history_data as padded_histories
from estim.families.lists import latent_class
from estim.families.lists.simulate import patterns
from estim.families.registry import load_all
from estim.families.single_register.binomial import binomial_data
from estim.families.single_register.data import OBSERVED as FREQUENCY
from estim.families.single_register.recovery import padded_frequency_data, simulate_counts
from estim.priors import Prior
from estim.studies.lists_recovery import padded_history_data as padded_lists
from estim.studies.sbc_loglinear import LogLinearLaw, sbc_priors, simulated_data

MIN_SEEN = 1  # datasets with fewer people seen are redrawn (the families refuse an empty table)
MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class PopulationPrior:
    """N | Λ ~ Poisson(Λ), Λ ~ Gamma(shape, rate = shape/mean): N ~ NegativeBinomial(shape, rate/(1 + rate)),
    a proper prior with the given mean and variance mean + mean²/shape."""

    mean: float
    shape: float = 4.0

    @property
    def rate(self) -> float:
        return self.shape / self.mean

    def logpmf(self, n: Any) -> Any:
        """log P(N = n)."""
        return scipy.stats.nbinom.logpmf(n, self.shape, self.rate / (1.0 + self.rate))

    def draw(self, rng: np.random.Generator) -> int:
        """One N, as the gamma–Poisson mixture it is."""
        return int(rng.poisson(rng.gamma(self.shape, 1.0 / self.rate)))

    def log_seen(self, n: Any, log_q: Any, xp: Any = np) -> Any:
        """log P(n seen | θ) up to a constant, q = P(seen | θ): n log q − (n + a) log(b + q)."""
        return n * log_q - (n + self.shape) * xp.log(self.rate + xp.exp(log_q))

    def unseen(self, n: int, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draws of N − n given θ (q = P(seen | θ) per draw) and n seen: NegBin(a + n, (b + q)/(b + 1))."""
        return rng.negative_binomial(self.shape + n, (self.rate + q) / (self.rate + 1.0))

    def describe(self) -> str:
        sd = float(np.sqrt(self.mean + self.mean**2 / self.shape))
        return (
            f"N ~ NegativeBinomial (Poisson with Gamma({self.shape:g}, rate {self.rate:g}) mean): "
            f"mean {self.mean:g}, sd {sd:.0f}"
        )


@dataclass(frozen=True)
class SbcDesign:
    """How one family is calibrated: the proper prior on N, the free parameters (name → shape) drawn from
    the family's default priors, the data simulated at a truth, P(unseen) in the model's terms, and the
    sampler settings. ``priors`` replace the family's defaults both in the truth and in the fit (where a
    default is too wide to simulate sensible data from). ``draw_truth`` replaces drawing ``parameters`` from the priors (latent classes);
    ``truth_quantities`` / ``posterior_quantities`` replace ranking the free parameters themselves."""

    family: str
    population: PopulationPrior
    parameters: Mapping[str, tuple[int, ...]]
    simulate: Callable[[np.random.Generator, int, Mapping[str, np.ndarray]], xr.Dataset | None]
    log_p_unseen: Callable[[pm.Model], Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    draw_truth: Callable[[np.random.Generator], dict[str, np.ndarray]] | None = None
    truth_quantities: Callable[[Mapping[str, np.ndarray]], dict[str, float]] | None = None
    posterior_quantities: (
        Callable[[xr.Dataset, np.random.Generator], dict[str, np.ndarray]] | None
    ) = None
    priors: Mapping[str, Prior] = field(default_factory=dict)
    backend: str = "numba"
    draws: int = 500
    tune: int = 500
    chains: int = 2
    target_accept: float = 0.9


# --------------------------------------------------------------------------------------------------------------
# truths and data


def draw_prior(prior: Prior, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draws of a declarative prior in NumPy (independent of PyMC's implementation, which SBC checks)."""
    p = prior.parameters
    d = prior.distribution
    if d == "Normal":
        return rng.normal(p["mu"], p["sigma"], shape)
    if d == "HalfNormal":
        return np.abs(rng.normal(0.0, p["sigma"], shape))
    if d == "Beta":
        return rng.beta(p["alpha"], p["beta"], shape)
    if d == "Gamma":
        return rng.gamma(p["alpha"], 1.0 / p["beta"], shape)
    if d == "Exponential":
        return rng.exponential(1.0 / p["lam"], shape)
    if d == "LogNormal":
        return np.exp(rng.normal(p["mu"], p["sigma"], shape))
    if d == "Uniform":
        return rng.uniform(p["lower"], p["upper"], shape)
    if d == "LogitNormal":
        return 1.0 / (1.0 + np.exp(-rng.normal(p["mu"], p["sigma"], shape)))
    if d in ("LogUniform", "OffsetLogUniform"):
        offset, lower, upper = prior.log_uniform_bounds()
        return np.exp(rng.uniform(np.log(lower), np.log(upper), shape)) - offset
    raise ValueError(f"no SBC draw for prior {prior}")


def labelled(name: str, values: np.ndarray, leading: int) -> dict[str, np.ndarray]:
    """A parameter's elements as named quantities: ``name`` when it has one element, else ``name[1]`` …
    (``leading`` axes are draws and stay)."""
    flat = np.asarray(values).reshape(*np.shape(values)[:leading], -1)
    if flat.shape[-1] == 1:
        return {name: flat[..., 0]}
    return {f"{name}[{j + 1}]": flat[..., j] for j in range(flat.shape[-1])}


def _k_padding(k_max: int) -> int:
    """Single-register data are padded to 8, 32, 128, … cells: a few compiled shapes serve every dataset."""
    size = 8
    while size < k_max:
        size *= 4
    return size


def _register(family: str) -> Callable[..., xr.Dataset]:
    def simulate(
        rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
    ) -> xr.Dataset | None:
        params = {"lambda": float(np.exp(truth["beta_intercept"]))}
        params.update({k: float(truth[k]) for k in ("alpha", "omega") if k in truth})
        k = simulate_counts(family, rng, size, params)
        counts = np.bincount(k[k >= 1], minlength=2)[1:]
        if counts.sum() < MIN_SEEN:
            return None
        table = pd.DataFrame({"k": np.arange(1, len(counts) + 1), "n": counts})
        return padded_frequency_data(table[table["n"] > 0], _k_padding(len(counts)), [])

    return simulate


def _closed(family: str) -> Callable[..., xr.Dataset]:
    def simulate(
        rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
    ) -> xr.Dataset | None:
        expit = scipy.special.expit
        logit = np.ravel(truth["logit_p"])
        params: dict[str, float] = {}
        if logit.size == OCCASIONS:
            params.update({f"p{t + 1}": float(expit(x)) for t, x in enumerate(logit)})
        else:
            params["p"] = params["p_low"] = float(expit(logit[0]))
        if "sigma_h" in truth:
            params["sigma_h"] = float(np.ravel(truth["sigma_h"])[0])
        if "behaviour" in truth:
            params["behaviour"] = float(np.ravel(truth["behaviour"])[0])
            params["c"] = float(expit(logit[0] + params["behaviour"]))
        if "class_gap" in truth:
            params["p_high"] = float(expit(logit[0] + np.ravel(truth["class_gap"])[0]))
            params["weight_low"] = 1.0 - float(np.ravel(truth["mixture_weight"])[0])
        x = simulate_histories(family, rng, size, params)
        if int(x.any(axis=1).sum()) < MIN_SEEN:
            return None
        return padded_histories(history_table(x))

    return simulate


BINOMIAL_TRIALS = 6  # ztbinomial: everyone had 6 occasions


def _binomial_simulate(
    rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
) -> xr.Dataset | None:
    """ztbinomial: each person seen K ~ Binomial(t, p) times, logit p = beta_intercept; k = 1…t, zeros kept."""
    t = BINOMIAL_TRIALS
    k = rng.binomial(t, scipy.special.expit(float(truth["beta_intercept"])), size)
    counts = np.bincount(k, minlength=t + 1)[1:]
    if counts.sum() < MIN_SEEN:
        return None
    table = pd.DataFrame({"k": np.arange(1, t + 1), "n": counts})
    data = binomial_data(table[table["n"] > 0], times_seen="k", count="n", trials=t)
    f = np.zeros((data.sizes["pattern"], t), dtype=np.int64)
    f[:, : data.sizes["k"]] = data[FREQUENCY].values
    out = data.drop_vars(FREQUENCY).drop_dims("k").assign_coords(k=np.arange(1, t + 1))
    out[FREQUENCY] = (("pattern", "k"), f)
    out.attrs.update(data.attrs)
    return out


def _binomial_log_p_unseen(model: pm.Model) -> Any:
    # P(0) = (1 − p)^t, log(1 − p) = −softplus(logit p)
    return -BINOMIAL_TRIALS * pt.softplus(model["beta_intercept"])


# zelterman: the family's likelihood is Binomial(f_2 | f_1 + f_2, λ/(2 + λ)), λ = 2e^η (η = beta_intercept), and
# its P(unseen) e^−λ; people seen 3+ times enter N only through n. The law simulated (derivation in
# `_zelterman_simulate`): unseen with e^−λ; a person seen has K ∈ {1, 2} with ψ, else K = 3 + Poisson(1); given
# K ∈ {1, 2}, K = 2 with λ/(2 + λ). ψ ~ Beta(2, 2), a nuisance the model does not have.
ZELTERMAN_PSI = (2.0, 2.0)  # ψ ~ Beta(2, 2), drawn with the truth, independent of η and N
ZELTERMAN_MORE = 1.0  # people seen 3+ times: K = 3 + Poisson(1)


def _zelterman_truth(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """η from the family's default prior (in NumPy), and the nuisance ψ ~ Beta(2, 2), independently."""
    eta = draw_prior(load_all()["zelterman"].default_priors["beta_intercept"], (), rng)
    return {"beta_intercept": eta, "psi": np.asarray(rng.beta(*ZELTERMAN_PSI))}


def _zelterman_simulate(
    rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
) -> xr.Dataset | None:
    """zelterman: each of N people unseen with e^−λ (λ = 2e^η); a person seen falls in K ∈ {1, 2} with ψ, then
    K = 2 with λ/(2 + λ); else K = 3 + Poisson(1). The data are f_1, f_2, f_3, …

    Why the model's posterior is this law's (with N ~ the SBC prior, η ~ its prior, ψ ~ Beta(2, 2) independent).
    With n the people seen, m = f_1 + f_2 and q = 1 − e^−λ, the law of the data given (η, ψ, N) factorises as
    Binomial(n | N, q) · Binomial(m | n, ψ) · Binomial(f_2 | m, λ/(2 + λ)) · P(f_3, f_4, … | n − m), the last
    free of every parameter. Integrating N out under the gamma–Poisson prior turns the first factor into
    NegBin(n; a, b/(b + q)), the runner's potential (it reads n as the sum of all cells, 3+ included, and q from
    `log_p_unseen` = −λ, the family's own P(unseen)). So p(η, ψ | y) ∝ p(η) NegBin(n; η) Binomial(f_2 | m, η) ·
    p(ψ) Binomial(m | n, ψ): η and ψ are independent a posteriori, and η's posterior is exactly the model's
    (its likelihood, f_2 given f_1 + f_2, times the potential, times the default prior). Given η and y, N enters
    only the first factor, so N − n | η, y ~ NegBin(a + n, (b + q)/(b + 1)), the runner's draw, whatever ψ:
    Zelterman's N = n/(1 − e^−λ) extrapolation of every person seen, with the proper prior. ψ is marginalised,
    not ranked; the ranked N, η and loglik (a function of η and y) are exchangeable with their posterior draws.
    """
    lam = 2.0 * np.exp(float(truth["beta_intercept"]))
    seen = rng.binomial(size, -np.expm1(-lam))
    low = rng.binomial(seen, float(truth["psi"]))
    twice = rng.binomial(low, lam / (2.0 + lam))
    more = 3 + rng.poisson(ZELTERMAN_MORE, seen - low)
    counts = np.bincount(more, minlength=3)[1:]
    counts[:2] = (low - twice, twice)
    if counts.sum() < MIN_SEEN:
        return None
    table = pd.DataFrame({"k": np.arange(1, len(counts) + 1), "n": counts})
    return padded_frequency_data(table[table["n"] > 0], _k_padding(len(counts)), [])


def _zelterman_log_p_unseen(model: pm.Model) -> Any:
    return kernels.zelterman_log_p0(model["beta_intercept"], pt)  # −λ = −2e^η


def _single_log_p_unseen(base: str) -> Callable[[pm.Model], Any]:
    def log_p_unseen(model: pm.Model) -> Any:
        named = model.named_vars
        return kernels.log_p0(
            base, model["beta_intercept"], pt, named.get("alpha"), named.get("omega")
        )

    return log_p_unseen


def _model_p_unseen(model: pm.Model) -> Any:
    # the closed and latent-class models expose P(unseen) per stratum (one stratum here)
    return pt.log(model["p_unseen"][0])


# --------------------------------------------------------------------------------------------------------------
# the latent-class design: DP stick-breaking classes, lists independent within a class

LISTS = 4
CLASSES = 10  # the family's default truncation
LIST_NAMES = tuple("ABCD")


def _latent_class_truth(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The generative form of LCMCR's prior: α ~ Gamma(a, b), w_k = −log(1 − v_k) ~ Exponential(α) (v_k ~
    Beta(1, α), drawn as w to stay finite when α is tiny), λ_kj ~ the class_capture prior."""
    priors = latent_class.DEFAULT_PRIORS
    alpha = draw_prior(priors["concentration"], (), rng)
    w = rng.exponential(1.0, CLASSES - 1) / alpha
    capture = draw_prior(priors["class_capture"], (CLASSES, LISTS), rng)
    log_rest = -w  # log(1 − v_k)
    log_v = np.log(-np.expm1(-w))
    log_weight = np.concatenate([log_v, [0.0]]) + np.concatenate([[0.0], np.cumsum(log_rest)])
    weight = np.exp(log_weight)
    return {
        "log_cut": np.log(w)[None, :],
        "class_capture": capture[None, :, :],
        "concentration": np.asarray(alpha),
        "class_weight": weight,
        "p_unseen": np.asarray(np.sum(weight * np.prod(1.0 - capture, axis=1))),
        "list_capture": weight @ capture,
    }


def _latent_class_simulate(
    rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
) -> xr.Dataset | None:
    weight = np.asarray(truth["class_weight"], dtype=float)
    klass = rng.choice(CLASSES, size=size, p=weight / weight.sum())
    x = rng.random((size, LISTS)) < np.asarray(truth["class_capture"])[0][klass]
    code = x.astype(np.int64) @ (np.int64(1) << np.arange(LISTS, dtype=np.int64))
    counts = np.bincount(code, minlength=1 << LISTS)
    seen = np.arange(1, 1 << LISTS)
    table = pd.DataFrame(patterns(LISTS)[seen].astype(np.int64), columns=list(LIST_NAMES))
    if counts[seen].sum() < MIN_SEEN:
        return None
    table["count"] = counts[seen]
    return padded_lists(table, LIST_NAMES)


def _latent_class_quantities(truth: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {
        "p_unseen": float(truth["p_unseen"]),
        **{k: float(v) for k, v in labelled("list_capture", truth["list_capture"], 0).items()},
        "concentration": float(truth["concentration"]),
    }


def _latent_class_posterior(post: xr.Dataset, rng: np.random.Generator) -> dict[str, np.ndarray]:
    alpha = latent_class.concentration(post, rng).transpose("chain", "draw", "stratum").values
    capture = post["list_capture"].transpose("chain", "draw", "stratum", "list").values
    return {
        "p_unseen": post["p_unseen"].transpose("chain", "draw", "stratum").values[..., 0],
        **labelled("list_capture", capture, 2),
        "concentration": alpha[..., 0],
    }


# --------------------------------------------------------------------------------------------------------------
# the log-linear families: people spread over the 2^t histories with the P(h) the model states
# (`estim.studies.sbc_loglinear`)

# The SBC prior of the scaled effects (`sbc_loglinear.sbc_priors`) replaces the engine's Normal(0, 30) in the
# truth and in the fit; Chao's η keep the default HalfNormal(3).
# the loglinear design: 4 lists, Mt + A:B + B:C + C:D
LOGLINEAR_LISTS = (4, ((0, 1), (1, 2), (2, 3)))


def _padded_occasions(table: pd.DataFrame) -> xr.Dataset:
    return padded_histories(table)


def _padded_lists(table: pd.DataFrame) -> xr.Dataset:
    return padded_lists(table.rename(columns={"n": "count"}), LIST_NAMES)


def _loglinear(law: LogLinearLaw) -> Callable[..., xr.Dataset | None]:
    lists = law.occasions == LISTS and law.capture == "Mt" and bool(law.interactions)
    names = list(LIST_NAMES) if lists else [f"o{t + 1}" for t in range(law.occasions)]
    padded = _padded_lists if lists else _padded_occasions

    def simulate(
        rng: np.random.Generator, size: int, truth: Mapping[str, np.ndarray]
    ) -> xr.Dataset | None:
        return simulated_data(law, rng, size, truth, names, padded, MIN_SEEN)

    return simulate


def _loglinear_design(
    family: str, law: LogLinearLaw, population: PopulationPrior, **options: Any
) -> SbcDesign:
    free, chao = law.scales()
    parameters = {"effect": (1, free.size)}
    if chao.size:
        parameters["eta"] = (1, chao.size)
    return SbcDesign(
        family=family,
        population=population,
        parameters=parameters,
        simulate=_loglinear(law),
        log_p_unseen=_model_p_unseen,
        options=options,
        priors=sbc_priors(law),
    )


def _heterogeneity_designs(population: PopulationPrior) -> dict[str, SbcDesign]:
    out = {}
    for base, capture in (("Mh", "M0"), ("Mth", "Mt")):
        for suffix, het in (
            ("chao", "chao"),
            ("darroch", "darroch"),
            ("gamma35", "gamma"),
            ("poisson2", "poisson"),
        ):
            law = LogLinearLaw(OCCASIONS, capture, het)
            out[f"{base}_{suffix}"] = _loglinear_design(f"{base}_{suffix}", law, population)
    return out


# --------------------------------------------------------------------------------------------------------------
# the designs

_REGISTER = PopulationPrior(mean=1000.0)
_CLOSED = PopulationPrior(mean=200.0)
_TIME = (1, OCCASIONS)


def _register_design(family: str, base: str, *extra: str) -> SbcDesign:
    return SbcDesign(
        family=family,
        population=_REGISTER,
        parameters={"beta_intercept": (), **{name: () for name in extra}},
        simulate=_register(family),
        log_p_unseen=_single_log_p_unseen(base),
    )


def _closed_design(family: str, **parameters: tuple[int, ...]) -> SbcDesign:
    return SbcDesign(
        family=family,
        population=_CLOSED,
        parameters=parameters,
        simulate=_closed(family),
        log_p_unseen=_model_p_unseen,
    )


DESIGNS: dict[str, SbcDesign] = {
    "ztpoisson": _register_design("ztpoisson", "poisson"),
    "ztgeometric": _register_design("ztgeometric", "geometric"),
    "ztnegbin": _register_design("ztnegbin", "negbin", "alpha"),
    "oiztpoisson": _register_design("oiztpoisson", "poisson", "omega"),
    "oiztgeometric": _register_design("oiztgeometric", "geometric", "omega"),
    "M0": _closed_design("M0", logit_p=(1,)),
    "Mt": _closed_design("Mt", logit_p=_TIME),
    "Mb": _closed_design("Mb", logit_p=(1,), behaviour=(1,)),
    "Mh_logitnormal": _closed_design("Mh_logitnormal", logit_p=(1,), sigma_h=(1,)),
    "Mh_mixture": _closed_design("Mh_mixture", logit_p=(1,), class_gap=(1,), mixture_weight=(1,)),
    "Mth": _closed_design("Mth", logit_p=_TIME, sigma_h=(1,)),
    "Mtbh": _closed_design("Mtbh", logit_p=_TIME, behaviour=(1,), sigma_h=(1,)),
    "lists_latent_class": SbcDesign(
        family="lists_latent_class",
        population=PopulationPrior(mean=1000.0),
        parameters={"log_cut": (1, CLASSES - 1), "class_capture": (1, CLASSES, LISTS)},
        simulate=_latent_class_simulate,
        log_p_unseen=_model_p_unseen,
        options={"classes": CLASSES},
        draw_truth=_latent_class_truth,
        truth_quantities=_latent_class_quantities,
        posterior_quantities=_latent_class_posterior,
        # the family's own settings (estim.families.lists.latent_class): without them a fit diverges
        target_accept=latent_class.TARGET_ACCEPT,
        draws=1000,
    ),
    "ztbinomial": SbcDesign(
        family="ztbinomial",
        population=_CLOSED,
        parameters={"beta_intercept": ()},
        simulate=_binomial_simulate,
        log_p_unseen=_binomial_log_p_unseen,
    ),
    "zelterman": SbcDesign(
        family="zelterman",
        population=_REGISTER,
        parameters={"beta_intercept": ()},  # ψ is drawn with the truth but not ranked
        simulate=_zelterman_simulate,
        log_p_unseen=_zelterman_log_p_unseen,
        draw_truth=_zelterman_truth,
    ),
    **_heterogeneity_designs(_CLOSED),
    "loglinear": _loglinear_design(
        "loglinear",
        LogLinearLaw(LOGLINEAR_LISTS[0], "Mt", None, LOGLINEAR_LISTS[1]),
        PopulationPrior(mean=1000.0),
        capture="Mt",
        interactions=[[LIST_NAMES[i], LIST_NAMES[j]] for i, j in LOGLINEAR_LISTS[1]],
    ),
}
"""The families SBC covers, with their proper priors on N. The main run: ztpoisson, Mt, lists_latent_class."""


def simulate_replicate(
    design: SbcDesign, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], int, xr.Dataset, int]:
    """Truth, Ñ, data and the number of attempts: draws are repeated until at least `MIN_SEEN` people are
    seen (a condition on the data alone, which leaves the posterior, and SBC, unchanged)."""
    family = load_all()[design.family]
    priors = {**family.default_priors, **design.priors}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if design.draw_truth is not None:
            truth = design.draw_truth(rng)
        else:
            truth = {
                name: draw_prior(priors[name], shape, rng)
                for name, shape in design.parameters.items()
            }
        size = design.population.draw(rng)
        if size < MIN_SEEN:
            continue
        data = design.simulate(rng, size, truth)  # None: fewer than MIN_SEEN seen
        if data is not None:
            return truth, size, data, attempt
    raise RuntimeError(f"{design.family}: no dataset with anyone seen in {MAX_ATTEMPTS} draws")
