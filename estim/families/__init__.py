"""Model families (docs/design.md §4): one readable module per family, sharing likelihood kernels.

Every family is registered in `FAMILIES` as a `Family` (estim/families/base.py): a pure function that builds a
`pm.Model` from sufficient statistics and priors (no sampling inside), a function that draws the population
size N from a posterior (N is marginalised in the model and recovered afterwards), and a maximum-likelihood mode.
"""

from estim.families.base import FAMILIES, Family, MLEResult, register

__all__ = ["FAMILIES", "Family", "MLEResult", "register"]
