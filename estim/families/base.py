"""The interface every model family implements, and the registry the rest of estim reads.

A family is one module (or one folder) and one call to `register`. It declares everything the layers above
need, so that the spec reader, the fit runner, the reports, the CLI and the studies hold no branch on a
family's name:

* `DataKind` — the ``[data]`` fields of a spec it reads, their checks, and how a benchmark table or a record
  set becomes its sufficient statistics (families that take the same data share one `DataKind`);
* the model (`Family.build`), the draws of N (`Family.population`), maximum likelihood (`Family.mle`);
* optionally its own derived quantities after sampling, its own report (`FamilyReport`), and its simulator for
  parameter-recovery studies (`RecoveryDesign`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.options import Option, from_parameter
from estim.priors import Prior


class DataFieldError(EstimInputError):
    """A ``[data]`` field of a spec is wrong; ``field`` names it (the spec reader adds the file name)."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        self.message = message
        super().__init__(f"[data] {field_name}: {message}")


@dataclass(frozen=True)
class DataField:
    """One ``[data]`` field a family reads: a string, or a list of strings (``many=True``), or a value of
    another ``kind`` (``int``: a whole number, ``bool``: true or false), its type checked when a spec is read.

    ``hashed_at_default=False``: a field added after fits of its kind were saved, left out of the spec's
    canonical form (`estim.run.spec.DataSpec.to_dict`) while at its default, so those fits keep their hash."""

    name: str
    description: str
    many: bool = False
    default: Any = None
    kind: type = str
    hashed_at_default: bool = True


@dataclass(frozen=True)
class DataKind:
    """The data a family takes, and how a spec's ``[data]`` table turns into them.

    fields
        The ``[data]`` fields besides ``benchmark`` / ``records`` (which say where the data are).
    check(fields, source)
        Rules across fields, given every field (defaults filled) and the source, ``"benchmark"`` or
        ``"records"``; raises `DataFieldError`.
    from_benchmark(table, fields) -> xr.Dataset
        A shipped benchmark table (one row per individual or per cell) to sufficient statistics; None when the
        kind cannot be read from a table.
    from_records(records, fields) -> xr.Dataset
        A validated, pseudonymised `estim.records.RecordSet` to sufficient statistics; None when the kind
        cannot be computed from records.
    """

    name: str
    fields: tuple[DataField, ...]
    check: Callable[[Mapping[str, Any], str], None]
    from_benchmark: Callable[[pd.DataFrame, Mapping[str, Any]], xr.Dataset] | None = None
    from_records: Callable[[Any, Mapping[str, Any]], xr.Dataset] | None = None

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True)
class RecoveryDesign:
    """How a parameter-recovery study simulates datasets from the family's own generative model.

    truth
        The default true parameters, in the family's own parameterisation (documented by the family).
    population_size
        The default true N.
    simulate(rng, size, truth, covariate_effect) -> pd.DataFrame
        The observed table of one dataset of ``size`` people (the never-observed are left out).
    study_data(tables, covariates) -> list[xr.Dataset]
        Every dataset of a study as sufficient statistics of one common shape (padded with zero cells), so
        one compiled model serves them all.
    draws, tune, target_accept
        Sampler settings that pass the diagnostics gate on this family's studies (measured).
    covariate
        Whether the study can add a binary covariate with a given effect.
    """

    truth: Mapping[str, float]
    population_size: int
    simulate: Callable[..., pd.DataFrame]
    study_data: Callable[[list[pd.DataFrame], list[str]], list[xr.Dataset]]
    draws: int = 1000
    tune: int | None = None
    target_accept: float = 0.9
    covariate: bool = False


@dataclass(frozen=True)
class FamilyReport:
    """A family's own report of a saved fit, where the generic one (N, parameters, f_k checks) does not fit.

    tables(tree, prob, truth) -> dict: the summary's tables (JSON-able), ``truth`` a file of true values
    (simulated data) or None; format(tables) -> str; figure(tables) -> matplotlib Figure;
    check(tree, prob) -> dict: posterior predictive checks (JSON-able); format_check(check) -> str;
    check_figure(tree) -> matplotlib Figure. Figures are returned, never saved here.
    """

    tables: Callable[..., dict[str, Any]]
    format: Callable[[dict[str, Any]], str]
    figure: Callable[[dict[str, Any]], Any]
    check: Callable[..., dict[str, Any]]
    format_check: Callable[[dict[str, Any]], str]
    check_figure: Callable[[xr.DataTree], Any]


@dataclass(frozen=True)
class SensitivityDesign:
    """A family's prior-sensitivity report: which priors to vary, and the estimate to watch as they vary.

    variants
        Variant name -> prior overrides on top of the spec's own priors; the first is the spec itself ({}).
    variant_options
        Variant name -> overrides of the spec's ``[options]`` (e.g. an assumption fixed at another value),
        for the variants that change an option; a variant may change priors, options or both.
    headline(tree, data, prob) -> dict
        The estimate from one fit: ``median``, ``lower`` and ``upper`` of its central `prob` interval, and
        any further named numbers to show beside it.
    headline_name, extra_names
        Column titles of the estimate and of each further number (name -> title).
    varies, does_not_vary
        In words, for the report: what the variants change, and which assumptions they leave as they are (so
        that a small shift is not read as support for an assumption that was never varied).
    target_accept
        The variants sample at least at this acceptance rate: a prior that disagrees with the data pulls the
        sampler through regions where a step size adapted at a lower rate diverges.
    variant_sampler
        Variant name -> floors of its NUTS settings (``target_accept``, ``draws``, ``tune``) above the spec's,
        for a variant whose model is known to need more than the spec's first attempt (a person-level frailty:
        a funnel that the gate's retries would otherwise reach only at their third attempt, hours later).
    model_revision
        The family's model revision, written on every row (``model_revision``) so that a saved report made
        by an earlier form of the model can be told from a current one; None: the family keeps none.
    variant_chain_groups
        Variant name -> the number of groups its chains run in, each a fit saved as it finishes
        (`estim.studies.chain_groups`): for a variant longer than a machine can give it at one go.
    """

    variants: Mapping[str, Mapping[str, Prior]]
    headline: Callable[..., dict[str, float]]
    headline_name: str
    varies: str
    does_not_vary: str
    extra_names: Mapping[str, str] = field(default_factory=dict)
    target_accept: float = 0.9
    variant_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_revision: int | None = None
    variant_sampler: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    variant_chain_groups: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MLEResult:
    """A maximum-likelihood fit: population size with its standard error and 95 % interval.

    ``boundary`` is True when the maximum lies on the boundary of the parameter space (e.g. a negative
    binomial whose dispersion runs to its limit); then ``n_hat`` is not an estimate and must not be reported.
    ``ci95`` is the Wald interval N̂ ± 1.96 SE unless ``extra["ci_kind"]`` names another (the closed families:
    Chao's log-transformed interval, never below the n seen). ``profile``, where the family has a likelihood
    in N, is the profile-likelihood estimate and interval: ``{"n_hat": …, "ci95": (lower, upper),
    "method": "…"}`` (an end the likelihood does not bound is ``inf``).
    """

    n_hat: float
    se: float
    ci95: tuple[float, float]
    parameters: Mapping[str, float]
    loglik: float
    converged: bool
    boundary: bool = False
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    profile: Mapping[str, Any] | None = None

    @classmethod
    def no_estimate(
        cls,
        message: str,
        *,
        converged: bool,
        boundary: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> MLEResult:
        """A fit that gives no number: N̂, SE, interval and log-likelihood NaN, `message` saying why."""
        nan = float("nan")
        return cls(
            n_hat=nan,
            se=nan,
            ci95=(nan, nan),
            parameters={},
            loglik=nan,
            converged=converged,
            boundary=boundary,
            message=message,
            extra=dict(extra or {}),
        )


def interval_name(extra: Mapping[str, Any] | None) -> str:
    """The short name of an ML fit's ci95 for a report: "Wald" unless ``extra["ci_kind"]`` names another
    (its text before a colon, e.g. "log-transformed (Chao 1987)")."""
    kind = (extra or {}).get("ci_kind") or "Wald"
    return str(kind).split(":", 1)[0]


@dataclass(frozen=True)
class Family:
    """One named model.

    data: DataKind
        The data it takes (see `DataKind`).
    build(data, priors, **options) -> pm.Model
        The model with named dims/coords. Its observed variable is the per-cell likelihood of the sufficient
        statistics (named `observed_name`, one log-likelihood term per frequency cell or capture history, so
        LOO works); N does not appear as a random variable.
    population(data, posterior, rng, **options) -> xr.DataArray
        Draws of N (name "N", dims chain, draw[, stratum]) given the posterior draws of the parameters: the
        exact conditional law of N given the data and parameters under the family's prior on N.
    mle(data, **options) -> MLEResult
    default_priors: parameter name -> Prior (overridable by a spec).
    after_sampling(data, posterior, rng, **options) -> dict[str, xr.Dataset] | None
        Optional. The family's own derived quantities and checks after NUTS, replacing `population` and the
        generic PyMC predictive draws: a dict of DataTree groups ("posterior" entries are added to the
        posterior). Used when the per-cell arrays would be too large to keep for every draw.
    report: FamilyReport | None
        Optional. The family's own summary tables, checks and figures.
    recovery: RecoveryDesign | None
        Optional. The simulator of its parameter-recovery study.
    sensitivity: SensitivityDesign | None
        Optional. The priors its prior-sensitivity report varies, and the estimate it watches.
    bayesian: bool
        False for a family with only a maximum-likelihood mode (its `build` raises).
    ml: bool
        False for a family with only a Bayesian mode (its `mle` raises: latent classes, model averaging).
    gate_variables: tuple[str, ...] | None
        The posterior variables (besides N) the diagnostics gate reads; None: all of them. A family whose
        parameters are identified only up to relabelling (latent classes) names its label-invariant ones.
    gate_skip: tuple[str, ...]
        Posterior variables the gate does not read when it reads all the others, nor a summary lists: a
        sampler's auxiliary that is not identified (the border model's r = exp(−|v|²/2) samples v; the gate
        reads r), bookkeeping of the draws.
    estimates_posterior(posterior) -> xr.Dataset
        Optional. The posterior as the family's estimates read it, when that is not the sampler's draws as
        they are (the border model's fit averaged with r = 1); the summary lists its parameters from it.
    exact(data, priors, rng, draws, chains, **options) -> dict[str, xr.Dataset] | None
        Optional. For a family whose posterior is computed exactly (by enumeration or on a grid) rather than
        sampled: independent draws from it, as DataTree groups: "posterior" (N and anything else, dims
        chain × draw), "observed_data", optionally "posterior_predictive" and further groups of the family's
        own. The fit runner then builds no PyMC model and runs no sampler (`build` is never called).
    precheck(data, **options) -> dict | None
        Optional. A test of the model's assumptions on the data alone, made before sampling: None when it does
        not apply, else a dict with ``name``, ``passed`` and ``text`` (one line). A fit whose precheck fails
        is not made (`estim.run.fit.fit` raises `estim.errors.ModelRejected`); one that passes records it.
    options: tuple[Option | str, ...] | None
        The ``[options]`` it takes, for a family whose `build` takes ``**options``, each an `Option` (what its
        value may be: a boolean, a whole number or a number in a range, one of some strings) or a bare name
        (any value, the family checks it); None: those `build` names (`option_names`), typed by their
        annotations (`estim.families.options.from_parameter`). A spec giving another is refused when it is
        read, not ignored by one mode, and so is a value its `Option` does not allow (`option_specs`), and
        one given without the other options its `Option.only_with` needs (`idle_options_in`).
    idle_options: Mapping[str, str]
        Options that families sharing this one's model code take and this one would ignore, each with why
        (``nodes`` of the logit-normal integral, on M0: "M0 has no heterogeneity to integrate"): refused when
        a spec is read, saying so, rather than as unknown.
    data_idle_options(data, given) -> dict[str, str]
        Optional. The options of ``given`` (a spec's ``[options]`` as written, defaults not filled in) that
        ``data`` leave without effect whatever their value, each with what follows ``[options]`` in the
        refusal (the border model's terrain shift on sections of one terrain): known only with the data, so
        refused when the model is built (`estim.run.fit.build_model`; `idle_given_data`).
    """

    name: str
    description: str
    data: DataKind
    build: Callable[..., pm.Model]
    population: Callable[..., xr.DataArray]
    mle: Callable[..., MLEResult]
    default_priors: Mapping[str, Prior]
    observed_name: str
    after_sampling: Callable[..., dict[str, xr.Dataset]] | None = None
    report: FamilyReport | None = None
    recovery: RecoveryDesign | None = None
    sensitivity: SensitivityDesign | None = None
    bayesian: bool = True
    ml: bool = True
    gate_variables: tuple[str, ...] | None = None
    gate_skip: tuple[str, ...] = ()
    estimates_posterior: Callable[[xr.Dataset], xr.Dataset] | None = None
    exact: Callable[..., dict[str, xr.Dataset]] | None = None
    precheck: Callable[..., dict[str, Any] | None] | None = None
    options: tuple[Option | str, ...] | None = None
    idle_options: Mapping[str, str] = field(default_factory=dict)
    data_idle_options: Callable[[xr.Dataset, Mapping[str, Any]], dict[str, str]] | None = None

    @property
    def data_kind(self) -> str:
        return self.data.name

    def option_names(self) -> tuple[str, ...] | None:
        """The ``[options]`` the family takes: `options` when declared, else the keyword arguments `build`
        takes after the data and the priors; None when it cannot tell (a `build` taking ``**options`` checks
        them itself)."""
        specs = self.option_specs()
        return None if specs is None else tuple(specs)

    def option_specs(self) -> dict[str, Option] | None:
        """Each ``[options]`` entry the family takes (`option_names`) with what its value may be: the declared
        `Option`, or for a bare name an `Option` of any value, or for a keyword argument of `build` its
        annotation's (``bool``, ``int``, ``float``)."""
        if self.options is not None:
            return {
                o if isinstance(o, str) else o.name: Option(o) if isinstance(o, str) else o
                for o in self.options
            }
        parameters = list(inspect.signature(self.build).parameters.values())
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        return {
            p.name: from_parameter(p.name, p.annotation)
            for p in parameters[2:]
            if p.kind is not inspect.Parameter.VAR_POSITIONAL
        }

    def idle_options_in(self, given: Mapping[str, Any]) -> dict[str, str]:
        """The ``[options]`` of `given` the model would not read, each with why (what follows
        ``[options] NAME:``): one of `idle_options`, or one given without the other options its
        `Option.only_with` needs (``centered`` without ``stratified = true``). Empty when all act."""
        specs = self.option_specs() or {}
        idle = {}
        for name in given:
            if name in self.idle_options:
                idle[name] = (
                    f"the {self.name} model does not use it ({self.idle_options[name]}), so it would "
                    "change nothing: remove it"
                )
            elif name in specs and (why := specs[name].idle(given)) is not None:
                idle[name] = f"in the {self.name} model it {why}"
        return idle

    def idle_given_data(self, data: xr.Dataset, given: Mapping[str, Any]) -> dict[str, str]:
        """The ``[options]`` of `given` that `data` leave without effect (`data_idle_options`), each with what
        follows ``[options]`` in the refusal; empty when all act or the family declares none."""
        return {} if self.data_idle_options is None else self.data_idle_options(data, given)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add `family` to the registry (`FAMILIES`); a name registered twice is an error."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    FAMILIES[family.name] = family
    return family


@contextlib.contextmanager
def registered(family: Family) -> Iterator[Family]:
    """Register `family` for the duration of a block (tests, or a family defined in a notebook).

    Blocks may nest: an inner block for the family already registered leaves the registration to the outer.
    """
    if FAMILIES.get(family.name) is family:
        yield family
        return
    register(family)
    try:
        yield family
    finally:
        FAMILIES.pop(family.name, None)


def rng_from(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------------------------
# [data] fields that every family reading records shares: which part of the records to fit

PERIOD_KINDS = ("year", "quarter", "month")
SECTION = DataField("section", "the border section to fit (its section_id)")
PERIOD = DataField("period", 'the period to fit, e.g. "2010" (years), "2010Q2", "2010-04"')
PERIOD_KIND = DataField("period_kind", "length of a period: year, quarter or month", default="year")


def check_choice(fields: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> None:
    """`DataFieldError` unless ``fields[name]`` is one of `choices`."""
    if fields[name] not in choices:
        raise DataFieldError(name, f"one of {', '.join(choices)}; got {fields[name]!r}")


def select_records(stats: xr.Dataset, fields: Mapping[str, Any]) -> xr.Dataset:
    """Check that the spec's section and period exist in the sufficient statistics of the records."""
    import re

    kind = str(stats.attrs.get("period", "year"))
    for name in ("section", "period"):
        value = fields.get(name)
        if value is not None and value not in stats[name].values:
            have = [str(v) for v in stats[name].values]
            listed = (
                ", ".join(have)
                if len(have) <= 12
                else f"{have[0]} … {have[-1]} ({len(have)} {kind}s)"
            )
            form, like = _PERIOD_FORMS.get(kind, (".*", ""))
            hint = "" if name != "period" or re.fullmatch(form, str(value)) else f"; {like}"
            raise DataFieldError(name, f"{value!r} not in the records; they have {listed}{hint}")
    return stats


_PERIOD_FORMS = {
    "year": (r"\d{4}", 'a year is written like "2017" (period_kind = "year")'),
    "quarter": (r"\d{4}Q[1-4]", 'a quarter is written like "2017Q2" (period_kind = "quarter")'),
    "month": (
        r"\d{4}-(0[1-9]|1[0-2])",
        'a month is written like "2017-04" (period_kind = "month")',
    ),
}
