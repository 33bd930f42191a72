"""PSIS-LOO comparison of saved fits of the same observations (`estim compare`).

An elpd is a sum over observations: two fits' elpds compare only when they are sums over the same
observations. `compare` refuses, naming both files and the rule, fits of observations that differ in their
counts, in their cells' labels (capture histories, strata, k, covariate patterns: another period or stratum
with the same counts is another dataset), in the cells their likelihoods use, and fits that predict every
individual identically at every draw (LOO cannot rank them: it would print a "probability that one predicts
worse" of 1 for a difference of 10⁻⁶). Before any LOO, every file must be a fit that passed the gate, with a
pointwise log-likelihood of its observed data over its posterior's draws, and none may be given twice.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError, GateFailed
from estim.run import store
from estim.run.data import fit_data_file

SAMPLE_DIMS = ("chain", "draw")
CAPTURE_DIMS = ("history", "k", "stratum")
"""Cell dims of the observed counts that are not covariate patterns."""


def observed_name(tree: xr.DataTree, fit_path: str | Path) -> str:
    """The name of a fit's observed variable: its ``observed_name`` attribute, else (a file without it) the
    registered family's, else the one variable of its observed data; `EstimInputError` naming the file when
    none can be told."""
    name = str(tree.attrs.get("observed_name", ""))
    if name:
        return name
    from estim.families.registry import load_all

    family = load_all().get(str(tree.attrs.get("family")))
    observed = (
        list(tree["observed_data"].to_dataset().data_vars)
        if "observed_data" in tree.children
        else []
    )
    if family is not None and family.observed_name in observed:
        return family.observed_name
    if len(observed) == 1:
        return str(observed[0])
    raise EstimInputError(
        f"{fit_path}: the fit does not say which of its observed data its likelihood is of (no "
        f"observed_name attribute; observed data: {', '.join(map(str, observed)) or 'none'}): a file "
        "not written by `estim fit`, or damaged; refit"
    )


def individual_log_likelihood(
    tree: xr.DataTree, observed_name: str, fit_path: str | Path | None = None
) -> tuple[xr.DataTree, np.ndarray]:
    """Pointwise log-likelihood per individual, from the per-cell terms of a frequency or history model.

    The families' cell term is count × log P(cell | seen) (multinomial coefficient dropped), so each of the
    `count` individuals in a cell contributes log P(cell | seen) = term / count. LOO must leave out one
    individual, not a whole cell of, say, 1,645 people seen once: cell-level LOO has Pareto k̂ > 0.7 nearly
    everywhere and says nothing. Returns the tree to give `az.loo` and the mask, over the observed cells with a
    positive count, of those the likelihood uses (cells with a term identically 0 — Zelterman's k > 2, say —
    do not enter it).

    A compact fit that does not store its log-likelihood has it recomputed from its posterior and its data,
    re-read from their source (`estim.run.compact.pointwise_log_likelihood`; `fit_path` names the fit file).
    A log-likelihood over other draws than the posterior's is refused (`EstimInputError`).
    """
    from estim.run.compact import pointwise_log_likelihood

    if fit_path is None:
        fit_path = str(tree.encoding.get("source", "fit"))
    tree.attrs.setdefault("observed_name", observed_name)
    ll_flat, n = pointwise_log_likelihood(tree, fit_path)
    post = tree["posterior"].to_dataset()
    draws = tuple(post.sizes.get(d, 0) for d in SAMPLE_DIMS)
    if tuple(ll_flat.shape[:2]) != draws:
        raise EstimInputError(
            f"{fit_path}: its pointwise log-likelihood has {ll_flat.shape[0]} chains × {ll_flat.shape[1]} "
            f"draws, its posterior {draws[0]} × {draws[1]}: they are not the draws of one fit (a file "
            "edited or assembled from several); refit"
        )
    n = n.astype(np.int64)
    used = np.any(ll_flat != 0, axis=(0, 1))
    per_person = np.repeat(ll_flat[..., used] / n[used], n[used], axis=-1)
    ds = xr.Dataset(
        {"per_individual": (("chain", "draw", "individual"), per_person)},
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
    )
    return xr.DataTree.from_dict({"posterior": post, "log_likelihood": ds}), used


def _refuse_same_fit(path: Path, tree: xr.DataTree, other: Path, other_tree: xr.DataTree) -> None:
    """`EstimInputError` when `path` is the fit `other` again: the same file, or a fit with the same spec
    hash and data hash (a copy, or the same spec fitted to the same data again). LOO would compare a model
    with itself and call the two equally good, which answers nothing."""
    if path.resolve() == other.resolve():
        raise EstimInputError(
            f"{path} and {other} are the same file ({path.resolve()}): compare needs fits of different "
            "models of the same data"
        )
    keys = ("spec_hash", "data_hash")
    mine, theirs = ([str(t.attrs.get(k, "")) for k in keys] for t in (tree, other_tree))
    if all(mine) and mine == theirs:
        raise EstimInputError(
            f"{path} and {other} are fits of the same spec to the same data (their spec_hash and data_hash "
            "are equal: a copy of one fit, or one spec fitted twice): compare needs fits of different "
            "models of the same data"
        )
    # the same model under another name, seed or sampler: its elpd differs by Monte Carlo noise only, which
    # LOO's p_worse read as a near-certain ranking (0.992 for two seeds of one ztpoisson spec)
    model = [_model_of(t) for t in (tree, other_tree)]
    if mine[1] and mine[1] == theirs[1] and model[0] is not None and model[0] == model[1]:
        raise EstimInputError(
            f"{path} and {other} are fits of the same model to the same data (the same family, priors and "
            "options; only the name, seed or sampler differ): their elpd differs by Monte Carlo noise, "
            "not by model, so compare needs fits of different models of the same data"
        )


def _model_of(tree: xr.DataTree) -> tuple[Any, ...] | None:
    # what a spec says of the model, not of its run: family, priors, options and data fields
    try:
        spec = json.loads(str(tree.attrs["spec_json"]))
    except (KeyError, ValueError):
        return None
    keep = ("family", "priors", "options", "data")
    return tuple(json.dumps(spec.get(k), sort_keys=True, default=str) for k in keep)


def _load(path: Path, loaded: list[tuple[Path, xr.DataTree]]) -> xr.DataTree:
    """A fit to compare: readable, of its data as they were, passed the gate, with a pointwise log-likelihood,
    and not one of `loaded` again."""
    tree = store.load(path)
    fit_data_file(tree, path)  # an elpd of data that changed since is not the fit's
    # its row is of the model the fit says, not of the spec beside it now
    beside = store.spec_beside(tree, path)
    if beside is not None:
        warnings.warn(beside, stacklevel=3)
    v = store.verdict(tree, str(path))
    if not v.passed:
        raise GateFailed(v, str(path))
    if tree.attrs.get("sampler") == "exact":
        raise EstimInputError(
            f"{path}: a fit of {tree.attrs.get('family')!r}, whose posterior is computed exactly (model "
            "averaging), has no pointwise log-likelihood: LOO cannot compare it (its summary gives the "
            "models' posterior probabilities)"
        )
    for earlier, earlier_tree in loaded:
        _refuse_same_fit(path, tree, earlier, earlier_tree)
    name = observed_name(tree, path)
    if "log_likelihood" not in tree.children and "log_likelihood_omitted" not in tree.attrs:
        raise EstimInputError(
            f"{path}: a fit of family {tree.attrs.get('family')!r} with no pointwise log-likelihood "
            "(stored or recomputable): LOO cannot compare it"
        )
    if "observed_data" not in tree.children or name not in tree["observed_data"]:
        raise EstimInputError(f"{path}: no observed data {name!r} to compare on")
    if "log_likelihood" in tree.children and name not in tree["log_likelihood"]:
        held = ", ".join(map(str, tree["log_likelihood"].to_dataset().data_vars)) or "nothing"
        raise EstimInputError(
            f"{path}: its log_likelihood group holds {held}, not the pointwise log-likelihood of its "
            f"observed data {name!r}: LOO cannot compare it (a file edited since `estim fit`; refit)"
        )
    tree.attrs["observed_name"] = name
    return tree


def _seen_cells(obs: xr.DataArray) -> xr.DataArray:
    """The observed counts over the histories someone showed: the closed families' data list every history
    of up to 10 occasions, zeros included (for their predictive checks), the log-linear ones the histories
    seen; a zero cell adds nothing to a likelihood, so fits of the same histories compare on the same
    individuals either way."""
    if "history" not in obs.dims:
        return obs
    others = [d for d in obs.dims if d != "history"]
    seen = (obs.sum(others) if others else obs).values > 0
    return obs.isel(history=np.flatnonzero(seen))


def _count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.4g}"


def _labels(obs: xr.DataArray) -> dict[str, list[str]]:
    return {str(d): [str(v) for v in obs[d].values] for d in obs.dims if d in obs.coords}


def _refuse_other_observations(
    path: Path, obs: xr.DataArray, reference: tuple[Path, xr.DataArray], name: str
) -> None:
    """`EstimInputError` when the observed data of the fit at `path` are not those of the reference fit:
    other counts, or the same counts in cells labelled otherwise (another period, stratum, occasion
    definition or covariate coding whose counts happen to coincide — common in small studies where most
    capture histories are seen once)."""
    ref_path, ref = reference
    if obs.shape != ref.shape or not np.array_equal(obs.values, ref.values):
        same_people = set(obs.dims) == set(ref.dims) and obs.sum() == ref.sum()
        # covariate patterns: the cell dims other than the capture statistics' own and the strata
        patterns = [d for d in obs.dims if d not in CAPTURE_DIMS]
        if same_people and any(obs.sizes[d] != ref.sizes[d] for d in patterns):
            why = (
                ": the same people grouped into other cells (fits with other covariates, say), and LOO "
                "here compares fits on the same cells; compare covariate sets by their ML "
                "log-likelihoods (estim fit SPEC --mle) instead"
            )
        elif same_people:
            why = (
                ": as many people, with other counts in their cells (another occasion definition or "
                "order, or other data of the same size): LOO cannot compare them"
            )
        else:
            why = ": LOO cannot compare them"
        if (
            obs.shape == ref.shape
        ):  # the sizes alone would read the same: say where the counts differ
            differ = np.flatnonzero(obs.values.ravel() != ref.values.ravel())
            first = np.unravel_index(differ[0], obs.shape)
            cell = ", ".join(
                f"{d} {obs[d].values[i]!s}" if d in obs.coords else f"{d} {i + 1}"
                for d, i in zip(obs.dims, first, strict=True)
            )
            where = (
                f"{name}: {differ.size:,} of {obs.size:,} cells differ, the first at {cell}: "
                f"{_count(obs.values[first])} vs {_count(ref.values[first])}"
            )
        else:
            where = f"{name} {dict(obs.sizes)} vs {dict(ref.sizes)}"
        raise EstimInputError(
            f"{path} and {ref_path} are fits of different observations ({where}){why}"
        )
    mine, theirs = _labels(obs), _labels(ref)
    for dim in mine.keys() & theirs.keys():
        if mine[dim] != theirs[dim]:
            i = next(
                (j for j, (a, b) in enumerate(zip(mine[dim], theirs[dim], strict=True)) if a != b),
                0,
            )
            raise EstimInputError(
                f"{path} and {ref_path} are fits of different observations: the same counts of {name}, "
                f"but in cells labelled otherwise ({dim} {mine[dim][i]!r} vs {theirs[dim][i]!r}, cell "
                f"{i + 1} of {len(mine[dim])}): another period, stratum or occasion definition is "
                "another dataset, and LOO cannot compare them"
            )


def compare(paths: list[Path]) -> pd.DataFrame:
    """PSIS-LOO comparison (`az.compare`, ``round_to="none"``) of fits of the same individuals, best first.

    LOO leaves out one individual at a time (`individual_log_likelihood`). Refuses a fit that failed the gate
    (`GateFailed`), one fit given twice (the same file, or two files of the same spec fitted to the same data:
    a model compared with itself), fits whose observed data (counts or cell labels) or whose likelihood's
    cells differ: an elpd is a sum over the same observations or it is not comparable; and fits that give
    every individual the same log-likelihood at every draw (`EstimInputError`). The gate and a fit given
    twice are checked for every file before any LOO is computed. Warns when the observed data agree but the
    fits' data hashes differ (labels, covariates or columns the counts do not show): the data are not known
    to be the same.
    """
    import arviz as az

    if len(paths) < 2:
        given = f" (given only {paths[0]})" if paths else ""
        raise EstimInputError(
            f"compare needs at least two fits of the same data{given}: it ranks models against each other"
        )
    loaded: list[tuple[Path, xr.DataTree]] = []
    for path in paths:
        loaded.append((Path(path), _load(Path(path), loaded)))
    trees: dict[str, xr.DataTree] = {}
    reference: tuple[Path, xr.DataArray, np.ndarray, xr.DataTree] | None = None
    accepted: list[tuple[Path, np.ndarray]] = []
    for path, tree in loaded:
        name = str(tree.attrs.get("model_name", path.stem))
        if name in trees:
            name = str(path)
        observed = str(tree.attrs["observed_name"])
        obs = _seen_cells(tree["observed_data"].to_dataset()[observed])
        # a compact fit without its log-likelihood has it recomputed (needs its data, re-read)
        loo_tree, used = individual_log_likelihood(tree, observed, path)
        if reference is None:
            reference = (path, obs, used, tree)
        else:
            _refuse_other_observations(path, obs, (reference[0], reference[1]), observed)
            if not np.array_equal(used, reference[2]):
                raise EstimInputError(
                    f"{path} and {reference[0]} use different cells of the data in their likelihoods "
                    "(e.g. Zelterman uses only f1 and f2): LOO cannot compare them"
                )
            _warn_other_data_hash(path, tree, reference[0], reference[3])
        values = loo_tree["log_likelihood"]["per_individual"].values
        for earlier, earlier_values in accepted:
            if values.shape == earlier_values.shape and np.array_equal(values, earlier_values):
                raise EstimInputError(
                    f"{path} and {earlier} give every individual the same log-likelihood at every draw "
                    "(one likelihood of the data and the same posterior draws: Zelterman's and Chao's "
                    "single-register models, say, differ only in what they infer of the unseen): LOO "
                    "cannot rank them, so compare one of them with the other models"
                )
        accepted.append((path, values))
        trees[name] = loo_tree
    return az.compare(trees, round_to="none")


def _warn_other_data_hash(
    path: Path, tree: xr.DataTree, other: Path, other_tree: xr.DataTree
) -> None:
    mine, theirs = (str(t.attrs.get("data_hash", "")) for t in (tree, other_tree))
    if mine and theirs and mine != theirs:
        sources = [str(t.attrs.get("data_source", "")) for t in (tree, other_tree)]
        said = f" ({sources[0]}; {sources[1]})" if all(sources) and sources[0] != sources[1] else ""
        warnings.warn(
            f"{path} and {other}: the same observed counts, but the data they were fitted to differ "
            f"elsewhere (their data hashes differ: labels, covariates or columns the counts do not show){said}; "
            "compare them "
            "only if they are fits of the same observations",
            stacklevel=3,
        )


COLUMNS = {
    "rank": "0 is the model that predicts best",
    "elpd": "expected log predictive density of a left-out individual, summed (PSIS-LOO); higher is better",
    "elpd_diff": "elpd minus the best model's",
    "dse": "standard error of elpd_diff",
    "p_worse": "probability that the model predicts worse than the best (normal approximation)",
    "diag_diff": "caution about elpd_diff (few individuals, or models too similar to tell apart)",
    "diag_elpd": "caution about elpd (Pareto k of PSIS too high for some individuals)",
    "p": "effective number of parameters",
    "se": "standard error of elpd",
    "weight": "stacking weight of the model in the best predictive mixture",
}


def format_compare(table: pd.DataFrame) -> str:
    """The comparison as text: the columns that say something (no empty diagnostics, no p_worse of the best
    model alone), each explained beneath."""
    shown = table.copy()
    for column in list(shown.columns):
        values = shown[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.all() or (column == "p_worse" and empty.iloc[1:].all()):
            shown = shown.drop(columns=column)
    text = shown.to_string(float_format=lambda x: f"{x:,.3f}", na_rep="", justify="right")
    legend = [f"  {c:9s} {COLUMNS[c]}" for c in shown.columns if c in COLUMNS]
    return "\n".join([text, "", "columns:", *legend])


def compare_json(table: pd.DataFrame) -> str:
    return json.dumps(json.loads(table.to_json(orient="index", default_handler=str)), indent=2)
