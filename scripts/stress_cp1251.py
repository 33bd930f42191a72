"""Stress `estim validate` on a record folder holding one CSV file in Windows-1251 (not UTF-8).

Copies data/synthetic/ to a temporary folder, rewrites apprehensions.csv in cp1251 with Cyrillic text in
the `recorded` column of every 50th row (as a spreadsheet saved with a Russian locale would), every other
one holding an unquoted comma (so those rows have a field too many), then runs ``estim validate FOLDER``
N times as subprocesses and counts the exit codes. Every run must exit 2 (bad input) and name the file and
the encoding; an abort (SIGABRT: exit 134 in a shell, "terminate called without an active exception") or
any other code is a failure.

The abort was a race at interpreter exit (see estim/records/read.py, "Arrow and Python objects"); it is
rare (about 1 run in 100-200 here) and more frequent under CPU contention, hence ``--jobs`` above the
number of cores.

    .venv/bin/python scripts/stress_cp1251.py            # 200 runs
    .venv/bin/python scripts/stress_cp1251.py -n 500 -j 4

Exit status: 0 when every run exited 2 with the expected message, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "data" / "synthetic"
ESTIM = ROOT / ".venv" / "bin" / "estim"
CYRILLIC = ("нарушение_режима", "нарушение, режим")  # "regime violation"; the second splits the row


def make_cp1251_folder(out: Path, every: int = 50) -> Path:
    """A copy of the synthetic records with apprehensions.csv in cp1251 and Cyrillic in some rows."""
    out.mkdir(parents=True, exist_ok=True)
    for f in SYNTHETIC.iterdir():
        if f.is_file() and f.suffix == ".csv":
            shutil.copy2(f, out / f.name)
    lines = (SYNTHETIC / "apprehensions.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    k = header.index("recorded")
    for j, i in enumerate(range(1, len(lines), every)):
        cells = lines[i].split(",")
        cells[k] = CYRILLIC[j % 2]
        lines[i] = ",".join(cells)
    (out / "apprehensions.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1251"))
    return out


def run_once(folder: Path, estim: Path) -> tuple[int, str]:
    p = subprocess.run(
        [str(estim), "validate", str(folder)], capture_output=True, text=True, check=False
    )
    return p.returncode, p.stdout + p.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=200, help="number of runs (default 200)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument("--estim", type=Path, default=ESTIM, help="the estim command to run")
    ap.add_argument(
        "--folder", type=Path, help="use (and keep) this folder instead of a temporary one"
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="estim-cp1251-") as tmp:
        folder = make_cp1251_folder(args.folder or Path(tmp) / "records")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda _: run_once(folder, args.estim), range(args.runs)))
    codes = collections.Counter(code for code, _ in results)
    # A correct run exits 2 and names the file and the encoding.
    wrong = [
        (code, out)
        for code, out in results
        if code != 2 or "apprehensions.csv" not in out or "cp1251" not in out
    ]
    print(f"{args.runs} runs of `estim validate {folder}`")
    for code, n in sorted(codes.items()):
        print(f"  exit {code}: {n}")
    aborts = sum(n for code, n in codes.items() if code < 0 or code >= 128)
    print(f"  aborts (signal / exit >= 128): {aborts}")
    if wrong:
        code, out = wrong[0]
        print(f"  {len(wrong)} wrong runs; first (exit {code}):\n{out[-2000:]}")
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
