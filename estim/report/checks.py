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

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

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
    return xr.concat([(clipped == k).sum(cell) for k in ks], dim="k").assign_coords(k=ks)


def _statistics(
    tree: xr.DataTree, group: str
) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray]]:
    name = str(tree.attrs.get("observed_name", ""))
    kind = str(tree.attrs.get("data_kind", ""))
    observed_ds = tree["observed_data"].to_dataset()
    if name not in observed_ds:
        name = next(iter(observed_ds.data_vars))
    capture = None
    if "history" in observed_ds[name].dims:
        labels = [str(h) for h in observed_ds["history"].values]
        if labels and all(set(h) <= {"0", "1"} and len(h) == len(labels[0]) for h in labels):
            capture = xr.DataArray(
                np.array([[int(c) for c in h] for h in labels], dtype=np.int8),
                dims=("history", "occasion"),
                coords={"history": labels},
            )
    obs = capture_statistics(observed_ds[name], kind, capture)
    pred = capture_statistics(tree[group].to_dataset()[name], kind, capture)
    if kind == "frequency" and "k" not in observed_ds[name].dims and "f_k" in obs:
        kmax = int(observed_ds[name].max())
        obs["f_k"], pred["f_k"] = _tabulate(obs["f_k"], kmax), _tabulate(pred["f_k"], kmax)
    return obs, pred


def predictive_summary(
    tree: xr.DataTree, group: str = "posterior_predictive", prob: float = 0.9
) -> dict[str, Any]:
    """Observed vs predictive median and central `prob` interval per cell, and Bayesian p-values.

    `group` is ``"posterior_predictive"`` (a posterior predictive check) or ``"prior_predictive"`` (what the
    priors alone predict: a prior predictive check, to see the priors allow the data but not absurdities).
    Returns {"tables": {statistic: DataFrame}, "p_values": {statistic: {"chi_square": p, "freeman_tukey": p}}}.
    """
    obs, pred = _statistics(tree, group)
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
    return {"group": group, "prob": prob, "tables": tables, "p_values": p_values}


def ppc_figure(tree: xr.DataTree, group: str = "posterior_predictive", prob: float = 0.9) -> Any:
    """Observed counts (dots) against the predictive median and `prob` interval, one panel per statistic.

    Returns the matplotlib Figure; the caller saves it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = predictive_summary(tree, group, prob)
    tables = summary["tables"]
    fig, axes = plt.subplots(
        len(tables), 1, figsize=(8, 3.2 * len(tables)), squeeze=False, layout="constrained"
    )
    name = tree.attrs.get("model_name", "")
    for ax, (stat, table) in zip(axes[:, 0], tables.items(), strict=True):
        x = np.arange(len(table))
        ax.vlines(x, table["lower"], table["upper"], color="tab:blue", lw=4, alpha=0.4,
                  label=f"{group.replace('_', ' ')} {prob:.0%} interval")  # fmt: skip
        ax.plot(x, table["median"], "_", color="tab:blue", ms=12, label="predictive median")
        colours = np.where(table["inside"], "black", "tab:red")
        ax.scatter(x, table["observed"], c=colours, s=18, zorder=3, label="observed")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xticks(x, table.index, rotation=90 if len(table) > 12 else 0, fontsize=7)
        ax.set_xlabel(table.index.name)
        p = summary["p_values"][stat]
        ax.set_title(
            f"{name} {stat}: chi-square p = {p['chi_square']:.2f}, "
            f"Freeman–Tukey p = {p['freeman_tukey']:.2f}",
            fontsize=9,
        )
        ax.set_ylabel("count")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    return fig
