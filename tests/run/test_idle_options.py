"""An ``[options]`` entry the built model would not read is refused when the spec is read, naming the option, the
family and why (`estim.families.base.Family.idle_options_in`): ``nodes`` on a model with no integral, ``centered``
without ``stratified = true``. And every option every registered family takes does change what it fits."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs, io_toposort

from estim.errors import EstimInputError
from estim.families.border.model import build_border
from estim.families.closed.model import build_closed
from estim.families.registry import load_all
from estim.families.single_register import binomial_data
from estim.paths import REPO_ROOT
from estim.run.data import load_data
from estim.run.spec import parse_spec, read_spec, without_defaults

HARE = {
    "seed": 1,
    "data": {
        "benchmark": "hare",
        "layout": "individuals",
        "occasions": ["c1", "c2", "c3", "c4", "c5", "c6"],
    },
}
KOSOVO = {
    "seed": 1,
    "data": {
        "benchmark": "kosovo_4lists",
        "layout": "patterns",
        "count": "Freq",
        "occasions": ["EXH", "ABA", "OSCE", "HRW"],
    },
}
NETHERLANDS = {
    "seed": 1,
    "data": {
        "benchmark": "netherlands_immigrants",
        "layout": "individuals",
        "times_seen": "capture",
        "covariates": ["gender", "age"],
    },
}
BORDER_SPEC = REPO_ROOT / "models" / "border.toml"


def _parse(family: str, base: dict | None = None, **options: Any):
    return parse_spec({**(base or HARE), "family": family, "options": options})


def _refused(family: str, base: dict | None = None, **options: Any) -> str:
    with pytest.raises(EstimInputError) as err:
        _parse(family, base, **options)
    return str(err.value)


# --------------------------------------------------------------------------------------------------------------
# the refusals, and what still passes


@pytest.mark.parametrize("family", ["M0", "Mt", "Mb", "Mh_mixture"])
@pytest.mark.parametrize(("option", "value"), [("nodes", 200), ("quadrature", "gauss-hermite")])
def test_quadrature_options_of_a_model_without_an_integral_are_refused(family, option, value):
    # before: accepted and ignored, exit 0 (M0 with nodes = 200 fitted exactly as without it)
    message = _refused(family, **{option: value})
    assert f"[options] {option}: the {family} model does not use it (" in message
    assert "nodes and quadrature set the integral of Mh_logitnormal, Mth and Mtbh" in message
    assert message.endswith("so it would change nothing: remove it")


@pytest.mark.parametrize("family", ["Mh_logitnormal", "Mth", "Mtbh"])
def test_quadrature_options_of_a_logit_normal_model_pass(family):
    spec = _parse(family, nodes=200, quadrature="gauss-hermite")
    assert spec.options == {"nodes": 200, "quadrature": "gauss-hermite"}


@pytest.mark.parametrize("family", ["M0", "Mth", "Mh_mixture"])
@pytest.mark.parametrize("centered", [True, False])
def test_centered_without_stratified_is_refused(family, centered):
    # before: accepted and ignored (the unpooled model has no centred form)
    message = _refused(family, centered=centered)
    assert (
        f"[options] centered: in the {family} model it has an effect only with stratified = true"
        in (message)
    )
    assert "here stratified is not given, so it would change nothing" in message
    message = _refused(family, centered=centered, stratified=False)
    assert "here stratified = false" in message
    assert _parse(family, centered=centered, stratified=True).options["centered"] is centered


def test_theta_without_a_heterogeneity_it_belongs_to_is_refused_when_read():
    # before: read, then refused only when the model was built (no file named)
    message = _refused("loglinear", theta=2.0, heterogeneity="darroch")
    assert (
        '[options] theta: in the loglinear model it has an effect only with heterogeneity = "poisson" or "gamma"'
        in (message)
    )
    assert 'here heterogeneity = "darroch"' in message
    assert "here heterogeneity is not given" in _refused("loglinear", theta=2.0)
    assert _parse("loglinear", theta=2.5, heterogeneity="poisson").options["theta"] == 2.5


def test_the_border_prior_weight_of_repeated_trials_with_a_fixed_retry_probability_is_refused():
    raw = {"family": "border", "seed": 1, "data": {"records": "data/synthetic"}}
    with pytest.raises(EstimInputError) as err:
        parse_spec({**raw, "options": {"retry_probability": 0.7, "repeated_trials_prior": 0.2}})
    message = str(err.value)
    assert (
        "[options] repeated_trials_prior: in the border model it has an effect only with "
        in message
    )
    assert "retry_probability not given" in message and "here retry_probability = 0.7" in message
    assert parse_spec({**raw, "options": {"repeated_trials_prior": 0.2}}).options == {
        "repeated_trials_prior": 0.2
    }


@functools.cache
def _hare():
    return load_data(_parse("M0"))


def test_an_idle_option_given_from_python_is_refused_and_ml_pooling_too():
    families = load_all()
    with pytest.raises(EstimInputError, match=r"\[options\] nodes: the M0 model does not use it"):
        families["M0"].build(_hare(), None, nodes=200)
    with pytest.raises(EstimInputError, match=r"\[options\] centered: in the Mth model it has"):
        families["Mth"].mle(_hare(), centered=True)
    # before: the ML mode of M0, Mt and Mb ignored stratified = true (exit 0); the others' refused it
    with pytest.raises(EstimInputError, match="the ML mode fits strata separately"):
        families["M0"].mle(_hare(), stratified=True)


def test_options_covariates_beside_a_data_formula_is_refused_before_sampling():
    # before: the formula's terms silently replaced by main effects of the options' covariates (exit 0)
    from estim.run.data import family_of

    data = {k: v for k, v in NETHERLANDS["data"].items() if k != "covariates"}
    raw = {**NETHERLANDS, "family": "ztpoisson", "data": {**data, "formula": "gender * age"}}
    spec = parse_spec({**raw, "options": {"covariates": ["gender"]}})
    with pytest.raises(
        EstimInputError, match=r"\[options\] covariates = \['gender'\]: the data's formula"
    ):
        family_of(spec).build(load_data(spec), None, **spec.options)
    plain = parse_spec(raw)
    assert "beta" in [v.name for v in family_of(plain).build(load_data(plain), None).free_RVs]


def test_every_shipped_spec_and_its_saved_fits_spec_still_parses():
    specs = sorted((REPO_ROOT / "models").glob("*.toml")) + sorted(
        (REPO_ROOT / "examples").rglob("*.toml")
    )
    assert len(specs) > 30
    for path in specs:
        read_spec(path)


def test_the_border_sensitivity_variants_read_again_as_their_saved_fits_are():
    """A variant sets options on top of the spec's and is not read from a file; its saved fit's spec is read
    again for reports (`estim.run.data._fit_spec`), so no shipped variant may combine into an idle option."""
    from estim.studies.sensitivity import variant_spec

    spec = read_spec(BORDER_SPEC)
    design = load_all()["border"].sensitivity
    assert design is not None and design.variant_options
    for name, overrides in design.variants.items():
        vspec = variant_spec(spec, name, overrides, 0.9, design.variant_options.get(name, {}))
        assert load_all()["border"].idle_options_in(vspec.options) == {}, name
        raw = json.loads(json.dumps(vspec.to_dict(), default=str))
        raw = {k: v for k, v in raw.items() if v is not None}
        raw["data"] = {k: v for k, v in raw["data"].items() if v is not None}
        assert parse_spec(without_defaults(raw)).options == vspec.options


# --------------------------------------------------------------------------------------------------------------
# every registered family: each option it takes changes its model (or, conditional, does beside what it needs)


def fingerprint(model: Any) -> str:
    """A hash of a PyMC model's log-density and deterministics as graphs: its free variables, every operation
    and every constant (the quadrature's nodes, a threshold). Equal for models that compute the same."""
    outputs = [model.logp(), *model.replace_rvs_by_values(model.deterministics)]
    ids: dict[Any, Any] = {}
    parts: list[Any] = [
        tuple(v.name for v in model.free_RVs),
        tuple(d.name for d in model.deterministics),
    ]

    def ident(v: Any) -> Any:
        if v not in ids:
            if isinstance(v, Constant):
                data = np.ascontiguousarray(v.data)
                digest = hashlib.sha1(data.tobytes()).hexdigest()
                ids[v] = ("constant", str(data.dtype), data.shape, digest)
            elif v.owner is None:
                ids[v] = ("input", v.name, str(v.type))
            else:
                ids[v] = ("variable", len(ids))
        return ids[v]

    for node in io_toposort(list(graph_inputs(outputs)), outputs):
        parts.append((str(node.op), tuple(ident(i) for i in node.inputs)))
        for out in node.outputs:
            ident(out)
    parts.append(tuple(ident(o) for o in outputs))
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _binomial():
    rng = np.random.default_rng(3)
    size = 400
    t = rng.choice([4, 7], size)
    group = rng.choice(np.array(["a", "b"]), size)
    x = rng.normal(size=size).round(1)
    k = rng.binomial(t, 0.3)
    table = pd.DataFrame({"k": k, "t": t, "group": group, "x": x})[k > 0]
    return binomial_data(table, times_seen="k", trials="t", covariates=["group", "x"])


def _border():
    return load_data(read_spec(BORDER_SPEC))


DATA = {
    "hare": _hare,
    "kosovo": lambda: load_data(parse_spec({**KOSOVO, "family": "lists_bma"})),
    "netherlands": lambda: load_data(parse_spec({**NETHERLANDS, "family": "ztpoisson"})),
    "binomial": _binomial,
    "border": _border,
}


@functools.cache
def _data(kind: str) -> Any:
    return DATA[kind]()


# Each option of each family: a value other than its default, the other options it needs to act (its
# Option.only_with: given beside it here), and for such a conditional option other options beside which it
# would not (None: it always acts). A family or option missing here fails the test: add it, with data on
# which it acts.
Example = tuple[Any, dict[str, Any], dict[str, Any] | None]
POOLING: dict[str, Example] = {
    "stratified": (True, {}, None),
    "centered": (True, {"stratified": True}, {"stratified": False}),
}
QUADRATURE: dict[str, Example] = {
    "nodes": (201, {}, None),
    "quadrature": ("gauss-hermite", {}, None),
}
LOGLINEAR: dict[str, Example] = {
    "capture": ("Mt", {}, None),
    "heterogeneity": ("darroch", {}, None),
    "theta": (5.0, {"heterogeneity": "poisson"}, {"heterogeneity": "darroch"}),
    "interactions": ([["c1", "c2"]], {}, None),
}
EXAMPLES: dict[str, tuple[str, dict[str, Example]]] = {
    **{n: ("hare", POOLING) for n in ("M0", "Mt", "Mb", "Mh_mixture")},
    **{n: ("hare", {**POOLING, **QUADRATURE}) for n in ("Mh_logitnormal", "Mth", "Mtbh")},
    **{
        f"{m}_{h}": ("hare", {})
        for m in ("Mh", "Mth")
        for h in ("chao", "poisson2", "darroch", "gamma35")
    },
    "loglinear": ("hare", LOGLINEAR),
    **{
        n: ("netherlands", {"covariates": (["gender"], {}, None)})
        for n in (
            "ztpoisson",
            "ztgeometric",
            "ztnegbin",
            "oiztpoisson",
            "oiztgeometric",
            "zelterman",
            "chao",
        )
    },
    "ztbinomial": ("binomial", {"covariates": (["group"], {}, None)}),
    "border": (
        "border",
        {
            "centered_hazard": (False, {}, None),
            "centered_section_effect": (False, {}, None),
            "terrain_hazard": (False, {}, None),
            "terrain_journeys": (True, {}, None),
            "retry_probability": (0.7, {}, None),
            # it acts while retry_probability is not given
            "repeated_trials_prior": (0.0, {}, {"retry_probability": 0.7}),
            "frailty_sd": (0.5, {}, None),
            "saddlepoint_above": (20, {}, None),
            "after_background": (1.4, {}, None),
        },
    ),
    "lists_latent_class": ("kosovo", {"classes": (3, {}, None)}),
    "lists_shrinkage": ("kosovo", {"expected_pairs": (1.0, {}, None)}),
    "lists_bma": (
        "kosovo",
        {
            "delta": (1.0, {}, None),
            "prior_n": ("rissanen", {}, None),
            "grid_multiple": (1, {}, None),
        },
    ),
    "lists_stepwise": ("kosovo", {"threshold": (0.5, {}, None)}),
}


def _prior_draws(model: Any) -> Any:
    """A few draws of the model's parameters from their prior, as a posterior (chain, draw)."""
    names = [v.name for v in model.free_RVs] + [d.name for d in model.deterministics]
    with model:
        idata = pm.sample_prior_predictive(
            draws=8, var_names=names, random_seed=1, compile_kwargs={"mode": "FAST_COMPILE"}
        )
    return idata.prior


def derived(family: Any, data: Any, draws: Any, options: dict[str, Any]) -> str:
    """A hash of what the family derives from posterior `draws` with `options` (`Family.after_sampling`, or
    its draws of N)."""
    rng = np.random.default_rng(0)
    if family.after_sampling is not None:
        groups = family.after_sampling(data, draws, rng, **options)
    else:
        groups = {"N": family.population(data, draws, rng, **options).to_dataset(name="N")}
    arrays = [
        np.ascontiguousarray(v.values).tobytes()
        for group in groups.values()
        for v in group.data_vars.values()
        if v.dtype.kind in "biuf"
    ]
    return hashlib.sha1(b"".join(arrays)).hexdigest()


def acts(family: Any, data: Any, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the family fits the data otherwise with options `after` than with `before`: its model's graph
    (`fingerprint`), or, the same model, what it derives from the draws; for a family whose posterior is
    exact its draws of N at a fixed seed, for one with only maximum likelihood its fit."""
    if family.exact is not None:
        runs = [
            family.exact(data, {}, np.random.default_rng(0), draws=200, chains=1, **o)["posterior"]
            for o in (before, after)
        ]
        return not np.array_equal(runs[0]["N"].values, runs[1]["N"].values)
    if not family.bayesian:
        first, second = [
            (f.n_hat, f.message, sorted(f.parameters))
            for f in (family.mle(data, **o) for o in (before, after))
        ]
        return first != second
    model = family.build(data, None, **before)
    if fingerprint(model) != fingerprint(family.build(data, None, **after)):
        return True
    draws = _prior_draws(model)
    return derived(family, data, draws, before) != derived(family, data, draws, after)


@pytest.mark.parametrize("name", sorted(load_all()))
def test_every_option_a_family_takes_changes_what_it_fits(name):
    family = load_all()[name]
    assert name in EXAMPLES, f"{name}: add its options (and data on which they act) to EXAMPLES"
    kind, examples = EXAMPLES[name]
    specs = family.option_specs() or {}
    assert sorted(specs) == sorted(examples), f"{name}: EXAMPLES has not every option it takes"
    data = _data(kind)
    for option, (value, needs, idle_beside) in examples.items():
        # a conditional option is declared so, and the spec reader refuses it beside what idles it
        assert bool(specs[option].only_with) == (idle_beside is not None), (name, option)
        if idle_beside is not None:
            assert option in family.idle_options_in({**idle_beside, option: value}), (name, option)
        assert family.idle_options_in({**needs, option: value}) == {}, (name, option)
        assert acts(family, data, dict(needs), {**needs, option: value}), (
            f"{name}: [options] {option} = {value!r} changes nothing it fits"
        )


@pytest.mark.parametrize("name", ["M0", "Mt", "Mb", "Mh_mixture", "Mh_logitnormal", "Mth", "Mtbh"])
def test_what_an_otis_family_refuses_would_indeed_change_nothing(name):
    """The declarations are true: build_closed given the idle options (and centered without stratified)
    builds the very model it builds without them."""
    family = load_all()[name]
    plain = fingerprint(build_closed(name, _hare()))
    idle = {"nodes": 201, "quadrature": "gauss-hermite"}
    assert set(family.idle_options) == (
        set() if name in ("Mh_logitnormal", "Mth", "Mtbh") else set(idle)
    )
    for option in family.idle_options:
        assert fingerprint(build_closed(name, _hare(), **{option: idle[option]})) == plain
    assert fingerprint(build_closed(name, _hare(), centered=True)) == plain
    assert family.idle_options_in({"centered": True}) and not family.idle_options_in(
        {"centered": True, "stratified": True}
    )


def test_the_border_prior_weight_of_repeated_trials_changes_nothing_with_r_fixed():
    # it acts after sampling (the average with r = 1), and only while r is estimated
    border, data = load_all()["border"], _data("border")
    for fixed, changes in ((None, True), (0.7, False)):
        model = build_border(data, retry_probability=fixed)
        draws = _prior_draws(model)
        plain = derived(border, data, draws, {})
        assert (derived(border, data, draws, {"repeated_trials_prior": 0.0}) != plain) is changes
        assert fingerprint(
            build_border(data, retry_probability=fixed, repeated_trials_prior=0.0)
        ) == (fingerprint(model))


def test_a_family_sharing_a_builder_declares_what_it_ignores():
    # M0 as it was: build_closed's four options taken, none declared idle. The registry-wide test above finds
    # nodes changing nothing (so it fails on such a family), and the spec reader accepted it
    from estim.families.base import registered
    from estim.families.closed.model import OPTIONS

    m0 = load_all()["M0"]
    loose = dataclasses.replace(
        m0,
        name="M0_loose",
        build=functools.partial(build_closed, "M0"),
        options=OPTIONS,
        idle_options={},
    )
    assert not acts(loose, _hare(), {}, {"nodes": 201})
    assert acts(loose, _hare(), {}, {"stratified": True})
    with registered(loose):
        assert _parse("M0_loose", nodes=201).options == {"nodes": 201}
    # declared idle, the spec reader refuses it, saying why
    quiet = dataclasses.replace(loose, name="M0_quiet", idle_options={"nodes": "made up"})
    with registered(quiet):
        message = _refused("M0_quiet", nodes=201)
    assert "[options] nodes: the M0_quiet model does not use it (made up)" in message
