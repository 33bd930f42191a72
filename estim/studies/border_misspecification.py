"""Misspecification study of the border model (issue 17): is the whole border's count of unobserved crossings
still covered at its nominal 90 % when the simulated world breaks the model's assumptions — and, where it is
not, does the fit refuse to give a number?

The simulator's world varies over a grid of cells: its retry probability r (a person apprehended tries again
with probability r; the model estimates r from the linkage of apprehended journeys to the in-country registers)
and the spread σ of a person-level frailty on the apprehension hazard (``apprehension_frailty_sd``: people of
one cell differ in how easily they are caught; the model assumes they do not). In each cell, dataset i is the
recovery study's dataset i (`estim.studies.border_recovery`: `perturbed_config(seed + i)` and simulator seed
``seed + i``) with r and σ replaced, so the cells share their random numbers and differ only by the design; the
cell r = 1, σ = 0 is the recovery design itself. Every dataset is fitted as ``estim fit`` fits
``models/border.toml`` (the test of the repeat counts' geometric law before sampling, gate, automatic retries,
named posterior predictive checks) and **refused** when the test before sampling fails (no fit is made: the
rows carry the truth and no estimate), or its last attempt fails the gate or a predictive check.

A cell **passes** when, among its accepted fits, the coverage of the whole border's 90 % intervals — of the
period total and of the years — is not significantly below 0.90 (one-sided exact binomial p > 0.01; the
years counted at their effective number, `estim.studies.rows.below_nominal_by_dataset`, since one dataset's
years miss together) and the section-years' coverage is at least 0.80. A cell that does not pass must be **refused**: refused in at least
90 % of its datasets. Otherwise it **FAILS**: the fit gives a confident wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estim.errors import EstimInputError
from estim.families.border.revision import MODEL_REVISION
from estim.io import without_error
from estim.studies.border_recovery import (
    CELL,
    DATASET,
    DEFAULT_STUDY_SEED,
    Design,
    run_designs,
    study_rows,
)
from estim.studies.rows import below_nominal, below_nominal_by_dataset, bootstrap_coverage, flag

RETRIES = (0.6, 0.8, 1.0)
"""The simulator's retry probabilities r of the grid."""
FRAILTIES = (0.0, 0.5)
"""The simulator's frailty spreads σ (sd of the log frailty) of the grid."""
N_SEEDS = 20
P_MIN = (
    0.01  # a coverage is "significantly below 0.90" when its one-sided binomial p is at most this
)
SECTION_YEAR_FLOOR = 0.80  # the least section-year coverage of a passing cell
REFUSED_SHARE = 0.9  # the least share of refused datasets of a cell that cannot pass
BASELINE_REFUSALS = 0.1  # the most share of refused datasets at r = 1 with no frailty
REGISTER_DATING = "delay"
"""The simulator's default dating of register entries (a delay after the crossing)."""
DATINGS = ("delay", "stay")
FIT_COLUMNS = (
    "covered",
    "border_covered",
    "border_period_truth",
    "border_period_median",
    "border_period_covered",
    "retry_median",
    "retry_covered",
    "ppc_repeat_dispersion",
)


def designs(
    retries: Sequence[float] = RETRIES,
    frailties: Sequence[float] = FRAILTIES,
    n_seeds: int = N_SEEDS,
    seed: int = DEFAULT_STUDY_SEED,
    register_dating: str = REGISTER_DATING,
) -> list[Design]:
    """The datasets of the study, seed-major: dataset 0 of every cell, then dataset 1 of every cell, …, so that
    a study stopped part-way has the same number of datasets (±1) in every cell. Dataset i of every cell has
    simulator seed ``seed + i``, and is labelled by that seed's offset from `DEFAULT_STUDY_SEED` (so runs
    started at another ``seed`` and merged into one CSV never share a ``dataset`` label). ``register_dating``:
    how the simulator dates the in-country registers' entries (``SimulationConfig.register_dating``: "delay",
    the default, or "stay", within the person's stay), a further misspecification of the linkage's symmetric
    background; a study's CSV holds one dating (`check_register_dating`)."""
    _check_dating(register_dating)
    dating = {} if register_dating == REGISTER_DATING else {"register_dating": register_dating}
    return [
        Design(
            seed + i - DEFAULT_STUDY_SEED,
            seed + i,
            {"retry_probability": float(r), "apprehension_frailty_sd": float(f), **dating},
        )
        for i in range(n_seeds)
        for r in retries
        for f in frailties
    ]


def misspecification_study(
    retries: Sequence[float] = RETRIES,
    frailties: Sequence[float] = FRAILTIES,
    n_seeds: int = N_SEEDS,
    seed: int = DEFAULT_STUDY_SEED,
    *,
    register_dating: str = REGISTER_DATING,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    client: Any = None,
    **sampler: Any,
) -> pd.DataFrame:
    """Run the grid ``retries`` × ``frailties`` with ``n_seeds`` datasets a cell (`designs`), each fitted with
    the shipped spec (``sampler`` may override its draws, tune, chains, target_accept or retries, for tests).
    Returns one row per dataset × section × year (`border_recovery.dataset_rows`'s columns). With ``out`` the
    CSV is rewritten after every dataset; with ``resume`` the (cell, seed) already in it are skipped (refused
    when its rows were made with other options — the register dating, the seed, the sampler —:
    `estim.resume`; the cells are the rows' own, so a resumed run may add cells); without it a
    non-empty ``out`` is refused unless ``force``; with a dask ``client`` the datasets run as tasks on its
    workers (`border_recovery.run_designs`)."""
    plan = designs(retries, frailties, n_seeds, seed, register_dating)
    options = {
        "study": "border_misspecification",
        "model_revision": MODEL_REVISION,
        "register_dating": register_dating,
        "seed": int(seed),
        **sampler,
    }
    df = run_designs(
        plan,
        out=out,
        resume=resume,
        force=force,
        progress=progress,
        client=client,
        study=study_rows(options),
        **sampler,
    )
    df.attrs.update(
        retries=list(retries),
        frailties=list(frailties),
        n_seeds=n_seeds,
        seed=seed,
        register_dating=register_dating,
        **sampler,
    )
    return df


def _check_dating(register_dating: str) -> None:
    if register_dating not in DATINGS:
        raise EstimInputError(
            f"register_dating: one of {', '.join(DATINGS)}, got {register_dating!r}"
        )


def register_datings(rows: pd.DataFrame) -> pd.Series:
    """Each row's simulated register dating (rows made before the column existed were dated by delay)."""
    if "sim_register_dating" not in rows:
        return pd.Series(REGISTER_DATING, index=rows.index)
    return rows["sim_register_dating"].fillna(REGISTER_DATING).astype(str)


def check_register_dating(rows: pd.DataFrame, register_dating: str, where: str) -> None:
    """Refuse rows of another register dating than ``register_dating`` (a resumed study would skip their
    datasets as done, and its cells would mix two designs)."""
    other = sorted(set(register_datings(rows)) - {register_dating})
    if other:
        raise EstimInputError(
            f"{where}: its rows were simulated with register_dating {', '.join(other)}, not "
            f"{register_dating!r}; write this study to another file"
        )


# --------------------------------------------------------------------------------------------------------------
# summary


def _share(k: int, n: int) -> float:
    return k / n if n else float("nan")


def cell_summary(rows: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """The verdict on one cell from its rows (`dataset_rows`'s, every dataset of one r and σ): datasets run,
    errors, retried, refused (by the gate, by a predictive check — before sampling, or after passing the gate —
    either), the datasets the test of the repeat counts before sampling was made on and failed, accepted;
    among the accepted fits the coverage of the whole border's period totals and years (with their one-sided
    binomial p-values of a coverage below 0.90: the period totals one a dataset, the years by dataset —
    `below_nominal_by_dataset`, read by the verdict — and, beside it, as if independent) and of the section-years (with a dataset-bootstrap ``level``
    interval), the median relative error of the period total's posterior median, r's posterior median (median
    over datasets) and the coverage of its 90 % interval; and the verdict (`verdict`)."""
    # a cell whose every dataset raised has none of the columns of a fit
    rows = rows.reindex(columns=rows.columns.union(FIT_COLUMNS, sort=False))
    per = rows.drop_duplicates(list(DATASET))
    ran = per[without_error(per["error"])]
    ok = rows[without_error(rows["error"])]
    accepted_sets = ran[~flag(ran["refused"])]
    accepted = ok[~flag(ok["refused"])]
    years = accepted.drop_duplicates([*DATASET, "year"])
    refused = int(flag(ran["refused"]).sum())
    period_rel = (
        accepted_sets["border_period_median"] - accepted_sets["border_period_truth"]
    ) / accepted_sets["border_period_truth"]
    sy_lo, sy_hi = bootstrap_coverage(accepted, "covered", level, by=DATASET)
    out = {
        "retry": float(per["sim_retry"].iloc[0]),
        "frailty": float(per["sim_frailty"].iloc[0]),
        "seeds": int(len(per)),
        "errors": int(len(per) - len(ran)),
        "retried": int((ran["attempts"] > 1).sum()),
        "refused_gate": int(flag(ran["refused_gate"]).sum()),
        "refused_ppc": int(flag(ran["refused_ppc"]).sum()),
        "refused": refused,
        "refused_share": _share(refused, len(ran)),
        # the test of the repeat counts made before sampling: datasets it was made on, and failed
        "dispersion_tested": int(ran["ppc_repeat_dispersion"].notna().sum()),
        "dispersion_failed": int(
            (ran["ppc_repeat_dispersion"].notna() & ~flag(ran["ppc_repeat_dispersion"])).sum()
        ),
        "accepted": int(len(accepted_sets)),
        "period_covered": int(flag(accepted_sets["border_period_covered"]).sum()),
        "period_n": int(len(accepted_sets)),
        "period_coverage": _share(
            int(flag(accepted_sets["border_period_covered"]).sum()), len(accepted_sets)
        ),
        "period_p": below_nominal(accepted_sets["border_period_covered"]),
        "years_covered": int(flag(years["border_covered"]).sum()),
        "years_n": int(len(years)),
        "years_coverage": _share(int(flag(years["border_covered"]).sum()), len(years)),
        "years_p": below_nominal_by_dataset(years, "border_covered", by=DATASET),
        "years_p_independent": below_nominal(years["border_covered"]),
        "section_years_covered": int(flag(accepted["covered"]).sum()),
        "section_years_n": int(len(accepted)),
        "section_years_coverage": _share(int(flag(accepted["covered"]).sum()), len(accepted)),
        "section_years_lo": sy_lo,
        "section_years_hi": sy_hi,
        "period_median_rel_error": float(period_rel.median()) if len(period_rel) else float("nan"),
        "retry_median": float(accepted_sets["retry_median"].median())
        if len(accepted_sets)
        else float("nan"),
        "retry_coverage": _share(
            int(flag(accepted_sets["retry_covered"]).sum()), len(accepted_sets)
        ),
    }
    out["verdict"] = verdict(out)
    return out


def verdict(cell: dict[str, Any]) -> str:
    """ "passes" when the accepted fits' whole-border coverage — years and period totals — is not significantly
    below 0.90 (both p > `P_MIN`) and their section-year coverage is at least `SECTION_YEAR_FLOOR`;
    otherwise "refused" when at least `REFUSED_SHARE` of the datasets that ran were refused; otherwise
    "FAILS" (accepted fits whose intervals miss: a confident wrong number); "no data" when none ran."""
    if cell["seeds"] - cell["errors"] == 0:
        return "no data"
    passes = (
        cell["accepted"] > 0
        and cell["years_p"] > P_MIN
        and cell["period_p"] > P_MIN
        and cell["section_years_coverage"] >= SECTION_YEAR_FLOOR
    )
    if passes:
        return "passes"
    if cell["refused_share"] >= REFUSED_SHARE:
        return "refused"
    return "FAILS"


def misspecification_summary(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per cell (r, σ) of a study's rows: `cell_summary`'s columns, ordered by r then σ."""
    datings = sorted(set(register_datings(df)))
    if len(datings) > 1:
        raise EstimInputError(
            f"the rows mix register datings ({', '.join(datings)}): summarise each dating's rows apart"
        )
    cells = [cell_summary(g, level) for _, g in df.groupby(list(CELL), sort=True)]
    out = pd.DataFrame(cells)
    if datings and datings != [REGISTER_DATING]:
        out["register_dating"] = datings[0]
    return out


def requirements(summary: pd.DataFrame) -> dict[str, bool | None]:
    """The issue's done-when on a summary: every cell has `N_SEEDS` seeds, passes or is refused (none FAILS), and at r = 1 with no
    frailty (the model's own world) at most `BASELINE_REFUSALS` of the datasets are refused (None when that
    cell was not run)."""
    base = summary[np.isclose(summary["retry"], 1.0) & np.isclose(summary["frailty"], 0.0)]
    return {
        f"every cell has ≥ {N_SEEDS} seeds": bool((summary["seeds"] >= N_SEEDS).all()),
        "no cell fails": bool(summary["verdict"].isin(["passes", "refused"]).all()),
        "r = 1, no frailty: refusals at most 10 %": (
            bool(base["refused_share"].iloc[0] <= BASELINE_REFUSALS) if len(base) else None
        ),
    }


FAR = 0.3  # an accepted period total off by more than this share of the truth is named, whatever the verdict


def far_misses(rows: pd.DataFrame, threshold: float = FAR) -> pd.DataFrame:
    """The accepted fits (not refused, no error) whose whole-border period total, as its posterior median, is
    off by more than ``threshold`` of the truth: one row a dataset, with its cell, seed, relative error, whether
    the 90 % interval still covered the truth, and r's posterior median and 90 % interval. A cell's verdict
    allows a few misses among its datasets; these are the fits whose reader would be misled by one number."""
    rows = rows.reindex(columns=rows.columns.union(FIT_COLUMNS, sort=False))
    per = rows.drop_duplicates(list(DATASET))
    per = per[without_error(per["error"]) & ~flag(per["refused"])]
    rel = per["border_period_median"] / per["border_period_truth"] - 1
    far = per.assign(period_rel_error=rel)[rel.abs() > threshold]
    keep = [*DATASET, "period_rel_error", "border_period_covered"]
    keep += ["retry_median", "retry_q05", "retry_q95"]
    return far.reindex(columns=keep).sort_values(list(DATASET)).reset_index(drop=True)


def format_summary(summary: pd.DataFrame) -> str:
    """The cell table as markdown: refusals by the gate and by a named check (the repeat counts' test before
    sampling, or a posterior predictive check), the datasets that failed the repeat counts' test of those it was
    made on, coverage as covered/intervals (share), p-values, the section-year coverage's dataset-bootstrap
    interval."""
    head = [
        "r",
        "σ",
        "seeds",
        "errors",
        "retried",
        "refused gate",
        "refused check",
        "repeat test failed",
        "accepted",
        "period total",
        "p",
        "border years",
        "p",
        "section-years [95 % by dataset]",
        "period rel. error",
        "r̂ (median)",
        "verdict",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in summary.to_dict("records"):
        cells = [
            f"{c['retry']:g}",
            f"{c['frailty']:g}",
            str(c["seeds"]),
            str(c["errors"]),
            str(c["retried"]),
            str(c["refused_gate"]),
            str(c["refused_ppc"]),
            f"{c['dispersion_failed']}/{c['dispersion_tested']}",
            str(c["accepted"]),
            f"{c['period_covered']}/{c['period_n']} ({c['period_coverage']:.2f})",
            f"{c['period_p']:.3g}",
            f"{c['years_covered']}/{c['years_n']} ({c['years_coverage']:.2f})",
            f"{c['years_p']:.3g}",
            f"{c['section_years_coverage']:.3f} [{c['section_years_lo']:.3f}, "
            f"{c['section_years_hi']:.3f}]",
            f"{c['period_median_rel_error']:+.1%}",
            f"{c['retry_median']:.2f}",
            # a verdict on fewer seeds than the design's is provisional, and says so
            c["verdict"]
            if c["seeds"] >= N_SEEDS
            else f"{c['verdict']} so far ({c['seeds']}/{N_SEEDS})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
