"""A test-only family (zero-truncated Poisson, intercept only) so the fit pipeline is tested on its own.

The f_k cells are modelled as independent Poisson(n · P(K = k | K ≥ 1)) with the last cell holding k ≥ K
(the Poisson form of the multinomial given n), so each cell has its own log-likelihood term for LOO.
N = n + NegativeBinomial(n, 1 − e^{−λ}) at each draw of λ (the conditional law of N under a 1/N prior).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.optimize
import scipy.stats
import xarray as xr

from estim.families.base import (
    DataField,
    DataFieldError,
    DataKind,
    Family,
    MLEResult,
    registered,
    rng_from,
)
from estim.priors import Prior, merge_priors

NAME = "test_ztp"
PRIORS = {"log_lambda": Prior("Normal", mu=0.0, sigma=1.5)}


def frequencies(table, fields) -> xr.Dataset:  # noqa: ANN001 - a DataKind.from_benchmark
    k = table[fields["count"]].to_numpy().astype(int)
    counts = np.bincount(k, minlength=k.max() + 1)[1:]
    ds = xr.Dataset({"f": ("k", counts)}, coords={"k": np.arange(1, len(counts) + 1)})
    ds.attrs["n_observed"] = int(counts.sum())
    return ds


def build(data: xr.Dataset, priors=None, **_) -> pm.Model:  # noqa: ANN001
    p = merge_priors(PRIORS, priors)
    f = data["f"].values
    kmax = len(f)
    n = f.sum()
    with pm.Model(coords={"k": data["k"].values}) as model:
        log_lam = p["log_lambda"].create("log_lambda")
        lam = pt.exp(log_lam)
        k = np.arange(1, kmax + 1)
        log_pk = k * log_lam - lam - scipy.special.gammaln(k + 1) - pt.log1mexp(-lam)
        pk = pt.exp(log_pk)
        pk = pt.set_subtensor(pk[-1], pt.maximum(1.0 - pk[:-1].sum(), 1e-12))
        pm.Poisson("f", mu=n * pk, observed=f, dims="k")
    return model


def population(data: xr.Dataset, posterior, rng=None, **_) -> xr.DataArray:  # noqa: ANN001
    n = int(data["f"].sum())
    lam = np.exp(posterior["log_lambda"].values)
    unseen = rng_from(rng).negative_binomial(n, 1.0 - np.exp(-lam))
    return xr.DataArray(
        n + unseen,
        dims=("chain", "draw"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values},
        name="N",
    )


def mle(data: xr.Dataset, **_) -> MLEResult:
    f = data["f"].values
    k = np.arange(1, len(f) + 1)
    n, mean = f.sum(), (f * k).sum() / f.sum()
    lam = scipy.optimize.brentq(lambda x: x / -np.expm1(-x) - mean, 1e-9, 50.0)
    n_hat = n / -np.expm1(-lam)
    return MLEResult(n_hat, 0.0, (n_hat, n_hat), {"lambda": lam}, 0.0, True)


def check(fields, source) -> None:  # noqa: ANN001
    if fields["count"] is None:
        raise DataFieldError("count", "missing (the column of times seen)")


DATA = DataKind(
    "test_frequency",
    fields=(
        DataField("count", "the column of times seen"),
        DataField("covariates", "covariate columns (read, not used)", many=True, default=()),
    ),
    check=check,
    from_benchmark=frequencies,
)
FAMILY = Family(NAME, "test-only ZTP", DATA, build, population, mle, PRIORS, "f")


def registered_test_family() -> contextlib.AbstractContextManager:
    """The test family, registered for the duration of the block: its one registration."""
    return registered(FAMILY)


SPEC = """
name = "{name}"
family = "test_ztp"
seed = {seed}

[data]
benchmark = "netherlands_immigrants"
count = "capture"

[priors]
log_lambda = {{ distribution = "Normal", mu = 0, sigma = {sigma} }}

[sampler]
draws = {draws}
tune = {tune}
chains = {chains}
prior_draws = 100
"""


def write_spec(folder, name="ztp", seed=1, sigma=1.5, draws=1000, tune=500, chains=4):  # noqa: ANN001, ANN201
    path = folder / f"{name}.toml"
    path.write_text(
        SPEC.format(name=name, seed=seed, sigma=sigma, draws=draws, tune=tune, chains=chains)
    )
    return path
