"""The border model (family "border"): the equations are in `estim.families.border.model`.

Modules, in the order of a Stan program: `data` (what the model reads), `model` (priors, parameters and
likelihood), `rates` (μ, p and φ of every cell, in the model and on posterior draws), `kernels` (the
speed-tuned count laws), `generated` (unobserved crossings and predictive draws), `report` (tables, figures).
"""

from typing import Any

import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, MLEResult, register
from estim.families.border.data import border_data
from estim.families.border.data_kind import BORDER_RECORDS
from estim.families.border.generated import (
    Counts,
    after_sampling,
    crossings,
    population,
    simulate_counts,
)
from estim.families.border.idle_options import idle_on_data
from estim.families.border.model import DEFAULT_PRIORS, OBSERVED, build_border
from estim.families.border.rates import Rates, posterior_parameters, rates
from estim.families.border.repeat_dispersion import check_before_sampling
from estim.families.border.repeated_trials import SLAB_DENSITY, SOURCE, with_repeated_trials
from estim.families.border.report import BORDER_REPORT
from estim.families.border.retry import RETRY_AUXILIARY
from estim.families.border.sensitivity import BORDER_SENSITIVITY
from estim.families.options import Option

# build_border's keyword arguments, typed as their annotations are (the ranges are checked when it builds)
OPTIONS = (
    Option("centered_hazard", "the sections' hazards sampled as they are", kind="bool"),
    Option(
        "centered_section_effect", "the sections' journey levels sampled as they are", kind="bool"
    ),
    Option("terrain_hazard", "the sections' mean hazard shifted by terrain", kind="bool"),
    Option("terrain_journeys", "the sections' journey levels shifted by terrain", kind="bool"),
    Option("retry_probability", "the retry probability r, fixed", kind="number"),
    Option(
        "repeated_trials_prior",
        "the prior probability that r = 1",
        kind="number",
        only_with={"retry_probability": None},
        because="it is the prior weight of r = 1 against r's prior law, and a fixed r has no prior",
    ),
    Option("frailty_sd", 'the spread of a person-level frailty, or "estimated"'),
    Option("saddlepoint_above", "the total above which the saddlepoint law is used, or false"),
    Option(
        "after_background",
        "the other crossings' rate after a journey over before it",
        kind="number",
    ),
)


def _no_mle(data: xr.Dataset, **_: Any) -> MLEResult:
    raise EstimInputError("the border model has no maximum-likelihood mode")


BORDER = register(
    Family(
        name="border",
        description="hierarchical border model: attempts, apprehensions and unobserved crossings",
        data=BORDER_RECORDS,
        build=build_border,
        population=population,
        mle=_no_mle,
        default_priors=DEFAULT_PRIORS,
        observed_name=OBSERVED,
        after_sampling=after_sampling,
        report=BORDER_REPORT,
        sensitivity=BORDER_SENSITIVITY,
        # r's auxiliary (its angle is not identified) and the averaging's map of draws (an index)
        gate_skip=(RETRY_AUXILIARY, SOURCE, SLAB_DENSITY),
        estimates_posterior=with_repeated_trials,
        precheck=check_before_sampling,
        options=OPTIONS,
        # an option some data leave without effect (a terrain shift on one terrain), refused at building
        data_idle_options=idle_on_data,
    )
)

__all__ = [
    "BORDER",
    "DEFAULT_PRIORS",
    "Counts",
    "Rates",
    "border_data",
    "build_border",
    "crossings",
    "posterior_parameters",
    "rates",
    "simulate_counts",
]
