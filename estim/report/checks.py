"""Prior and posterior predictive checks on capture–recapture statistics (docs/design.md §6).

The statistics compared are the ones capture–recapture models are judged by: the frequencies f_k of people
seen exactly k times, and the counts of each capture history. For every cell we give the observed count, the
predictive median and the central interval (90 % by default), and whether the observed count falls inside it.
Over all cells of a statistic, a posterior predictive p-value P(T(y_rep) ≥ T(y)) is given for two discrepancies
with fixed expected counts E (the predictive mean per cell):

* chi-square, Σ (y − E)² / E, sensitive to the large cells;
* Freeman–Tukey, Σ (√y − √E)², better behaved for the small counts of the tail f_k and of rare histories.

p-values near 0 say the data are more extreme than the model predicts; near 1, less variable than predicted.
Nothing here writes files: `ppc_figure` returns a matplotlib Figure for the caller to save.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError
from estim.intervals import equal_tailed_array

SAMPLE_DIMS = ("chain", "draw")


def capture_statistics(
    values: xr.DataArray, data_kind: str, capture: xr.DataArray | None = None
) -> dict[str, xr.DataArray]:
    """The capture–recapture statistics of observed or predicted counts, each with one cell dim.

    * a ``k`` dim: f_k, summed over any other cell dims (covariate patterns, strata);
    * a ``history`` dim: history counts summed over other dims (strata), and f_k by number of captures
      when the 0/1 `capture` matrix [history, occasion] is known (read from labels such as "101001");
    * frequency data with one cell dim and no ``k``: per-person counts, tabulated into f_k (last cell ≥ K);
    * otherwise the cells themselves (flattened), as ``cells``.
    """
    cell_dims = [d for d in values.dims if d not in SAMPLE_DIMS]
    out: dict[str, xr.DataArray] = {}
    if "k" in cell_dims:
        out["f_k"] = values.sum([d for d in cell_dims if d != "k"])
    elif "history" in cell_dims:
        counts = values.sum([d for d in cell_dims if d != "history"])
        out["history_count"] = counts
        if capture is not None:
            occasion_dim = next(d for d in capture.dims if d != "history")
            times = capture.sum(occasion_dim).astype(int)
            ks = np.arange(1, int(times.max()) + 1)
            out["f_k"] = xr.concat(
                [counts.where(times == k, 0).sum("history") for k in ks], dim="k"
            ).assign_coords(k=ks)
    elif data_kind == "frequency" and len(cell_dims) == 1:
        out["f_k"] = values  # tabulated by the caller, who knows the observed maximum
    else:
        out["cells"] = (
            values.stack(cell=cell_dims)
            if len(cell_dims) > 1
            else values.rename({cell_dims[0]: "cell"})
        )
    return out


def _tabulate(values: xr.DataArray, kmax: int) -> xr.DataArray:
    """Per-person counts -> f_k for k = 1..kmax, the last cell holding everyone seen ≥ kmax times."""
    cell = next(d for d in values.dims if d not in SAMPLE_DIMS)
    ks = np.arange(1, kmax + 1)
    clipped = values.clip(max=kmax)
    f_k = xr.concat([(clipped == k).sum(cell) for k in ks], dim="k").assign_coords(k=ks)
    f_k.attrs["last_or_more"] = 1  # the last row is labelled "K+", not "seen exactly K times"
    return f_k


def _predicted(
    tree: xr.DataTree, group: str, name: str, observed: xr.DataArray, where: str
) -> xr.DataArray:
    """The predictive draws of `group` of the observed variable `name`, checked to be of the observed cells:
    the same cell dims with the same labels, but for those a compact fit summed the draws over (the observed
    counts are then summed over them too by the caller). `EstimInputError` naming the file otherwise: the
    draws would be checked against data they are not of."""
    ds = tree[group].to_dataset()
    if name not in ds:
        held = ", ".join(map(str, ds.data_vars)) or "nothing"
        raise EstimInputError(
            f"{where}: its {group} group holds {held}, not draws of its observed data {name!r}: a file "
            "edited since `estim fit`, or damaged; refit"
        )
    pred = ds[name]
    cells = [d for d in pred.dims if d not in SAMPLE_DIMS]
    missing = [d for d in SAMPLE_DIMS if d not in pred.dims]
    other = [d for d in cells if d not in observed.dims or pred.sizes[d] != observed.sizes[d]]
    relabelled = [
        d
        for d in cells
        if d not in other
        and d in pred.coords
        and d in observed.coords
        and [str(v) for v in pred[d].values] != [str(v) for v in observed[d].values]
    ]
    if missing or other or relabelled or not cells:
        what = (
            dict(pred.sizes)
            if (missing or other or not cells)
            else {d: "other labels" for d in relabelled}
        )
        raise EstimInputError(
            f"{where}: its {group} draws of {name!r} are not of its observed cells ({what} vs observed "
            f"{dict(observed.sizes)}): a file edited since `estim fit`, or damaged; refit"
        )
    return pred


def _statistics(
    tree: xr.DataTree, group: str, where: str = ""
) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray], dict[str, str]]:
    where = where or str(tree.encoding.get("source", "fit"))
    if "observed_data" not in tree.children or not tree["observed_data"].data_vars:
        raise EstimInputError(
            f"{where}: no observed data (its observed_data group is missing or empty): nothing to check "
            "the predictive draws against; a file edited since `estim fit`, or damaged"
        )
    name = str(tree.attrs.get("observed_name", ""))
    kind = str(tree.attrs.get("data_kind", ""))
    observed_ds = tree["observed_data"].to_dataset()
    if name not in observed_ds:
        name = next(iter(observed_ds.data_vars))
    predicted = _predicted(tree, group, name, observed_ds[name], where)
    # a compact fit's draws summed over covariate patterns, say: the observed counts summed likewise
    summed = [d for d in observed_ds[name].dims if d not in predicted.dims]
    observed_ds = (
        observed_ds.assign({name: observed_ds[name].sum(summed)}) if summed else observed_ds
    )
    capture = None
    if "history" in observed_ds[name].dims:
        labels = [str(h) for h in observed_ds["history"].values]
        if labels and all(set(h) <= {"0", "1"} and len(h) == len(labels[0]) for h in labels):
            capture = xr.DataArray(
                np.array([[int(c) for c in h] for h in labels], dtype=np.int8),
                dims=("history", "occasion"),
                coords={"history": labels},
            )
    notes: dict[str, str] = {}
    if capture is not None:
        capture, notes = _history_cells(observed_ds[name], predicted, capture)
    obs = capture_statistics(observed_ds[name], kind, capture)
    pred = capture_statistics(predicted, kind, capture)
    if kind == "frequency" and "k" not in observed_ds[name].dims and "f_k" in obs:
        kmax = int(observed_ds[name].max())
        obs["f_k"], pred["f_k"] = _tabulate(obs["f_k"], kmax), _tabulate(pred["f_k"], kmax)
    return obs, pred, notes


def _history_cells(
    observed: xr.DataArray, predicted: xr.DataArray, capture: xr.DataArray
) -> tuple[xr.DataArray | None, dict[str, str]]:
    """Which histories the check's cells are, in words (``{"history_count": note}``), and the capture matrix
    to derive f_k with, None when f_k cannot be derived from these replicates.

    All 2^t − 1 histories (the closed families up to `estim.families.closed.model.COMPLETE_OCCASIONS`): every
    cell is compared, zeros included. Only those someone showed, with replicates that lose people (the closed
    families beyond the cap: who falls on an unseen history is in no cell): each cell's replicate has its
    law, but f_k summed over these cells would miss them, so it is not derived. Only those someone showed,
    with replicates that keep everyone: said, and f_k derived as before."""
    t, cells = capture.sizes["occasion"], capture.sizes["history"]
    if cells == 2**t - 1:
        shown = int((observed.sum([d for d in observed.dims if d != "history"]) > 0).sum())
        return capture, {
            "history_count": f"over all {cells:,} histories of {t} occasions (2^{t} − 1), the "
            f"{cells - shown:,} nobody showed included"
        }
    n = float(observed.sum())
    kept = predicted.sum([d for d in predicted.dims if d not in SAMPLE_DIMS])
    lost = n - kept
    where = f"over the {cells:,} histories someone showed, of the {2**t - 1:,} of {t} occasions"
    if float(lost.max()) > 0:
        return None, {
            "history_count": f"{where}; replicated people who fell on the others (mean "
            f"{float(lost.mean()):,.1f} of {n:,.0f} per draw) are in no cell, so f_k is not derived "
            "from these replicates"
        }
    return capture, {"history_count": where}


def predictive_summary(
    tree: xr.DataTree, group: str = "posterior_predictive", prob: float = 0.9, where: str = ""
) -> dict[str, Any]:
    """Observed vs predictive median and central `prob` interval per cell, and Bayesian p-values.

    `group` is ``"posterior_predictive"`` (a posterior predictive check) or ``"prior_predictive"`` (what the
    priors alone predict: a prior predictive check, to see the priors allow the data but not absurdities).
    Returns {"tables": {statistic: DataFrame}, "p_values": {statistic: {"chi_square": p, "freeman_tukey": p}}}.
    Draws that are not of the observed cells are refused (`EstimInputError`, naming the fit file `where`).
    """
    obs, pred, notes = _statistics(tree, group, where)
    tables, p_values = {}, {}
    for stat, y in obs.items():
        rep = pred[stat]
        cell = next(d for d in y.dims if d not in SAMPLE_DIMS)
        draws = rep.stack(sample=[d for d in SAMPLE_DIMS if d in rep.dims]).transpose(
            "sample", cell
        )
        r = np.asarray(draws, dtype=float)
        yv = np.asarray(y.transpose(cell), dtype=float)
        lower, median, upper = equal_tailed_array(r, prob, axis=0)
        labels = [str(v) for v in y[cell].values] if cell in y.coords else list(range(len(yv)))
        if y.attrs.get("last_or_more") and labels:
            labels[-1] = f"{labels[-1]}+"
        tables[stat] = pd.DataFrame(
            {
                "observed": yv,
                "median": median,
                "lower": lower,
                "upper": upper,
                "inside": (yv >= lower) & (yv <= upper),
            },
            index=pd.Index(labels, name=cell),
        )
        e = r.mean(axis=0)
        keep = e > 0
        chi_obs = np.sum((yv[keep] - e[keep]) ** 2 / e[keep])
        chi_rep = np.sum((r[:, keep] - e[keep]) ** 2 / e[keep], axis=1)
        ft_obs = np.sum((np.sqrt(yv) - np.sqrt(e)) ** 2)
        ft_rep = np.sum((np.sqrt(r) - np.sqrt(e)) ** 2, axis=1)
        p_values[stat] = {
            "chi_square": float(np.mean(chi_rep >= chi_obs)),
            "freeman_tukey": float(np.mean(ft_rep >= ft_obs)),
        }
    out = {"group": group, "prob": prob, "tables": tables, "p_values": p_values, "notes": notes}
    out["verdicts"] = {stat: verdict(out, stat) for stat in tables}
    return out


def format_checks(results: dict[str, dict[str, Any]]) -> str:
    """`predictive_summary` results (by group) as text: per statistic the cells with counts as counts, the
    p-values and the verdict."""
    lines = []
    for group, r in results.items():
        pct = f"{r['prob']:.0%}"
        lines.append(f"== {group.replace('_', ' ')} check ==")
        for stat, table in r["tables"].items():
            what = STATISTICS.get(stat, stat)
            lines.append(
                f"{stat}: {what}; observed against the predictive median and {pct} interval"
            )
            shown = pd.DataFrame(
                {
                    "observed": table["observed"].map("{:,.0f}".format),
                    "predicted": table["median"].map("{:,.0f}".format),
                    f"{pct} interval": [
                        f"{lo:,.0f} – {hi:,.0f}"
                        for lo, hi in zip(table["lower"], table["upper"], strict=True)
                    ],
                    "": np.where(table["inside"], "", "outside"),
                },
                index=table.index,
            )
            if stat in r.get("notes", {}):
                lines += textwrap.wrap(
                    f"cells: {r['notes'][stat]}", width=100, subsequent_indent="  "
                )
            lines.append(shown.to_string())
            p = r["p_values"][stat]
            lines.append(
                f"predictive p-values: chi-square {p['chi_square']:.3f}, Freeman–Tukey "
                f"{p['freeman_tukey']:.3f} (near 0: the data more extreme than predicted; near 1: less)"
            )
            lines += textwrap.wrap(
                f"verdict: {r['verdicts'][stat]['text']}", width=100, subsequent_indent="  "
            )
        lines.append("")
    return "\n".join(lines).rstrip()


GROUPS = ("prior_predictive", "posterior_predictive")


def check_fit(tree: xr.DataTree, where: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The prior and posterior predictive checks of a single-register or closed-population fit (`estim
    check`): the text, every verdict by name (``"<group> <statistic>"``) and the JSON payload by group.

    A group without draws is warned of (on stderr, with the reason the fit recorded). Without posterior
    predictive draws the check of the model against the data is not made: that is said in the text and the
    payload, and counted as a failed verdict (``"posterior_predictive not made"``), never left to read as
    the prior check's "ok". A fit with neither group is refused (`EstimInputError`).
    """
    import json
    import warnings

    results = {g: predictive_summary(tree, g, where=where) for g in GROUPS if g in tree.children}
    why = {
        g: str(tree.attrs.get(f"{g}_error", "not in the file")) for g in GROUPS if g not in results
    }
    for group, reason in why.items():
        warnings.warn(f"{where}: no {group.replace('_', ' ')} draws: {reason}", stacklevel=2)
    if not results:
        raise EstimInputError(f"{where}: no predictive draws to check")
    verdicts = {
        f"{group} {stat}": v for group, r in results.items() for stat, v in r["verdicts"].items()
    }
    payload: dict[str, Any] = {
        group: {
            "p_values": r["p_values"],
            "verdicts": r["verdicts"],
            "notes": r.get("notes", {}),
            "tables": {k: json.loads(t.to_json(orient="index")) for k, t in r["tables"].items()},
        }
        for group, r in results.items()
    }
    text = format_checks(results)
    if "posterior_predictive" in why:
        missing = {
            "passed": False,
            "text": f"NOT MADE: the fit has no posterior predictive draws ({why['posterior_predictive']}), "
            "so whether the model reproduces the data is unchecked; refit to draw them",
        }
        verdicts["posterior_predictive not made"] = missing
        payload["posterior_predictive"] = {
            "p_values": {},
            "verdicts": {"not made": missing},
            "tables": {},
        }
        text += "\n\n== posterior predictive check ==\n" + "\n".join(
            textwrap.wrap(f"verdict: {missing['text']}", width=100, subsequent_indent="  ")
        )
    return text, verdicts, payload


STATISTICS = {
    "f_k": "individuals seen exactly k times (a last row K+: K times or more)",
    "history_count": "individuals with each capture history (1 = caught on that occasion)",
    "cells": "the observed cells",
}

ALPHA = 0.05  # a p-value below ALPHA or above 1 − ALPHA fails a posterior predictive check


def verdict(result: dict[str, Any], stat: str, alpha: float = ALPHA) -> dict[str, Any]:
    """Whether a predictive check passes, and why, in words.

    Posterior predictive: it fails when a p-value is below `alpha` (the data are more extreme than the model
    predicts) or above 1 − `alpha` (they vary less than it predicts). Prior predictive: it fails when fewer
    than `prob` − 0.1 of the observed cells lie inside their prior predictive intervals (the priors make the
    data implausible; a calibrated prior leaves about 1 − `prob` of them outside, so one cell outside is no
    verdict: the hares' 33 histories failed with 32 inside). Either way the cells outside their interval are
    named, with the side the observation falls on.
    """
    table = result["tables"][stat]
    pct = f"{result['prob']:.0%}"
    outside = table[~table["inside"].astype(bool)]
    sides = [
        f"{label} ({'above' if row.observed > row.upper else 'below'})"
        for label, row in outside.iterrows()
    ]
    cells = f"{len(table) - len(outside)} of {len(table)} cells inside their {pct} interval"
    if sides:
        cells += "; outside: " + ", ".join(sides)
    if result["group"] == "prior_predictive":
        passed = len(table) - len(outside) >= (result["prob"] - 0.1) * len(table)
        why = "the priors allow the data" if passed else "the priors make these cells implausible"
        return {"passed": passed, "text": f"{'ok' if passed else 'FAIL'}: {why} ({cells})"}
    p = result["p_values"][stat]
    low = [f"{k.replace('_', '-')} p {v:.3f}" for k, v in p.items() if v < alpha]
    high = [f"{k.replace('_', '-')} p {v:.3f}" for k, v in p.items() if v > 1 - alpha]
    if low:
        why = (
            f"MISFIT: {', '.join(low)} < {alpha}: the data are more extreme than the model predicts"
        )
    elif high:
        why = (
            f"MISFIT: {', '.join(high)} > {1 - alpha:.2f}: the data vary less than the model predicts "
            "(or the model has nearly as many parameters as these cells, which fits them too closely for a "
            "p near 1 to say anything)"
        )
    else:
        ps = ", ".join(f"{k.replace('_', '-')} p {v:.2f}" for k, v in p.items())
        why = f"ok: the model reproduces {stat} ({ps})"
    return {"passed": not (low or high), "text": f"{why}; {cells}"}


def ppc_figure(tree: xr.DataTree, group: str = "posterior_predictive", prob: float = 0.9) -> Any:
    """Observed counts (dots) against the predictive median and `prob` interval, one panel per statistic, in
    the house style (`estim.report.figures`): a column wide (two when a statistic has many cells), counts on
    a symlog axis labelled as counts, the interval level in the legend, SYNTHETIC when the data were simulated.

    Returns the matplotlib Figure; the caller saves it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.lines import Line2D

    from estim.report import figures as fs

    summary = predictive_summary(tree, group, prob)
    tables = summary["tables"]
    axis_labels = {  # statistic -> (x label, y label)
        "f_k": ("times caught, k", "individuals caught k times"),
        "history_count": (
            "capture history (1 = caught on that occasion)",
            "individuals with the history",
        ),
    }
    cells = max(len(t) for t in tables.values())
    rotate = cells > 12 or any(len(str(i)) > 4 for t in tables.values() for i in t.index)
    width = fs.SINGLE_COLUMN if cells <= 12 else fs.DOUBLE_COLUMN
    height = len(tables) * (1.9 + (0.4 if rotate else 0)) + 0.45
    blue, outside = fs.COLOURS["estimate"], fs.COLOURS["outside"]
    kind = group.replace("_", " ")
    name = tree.attrs.get("model_name", "")
    with fs.house_style():
        fig, axes = fs.subplots(len(tables), 1, width=width, height=height, squeeze=False)
        for ax, (stat, table) in zip(axes[:, 0], tables.items(), strict=True):
            x = np.arange(len(table))
            inside = table["inside"].to_numpy(bool)
            ax.vlines(x, table["lower"], table["upper"], color=blue, lw=3.5, alpha=0.35)
            ax.plot(x, table["median"], "_", color=blue, ms=7, mew=1.2)
            ax.plot(
                x[inside],
                table["observed"][inside],
                "o",
                color=fs.COLOURS["observed"],
                ms=3.5,
                zorder=3,
            )
            ax.plot(x[~inside], table["observed"][~inside], "o", color=outside, ms=3.5, zorder=3)
            fs.count_axis(ax, "y", "symlog")
            ax.set_ylim(bottom=-0.2)
            many = len(table) > 12 or any(len(str(i)) > 4 for i in table.index)
            ax.set_xticks(x, table.index, rotation=90 if many else 0)
            ax.set_xlim(-0.7, len(table) - 0.3)
            xlabel, ylabel = axis_labels.get(stat, (str(table.index.name), "count"))
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            p = summary["p_values"][stat]
            ax.set_title(
                f"{name}: {stat}\nchi-square p = {p['chi_square']:.2f}, "
                f"Freeman–Tukey p = {p['freeman_tukey']:.2f}"
            )
        handles = [
            Line2D(
                [],
                [],
                color=blue,
                lw=3.5,
                alpha=0.35,
                label=f"{kind} {fs.interval_label(prob, '')}",
            ),
            Line2D([], [], color=blue, ls="", marker="_", ms=7, mew=1.2, label="predictive median"),
            Line2D([], [], color="black", ls="", marker="o", ms=3.5, label="observed, inside"),
            Line2D([], [], color=outside, ls="", marker="o", ms=3.5, label="observed, outside"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        return fs.finish_figure(fig, synthetic=fs.is_synthetic(tree.attrs))
