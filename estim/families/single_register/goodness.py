"""Goodness of fit of a single-register model to the frequencies f_k it was fitted to.

A zero-truncated model extrapolates the never-seen from the shape of f_1, f_2, …; where that shape is not the
model's, N̂ is wrong by more than its interval says, and nothing in the fit shows it. On simulated border
records (`estim simulate --years 1`, one section-year; docs/design.md §4, "Single-register and closed
families on the border records") the zero-truncated Poisson put N̂ = 976 (95 % 943 – 1,008) against 1,501
people who attempted, a third low, with exit 0: each person's apprehensions over the year are a sum of
geometric counts over a varying number of journeys, far more dispersed than one Poisson rate.

The test is Pearson's chi-square of the observed against the fitted f_k (summed over covariate patterns), as
singleRcapture's ``summary`` reports it: cells k = 1, 2, … merged from the left until each expects at least
`MIN_EXPECTED` people, the fitted mass beyond the largest k observed put in the last cell, and
df = cells − 1 − parameters (with covariates the df are approximate). Zelterman's and Chao's models fit only
f_1 and f_2, which they reproduce exactly: nothing to test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special
import scipy.stats

MIN_EXPECTED = 5.0
"""Cells are merged until each expects at least this many people (the chi-square approximation's rule)."""
ALPHA = 0.001
"""A model is said not to fit when its p-value is below this: a true model is flagged once in a thousand fits."""


def expected_frequencies(
    spec: Any,
    f: np.ndarray,
    eta: np.ndarray,
    psi: float | None = None,
    trials: np.ndarray | None = None,
) -> np.ndarray:
    """Fitted people seen k = 1, …, K times (K = f.shape[1]), summed over patterns, the last cell holding
    everyone the model puts at k ≥ K: Σ_x n_x P(K = k | K ≥ 1, x)."""
    k = np.arange(1, f.shape[1] + 1, dtype=float)
    alpha = omega = None
    if spec.alpha:
        alpha = np.exp(psi)
    if spec.omega:
        omega = scipy.special.expit(psi)
    t = None if trials is None else np.asarray(trials, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logp = spec.log_prob(k[None, :], np.asarray(eta, dtype=float)[:, None], np, alpha, omega, t)
    p = np.nan_to_num(np.exp(np.asarray(logp, dtype=float)), nan=0.0)
    if spec.binomial:
        p = np.where(k[None, :] <= t, p, 0.0)
    p[:, -1] = np.clip(1.0 - p[:, :-1].sum(axis=1), 0.0, 1.0)  # k ≥ K
    return (f.sum(axis=1)[:, None] * p).sum(axis=0)


def _cells(observed: np.ndarray, expected: np.ndarray) -> list[tuple[int, int]]:
    """Runs [first, last] of k-indices, each expecting at least `MIN_EXPECTED` (the last run absorbs a short
    remainder)."""
    runs: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for j, e in enumerate(expected):
        total += e
        if total >= MIN_EXPECTED:
            runs.append((start, j))
            start, total = j + 1, 0.0
    if start < len(expected):
        if runs:
            runs[-1] = (runs[-1][0], len(expected) - 1)
        else:
            runs.append((start, len(expected) - 1))
    return runs


def _label(first: int, last: int, n_k: int) -> str:
    if last == n_k - 1:
        return f"k ≥ {first + 1}"
    return f"k = {first + 1}" if first == last else f"k = {first + 1}–{last + 1}"


def frequency_fit(
    spec: Any,
    f: np.ndarray,
    eta: np.ndarray,
    n_parameters: int,
    psi: float | None = None,
    trials: np.ndarray | None = None,
    n_hat: float | None = None,
) -> dict[str, Any] | None:
    """Pearson's chi-square of the fitted f_k against the observed (module docstring), as a dict: ``name``,
    ``statistic``, ``df``, ``p_value``, ``passed`` (p ≥ `ALPHA`), ``cells`` (label, observed, expected) and
    ``text`` (`n_hat`, the fit's N̂, is set beside Chao's lower bound there); None for Zelterman's and
    Chao's models, and where the merged cells leave no degree of freedom."""
    if spec.base == "zelterman":
        return None
    observed_k = f.sum(axis=0)
    expected_k = expected_frequencies(spec, f, eta, psi, trials)
    runs = _cells(observed_k, expected_k)
    df = len(runs) - 1 - n_parameters
    if df < 1:
        return None
    obs = np.array([observed_k[a : b + 1].sum() for a, b in runs])
    exp = np.array([expected_k[a : b + 1].sum() for a, b in runs])
    statistic = float(((obs - exp) ** 2 / exp).sum())
    p_value = float(scipy.stats.chi2.sf(statistic, df))
    labels = [_label(a, b, len(observed_k)) for a, b in runs]
    cells = [
        {"cell": lab, "observed": float(o), "expected": float(e)}
        for lab, o, e in zip(labels, obs, exp, strict=True)
    ]
    passed = p_value >= ALPHA
    result = {
        "name": "goodness of fit of f_k (Pearson chi-square)",
        "statistic": statistic,
        "df": df,
        "p_value": p_value,
        "passed": passed,
        "cells": cells,
    }
    shown = ", ".join(f"{c['cell']}: {c['observed']:,.0f}/{c['expected']:,.1f}" for c in cells)
    result["text"] = (
        f"Pearson chi-square {statistic:,.1f} on {df} df, p = {p_value:.2g} (observed/fitted {shown})"
    )
    if not passed:
        result["text"] = _misfit_text(spec, result["text"], observed_k, obs[-1] > exp[-1], n_hat)
    return result


ALTERNATIVES = ("ztpoisson", "ztgeometric", "ztnegbin")


def _misfit_text(
    spec: Any, test: str, observed_k: np.ndarray, tail_more: bool, n_hat: float | None
) -> str:
    """What a failed test means for N̂ and what to do."""
    n, f1 = observed_k.sum(), observed_k[0]
    f2 = observed_k[1] if len(observed_k) > 1 else 0.0
    chao = ""
    if f2 > 0 and n_hat is not None and spec.base in ("poisson", "geometric", "negbin"):
        bound = n + f1**2 / (2 * f2)
        if n_hat < bound:
            chao = (
                f" N̂ = {n_hat:,.0f} lies below Chao's lower bound n + f1²/(2 f2) = {bound:,.0f}, which "
                "holds under any mixture of Poisson rates."
            )
    why = (
        "more people seen many times than it predicts (people caught far more easily than others, or "
        "seen on several occasions each)"
        if tail_more
        else "fewer people seen many times than it predicts"
    )
    others = ", ".join(a for a in ALTERNATIVES if a != spec.name)
    return (
        f"{spec.name}: the fitted model does not describe the frequencies it was fitted to: {test}. "
        f"N̂ and its interval hold only if it does: with {why}, the never-seen are extrapolated from the "
        f"wrong shape, and N̂ can lie far from the truth, outside its interval.{chao} Fit other models "
        f"({others}, covariates) and compare them; `estim check` shows the misfit cell by cell. See "
        'docs/design.md §4, "Single-register and closed families on the border records".'
    )
