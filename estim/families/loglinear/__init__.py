"""Poisson log-linear models of capture-pattern counts: the engine behind Rcapture's closed-population models
(Fienberg 1972; Cormack 1989; Rivest & Baillargeon 2007) and the multiple-list models built on it.

* `design`: a model's `Terms` (capture effects, list interactions, heterogeneity h(k)) and its cells and
  design matrix (`model_design`): an f_k table for the models in k, every history otherwise;
* `fit`: maximum likelihood (IRLS, Rcapture's handling of Chao's η), N̂ and its SE, Chao's log-transformed
  interval and Cormack's profile-likelihood interval for N;
* `model`: the Bayesian model with N marginalised (Poisson cells; N = n + Poisson(expected_unseen)).

The closed-population families (`estim.families.closed`) register the named models (``Mh_poisson2``,
``Mth_darroch``, …) and the general ``loglinear`` family, whose terms a spec gives in ``[options]``.
"""

from estim.families.loglinear.design import (
    MAX_FULL_OCCASIONS,
    Design,
    Terms,
    all_histories,
    heterogeneity_columns,
    model_design,
)
from estim.families.loglinear.fit import (
    log_interval,
    mle,
    poisson_glm,
    profile_interval,
    profile_loglik,
)
from estim.families.loglinear.model import DEFAULT_PRIORS, build_loglinear, population

__all__ = [
    "DEFAULT_PRIORS",
    "MAX_FULL_OCCASIONS",
    "Design",
    "Terms",
    "all_histories",
    "build_loglinear",
    "heterogeneity_columns",
    "log_interval",
    "mle",
    "model_design",
    "poisson_glm",
    "population",
    "profile_interval",
    "profile_loglik",
]
