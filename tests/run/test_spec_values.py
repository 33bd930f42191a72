"""A spec's [options] values, [sampler] counts and misspelt keys are refused when the spec is read, naming the
field, the value and what is allowed (or the key that was meant)."""

from __future__ import annotations

import pytest

from estim.errors import EstimInputError
from estim.run.spec import read_spec

HARE = (
    'family = "FAMILY"\nseed = 1\n[data]\nbenchmark = "hare"\nlayout = "individuals"\n'
    'occasions = ["c1", "c2", "c3", "c4", "c5", "c6"]\n'
)
KOSOVO = (
    'family = "FAMILY"\nseed = 1\n[data]\nbenchmark = "kosovo_4lists"\nlayout = "patterns"\n'
    'count = "Freq"\noccasions = ["EXH", "ABA", "OSCE", "HRW"]\n'
)
BORDER = 'family = "border"\nseed = 1\n[data]\nrecords = "data/synthetic"\n'


def _read(tmp_path, text: str):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return read_spec(path)


def _refused(tmp_path, text: str) -> str:
    with pytest.raises(EstimInputError) as err:
        _read(tmp_path, text)
    return str(err.value)


@pytest.mark.parametrize(
    ("family", "option", "says"),
    [
        # before: an internal error (exit 1) from NumPy when the model was built
        ("Mh_logitnormal", "nodes = -3", "a whole number in [21, 2001], got -3"),
        # before: read as 20 by int() and fitted
        ("Mh_logitnormal", 'nodes = "20"', "got '20' (a string: write the number without quotes)"),
        ("Mth", "nodes = 20.5", "a whole number in [21, 2001], got 20.5"),
        ("Mth", "nodes = 5", "got 5"),
        ("Mtbh", "nodes = 100000", "got 100000"),
        # before: 'no' is truthy, so stratified = "no" pooled the strata
        ("M0", 'stratified = "no"', "true or false, got 'no'"),
        ("Mt", 'centered = "false"', "true or false (without quotes), got 'false'"),
        ("Mb", "stratified = 1", "true or false, got 1"),
        # before: refused only when an Mh model was built; M0 ignored it (now refused there as idle:
        # tests/run/test_idle_options.py)
        ("Mth", 'quadrature = "gauss_hermite"', "one of 'trapezoid', 'gauss-hermite', got 'gauss_hermite' (did you mean 'gauss-hermite'?)"),
        ("loglinear", 'capture = "Mth"', "one of 'none', 'M0', 'Mt', 'Mb', got 'Mth'"),
        ("loglinear", "theta = true", "a number > 0, got true"),
        ("lists_latent_class", "classes = 1", "a whole number in [2, 500], got 1"),
        ("lists_latent_class", 'classes = "10"', "got '10' (a string"),
        ("lists_stepwise", "threshold = 2", "a number in [0, 1], got 2"),
        ("lists_bma", 'prior_n = "jeffreys"', "one of 'inverse', 'rissanen', got 'jeffreys'"),
        ("lists_shrinkage", "expected_pairs = 0", "a number > 0, got 0"),
    ],
)  # fmt: skip
def test_an_option_value_the_family_does_not_allow_is_refused_naming_it(
    tmp_path, family, option, says
):
    data = KOSOVO if family.startswith("lists") else HARE
    message = _refused(tmp_path, f"{data.replace('FAMILY', family)}[options]\n{option}\n")
    assert f": [options] {option.split()[0]}: " in message
    assert says in message


def test_a_border_option_is_typed_by_its_keyword_argument(tmp_path):
    # centered_hazard: bool in build_border's signature; "false" (a string) was truthy
    message = _refused(tmp_path, f'{BORDER}[options]\ncentered_hazard = "false"\n')
    assert ": [options] centered_hazard: " in message and "true or false" in message
    message = _refused(tmp_path, f'{BORDER}[options]\nretry_probability = "1"\n')
    assert ": [options] retry_probability: " in message and "a number" in message
    assert _read(tmp_path, f"{BORDER}[options]\ncentered_hazard = false\n").options == {
        "centered_hazard": False
    }


@pytest.mark.parametrize(
    ("family", "options"),
    [
        ("Mh_logitnormal", {"nodes": 21, "quadrature": "gauss-hermite", "stratified": True}),
        ("Mth", {"nodes": 2001, "stratified": True, "centered": False}),
        ("loglinear", {"capture": "Mt", "heterogeneity": "poisson", "theta": 2.5}),
    ],
)
def test_the_values_an_option_allows_pass_as_given(tmp_path, family, options):
    lines = "".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}\n"
        for k, v in options.items()
    )
    spec = _read(tmp_path, f"{HARE.replace('FAMILY', family)}[options]\n{lines}")
    assert spec.options == options


def test_an_option_declared_in_python_checks_its_value():
    from estim.families.options import Option

    nodes = Option("nodes", "quadrature nodes", kind="int", low=21, high=2001)
    nodes.check(101)
    nodes.check(101.0)
    with pytest.raises(EstimInputError, match=r"\[options\] nodes: quadrature nodes, .* got true"):
        nodes.check(True)
    with pytest.raises(ValueError, match="kind"):
        Option("x", kind="integer")


def test_build_closed_refuses_the_values_a_spec_refuses():
    from estim.benchmarks import load_benchmark
    from estim.families.closed import history_data
    from estim.families.closed.model import build_closed

    data = history_data(load_benchmark("hare"))
    with pytest.raises(EstimInputError, match=r"\[options\] nodes: .* got -3"):
        build_closed("Mh_logitnormal", data, nodes=-3)
    with pytest.raises(EstimInputError, match=r"at most 371 with quadrature = 'gauss-hermite'"):
        build_closed("Mh_logitnormal", data, nodes=500, quadrature="gauss-hermite")


@pytest.mark.parametrize(
    ("sampler", "field", "says"),
    [
        # before: accepted, sampled with 1 warm-up step while the fit recorded 0
        ("tune = 0", "tune", "expected an integer ≥ 1, got 0 (nutpie's NUTS adapts"),
        # before: accepted (a typo runs for hours or exhausts memory)
        ("draws = 1000000000000", "draws", "at most 1,000,000 a chain, got 1,000,000,000,000"),
        ("tune = 10000000", "tune", "at most 1,000,000 a chain"),
        ("chains = 1000", "chains", "at most 64, got 1,000 (a typo? the default is 4)"),
        ("prior_draws = 1000000000000", "prior_draws", "at most 1,000,000, got"),
    ],
)
def test_sampler_counts_outside_their_range_are_refused(tmp_path, sampler, field, says):
    message = _refused(tmp_path, f"{HARE.replace('FAMILY', 'M0')}[sampler]\n{sampler}\n")
    assert f": [sampler] {field}: " in message and says in message


def test_the_largest_sampler_counts_pass(tmp_path):
    text = "[sampler]\ndraws = 1000000\ntune = 1\nchains = 64\nprior_draws = 1000000\n"
    s = _read(tmp_path, HARE.replace("FAMILY", "M0") + text).sampler
    assert (s.draws, s.tune, s.chains, s.prior_draws) == (1_000_000, 1, 64, 1_000_000)


def test_the_sampler_refuses_no_warm_up_rather_than_sampling_another():
    from estim.run.sampler import draw
    from estim.run.spec import SamplerSpec

    with pytest.raises(EstimInputError, match="tune = 0: nutpie's NUTS needs at least 1 warm-up"):
        draw(None, SamplerSpec(tune=0), seed=1)


@pytest.mark.parametrize(
    ("text", "field", "meant"),
    [
        # before: "expected a string", no hint (occasion is the records' field: quarter or month)
        ('occasion = ["c1", "c2", "c3", "c4", "c5", "c6"]\n', "[data] occasion", "occasions"),
        ('covariate = ["x"]\n', "[data] covariate", "covariates"),
        ("[sampler]\ntunes = 500\n", "[sampler] tunes", "tune"),
        ("[options]\nstratifed = true\n", "[options] stratifed", "stratified"),
        ('[priors]\nlogit_pp = { distribution = "Normal", mu = 0, sigma = 1 }\n', "[priors]", "logit_p"),
    ],
)  # fmt: skip
def test_a_misspelt_key_is_refused_naming_the_key_meant(tmp_path, text, field, meant):
    base = 'family = "M0"\nseed = 1\n[data]\nbenchmark = "hare"\nlayout = "individuals"\n'
    if "occasion = " not in text:
        base += 'occasions = ["c1", "c2", "c3", "c4", "c5", "c6"]\n'
    message = _refused(tmp_path, base + text)
    assert f": {field}: " in message and f"(did you mean `{meant}`?)" in message


def test_a_misspelt_top_level_key_is_refused_naming_the_key_meant(tmp_path):
    message = _refused(tmp_path, "seeds = 2\n" + HARE.replace("FAMILY", "M0"))
    assert ": seeds: unknown field(s) (did you mean `seed`?)" in message
