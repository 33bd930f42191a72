"""What a saved fit says: N̂ with its interval, the key parameters, the gate verdict; and LOO comparison.

N̂ is the posterior median of N and its interval the central (equal-tailed) interval of the draws of N — the
draws of the *count*, given the data and each posterior draw, not of an expected value, so the interval
includes the sampling variation of the unobserved individuals.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from estim.errors import EstimInputError, GateFailed
from estim.families.base import Family, interval_name
from estim.intervals import equal_tailed
from estim.run import store
from estim.run.data import fit_data_file

DERIVED = ("N", "unobserved")
MAX_PARAMETER_ELEMENTS = (
    40  # larger parameter arrays (per-pattern effects, say) are not "key" parameters
)


def _interval(da: xr.DataArray, prob: float) -> list[dict[str, Any]]:
    q = equal_tailed(da, prob)
    mean, sd = da.mean(("chain", "draw")), da.std(("chain", "draw"))
    cell_dims = [d for d in da.dims if d not in ("chain", "draw")]
    rows = []
    for idx in np.ndindex(*[da.sizes[d] for d in cell_dims]):
        sel = dict(zip(cell_dims, idx, strict=True))
        row: dict[str, Any] = {
            d: str(da[d].values[i]) if d in da.coords else int(i) for d, i in sel.items()
        }
        qi = q.isel(sel)
        row.update(
            median=float(qi.sel(quantile="median")),
            lower=float(qi.sel(quantile="lower")),
            upper=float(qi.sel(quantile="upper")),
            mean=float(mean.isel(sel)),
            sd=float(sd.isel(sel)),
        )
        rows.append(row)
    return rows


def _registered(name: Any) -> Family | None:
    from estim.families.registry import load_all

    return load_all().get(str(name)) if name is not None else None


def family_of_fit(tree: xr.DataTree) -> Family | None:
    """The registered family a saved fit was made with (None for a family no longer registered)."""
    return _registered(tree.attrs.get("family"))


def summarise(
    tree: xr.DataTree, prob: float = 0.9, truth: str | Path | None = None
) -> dict[str, Any]:
    """N̂ (median, `prob` interval), unobserved, key parameters, the gate verdict and provenance.

    For a fit that failed the gate only the verdict is given (``"N"`` is absent): it is not a result.
    With strata, N is given per stratum and as the total over strata (summed draw by draw). A family with its
    own report (`estim.families.base.FamilyReport`) adds its tables under its name — the border model its
    per-section and whole-border tables (`truth`: a simulator ``truth.nc`` to put beside them).
    """
    attrs = tree.attrs
    verdict = store.verdict(tree)
    out: dict[str, Any] = {
        "model": attrs.get("model_name"),
        "family": attrs.get("family"),
        "gate": verdict.as_dict(),
        "provenance": {
            k: (int(v) if k == "seed" else v)
            for k, v in attrs.items()
            if k in ("spec_hash", "data_hash", "seed", "created", "fit_seconds")
            or k.startswith("version_")
        },
    }
    out["data"] = {
        "source": attrs.get("data_source", "(not recorded in this fit)"),
        "synthetic": attrs.get("data_synthetic") == "true",
    }
    # "exact": independent draws from a posterior computed exactly, no sampler
    if "sampler" in attrs:
        out["sampler"] = attrs["sampler"]
    if "mle_json" in attrs:
        out["mle"] = json.loads(attrs["mle_json"])
    # every run of the sampler (more than one when the gate failed and the fit was retried)
    if "attempts_json" in attrs:
        out["attempts"] = json.loads(attrs["attempts_json"])
    storage = {k: v for k, v in attrs.items() if k.startswith("compact_") or k.endswith("_omitted")}
    if storage:  # what a compact fit summed or left out (estim.run.compact)
        out["storage"] = storage
    if not verdict.passed:
        return out
    post = tree["posterior"].to_dataset()
    out["interval"] = {"prob": prob, "kind": "equal-tailed"}
    family = family_of_fit(tree)
    if family is not None and family.report is not None:
        out[family.name] = family.report.tables(tree, prob, truth)
    elif truth is not None:
        raise EstimInputError(
            f"--truth applies to fits of families with their own report, not {attrs.get('family')!r}"
        )
    if MODEL_AVERAGING in tree.children:
        out[MODEL_AVERAGING] = _model_averaging(tree[MODEL_AVERAGING].to_dataset())
    for name in DERIVED:
        if name in post:
            da = post[name]
            out[name] = _interval(da, prob)
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            if extra and int(np.prod([da.sizes[d] for d in extra])) > 1:
                out[f"{name}_total"] = _interval(da.sum(extra), prob)[0]
    skip: tuple[str, ...] = ()
    if family is not None:
        skip = family.gate_skip
        if family.estimates_posterior is not None:
            post = family.estimates_posterior(post)
    out["parameters"] = {
        str(name): _interval(da, prob)
        for name, da in post.data_vars.items()
        if name not in DERIVED
        and name not in skip
        and not str(name).startswith("unobserved")
        and np.issubdtype(da.dtype, np.number)  # not a label (the graph of a model-averaging fit)
        and 0
        < int(np.prod([da.sizes[d] for d in da.dims if d not in ("chain", "draw")]))
        <= MAX_PARAMETER_ELEMENTS
    }
    return out


# a fit's group of the models averaged over, with their exact posterior probabilities
MODEL_AVERAGING = "model_averaging"


def _model_averaging(ds: xr.Dataset) -> dict[str, Any]:
    """The models averaged over (most probable first) with their posterior probabilities and N given each,
    and the model-averaged posterior of N as computed exactly (a fit's ``model_averaging`` group)."""
    rows = ds.to_dataframe().reset_index(drop=True)
    return {
        "models": json.loads(rows.to_json(orient="records")),
        **{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ds.attrs.items()},
    }


def _format_model_averaging(table: Mapping[str, Any], shown: int = 10) -> list[str]:
    models = table["models"]
    lines = textwrap.wrap(
        f"model averaging over {table.get('graphs', len(models)):,} models; exact posterior of N: mean "
        f"{table['mean']:,.0f}, median {table['median']:,.0f}, 95% interval {table['lower']:,.0f} – "
        f"{table['upper']:,.0f} (delta {table.get('delta', '')}, prior on N {table.get('prior_n', '')}; "
        f"grid of the unseen {table.get('grid', '')})",
        width=100,
    )
    lines.append(
        "most probable models: posterior probability, then N's posterior mean, median and 95% interval "
        "given the model:"
    )
    for row in models[:shown]:
        lines.append(
            f"  {row['probability']:.4f}  {row['name']}  {row['mean']:,.0f}  {row['median']:,.0f}  "
            f"[{row['lower']:,.0f}, {row['upper']:,.0f}]"
        )
    if len(models) > shown or table.get("graphs", 0) > len(models):
        rest = 1 - sum(r["probability"] for r in models[:shown])
        lines.append(
            f"  {f'{rest:.4f}' if rest >= 1e-4 else '< 0.0001'}  the other models together"
        )
    return lines


def format_summary(summary: Mapping[str, Any], *, parameters: bool = False) -> str:
    """The summary as text for a terminal: what was fitted to which data, the estimate with what its numbers
    mean, maximum likelihood beside it, the diagnostics; the model's parameters only with `parameters`."""
    family = _registered(summary.get("family"))
    title = f" — {family.description}" if family is not None else ""
    lines = [f"model {summary.get('model')} (family {summary.get('family')}{title})"]
    if summary.get("warning"):  # the spec beside the fit is not the one it was made of
        lines += textwrap.wrap(
            f"WARNING: {summary['warning']}",
            width=100,
            subsequent_indent="  ",
            break_long_words=False,  # paths and commands whole, to be copied
            break_on_hyphens=False,
        )
    data = summary.get("data") or {}
    if data:
        lines.append(f"data: {data['source']}")
        if data.get("synthetic"):
            lines.append(
                "SYNTHETIC: these are estimates from simulated records, not from real data"
            )
    gate = summary["gate"]
    attempts = summary.get("attempts") or []
    if len(attempts) > 1:
        lines += format_attempts(attempts)
    if not gate["passed"]:
        lines.append(f"FAILED the diagnostics gate: {', '.join(gate['failed'])}")
        for c in gate["checks"]:
            mark = "ok  " if c["passed"] else "FAIL"
            value = f"{c['value']:.4g}" if isinstance(c["value"], float) else c["value"]
            lines.append(
                f"  {mark} {c['name']} = {value} (threshold {c['threshold']:g}) {c['worst']}"
            )
        lines.append("not a result: refit (more draws, another parameterisation) and check again")
        return "\n".join(lines)
    pct = f"{summary['interval']['prob']:.0%}"

    def fmt(row: Mapping[str, Any], digits: int = 0) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _STATS)
        where = f"[{labels}] " if labels else ""
        return (
            f"{where}{row['median']:,.{digits}f} ({pct} interval {row['lower']:,.{digits}f} – "
            f"{row['upper']:,.{digits}f})"
        )

    lines.append("")
    if family is not None and family.report is not None and family.name in summary:
        lines.append(family.report.format(summary[family.name]))
    if MODEL_AVERAGING in summary:
        lines += _format_model_averaging(summary[MODEL_AVERAGING])
    if any(name in summary for name in DERIVED):
        for name in DERIVED:
            for row in summary.get(name, []):
                lines.append(f"{name}: {fmt(row)}")
            if f"{name}_total" in summary:
                lines.append(f"{name} total: {fmt(summary[f'{name}_total'])}")
        lines += textwrap.wrap(
            f"N is the population size (people seen and never seen), unobserved = N minus those seen; each "
            f"is the posterior median with its central (equal-tailed) {pct} interval, from draws of the "
            "count itself, so the interval includes the chance variation of the unseen.",
            width=100,
        )
    mle = summary.get("mle") or {}
    if mle.get("boundary"):
        lines.append(
            "WARNING: the likelihood is maximised on the boundary of the parameter space "
            f"({mle.get('message')}): the data do not determine N, and the posterior above is set by the prior"
        )
    elif "converged" in mle and not mle["converged"]:
        lines.append(
            "WARNING: the maximum-likelihood fit did not converge"
            + (f" ({mle['message']})" if mle.get("message") else "")
            + ": it gives no estimate of N to set beside the posterior"
        )
    elif mle.get("n_hat") is not None:
        lo, hi = mle["ci95"]
        profile = mle.get("profile")
        prof = (
            f"; 95% profile likelihood {float(profile['ci95'][0]):,.1f} – "
            f"{float(profile['ci95'][1]):,.1f}"
            if profile
            else ""
        )
        lines.append(
            f"maximum likelihood: N = {mle['n_hat']:,.1f} (se {mle['se']:,.1f}; "
            f"95% {interval_name(mle.get('extra'))} {lo:,.1f} – {hi:,.1f}"
            f"{prof})"
        )
        fit = (mle.get("extra") or {}).get("goodness_of_fit") or {}
        if fit.get("passed") is False:  # the single-register families' test of f_k
            lines += textwrap.wrap(f"WARNING: {fit['text']}", width=100, subsequent_indent="  ")
    if parameters:
        lines.append(
            f"parameters (posterior median and central {pct} interval, on the model's scale):"
        )
        for name, rows in summary["parameters"].items():
            for row in rows:
                lines.append(f"  {name} {fmt(row, 4)}")
    elif summary["parameters"]:
        lines.append(_parameter_count(summary["parameters"]))
    if summary.get("sampler") == "exact":
        lines.append(
            "independent draws from the exact posterior (no sampler: the gate checks R-hat and ESS)"
        )
    lines.append("diagnostics gate passed: " + "; ".join(
        f"{c['name']} {c['value']:.4g}" for c in gate["checks"]
    ))  # fmt: skip
    return "\n".join(lines)


_STATS = ("median", "lower", "upper", "mean", "sd")

# more arrays than this are counted, not named, in the line that says what --parameters would list
_NAMED_ARRAYS = 6


def _parameter_count(parameters: Mapping[str, Any]) -> str:
    """The line in place of the parameters: how many values --parameters lists (one per coefficient or array
    element, as it lists them), and of which arrays; a regression's beta counts once per term, not once."""
    n = sum(len(rows) for rows in parameters.values())
    values = f"{n} parameter value{'s' if n != 1 else ''}"
    if len(parameters) <= _NAMED_ARRAYS:
        where = ", ".join(f"{name} ({len(rows)})" for name, rows in parameters.items())
        return f"({values}: {where}; add --parameters to list them)"
    return f"({values} in {len(parameters)} arrays; add --parameters to list them)"


def format_attempts(attempts: Any) -> list[str]:
    """Every run of the sampler of a fit (``attempts_json``): its settings, the gate's verdict, its time."""
    lines = [f"sampler: {len(attempts)} attempt(s), each retry after a failed gate:"]
    for a in attempts:
        verdict = "passed" if a["passed"] else "FAILED " + ", ".join(a["failed"])
        lines.append(
            f"  attempt {a['attempt']}: target_accept {a['target_accept']:g}, {a['draws']:,} draws, "
            f"{a['tune']:,} warm-up, {a['chains']} chains: gate {verdict} ({a['seconds']:.1f} s)"
        )
    return lines


def mle_report(spec: Any, *, json_output: bool = False) -> tuple[str, str]:
    """The maximum-likelihood fit of a spec's data, as text or JSON, every number at full precision
    (Python's shortest exact representation), and the problem that makes it no estimate ("" if none).

    When the maximum lies on the boundary or the optimiser did not converge, the text is empty and the
    problem says why; the JSON still gives everything, with ``n_hat`` null and ``status`` saying why.
    """
    import time

    from estim.run.data import data_source
    from estim.run.fit import fit_mle, mle_dict

    start = time.perf_counter()
    result = fit_mle(spec)
    payload = {
        "model": spec.name,
        "family": spec.family,
        "data": data_source(spec)[0],
        **mle_dict(result),
        "seconds": round(time.perf_counter() - start, 3),
    }
    problem = ""
    if payload["status"] != "ok":
        why = "is on the boundary of the parameter space" if result.boundary else "did not converge"
        problem = f"the maximum-likelihood fit {why}; N-hat is not an estimate" + (
            f" ({result.message})" if result.message else ""
        )
    if json_output:
        return json.dumps(payload, indent=2, default=str), problem
    if problem:
        return "", problem
    lo, hi = payload["ci95"]
    lines = [
        f"{spec.name} (maximum likelihood, family {spec.family}) in {payload['seconds']:.2f} s",
        f"data: {payload['data']}",
        f"N-hat          {payload['n_hat']!r}",
        f"SE             {payload['se']!r}",
        f"95% interval   {lo!r} – {hi!r} ({interval_name(payload.get('extra'))})",
        *_profile_lines(payload.get("profile")),
        f"log-likelihood {payload['loglik']!r}",
        "parameters:",
        *(f"  {name} {value!r}" for name, value in payload["parameters"].items()),
    ]
    if result.message:
        lines.append(f"note: {result.message}")
    return "\n".join(lines), problem


def _profile_lines(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    lo, hi = profile["ci95"]
    return [
        f"95% profile    {lo!r} – {hi!r} (N-hat at the profile maximum {profile['n_hat']!r}; "
        f"{profile['method']})"
    ]


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
    """
    from estim.run.compact import pointwise_log_likelihood

    if fit_path is None:
        fit_path = str(tree.encoding.get("source", "fit"))
    tree.attrs.setdefault("observed_name", observed_name)
    ll_flat, n = pointwise_log_likelihood(tree, fit_path)
    n = n.astype(np.int64)
    used = np.any(ll_flat != 0, axis=(0, 1))
    per_person = np.repeat(ll_flat[..., used] / n[used], n[used], axis=-1)
    post = tree["posterior"].to_dataset()
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


def compare(paths: list[Path]) -> pd.DataFrame:
    """PSIS-LOO comparison (`az.compare`, ``round_to="none"``) of fits of the same individuals, best first.

    LOO leaves out one individual at a time (`individual_log_likelihood`). Refuses a fit that failed the gate
    (`GateFailed`), one fit given twice (the same file, or two files of the same spec fitted to the same data:
    a model compared with itself), and fits whose observed data or whose likelihood's cells differ: an elpd is
    a sum over the same observations or it is not comparable. The gate and a fit given twice are checked for
    every file before any LOO is computed.
    """
    import arviz as az

    if len(paths) < 2:
        raise EstimInputError("compare needs at least two fits")
    loaded: list[tuple[Path, xr.DataTree]] = []
    for path in paths:
        tree = store.load(path)
        fit_data_file(tree, path)  # an elpd of data that changed since is not the fit's
        # its row is of the model the fit says, not of the spec beside it now
        beside = store.spec_beside(tree, path)
        if beside is not None:
            warnings.warn(beside, stacklevel=2)
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
            _refuse_same_fit(Path(path), tree, earlier, earlier_tree)
        loaded.append((Path(path), tree))
    trees: dict[str, xr.DataTree] = {}
    reference: tuple[str, xr.DataArray, np.ndarray] | None = None
    for path, tree in loaded:
        name = str(tree.attrs.get("model_name", Path(path).stem))
        if name in trees:
            name = str(path)
        observed_name = str(tree.attrs.get("observed_name", ""))
        if "log_likelihood" not in tree.children and "log_likelihood_omitted" not in tree.attrs:
            raise EstimInputError(
                f"{path}: a fit of family {tree.attrs.get('family')!r} with no pointwise log-likelihood "
                "(stored or recomputable): LOO cannot compare it"
            )
        if "observed_data" not in tree.children or observed_name not in tree["observed_data"]:
            raise EstimInputError(f"{path}: no observed data {observed_name!r} to compare on")
        obs = tree["observed_data"].to_dataset()[observed_name]
        # a compact fit without its log-likelihood has it recomputed (needs its data, re-read)
        loo_tree, used = individual_log_likelihood(tree, observed_name, path)
        if reference is None:
            reference = (str(path), obs, used)
        elif obs.shape != reference[1].shape or not np.array_equal(obs.values, reference[1].values):
            grouping = set(obs.dims) == set(reference[1].dims) and obs.sum() == reference[1].sum()
            why = (
                ": the same people grouped into other cells (fits with other covariates, say), and LOO "
                "here compares fits on the same cells; compare covariate sets by their ML log-likelihoods "
                "(estim fit SPEC --mle) instead"
                if grouping
                else ": LOO cannot compare them"
            )
            raise EstimInputError(
                f"{path} and {reference[0]} are fits of different observations "
                f"({observed_name} {dict(obs.sizes)} vs {dict(reference[1].sizes)}){why}"
            )
        elif not np.array_equal(used, reference[2]):
            raise EstimInputError(
                f"{path} and {reference[0]} use different cells of the data in their likelihoods "
                "(e.g. Zelterman uses only f1 and f2): LOO cannot compare them"
            )
        trees[name] = loo_tree
    return az.compare(trees, round_to="none")


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
