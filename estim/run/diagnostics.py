"""The diagnostics gate (docs/design.md §6): a fit is a result only if its sampler diagnostics pass.

Every fit is checked against fixed thresholds (`GateThresholds`); a fit that fails any of them is still saved,
marked as failed, so it can be inspected, but it is never summarised, compared or forecast from as a result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import arviz as az
import numpy as np
import xarray as xr


@dataclass(frozen=True)
class GateThresholds:
    """Thresholds a fit must meet. Why these values:

    * ``r_hat ≤ 1.01`` — rank-normalised split R-hat (Vehtari et al. 2021) on every posterior quantity. Their
      recommended cut-off: above 1.01 the chains have not yet forgotten their starting points or disagree on
      the tails, so between-chain variance still inflates the posterior.
    * ``ess_bulk ≥ 400`` and ``ess_tail ≥ 400`` — total over chains, for every quantity (Vehtari et al. 2021:
      100 per chain with four chains). Bulk ESS governs the Monte-Carlo error of medians and means; tail ESS
      (the minimum of the 5 % and 95 % quantile ESS) governs the 90 % interval ends we report for N.
    * ``divergences = 0`` — any divergent transition after warm-up means the sampler could not follow the
      posterior's geometry somewhere, and the draws are biased away from that region (Betancourt 2017).
    * ``e_bfmi ≥ 0.3`` per chain — energy Bayesian fraction of missing information (Betancourt 2016): below 0.3
      the momentum resampling cannot move the sampler across the energy levels of the posterior, typically
      with heavy tails or funnels, and the tails are explored poorly even when R-hat looks fine.
    """

    r_hat: float = 1.01
    ess_bulk: float = 400.0
    ess_tail: float = 400.0
    divergences: int = 0
    e_bfmi: float = 0.3


@dataclass(frozen=True)
class Check:
    """One diagnostic: the worst value found, its threshold, and where the worst value sits."""

    name: str
    value: float
    threshold: float
    passed: bool
    worst: str = ""

    def describe(self) -> str:
        op = {"r_hat": "≤", "divergences": "≤"}.get(self.name, "≥")
        where = f" ({self.worst})" if self.worst else ""
        value = f"{self.value:.4g}" if math.isfinite(self.value) else str(self.value)
        return f"{self.name} = {value}{where}, needs {op} {self.threshold:g}"


@dataclass(frozen=True)
class GateVerdict:
    """The gate's verdict on one fit."""

    passed: bool
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def describe(self) -> str:
        if self.passed:
            return "diagnostics gate passed"
        bad = "; ".join(c.describe() for c in self.checks if not c.passed)
        return f"diagnostics gate FAILED: {bad}"

    def to_json(self) -> str:
        return json.dumps([asdict(c) for c in self.checks], default=_json_float)

    @classmethod
    def from_json(cls, passed: bool, checks_json: str) -> GateVerdict:
        checks = tuple(Check(**c) for c in json.loads(checks_json))
        return cls(passed=passed, checks=checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": list(self.failed),
            "checks": [
                {**asdict(c), "value": _json_float(c.value), "threshold": c.threshold}
                for c in self.checks
            ],
        }


def _json_float(x: Any) -> Any:
    x = float(x)
    return x if math.isfinite(x) else str(x)


def check(
    idata: xr.DataTree,
    thresholds: GateThresholds = GateThresholds(),
    *,
    var_names: Iterable[str] | None = None,
) -> GateVerdict:
    """Run the gate on a fit: R-hat, bulk and tail ESS, divergences, E-BFMI.

    R-hat and ESS are taken over every variable in the posterior group (or `var_names`), including the draws
    of N: the worst element decides. Quantities constant across all draws (R-hat undefined) are skipped. A
    missing diagnostic (no sample_stats, say) counts as a failure: a fit we cannot check is not a result.
    """
    posterior = idata["posterior"].to_dataset()
    names = list(var_names) if var_names is not None else list(posterior.data_vars)
    posterior = posterior[names]
    t = thresholds
    # a constant (a fixed r, say) has no R-hat or ESS: NaN, skipped by `_worst`, and not worth a warning
    with np.errstate(invalid="ignore", divide="ignore"):
        checks = [
            _worst("r_hat", az.rhat(posterior), t.r_hat, larger_is_worse=True),
            _worst("ess_bulk", az.ess(posterior, method="bulk"), t.ess_bulk, larger_is_worse=False),
            _worst("ess_tail", az.ess(posterior, method="tail"), t.ess_tail, larger_is_worse=False),
        ]
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    if stats is not None and "diverging" in stats:
        n_div = int(stats["diverging"].sum())
        checks.append(Check("divergences", float(n_div), t.divergences, n_div <= t.divergences))
    else:
        checks.append(Check("divergences", math.nan, t.divergences, False, "no sample_stats"))
    if stats is not None and "energy" in stats:
        bfmi = np.atleast_1d(np.asarray(az.bfmi(idata)["energy"], dtype=float))
        lowest = int(np.argmin(bfmi))
        checks.append(
            Check(
                "e_bfmi",
                float(bfmi[lowest]),
                t.e_bfmi,
                bool(np.all(bfmi >= t.e_bfmi)),
                f"chain {lowest}",
            )
        )
    else:
        checks.append(Check("e_bfmi", math.nan, t.e_bfmi, False, "no energy in sample_stats"))
    return GateVerdict(passed=all(c.passed for c in checks), checks=tuple(checks))


def _worst(
    name: str, values: xr.Dataset | xr.DataTree, threshold: float, *, larger_is_worse: bool
) -> Check:
    ds = values.to_dataset() if isinstance(values, xr.DataTree) else values
    worst_value, worst_where = (-math.inf if larger_is_worse else math.inf), ""
    for var, da in ds.data_vars.items():
        arr = np.asarray(da, dtype=float)
        if arr.size == 0 or np.all(np.isnan(arr)):
            continue
        flat = np.where(np.isnan(arr), -np.inf if larger_is_worse else np.inf, arr).ravel()
        i = int(np.argmax(flat) if larger_is_worse else np.argmin(flat))
        v = float(flat[i])
        if (v > worst_value) if larger_is_worse else (v < worst_value):
            worst_value, worst_where = v, _element_name(var, da, i)
    if not math.isfinite(worst_value):
        return Check(name, math.nan, threshold, False, "not computable (too few chains or draws?)")
    passed = worst_value <= threshold if larger_is_worse else worst_value >= threshold
    return Check(name, worst_value, threshold, bool(passed), worst_where)


def _element_name(var: Any, da: xr.DataArray, flat_index: int) -> str:
    if da.ndim == 0:
        return str(var)
    idx = np.unravel_index(flat_index, da.shape)
    labels = []
    for dim, i in zip(da.dims, idx, strict=True):
        label = da[dim].values[i] if dim in da.coords else i
        labels.append(f"{dim}={label}")
    return f"{var}[{', '.join(labels)}]"


def verdict_from_attrs(attrs: Mapping[str, Any]) -> GateVerdict | None:
    """The verdict stored in a saved fit's root attributes (None if the file carries none)."""
    if "gate_passed" not in attrs:
        return None
    passed = str(attrs["gate_passed"]).lower() == "true"
    return GateVerdict.from_json(passed, str(attrs.get("gate_checks", "[]")))
