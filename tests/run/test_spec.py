"""Model specs: validation errors name the file and the field; the hash follows meaning, not formatting."""

from __future__ import annotations

import pytest
from fit_fixtures import registered_test_family, write_spec

from estim.errors import EstimInputError
from estim.priors import Prior
from estim.run.spec import read_spec


@pytest.fixture(autouse=True)
def _family():
    with registered_test_family():
        yield


def _bad(tmp_path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EstimInputError) as err:
        read_spec(path)
    message = str(err.value)
    assert str(path) in message
    return message


GOOD = """family = "test_ztp"
seed = 3
[data]
benchmark = "netherlands_immigrants"
count = "capture"
"""


def test_good_spec_with_defaults(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    spec = read_spec(path)
    assert spec.name == "m" and spec.family == "test_ztp" and spec.seed == 3
    assert spec.sampler.chains == 4 and spec.sampler.backend == "jax" and spec.sampler.retries == 2
    assert spec.data.benchmark == "netherlands_immigrants"
    assert spec.data.fields == {"count": "capture", "covariates": ()}
    assert spec.default_output() == tmp_path / "m.nc"


def test_priors_become_prior_objects(tmp_path):
    spec = read_spec(write_spec(tmp_path, sigma=2.0))
    assert spec.priors == {"log_lambda": Prior("Normal", mu=0, sigma=2.0)}


def test_hash_ignores_comments_and_order_but_not_meaning(tmp_path):
    a = tmp_path / "m.toml"
    a.write_text(GOOD)
    b = tmp_path / "sub" / "m.toml"
    b.parent.mkdir()
    b.write_text("# a comment\nseed = 3\n" + GOOD.replace("seed = 3\n", ""))
    assert read_spec(a).spec_hash == read_spec(b).spec_hash
    a.write_text(GOOD.replace("seed = 3", "seed = 4"))
    assert read_spec(a).spec_hash != read_spec(b).spec_hash


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        (GOOD.replace('"test_ztp"', '"no_such"'), "family", "unknown family 'no_such'"),
        (GOOD.replace('family = "test_ztp"\n', ""), "family", "missing"),
        (GOOD.replace("seed = 3", 'seed = "3"'), "seed", "expected an integer"),
        (GOOD.replace("seed = 3", "seed = -1"), "seed", "≥ 0"),
        (GOOD.split("[data]")[0], "[data]", "missing"),
        (GOOD.replace('"netherlands_immigrants"', '"nope"'), "[data] benchmark", "unknown benchmark"),
        (GOOD.replace('count = "capture"', ""), "[data] count", "missing"),
        (GOOD + 'covariates = "age"\n', "[data] covariates", "list of strings"),
        (GOOD + 'records = "data/synthetic"\n', "[data]", "exactly one of"),
        (GOOD + 'file = "mine.csv"\n', "[data]", "(got benchmark, file)"),
        (GOOD + "[sampler]\nretries = -1\n", "[sampler] retries", "≥ 0"),
        (GOOD + "[sampler]\nretries = 9\n", "[sampler] retries", "at most 4"),
        (GOOD + "colour = 1\n", "[data] colour", "unknown field"),
        ("colour = 1\n" + GOOD, "colour", "unknown field"),
        (GOOD + '[sampler]\nchains = "four"\n', "[sampler] chains", "expected an integer"),
        (GOOD + "[sampler]\nchains = 0\n", "[sampler] chains", "≥ 1"),
        (GOOD + "[sampler]\ntarget_accept = 1.5\n", "[sampler] target_accept", "between 0 and 1"),
        (GOOD + '[sampler]\nbackend = "c"\n', "[sampler] backend", "one of jax, numba"),
        (GOOD + "[sampler]\nthin = 2\n", "[sampler] thin", "unknown field"),
        (GOOD + '[priors]\nlog_lambda = { distribution = "Cauchy", mu = 0 }\n',
         "[priors] log_lambda", "unknown prior distribution 'Cauchy'"),
        (GOOD + '[priors]\nlog_lambda = { distribution = "Normal", mu = 0 }\n',
         "[priors] log_lambda", "missing sigma"),
        (GOOD + "[priors]\nlog_lambda = 3\n", "[priors] log_lambda", "expected a table"),
        (GOOD + '[priors]\nalpha = { distribution = "HalfNormal", sigma = 1 }\n',
         "[priors]", "parameters the model does not have: alpha"),
        ("family = [\n", "", "not valid TOML"),
    ],
)  # fmt: skip
def test_errors_name_the_field(tmp_path, text, field, says):
    message = _bad(tmp_path, text)
    assert f": {field}:" in message or not field
    assert says in message


def test_missing_file(tmp_path):
    with pytest.raises(EstimInputError, match="no such spec file"):
        read_spec(tmp_path / "absent.toml")


def test_shipped_specs_name_registered_families_and_benchmarks():
    """Every models/*.toml reads (needs the real families: skipped for those not registered yet)."""
    from estim.families.registry import load_all
    from estim.paths import REPO_ROOT

    families = load_all()
    specs = sorted((REPO_ROOT / "models").glob("*.toml"))
    assert len(specs) >= 11
    for path in specs:
        import tomllib

        family = tomllib.loads(path.read_text())["family"]
        if family not in families:
            continue
        spec = read_spec(path)
        assert spec.name == path.stem


@pytest.mark.parametrize(
    ("family", "data", "field", "says"),
    [
        # each family's own [data] rules, declared by its DataKind
        ("ztpoisson", 'records = "data/synthetic"\nperiod = "2010"', "[data] section", "missing"),
        ("ztpoisson", 'records = "data/synthetic"\nsection = "omsk"', "[data] period", "missing"),
        ("ztpoisson", 'records = "data/synthetic"\nsection = "omsk"\nperiod = "2010"\n'
         'covariates = ["age"]', "[data] covariates", "only 'category'"),
        ("ztpoisson", 'benchmark = "netherlands_immigrants"', "[data] layout", "missing"),
        ("ztpoisson", 'benchmark = "netherlands_immigrants"\ncount = "capture"\nperiod_kind = "week"',
         "[data] period_kind", "one of year, quarter, month"),
        ("M0", 'benchmark = "hare"\nlayout = "individuals"\ncount = "n"', "[data] count",
         'layout = "patterns"'),
        # a file is a table: its layout must be said, as for a benchmark
        ("ztpoisson", 'file = "x.csv"\ntimes_seen = "k"', "[data] layout", "missing"),
        ("M0", 'file = "x.csv"', "[data] layout", "missing"),
        ("M0", 'file = "x.csv"\nlayout = "frequencies"\ntimes_seen = "k"\ncount = "n"\noccasions = "6"',
         "[data] occasions", "a number written without quotes (6)"),
        ("M0", 'file = "x.csv"\nlayout = "frequencies"\ntimes_seen = "k"\ncount = "n"\noccasions = "six"',
         "[data] occasions", "list of strings"),
        ("ztbinomial", 'file = "x.csv"\nlayout = "frequencies"\ntimes_seen = "k"\ncount = "n"\ntrials = 6.0',
         "[data] trials", "a whole number written without a decimal point (6)"),
        ("ztpoisson", 'file = "x.csv"\nlayout = "individuals"\ntimes_seen = "k"\noccasions = 6',
         "[data] occasions", "unknown field"),
        ("ztpoisson", 'file = ""\nlayout = "individuals"\ntimes_seen = "k"', "[data] file", "empty path"),
        ("M0", 'records = "data/synthetic"\nperiod = "2010"\noccasion = "week"', "[data] occasion",
         "one of quarter, month"),
        ("border", 'records = "data/synthetic"\nsection = "omsk"', "[data] section", "unknown field"),
        ("border", 'benchmark = "hare"', "[data] benchmark", "record folder"),
    ],
)  # fmt: skip
def test_each_family_declares_and_checks_its_data_fields(tmp_path, family, data, field, says):
    message = _bad(tmp_path, f'family = "{family}"\nseed = 1\n[data]\n{data}\n')
    assert f": {field}:" in message
    assert says in message


def test_occasion_names_written_as_numbers_are_not_taken_for_the_records_field(tmp_path):
    """`occasions = [1, 2, …]` (names as numbers) was answered "did you mean `occasion`?", the records field
    of another meaning, as if the key were misspelt; the key is right and only its values are wrong."""
    message = _bad(
        tmp_path,
        'family = "M0"\nseed = 1\n[data]\nbenchmark = "hare"\nlayout = "individuals"\n'
        "occasions = [1, 2, 3, 4, 5, 6]\n",
    )
    assert "[data] occasions: expected a list of strings, got [1, 2, 3, 4, 5, 6]" in message
    assert "did you mean" not in message


HARE = 'family = "M0"\nseed = 1\n[data]\nbenchmark = "hare"\nlayout = "individuals"\noccasions = ["c1", "c2", "c3", "c4", "c5", "c6"]\n'  # fmt: skip


@pytest.mark.parametrize(
    ("priors", "says"),
    [
        # before: a HalfNormal on the logit forced p ≥ ½: hare N 69 (68 – 71) instead of 75 (71 – 82), exit 0
        ('logit_p = { distribution = "HalfNormal", sigma = 1 }', "could not move it outside the prior's range"),
        ('sigma_stratum = { distribution = "Normal", mu = 0, sigma = 1 }', "values the model cannot take"),
        # before: each an internal error (exit 1) from inside PyMC or nutpie
        ('logit_p = { distribution = "Normal", mu = 0, sigma = -1 }', "sigma must be > 0, got -1"),
        ('logit_p = { distribution = "Normal", mu = 0, sigma = "1" }', "expected a number (written without quotes)"),
        ('logit_p = { distribution = "Uniform", lower = 1, upper = 0 }', "lower < upper"),
    ],
)  # fmt: skip
def test_a_prior_that_cannot_be_the_parameters_is_refused_naming_it(tmp_path, priors, says):
    message = _bad(tmp_path, f"{HARE}[priors]\n{priors}\n")
    assert f": [priors] {priors.split()[0]}:" in message and says in message


@pytest.mark.parametrize(
    ("family", "data", "option", "takes"),
    [
        # before: ML ignored it (exit 0), the Bayesian fit died of a TypeError (internal error, exit 1)
        ("M0", HARE.split("[data]\n")[1], "stratifed = true", "it takes stratified, centered"),
        ("ztpoisson", 'benchmark = "netherlands_immigrants"\nlayout = "individuals"\ntimes_seen = "capture"\n',
         "prior_n = 5", "covariates"),
        ("border", 'records = "data/synthetic"\n', "terrain_hazards = false", "terrain_hazard"),
    ],
)  # fmt: skip
def test_an_option_the_family_does_not_take_is_refused(tmp_path, family, data, option, takes):
    text = f'family = "{family}"\nseed = 1\n[data]\n{data}[options]\n{option}\n'
    message = _bad(tmp_path, text)
    assert f": [options] {option.split()[0]}: unknown option(s) for family {family!r}" in message
    assert takes in message


def test_the_options_a_family_takes_pass(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(f"{HARE}[options]\nstratified = true\n")
    assert read_spec(path).options == {"stratified": True}
