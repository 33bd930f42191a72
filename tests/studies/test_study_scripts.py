"""The study scripts (recovery, sbc, lists_recovery) refuse bad options, unwritable outputs and files they must not
resume before any work: an argparse-style error, exit 2, no traceback."""

from __future__ import annotations

import sys

import pytest

from tests.studies.script_loader import load_script


def _run(monkeypatch, capsys, script: str, *argv: str) -> str:
    """Run ``scripts/SCRIPT.py`` with ``argv``; it must exit 2; returns what it said on stderr."""
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as exit_:
        module = load_script(script)
        if hasattr(module, "main"):
            module.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--families", "ztpoisson", "ztpoisson"], "ztpoisson given twice"),
        (["--alpha", "1.5"], "not between 0 and 1"),
        (["--alpha", "0"], "not between 0 and 1"),
        (["--replicates", "0"], "0 is not at least 1"),
        (["--replicates", "-3"], "-3 is not at least 1"),
        (["--workers", "-1"], "--workers -1"),
        (["--workers", "100000"], "more than 4 ×"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give one"),
        (["--out", "/proc/sbc.csv"], "--out /proc/sbc.csv: cannot be written"),
        (["--report", "/etc/hostname/report.json"], "is a file, not a folder"),
        (["--plots", "/proc/plots"], "--plots /proc/plots: cannot be written"),
    ],
)
def test_sbc_refuses_bad_options_before_any_work(monkeypatch, capsys, argv, said):
    assert said in _run(monkeypatch, capsys, "sbc", *argv)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--datasets", "0"], "0 is not at least 1"),
        (["--population-size", "0"], "0 is not at least 1"),
        (["--draws", "0"], "0 is not at least 1"),
        (["--param", "lambda"], "--param 'lambda': give NAME=VALUE"),
        (["--param", "lambda=x"], "--param 'lambda=x': give NAME=VALUE"),
        (["--workers", "-2"], "--workers -2"),
        (["--out", "/proc/rows.csv"], "cannot be written"),
        (["--resume", "--force"], "--resume and --force"),
    ],
)
def test_recovery_refuses_bad_options_before_any_work(monkeypatch, capsys, argv, said):
    assert said in _run(monkeypatch, capsys, "recovery", "--family", "ztpoisson", *argv)


def test_resuming_another_file_is_a_clear_refusal(monkeypatch, capsys, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n\nhours of work\n")
    err = _run(monkeypatch, capsys, "sbc", "--families", "ztpoisson", "--out", str(notes))
    assert "exists and is not empty" in err and "--force" in err
    assert notes.read_text() == "# my notes\n\nhours of work\n"
    err = _run(
        monkeypatch, capsys, "sbc", "--families", "ztpoisson", "--out", str(notes), "--resume"
    )
    assert "notes.md: its columns are not those of a simulation-based calibration" in err
    binary = tmp_path / "rows.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    err = _run(
        monkeypatch, capsys, "sbc", "--families", "ztpoisson", "--out", str(binary), "--resume"
    )
    assert "not UTF-8 text" in err


def test_a_bad_scheduler_address_is_one_line(monkeypatch, capsys, tmp_path):
    err = _run(monkeypatch, capsys, "sbc", "--families", "ztpoisson", "--scheduler", "nonsense://x")
    assert "--scheduler nonsense://x: cannot connect" in err


def test_lists_summary_of_a_missing_file_is_a_clear_refusal(monkeypatch, capsys, tmp_path):
    err = _run(
        monkeypatch,
        capsys,
        "lists_recovery",
        "--out",
        str(tmp_path / "absent.csv"),
        "--summary-only",
    )
    assert "absent.csv: no such file" in err


def test_sbc_report_only_rewrites_a_committed_study_s_report_without_fitting(
    monkeypatch, capsys, tmp_path
):
    # a committed SBC's rows predate the settings column, so --resume refuses them: its report is rewritten
    # with --report-only instead, and it gives the committed report's verdicts
    import json

    from estim.paths import REPO_ROOT

    rows = REPO_ROOT / "paper" / "inputs" / "sbc" / "sbc_border.csv"
    committed = json.loads((rows.parent / "report_border.json").read_text(encoding="utf-8"))
    report = tmp_path / "report.json"
    argv = ["--families", "border", "--replicates", "100", "--out", str(rows)]
    monkeypatch.setattr(sys, "argv", ["sbc.py", *argv, "--report", str(report), "--report-only"])
    load_script("sbc").main()
    made = json.loads(report.read_text(encoding="utf-8"))
    for family in (made, committed):
        family["families"]["border"].pop("plot")
    assert made["families"] == committed["families"]
    said = _run(monkeypatch, capsys, "sbc", *argv, "--report-only", "--resume")
    assert "--report-only reads the rows of an existing --out" in said


@pytest.mark.parametrize(
    "script", ["border_recovery", "border_misspecification", "effect_recovery"]
)
def test_the_border_scripts_refuse_a_file_they_must_not_resume_in_one_line(
    monkeypatch, capsys, tmp_path, script
):
    # the study's refusal came out as a traceback (exit 1); nothing is fitted before it
    notes = tmp_path / "notes.csv"
    notes.write_text("a,b\n1,2\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--out", str(notes), "--resume"])
    with pytest.raises(SystemExit) as exit_:
        load_script(script).run_script(load_script(script).main)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "its columns are not those of" in err and "Traceback" not in err
