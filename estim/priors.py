"""Declarative, serialisable priors: ``Prior("Normal", mu=0, sigma=1.5)``.

A model function takes a mapping from parameter name to `Prior`; every parameter has a documented default that
a spec (models/*.toml) can override field by field. ``Prior.to_dict()`` / ``Prior.from_dict()`` round-trip
through TOML and JSON so a saved fit records exactly the priors it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Prior:
    """A prior distribution by PyMC name and parameters."""

    distribution: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters: Any) -> None:
        if distribution not in DISTRIBUTIONS:
            raise EstimInputError(
                f"unknown prior distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}"
            )
        missing = [p for p in DISTRIBUTIONS[distribution] if p not in parameters]
        extra = [p for p in parameters if p not in DISTRIBUTIONS[distribution]]
        if missing or extra:
            raise EstimInputError(
                f"prior {distribution} takes parameters {', '.join(DISTRIBUTIONS[distribution])}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
            )
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
