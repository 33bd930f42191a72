"""The paper's section on multiple lists: estim's multiple-systems estimates on the two shipped list benchmarks
(Kosovo, 4 lists; UK, 5 lists), each beside the R package it reproduces, and the recovery study of the
Bayesian list models.

* ``multiple_lists`` fits (or reuses) every spec of `SECTION_SPECS` and writes one row per spec: estim's
  estimate (ML: N̂ and its profile-likelihood interval; Bayesian: the posterior mean, median and 95 % interval,
  exact for model averaging) beside the peer's from ``data/benchmarks/references.toml`` (the spec names its
  reference), and their relative differences;
* ``lists_recovery`` summarises the committed rows of the recovery study (``paper/inputs/lists_recovery.csv``,
  made by ``scripts/lists_recovery.py``): coverage of N's 90 % interval per design and model, with the one-sided
  binomial test against 0.90.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estim.families.base import interval_name
from estim.paper.context import Context, fit_spec, write_csv
from estim.paper.numbers import Number, write_numbers

# the specs of the section, in the order of its table
SECTION_SPECS = (
    "kosovo_Mt",
    "kosovo_lists_stepwise",
    "kosovo_lists_bma",
    "kosovo_lists_latent_class",
    "uk_Mt",
    "uk_lists_stepwise",
    "uk_lists_bma",
    "uk_lists_bma_12n",
    "uk_lists_shrinkage",
)
METHODS = {
    "Mt": "log-linear Mt (ML)",
    "lists_stepwise": "stepwise log-linear (ML)",
    "lists_bma": "model averaging, decomposable graphs",
    "lists_latent_class": "latent classes",
    "lists_shrinkage": "all pairs, horseshoe",
}
PEERS = {
    "Mt": "Rcapture",
    "lists_stepwise": "SparseMSE",
    "lists_bma": "dga",
    "lists_latent_class": "LCMCR",
}
QUANTILES = {"estimate": 0.5, "lower": 0.025, "upper": 0.975}
RECOVERY_INPUT = "lists_recovery.csv"
RECOVERY_COMMAND = (
    "./run python scripts/lists_recovery.py --out paper/inputs/lists_recovery.csv --datasets 100"
)
LCMCR_INPUT = "lists_recovery_lcmcr.csv"
LCMCR_COMMAND = (
    "./run python scripts/lists_recovery.py --out unused.csv --tables TABLES --datasets 10 && "
    "Rscript scripts/lists_recovery_lcmcr.R TABLES > paper/inputs/lists_recovery_lcmcr.csv"
)


def _reference(root: Path, spec_path: Path) -> dict[str, Any] | None:
    found = re.search(r"references\.toml, ([\w.]+)\)", spec_path.read_text(encoding="utf-8"))
    if not found:
        return None
    references = tomllib.loads(
        (root / "data" / "benchmarks" / "references.toml").read_text(encoding="utf-8")
    )
    dataset, _, key = found.group(1).split(".", 2)
    return references[dataset]["estimates"][key]


def _ml_row(spec: Any) -> dict[str, Any]:
    from estim.run.mle import fit_mle

    start = time.perf_counter()
    mle = fit_mle(spec)
    seconds = time.perf_counter() - start
    if not mle.converged or mle.boundary:
        return {"note": mle.message or "no ML estimate", "seconds": seconds}
    lower, upper = mle.profile["ci95"] if mle.profile else mle.ci95
    return {
        "estim": float(mle.n_hat),
        "estim_lower": float(lower),
        "estim_upper": float(upper),
        "interval": "profile 95 %" if mle.profile else f"{interval_name(mle.extra)} 95 %",
        "seconds": seconds,
    }


def _bayes_row(tree: Any) -> dict[str, Any]:
    """The posterior mean, median and 95 % interval of N, each quantile with its Monte Carlo error (0 for the
    exact summaries of model averaging, computed on the grid)."""
    from estim.paper.numbers import mc_quantile

    seconds = float(tree.attrs.get("fit_seconds", np.nan))
    if "model_averaging" in tree.children:  # exact: the grid posterior's own summaries
        exact = tree["model_averaging"].attrs
        return {
            "estim": float(exact["median"]),
            "estim_mean": float(exact["mean"]),
            "estim_lower": float(exact["lower"]),
            "estim_upper": float(exact["upper"]),
            "mcse_estimate": 0.0,
            "mcse_lower": 0.0,
            "mcse_upper": 0.0,
            "interval": "posterior 95 % (exact)",
            "seconds": seconds,
        }
    draws = tree["posterior"]["N"]
    # one table, one stratum: N as (chain, draw)
    draws = draws.isel({d: 0 for d in draws.dims if d not in ("chain", "draw")})
    quantiles = {what: mc_quantile(draws, q) for what, q in QUANTILES.items()}
    return {
        "estim": quantiles["estimate"].value,
        "estim_mean": float(draws.values.mean()),
        "estim_lower": quantiles["lower"].value,
        "estim_upper": quantiles["upper"].value,
        **{f"mcse_{what}": float(number.mcse) for what, number in quantiles.items()},
        "interval": "posterior 95 %",
        "seconds": seconds,
    }


def multiple_lists(ctx: Context) -> list[Path]:
    """estim beside Rcapture, SparseMSE, dga and LCMCR on the Kosovo and UK lists (`SECTION_SPECS`)."""
    from estim.run.data import family_of
    from estim.run.spec import read_spec

    rows, inputs = [], [ctx.root / "data" / "benchmarks" / "references.toml"]
    for name in SECTION_SPECS:
        path = ctx.root / "models" / f"{name}.toml"
        inputs.append(path)
        spec = read_spec(path)
        family = family_of(spec)
        reference = _reference(ctx.root, path) or {}
        row: dict[str, Any] = {
            "dataset": spec.data.benchmark,
            "model": spec.name,
            "method": METHODS.get(spec.family, spec.family),
            "peer": PEERS.get(spec.family, "") if reference else "",
            "peer_estimate": float(reference.get("n_hat", np.nan)),
            "peer_mean": float(reference.get("mean", np.nan)),
            "peer_lower": np.nan,
            "peer_upper": np.nan,
        }
        ends = reference.get("profile", reference.get("ci95"))
        if ends is not None and reference.get("ci95_kind", "posterior") == "posterior":
            row["peer_lower"], row["peer_upper"] = (float(x) for x in ends[:2])
        # where the family has maximum likelihood, that is what the peers report (Rcapture, SparseMSE)
        estimate = _ml_row(spec) if family.ml else _bayes_row(fit_spec(ctx, path).tree)
        row.update(
            {"estim_mean": np.nan, "mcse_estimate": 0.0, "mcse_lower": 0.0, "mcse_upper": 0.0}
        )
        row.update(estimate)
        rows.append(row)
    table = pd.DataFrame(rows)
    for what, estim_col, peer_col in (
        ("estimate", "estim", "peer_estimate"),
        ("lower", "estim_lower", "peer_lower"),
        ("upper", "estim_upper", "peer_upper"),
    ):
        table[f"difference_{what}"] = table[estim_col] / table[peer_col] - 1
    table = table[
        [
            "dataset",
            "model",
            "method",
            "interval",
            "estim",
            "estim_mean",
            "estim_lower",
            "estim_upper",
            "peer",
            "peer_estimate",
            "peer_mean",
            "peer_lower",
            "peer_upper",
            "difference_estimate",
            "difference_lower",
            "difference_upper",
            "mcse_estimate",
            "mcse_lower",
            "mcse_upper",
            "seconds",
        ]
        + (["note"] if "note" in table else [])
    ]

    indexed = table.set_index("model")
    ml_models = ["kosovo_Mt", "kosovo_lists_stepwise", "uk_Mt", "uk_lists_stepwise"]
    ends = ["estimate", "lower", "upper"]
    bma = indexed.loc[[m for m in SECTION_SPECS if "bma" in m], [f"difference_{e}" for e in ends]]
    ml = indexed.loc[ml_models, ["difference_estimate"]]

    def against_peer(model: str, what: str) -> Number:
        # a Monte Carlo estimate's relative difference from the peer carries its own Monte Carlo error
        row = indexed.loc[model]
        peer = row[f"peer_{'estimate' if what == 'estimate' else what}"]
        return Number(
            float(row[f"difference_{what}"]), "monte_carlo", max(row[f"mcse_{what}"] / peer, 1e-6)
        )

    shrink, stepwise = indexed.loc["uk_lists_shrinkage"], indexed.loc["uk_lists_stepwise"]
    numbers = {
        # the largest relative difference from the peer: model averaging (estimate and interval ends, exact)
        # and maximum likelihood (the estimate)
        "max_difference_bma": Number(float(bma.abs().max().max()), "deterministic"),
        "max_difference_ml": Number(float(ml.abs().max().max()), "deterministic"),
        "latent_class": {what: against_peer("kosovo_lists_latent_class", what) for what in ends},
        "uk_shrinkage": {
            what: Number(float(shrink[col]), "monte_carlo", max(float(shrink[f"mcse_{what}"]), 0.5))
            for what, col in (
                ("estimate", "estim"),
                ("lower", "estim_lower"),
                ("upper", "estim_upper"),
            )
        },
        "uk_stepwise": Number(float(stepwise["estim"]), "deterministic"),
        "slowest_fit_seconds": Number(float(table["seconds"].max()), "timing", unit="s"),
        "slowest_fit": Number(str(table.at[table["seconds"].idxmax(), "model"]), "deterministic"),
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "multiple_lists.csv"),
        write_numbers(out / "numbers" / "multiple_lists.json", numbers),
    ]
    return [ctx.record(p, multiple_lists, inputs) for p in paths]


def lists_recovery(ctx: Context) -> list[Path]:
    """Coverage of N's 90 % interval for model averaging and latent classes, per simulated design (the rows of
    ``paper/inputs/lists_recovery.csv``; `estim.studies.lists_recovery`)."""
    from estim.paper.studies import _require
    from estim.studies.lists_recovery import (
        COMBINED_DESIGNS,
        design_of_table,
        read_rows,
        summary,
    )

    source = _require(ctx.paper / "inputs" / RECOVERY_INPUT, RECOVERY_COMMAND)
    peer_source = _require(ctx.paper / "inputs" / LCMCR_INPUT, LCMCR_COMMAND)
    rows = read_rows(source)
    table = summary(rows)
    table.insert(2, "combined", table["design"].isin(COMBINED_DESIGNS))
    # LCMCR on the first datasets of each design: is a latent-class miss the model's or estim's?
    peer = pd.read_csv(peer_source)
    peer[["design", "dataset"]] = [design_of_table(name) for name in peer["table"]]
    ours = rows[rows["model"] == "latent_class"]
    both = peer.merge(ours, on=["design", "dataset"], validate="one_to_one")
    both["lcmcr_covered"] = (both["lcmcr_q05"] <= both["n_true"]) & (
        both["n_true"] <= both["lcmcr_q95"]
    )
    both["difference"] = both["median"] / both["lcmcr_median"] - 1
    both["lcmcr_error"] = both["lcmcr_median"] / both["n_true"] - 1
    by_design = both.groupby("design", sort=False).agg(
        lcmcr_datasets=("dataset", "size"),
        lcmcr_coverage=("lcmcr_covered", "mean"),
        lcmcr_median_rel_error=("lcmcr_error", "median"),
        estim_minus_lcmcr=("difference", "median"),
    )
    table = table.merge(
        by_design.reset_index().assign(model="latent_class"), on=["design", "model"], how="left"
    )
    passed = table["p_value"] > 0.01
    numbers = {
        "datasets_min": Number(int(table["datasets"].min()), "deterministic"),
        "combined_passed": Number(int((passed & table["combined"]).sum()), "deterministic"),
        "combined_cells": Number(int(table["combined"].sum()), "deterministic"),
        "controls_passed": Number(int((passed & ~table["combined"]).sum()), "deterministic"),
        "controls_cells": Number(int((~table["combined"]).sum()), "deterministic"),
        "combined_worst_error": Number(
            float(table.loc[table["combined"], "median_rel_error"].min()), "deterministic"
        ),
        # latent-class fits whose diagnostics gate failed (the study does not retry): counted, not dropped
        "latent_class_fits": Number(int((rows["model"] == "latent_class").sum()), "deterministic"),
        "latent_class_gate_failures": Number(
            int(table.loc[table["model"] == "latent_class", "gate_failures"].sum()),
            "deterministic",
        ),
        # estim's latent-class median against LCMCR's on the same tables
        "lcmcr_tables": Number(int(len(both)), "deterministic"),
        "lcmcr_max_difference": Number(float(both["difference"].abs().max()), "deterministic"),
        "lcmcr_median_difference": Number(
            float(both["difference"].abs().median()), "deterministic"
        ),
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "lists_recovery.csv"),
        write_numbers(out / "numbers" / "lists_recovery.json", numbers),
    ]
    return [ctx.record(p, lists_recovery, [source, peer_source]) for p in paths]
