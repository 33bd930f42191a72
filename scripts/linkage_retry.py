"""What the register linkage alone says about the retry probability r, on simulated borders (docs/design.md §4,
"Where r's information comes from").

Usage:
  ./run python scripts/linkage_retry.py --retry 0.6 --seeds 20 --out linkage_retry.csv
  ./run python scripts/linkage_retry.py --retry 0.6 0.8 --seeds 10 --single
  ./run python scripts/linkage_retry.py --retry 0.6 --seeds 10 --register-dating stay

Dataset i is the misspecification study's world (`perturbed_config(seed + i)`, simulator seed seed + i, r
replaced, no frailty; ``--register-dating stay``: the registers date an entry within the person's stay in
Russia, docs/simulator.md §6). For each, the apprehended journeys towards Russia that the linkage counts
(`estim.statistics.linkage`: first apprehension at least W days from either end of the records) are looked up
on the in-country lists in the W days after and before the journey, as the linkage does, and two things are
measured against the simulator's truth:

* **the background before and after** (the model assumes a person's other crossings are seen as often in the
  window before a journey as in the window after it): among journeys that did not get through, the share seen
  on any list after and before (``seen_after_not_got``, ``seen_before_not_got``, and their ratio);
* **r from the linkage alone**: r, the coverage π_{L,c} and the background rates μ_{S,c} fitted by maximum
  likelihood to the linked journeys' after and before patterns per section × month × category (the border
  model's linkage law, `estim.families.border.linkage.pattern_probabilities`), with every cell's true p given,
  so that s = r(1 − p)/(1 − pr) depends on r alone. ``retry_ml`` is the estimate, ``z`` the signed root of
  the likelihood ratio at the true r (≈ N(0, 1) when the law is right). ``--single`` keeps only people with one
  linked journey (no person counted twice).
* **r's posterior from the linkage alone** (``--bayes``): the same law and data in PyMC, with the border
  model's priors (r uniform; π by ``--coverage-prior``, the model's own by default, or ``uniform`` for the
  Beta(1, 1) of revisions 2–4; μ_S HalfNormal(0.5)) and its sampling of π relative to r
  (`estim.families.border.retry.register_coverage`): ``retry_median``, ``retry_lower``, ``retry_upper`` (90 %,
  equal-tailed). Is the posterior median of r systematically off r̂? (A prior that pulls r does so here.)

Without ``--bayes`` nothing is sampled: ~10–20 s a dataset; with it ~1 min.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from estim.families.border.linkage import pattern_probabilities
from estim.priors import Prior
from estim.records.schemas import IN_COUNTRY_REGISTERS, REGISTERS
from estim.simulate import core
from estim.simulate import process as P
from estim.simulate.perturb import perturbed_config
from estim.statistics.linkage import LINK_WINDOW_DAYS
from estim.studies.border_recovery import DEFAULT_STUDY_SEED
from estim.studies.rows import write_rows

_SPAN = np.int64(1 << 24)  # > any day number's range: person-major packed keys


def linked_journeys(
    seed: int, retry: float, window: int = LINK_WINDOW_DAYS, dating: str = "delay"
) -> dict[str, np.ndarray]:
    """The linkable journeys of simulated border ``seed`` at r = ``retry``: their person, cell (section, month,
    category), whether they got through (the truth), their after and before patterns over the in-country lists
    (bit l set: seen on list l), and the truth's p per cell (``p``, section × month × category). ``dating``:
    the simulator's ``register_dating``."""
    cfg = dataclasses.replace(
        perturbed_config(seed),
        retry_probability=retry,
        apprehension_frailty_sd=0.0,
        register_dating=dating,
    )
    tl = P.Timeline.make(cfg.start_month, cfg.years)
    sections_raw, sections = P.read_sections(core.SECTIONS_CSV)
    surveyed = [i for i, s in enumerate(core.SECTIONS) if sections.at[s, "surveyed"]]
    checkpoints = P.build_checkpoints(sections, sections_raw, cfg.citizens_only_checkpoints)
    in_force = {ev: tl.in_force(cfg.policy_start[ev]) for ev in core.POLICY_EVENTS}
    flows = P.simulate_flows(seed, cfg, tl, checkpoints, in_force)
    journeys = P.simulate_journeys(seed, cfg, tl, sections, flows, in_force)
    people = P.simulate_people(seed, cfg, tl, journeys, surveyed, False)
    registers = P.simulate_registers(seed, cfg, tl, people, surveyed)

    month_start = tl.months[people.journey_month].astype("datetime64[D]").astype(np.int64)
    first = np.full(people.journey_person.size, np.iinfo(np.int64).max)
    np.minimum.at(first, people.app_journey, month_start[people.app_journey] + people.app_day - 1)
    start = tl.months[0].astype("datetime64[D]").astype(np.int64)
    end = tl.end.astype(np.int64)
    keep = (
        (people.journey_apprehensions > 0)
        & people.journey_to_russia
        & (first - window >= start)
        & (first + window <= end)
    )
    person, day = people.journey_person[keep], first[keep]
    after = np.zeros(person.size, np.int64)
    before = np.zeros(person.size, np.int64)
    for bit, name in enumerate(IN_COUNTRY_REGISTERS):
        on = (registers.register == REGISTERS.index(name)) & (
            registers.person < registers.n_crossers
        )
        packed = np.sort(
            registers.person[on].astype(np.int64) * _SPAN + registers.date[on].astype(np.int64)
        )
        base = person.astype(np.int64) * _SPAN + day
        seen_after = np.searchsorted(packed, base + window, "right") > np.searchsorted(
            packed, base, "left"
        )
        seen_before = np.searchsorted(packed, base, "left") > np.searchsorted(
            packed, base - window, "left"
        )
        after += seen_after.astype(np.int64) << bit
        before += seen_before.astype(np.int64) << bit
    return {
        "person": person,
        "section": people.person_section[person],
        "month": people.journey_month[keep],
        "category": people.person_category[person],
        "got": people.journey_success[keep],
        "after": after,
        "before": before,
        "p": journeys.p,
    }


def _patterns(cell: np.ndarray, pattern: np.ndarray, n_cells: int, n_patterns: int) -> np.ndarray:
    counts = np.zeros((n_cells, n_patterns))
    np.add.at(counts, (cell, pattern), 1.0)
    return counts


def linkage_fit(journeys: dict[str, np.ndarray], retry: float | None = None) -> tuple[float, float]:
    """(r̂, −log-likelihood) of the linkage law fitted by maximum likelihood to the journeys' after and before
    pattern counts per cell, every cell's p the truth's; with ``retry`` r is fixed there."""
    n_lists = len(IN_COUNTRY_REGISTERS)
    n_patterns, n_sets, n_categories = 2**n_lists, 2**n_lists - 1, 5
    cells, after, before, p = _cells(journeys)
    category = cells[:, 2]
    hits = np.array(
        [[bool(b >> i & 1) for i in range(n_lists)] for b in range(1, n_patterns)]
    )  # (set, list)

    def negative_log_likelihood(theta: np.ndarray) -> float:
        r = retry if retry is not None else 1.0 / (1.0 + np.exp(-theta[0]))
        coverage = 1.0 / (1.0 + np.exp(-theta[1 : 1 + n_lists * n_categories]))
        coverage = coverage.reshape(n_lists, n_categories)[:, category].T  # (cell, list)
        rates = np.exp(theta[1 + n_lists * n_categories :]).reshape(n_sets, n_categories)
        rates = rates[:, category].T  # (cell, set)
        s = r * (1.0 - p) / (1.0 - p * r)

        def background(mask: np.ndarray) -> np.ndarray:
            touched = (hits & mask[None, :]).any(axis=1)
            return np.exp(-rates[:, touched].sum(axis=1))

        def got(mask: np.ndarray) -> np.ndarray:
            return np.prod(np.where(mask[None, :], 1.0 - coverage, 1.0), axis=1) * background(mask)

        if_not = np.maximum(pattern_probabilities(background, n_lists, xp=np), 1e-300)
        if_got = np.maximum(pattern_probabilities(got, n_lists, xp=np), 1e-300)
        mixed = s[:, None] * if_got + (1.0 - s[:, None]) * if_not
        return -float((after * np.log(mixed)).sum() + (before * np.log(if_not)).sum())

    start = np.r_[0.0, np.full(n_lists * n_categories, -1.5), np.full(n_sets * n_categories, -4.0)]
    result = minimize(negative_log_likelihood, start, method="L-BFGS-B")
    r_hat = retry if retry is not None else float(1.0 / (1.0 + np.exp(-result.x[0])))
    return r_hat, float(result.fun)


def _cells(
    journeys: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The linked cells (section, month, category) with their after and before pattern counts and true p."""
    n_patterns = 2 ** len(IN_COUNTRY_REGISTERS)
    key = np.stack([journeys["section"], journeys["month"], journeys["category"]], axis=1)
    cells, cell = np.unique(key, axis=0, return_inverse=True)
    cell = cell.ravel()
    after = _patterns(cell, journeys["after"], len(cells), n_patterns)
    before = _patterns(cell, journeys["before"], len(cells), n_patterns)
    return cells, after, before, journeys["p"][cells[:, 0], cells[:, 1], cells[:, 2]]


def linkage_posterior(
    journeys: dict[str, np.ndarray],
    coverage_prior: Prior | None = None,
    seed: int = 0,
    draws: int = 1000,
) -> dict[str, float]:
    """r's posterior median and 90 % interval from the linkage alone (module docstring, ``--bayes``), every
    cell's p the truth's; ``coverage_prior`` defaults to the border model's."""
    import pymc as pm
    import pytensor.tensor as pt

    from estim.families.border.linkage import link_set_names, link_terms
    from estim.families.border.model import DEFAULT_PRIORS
    from estim.families.border.retry import register_coverage
    from estim.intervals import equal_tailed

    cells, after, before, p = _cells(journeys)
    coords = {
        "in_country_list": list(IN_COUNTRY_REGISTERS),
        "category": list(range(5)),
        "link_set": link_set_names(list(IN_COUNTRY_REGISTERS)),
    }
    with pm.Model(coords=coords):
        retry = DEFAULT_PRIORS["retry_probability"].create("retry_probability")
        coverage = register_coverage(
            coverage_prior or DEFAULT_PRIORS["register_coverage"], pt.log(retry)
        )
        rates = DEFAULT_PRIORS["other_sightings"].create(
            "other_sightings", dims=("link_set", "category")
        )
        s = retry * (1 - p) / (1 - p * retry)
        link_terms(after, before, cells[:, 2], pt.log(s), pt.log1p(-s), coverage, rates)
        idata = pm.sample(
            draws=draws,
            tune=draws,
            chains=2,
            random_seed=seed,
            progressbar=False,
            target_accept=0.9,
            nuts_sampler="nutpie",
            backend="jax",
        )
    q = equal_tailed(idata["posterior"]["retry_probability"], 0.9)
    return {f"retry_{k}": float(q.sel(quantile=k)) for k in ("median", "lower", "upper")}


def dataset_row(
    seed: int,
    retry: float,
    single: bool = False,
    bayes: Prior | bool = False,
    dating: str = "delay",
) -> dict[str, float]:
    """One simulated border's background shares and its linkage-only estimate of r (module docstring);
    ``bayes`` (True, or a coverage prior) adds r's posterior from the linkage alone; ``dating`` is the
    simulator's ``register_dating``."""
    journeys = linked_journeys(seed, retry, dating=dating)
    if single:
        people, count = np.unique(journeys["person"], return_counts=True)
        once = np.isin(journeys["person"], people[count == 1])
        journeys = {k: (v if k == "p" else v[once]) for k, v in journeys.items()}
    not_got = ~journeys["got"]
    after, before = journeys["after"][not_got] > 0, journeys["before"][not_got] > 0
    r_hat, best = linkage_fit(journeys)
    _, at_truth = linkage_fit(journeys, retry)
    deviance = max(0.0, 2.0 * (at_truth - best))
    row = {
        "sim_retry": retry,
        "sim_seed": seed,
        "single": single,
        "register_dating": dating,
        "journeys": int(journeys["got"].size),
        "got_share": float(journeys["got"].mean()),
        "seen_after_not_got": float(after.mean()),
        "seen_before_not_got": float(before.mean()),
        "after_over_before": float(after.mean() / before.mean()) if before.any() else np.nan,
        "retry_ml": r_hat,
        "z": float(np.sign(r_hat - retry) * np.sqrt(deviance)),
    }
    if bayes is not False:
        row.update(linkage_posterior(journeys, None if bayes is True else bayes, seed))
    return row


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per r: datasets, the mean r̂, z's mean and sd, and the mean background shares and their ratio; with
    ``--bayes`` rows, the posterior medians' mean, how many lie below r̂ and how many intervals cover r."""
    rows = rows.copy()
    columns = {
        "datasets": ("z", "size"),
        "retry_ml_mean": ("retry_ml", "mean"),
        "z_mean": ("z", "mean"),
        "z_sd": ("z", "std"),
        "seen_after": ("seen_after_not_got", "mean"),
        "seen_before": ("seen_before_not_got", "mean"),
        "after_over_before": ("after_over_before", "mean"),
    }
    if "retry_median" in rows:
        rows["median_below_ml"] = rows["retry_median"] < rows["retry_ml"]
        rows["covered"] = (rows["retry_lower"] <= rows["sim_retry"]) & (
            rows["sim_retry"] <= rows["retry_upper"]
        )
        columns |= {
            "median_mean": ("retry_median", "mean"),
            "median_below_ml": ("median_below_ml", "sum"),
            "covered": ("covered", "sum"),
        }
    keys = ["sim_retry", "single"] + (["register_dating"] if "register_dating" in rows else [])
    return rows.groupby(keys).agg(**columns)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retry", type=float, nargs="+", default=[0.6], help="simulated r")
    parser.add_argument("--seeds", type=int, default=5, help="datasets per r")
    parser.add_argument("--seed", type=int, default=DEFAULT_STUDY_SEED, help="first simulator seed")
    parser.add_argument("--single", action="store_true", help="only people with one linked journey")
    parser.add_argument(
        "--register-dating",
        choices=["delay", "stay"],
        default="delay",
        help="the simulator's register_dating: an entry a delay after its crossing, or within the stay",
    )
    parser.add_argument("--bayes", action="store_true", help="also r's posterior (linkage alone)")
    parser.add_argument(
        "--coverage-prior",
        choices=["model", "uniform"],
        default="model",
        help="with --bayes: the coverage's prior (the model's, or revision 4's uniform)",
    )
    parser.add_argument("--out", help="CSV of the rows")
    args = parser.parse_args(argv)
    bayes: Prior | bool = args.bayes
    if args.bayes and args.coverage_prior == "uniform":
        bayes = Prior("Beta", alpha=1.0, beta=1.0)
    rows = []
    for retry in args.retry:
        for seed in range(args.seed, args.seed + args.seeds):
            rows.append(dataset_row(seed, retry, args.single, bayes, args.register_dating))
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        write_rows(frame, args.out)
    print(summary(frame).round(4).to_string())


if __name__ == "__main__":
    main()
