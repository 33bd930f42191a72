"""A spec prior the built model does not use (a pooling scale in an unpooled model) is refused before anything
is sampled: it would change nothing, and a reader of the spec would think it did."""

from __future__ import annotations

import warnings

import pytest

from estim.errors import EstimInputError
from estim.priors import Prior
from estim.run.data import family_of, load_data
from estim.run.spec import parse_spec

HARE = {
    "family": "M0",
    "seed": 1,
    "data": {
        "benchmark": "hare",
        "layout": "individuals",
        "occasions": ["c1", "c2", "c3", "c4", "c5", "c6"],
    },
}


def _spec(family: str = "M0", **priors: dict):
    return parse_spec({**HARE, "family": family, "priors": priors})


def test_watched_priors_note_which_are_read():
    from estim.priors import watched

    copies, read = watched({"a": Prior("Normal", mu=0, sigma=1), "b": Prior("HalfNormal", sigma=1)})
    assert read == set() and isinstance(copies["a"], Prior)
    assert copies["a"].parameters == {"mu": 0, "sigma": 1} and read == {"a"}
    assert str(copies["b"]) == "HalfNormal(sigma=1)" and read == {"a", "b"}


@pytest.mark.parametrize(
    ("family", "idle"),
    [
        # before: fitted, N 75.4 as without it, no word of it (exit 0)
        ("M0", "sigma_stratum"),
        ("Mth", "occasion_sd"),
    ],
)
def test_a_prior_the_model_does_not_use_is_refused_before_sampling(tmp_path, family, idle):
    from estim.run.fit import fit

    priors = {idle: {"distribution": "HalfNormal", "sigma": 0.1}}
    sampler = {"draws": 100, "tune": 100, "chains": 1, "prior_draws": 10, "retries": 0}
    spec = parse_spec({**HARE, "family": family, "priors": priors, "sampler": sampler})
    with pytest.raises(EstimInputError) as err:
        fit(spec, out=tmp_path / "fit.nc")
    assert not (tmp_path / "fit.nc").exists()
    message = str(err.value)
    assert (
        f"[priors] {idle}: the {family} model of these data and [options] does not use it"
        in message
    )
    assert "its parameters here: logit_p" in message


def test_a_prior_the_model_uses_passes_and_a_sensitivity_variant_is_warned():
    from estim.run.fit import build_model

    spec = _spec(logit_p={"distribution": "Normal", "mu": 0, "sigma": 1.5})
    data = load_data(spec)
    model = build_model(spec, family_of(spec), data)
    assert [v.name for v in model.free_RVs] == ["logit_p"]
    idle = _spec(sigma_stratum={"distribution": "HalfNormal", "sigma": 0.1})
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_model(idle, family_of(idle), data, idle_priors="warn", progress=said.append)
    assert any("sigma_stratum" in str(w.message) for w in caught)
    assert said and said[0].startswith("warning: model: [priors] sigma_stratum")


def test_the_pooling_scale_of_a_stratified_model_is_used():
    from estim.run.fit import build_model

    spec = parse_spec(
        {
            **HARE,
            "priors": {"sigma_stratum": {"distribution": "HalfNormal", "sigma": 0.5}},
            "options": {"stratified": True},
        }
    )
    model = build_model(spec, family_of(spec), load_data(spec))
    assert "sigma_stratum" in [v.name for v in model.free_RVs]
