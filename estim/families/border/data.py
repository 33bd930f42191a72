"""The border model's data: what it reads from the monthly sufficient statistics, the section table and the
policy events (``border_data``), and the names of its categories, detectors and seasonal harmonics."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.families.border.land_flows import (
    refuse_land_flow_gaps,
    warn_checkpoints_not_reporting,
)
from estim.families.lists.gaps import QUIET_MONTH_CHANCE
from estim.families.record_periods import runs

CATEGORIES = ("border_resident", "labour_migrant", "transit_migrant", "smuggler", "bypasser")
JOURNEY_CATEGORIES = CATEGORIES[:4]  # log-linear journeys; bypassers follow the checkpoint flows
RESIDENT = "border_resident"
BYPASSER = "bypasser"
SURVEYED_WITHOUT_RECORDS = "surveyed_without_records"
"""The rule a section declared surveyed in sections.csv with no apprehension data at all breaks."""
SURVEYED_MONTH_GAP = "surveyed_month_gap"
"""The rule a surveyed section's months without records break when the section is too busy for them."""
SURVEYED_FROM_TOTALS = "surveyed_from_totals"
"""The rule a section sections.csv declares surveyed but known by monthly totals alone breaks (warned of)."""
UNSURVEYED_WITH_RECORDS = "unsurveyed_with_records"
"""The rule a section sections.csv declares not surveyed but with individual records breaks (warned of)."""
SURVEYED_MONTH_FROM_TOTALS = "surveyed_month_from_totals"
"""The rule a surveyed section's months given as monthly totals break: the model needs their records."""
TOTALS_ROW_MISSING = "totals_row_missing"
"""The rule a month reported by totals without some of its category × detector rows breaks (warned of)."""
SECTION_EVENT = "section_event"
"""The rule a policy event of one section breaks: the model reads border-wide ones only (warned of)."""
IDLE_EVENT = "idle_policy_event"
"""The rule a policy event in force in no month, or in every month, of the span breaks (left out, warned of)."""
EVENT_KIND_TWICE = "event_kind_twice"
"""The rule two border-wide policy events of one kind break: the model names an event by its kind."""
GAPS_DOC = 'docs/design.md, "One period of the records"'
DETECTORS = ("patrol", "technical", "informant")
HARMONICS = ("cos1", "sin1", "cos2", "sin2")


def policy_in_force(events: pd.DataFrame, months: np.ndarray) -> xr.DataArray:
    """I_e(t): the share of the days of month t on or after event e's start date (0 before, 1 after)."""
    first = np.asarray(months).astype("datetime64[M]").astype("datetime64[D]")
    nxt = (np.asarray(months).astype("datetime64[M]") + np.timedelta64(1, "M")).astype(
        "datetime64[D]"
    )
    days = (nxt - first).astype(int)
    rows = []
    for start in events["start_date"]:
        d = np.datetime64(pd.Timestamp(start).date(), "D")
        after = (nxt - np.maximum(first, d)).astype(int)
        rows.append(np.clip(after / days, 0.0, 1.0))
    return xr.DataArray(
        np.array(rows).reshape(len(events), len(first)),
        dims=("event", "month"),
        coords={
            "event": events["kind"].astype(str).tolist(),
            "month": months,
            # the dates, for figures that mark the events on their time axes
            "event_start": (
                "event",
                pd.to_datetime(events["start_date"]).to_numpy().astype("datetime64[ns]"),
            ),
        },
    )


def _refuse_unreported_months(stats: xr.Dataset, surveyed: np.ndarray) -> None:
    """A section without individual records is known only by its monthly totals, which list every month
    (zeros included): a month with no totals row is a month nobody reported, and the model would read it as
    a month without apprehensions, i.e. without crossings caught. So is a month in which no section has any
    apprehension data (records or totals): the span also covers the checkpoint records' months. Refuse
    both, naming the sections and months. A surveyed section's month without records, other sections
    having data, may be a true 0 and is checked by `_check_quiet_surveyed_months`. (Statistics saved before ``apprehensions_reported``
    existed are not checked.)"""
    if "apprehensions_reported" not in stats:
        return
    reported = stats["apprehensions_reported"].transpose("section", "month").values.astype(bool)
    # a month with no apprehension data anywhere (the span stretched by the checkpoint records): every
    # section's count would be 0, the surveyed ones' too
    gaps = (~surveyed[:, None] & ~reported) | ~reported.any(axis=0)[None, :]
    if not gaps.any():
        return
    months = [str(m)[:7] for m in stats["month"].values]
    lines = []
    for s in np.flatnonzero(gaps.any(axis=1)):
        missing = np.flatnonzero(gaps[s])
        runs = np.split(missing, np.flatnonzero(np.diff(missing) > 1) + 1)
        words = [months[r[0]] + ("" if len(r) == 1 else f" … {months[r[-1]]}") for r in runs]
        shown = ", ".join(words[:4]) + (
            f" and {len(words) - 4} more runs" if len(words) > 4 else ""
        )
        lines.append(
            f"{stats['section'].values[s]}: {shown} ({len(missing)} of {len(months)} months)"
        )
    raise EstimInputError(
        "apprehension_totals: months with no monthly total in a section without individual records, or "
        f"no apprehension data in any section, in the records' span {months[0]} … {months[-1]} "
        "(rule month_gap): "
        + "; ".join(lines)
        + ". The border model would read an unreported month as one without apprehensions. If nobody "
        "was apprehended, write that month's rows with 0; if the month was not reported, the records "
        "cannot be fitted as they are (the span runs from the first to the last month of the "
        "apprehensions, apprehension totals and checkpoint records)"
    )


def _declared(sections: pd.DataFrame, order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(section,) twice, in the statistics' order: the sections.csv column ``surveyed`` (the study surveyed
    it: individual records exist), and whether sections.csv says it at all (a row with that column)."""
    if "surveyed" not in sections.columns:
        return np.zeros(len(order), bool), np.zeros(len(order), bool)
    flag = sections["surveyed"].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))
    declared = dict(zip(sections["section_id"].astype(str), flag, strict=True))
    return (
        np.array([bool(declared.get(s, False)) for s in order]),
        np.array([s in declared for s in order]),
    )


def _declared_surveyed(sections: pd.DataFrame, order: list[str]) -> np.ndarray:
    """(section,) the sections.csv column ``surveyed`` in the statistics' order; False where sections.csv has
    no such column or no row."""
    return _declared(sections, order)[0]


def _warn_declared_otherwise(
    stats: xr.Dataset, sections: pd.DataFrame, surveyed: np.ndarray
) -> None:
    """The model reads a section as surveyed when apprehensions holds individual records of it, whatever
    sections.csv declares. A declared section known by its monthly totals alone (`SURVEYED_FROM_TOTALS`) is
    fitted from them, as a section without records: a sound fit of what the files hold, but not of the
    survey sections.csv describes (its repeat apprehensions, the apprehension probability's best evidence,
    may have been left out of the file). A section declared not surveyed with records
    (`UNSURVEYED_WITH_RECORDS`) is fitted as surveyed: right if the records are its own, wrong if they are
    another section's filed under its id. Either is warned of, naming the sections and what to correct; a
    declared section with no data at all is refused (`_refuse_surveyed_without_records`)."""
    order = [str(s) for s in stats["section"].values]
    declared, stated = _declared(sections, order)
    said = []
    from_totals = declared & ~surveyed
    if from_totals.any():
        names = ", ".join(order[i] for i in np.flatnonzero(from_totals))
        one = from_totals.sum() == 1
        said.append(
            f"sections.csv declares {'section' if one else 'sections'} {names} surveyed (column surveyed: "
            f"individual apprehension records exist), but apprehensions holds no record of "
            f"{'it' if one else 'them'}: {'it is' if one else 'they are'} fitted from "
            f"{'its' if one else 'their'} monthly totals in apprehension_totals, as sections without "
            "individual records are, without repeat apprehensions or register linkage (rule "
            f"{SURVEYED_FROM_TOTALS}). If the records were left out of apprehensions, restore them; if only "
            "the totals exist, set surveyed to false in sections.csv"
        )
    with_records = stated & ~declared & surveyed
    if with_records.any():
        idx = np.flatnonzero(with_records)
        recorded = (stats["frequency"] * stats["k"]).sum(["period", "category", "k"]).values
        names = ", ".join(order[i] for i in idx)
        counts = ", ".join(f"{order[i]}: {int(recorded[i]):,} apprehensions" for i in idx)
        one = len(idx) == 1
        said.append(
            f"sections.csv declares {'section' if one else 'sections'} {names} not surveyed (column "
            f"surveyed false), but apprehensions holds individual records of {'it' if one else 'them'} "
            f"({counts}): "
            f"{'it is' if one else 'they are'} fitted as surveyed, {'its' if one else 'their'} repeat "
            "apprehensions informing the apprehension probability of every section (rule "
            f"{UNSURVEYED_WITH_RECORDS}). If the records are {'its' if one else 'their'} own, set surveyed "
            "to true in sections.csv; if they are another section's, correct their section_id"
        )
    if said:
        warnings.warn(f"{'; and '.join(said)}; see {GAPS_DOC}", UserWarning, stacklevel=3)


def _refuse_surveyed_without_records(
    stats: xr.Dataset, sections: pd.DataFrame, surveyed: np.ndarray
) -> None:
    """A section sections.csv declares surveyed with no individual apprehension record in the whole span and
    no monthly total either: read as it stands it is a section with no apprehension data, and a month_gap
    refusal would advise writing its months as 0, i.e. a section where nobody is ever apprehended (the model
    would infer near-zero crossings or a near-zero apprehension probability there). Refused naming the
    section, the files and the rule `SURVEYED_WITHOUT_RECORDS`. (A declared section reported by monthly totals
    instead is read from them, as any section with totals, with a warning: `_warn_declared_otherwise`.)"""
    order = [str(s) for s in stats["section"].values]
    declared = _declared_surveyed(sections, order)
    if "apprehensions_reported" in stats:
        reported = stats["apprehensions_reported"].transpose("section", "month").values.astype(bool)
        none = ~reported.any(axis=1)
    else:
        none = stats["apprehended"].sum(["month", "category", "detector"]).values == 0
    bad = declared & ~surveyed & none
    if not bad.any():
        return
    names = ", ".join(order[i] for i in np.flatnonzero(bad))
    months = stats["month"].values
    span = f"{str(months[0])[:7]} … {str(months[-1])[:7]}" if len(months) else "none"
    raise EstimInputError(
        f"sections.csv declares {'section' if bad.sum() == 1 else 'sections'} {names} surveyed (column "
        "surveyed: individual apprehension records exist), but apprehensions holds no record of "
        f"{'it' if bad.sum() == 1 else 'them'} in the records' span {span}, and apprehension_totals no "
        f"monthly total either (rule {SURVEYED_WITHOUT_RECORDS}). The border model would read every month "
        "there as one without apprehensions: near-zero crossings or a near-zero apprehension probability, "
        "a confident wrong number. Restore the section's records (or its monthly totals, and set surveyed "
        f"to false); see {GAPS_DOC}"
    )


def _check_quiet_surveyed_months(
    stats: xr.Dataset, surveyed: np.ndarray, *, allow_empty_months: bool
) -> int:
    """A surveyed section's month without any record (other sections having data) is read as a month in
    which nobody was apprehended there. With q apprehensions in the section's lower-quartile month of the span
    (a quiet season's, not the median's: seasons differ; over the months with records, since the missing
    ones are what is in question), a run of k months with none comes by chance about
    e^(−q·k) of the time at a given place, and about T·e^(−q·k) somewhere in the span's T months (as for the
    lists, `estim.families.lists.gaps`, which checks one period): refused when T·e^(−q·k) <
    `QUIET_MONTH_CHANCE` for the section's longest such run (rule `SURVEYED_MONTH_GAP`, naming the file,
    sections and months) unless ``allow_empty_months``, else warned of. Returns the number of sections whose
    runs ``allow_empty_months`` declared true zeros."""
    if "apprehensions_reported" not in stats or not surveyed.any():
        return 0
    reported = stats["apprehensions_reported"].transpose("section", "month").values.astype(bool)
    counts = stats["apprehended"].sum(["category", "detector"]).transpose("section", "month").values
    months = [str(m)[:7] for m in stats["month"].values]
    anywhere = reported.any(axis=0)  # months with no data anywhere are refused as month_gap
    refused, declared, sparse = [], [], []
    for s in np.flatnonzero(surveyed):
        missing = ~reported[s] & anywhere
        if not missing.any():
            continue
        # over the months the file reports: the missing months counted as zeros would lower the quartile,
        # and a longer gap would pass more easily (seven of 24 months missing made it 0, read as zeros)
        quiet = float(np.quantile(counts[s][reported[s]], 0.25))
        idx = np.flatnonzero(missing)
        longest = max(len(r) for r in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1))
        text = (
            f"section {stats['section'].values[s]} in {runs(months, missing)} ({int(missing.sum())} of "
            f"{len(months)} months; {quiet:,.0f} apprehensions in its lower-quartile month)"
        )
        if len(months) * np.exp(-quiet * longest) >= QUIET_MONTH_CHANCE:
            sparse.append(text)
        else:
            (declared if allow_empty_months else refused).append(text)
    if refused:
        raise EstimInputError(
            f"apprehensions holds no record of {'; nor of '.join(refused)}, though other sections have "
            f"apprehension data then (rule {SURVEYED_MONTH_GAP}). With that many apprehensions in the "
            f"section's lower-quartile month, so long a run of months with none would come by chance "
            f"anywhere in the span less than once in {1 / QUIET_MONTH_CHANCE:,.0f}: the months are missing from the file, and the border model "
            "would read them as months nobody was apprehended in there (near-zero crossings or a near-zero "
            "apprehension probability). Restore them; if nobody was in fact apprehended then, declare it "
            "([data] allow_empty_months = true in the spec, or border_data(..., allow_empty_months=True) "
            f"from Python); see {GAPS_DOC}"
        )
    said = []
    if declared:
        said.append(f"{'; '.join(declared)}: declared months nobody was apprehended in")
    if sparse:
        said.append(
            f"{'; '.join(sparse)}: read as months nobody was apprehended in there, too few records to "
            "tell them from months missing from the file"
        )
    if said:
        warnings.warn(
            f"apprehensions holds no record of {'; and of '.join(said)} (other sections have apprehension "
            "data then). If they are missing from the file, the border model underestimates the section's "
            f"crossings or apprehension probability; see {GAPS_DOC}",
            UserWarning,
            stacklevel=3,
        )
    return len(declared)


def _listed(items: list[str], most: int = 8) -> str:
    """``a; b; c`` with at most `most` items, the rest counted."""
    more = f"; and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more


def _refuse_surveyed_months_from_totals(stats: xr.Dataset, surveyed: np.ndarray) -> None:
    """A surveyed section's apprehensions are read through its repeat-apprehension frequencies, which only
    individual records give: its months given as monthly totals would be months whose frequencies add up to 0
    against the totals. Refused naming the file, sections and months (`SURVEYED_MONTH_FROM_TOTALS`)."""
    if "totals_row" not in stats or not surveyed.any():
        return
    by_totals = stats["totals_row"].any(["category", "detector"]).transpose("section", "month")
    bad = surveyed[:, None] & by_totals.values
    if not bad.any():
        return
    months = [str(m)[:7] for m in stats["month"].values]
    said = [
        f"section {stats['section'].values[s]} in {runs(months, bad[s])} ({int(bad[s].sum())} of "
        f"{len(months)} months)"
        for s in np.flatnonzero(bad.any(axis=1))
    ]
    raise EstimInputError(
        f"apprehension_totals: monthly totals of a surveyed section (one with individual records in "
        f"apprehensions): {'; '.join(said)} (rule {SURVEYED_MONTH_FROM_TOTALS}). The border model reads a "
        "surveyed section's apprehensions through its repeat-apprehension frequencies, which only individual "
        "records give: it needs individual records in apprehensions for each month of a surveyed section. "
        "Put those months' records in apprehensions (and their rows out of apprehension_totals), or give all "
        f"of the section's months as totals (it is then fitted as a section without records); see {GAPS_DOC}"
    )


def _cells(missing: np.ndarray) -> str:
    """(category, detector) cells without a totals row, in words: whole categories, whole detectors, pairs."""
    cats, dets = missing.all(axis=1), missing.all(axis=0)
    rest = np.argwhere(missing & ~cats[:, None] & ~dets[None, :])
    return ", ".join(
        [f"category {CATEGORIES[c]}" for c in np.flatnonzero(cats)]
        + [f"detector {DETECTORS[d]}" for d in np.flatnonzero(dets)]
        + [f"{CATEGORIES[c]} × {DETECTORS[d]}" for c, d in rest]
    )


def _warn_missing_totals_rows(stats: xr.Dataset) -> None:
    """A month a section reports by monthly totals lists its 5 × 3 category × detector rows, zeros included;
    one it leaves out is read as 0. Warned of, not refused as an unreported month is (`month_gap`): the month
    was reported, and an export that drops zero counts leaves out exactly such rows. Names the file, each
    section, its months (all of them when a category or detector is absent throughout) and the cells
    (`TOTALS_ROW_MISSING`)."""
    if "totals_row" not in stats:
        return
    rows = stats["totals_row"].transpose("section", "month", "category", "detector").values
    months = [str(m)[:7] for m in stats["month"].values]
    said = []
    for s in np.flatnonzero(rows.any(axis=(1, 2, 3))):
        listed = rows[s].any(axis=(1, 2))
        lacking = listed[:, None, None] & ~rows[s]
        alike: dict[bytes, np.ndarray] = {}  # months lacking the same cells, said together
        for t in np.flatnonzero(lacking.any(axis=(1, 2))):
            alike.setdefault(lacking[t].tobytes(), np.zeros(len(months), bool))[t] = True
        for key, mask in alike.items():
            when = runs(months, mask)
            if mask.sum() == listed.sum():
                when = f"every month it reports ({when})"
            cells = np.frombuffer(key, bool).reshape(rows.shape[2:])
            said.append(
                f"section {stats['section'].values[s]} in {when}: no row of {_cells(cells)}"
            )
    if said:
        warnings.warn(
            "apprehension_totals: months a section reports by monthly totals without some of their category "
            f"× detector rows, read as 0 apprehensions (rule {TOTALS_ROW_MISSING}): {_listed(said)}. Each "
            f"such month lists its {len(CATEGORIES) * len(DETECTORS)} rows ({len(CATEGORIES)} categories × "
            f"{len(DETECTORS)} detectors), zeros included: if the rows were left out because nobody was "
            "apprehended (some exports drop zero counts), write them with 0; if they were not reported, the "
            "border model reads them as nobody apprehended (too few crossings, or too low an apprehension "
            f"probability); see {GAPS_DOC}",
            UserWarning,
            stacklevel=3,
        )


def _border_events(events: pd.DataFrame, months: np.ndarray) -> pd.DataFrame:
    """The policy events the border model reads: the border-wide ones (section_id ``*``) that change within
    the span. An event of one section is left out with a warning (`SECTION_EVENT`: the model has one effect
    per event for every section); one in force in no month or in every month with a warning too
    (`IDLE_EVENT`: the data say nothing of its effect, which would be its prior alone or the level's).
    Two of one kind are refused (`EVENT_KIND_TWICE`): the model names an event's effect by its kind."""
    where = events["section_id"].astype(str)
    said = []
    local = events[where != "*"]
    if len(local):
        named = (
            f"{e} (section_id {s})"
            for e, s in zip(local["event_id"], local["section_id"], strict=True)
        )
        said.append(
            f"{', '.join(named)} concern one section, and the border model reads only border-wide events (section_id *): "
            f"left out (rule {SECTION_EVENT})"
        )
    events = events[where == "*"]
    in_force = policy_in_force(events, months).values
    idle = (in_force.max(axis=1, initial=0) == 0) | (in_force.min(axis=1, initial=1) == 1)
    if idle.any():
        span = f"{str(months[0])[:7]} … {str(months[-1])[:7]}"
        shown = [
            f"{e} (from {str(d)[:10]}, in force in {'every' if i.min() == 1 else 'no'} month)"
            for e, d, i in zip(
                events["event_id"][idle], events["start_date"][idle], in_force[idle], strict=True
            )
        ]
        said.append(
            f"{', '.join(shown)} change nothing within the records' span {span}: the data say nothing of "
            "the effect (in no month it would be its prior alone; in every month it cannot be told from "
            f"the level of crossings), so the border model leaves them out (rule {IDLE_EVENT})"
        )
        events = events[~idle]
    if said:
        warnings.warn(f"policy_events: {'; and '.join(said)}", UserWarning, stacklevel=3)
    kinds = events["kind"].astype(str)
    twice = kinds.duplicated(keep=False)
    if twice.any():
        raise EstimInputError(
            "policy_events: border-wide events of one kind, "
            + "; ".join(
                f"{k}: {', '.join(events['event_id'][kinds == k].astype(str))}"
                for k in dict.fromkeys(kinds[twice])
            )
            + f" (rule {EVENT_KIND_TWICE}). The border model names each event's effect by its kind and "
            "cannot tell two of one kind apart: keep one event of each kind in the records' span"
        )
    return events


def border_data(
    stats: xr.Dataset,
    sections: pd.DataFrame,
    events: pd.DataFrame,
    *,
    linkage: xr.Dataset | None,
    allow_empty_months: bool = False,
) -> xr.Dataset:
    """The border model's data from the sufficient statistics (``sufficient_statistics(period="month")``),
    the section table and the policy events: totals, repeat-apprehension frequencies of the surveyed
    sections, land flows and waits, section covariates and policy indicators; with ``linkage``
    (`estim.statistics.linkage.linkage_statistics` on the same sections, months and categories) the surveyed
    sections' apprehended journeys linked to the in-country registers, which identify the retry probability.
    With ``linkage=None`` the data say nothing about r (``linked_journeys`` has the one pattern "none", no
    lists): a deliberate choice, hence a required argument. `records_data` makes all of it from records.

    A section sections.csv declares surveyed with no apprehension data is refused
    (`SURVEYED_WITHOUT_RECORDS`), and so are a surveyed section's months without records when its quiet
    months' counts make them implausible (`SURVEYED_MONTH_GAP`; ``allow_empty_months=True``, a spec's
    ``[data] allow_empty_months = true``, declares them true zeros, with a warning; declaring it where nothing
    is refused is warned of); sparser sections' such months are warned of. A section sections.csv declares
    surveyed but known by monthly totals alone, and one it declares not surveyed with individual records, are
    read from what the apprehension files hold, with a warning (`SURVEYED_FROM_TOTALS`,
    `UNSURVEYED_WITH_RECORDS`). Refused too: a surveyed section's months given as totals
    (`SURVEYED_MONTH_FROM_TOTALS`), a section-month without land flow (`estim.families.border.land_flows.LAND_FLOW_GAP`)
    and two border-wide policy events of one kind (`EVENT_KIND_TWICE`); warned of: totals months missing some
    of their rows (`TOTALS_ROW_MISSING`), land checkpoints without records in some months
    (`estim.families.border.land_flows.CHECKPOINT_NOT_REPORTING`), and policy events left out, of one section
    (`SECTION_EVENT`) or changing nothing in the span (`IDLE_EVENT`)."""
    if stats.attrs.get("period") != "month":
        raise EstimInputError(
            "the border model needs monthly repeat-apprehension frequencies: "
            "sufficient statistics with period='month'"
        )
    missing = [c for c in CATEGORIES if c not in stats["category"].values]
    if missing:
        raise EstimInputError(f"the records lack categories {missing}")
    stats = stats.sel(category=list(CATEGORIES), detector=list(DETECTORS))
    months = stats["month"].values
    by_detector = stats["apprehended"].transpose("section", "month", "category", "detector")
    apprehensions = by_detector.sum("detector")
    surveyed = stats["individual_records"].values.astype(bool)
    _refuse_surveyed_without_records(stats, sections, surveyed)
    _refuse_surveyed_months_from_totals(stats, surveyed)
    _warn_declared_otherwise(stats, sections, surveyed)
    _refuse_unreported_months(stats, surveyed)
    _warn_missing_totals_rows(stats)
    declared = _check_quiet_surveyed_months(stats, surveyed, allow_empty_months=allow_empty_months)
    if allow_empty_months and not declared:
        # a declaration about these records: where they hold nothing it would excuse, it is idle
        warnings.warn(
            "allow_empty_months = true declares nothing here ([data] allow_empty_months, or border_data's "
            "keyword): no surveyed section's run of months without records would be refused (rule "
            f"{SURVEYED_MONTH_GAP}), so it changes nothing; remove it. See {GAPS_DOC}",
            UserWarning,
            stacklevel=2,
        )
    freq = stats["frequency"].transpose("section", "period", "category", "k").values
    if freq.shape[1] != len(months):
        raise EstimInputError("frequency periods do not match the months")
    k = stats["k"].values.astype(np.int64)
    journeys_apprehended = freq.sum(axis=3)
    from_freq = (freq * k).sum(axis=3)
    bad = surveyed[:, None, None] & (from_freq != apprehensions.values)
    if bad.any():
        s, t, c = np.argwhere(bad)[0]
        raise EstimInputError(
            f"section {stats['section'].values[s]}, month {str(months[t])[:7]}, category "
            f"{CATEGORIES[c]}: the repeat-apprehension frequencies add up to {from_freq[s, t, c]} "
            f"apprehensions but the totals say {apprehensions.values[s, t, c]}"
        )
    sec = sections.set_index(sections["section_id"].astype(str))
    order = [str(s) for s in stats["section"].values]
    absent = [s for s in order if s not in sec.index]
    if absent:
        raise EstimInputError(f"sections.csv has no row for {absent}")
    sec = sec.loc[order]
    month_index = np.arange(len(months))
    month_of_year = pd.DatetimeIndex(months).month.values
    refuse_land_flow_gaps(stats, GAPS_DOC)
    if "checkpoint_reported" in stats:
        warn_checkpoints_not_reporting(stats, GAPS_DOC)
    flow = stats["land_crossings_foreigners"].transpose("section", "month").values
    wait = stats["land_mean_wait_minutes"].transpose("section", "month").values
    events = _border_events(events, months)
    data = xr.Dataset(
        {
            "apprehensions": apprehensions.astype(np.int64),
            "apprehensions_by_detector": by_detector.astype(np.int64),
            "apprehended_journeys": (
                ("section", "month", "category"),
                np.where(surveyed[:, None, None], journeys_apprehended, -1).astype(np.int64),
            ),
            "frequency": (("section", "month", "category", "k"), freq.astype(np.int64)),
            "surveyed": ("section", surveyed),
            "length_km": ("section", sec["length_km"].to_numpy(float)),
            "border_population": ("section", sec["border_population"].to_numpy(float)),
            "terrain": ("section", sec["terrain"].astype(str).to_numpy()),
            "land_foreign_crossings": (("section", "month"), flow.astype(np.int64)),
            "land_mean_wait": (("section", "month"), wait.astype(float)),
            "years": ("month", month_index / 12.0),
            "month_of_year": ("month", month_of_year.astype(np.int64)),
            "policy_in_force": policy_in_force(events, months),
        },
        coords={
            "section": order,
            "month": months,
            "category": list(CATEGORIES),
            "detector": list(DETECTORS),
            "k": k,
            "year": ("month", pd.DatetimeIndex(months).year.values.astype(np.int64)),
        },
    )
    if linkage is None:
        shape = data["apprehensions"].shape
        linkage = xr.Dataset(
            {
                "linked_journeys": (
                    ("section", "month", "category", "link_pattern"),
                    np.zeros((*shape, 1), np.int64),
                ),
                "before_journeys": (
                    ("section", "month", "category", "link_pattern"),
                    np.zeros((*shape, 1), np.int64),
                ),
            },
            coords={"link_pattern": ["none"], "in_country_list": np.array([], dtype=str)},
        )
    else:
        linkage = linkage.assign_coords(
            section=data["section"].values, month=data["month"].values
        ).transpose("section", "month", "category", ...)
        if list(linkage["category"].values) != list(CATEGORIES):
            raise EstimInputError("linkage statistics: categories differ from the border model's")
    data["linked_journeys"] = linkage["linked_journeys"].astype(np.int64)
    data["before_journeys"] = linkage["before_journeys"].astype(np.int64)
    data = data.assign_coords(in_country_list=linkage["in_country_list"].values.astype(str))
    data.attrs["link_window_days"] = int(linkage.attrs.get("link_window_days", 0))
    data.attrs["description"] = (
        "border model data: monthly apprehensions, repeat frequencies, flows, register linkage"
    )
    return data


def harmonics(month_of_year: np.ndarray) -> np.ndarray:
    """The seasonal regressors cos/sin of 2πm/12 and 4πm/12 per month (month, harmonic)."""
    w = 2 * np.pi * month_of_year / 12.0
    return np.stack([np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)], axis=1)


def no_bypass_flow(data: xr.Dataset) -> np.ndarray:
    """(section, month, category) True in the bypasser cells of months without foreign land crossings at the
    section's checkpoints: no bypassers can occur there, so those cells carry no likelihood and no draws."""
    no_flow = data["land_foreign_crossings"].values == 0
    return no_flow[:, :, None] & (np.array(CATEGORIES) == BYPASSER)[None, None, :]
