"""Records -> sufficient statistics (docs/design.md §3–4).

Every model family reads the counts made here, never the records: the cost of fitting depends on the number
of distinct capture histories and frequency cells, not on the number of people or apprehensions.

The aggregation is linear in the records and vectorised. Each label column is turned into integer codes once
(``pd.factorize`` on the few distinct labels; person ids are factorised once), after which every statistic is a
``np.bincount`` over a combined integer index or a single ``np.sort`` of a packed int64 key. There is no Python
loop over people or rows; the only Python loops run over distinct histories, sections or lists.

Vocabulary (closed-population capture–recapture):

* *stratum*: a section × period. Each stratum is treated as a closed population of people who attempted to
  cross there; a person apprehended in two sections belongs to both strata.
* *occasion*: a sub-interval of the period (a quarter or a month); a person is *captured* on an occasion when
  apprehended at least once in it.
* *capture history*: the 0/1 string of captures over the period's occasions, occasion 1 first ("0110").
* *frequency* f_k: the number of people apprehended exactly k times in a stratum (k ≥ 1); f_0, the people
  who crossed and were never apprehended, is what the models estimate.
* *lists* (multiple-systems estimation): the registers and the apprehension records, each a list of people;
  a person's *list history* is the 0/1 string of presence on each list.
"""

from estim.statistics.flows import LAND_CHECKPOINT_TYPES
from estim.statistics.histories import APPREHENSIONS_LIST
from estim.statistics.periods import OCCASIONS, PERIODS
from estim.statistics.sufficient import sufficient_statistics
from estim.statistics.summary import data_summary

__all__ = [
    "APPREHENSIONS_LIST",
    "LAND_CHECKPOINT_TYPES",
    "OCCASIONS",
    "PERIODS",
    "data_summary",
    "sufficient_statistics",
]
