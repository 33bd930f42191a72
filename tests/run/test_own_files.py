"""A researcher's own CSV or Parquet file in a spec (`[data] file`), the Python API on a DataFrame, ML output at
full precision, the sampler's retries after a failed gate, and compact storage of fits with many patterns.

References: the Dutch immigrants' published f_k (van der Heijden et al. 2003: 1,645, 183, 37, 13, 1, 1), the
closed-form ML estimate of the intercept-only zero-truncated Poisson (solved here with brentq), and PyMC's own
pointwise log-likelihood for the recomputed one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import xarray as xr
from click.testing import CliRunner
from fit_fixtures import FAMILY, registered_test_family

from estim.benchmarks import load_benchmark
from estim.cli import cli
from estim.errors import DataChanged, EstimInputError
from estim.families.base import MLEResult, registered
from estim.run import compact, store
from estim.run import fit as fit_module
from estim.run.data import data_source, fit_data, fit_data_file, load_data, read_table, table_data
from estim.run.diagnostics import Check, GateVerdict
from estim.run.fit import fit, fit_table, retry_settings
from estim.run.spec import read_spec

PUBLISHED_FK = [1645, 183, 37, 13, 1, 1]  # van der Heijden et al. (2003), 1,880 people


def _ztpoisson_model(data):  # the ztpoisson family's model, default priors
    from estim.families.registry import load_all

    return load_all()["ztpoisson"].build(data, {})


def _ztp_mle(times: np.ndarray) -> float:
    """N̂ of the intercept-only ZTP: λ solves λ / (1 − e^{−λ}) = mean k; N̂ = n / (1 − e^{−λ})."""
    mean = times.mean()
    lam = scipy.optimize.brentq(lambda x: x / -np.expm1(-x) - mean, 1e-9, 50.0, xtol=1e-15)
    return len(times) / -np.expm1(-lam)


SPEC = """family = "ztpoisson"
seed = 5
[data]
file = "{file}"
layout = "individuals"
times_seen = "capture"
"""


@pytest.fixture(scope="module")
def immigrants(tmp_path_factory):
    """The Dutch immigrants as a user's own CSV and Parquet, in a folder below the spec's."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "data").mkdir()
    table = load_benchmark("netherlands_immigrants")
    table.to_csv(folder / "data" / "people.csv", index=False)
    table.to_parquet(folder / "data" / "people.parquet")
    return folder, table


# --------------------------------------------------------------------------------------------------------------
# reading a file


def test_file_relative_to_the_spec_is_read_into_the_family(immigrants, monkeypatch, tmp_path):
    folder, _ = immigrants
    spec_path = folder / "csv.toml"
    spec_path.write_text(SPEC.format(file="data/people.csv"))
    monkeypatch.chdir(tmp_path)  # relative to the spec's folder, not to the current one
    spec = read_spec(spec_path)
    assert spec.data.source == "file" and spec.data.file == "data/people.csv"
    data = load_data(spec)
    assert data["frequency"].sum("pattern").values.tolist() == PUBLISHED_FK
    assert data_source(spec) == (f"file {folder / 'data' / 'people.csv'}", False)
    # an absolute path, and Parquet, give the same statistics
    spec_path.write_text(SPEC.format(file=folder / "data" / "people.parquet"))
    xr.testing.assert_identical(load_data(read_spec(spec_path)), data)


def test_cli_mle_json_full_precision_csv_and_parquet(immigrants):
    folder, table = immigrants
    reference = _ztp_mle(table["capture"].to_numpy(float))
    values = []
    for name in ("people.csv", "people.parquet"):
        path = folder / f"mle_{name.replace('.', '_')}.toml"
        path.write_text(SPEC.format(file=f"data/{name}"))
        run = CliRunner().invoke(cli, ["fit", str(path), "--mle", "--format", "json"])
        assert run.exit_code == 0, run.output
        out = json.loads(run.stdout)
        assert out["status"] == "ok" and out["converged"] is True
        assert out["data"].startswith("file ") and out["data"].endswith(name)
        assert (
            abs(out["n_hat"] - reference) < 1e-8 * reference
        )  # not rounded: 12+ significant digits
        assert set(out["parameters"]) == {"beta_intercept"}
        values.append(out["n_hat"])
        text = CliRunner().invoke(cli, ["fit", str(path), "--mle"])
        assert text.exit_code == 0 and f"N-hat          {out['n_hat']!r}" in text.output
        assert f"beta_intercept {out['parameters']['beta_intercept']!r}" in text.output
    assert values[0] == values[1]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"capture,gender\n", "no data rows"),
        (b"1,0,1\n0,1,1\n", "looks like data, not a header"),
        (b"capture,capture\n1,2\n", "'capture' appear more than once"),
        (b"capture,gender\n1,male\n2,\xc6\xe5\xed\xf9\xe8\xed\xe0\n", "line 3: byte 0xc6 is not valid UTF-8"),
        (b"\xff\xfec\x00a\x00p\x00", "UTF-16"),
        (b'capture,gender\n1,"male\n', "not a well-formed CSV file"),
        (b"capture,gender,\n1,male,3\n", "column 3 has values but no name"),
    ],
)  # fmt: skip
def test_unreadable_csv_names_the_file(tmp_path, content, says):
    path = tmp_path / "mine.csv"
    path.write_bytes(content)
    with pytest.raises(EstimInputError) as err:
        read_table(path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value)


def test_a_trailing_separator_on_every_row_does_not_shift_the_columns(tmp_path):
    # pandas took the first field for an index: times got the region's values, chao N-hat 11.1 for 22.25
    path = tmp_path / "people.csv"
    path.write_text(
        "times,region\n" + "".join(f"{t},{r},\n" for t, r in [(1, 2)] * 7 + [(2, 1)] * 2 + [(3, 1)])
    )
    table = read_table(path)
    assert list(table.columns) == ["times", "region"]
    assert (
        table["times"].tolist() == [1] * 7 + [2, 2, 3]
        and table["region"].tolist() == [2] * 7 + [1] * 3
    )
    out = fit_data_mle(tmp_path, path.name, "chao")
    assert abs(out - (10 + 7**2 / (2 * 2))) < 1e-9  # Chao: n + f1²/(2 f2) = 22.25


def test_a_row_with_an_extra_value_is_refused(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("times,region\n1,2,3\n1,3\n")
    with pytest.raises(EstimInputError, match="not a well-formed CSV file"):
        read_table(path)


def test_numeric_column_names_the_spec_declares_are_a_header(tmp_path):
    path = tmp_path / "years.csv"
    path.write_text("2019,2020,2021\n1,0,1\n0,1,1\n1,1,0\n1,1,1\n")
    with pytest.raises(EstimInputError, match="looks like data, not a header"):
        read_table(path)
    table = read_table(path, {"2019", "2020", "2021"})
    assert list(table.columns) == ["2019", "2020", "2021"] and len(table) == 4
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'family = "M0"\nseed = 1\n[data]\nfile = "{path.name}"\nlayout = "individuals"\n'
        'occasions = ["2019", "2020", "2021"]\n'
    )
    assert load_data(read_spec(spec))["history_count"].sum() == 4


def fit_data_mle(folder, name: str, family: str) -> float:
    spec = folder / "s.toml"
    spec.write_text(
        f'family = "{family}"\nseed = 1\n[data]\nfile = "{name}"\nlayout = "individuals"\n'
        'times_seen = "times"\n'
    )
    out = json.loads(
        CliRunner().invoke(cli, ["fit", str(spec), "--mle", "--format", "json"]).output
    )
    return out["n_hat"]


def test_csv_reading_keeps_codes_rows_and_separators(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid;history;k;weight;note\n007;0101;1;2.5;NA\n010;1100;2;3;\n\n011;0011;3;1;ok\n\n\n"
    )
    table = read_table(path)
    assert list(table.columns) == ["id", "history", "k", "weight", "note"]  # BOM gone, ';' found
    # a blank line within the body stays a row (of missing values): row r is line r + 1
    assert len(table) == 4 and table.iloc[2].isna().all()
    assert table["id"].iloc[0] == "007" and table["history"].iloc[0] == "0101"  # leading zeros kept
    assert table["k"].iloc[[0, 1, 3]].tolist() == [1, 2, 3] and table["weight"].dtype.kind == "f"
    assert table["note"].isna().iloc[:3].all() and table["note"].iloc[3] == "ok"


def test_missing_bad_suffix_and_corrupt_parquet(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(file="absent.csv"))
    with pytest.raises(
        EstimInputError, match=r"s\.toml: \[data\] file: .*absent\.csv: no such file"
    ):
        load_data(read_spec(spec))
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(
        EstimInputError, match=r"x\.xlsx: estim reads CSV .* not \.xlsx .*CSV UTF-8"
    ):
        read_table(tmp_path / "x.xlsx")
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EstimInputError, match=r"x\.parquet: not a readable Parquet file"):
        read_table(tmp_path / "x.parquet")


def test_the_family_error_is_prefixed_with_the_file(tmp_path):
    table = pd.DataFrame({"capture": [1, 2, 0, 1], "sex": ["f", "m", "f", "m"]})
    table.to_csv(tmp_path / "people.csv", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(file="people.csv"))
    with pytest.raises(EstimInputError) as err:
        load_data(read_spec(spec))
    message = str(err.value)
    # the family names column and row (k = 0 on data row 3); the run layer names the file
    assert message.startswith(f"{tmp_path / 'people.csv'}: ") and "'capture'" in message
    run = CliRunner().invoke(cli, ["fit", str(spec), "--mle"])
    assert run.exit_code == 2 and "people.csv: " in run.output


def test_exactly_one_source(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SPEC.format(file="x.csv") + 'benchmark = "netherlands_immigrants"\n')
    with pytest.raises(
        EstimInputError, match=r"\[data\]: give exactly one of .*got benchmark, file"
    ):
        read_spec(path)


# --------------------------------------------------------------------------------------------------------------
# the Python API


def test_table_data_from_a_dataframe_matches_the_file_and_the_benchmark(immigrants):
    folder, table = immigrants
    fields = {"layout": "individuals", "times_seen": "capture", "covariates": ("gender",)}
    from_frame = table_data(table, "ztpoisson", **fields)
    from_file = table_data(folder / "data" / "people.csv", "ztpoisson", **fields)
    xr.testing.assert_identical(from_frame, from_file)
    assert from_frame["frequency"].sum("pattern").values.tolist() == PUBLISHED_FK
    assert int(from_frame["frequency"].sel(pattern=from_frame["gender"] == "female").sum()) == int(
        (table["gender"] == "female").sum()
    )
    with pytest.raises(EstimInputError, match=r"table_data\('ztpoisson'\): \[data\] layout"):
        table_data(table, "ztpoisson", times_seen="capture")
    with pytest.raises(EstimInputError, match="unknown family"):
        table_data(table, "no_such_family", layout="individuals")


def test_a_dataframe_fit_records_that_it_cannot_be_reread(canned, tmp_path, monkeypatch):
    table = load_benchmark("netherlands_immigrants")
    seen = []

    def fake_sample(spec, family, data, **_):
        seen.append(data)
        return canned.copy()

    monkeypatch.setattr(fit_module, "sample", fake_sample)
    result = fit_table(
        table,
        "ztpoisson",
        seed=1,
        fields={"layout": "individuals", "times_seen": "capture"},
        out=tmp_path / "t.nc",
    )
    assert seen[0]["frequency"].sum("pattern").values.tolist() == PUBLISHED_FK
    tree = store.load(result.path)
    assert tree.attrs["data_source"].startswith("an in-memory table of 1,880 rows (capture, gender")
    assert "cannot be re-read" in tree.attrs["data_source"]
    with pytest.raises(EstimInputError, match="given from Python, which a fit does not keep"):
        fit_data(tree, result.path)
    # the same table from a file is re-read, and the fit records the file's bytes
    table.to_csv(tmp_path / "people.csv", index=False)
    result = fit_table(
        tmp_path / "people.csv",
        "ztpoisson",
        seed=1,
        fields={"layout": "individuals", "times_seen": "capture"},
        out=tmp_path / "f.nc",
    )
    tree = store.load(result.path)
    xr.testing.assert_identical(fit_data(tree, result.path), seen[0])
    assert tree.attrs["data_file"] == str((tmp_path / "people.csv").resolve())
    assert len(tree.attrs["data_file_sha256"]) == 64


def test_a_fit_saved_elsewhere_rereads_its_relative_file(canned, immigrants, tmp_path, monkeypatch):
    folder, _ = immigrants
    spec_path = folder / "elsewhere.toml"
    spec_path.write_text(SPEC.format(file="data/people.csv"))
    monkeypatch.setattr(fit_module, "sample", lambda *a, **k: canned.copy())
    result = fit(read_spec(spec_path), out=tmp_path / "elsewhere.nc")  # not beside the spec
    tree = store.load(result.path)
    assert tree.attrs["data_source"] == f"file {folder / 'data' / 'people.csv'}"
    assert fit_data(tree, result.path)["frequency"].sum("pattern").values.tolist() == PUBLISHED_FK


def test_summary_refuses_a_fit_whose_data_file_changed_since(
    canned, immigrants, tmp_path, monkeypatch
):
    # `estim summary` printed the estimates of a fit whose CSV held other data since, without a word
    _, table = immigrants
    csv = tmp_path / "people.csv"
    table.to_csv(csv, index=False)
    spec_path = tmp_path / "people.toml"
    spec_path.write_text(SPEC.format(file="people.csv"))
    monkeypatch.setattr(fit_module, "sample", lambda *a, **k: canned.copy())
    fit_path = str(fit(read_spec(spec_path)).path)
    run = CliRunner().invoke(cli, ["summary", fit_path])
    assert run.exit_code == 0 and "N: " in run.output, run.output
    # the same people in another order: other bytes, the same data
    table.sample(frac=1, random_state=1).to_csv(csv, index=False)
    run = CliRunner().invoke(cli, ["summary", fit_path])
    assert run.exit_code == 0 and "N: " in run.output, run.output
    # one person seen once more: other data
    changed = table.copy()
    changed.loc[0, "capture"] += 1
    changed.to_csv(csv, index=False)
    with pytest.raises(DataChanged) as refused:  # from Python: its own class, said once
        fit_data_file(store.load(fit_path), fit_path)
    assert str(refused.value).count("changed since the fit") == 1
    for fmt in ("text", "json"):
        run = CliRunner().invoke(cli, ["summary", fit_path, "--format", fmt])
        assert run.exit_code == 2, run.output
        assert f"{fit_path}: the data its spec names (file " in run.output
        assert "people.csv) changed since the fit" in run.output
        assert "N: " not in run.output and '"N"' not in run.output
    # the predictive checks and LOO of that fit are refused the same way
    for args in (["check", fit_path], ["compare", fit_path, fit_path]):
        run = CliRunner().invoke(cli, args)
        assert run.exit_code == 2 and "people.csv) changed since the fit" in run.output, run.output
    # no longer readable as it was
    csv.write_text("capture,gender\n1,male,3\n")
    with pytest.raises(DataChanged, match="changed since the fit and cannot be read as it was"):
        fit_data_file(store.load(fit_path), fit_path)
    run = CliRunner().invoke(cli, ["summary", fit_path])
    assert (
        run.exit_code == 2 and "people.csv changed since the fit and cannot be read" in run.output
    )
    # gone: the fit is summarised, with a warning that its data cannot be checked
    csv.unlink()
    run = CliRunner().invoke(cli, ["summary", fit_path])
    assert run.exit_code == 0 and "N: " in run.output, run.output
    assert "warning:" in run.output and "people.csv is not there" in run.output


# --------------------------------------------------------------------------------------------------------------
# ML that did not converge


def test_unconverged_ml_exits_3_and_summary_warns(tmp_path):
    def unconverged(data, **_):
        return MLEResult(7000.123456789, 10.0, (6980.0, 7020.0), {"lambda": 0.3}, -1.0, False,
                         message="gradient 9e-6")  # fmt: skip

    family = dataclasses.replace(FAMILY, name="test_ztp_unconverged", mle=unconverged)
    path = tmp_path / "u.toml"
    path.write_text(
        'family = "test_ztp_unconverged"\nseed = 1\n[data]\nbenchmark = "netherlands_immigrants"\n'
        'count = "capture"\n'
    )
    with registered(family):
        run = CliRunner().invoke(cli, ["fit", str(path), "--mle", "--format", "json"])
        assert run.exit_code == 3 and "did not converge" in run.output
        out = json.loads(run.stdout)
        assert out["status"] == "not converged" and out["n_hat"] is None
        assert out["n_hat_at_stop"] == 7000.123456789
        text = CliRunner().invoke(cli, ["fit", str(path), "--mle"])
        assert text.exit_code == 3 and "7000" not in text.output
    from estim.report.summary import format_summary

    summary = {
        "model": "u",
        "family": "x",
        "gate": {"passed": True, "failed": [], "checks": []},
        "interval": {"prob": 0.9},
        "parameters": {},
        "mle": {"n_hat": 7000.1, "se": 1.0, "ci95": [1, 2], "converged": False, "message": "m"},
    }
    text = format_summary(summary)
    assert "did not converge" in text and "7,000" not in text


# --------------------------------------------------------------------------------------------------------------
# retries after a failed gate


def _verdict(passed: bool, check: str = "ess_bulk") -> GateVerdict:
    value = {"ess_bulk": 100.0 if not passed else 900.0, "divergences": 0.0 if passed else 3.0}[
        check
    ]
    threshold = {"ess_bulk": 400.0, "divergences": 0.0}[check]
    return GateVerdict(passed, (Check(check, value, threshold, passed),))


@pytest.fixture(scope="module")
def canned(compact_fits):
    """The draws of a real, small fit, which the tests of retries return without sampling."""
    return store.load(compact_fits[0].path)


def test_a_failed_gate_is_retried_and_every_attempt_recorded(canned, tmp_path, monkeypatch):
    from fit_fixtures import write_spec

    # divergences, then a too small ESS, then a pass
    settings = []
    verdicts = itertools.chain(
        [_verdict(False, "divergences"), _verdict(False)], itertools.repeat(_verdict(True))
    )

    def fake_sample(spec, family, data, **_):
        settings.append(spec.sampler)
        return canned.copy()

    monkeypatch.setattr(fit_module, "sample", fake_sample)
    monkeypatch.setattr(fit_module, "gate_check", lambda idata: next(verdicts))
    with registered_test_family():
        path = write_spec(tmp_path, "retried", seed=1, draws=1000, tune=500, chains=4)
        run = CliRunner().invoke(cli, ["fit", str(path)])
    assert run.exit_code == 0, run.output
    # the divergences shrink the steps; the small ESS only lengthens the chains (the target stays 0.95)
    assert [(s.target_accept, s.draws, s.tune) for s in settings] == [
        (0.9, 1000, 500), (0.95, 2000, 1000), (0.95, 4000, 2000)
    ]  # fmt: skip
    assert "(3 attempts)" in run.output
    assert (
        "attempt 2: target_accept 0.95, 2,000 draws, 1,000 warm-up, 4 chains: gate FAILED ess_bulk"
        in run.output
    )
    attempts = json.loads(store.load(tmp_path / "retried.nc").attrs["attempts_json"])
    assert [a["passed"] for a in attempts] == [False, False, True]
    assert [a["target_accept"] for a in attempts] == [0.9, 0.95, 0.95]
    assert all(a["seconds"] >= 0 for a in attempts) and attempts[0]["failed"] == ["divergences"]
    with registered_test_family():  # reused from the file: JSON on stdout, the attempts in it
        run = CliRunner().invoke(cli, ["fit", str(path), "--format", "json"])
    assert run.exit_code == 0
    out = json.loads(run.stdout)
    assert [a["attempt"] for a in out["attempts"]] == [1, 2, 3] and out["N"]


def test_retries_can_be_turned_off_and_a_last_failure_is_reported(canned, tmp_path, monkeypatch):
    from fit_fixtures import write_spec

    calls = []
    monkeypatch.setattr(
        fit_module, "sample", lambda spec, *a, **k: calls.append(1) or canned.copy()
    )
    monkeypatch.setattr(fit_module, "gate_check", lambda idata: _verdict(False, "divergences"))
    with registered_test_family():
        path = write_spec(tmp_path, "off", seed=1)
        path.write_text(path.read_text() + "retries = 0\n")
        run = CliRunner().invoke(cli, ["fit", str(path)])
        assert run.exit_code == 3 and len(calls) == 1 and "attempt" not in run.output
        calls.clear()
        path = write_spec(tmp_path, "all_fail", seed=1)
        run = CliRunner().invoke(cli, ["fit", str(path)])
    assert run.exit_code == 3 and len(calls) == 3
    assert "attempt 3: target_accept 0.99" in run.output and "diagnostics gate FAILED" in run.output
    assert store.load(tmp_path / "all_fail.nc").attrs["gate_passed"] == "false"


def test_retry_settings():
    from estim.run.spec import SamplerSpec

    s = SamplerSpec(draws=500, tune=300, target_accept=0.97)
    assert retry_settings(s, 1) == dataclasses.replace(s, target_accept=0.99, draws=1000, tune=600)
    assert retry_settings(s, 2).target_accept == 0.99 and retry_settings(s, 2).draws == 2000
    # chains that only mixed too slowly run longer at the same step size; a divergence still shrinks the steps
    slow = retry_settings(s, 1, ("ess_bulk", "r_hat"))
    assert slow == dataclasses.replace(s, draws=1000, tune=600)
    assert retry_settings(s, 2, ("ess_tail",)) == dataclasses.replace(s, draws=2000, tune=1200)
    # … at the last attempt's target (never lower than a retry for divergences made it)
    raised = retry_settings(s, 1, ("divergences",))
    assert retry_settings(s, 2, ("ess_bulk",), raised).target_accept == 0.99
    assert retry_settings(s, 1, ("ess_bulk", "divergences")).target_accept == 0.99
    assert retry_settings(s, 1, ("e_bfmi",)).target_accept == 0.99


# --------------------------------------------------------------------------------------------------------------
# compact fits


def _many_patterns(rows: int, seed: int) -> pd.DataFrame:
    """People seen k ≥ 1 times under a ZTP with a continuous and a categorical covariate: every row its own
    covariate pattern."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=4 * rows)
    region = rng.choice(["a", "b", "c"], size=4 * rows)
    k = rng.poisson(np.exp(-0.3 + 0.5 * x + 0.3 * (region == "b")))
    seen = k > 0
    return pd.DataFrame({"k": k[seen], "x": x[seen].round(5), "region": region[seen]}).iloc[:rows]


@pytest.fixture(scope="module")
def compact_fits(tmp_path_factory):
    """One spec fitted to a 1,000-row file whose every row is its own covariate pattern."""
    folder = tmp_path_factory.mktemp("compact")
    _many_patterns(1000, 3).to_csv(folder / "many.csv", index=False)
    small = fit_table(
        folder / "many.csv",
        "ztpoisson",
        seed=11,
        fields={"layout": "individuals", "times_seen": "k", "covariates": ["x", "region"]},
        sampler={"draws": 600, "tune": 400, "chains": 2, "prior_draws": 100, "retries": 0},
        name="small",
        out=folder / "small.nc",
    )
    return (small,)


def test_compact_fit_is_small_and_says_what_it_left_out(compact_fits):
    (small,) = compact_fits
    assert small.passed
    tree = store.load(small.path)
    assert "log_likelihood" not in tree.children and "log_likelihood_omitted" in tree.attrs
    pp = tree["posterior_predictive"]["frequency"]
    assert pp.dims == ("chain", "draw", "k") and pp.dtype == np.int32  # summed over the patterns
    assert pp.sizes["draw"] * pp.sizes["chain"] == 400  # one draw in 3: at most SUMMED_DRAWS
    assert tree.attrs["compact_posterior_predictive"].startswith("summed over pattern (998)")
    for group in tree.children:
        assert tree[group].to_dataset().nbytes <= compact.BUDGET_BYTES, group
    # in full, the log-likelihood and the posterior predictive draws alone: 1,200 draws × 998 × 9 cells
    cells = tree["observed_data"]["frequency"].size
    assert small.path.stat().st_size * 20 < 1200 * cells * (8 + 4)
    # the replicated people add up to the people observed, draw by draw
    assert (pp.sum("k") == int(tree["observed_data"]["frequency"].sum())).all()


def test_recomputed_log_likelihood_equals_pymcs(compact_fits, tmp_path):
    import pymc as pm

    (small,) = compact_fits
    tree = store.load(small.path)
    ll, n = compact.pointwise_log_likelihood(tree, small.path)
    # the reference: PyMC's own pointwise log-likelihood of the same model at the same draws
    model = _ztpoisson_model(fit_data(tree, small.path))
    reference = pm.compute_log_likelihood(
        xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset()}),
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )["frequency"]
    counts = tree["observed_data"]["frequency"].values.ravel()
    flat = reference.transpose("chain", "draw", ...).values.reshape(*ll.shape[:2], -1)
    np.testing.assert_allclose(ll, flat[..., counts > 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(n, counts[counts > 0])
    # LOO from the recomputed log-likelihood, left out person by person, as `estim compare` computes it
    import arviz as az

    from estim.report.summary import individual_log_likelihood

    loo = az.loo(individual_log_likelihood(tree, "frequency", small.path)[0])
    assert loo.elpd < ll.mean(axis=(0, 1)).sum()
    assert 2.0 < loo.p < 7.0  # the effective number of parameters: the model has 4
    # a copy of the fit is the same fit: compare refuses it rather than compare the model with itself
    copy = tmp_path / "again.nc"
    copy.write_bytes(small.path.read_bytes())
    run = CliRunner().invoke(cli, ["compare", str(small.path), str(copy)])
    assert run.exit_code == 2 and "are fits of the same spec to the same data" in run.output


def test_check_works_on_a_compact_fit(compact_fits):
    (small,) = compact_fits
    run = CliRunner().invoke(cli, ["check", str(small.path), "--format", "json"])
    assert run.exit_code == 0, run.output
    table = json.loads(run.stdout)["posterior_predictive"]["tables"]["f_k"]
    observed = _many_patterns(1000, 3)["k"].value_counts()
    assert {int(k): v["observed"] for k, v in table.items()} == {
        int(k): float(n) for k, n in observed.items()
    }


def test_compact_recompute_refuses_changed_data(compact_fits, tmp_path):
    (small,) = compact_fits
    tree = store.load(small.path)
    moved = tmp_path / "small.nc"
    moved.write_bytes(small.path.read_bytes())
    source = small.path.parent / "many.csv"
    original = source.read_bytes()
    try:
        source.write_bytes(original.replace(b"\n1,", b"\n2,", 1))
        with pytest.raises(EstimInputError, match="changed since the fit"):
            compact.pointwise_log_likelihood(tree, moved)
    finally:
        source.write_bytes(original)
    assert fit_data(tree, moved)["frequency"].sum() == 1000


def test_what_is_summed_and_thinned():
    # 12,000 patterns × 9 k over 4,000 draws: summed over the patterns, f_k kept, 500 draws replicated
    assert compact.summed_dims({"pattern": 12_000, "k": 9}, 4000) == ["pattern"]
    assert compact.kept_draws({"pattern": 12_000, "k": 9}, ["pattern"], 4000, 500) == 500
    # one cell per individual (a sparse history table): never summed away to nothing, thinned instead
    assert compact.summed_dims({"cell": 12_000}, 4000) == []
    assert compact.kept_draws({"cell": 12_000}, [], 4000, 4000) == 5_000_000 // (4 * 12_000)
    # small draws are left alone
    assert compact.summed_dims({"stratum": 1, "history": 63}, 4000) == []
    assert compact.kept_draws({"stratum": 1, "history": 63}, [], 4000, 4000) == 4000


@pytest.mark.slow
def test_a_12000_row_regression_fit_is_stored_in_20_mb(tmp_path):
    """The issue's case: 12,000 people, two continuous covariates and a categorical one, default sampler."""
    rng = np.random.default_rng(14)
    n = 30_000
    x1, age = rng.normal(0, 1, n), rng.normal(40, 12, n)
    region = rng.choice(["north", "south", "east", "west", "centre"], n)
    k = rng.poisson(np.exp(-0.6 + 0.5 * x1 - 0.02 * (age - 40) + 0.3 * (region == "south")))
    seen = k > 0
    table = pd.DataFrame({"times": k[seen], "log_distance": x1[seen], "age": age[seen],
                          "region": region[seen]}).iloc[:12_000]  # fmt: skip
    table.to_parquet(tmp_path / "big.parquet")
    result = fit_table(
        tmp_path / "big.parquet",
        "ztpoisson",
        seed=7,
        fields={
            "layout": "individuals",
            "times_seen": "times",
            "covariates": ["log_distance", "age", "region"],
        },  # fmt: skip
        out=tmp_path / "big.nc",
    )
    assert result.passed
    assert result.path.stat().st_size <= 20_000_000
    run = CliRunner().invoke(cli, ["check", str(result.path)])
    assert run.exit_code == 0, run.output


def test_a_fits_record_folder_resolves_beside_the_fit_and_refuses_changed_records(
    tmp_path, monkeypatch
):
    # `estim report` read a record folder relative to the current directory first: the same fit gave other
    # waits and section lengths from another folder of that name, and never checked the data hash
    from estim.paths import REPO_ROOT
    from estim.run.data import data_hash, fit_records_folder

    records = tmp_path / "my_records"
    shutil.copytree(REPO_ROOT / "data" / "synthetic", records)
    spec_path = tmp_path / "lists.toml"
    spec_path.write_text(
        'family = "lists_stepwise"\nseed = 1\n[data]\nrecords = "my_records"\nperiod = "2010"\n'
    )
    spec = read_spec(spec_path)
    tree = xr.DataTree()
    tree.attrs = {"spec_json": spec.canonical_json(), "data_hash": data_hash(load_data(spec))}
    fit_path = tmp_path / "lists.nc"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "my_records").mkdir(parents=True)
    monkeypatch.chdir(
        elsewhere
    )  # a folder of the same name under the current directory is not the fit's
    assert fit_records_folder(tree, fit_path) == records
    # changed records: refused, not read
    registers = records / "registers.csv"
    lines = registers.read_text().splitlines(keepends=True)
    in_2010 = [i for i, line in enumerate(lines) if ",2010-" in line]
    registers.write_text(
        "".join(line for i, line in enumerate(lines) if i not in set(in_2010[::2]))
    )
    (records / "SHA256SUMS").unlink(missing_ok=True)
    with pytest.raises(EstimInputError, match="changed since the fit"):
        fit_records_folder(tree, fit_path)


def test_summary_and_check_refuse_a_fit_whose_records_changed_and_pass_the_same_records(
    tmp_path, monkeypatch
):
    # `estim summary` and `estim check` of a fit of records showed the old fit's numbers after the records
    # were edited (only a data file was checked): the folder's bytes are now checked, and re-read when they
    # differ, so re-saved records pass and changed ones are refused, also for a fit saved away from its spec
    import estim.run.data as run_data
    from estim.io import folder_sha256
    from estim.paths import REPO_ROOT

    records = tmp_path / "specs" / "my_records"
    shutil.copytree(REPO_ROOT / "data" / "synthetic", records)
    spec_path = tmp_path / "specs" / "lists.toml"
    spec_path.write_text(
        'family = "lists_stepwise"\nseed = 1\n[data]\nrecords = "my_records"\nperiod = "2010"\n'
    )
    spec = read_spec(spec_path)
    attrs = fit_module._file_attrs(spec)
    assert attrs == {
        "records_folder": str(records.resolve()),
        "records_sha256": folder_sha256(records),
    }
    tree = xr.DataTree()
    tree.attrs = {"spec_json": spec.canonical_json(), "data_hash": data_hash_of(spec), **attrs}
    beside = tmp_path / "specs" / "lists.nc"
    away = tmp_path / "results" / "run1" / "lists.nc"  # estim fit --out results/run1/lists.nc
    reread = []
    monkeypatch.setattr(run_data, "fit_data", lambda *a: reread.append(1) or fit_data(*a))
    (records / ".~lock.registers.csv#").write_text("a spreadsheet's lock file")
    for fit_path in (beside, away):  # the same bytes: not re-read
        assert fit_data_file(tree, fit_path) == records
    assert reread == []
    # a fit made before records were hashed: re-read every time (it was not checked at all)
    old = xr.DataTree()
    old.attrs = {k: v for k, v in tree.attrs.items() if k not in attrs}
    assert fit_data_file(old, beside) == records and reread == [1]
    reread.clear()
    (records / "README.md").write_text("notes of my own\n")
    for fit_path in (beside, away):  # other bytes, the same records
        assert fit_data_file(tree, fit_path) == records
    assert reread == [1, 1]
    registers = records / "registers.csv"
    lines = registers.read_text().splitlines(keepends=True)
    registers.write_text("".join(line for line in lines if ",2010-03-" not in line))
    for fit_path in (beside, away):
        with pytest.raises(DataChanged, match="changed since the fit"):
            fit_data_file(tree, fit_path)
    with pytest.raises(DataChanged, match="changed since the fit"):
        fit_data_file(old, beside)
    registers.write_text(
        lines[0] + "not,a,record\n"
    )  # no longer valid records: said of the fit too
    with pytest.raises(
        DataChanged, match="record folder .* changed since the fit and cannot be read"
    ):
        fit_data_file(tree, beside)
    shutil.rmtree(records)
    with pytest.warns(UserWarning, match="record folder my_records is not there"):
        assert fit_data_file(tree, beside) is None


def data_hash_of(spec):
    from estim.run.data import data_hash

    return data_hash(load_data(spec))
