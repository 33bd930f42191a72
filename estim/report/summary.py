"""What a saved fit says: N̂ with its interval, the key parameters, the gate verdict (the LOO comparison of fits
is `estim.report.compare`).

N̂ is the posterior median of N and its interval the central (equal-tailed) interval of the draws of N — the
draws of the *count*, given the data and each posterior draw, not of an expected value, so the interval
includes the sampling variation of the unobserved individuals.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from estim.errors import EstimInputError
from estim.families.base import Family, interval_name
from estim.intervals import equal_tailed

# the LOO comparison, kept importable from here for its callers
from estim.report.compare import (  # noqa: F401
    COLUMNS,
    compare,
    compare_json,
    format_compare,
    individual_log_likelihood,
)
from estim.run import store

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

        def value(x: float) -> str:
            # a coefficient per rouble (2.1e-6) is not 0.0000: below 10^-digits, significant figures
            return f"{x:.3g}" if digits and 0 < abs(x) < 10.0**-digits else f"{x:,.{digits}f}"

        return (
            f"{where}{value(row['median'])} ({pct} interval {value(row['lower'])} – "
            f"{value(row['upper'])})"
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
    from estim.run.mle import fit_mle, mle_dict

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
        f"N-hat          {_full(payload['n_hat'])}",
        f"SE             {_full(payload['se'])}",
        f"95% interval   {_full(lo)} – {_full(hi)} ({interval_name(payload.get('extra'))})",
        *_profile_lines(payload.get("profile")),
        f"log-likelihood {_full(payload['loglik'])}",
        "parameters:",
        *(f"  {name} {_full(value)}" for name, value in payload["parameters"].items()),
    ]
    if result.message:
        lines.append(f"note: {result.message}")
    return "\n".join(lines), problem


def _full(value: Any) -> str:
    """A number of an ML fit at full precision (its shortest exact repr); a non-finite one, which the JSON
    payload holds as the text "inf" or "nan", as that word, not as a quoted string."""
    return value if isinstance(value, str) else repr(value)


def _profile_lines(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    lo, hi = profile["ci95"]
    return [
        f"95% profile    {_full(lo)} – {_full(hi)} (N-hat at the profile maximum "
        f"{_full(profile['n_hat'])}; {profile['method']})"
    ]
