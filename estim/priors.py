"""Declarative, serialisable priors: ``Prior("Normal", mu=0, sigma=1.5)``.

A model function takes a mapping from parameter name to `Prior`; every parameter has a documented default that
a spec (models/*.toml) can override field by field. ``Prior.to_dict()`` / ``Prior.from_dict()`` round-trip
through TOML and JSON so a saved fit records exactly the priors it used.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import pymc as pm

from estim.errors import EstimInputError

# The distributions a spec may name, with their required parameters (PyMC parameterisation).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "StudentT": ("nu", "mu", "sigma"),
    "HalfStudentT": ("nu", "sigma"),
    "Exponential": ("lam",),
    "Gamma": ("alpha", "beta"),
    "LogNormal": ("mu", "sigma"),
    "Beta": ("alpha", "beta"),
    # logit x ~ Normal(mu, sigma) on (0, 1): for small x and a wide sigma nearly log-uniform (flat in logit x
    # is ∝ 1/(x(1 − x))), with Gaussian tails in logit x
    "LogitNormal": ("mu", "sigma"),
    "Uniform": ("lower", "upper"),
    # log x ~ Uniform(log lower, log upper): every order of magnitude between the bounds equally likely, the
    # scale-invariant prior for a positive level the data pin only through a product with another parameter
    "LogUniform": ("lower", "upper"),
    # x + offset ~ LogUniform(offset, upper + offset) on (0, upper): log-uniform where x ≫ offset, flat below,
    # with no edge at a lower bound (density 1/((x + offset) log((upper + offset)/offset)))
    "OffsetLogUniform": ("offset", "upper"),
    "Dirichlet": ("a",),
    "ZeroSumNormal": (
        "sigma",
    ),  # effects that sum to zero over their dims (identifiable beside a level)
}

# Parameters that must be positive wherever they are numbers (a scale, degrees of freedom, a rate, a shape).
POSITIVE_PARAMETERS = frozenset({"sigma", "nu", "lam", "alpha", "beta", "a"})

# The values each law puts its mass on. A spec's prior must keep its parameter's (the default's): a HalfNormal
# on a logit forces it ≥ 0 whatever the data say (a confident, wrong estimate), and a Normal on a probability
# or a standard deviation proposes values outside it (NaN, or a sampler that cannot start). Uniform,
# LogUniform and OffsetLogUniform have bounds instead: theirs must lie inside the parameter's support.
SUPPORTS: dict[str, str] = {
    "Normal": "real",
    "StudentT": "real",
    "HalfNormal": "positive",
    "HalfStudentT": "positive",
    "Exponential": "positive",
    "Gamma": "positive",
    "LogNormal": "positive",
    "Beta": "unit",
    "LogitNormal": "unit",
    "ZeroSumNormal": "zero-sum",
    "Dirichlet": "simplex",
}
_SUPPORT_WORDS = {
    "real": "any real number (a location, a logit, a log-rate, an effect)",
    "positive": "positive numbers (a standard deviation, a rate, a dispersion)",
    "unit": "probabilities between 0 and 1",
    "zero-sum": "effects that sum to zero",
    "simplex": "proportions that sum to one",
}
_SUPPORT_LAWS = {
    "real": "Normal or StudentT (or a Uniform with bounds)",
    "positive": "HalfNormal, HalfStudentT, Exponential, Gamma, LogNormal or LogUniform",
    "unit": "Beta or LogitNormal (or a Uniform between 0 and 1)",
    "zero-sum": "ZeroSumNormal",
    "simplex": "Dirichlet",
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution by PyMC name and parameters."""

    distribution: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters: Any) -> None:
        if distribution not in DISTRIBUTIONS:
            raise EstimInputError(
                f"unknown prior distribution {distribution!r}{_meant(distribution, DISTRIBUTIONS)}; "
                f"known: {', '.join(DISTRIBUTIONS)}"
            )
        missing = [p for p in DISTRIBUTIONS[distribution] if p not in parameters]
        extra = [p for p in parameters if p not in DISTRIBUTIONS[distribution]]
        if missing or extra:
            hint = _meant(extra[0], missing) if len(extra) == 1 else ""
            raise EstimInputError(
                f"prior {distribution} takes parameters {', '.join(DISTRIBUTIONS[distribution])}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}{hint}" if extra else "")
            )
        _check_values(distribution, parameters)
        if distribution in ("LogUniform", "OffsetLogUniform"):
            names = DISTRIBUTIONS[distribution]
            if not all(
                isinstance(parameters[n], (int, float)) and not isinstance(parameters[n], bool)
                for n in names
            ):
                raise EstimInputError(
                    f"prior {distribution} takes numbers for {', '.join(names)}; got "
                    + ", ".join(f"{n}={parameters[n]!r}" for n in names)
                )
        if distribution == "LogUniform" and not (
            0 < float(parameters["lower"]) < float(parameters["upper"])
        ):
            raise EstimInputError(
                f"prior LogUniform needs 0 < lower < upper; got lower={parameters['lower']}, "
                f"upper={parameters['upper']}"
            )
        if distribution == "OffsetLogUniform" and not (
            0 < float(parameters["offset"]) and 0 < float(parameters["upper"])
        ):
            raise EstimInputError(
                f"prior OffsetLogUniform needs offset > 0 and upper > 0; got offset="
                f"{parameters['offset']}, upper={parameters['upper']}"
            )
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parameters", dict(parameters))

    def create(self, name: str, **kwargs: Any) -> Any:
        """Add the random variable to the model in context (``dims=``, ``shape=`` pass through). A LogUniform
        is sampled as ``name_log`` ~ Uniform(log lower, log upper), with ``name`` its exponential (an
        OffsetLogUniform: ``name_log`` is log(x + offset))."""
        if self.distribution in ("LogUniform", "OffsetLogUniform"):
            offset, lower, upper = self.log_uniform_bounds()
            log_value = pm.Uniform(f"{name}_log", np.log(lower), np.log(upper), **kwargs)
            return pm.Deterministic(name, pm.math.exp(log_value) - offset, dims=kwargs.get("dims"))
        return getattr(pm, self.distribution)(name, **self.parameters, **kwargs)

    def bounds(self) -> tuple[float, float] | None:
        """The interval a bounded law (Uniform, LogUniform, OffsetLogUniform) puts its mass on; None for the
        others, and for bounds that are not numbers (names of other parameters)."""
        p = self.parameters
        names = {"Uniform": ("lower", "upper"), "LogUniform": ("lower", "upper")}.get(
            self.distribution
        )
        if self.distribution == "OffsetLogUniform":
            return (0.0, float(p["upper"]))
        if names is None or not all(_is_number(p[n]) for n in names):
            return None
        return (float(p[names[0]]), float(p[names[1]]))

    def support(self) -> str | None:
        """Which values the law puts its mass on: "real", "positive", "unit", "zero-sum" or "simplex" (a
        bounded law: the narrowest of real, positive and unit holding its bounds); None when unknown."""
        if self.distribution in SUPPORTS:
            return SUPPORTS[self.distribution]
        bounds = self.bounds()
        if bounds is None:
            return None
        lower, upper = bounds
        return "unit" if lower >= 0 and upper <= 1 else "positive" if lower >= 0 else "real"

    def log_uniform_bounds(self) -> tuple[float, float, float]:
        """(offset, lower, upper) of a LogUniform or OffsetLogUniform: x + offset is log-uniform on (lower,
        upper)."""
        p = {k: float(v) for k, v in self.parameters.items()}
        if self.distribution == "LogUniform":
            return 0.0, p["lower"], p["upper"]
        if self.distribution == "OffsetLogUniform":
            return p["offset"], p["offset"], p["upper"] + p["offset"]
        raise ValueError(f"{self} is not log-uniform")

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, **self.parameters}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prior:
        d = dict(d)
        if "distribution" not in d:
            raise EstimInputError(f"a prior needs a 'distribution' field (got {sorted(d)})")
        return cls(d.pop("distribution"), **d)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.distribution}({args})"


def merge_priors(
    defaults: Mapping[str, Prior], overrides: Mapping[str, Prior] | None
) -> dict[str, Prior]:
    """Defaults with overrides applied; an override for a parameter the model lacks is an error."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise EstimInputError(
            f"priors given for parameters the model does not have: {', '.join(unknown)}; "
            f"it has: {', '.join(sorted(defaults))}"
        )
    return {**defaults, **overrides}


class _Watched(Prior):
    """A prior that notes its name in a set when anything reads it (its law, its parameters, `create`)."""

    def __getattribute__(self, attr: str) -> Any:
        if not attr.startswith("_"):
            watch = object.__getattribute__(self, "__dict__").get("_watch")
            if watch is not None:
                watch[0].add(watch[1])
        return object.__getattribute__(self, attr)


def watched(priors: Mapping[str, Prior]) -> tuple[dict[str, Prior], set[str]]:
    """Copies of `priors` (equal in all but their class) and the set of the names of those read since: a
    family's `build` given them shows which of a spec's priors its model uses. One it never reads (a
    pooling scale in an unpooled model) has no effect on the fit."""
    read: set[str] = set()
    copies: dict[str, Prior] = {}
    for name, prior in priors.items():
        copy = _Watched(prior.distribution, **prior.parameters)
        object.__setattr__(copy, "_watch", (read, name))
        copies[name] = copy
    return copies, read


def _meant(given: Any, known: Any) -> str:
    """`` (did you mean `x`?)`` for the name in `known` closest to `given` (`difflib.get_close_matches`, case
    and spaces ignored: "Halfnormal", "Half Normal" → HalfNormal), as the spec reader's hints
    (`estim.errors.did_you_mean`); "" when none is close."""
    if not isinstance(given, str):
        return ""
    folded = {str(k).lower().replace(" ", ""): str(k) for k in known}
    close = difflib.get_close_matches(given.lower().replace(" ", ""), list(folded), n=1)
    return f" (did you mean `{folded[close[0]]}`?)" if close else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_values(distribution: str, parameters: Mapping[str, Any]) -> None:
    """The numbers among a law's parameters: finite, positive where the law needs it (`POSITIVE_PARAMETERS`),
    Uniform bounds in order. Other values (a hyperparameter's name, a model variable) are the family's."""
    for name, value in parameters.items():
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool):
                raise EstimInputError(
                    f"prior {distribution}: {name} = {str(v).lower()} is not a number"
                )
            if not _is_number(v):
                continue
            if not math.isfinite(float(v)):
                raise EstimInputError(f"prior {distribution}: {name} must be finite, got {v}")
            if name in POSITIVE_PARAMETERS and float(v) <= 0:
                raise EstimInputError(
                    f"prior {distribution}: {name} must be > 0, got {v}"
                    + (" (a scale: its size, without a sign)" if name == "sigma" else "")
                )
    bounds = [parameters.get(k) for k in ("lower", "upper")]
    if distribution == "Uniform" and all(map(_is_number, bounds)) and not bounds[0] < bounds[1]:
        raise EstimInputError(
            f"prior Uniform needs lower < upper; got lower={bounds[0]}, upper={bounds[1]}"
        )


def check_override(name: str, prior: Prior, defaults: Mapping[str, Prior]) -> None:
    """A spec's prior for parameter `name` against the family's `defaults` (`EstimInputError` saying what to
    write instead): its parameters are numbers (a list of them for a Dirichlet's ``a``; the name of another
    of the model's parameters only in a family whose own priors name them, as the border model's hierarchy),
    and it keeps the parameter's support (`SUPPORTS`)."""
    references = {v for p in defaults.values() for v in p.parameters.values() if isinstance(v, str)}
    for key, value in prior.parameters.items():
        if isinstance(value, str) and references and value in defaults and value != name:
            continue
        listed = prior.distribution == "Dirichlet" and key == "a" and isinstance(value, list)
        if listed and value and all(map(_is_number, value)):
            continue
        if not _is_number(value):
            named = (
                f", or the name of another of the model's parameters ({', '.join(sorted(defaults))})"
                if references
                else ""
            )
            quoted = " (written without quotes)" if isinstance(value, str) else ""
            shown = f"'{value}'" if isinstance(value, str) else repr(value)
            raise EstimInputError(
                f"{key} = {shown}: expected a number{quoted}{named}"
                if not listed
                else f"{key} = {value!r}: expected a list of positive numbers"
            )
    default = defaults[name]
    wanted, given = default.support(), prior.support()
    if wanted is None or given is None or wanted == given:
        return
    bounded = prior.bounds() is not None
    inside = bounded and (
        wanted == "real"
        or (wanted == "positive" and given in ("positive", "unit"))
        or (wanted == "unit" and given == "unit")
    )
    if inside:
        return
    if wanted in ("real", "positive") and given in ("positive", "unit"):
        why = (
            "the data could not move it outside the prior's range, so the estimate would sit at the "
            "prior's edge, not where the data put it"
        )
    elif given in ("real", "positive", "unit") and wanted in ("positive", "unit"):
        why = "it would propose values the model cannot take (a negative scale, a probability above 1)"
    else:
        why = "it is a prior for another kind of parameter"
    raise EstimInputError(
        f"a {prior.distribution} prior gives {_SUPPORT_WORDS[given]}, but {name} takes "
        f"{_SUPPORT_WORDS[wanted]} (its default is {default}): {why}; use {_SUPPORT_LAWS[wanted]}"
    )
