"""The likelihood of the border model's register linkage (equations in `estim.families.border.model`): the
surveyed sections' apprehended journeys towards Russia, looked up on the in-country registers in a window after
the journey and in one before it, by pattern of the registers they were seen on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt


def link_set_names(lists: list[str]) -> list[str]:
    """The non-empty sets of in-country lists, set b = Σ_{l∈S} 2^l for b = 1 … 2^L − 1, named "a+b"."""
    return [
        "+".join(n for i, n in enumerate(lists) if b >> i & 1) for b in range(1, 2 ** len(lists))
    ]


def pattern_probabilities(no_sighting: Any, n_lists: int, xp: Any = pt) -> Any:
    """P(the lists a person is seen on are exactly pattern b), b = Σ_l 2^l a_l, from Q(U) = P(seen on none of
    the lists in U) for every set U (``no_sighting(mask)``, mask a bool array over the lists): by
    inclusion–exclusion, P(exactly A) = Σ_{B ⊆ A} (−1)^{|B|} Q(Ā ∪ B). Stacked on a last axis, in the
    array namespace ``xp`` (PyTensor in the model, NumPy for the draws of `estim.families.border.generated`)."""
    out = []
    for b in range(2**n_lists):
        seen = np.array([b >> i & 1 for i in range(n_lists)], bool)
        total = 0.0
        for sub in range(2**n_lists):
            extra = np.array([sub >> i & 1 for i in range(n_lists)], bool)
            if (extra & ~seen).any():
                continue  # B must be a subset of A
            total = total + (-1.0) ** int(extra.sum()) * no_sighting(~seen | extra)
        out.append(total)
    return xp.stack(out, axis=-1)


def link_terms(
    linked: np.ndarray,
    before: np.ndarray,
    category: np.ndarray,
    log_got: Any,
    log_not: Any | None,
    coverage: Any,
    other_sightings: Any,
    after_background: float = 1.0,
) -> None:
    """The likelihood of the register linkage, in the model's context, per linked cell (surveyed section ×
    month × category): the journeys by *after* pattern over the in-country lists (``linked``, cells × 2^L,
    pattern b has list l when bit l is set) and by *before* pattern (``before``), each multinomial.

    A person's sightings in a window come from this journey's crossing, if it got through (probability s;
    log s = ``log_got``, log(1 − s) = ``log_not``, None when r = 1), which list l records with π_l
    (``coverage``), and from the person's other crossings into Russia: the ones recorded on exactly the lists
    of a set S are Poisson with mean μ_S (``other_sightings``, one per non-empty set of lists and category,
    set b = Σ_{l∈S} 2^l in the order of `link_set_names`; the same before and after the journey); every list
    independently for this crossing. So P(seen on none of the lists U) is
    Q(U) = [Π_{l∈U} (1 − π_l)]^{got} · exp(−Σ_{S ∩ U ≠ ∅} μ_S), and a pattern's probability follows by
    inclusion–exclusion (`pattern_probabilities`). The window before the journey has only the other
    crossings: it identifies the μ_S; the overlap of the lists after it, among the journeys that got through,
    separates s from π (a two-list capture–recapture inside a cohort of known size). Other crossings seen on
    both lists (μ_{both}) are why the background is not a rate per list: those sightings come together, and
    read as list dependence they would bias s. (Written as M ~ Poisson(λ) crossings each recorded with π'_l,
    μ_S = λ Π_{l∈S} π'_l Π_{l∉S} (1 − π'_l); the μ_S are sampled instead because π' is free where λ → 0, a
    funnel: 254 divergences on the shipped data.) ``after_background`` ρ: the window after the journey sees
    the other crossings at ρ times the before window's rates (1, the model's assumption: a fixed option, for
    sensitivity; the linkage barely tells ρ from the coverage, docs/design.md §4)."""
    n_lists = int(np.log2(linked.shape[1]))  # 2^L patterns
    cov = coverage[:, category].T  # (cell, list)
    rate = other_sightings[:, category].T  # (cell, set), sets 1 … 2^L − 1

    def background(mask: np.ndarray) -> Any:
        hits = np.array(
            [any(b >> i & 1 and mask[i] for i in range(n_lists)) for b in range(1, 2**n_lists)]
        )
        return pt.exp(-pt.sum(rate[:, hits], axis=1)) if hits.any() else pt.ones_like(rate[:, 0])

    def this_crossing(mask: np.ndarray) -> Any:
        return pt.prod(pt.where(mask[None, :], 1.0 - cov, 1.0), axis=1)

    def after(mask: np.ndarray) -> Any:
        return background(mask) ** after_background if after_background != 1.0 else background(mask)

    if_got = pattern_probabilities(lambda m: this_crossing(m) * after(m), n_lists)
    if_after_not = pattern_probabilities(after, n_lists)
    if_not = pattern_probabilities(background, n_lists)
    floor = 1e-300  # a pattern's probability is positive; inclusion–exclusion can round to 0
    log_if_got = pt.log(pt.maximum(if_got, floor))
    log_if_not = pt.log(pt.maximum(if_not, floor))
    log_if_after_not = pt.log(pt.maximum(if_after_not, floor))
    got = log_got[:, None] + log_if_got
    log_pattern = got if log_not is None else pt.logaddexp(got, log_not[:, None] + log_if_after_not)
    pm.CustomDist(
        "linked_journeys",
        log_pattern,
        logp=lambda value, log_pattern: value * log_pattern,
        observed=linked,
    )
    pm.CustomDist(
        "before_journeys",
        log_if_not,
        logp=lambda value, log_if_not: value * log_if_not,
        observed=before,
    )
