"""./run finds a Python >= 3.12 the way a fresh machine of this kind needs, and fails clearly without one."""

import glob
import os
import shutil
import subprocess
import sys
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
