"""Single-register frequency models: how many people did one register never see?

Each person in the register was seen K = k ≥ 1 times (apprehended, treated, …); people with K = 0 are the
unknown part of the population. A model for the distribution of K, fitted to the observed k ≥ 1 only (the
*zero-truncated*, i.e. conditional, likelihood), extrapolates P(K = 0) = p0 and so the population size:
the Horvitz–Thompson estimate N̂ = Σ_x n_x / (1 − p0_x) over covariate patterns x with n_x people observed.

The data are the frequencies f_{x,k} (people in covariate pattern x seen exactly k times) built by
`frequency_data` from a table of people or of frequencies (`[data] layout`); every cost scales with
patterns × k, never with people (with a continuous covariate, patterns are about as many as people).

Families (registered in `estim.families.FAMILIES`):

* ``ztpoisson``, ``ztgeometric``, ``ztnegbin``: zero-truncated Poisson / geometric / negative binomial
  regression, log λ_x = X_x β (intercept only when there are no covariates; `estim.families.covariates`:
  categorical covariates treatment-coded, continuous ones standardised for fitting and their coefficients
  reported in their own units, formulas with interactions). The
  Poisson assumes everyone in a pattern has the same rate; the geometric (a Poisson with exponentially
  distributed rates) and the negative binomial (gamma-distributed rates, variance λ(1 + αλ)) allow
  heterogeneity and give larger N̂.
* ``oiztpoisson``, ``oiztgeometric``: one-inflated zero-truncated models (singleRcapture's definition:
  inflate the untruncated count, then truncate). A share ω of the population behaves as "seen once, never
  again" (e.g. people who leave after a first apprehension): P*(1) = ω + (1 − ω)P(1), P*(k) = (1 − ω)P(k)
  for k ≥ 2, P*(0) = (1 − ω)p0; observed counts follow P*(k) / (1 − (1 − ω)p0). Excess singletons then
  no longer inflate N̂ the way they do under the plain model.
* ``zelterman``: Zelterman's regression: among people seen once or twice, P(K = 2 | K ∈ {1, 2}) = λ/(2 + λ),
  i.e. logistic regression with logit X β and λ = 2 exp(X β) (the local Poisson rate that f2/f1 = λ/2
  estimates), and N̂ = Σ over all observed people 1/(1 − exp(−λ_i)) (as singleRcapture). Robust to
  heterogeneity that only shows at k ≥ 3.
* ``chao``: generalised Chao (Böhning et al. 2013; singleRcapture's ``chao``): the same logistic model of
  P(K = 2 | K ∈ {1, 2}) as Zelterman's, but N̂ = n + Σ over people seen once or twice of 1/(λ_i + λ_i²/2),
  λ_i = 2 exp(X_i β): Chao's lower bound for a mixture of Poissons, with covariates. Intercept only it is the
  closed form n + f1²/(2 f2).
* ``ztbinomial``: zero-truncated binomial: unit i had t_i occasions (``[data] trials`` or ``trials_column``)
  and was seen on k_i of them, K_i ~ Binomial(t_i, p_i) given K_i ≥ 1, logit p_i = X_i β; N̂ by
  Horvitz–Thompson with p0 = (1 − p)^t. Without covariates it is the conditional (Huggins) M0 of a
  capture–recapture study with t occasions, fitted to the times each unit was caught.
* Closed forms `chao` (lower bound n + f1²/(2 f2), Chao 1987) and `zelterman` (n / (1 − exp(−2 f2/f1))).
* Every ML fit but Zelterman's and Chao's tests the fitted f_k against the observed
  (`estim.families.single_register.goodness`, in ``extra["goodness_of_fit"]``) and warns when they differ.
* Without covariates, ``MLEResult.profile`` holds the profile-likelihood estimate and interval of N from the
  full likelihood (`estim.families.single_register.profile`), except for Zelterman's and Chao's models,
  which have no likelihood in N.

Bayesian models (``build``) observe the frequency array itself (variable ``frequency``, dims (pattern, k)),
with log-likelihood f_{x,k} · log P(K = k | K ≥ 1, x) per cell, so ``pm.compute_log_likelihood`` gives one
term per cell and LOO works. N is not a parameter: under the prior p(N_x) ∝ 1/N_x for each pattern,

    Σ_{N ≥ n} (1/N) · N!/(N − n)! · p0^{N−n} = (n − 1)! Σ_{m ≥ 0} C(m + n − 1, m) p0^m = (n − 1)!/(1 − p0)^n,

so integrating N out of the full (unconditional) multinomial likelihood N!/((N − n)! Π f_k!) p0^{N−n}
Π P(k)^{f_k} leaves, up to a constant, exactly Π (P(k)/(1 − p0))^{f_k}: the conditional likelihood that the
model samples. Given the parameters the posterior of N is ∝ C(N − 1, n − 1) p0^{N−n} (1 − p0)^n, i.e.
N_x − n_x | θ ~ NegativeBinomial(n_x, 1 − p0_x) (failures before n_x successes); ``population`` draws it.
"""

from __future__ import annotations

from typing import Any

from estim.families.base import Family, register
from estim.families.single_register.binomial import BINOMIAL, binomial_data
from estim.families.single_register.data import FREQUENCY, OBSERVED, design, frequency_data
from estim.families.single_register.mle import _mle, chao, zelterman
from estim.families.single_register.model import _build, _default_priors, _population, _Spec
from estim.families.single_register.profile import FullLikelihood
from estim.families.single_register.recovery import TRUTH, recovery_design

__all__ = [
    "BINOMIAL",
    "FREQUENCY",
    "OBSERVED",
    "binomial_data",
    "chao",
    "design",
    "frequency_data",
    "full_likelihood",
    "zelterman",
]

# --------------------------------------------------------------------------------------------------------------
# registration

_SPECS = {
    "ztpoisson": (_Spec("ztpoisson", "poisson"), "zero-truncated Poisson regression"),
    "ztgeometric": (_Spec("ztgeometric", "geometric"), "zero-truncated geometric regression"),
    "ztnegbin": (
        _Spec("ztnegbin", "negbin", alpha=True),
        "zero-truncated negative binomial regression (dispersion alpha)",
    ),
    "oiztpoisson": (
        _Spec("oiztpoisson", "poisson", omega=True),
        "one-inflated zero-truncated Poisson regression (inflate, then truncate; share omega)",
    ),
    "oiztgeometric": (
        _Spec("oiztgeometric", "geometric", omega=True),
        "one-inflated zero-truncated geometric regression (inflate, then truncate; share omega)",
    ),
    "zelterman": (
        _Spec("zelterman", "zelterman"),
        "Zelterman regression: logistic model of P(seen twice | seen once or twice), HT over all observed",
    ),
    "chao": (
        _Spec("chao", "zelterman", estimator="chao"),
        "generalised Chao: logistic model of P(seen twice | seen once or twice), Chao's lower bound",
    ),
    "ztbinomial": (
        _Spec("ztbinomial", "binomial"),
        "zero-truncated binomial regression: seen on k of t occasions (conditional M0 with covariates)",
    ),
}


def full_likelihood(family: str, f: Any, trials: int | None = None) -> FullLikelihood:
    """The full likelihood in N and the parameters of an intercept-only family on frequencies f_1..f_K
    (`estim.families.single_register.profile.FullLikelihood`; not for ``zelterman`` and ``chao``)."""
    return FullLikelihood(_SPECS[family][0], f, trials)


for _name, (_spec, _description) in _SPECS.items():
    register(
        Family(
            name=_name,
            description=_description,
            data=BINOMIAL if _spec.binomial else FREQUENCY,
            build=_build(_spec),
            population=_population(_spec),
            mle=_mle(_spec),
            default_priors=_default_priors(_spec),
            observed_name=OBSERVED,
            # chao and ztbinomial have no recovery study yet (their simulators are not measured)
            recovery=recovery_design(_name) if _name in TRUTH else None,
        )
    )
