"""All two-list interactions under a regularised horseshoe (`lists_shrinkage`) beside SparseMSE's stepwise
selection (`lists_stepwise`, p < 0.02): the UK's 5 lists, and simulated tables of 8 and 10 lists.

Usage: `.venv/bin/python scripts/lists_shrinkage_vs_stepwise.py [--seed 16]` (~2–3 minutes on 2 cores). The
sampler settings are models/uk_lists_shrinkage.toml's. Prints, per table: stepwise's N̂ with its profile-
likelihood 95 % interval, the shrinkage posterior median of N with its central 95 % interval, the true N
(simulated tables), the pairs each method picks (shrinkage: the pairs whose 95 % interval excludes 0), the
true pairs, each pair of lists with nobody in common and its posterior, and the fit times.

The simulator draws N people independently from a log-linear law over the 2^K capture patterns,
log P(x) = const + Σ_j x_j logit(p_j) + Σ_(i,j) γ_ij x_i x_j: independent lists (capture probabilities p_j)
except for the few pairs given, whose log odds ratio γ_ij has a known sign. The never-seen people are dropped.
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations, product

import numpy as np
import pandas as pd

from estim.benchmarks import load_benchmark
from estim.families.base import FAMILIES
from estim.families.closed import history_data
from estim.families.lists.shrinkage import build_shrinkage, population, selected_pairs
from estim.families.lists.stepwise import stepwise
from estim.paths import REPO_ROOT
from estim.run.diagnostics import check
from estim.run.sampler import nuts
from estim.run.spec import read_spec

UK_LISTS = ["LA", "NG", "PFNCA", "GO", "GP"]


def simulate_table(
    seed: int, size: int, capture: list[float], dependence: dict[tuple[int, int], float]
) -> pd.DataFrame:
    """The seen patterns' counts among `size` people (lists L1…LK), log-linear law of the module docstring."""
    k = len(capture)
    x = np.array(list(product([0, 1], repeat=k)), dtype=np.int64)
    logit = np.log(np.asarray(capture) / (1 - np.asarray(capture)))
    log_p = x @ logit
    for (i, j), gamma in dependence.items():
        log_p = log_p + gamma * x[:, i] * x[:, j]
    p = np.exp(log_p - np.logaddexp.reduce(log_p))
    counts = np.random.default_rng(seed).multinomial(size, p)
    table = pd.DataFrame(x, columns=[f"L{j + 1}" for j in range(k)])
    table["count"] = counts
    return table[(x.sum(axis=1) > 0) & (counts > 0)].reset_index(drop=True)


def compare(name: str, table: pd.DataFrame, lists: list[str], count: str, truth: dict) -> None:
    spec = read_spec(REPO_ROOT / "models" / "uk_lists_shrinkage.toml")
    data = history_data(table, occasions=lists, count=count)
    y = data["history_count"].values[0]
    x = data["capture"].values
    n = int(y.sum())
    sw = stepwise(data)
    prof = sw.mle.profile or {}
    lo, hi = prof.get("ci95", sw.mle.ci95)
    start = time.perf_counter()
    model = build_shrinkage(data, dict(spec.priors), **spec.options)
    idata = nuts(model, spec.sampler, seed=spec.seed)
    post = idata["posterior"].to_dataset()
    post["N"] = population(data, post, rng=spec.seed)
    idata["posterior"] = post
    seconds = time.perf_counter() - start
    gated = FAMILIES["lists_shrinkage"].gate_variables
    verdict = check(idata, var_names=None if gated is None else [*gated, "N"])
    every = check(idata)  # every posterior variable, the horseshoe's scales included
    q = np.quantile(post["N"].values.ravel(), [0.025, 0.5, 0.975])
    print(f"\n## {name}: {len(lists)} lists, {n:,} seen")
    if truth.get("N"):
        print(f"true N                 {truth['N']:,}")
    print(
        f"stepwise N̂ [95 %]      {sw.mle.n_hat:,.0f} [{lo:,.0f}, {hi:,.0f}]   ({sw.seconds:.1f} s)"
    )
    print(
        f"shrinkage median [95 %] {q[1]:,.0f} [{q[0]:,.0f}, {q[2]:,.0f}]   ({seconds:.1f} s: "
        f"compile {idata['posterior'].attrs['compile_time']:.1f} s, "
        f"sampling {idata['posterior'].attrs['sampling_time']:.1f} s)"
    )
    print(f"gate: {verdict.describe()}; on every variable: {every.describe()}")
    print("stepwise pairs        ", ", ".join(":".join(t) for t in sw.terms.interactions) or "none")
    print("shrinkage pairs       ", ", ".join(selected_pairs(post)) or "none")
    if truth.get("pairs"):
        print("true pairs            ", ", ".join(truth["pairs"]))
    beta = post["pair_effect"].isel(stratum=0)
    for a, b in combinations(range(len(lists)), 2):
        if y @ (x[:, a] * x[:, b]) == 0:
            qb = beta.sel(pair=f"{lists[a]}:{lists[b]}").quantile([0.025, 0.5, 0.975]).values
            print(
                f"no one on both {lists[a]} and {lists[b]}: its interaction's median {qb[1]:.2f} "
                f"[{qb[0]:.2f}, {qb[2]:.2f}]"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=16, help="simulator seed")
    parser.add_argument(
        "--tables", nargs="*", default=["uk", "8", "10"], help="uk and/or the list counts 8, 10"
    )
    args = parser.parse_args()
    if "uk" in args.tables:
        uk = load_benchmark("uk_modern_slavery_5lists")
        compare("UK modern slavery 2013", uk, UK_LISTS, "count", {})
    designs = {
        8: ({(0, 1): 1.0, (2, 4): -1.0, (1, 5): 0.8}, 3000),
        10: ({(0, 1): 1.2, (3, 6): -1.0, (2, 8): 0.8}, 5000),
    }
    for k, (dependence, size) in designs.items():
        if str(k) not in args.tables:
            continue
        capture = list(np.linspace(0.05, 0.25, k))
        table = simulate_table(args.seed + k, size, capture, dependence)
        pairs = [f"L{i + 1}:L{j + 1} ({g:+g})" for (i, j), g in dependence.items()]
        lists = [f"L{j + 1}" for j in range(k)]
        compare(
            f"simulated, seed {args.seed + k}", table, lists, "count", {"N": size, "pairs": pairs}
        )


if __name__ == "__main__":
    main()
