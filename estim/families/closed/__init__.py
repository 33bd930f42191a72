"""Closed-population capture–recapture on capture histories (Otis, Burnham, White & Anderson 1978).

A population of N animals (people) is sampled on T occasions; each one seen at least once leaves a 0/1
capture history h. The models differ in how the capture probability varies (Otis et al. 1978):

* ``M0``: one capture probability p for everyone on every occasion;
* ``Mt``: time: p_t varies by occasion;
* ``Mb``: behaviour ("trap response"): p before the first capture, c = logit⁻¹(logit p + β) afterwards;
* ``Mh_logitnormal``: individual heterogeneity, logit p_i ~ Normal(μ, σ_h) (Coull & Agresti 1999);
* ``Mh_mixture``: heterogeneity as a two-class finite mixture (Pledger 2000);
* ``Mth``: time + logit-normal heterogeneity, logit p_it = α_t + ε_i;
* ``Mtbh``: time + behaviour + heterogeneity, logit p_it = α_t + β·[seen before t] + ε_i (weakly identified:
  lean on the priors and read the behaviour–heterogeneity correlation in the posterior).

Maximum likelihood. ``M0``, ``Mt`` and ``Mb`` reproduce Rcapture's ``closedp.t``: Poisson log-linear models
for the 2^T − 1 history counts (zeros included), N̂ = n + exp(intercept) (equal to the Otis et al. estimate
for M0 and Mt; Mb from Rcapture's own parameterisation, reported as a failure where it implies p ≤ 0), with
Cormack's profile-likelihood interval (Mb's from its removal likelihood, Otis et al. 1978). The log-linear
families (`estim.families.loglinear`, Rivest & Baillargeon 2007) are registered here too, Bayesian and ML:
``Mh_chao``, ``Mh_poisson2``, ``Mh_darroch``, ``Mh_gamma35``, their ``Mth_`` versions with occasion effects,
and ``loglinear``, whose terms (list interactions among them) a spec gives in ``[options]``. The other
families' ML mode maximises the same conditional likelihood as the Bayesian model (Huggins 1989),
N̂ = n / (1 − P̂(0)), with no profile interval: N is not a parameter of that likelihood. Every ML fit's ci95 is Chao's (1987) log-transformed interval,
n + (N̂ − n)/C to n + (N̂ − n)·C (`estim.families.loglinear.fit.log_interval`), never below the n seen:
N̂ ± 1.96 SE reached below 0 on Mb's and Mh_mixture's wide fits.

Data layouts (`table_histories`): one row per animal, one row per distinct history with a count, or an f_k
table over t occasions, carried as one history per k with multiplicity C(t, k) (exact for M0 and the Mh
models; the others need the histories and refuse it); or, for the log-linear models only, an f_k table of
counts with no upper bound (``occasions = "inf"``, multiplicity 1/k!). Individual covariates
(sex, weight, …) give the Huggins conditional likelihood of M0, Mt and Mb (`estim.families.closed.huggins`).

Likelihood. The integral over logit-normal heterogeneity is a fixed quadrature (deterministic and
differentiable): the trapezoidal rule on the standard-normal scale by default, Gauss–Hermite on request
(``quadrature="gauss-hermite"``; it needs many more nodes once σ_h > 2, see `_quadrature`). The models condition on being seen: each stratum s contributes, for every observed history h,
the term n_sh · log[P(h) / (1 − P(0…0))], one log-likelihood term per (stratum, history) cell, so LOO works.

Why N need not be sampled. With the prior p(N) ∝ 1/N the full likelihood N!/((N−n)! ∏ n_h!) · ∏ P(h)^n_h ·
P(0)^(N−n), summed over N ≥ n, is

    Σ_N (1/N) N!/(N−n)! P(0)^(N−n) = (n−1)! Σ_k C(n−1+k, k) P(0)^k = (n−1)! / (1 − P(0))^n,

so the marginal likelihood of θ is (up to constants) ∏_h [P(h)/(1 − P(0))]^n_h: exactly the conditional
likelihood above. The same algebra gives the conditional law of the unseen animals,
N − n | θ, data ~ NegativeBinomial(n, 1 − P(0)) (failures before the n-th success), which `population` draws
from the posterior of P(0) (the deterministic ``p_unseen``).

Stratification. Strata (e.g. border sections) are independent closed populations. By default every
parameter is per stratum (no pooling). With ``stratified=True`` the capture-probability intercept is pooled:
intercept_s = μ + σ_stratum · z_s (non-centred; ``centered=True`` for the centred form, better when strata
are well informed). For time models the occasion logits become intercept_s + δ_st, with δ_s· a zero-sum
deviation of scale ``occasion_sd``.

Data: `history_data` (a table of 0/1 occasion columns) or `history_data_from_statistics` (estim.statistics);
both give ``history_count`` (stratum, history) over distinct observed histories and ``capture``
(history, occasion). The cost scales with the number of distinct histories, not animals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pymc as pm
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import DataKind, Family, MLEResult, register
from estim.families.closed import model as _model
from estim.families.closed.data import (
    HISTORY_FIELDS,
    OBSERVED,
    check_fields,
    check_layout_fields,
    frequency_history_data,
    frequency_table,
    from_records,
    history_data,
    history_data_from_statistics,
    require_histories,
    table_rows,
)
from estim.families.closed.huggins import (
    HUGGINS,
    build_huggins,
    huggins_data,
    huggins_population,
    mle_huggins,
)
from estim.families.closed.mle import (
    LOGLINEAR,
    checked_loglinear_mle,
    mle_conditional,
    mle_loglinear,
)
from estim.families.closed.model import _PRIORS, build_closed, family_options
from estim.families.closed.model import idle_options as otis_idle_options
from estim.families.closed.recovery import recovery_design
from estim.families.loglinear import DEFAULT_PRIORS as LOGLINEAR_PRIORS
from estim.families.loglinear import Design, Terms, all_histories, build_loglinear, model_design
from estim.families.loglinear import population as loglinear_population
from estim.families.loglinear.design import CAPTURE_EFFECTS, HETEROGENEITY
from estim.families.options import Option
from estim.priors import Prior

__all__ = [
    "HISTORIES",
    "OBSERVED",
    "all_histories",
    "build_closed",
    "frequency_history_data",
    "history_data",
    "history_data_from_statistics",
    "huggins_data",
    "population",
    "table_histories",
]


# --------------------------------------------------------------------------------------------------------------
# A researcher's table, and the [data] fields of a spec


def table_histories(
    table: pd.DataFrame,
    *,
    layout: str,
    occasions: Sequence[str] | int | None = None,
    count: str | None = None,
    times_seen: str | None = None,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    formula: str | None = None,
    takes_covariates: bool = True,
) -> xr.Dataset:
    """The closed-population data of a table in the layout it declares: capture histories (individuals or
    patterns), an f_k table carried as histories (frequencies, with ``occasions = t``), or Huggins cells when
    covariates are given. Whatever the table contradicts is an error naming the column and row
    (`estim.families.closed.data.table_rows`); ``takes_covariates=False`` (a family whose tables declare none,
    the lists) leaves covariates out of what it advises."""
    fields = {
        "layout": layout,
        "occasions": occasions,
        "count": count,
        "times_seen": times_seen,
        "covariates": tuple(covariates or ()),
        "categorical": tuple(categorical or ()),
        "formula": formula,
    }
    check_layout_fields(fields)
    if layout == "frequencies":
        return frequency_table(table, fields)
    x, n, columns, names = table_rows(table, fields, takes_covariates=takes_covariates)
    if names:
        return huggins_data(table, x, n, columns, names, fields["categorical"], formula)
    rows = pd.DataFrame(x, columns=columns).assign(_n=n)
    return history_data(rows, occasions=columns, count="_n")


def _from_table(table: pd.DataFrame, fields: Mapping[str, Any]) -> xr.Dataset:
    names = ("occasions", "count", "times_seen", "covariates", "categorical", "formula")
    return table_histories(table, layout=fields["layout"], **{k: fields.get(k) for k in names})


HISTORIES = DataKind(
    name="histories",
    fields=HISTORY_FIELDS,
    check=check_fields,
    from_benchmark=_from_table,
    from_records=from_records,
)


def population(
    data: xr.Dataset, posterior: xr.Dataset | Any, rng: Any = None, **_: Any
) -> xr.DataArray:
    """Draws of N given the posterior draws: per stratum from histories (`model.population`), or summed over
    covariate patterns for Huggins data (`huggins.huggins_population`)."""
    if "design" in data:
        return huggins_population(data, posterior, rng)
    return _model.population(data, posterior, rng)


# --------------------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    "M0": "Otis M0: one capture probability",
    "Mt": "Otis Mt: capture probability varies by occasion",
    "Mb": "Otis Mb: trap response after the first capture",
    "Mh_logitnormal": "Otis Mh: logit-normal individual heterogeneity (fixed quadrature)",
    "Mh_mixture": "Otis Mh: two-class finite-mixture heterogeneity (Pledger 2000)",
    "Mth": "Otis Mth: occasion effects + logit-normal heterogeneity",
    "Mtbh": "Otis Mtbh: occasion effects + trap response + logit-normal heterogeneity",
}
# The named log-linear models (Rcapture's closedp): Bayesian and ML on the log-linear engine
_LOGLINEAR = {
    "Mh_chao": "Mh, Chao's lower bound as a log-linear model (Rcapture's Mh Chao (LB))",
    "Mh_poisson2": "Mh, Poisson2 log-linear heterogeneity h(k) = 2^k − 1 (Rcapture)",
    "Mh_darroch": "Mh, Darroch log-linear heterogeneity h(k) = k²/2 (Rcapture)",
    "Mh_gamma35": "Mh, Gamma3.5 log-linear heterogeneity h(k) = −log(1 + k/3.5) (Rcapture)",
    "Mth_chao": "Mth, Chao's lower bound with occasion effects (Rcapture's Mth Chao (LB))",
    "Mth_poisson2": "Mth, occasion effects + Poisson2 heterogeneity (Rcapture)",
    "Mth_darroch": "Mth, occasion effects + Darroch heterogeneity (Rcapture)",
    "Mth_gamma35": "Mth, occasion effects + Gamma3.5 heterogeneity (Rcapture)",
    "loglinear": "a log-linear model whose terms [options] give: capture effects (M0, Mt), list "
    "interactions (Rcapture's mX) and heterogeneity (chao, poisson, darroch, gamma)",
}


def _no_covariates(name: str, data: xr.Dataset) -> None:
    if "design" in data and name not in HUGGINS:
        raise EstimInputError(
            f"{name}: individual covariates (the Huggins conditional likelihood) are available for "
            f"{', '.join(HUGGINS)}; fit one of those, or drop the covariates"
        )


# the models whose capture probability varies between animals: with 2 occasions the 3 observable histories
# cannot tell heterogeneity from a lower capture probability, so N is not identified
HETEROGENEOUS = ("Mh_logitnormal", "Mh_mixture", "Mth", "Mtbh")


def require_recaptures(name: str, data: xr.Dataset, *, per_stratum: bool) -> None:
    """Refuse data in which nobody was caught twice (in some stratum, when strata are fitted separately).

    Without a recapture the likelihood of every closed-population model rises without bound in N (as f₁²/f₂
    with f₂ = 0): a fit would report wherever its optimiser or its prior stopped."""
    times = data["capture"].sum("occasion").values
    if "design" in data:  # Huggins cells: one count per (pattern, history)
        recaptured = {
            "all": int(data[OBSERVED].values[times[data["cell_history"].values] >= 2].sum())
        }
    else:
        counts = data[OBSERVED].values
        labels = [str(s) for s in data["stratum"].values]
        by_stratum = counts[:, times >= 2].sum(axis=1)
        recaptured = (
            dict(zip(labels, map(int, by_stratum), strict=True))
            if per_stratum
            else {"all": int(by_stratum.sum())}
        )
    empty = [label for label, count in recaptured.items() if count == 0]
    if empty:
        where = "" if empty == ["all"] else f" in stratum {', '.join(map(repr, empty))}"
        raise EstimInputError(
            f"{name}: nobody was caught more than once{where}, so no closed-population model can estimate N "
            "(its likelihood rises without bound in N)"
        )


def require_occasions(name: str, data: xr.Dataset) -> None:
    """Refuse a model with heterogeneity (`HETEROGENEOUS`) on fewer than 3 occasions."""
    t = data.sizes["occasion"]
    if name in HETEROGENEOUS and t < 3:
        raise EstimInputError(
            f"{name}: heterogeneity in capture probability is not identifiable from {t} occasions (the "
            "histories cannot tell it from a lower capture probability); fit M0, Mt or Mb, or use data with "
            "at least 3 occasions"
        )


def require_estimable(name: str, data: xr.Dataset, *, per_stratum: bool) -> None:
    """Both refusals above: enough occasions for the model's heterogeneity, and a recapture (per stratum)."""
    require_occasions(name, data)
    require_recaptures(name, data, per_stratum=per_stratum)


def _estimable(name: str) -> Any:
    """The family's `precheck`: the refusals above, made before a Bayesian fit samples. Under the default
    p(N) ∝ 1/N the posterior of N is improper on such data; a study that puts a proper prior on N (SBC)
    builds the model without this check."""

    def precheck(data: xr.Dataset, **opts: Any) -> dict[str, Any] | None:
        try:
            require_estimable(name, data, per_stratum=bool(opts.get("stratified")))
        except EstimInputError as e:
            return {"name": "estimability of N", "passed": False, "text": str(e)}
        return None

    return precheck


def _refuse_idle(family: Family, opts: Mapping[str, Any]) -> None:
    """An option the model would not read (`Family.idle_options_in`), given from Python: a spec's is refused
    when it is read."""
    for option, why in family.idle_options_in(opts).items():
        raise EstimInputError(f"[options] {option}: {why}")


def _bayes_family(name: str) -> Family:
    family: Family  # the family these functions belong to, made below

    def build(data: xr.Dataset, priors: Mapping[str, Prior] | None = None, **opts: Any) -> pm.Model:
        _refuse_idle(family, opts)
        if "design" in data:
            if opts.get("stratified"):
                raise EstimInputError("individual covariates and strata together are not supported")
            return build_huggins(name, data, priors)
        return build_closed(name, data, priors, **opts)

    if name in HUGGINS:

        def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
            _refuse_idle(family, opts)
            # as mle_conditional: Rcapture's and Huggins' fits pool no strata (ignored, it would mislead)
            if opts.get("stratified"):
                raise EstimInputError("the ML mode fits strata separately: use stratified=False")
            require_estimable(name, data, per_stratum=True)  # ML fits each stratum on its own
            if "design" in data:
                return mle_huggins(name, data, **opts)
            return mle_loglinear(name, data, **opts)
    else:

        def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
            _refuse_idle(family, opts)
            _no_covariates(name, data)
            require_estimable(name, data, per_stratum=True)  # ML fits each stratum on its own
            return mle_conditional(name, data, **opts)

    family = Family(
        name=name,
        description=_DESCRIPTIONS[name],
        data=HISTORIES,
        build=build,
        population=population,
        mle=mle,
        default_priors=_PRIORS[name],
        observed_name=OBSERVED,
        recovery=recovery_design(name),
        precheck=_estimable(name),
        # build_closed's stratified and centered, and nodes and quadrature where the model integrates
        options=family_options(name),
        idle_options=otis_idle_options(name),
    )
    return family


# the loglinear family's [options] (`Terms.from_options`; the interactions, and θ against the heterogeneity, are
# checked there)
LOGLINEAR_OPTIONS = (
    Option("capture", "the capture effects", kind="choice", choices=CAPTURE_EFFECTS),
    Option("heterogeneity", "the heterogeneity term", kind="choice", choices=HETEROGENEITY),
    Option(
        "theta",
        "θ of the poisson or gamma heterogeneity",
        kind="number",
        low=0,
        low_open=True,
        only_with={"heterogeneity": ("poisson", "gamma")},
        because="θ is the parameter of h(k) = θ^k − 1 and h(k) = −log(1 + k/θ)",
    ),
    Option("interactions", 'lists of occasion names, e.g. [["EXH", "ABA"]]'),
)


def _loglinear_family(name: str) -> Family:
    def design(data: xr.Dataset, opts: Mapping[str, Any]) -> Design:
        _no_covariates(name, data)
        if name == "loglinear":
            terms = Terms.from_options(opts)
        else:
            if opts:
                raise EstimInputError(
                    f"{name} takes no [options] ({', '.join(sorted(opts))}); for other terms use the "
                    "loglinear family"
                )
            require_histories(name, data)
            terms = LOGLINEAR[name]
        return model_design(terms, data)

    def build(data: xr.Dataset, priors: Mapping[str, Prior] | None = None, **opts: Any) -> pm.Model:
        return build_loglinear(design(data, opts), data, priors)

    def draws(data: xr.Dataset, posterior: Any, rng: Any = None, **opts: Any) -> xr.DataArray:
        return loglinear_population(design(data, opts), posterior, rng)

    def mle(data: xr.Dataset, **opts: Any) -> MLEResult:
        require_estimable(name, data, per_stratum=True)  # ML fits each stratum on its own
        d = design(data, opts)
        refused = _no_mle(d)
        return refused if refused is not None else checked_loglinear_mle(d.model, d, data)

    return Family(
        name=name,
        description=_LOGLINEAR[name],
        data=HISTORIES,
        build=build,
        population=draws,
        mle=mle,
        default_priors=LOGLINEAR_PRIORS,
        observed_name=OBSERVED,
        precheck=_estimable(name),
        options=LOGLINEAR_OPTIONS if name == "loglinear" else (),  # the named models take none
    )


def _no_mle(design: Design) -> MLEResult | None:
    """Before fitting: a model whose MLE does not exist or is not identifiable (the LP test of
    `estim.families.lists.existence`) is reported as no estimate, never as the number where IRLS stopped
    (which would be a coefficient running to infinity and an arbitrary N̂). Chao's models are not judged:
    their η ≥ 0 constraint can keep a maximum finite where the unconstrained one is not, and their fit drops
    a negative η as Rcapture does."""
    if design.nonnegative.any():
        return None
    # imported here: the lists package reads the closed families' data kind (a cycle at import time)
    from estim.families.lists.existence import mle_exists

    verdict = mle_exists(design.model, design)
    return None if verdict.ok else verdict.as_mle()


FAMILY_NAMES = tuple(_DESCRIPTIONS)
for _name in FAMILY_NAMES:
    register(_bayes_family(_name))
for _name in _LOGLINEAR:
    register(_loglinear_family(_name))
