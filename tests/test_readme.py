"""Every `./run estim …` command in the README works as written (run through the installed CLI)."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("./run estim"):
                commands.append(shlex.split(line)[2:])
    return commands


def _is_border(args: list[str]) -> bool:
    return any("border" in a for a in args)


def _is_example_fit(args: list[str]) -> bool:
    # the worked example's Bayesian fit (and the summary that reads it) take a minute: the slow suite runs them
    return any("examples/" in a for a in args) and "--mle" not in args


def _fast(args: list[str]) -> bool:
    return not _is_border(args) and not _is_example_fit(args)


def test_readme_lists_the_commands():
    commands = _readme_commands()
    verbs = {c[0] for c in commands}
    assert {"simulate", "validate", "data"} <= verbs


def _run_in_order(tmp_path, commands):
    # In order, in one folder: the simulate command makes what the later ones read; the fits go to a copy of
    # models/ so the test leaves the repository as it was.
    for folder in ("models", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.nc"))
    for args in commands:
        out = subprocess.run(
            [sys.executable, "-m", "estim.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
        assert "Traceback" not in out.stderr


def _run_in_process(tmp_path, monkeypatch, commands):
    # The same, through the CLI's entry point in this process: the commands, exit codes and files are those of
    # `estim …`, without paying Python's and PyMC's start-up once per command (the fast suite's largest cost).
    from click.testing import CliRunner

    from estim.cli import cli

    for folder in ("models", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.nc"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in commands:
        out = runner.invoke(cli, args, catch_exceptions=False)
        assert out.exit_code == 0, (args, out.output[-2000:])


def test_readme_commands_run_in_order(tmp_path, monkeypatch):
    _run_in_process(tmp_path, monkeypatch, [c for c in _readme_commands() if _fast(c)])


@pytest.mark.slow
def test_readme_worked_example_runs_in_order(tmp_path):
    commands = [c for c in _readme_commands() if _is_example_fit(c)]
    assert commands and commands[0][0] == "fit"
    _run_in_order(tmp_path, commands)


def test_readme_python_runs(monkeypatch, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(ROOT)  # the snippets read the shipped example by its path in the repository
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "N-hat" in capsys.readouterr().out


def test_the_installed_command_runs(tmp_path):
    # one README command through the installed entry point (`python -m estim.cli`), as a user runs it
    _run_in_order(tmp_path, [["simulate", "--seed", "20061", "--years", "2", "--out", "my_sim"]])


@pytest.mark.slow
def test_readme_border_commands_run_in_order(tmp_path):
    # the border model's commands fit for minutes: the slow suite runs them (data/ resolves to the repository's)
    commands = [c for c in _readme_commands() if _is_border(c)]
    assert commands and commands[0][:2] == ["fit", "models/border.toml"]
    (tmp_path / "data").symlink_to(ROOT / "data")  # --truth data/synthetic/truth.nc as written
    _run_in_order(tmp_path, commands)


def test_demo_runs(tmp_path):
    # `./run demo` is `estim demo` once .venv exists.
    out = subprocess.run(
        [sys.executable, "-m", "estim.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "identical to data/synthetic/ byte for byte" in out.stdout
    assert "orenburg" in out.stdout and "omsk" in out.stdout
