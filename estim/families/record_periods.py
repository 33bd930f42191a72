"""What one period of the border records holds, for the families that fit a period at a time section by
section: the closed families' capture histories over occasions (`estim.families.closed.data.from_records`)
and the single-register families' frequencies f_k (`estim.families.single_register.data`).

A period is a year, a quarter or a month of the calendar; the records' span runs from the first to the last
month of the apprehensions, apprehension totals and checkpoint records. Two things can leave a period's table
describing less than its name says, and neither shows in the counts:

* the span covers the period only in part (records ending in June, period "2017"): the months outside it hold
  no apprehension because there are no records, not because nobody was caught. The closed families' occasions
  outside the span are left out (an occasion kept as a column of zeros would be read as one on which nobody
  was caught: M0's capture probability falls and N̂ rises, Mb's fit is meaningless) and the table is said to
  describe the months covered, with a warning naming them; the frequencies are counted over those months, with
  the same warning.
* a section has no individual apprehension record in some month inside the span (a month missing from the
  file): an occasion with none in a fitted section is refused (`OCCASION_GAP`, naming the file, section and
  months), as nothing on it can be told from a capture probability of zero; an occasion with records in only
  some of its months, and a frequency table missing months, are warned of.

Every closed table read from the records is also warned of as not closed (`OpenPopulationWarning`): a person
is at the border only in the months of their journeys, so N̂ runs above the period's people. Every f_k table
is warned of as assuming repeated trials (`RepeatedTrialsWarning`): if some give up, the geometric models' N̂
runs above the truth.

A section without individual apprehension records (one that reports monthly totals) has no capture histories
and no frequencies, and a period in which a section has no record at all has nothing to estimate: both are
refused by name (`DataFieldError` on ``section``), and so is a ``category`` outside the records' categories.
See docs/design.md, "One period of the records".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import DataFieldError, select_records

MONTHS_PER = {"year": 12, "quarter": 3, "month": 1}
OCCASION_GAP = "occasion_gap"
"""The rule an occasion with no apprehension record in a fitted section breaks."""
DOC = 'docs/design.md, "One period of the records"'
NOT_CLOSED = (
    "the closed families assume that every person of the period could be caught on every occasion, but a "
    "person is at the border only in the months of their journeys, so these histories are not of a closed "
    "population and N̂ is biased upward, by more than its interval says: on simulated section-years "
    "(estim simulate --years 1; 3 seeds × 2 sections × default, --frailty 0.5, --retry 0.7) N̂ with monthly "
    "occasions exceeded the people who attempted that year in 36 of 36 fits of M0 and Mt (by 0–35 %, the "
    "interval above the truth in 23) and 72 of 72 of Mh_chao, Mh_darroch, Mh_gamma35 and Mh_logitnormal "
    "(by 14–198 %, the interval above the truth in 69); quarterly occasions did no better (M0 16–47 % "
    "over). No test on the histories shows it: their f_k look like heterogeneity. Read N̂ as an "
    "overestimate of the period's people; see docs/design.md §4, "
    '"Single-register and closed families on the border records"'
)


class OpenPopulationWarning(UserWarning):
    """Capture histories of the border records fitted as a closed population (`NOT_CLOSED`)."""


REPEATED_TRIALS = (
    "the single-register families read the unseen as people never apprehended, assuming that everyone "
    "apprehended tries again until through (repeated trials). If only a share r of them retry, the f_k stay "
    "geometric, with ratio p·r instead of p, and no test on f_k can show it: the geometric models then "
    "overestimate, on simulated section-years with r = 0.7 (estim simulate --years 1 --retry 0.7; 3 seeds × "
    "2 sections) ztgeometric and oiztgeometric gave 1.15–1.25 × the people who attempted, 11 of their 12 "
    "intervals above it. Read their N̂ as an upper bound unless people retry; the border model estimates r "
    "from the in-country registers' linkage (docs/design.md §4, \"Single-register and closed families on the "
    'border records")'
)


class RepeatedTrialsWarning(UserWarning):
    """Repeat-apprehension frequencies of the border records fitted by a single-register family
    (`REPEATED_TRIALS`)."""


@dataclass(frozen=True)
class PeriodMonths:
    """The months of one period: which lie in the records' span, and which hold individual apprehension
    records of each section."""

    period: str
    months: list[str]  # every month of the period, "2017-01" …
    in_span: np.ndarray  # (month,) bool
    recorded: dict[str, np.ndarray]  # section -> (month,) bool: at least one apprehension record

    def covered(self) -> str:
        """The months of the period in the span, as runs of months."""
        return runs(self.months, self.in_span)

    def in_part(self) -> str:
        """``"the records cover only 6 of the period's 12 months (2017-01 … 2017-06)"``."""
        return (
            f"the records cover only {int(self.in_span.sum())} of the period's {len(self.months)} "
            f"months ({self.covered()})"
        )


def runs(labels: Sequence[str], mask: np.ndarray) -> str:
    """The labels where `mask` holds, consecutive ones as ``first … last``: "2017-01 … 2017-03, 2017-05"."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return "none"
    parts = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return ", ".join(labels[p[0]] + ("" if len(p) == 1 else f" … {labels[p[-1]]}") for p in parts)


def period_months(
    records: Any, stats: xr.Dataset, period: str, sections: Sequence[str]
) -> PeriodMonths:
    """The months of `period` (of the statistics' period length), the span's and each section's records."""
    kind = str(stats.attrs["period"])
    starts = dict(
        zip(
            (str(p) for p in stats["period"].values),
            stats["period_start"].values.astype("datetime64[M]"),
            strict=True,
        )
    )
    months = starts[period] + np.arange(MONTHS_PER[kind])
    span = stats["month"].values.astype("datetime64[M]")
    a = records.apprehensions
    seen = np.asarray(a["date"].values).astype("datetime64[M]")
    section = np.asarray(a["section_id"].astype(str).values)
    return PeriodMonths(
        period=period,
        months=[str(m) for m in months],
        in_span=np.isin(months, span),
        recorded={s: np.isin(months, seen[section == s]) for s in sections},
    )


def _where(period: str, section: str | None) -> str:
    return f"records, period {period}" + (f", section {section}" if section else "")


def refuse_unrecorded(records: Any, stats: xr.Dataset, section: str, period: str) -> PeriodMonths:
    """`DataFieldError` on ``section`` when the section has no individual apprehension records (it reports
    monthly totals), `EstimInputError` when it has none in the period: nothing to estimate. Else its months."""
    if not bool(stats["individual_records"].sel(section=section)):
        raise DataFieldError(
            "section",
            f"{section!r} has no record in apprehensions (its apprehensions, if any, are monthly totals "
            "in apprehension_totals), so nobody's repeat apprehensions are known and there is nothing to "
            "estimate from: fit a section with records in apprehensions "
            f"({', '.join(_recorded_sections(stats)) or 'none has any'})",
        )
    pm = period_months(records, stats, period, [section])
    if not pm.recorded[section].any():
        raise EstimInputError(
            f"{_where(period, section)}: apprehensions holds no record of section {section} dated in the "
            f"period ({pm.months[0]} … {pm.months[-1]}), so there is nothing to estimate; fit a period "
            "in which the section has records"
        )
    return pm


def _recorded_sections(stats: xr.Dataset) -> list[str]:
    individual = stats["individual_records"].values.astype(bool)
    return [str(s) for s in stats["section"].values[individual]]


# --------------------------------------------------------------------------------------------------------------
# Single register: f_k of one section and period


def period_frequencies(records: Any, fields: Mapping[str, Any]) -> xr.DataArray:
    """``frequency`` [category, k] of the spec's section and period, checked against the months the records
    hold (a period covered in part, months of the section without records: warned of, naming them)."""
    from estim.records.schemas import CATEGORIES
    from estim.statistics import sufficient_statistics

    category = fields.get("category")
    if category is not None and category not in CATEGORIES:
        raise DataFieldError(
            "category",
            f"one of {', '.join(CATEGORIES)} (the records' categories); got {category!r}",
        )
    stats = sufficient_statistics(records, period=fields["period_kind"], occasion=None)
    select_records(stats, fields)
    section, period = fields["section"], fields["period"]
    pm = refuse_unrecorded(records, stats, section, period)
    missing = pm.in_span & ~pm.recorded[section]
    said = []
    if not pm.in_span.all():
        said.append(pm.in_part())
    if missing.any():
        said.append(
            f"apprehensions holds no record of section {section} in {runs(pm.months, missing)} "
            f"({int(missing.sum())} of the period's {len(pm.months)} months, inside the records' span: "
            "a month nobody was apprehended in, or one missing from the file)"
        )
    if said:
        kept = int((pm.in_span & pm.recorded[section]).sum())
        warnings.warn(
            f"{_where(period, section)}: {'; and '.join(said)}. The frequencies count the apprehensions "
            f"of the {kept} months with records only, and N̂ describes the people apprehensible then, "
            f"not the whole period {period}; see {DOC}",
            UserWarning,
            stacklevel=3,
        )
    warnings.warn(
        RepeatedTrialsWarning(f"{_where(period, section)}: {REPEATED_TRIALS}"), stacklevel=3
    )
    f = stats["frequency"].sel(section=section, period=period)
    return f.sel(category=[category]) if category is not None else f


# --------------------------------------------------------------------------------------------------------------
# Closed families: capture histories over occasions


def covered_occasions(
    records: Any, stats: xr.Dataset, data: xr.Dataset, fields: Mapping[str, Any]
) -> xr.Dataset:
    """`data` (`history_data_from_statistics` of the spec's period) without its occasions outside the records'
    span (warned of, naming the months covered), refused when fewer than two occasions remain or an occasion
    has no apprehension record in a fitted section (`OCCASION_GAP`); occasions with records in only some of
    their months are warned of."""
    period = str(data.attrs["period"])
    strata = [str(s) for s in data["stratum"].values]
    section = fields.get("section")
    pm = period_months(records, stats, period, strata)
    n_occ = data.sizes["occasion"]
    per = len(pm.months) // n_occ  # months per occasion
    labels = [str(o) for o in data["occasion"].values]

    def months_of(j: int) -> slice:
        return slice(j * per, (j + 1) * per)

    keep = np.array([pm.in_span[months_of(j)].any() for j in range(n_occ)])
    where = _where(period, section)
    if keep.sum() < 2:
        raise EstimInputError(
            f"{where}: {pm.in_part()}, which hold {int(keep.sum())} of its {n_occ} {fields['occasion']}ly "
            "occasions: capture–recapture needs at least 2. Fit a period the records cover, or "
            'shorter occasions (occasion = "month")'
        )
    gaps, partial = [], []
    for s in strata:
        for j in np.flatnonzero(keep):
            m = months_of(int(j))
            held = pm.in_span[m] & pm.recorded[s][m]
            text = f"section {s}, occasion {labels[j]} ({runs(pm.months[m], np.ones(per, bool))})"
            if not held.any():
                gaps.append(text)
            elif not held.all():
                partial.append(f"{text}: records in {runs(pm.months[m], held)} only")
    if gaps:
        raise EstimInputError(
            f"{where}: apprehensions holds no record of {'; nor of '.join(gaps)}, though the records' "
            f"span covers {'it' if len(gaps) == 1 else 'them'} (rule {OCCASION_GAP}). An occasion on "
            "which nobody in a section was caught is read as one with a capture probability near zero: "
            "M0's N̂ rises, and Mt puts that occasion's capture probability at 0. If those months are "
            "missing from the file, fit a period (or a section) whose occasions all have records; if "
            'nobody was in fact caught then, fit longer occasions (occasion = "quarter") that hold '
            f"records; see {DOC}"
        )
    said = []
    if not keep.all():
        many = (~keep).sum() > 1
        said.append(
            f"{pm.in_part()}: occasion{'s' if many else ''} {runs(labels, ~keep).replace(' … ', '–')} "
            f"of {n_occ} {'lie' if many else 'lies'} outside them and {'are' if many else 'is'} left out"
        )
    if partial:
        said.append(
            "occasions with records in only some of their months (a shorter occasion, whose capture "
            f"probability M0 takes to be the others'): {'; '.join(partial)}"
        )
    if said:
        warnings.warn(
            f"{where}: {'; '.join(said)}. The capture histories and N̂ describe the months with records "
            f"only, not the whole period {period}; see {DOC}",
            UserWarning,
            stacklevel=3,
        )
    warnings.warn(OpenPopulationWarning(f"{where}: {NOT_CLOSED}"), stacklevel=3)
    if keep.all():
        return data
    return _drop_occasions(data, keep)


def _drop_occasions(data: xr.Dataset, keep: np.ndarray) -> xr.Dataset:
    """`data` on the occasions `keep` holds; the occasions left out must hold no capture."""
    capture = data["capture"].transpose("history", "occasion").values
    if capture[:, ~keep].any():
        raise AssertionError("an occasion outside the records' span holds captures")
    kept = capture[:, keep]
    out = data.isel(occasion=np.flatnonzero(keep))
    histories = ["".join(map(str, row)) for row in kept.tolist()]
    return out.assign_coords(history=histories)
