"""`estim simulate` refuses bad input clearly: effect sizes outside their domain, a non-empty --out folder,
--years outside 1..MAX_YEARS."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from estim.cli.simulate import check_effect, check_out_folder, effect_range, simulation_files
from estim.errors import EstimInputError
from estim.measures.spec import known_measures, read_measure
from estim.paths import REPO_ROOT
from estim.simulate.config import MAX_YEARS, SimulationConfig


def _cli():
    from estim.cli import cli

    return cli


def _run(args):
    return CliRunner().invoke(_cli(), ["simulate", "--quiet", *args])


# ----------------------------------------------------------------------------------------------------------
# effect sizes

EFFECTS = [(m, e) for m in known_measures() for e in read_measure(m).effects]

# the shipped effects' domains: shares and reductions (Beta priors) in [0, 1], multipliers (LogNormal) > 0
EXPECTED = {
    "permits.take_up": (0.0, 1.0, True),
    "permits.guard_uplift": (0.0, math.inf, False),
    "permits.informant_uplift": (0.0, math.inf, False),
    "faster_checks.wait_reduction": (0.0, 1.0, True),
    "coordination.flow": (0.0, math.inf, False),
}


def test_every_shipped_effect_has_its_expected_domain():
    assert {f"{m}.{e.name}" for m, e in EFFECTS} == set(EXPECTED)
    for m, e in EFFECTS:
        assert effect_range(e) == EXPECTED[f"{m}.{e.name}"]


@pytest.mark.parametrize(("measure", "effect"), EFFECTS, ids=lambda x: getattr(x, "name", x))
def test_each_effect_accepts_its_domain_and_refuses_values_outside_it(measure, effect):
    low, high, closed = effect_range(effect)
    median = float(effect.quantiles([0.5])[0])
    inside = [median, low + 1e-9]
    outside = [low - 0.5, -3.0, math.nan, math.inf, -math.inf]
    if closed:
        inside += [low, high]
    else:
        outside.append(low)
    if math.isfinite(high):
        inside.append(high - 1e-9)
        outside += [high + 0.5, 3.0]
    else:
        inside.append(1e6)
    for value in inside:
        check_effect(measure, effect, value)
        assert float(effect.multiplier_of(value)) >= 0
    for value in outside:
        with pytest.raises(EstimInputError) as info:
            check_effect(measure, effect, value)
        message = str(info.value)
        assert f"{measure}.{effect.name}" in message and f"={value:g}" in message, message
        assert f"{low:g}, {high:g}" in message, message


@pytest.mark.parametrize(
    ("measure", "effect", "message"),
    [
        ("permits", "take_up=-0.5", "permits.take_up=-0.5: outside its range [0, 1]"),
        ("permits", "take_up=1.5", "permits.take_up=1.5: outside its range [0, 1]"),
        (
            "faster_checks",
            "wait_reduction=-3",
            "faster_checks.wait_reduction=-3: outside its range [0, 1]",
        ),
        ("permits", "guard_uplift=0", "permits.guard_uplift=0: outside its range (0, inf)"),
        ("coordination", "flow=-1", "coordination.flow=-1: outside its range (0, inf)"),
    ],
)
def test_the_cli_refuses_an_effect_outside_its_domain(tmp_path, measure, effect, message):
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--measure", measure, "--effect", effect])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert not out.exists()


@pytest.mark.parametrize(("measure", "effect"), EFFECTS, ids=lambda x: getattr(x, "name", x))
def test_the_python_api_refuses_the_effect_sizes_the_cli_refuses(measure, effect):
    # MeasureSpec.applied refused only a negative multiplier: take_up = -0.5 (journeys x 1.5) or
    # guard_uplift = 0 were accepted there and refused by --effect
    spec = read_measure(measure)
    low, high, closed = effect_range(effect)
    outside = [low - 0.5, math.nan, math.inf] + ([] if closed else [low])
    if math.isfinite(high):
        outside.append(high + 0.5)  # e.g. a reduction of 150 %
    for value in outside:
        with pytest.raises(EstimInputError) as info:
            spec.applied(values={effect.name: value})
        message = str(info.value)
        assert message.startswith(
            f"measure {measure}, effect {effect.name} = {value:g}: outside"
        ), message
        assert f"{low:g}, {high:g}" in message, message
    edge = low if closed else low + 1e-9
    applied = spec.applied(values={effect.name: edge})
    m = dict((e.target, e.multiplier) for e in applied.effects)[effect.target]
    assert m == pytest.approx(float(effect.multiplier_of(edge))) and m >= 0


# ----------------------------------------------------------------------------------------------------------
# --out


def test_an_empty_or_missing_out_folder_is_fine(tmp_path):
    check_out_folder(tmp_path / "missing", force=False)
    (tmp_path / "empty").mkdir()
    check_out_folder(tmp_path / "empty", force=False)


@pytest.mark.parametrize(
    "names",
    [
        ["keep.txt"],
        ["SHA256SUMS", "truth.nc", "apprehensions.parquet"],  # Parquet records beside a simulation
        ["apprehensions.parquet", "registers.parquet"],
        ["truth.nc", "README.md"],  # no SHA256SUMS: not known to be a simulation's
        [".hidden"],
    ],
)
def test_a_folder_with_other_files_is_refused_unless_forced(tmp_path, names):
    for n in names:
        (tmp_path / n).write_text("x")
    with pytest.raises(EstimInputError) as info:
        check_out_folder(tmp_path, force=False)
    message = str(info.value)
    assert str(tmp_path) in message and "--force" in message, message
    assert (
        any(n in message for n in names if n not in simulation_files()) or "SHA256SUMS" in message
    )
    check_out_folder(tmp_path, force=True)


def test_a_subfolder_is_refused(tmp_path):
    (tmp_path / "SHA256SUMS").write_text("x")
    (tmp_path / "old").mkdir()
    with pytest.raises(EstimInputError, match="old/"):
        check_out_folder(tmp_path, force=False)


def _sums(folder, names) -> None:
    """A SHA256SUMS as `write_simulation` writes it ("HASH  NAME" lines)."""
    (folder / "SHA256SUMS").write_text("".join(f"{'0' * 64}  {n}\n" for n in sorted(names)))


def test_a_previous_simulations_files_may_be_overwritten(tmp_path):
    for n in simulation_files():
        (tmp_path / n).write_text("x")
    _sums(tmp_path, simulation_files() - {"SHA256SUMS"})
    check_out_folder(tmp_path, force=False)
    (tmp_path / "registers.csv").unlink()  # a subset with its SHA256SUMS is still a simulation's
    check_out_folder(tmp_path, force=False)


@pytest.mark.parametrize(
    "listed",
    [
        ["apprehensions.csv", "sections.csv"],  # real records shipped with their own checksums
        ["apprehensions.csv", "truth.nc", "my_notes.txt"],  # lists a file no simulation writes
        [],
    ],
)
def test_records_with_their_own_sha256sums_are_not_taken_for_a_simulation(tmp_path, listed):
    # a folder of real records with a SHA256SUMS beside them was overwritten by synthetic data, exit 0
    for n in ("apprehensions.csv", "sections.csv"):
        (tmp_path / n).write_text("real")
    _sums(tmp_path, listed)
    with pytest.raises(EstimInputError, match="no SHA256SUMS of a previous simulation") as info:
        check_out_folder(tmp_path, force=False)
    assert str(tmp_path) in str(info.value) and "--force" in str(info.value)
    check_out_folder(tmp_path, force=True)


def test_the_cli_keeps_real_records_with_checksums(tmp_path):
    out = tmp_path / "records"
    out.mkdir()
    (out / "apprehensions.csv").write_text("real")
    _sums(out, ["apprehensions.csv"])
    r = _run(["--years", "1", "--out", str(out)])
    assert r.exit_code == 2 and "no SHA256SUMS of a previous simulation" in r.output, r.output
    assert (out / "apprehensions.csv").read_text() == "real"


def test_the_cli_refuses_a_non_empty_out_and_writes_with_force_then_over_its_own_files(tmp_path):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = _run(["--years", "1", "--out", str(out)])
    assert r.exit_code == 2 and str(out) in r.output and "keep.txt" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]

    r = _run(["--years", "1", "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert (out / "keep.txt").read_text() == "mine"
    assert {p.name for p in out.iterdir()} == simulation_files() | {"keep.txt"}

    (out / "keep.txt").unlink()  # now only a simulation's files: a rerun overwrites them
    r = _run(["--years", "1", "--out", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == simulation_files()


# ----------------------------------------------------------------------------------------------------------
# --years


@pytest.mark.parametrize("years", ["0", "-1", str(MAX_YEARS + 1), "40", "80", "200", "100000"])
def test_years_outside_the_range_are_refused_naming_only_the_option(tmp_path, years):
    out = tmp_path / "sim"
    r = _run(["--years", years, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "--years" in r.output and years in r.output and f"1<=x<={MAX_YEARS}" in r.output
    assert "SimulationConfig" not in r.output and "--retry" not in r.output, r.output
    assert not out.exists()


def test_the_config_refuses_years_outside_the_range():
    SimulationConfig(years=MAX_YEARS)
    for years in (0, MAX_YEARS + 1, 200):
        with pytest.raises(ValueError, match=f"years: {years} is not in 1–{MAX_YEARS}"):
            SimulationConfig(years=years)


@pytest.mark.parametrize("sd", ["1.5", "5", "10", "50", "1e6"])
def test_a_frailty_too_large_for_its_discretised_law_is_refused_naming_the_option(tmp_path, sd):
    # σ = 5, 10, 50 were simulated, exit 0: E Z = 0.068 (a third of the apprehensions), then none at all
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--frailty", sd])
    assert r.exit_code == 2, r.output
    assert f"--frailty {float(sd):g}: is too large" in r.output and "E Z = " in r.output, r.output
    assert "Traceback" not in r.output and not out.exists()


def test_a_frailty_too_large_for_the_hazards_is_refused_naming_the_option(tmp_path):
    # σ = 1.2 keeps the law's E Z = 1, but its frailest node's journeys would make ~10^6 apprehensions each:
    # refused as "SimulationConfig: …", which named no option
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--seed", "1", "--out", str(out), "--frailty", "1.2"])
    assert r.exit_code == 2, r.output
    assert "--frailty 1.2: the detection hazards are so high for the frailest people" in r.output
    assert "give a smaller one" in r.output and not out.exists()


def test_a_negative_seed_is_refused_naming_the_option(tmp_path):
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--seed", "-1"])
    assert r.exit_code == 2 and "--seed" in r.output and "-1" in r.output, r.output
    assert not out.exists()


def test_retry_and_frailty_errors_name_their_own_option(tmp_path):
    r = _run(["--years", "1", "--out", str(tmp_path / "a"), "--retry", "1.5"])
    assert r.exit_code == 2 and "--retry 1.5" in r.output and "--frailty" not in r.output, r.output
    r = _run(["--years", "1", "--out", str(tmp_path / "b"), "--frailty", "-1"])
    assert r.exit_code == 2 and "--frailty -1" in r.output and "--retry" not in r.output, r.output


# ----------------------------------------------------------------------------------------------------------
# --measure-start


@pytest.mark.parametrize("start", ["1990-01", "2005-12", "2007-01", "2031-01"])
def test_a_measure_start_outside_the_simulated_period_is_refused(tmp_path, start):
    # 1990-01 was simulated without a word, as if the measure had been in force from 2006-01 on
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--measure", "permits", "--measure-start", start])
    assert r.exit_code == 2, r.output
    assert f"--measure-start {start}: outside the simulated period 2006-01 to 2006-12" in r.output
    assert "--years" in r.output and "Traceback" not in r.output, r.output
    assert not out.exists()


def test_a_measure_specs_own_start_before_the_period_is_refused(tmp_path):
    spec = tmp_path / "early.toml"
    text = (REPO_ROOT / "models" / "measures" / "permits.toml").read_text()
    spec.write_text(text.replace('start = "2018-01"', 'start = "1990-01"', 1))
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--measure", str(spec)])
    assert r.exit_code == 2, r.output
    assert "its spec's start 1990-01 is before the simulated period 2006-01 to 2006-12" in r.output
    assert not out.exists()


def test_a_measure_start_in_the_last_simulated_month_is_simulated(tmp_path):
    out = tmp_path / "sim"
    r = _run(
        ["--years", "1", "--out", str(out), "--measure", "permits", "--measure-start", "2006-12"]
    )
    assert r.exit_code == 0, r.output
    assert "measure permits from 2006-12" in r.output and (out / "truth.nc").is_file()


@pytest.mark.parametrize(
    ("start", "lag", "where"),
    [
        ("1990-01", 0, "starts 1990-01, before"),
        ("2005-12", 0, "starts 2005-12, before"),
        ("2007-01", 0, "starts 2007-01 and acts from 2007-01 (lag 0 months), after"),
        ("2031-01", 0, "starts 2031-01 and acts from 2031-01 (lag 0 months), after"),
        ("2006-10", 3, "starts 2006-10 and acts from 2007-01 (lag 3 months), after"),
    ],
)
def test_the_config_refuses_a_measure_outside_the_simulated_period(start, lag, where):
    # through the Python API these were simulated without a word: 1990-01 at full strength from 2006-01 on,
    # 2007-01 and 2031-01 as the baseline itself (measure_strength 0 in every month)
    from estim.simulate.measures import AppliedMeasure, MeasureEffect

    m = AppliedMeasure("cut", start, (MeasureEffect("journeys", 0.5),), lag_months=lag)
    with pytest.raises(ValueError) as info:
        SimulationConfig(years=1, measures=(m,))
    message = str(info.value)
    assert message.startswith("SimulationConfig.measures: measure cut "), message
    assert f"{where} the simulated period 2006-01 to 2006-12 (1 year from 2006-01)" in message, (
        message
    )


def test_the_config_accepts_a_measure_acting_from_the_first_to_the_last_month():
    from estim.simulate.measures import AppliedMeasure, MeasureEffect

    for start, lag in (("2006-01", 0), ("2006-12", 0), ("2006-06", 6)):
        m = AppliedMeasure("cut", start, (MeasureEffect("journeys", 0.5),), lag_months=lag)
        assert SimulationConfig(years=1, measures=(m,)).measures == (m,)


def test_a_measure_acting_only_after_the_period_is_refused_not_warned_of(tmp_path):
    # the spec's own start 2018-01 with --years 1: once a warning and a simulation of the baseline, exit 0
    out = tmp_path / "sim"
    r = _run(["--years", "1", "--out", str(out), "--measure", "permits"])
    assert r.exit_code == 2, r.output
    assert (
        "measure permits: starts 2018-01 and acts from 2018-01 (lag 0 months), after the simulated "
        in r.output
    )
    assert "period 2006-01 to 2006-12; give --measure-start within it, or more --years" in r.output
    assert not out.exists()
    r = _run(
        [
            "--years",
            "1",
            "--out",
            str(out),
            "--measure",
            "coordination",
            "--measure-start",
            "2006-09",
        ]
    )  # coordination's lag of 6 months: it would act from 2007-03
    assert r.exit_code == 2 and "acts from 2007-03 (lag 6 months)" in r.output, r.output
    assert "give an earlier --measure-start, or more --years" in r.output and not out.exists()


# ----------------------------------------------------------------------------------------------------------
# --displacement and --effect


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "inf"])
def test_a_displacement_outside_0_1_is_refused_naming_the_option(tmp_path, value):
    out = tmp_path / "sim"
    args = [
        "--years",
        "1",
        "--out",
        str(out),
        "--measure",
        "coordination",
        "--measure-start",
        "2006-01",
    ]
    r = _run([*args, "--displacement", value])
    assert r.exit_code == 2, r.output
    assert f"--displacement {value}: not a share in [0, 1]" in r.output, r.output
    assert not out.exists()


@pytest.mark.parametrize("second", ["take_up=0.3", "permits.take_up=0.3"])
def test_an_effect_given_twice_is_refused(tmp_path, second):
    # the last value was simulated without a word (take_up 0.3, journeys × 0.7), exit 0
    out = tmp_path / "sim"
    args = ["--years", "1", "--out", str(out), "--measure", "permits", "--measure-start", "2006-01"]
    r = _run([*args, "--effect", "take_up=0.5", "--effect", second])
    assert r.exit_code == 2, r.output
    assert "--effect permits.take_up: given twice (0.5 and 0.3)" in r.output, r.output
    assert not out.exists()


@pytest.mark.parametrize("effect", ["flow=0.8", "coordination.flow=0.8"])
def test_an_effect_of_a_measure_not_applied_names_that_measure(tmp_path, effect):
    out = tmp_path / "sim"
    args = ["--years", "1", "--out", str(out), "--measure", "permits", "--measure-start", "2006-01"]
    r = _run([*args, "--effect", effect])
    assert r.exit_code == 2, r.output
    assert (
        "(an effect of coordination, which is not applied: add --measure coordination)" in r.output
    )
    assert "known: permits.take_up" in r.output and not out.exists()


def test_records_the_validator_would_refuse_are_said_when_written(tmp_path):
    """Before: seed 4 over 15 years wrote, exit 0, a checkpoint month with 22,273 refusals of entry (the 2006–2017
    trend extrapolated to 2020), which `estim validate` then refused (plausible range 0–20,000) and every fit
    with it, far from the cause. The reference is the validator's own verdict on the folder."""
    from estim.records import validate_path

    out = tmp_path / "sim"
    r = _run(["--years", "15", "--seed", "4", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert not validate_path(out).ok
    assert "refusals_of_entry" in r.output and "2020-12" in r.output and "--years" in r.output


def test_the_readme_command_makes_the_same_folder_again(tmp_path):
    # The README once gave `estim simulate --seed 5` for a simulation with a measure, an effect, --years and
    # --retry: run, it made other records.
    import shlex

    from estim.simulate import compare_folders

    first = tmp_path / "first"
    given = [
        "--seed",
        "5",
        "--years",
        "2",
        "--measure",
        "coordination",
        "--measure-start",
        "2007-01",
    ]
    given += ["--effect", "flow=0.75", "--retry", "0.9"]
    result = _run([*given, "--out", str(first)])
    assert result.exit_code == 0, result.output
    readme = (first / "README.md").read_text(encoding="utf-8")
    command = readme.split("made by `", 1)[1].split("`", 1)[0]
    assert command == (
        "estim simulate --seed 5 --years 2 --measure coordination --measure-start 2007-01 "
        "--effect flow=0.75 --retry 0.9"
    )
    again = tmp_path / "again"
    result = _run([*shlex.split(command)[2:], "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert compare_folders(first, again) == []
    other = tmp_path / "other"
    assert _run(["--seed", "5", "--years", "2", "--out", str(other)]).exit_code == 0
    assert "apprehensions.csv" in compare_folders(first, other)


@pytest.mark.parametrize("where", ["file", "proc"])
def test_an_out_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, where):
    # both were "internal error: FileNotFoundError / NotADirectoryError" (exit 1) after the simulation ran
    if where == "file":
        (tmp_path / "afile").write_text("x")
        out, said = tmp_path / "afile" / "sub", "is a file, not a folder"
    else:
        out, said = Path("/proc/estim_out"), "no file can be written in /proc"
    result = _run(["--years", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"--out {out}: the folder cannot be written" in result.output and said in result.output


def test_a_file_system_refusal_met_late_names_the_file_not_a_bug(tmp_path, monkeypatch):
    import estim.simulate as simulate_api

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "truth.nc"))

    monkeypatch.setattr(simulate_api, "write_simulation", full_disk)
    result = _run(["--years", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "truth.nc: No space left on device (the file system refused it)" in result.output
    assert "internal error" not in result.output
