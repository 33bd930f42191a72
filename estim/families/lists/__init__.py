"""Multiple-systems estimation: the population behind K lists (registers, NGO and inspectors' counts) from
the counts of the 2^K − 1 list patterns, on the Poisson log-linear engine (`estim.families.loglinear`).

* `existence`: whether a log-linear model's maximum-likelihood estimate exists and is identifiable
  (Fienberg & Rinaldo 2012's linear programme; SparseMSE's ``checkident``), before it is fitted;
* `stepwise`: SparseMSE's stepwise selection of two-list interactions (p-value threshold 0.02);
* `graphs` and `bma`: Bayesian model averaging over the decomposable graphs of 2–6 lists with dga's
  hyper-Dirichlet prior (Madigan & York 1997), the posterior of N and of the graphs on a grid; `bma_family`
  registers it as the family ``lists_bma``, its posterior exact (drawn from, not sampled);
* `latent_class`: LCMCR's latent-class model (Manrique-Vallier 2016) for NUTS, the class, N and the
  stick-breaking concentration integrated out;
* `families`: the registered families ``lists_stepwise`` (ML) and ``lists_latent_class`` (Bayesian).
"""

from estim.families.lists import bma_family as _bma_family  # noqa: F401  (registers lists_bma)
from estim.families.lists import families as _families  # noqa: F401  (registers the families)
from estim.families.lists import shrinkage as _shrinkage  # noqa: F401  (registers lists_shrinkage)
from estim.families.lists.bma import BMAResult, dga_posterior, pattern_counts
from estim.families.lists.existence import (
    Existence,
    empty_overlaps,
    extended_design,
    facial_set,
    mle_exists,
)
from estim.families.lists.graphs import DecomposableGraph, decomposable_graphs, is_chordal
from estim.families.lists.latent_class import (
    LABEL_INVARIANT,
    build_latent_class,
    concentration,
)
from estim.families.lists.latent_class import population as latent_class_population
from estim.families.lists.stepwise import (
    DEFAULT_THRESHOLD,
    Step,
    StepwiseResult,
    overlap_p_value,
    stepwise,
)

# The other modules of this package (model averaging over decomposable graphs, latent classes, …) add their
# imports here and their names to __all__.

__all__ = [
    "DEFAULT_THRESHOLD",
    "LABEL_INVARIANT",
    "build_latent_class",
    "concentration",
    "latent_class_population",
    "BMAResult",
    "DecomposableGraph",
    "dga_posterior",
    "decomposable_graphs",
    "is_chordal",
    "pattern_counts",
    "Existence",
    "Step",
    "StepwiseResult",
    "empty_overlaps",
    "extended_design",
    "facial_set",
    "mle_exists",
    "overlap_p_value",
    "stepwise",
]
