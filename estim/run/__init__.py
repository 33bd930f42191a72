"""Fitting a model spec: the spec, its data, the sampler, the diagnostics gate and the saved fit."""
