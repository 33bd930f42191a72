"""The three measures as counterfactual forecasts from a fitted border model (docs/measures.md).

`spec` reads a measure's declarative spec (``models/measures/NAME.toml``): the parameters it acts on, from
when, with what ramp, and the prior of each effect size. `forecast` draws the counts of every scenario (the
baseline, each measure, every combination) from the fitted posterior with common random numbers.
"""
