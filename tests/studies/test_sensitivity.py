"""The prior-sensitivity variants of the border spec (estim/sensitivity.py); the refits themselves are run by
`estim sensitivity` (README), minutes each."""

from __future__ import annotations

from estim.paths import REPO_ROOT
from estim.priors import Prior
from estim.run.spec import read_spec
from estim.studies.sensitivity import VARIANT_TARGET_ACCEPT, VARIANTS, variant_spec


def test_variants_change_only_the_hazard_prior_and_get_their_own_fit():
    spec = read_spec(REPO_ROOT / "models" / "border.toml")
    assert variant_spec(spec, "spec", VARIANTS["spec"]) is spec
    for name, overrides in VARIANTS.items():
        if not overrides:
            continue
        v = variant_spec(spec, name, overrides)
        assert v.name == f"border__{name}"
        assert dict(v.priors) == {**dict(spec.priors), **overrides}
        assert v.spec_hash != spec.spec_hash  # never reuses the spec's cached fit
        assert v.sampler.target_accept == max(spec.sampler.target_accept, VARIANT_TARGET_ACCEPT)
        assert (v.sampler.draws, v.sampler.chains, v.seed) == (
            spec.sampler.draws,
            spec.sampler.chains,
            spec.seed,
        )
    # the shipped variants widen and shift the level of the log hazard both ways
    mus = sorted(o["hazard_mean"].parameters["mu"] for o in VARIANTS.values() if o)
    assert mus[0] < -0.5 < mus[-1]
    assert isinstance(VARIANTS["hazard_mean_wide"]["hazard_mean"], Prior)
