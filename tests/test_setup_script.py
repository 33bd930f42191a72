"""./run finds a Python >= 3.12 the way a fresh machine of this kind needs, and fails clearly without one."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")


def _env(tmp_path: Path, path_dirs: list[str], pyenv_root: str) -> dict[str, str]:
    return {"PATH": ":".join(path_dirs), "HOME": str(tmp_path), "PYENV_ROOT": pyenv_root}


def _bin_dir_with(tmp_path: Path, links: dict[str, str]) -> str:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name in ("bash", "dirname", "sort", "ls", "cat", "sha256sum", "cut", "sed", "rm"):
        if shutil.which(name):
            (d / name).symlink_to(shutil.which(name))
    for name, target in links.items():
        (d / name).symlink_to(target)
    return str(d)


@pytest.mark.skipif(
    bool(glob.glob("/usr/bin/python3.1[2-9]") + glob.glob("/usr/local/bin/python3.1[2-9]")),
    reason="this machine has a system Python >= 3.12, which the script rightly finds",
)
def test_no_suitable_python_is_a_clear_failure(tmp_path):
    old = shutil.which("python3.11") or "/usr/bin/python3.11"
    if not Path(old).exists():
        pytest.skip("no Python 3.11 to stand in for the too-old default python3")
    env = _env(tmp_path, [_bin_dir_with(tmp_path, {"python3": old})], str(tmp_path / "no-pyenv"))
    out = subprocess.run(
        [BASH, str(ROOT / "run"), "find-python"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "no Python >= 3.12" in out.stderr


def test_finds_a_pyenv_interpreter_that_is_not_on_path(tmp_path):
    # A fresh machine of this kind: python3 on PATH is 3.11; 3.12+ lives only under $(pyenv root)/versions.
    fake_root = tmp_path / "pyenv"
    (fake_root / "versions" / "3.12.9" / "bin").mkdir(parents=True)
    (fake_root / "versions" / "3.12.9" / "bin" / "python3").symlink_to(sys.executable)
    old = shutil.which("python3.11") or "/usr/bin/python3.11"
    links = {"python3": old} if Path(old).exists() else {}
    env = _env(tmp_path, [_bin_dir_with(tmp_path, links)], str(fake_root))
    out = subprocess.run(
        [BASH, str(ROOT / "run"), "find-python"], env=env, capture_output=True, text=True
    )
    if glob.glob("/usr/bin/python3.1[2-9]"):
        assert out.returncode == 0
    else:
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(fake_root / "versions" / "3.12.9" / "bin" / "python3")


def test_explicit_interpreter_is_checked(tmp_path):
    env = dict(os.environ, ESTIM_PYTHON=str(tmp_path / "missing-python"))
    out = subprocess.run(
        [BASH, str(ROOT / "run"), "find-python"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "not a working Python >= 3.12" in out.stderr


# --- the help, unknown commands and setup's progress: each on a copy of the script, so nothing can touch .venv


def _script_copy(tmp_path: Path, *, with_project: bool = False) -> Path:
    d = tmp_path / "project"
    d.mkdir()
    shutil.copy2(ROOT / "run", d / "run")
    if with_project:
        shutil.copy2(ROOT / "requirements.lock", d / "requirements.lock")
        shutil.copy2(ROOT / "pyproject.toml", d / "pyproject.toml")
    return d / "run"


def _commands_dispatched() -> set[str]:
    # the labels of the script's `case "$cmd" in` (help | -h | --help) -> {"help"}; * is the unknown command
    text = (ROOT / "run").read_text(encoding="utf-8")
    body = text.split('case "$cmd" in', 1)[1].split("\nesac", 1)[0]
    labels = re.findall(r"^    ([a-z|\- ]+)\)$", body, flags=re.M)
    return {
        name.strip()
        for label in labels
        for name in label.split("|")
        if not name.strip().startswith("-")
    }


def _run_bare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # no Python anywhere on PATH, no pyenv: the help must need nothing but bash
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    env = _env(d, [_bin_dir_with(d, {})], str(d / "no-pyenv"))
    script = _script_copy(d)
    out = subprocess.run([BASH, str(script), *args], env=env, capture_output=True, text=True)
    assert not (script.parent / ".venv").exists()
    return out


def test_the_script_dispatches_the_commands_we_expect():
    expected = {
        "border",
        "demo",
        "paper",
        "test",
        "test-slow",
        "estim",
        "python",
        "setup",
        "find-python",
        "help",
    }
    assert _commands_dispatched() == expected


@pytest.mark.parametrize(
    "args", [[], ["help"], ["-h"], ["--help"]], ids=["none", "help", "-h", "--help"]
)
def test_help_lists_every_command_once_and_exits_0(tmp_path, args):
    out = _run_bare(tmp_path, *args)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0].startswith("usage: ./run COMMAND")
    for cmd in _commands_dispatched():
        assert sum(1 for line in lines if line.split()[:1] == [cmd]) == 1, (cmd, out.stdout)


def test_help_has_no_stray_shell_lines_and_states_the_long_durations(tmp_path):
    out = _run_bare(tmp_path).stdout
    for shell in ("set -", "#", "esac", "<<", "$(", "${", "exec ", "sed "):
        assert shell not in out, shell
    line = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    assert "min" in line["border"] and "min" in line["test"] and "min" in line["setup"]
    assert "hours" in line["test-slow"]
    assert max(len(ln) for ln in out.splitlines()) <= 120


@pytest.mark.parametrize("bad", ["bordr", "--verbose"])
def test_unknown_command_exits_2_with_the_help_on_stderr(tmp_path, bad):
    out = _run_bare(tmp_path, bad)
    assert out.returncode == 2
    assert out.stdout == ""
    assert f"unknown command '{bad}'" in out.stderr.splitlines()[0]
    assert out.stderr.endswith(_run_bare(tmp_path, "help").stdout)  # then the whole help


_FAKE_PYTHON = """#!/bin/bash
# stands in for a Python >= 3.12: `-m venv` makes a .venv whose python is this script; `-m pip` is logged
case "$1" in
    -c) exit 0 ;;
    --version) echo "Python 3.13.0" ;;
    -m)
        case "$2" in
            venv) mkdir -p "$3/bin" && ln -s "{self}" "$3/bin/python" ;;
            pip) echo "$*" >>"{log}"; exit "${{FAKE_PIP_EXIT:-0}}" ;;
        esac ;;
esac
"""


def _fake_python(tmp_path: Path) -> tuple[dict[str, str], Path]:
    fake, log = tmp_path / "fake-python3", tmp_path / "pip.log"
    fake.write_text(_FAKE_PYTHON.format(self=fake, log=log))
    fake.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ESTIM_PYTHON": str(fake)}
    return env, log


def test_setup_says_what_it_does_and_how_long_it_took_without_carriage_returns(tmp_path):
    script = _script_copy(tmp_path, with_project=True)
    env, log = _fake_python(tmp_path)
    n = sum(
        1
        for ln in (ROOT / "requirements.lock").read_text().splitlines()
        if re.match(r"[A-Za-z0-9]", ln)
    )

    first = subprocess.run([BASH, str(script), "setup"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # progress goes to stderr
    assert "\r" not in first.stderr
    said = first.stderr.splitlines()
    assert said[0].startswith("estim: creating .venv with Python 3.13.0")
    assert said[1].startswith(
        f"estim: installing {n} packages from requirements.lock (about a minute"
    )
    assert re.fullmatch(r"estim: installed in \d+ s", said[2])
    installs = log.read_text().splitlines()
    assert len(installs) == 2 and all(" -q " in f" {i} " for i in installs)
    assert (script.parent / ".venv" / ".estim-stamp").exists()

    again = subprocess.run([BASH, str(script), "setup"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "creating" not in again.stderr and "is ready" in again.stderr
    assert len(log.read_text().splitlines()) == 2  # up to date: nothing installed

    with (script.parent / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    changed = subprocess.run([BASH, str(script), "setup"], env=env, capture_output=True, text=True)
    assert changed.returncode == 0
    assert "rebuilding .venv" in changed.stderr and "installed in" in changed.stderr


def test_a_failed_install_says_so_and_is_retried(tmp_path):
    script = _script_copy(tmp_path, with_project=True)
    env, log = _fake_python(tmp_path)
    failed = subprocess.run(
        [BASH, str(script), "setup"],
        env=dict(env, FAKE_PIP_EXIT="1"),
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "setup failed: pip could not install" in failed.stderr
    assert "installed in" not in failed.stderr
    assert not (script.parent / ".venv" / ".estim-stamp").exists()
    retry = subprocess.run([BASH, str(script), "setup"], env=env, capture_output=True, text=True)
    assert retry.returncode == 0 and "installed in" in retry.stderr
