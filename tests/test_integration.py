"""End to end: simulate -> validate -> load -> statistics -> summary, through the CLI as a user runs it.

Also the privacy guarantee: no raw person key appears in any file the package writes from the records.
"""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from estim import simulate as sim
from estim.cli import cli


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("records")
    sim.write_simulation(sim.simulate(seed=7, config=sim.SimulationConfig(years=2)), out)
    return out


def _raw_keys(folder: Path) -> set[str]:
    keys = set(pd.read_csv(folder / "apprehensions.csv", dtype=str)["person_key"])
    if (folder / "registers.csv").exists():
        keys |= set(pd.read_csv(folder / "registers.csv", dtype=str)["person_key"])
    return keys


def test_simulated_records_validate(small_dataset):
    result = CliRunner().invoke(cli, ["validate", str(small_dataset)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok")


def test_no_raw_person_key_in_any_written_output(small_dataset, tmp_path):
    keys = _raw_keys(small_dataset)
    assert len(keys) > 100  # the scan below means something only if there are keys to find
    runner = CliRunner()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for period, occasion in [("year", "quarter"), ("quarter", "month"), ("month", "none")]:
        target = outputs / f"stats_{period}.nc"
        r = runner.invoke(
            cli,
            [
                "data",
                "statistics",
                str(small_dataset),
                "--out",
                str(target),
                "--period",
                period,
                "--occasion",
                occasion,
            ],
        )
        assert r.exit_code == 0, r.output
    for fmt in ("json", "csv", "table"):
        r = runner.invoke(cli, ["data", "summary", str(small_dataset), "--format", fmt])
        assert r.exit_code == 0, r.output
        # stdout and stderr together, as a user would capture them
        (outputs / f"summary.{fmt}").write_text(r.output)
    written = sorted(outputs.iterdir())
    assert len(written) == 6
    blobs = [p.read_bytes() for p in written]
    # the keys look like "PK0123456789": search raw bytes, so netCDF string tables are covered too
    leaked = {k for k in keys for b in blobs if k.encode() in b}
    assert not leaked, f"raw person keys written: {sorted(leaked)[:5]}"


def test_summary_json_has_a_row_per_section(small_dataset):
    r = CliRunner().invoke(cli, ["data", "summary", str(small_dataset), "--format", "json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout)
    assert set(table) == {
        "astrakhan", "volgograd", "saratov", "samara", "orenburg", "chelyabinsk",
        "kurgan", "tyumen", "omsk", "novosibirsk", "altai_krai", "altai_republic",
    }  # fmt: skip
    for section in ("omsk", "orenburg"):
        assert table[section]["distinct_people"] > 0
        assert 0 < table[section]["reapprehension_rate"] < 1
    # every number as the table holds it: pandas' to_json rounded to 10 decimals (47.1460278908)
    from estim.records.load import load_records
    from estim.statistics import data_summary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = data_summary(load_records(small_dataset))
    for section, row in table.items():
        for column, value in row.items():
            want = expected.loc[section, column]
            assert (value is None and pd.isna(want)) or value == want, (section, column)
            assert not isinstance(value, float) or column in (
                "reapprehension_rate",
                "mean_wait_minutes",
            )


def test_invalid_records_write_nothing_and_exit_2(small_dataset, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in small_dataset.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    lines = (bad / "checkpoint_records.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = "-5"  # crossings_citizens on line 4
    lines[3] = ",".join(fields)
    (bad / "checkpoint_records.csv").write_text("\n".join(lines) + "\n")
    target = tmp_path / "stats.nc"
    r = CliRunner().invoke(cli, ["data", "statistics", str(bad), "--out", str(target)])
    assert r.exit_code == 2
    assert "checkpoint_records.csv:4" in r.output and "crossings_citizens" in r.output
    assert "Traceback" not in r.output
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stats")]


def test_usage_error_exits_2():
    r = CliRunner().invoke(cli, ["data", "statistics", "--period", "decade", "--out", "x.nc"])
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "command",
    [
        ["data", "statistics", "HERE"],  # wrote netCDF under the .csv name
        ["fit", "HERE/spec.toml"],  # refused before the spec is read
        ["forecast", "HERE/fit.nc"],
    ],
)
@pytest.mark.parametrize(("name", "said"), [("st.csv", "not '.csv'"), ("st", "has no suffix")])
def test_a_netcdf_out_file_not_named_nc_is_refused_before_any_work(tmp_path, command, name, said):
    out = tmp_path / name
    args = [a.replace("HERE", str(tmp_path)) for a in command]
    r = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "'--out'" in r.output and "written as netCDF, so its name must end in .nc" in r.output
    assert said in r.output, r.output
    assert not out.exists()
