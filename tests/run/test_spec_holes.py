"""Values a spec writes that estim would have ignored or misread, exit 0, refused when the spec is read: a field
that only records read given with a table, a misspelt prior law, a log-uniform's bounds, a NUTS setting for a
family whose posterior is computed exactly, an empty record folder."""

from __future__ import annotations

import pytest

from estim.errors import EstimInputError
from estim.run.spec import parse_spec, read_spec

HARE = (
    'family = "M0"\nseed = 1\n[data]\nbenchmark = "hare"\nlayout = "individuals"\n'
    'occasions = ["c1", "c2", "c3", "c4", "c5", "c6"]\n'
)
NETHERLANDS = (
    'family = "ztpoisson"\nseed = 1\n[data]\nbenchmark = "netherlands_immigrants"\nlayout = "individuals"\n'
    'times_seen = "capture"\n'
)
KOSOVO = (
    'family = "FAMILY"\nseed = 1\n[data]\nbenchmark = "kosovo_4lists"\nlayout = "patterns"\n'
    'count = "Freq"\noccasions = ["EXH", "ABA", "OSCE", "HRW"]\n'
)
FILE = (
    'family = "M0"\nseed = 1\n[data]\nfile = "mine.csv"\nlayout = "individuals"\n'
    'occasions = ["c1", "c2", "c3"]\n'
)


def _refused(tmp_path, text: str) -> str:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(EstimInputError) as err:
        read_spec(path)
    return str(err.value)


# --------------------------------------------------------------------------------------------------------------
# fields that only records read


@pytest.mark.parametrize(
    ("base", "line", "field"),
    [
        # before: each read, and the hare table fitted as a whole, exit 0 (the defaults were filled in before
        # the family's check, which could not tell the writer's value from them)
        (HARE, 'occasion = "month"', "occasion"),
        (HARE, 'period_kind = "quarter"', "period_kind"),
        (HARE, 'period_kind = "year"', "period_kind"),  # written, if equal to the default
        (HARE, 'section = "omsk"', "section"),
        (HARE, 'period = "2010"', "period"),
        (FILE, 'occasion = "month"', "occasion"),
        (NETHERLANDS, 'period_kind = "month"', "period_kind"),
        (KOSOVO.replace("FAMILY", "lists_stepwise"), 'period_kind = "month"', "period_kind"),
    ],
)  # fmt: skip
def test_a_records_only_field_with_a_table_is_refused(tmp_path, base, line, field):
    message = _refused(tmp_path, base + line + "\n")
    assert f"m.toml: [data] {field}: " in message
    assert "only for records" in message


def test_each_records_only_field_written_is_named(tmp_path):
    message = _refused(tmp_path, HARE + 'occasion = "month"\nperiod_kind = "quarter"\n')
    assert "[data] occasion, period_kind: only for records" in message
    assert 'benchmark "hare"' in message


def test_a_records_only_field_with_a_table_from_python_is_refused():
    raw = {
        "family": "M0",
        "seed": 1,
        "data": {
            "table": "a table",
            "layout": "individuals",
            "occasions": ["a", "b"],
            "occasion": "month",
        },
    }
    with pytest.raises(EstimInputError, match=r"\[data\] occasion: only for records"):
        parse_spec(raw, allow_table=True)


def test_the_defaults_of_records_only_fields_are_not_refused(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(HARE)
    spec = read_spec(path)
    assert spec.data.fields["period_kind"] == "year" and spec.data.fields["occasion"] == "quarter"
    # and with records they are read as before
    records = 'family = "M0"\nseed = 1\n[data]\nrecords = "data/synthetic"\nperiod = "2010"\noccasion = "month"\n'
    path.write_text(records)
    assert read_spec(path).data.fields["occasion"] == "month"


def test_a_saved_fits_spec_with_its_defaults_filled_in_is_read_again(tmp_path):
    # a fit records the parsed spec (every default written out); re-reading it must not refuse them
    import xarray as xr

    from estim.run.data import _fit_spec

    for text in (HARE, KOSOVO.replace("FAMILY", "lists_bma") + "[sampler]\ndraws = 200\n"):
        path = tmp_path / "m.toml"
        path.write_text(text)
        spec = read_spec(path)
        tree = xr.DataTree()
        tree.attrs["spec_json"] = spec.canonical_json()
        again = _fit_spec(tree, tmp_path / "m.nc")
        assert again.spec_hash == spec.spec_hash


# --------------------------------------------------------------------------------------------------------------
# priors


@pytest.mark.parametrize(
    ("law", "meant"),
    [("Halfnormal", "HalfNormal"), ("HalfNormall", "HalfNormal"), ("halfnormal", "HalfNormal"),
     ("Half Normal", "HalfNormal"), ("LogUniforn", "LogUniform")],
)  # fmt: skip
def test_a_misspelt_prior_law_is_refused_naming_the_law_meant(tmp_path, law, meant):
    # before: "unknown prior distribution 'Halfnormal'; known: Normal, HalfNormal, …", no hint
    text = HARE + f'[priors]\nsigma_stratum = {{ distribution = "{law}", sigma = 1 }}\n'
    message = _refused(tmp_path, text)
    assert (
        f"[priors] sigma_stratum: unknown prior distribution {law!r} (did you mean `{meant}`?)"
        in message
    )


def test_a_misspelt_prior_parameter_is_refused_naming_the_parameter_meant(tmp_path):
    text = HARE + '[priors]\nlogit_p = { distribution = "Normal", mu = 0, sgima = 1 }\n'
    message = _refused(tmp_path, text)
    assert "[priors] logit_p: prior Normal takes parameters mu, sigma; missing sigma" in message
    assert "unexpected sgima (did you mean `sigma`?)" in message


@pytest.mark.parametrize(
    ("prior", "says"),
    [
        ('{ distribution = "LogUniform", lower = 0, upper = 1 }', "0 < lower < upper; got lower=0, upper=1"),
        ('{ distribution = "LogUniform", lower = 2, upper = 1 }', "0 < lower < upper; got lower=2, upper=1"),
        ('{ distribution = "LogUniform", lower = -1, upper = 1 }', "0 < lower < upper; got lower=-1, upper=1"),
        ('{ distribution = "LogUniform", lower = 1, upper = 1 }', "0 < lower < upper; got lower=1, upper=1"),
        ('{ distribution = "OffsetLogUniform", offset = 0, upper = 1 }', "offset > 0 and upper > 0"),
        ('{ distribution = "OffsetLogUniform", offset = -0.1, upper = 1 }', "offset > 0 and upper > 0"),
        ('{ distribution = "OffsetLogUniform", offset = 0.1, upper = -1 }', "offset > 0 and upper > 0"),
        ('{ distribution = "LogUniform", lower = 0.1, upper = inf }', "upper must be finite"),
    ],
)  # fmt: skip
def test_log_uniform_bounds_are_checked_when_the_spec_is_read(tmp_path, prior, says):
    # already refused when read (estim.priors.Prior): this pins it, before any model is built
    message = _refused(tmp_path, HARE + f"[priors]\nsigma_stratum = {prior}\n")
    assert "m.toml: [priors] sigma_stratum: " in message and says in message


# --------------------------------------------------------------------------------------------------------------
# a family whose posterior is computed exactly, and an empty record folder


@pytest.mark.parametrize("line", ["tune = 500", "target_accept = 0.95", 'backend = "numba"',
                                  'adaptation = "low_rank"', "prior_draws = 100"])  # fmt: skip
def test_a_nuts_setting_for_an_exact_family_is_refused(tmp_path, line):
    # before: lists_bma draws independently from its exact posterior, and the setting was ignored, exit 0
    text = KOSOVO.replace("FAMILY", "lists_bma") + f"[sampler]\ndraws = 200\n{line}\n"
    message = _refused(tmp_path, text)
    key = line.split(" = ")[0]
    assert f"m.toml: [sampler] {key}: " in message
    assert "computed exactly" in message and "draws, chains and retries" in message


def test_an_exact_family_takes_draws_chains_and_retries(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(
        KOSOVO.replace("FAMILY", "lists_bma") + "[sampler]\ndraws = 200\nchains = 2\nretries = 1\n"
    )
    spec = read_spec(path)
    assert (spec.sampler.draws, spec.sampler.chains, spec.sampler.retries) == (200, 2, 1)
    # a sampled family still takes them all
    path.write_text(KOSOVO.replace("FAMILY", "lists_stepwise") + "[sampler]\ntune = 500\n")
    assert read_spec(path).sampler.tune == 500


@pytest.mark.parametrize("folder", ["", "  "])
def test_an_empty_record_folder_is_refused(tmp_path, folder):
    # before: read as the spec's own folder
    message = _refused(
        tmp_path, f'family = "M0"\nseed = 1\n[data]\nrecords = "{folder}"\nperiod = "2010"\n'
    )
    assert "m.toml: [data] records: empty path" in message
