"""The small NUTS run the family tests share: nutpie on the JAX backend (fast compile), 2 chains, seeded."""

import pymc as pm


def quick_nuts(model: pm.Model, seed: int, draws: int = 500, tune: int = 500):
    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=2,
            nuts_sampler="nutpie",
            backend="jax",
            random_seed=seed,
            progressbar=False,
        )
