"""The manuscript reads only generated numbers that exist, the committed numbers verify against themselves and
catch a change, and (slow) a quick build rebuilds byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from estim.paper.build import PAPER_DIR, build
from estim.paper.numbers import read_numbers, verify_folder

NUMBERS = PAPER_DIR / "generated" / "numbers"
GROUPS = (
    "build",
    "border",
    "questions",
    "measures",
    "studies",
    "data",
    "validation",
    "recovery",
    "sensitivity",
    "misspecification",
    "sbc",
    "stan_race",
    "provenance",
)


def _references() -> set[str]:
    """Every generated number the manuscript reads: GROUP.path (without a trailing .value)."""
    text = (PAPER_DIR / "paper.typ").read_text(encoding="utf-8")
    pattern = r"(?<![/.\w])(" + "|".join(GROUPS) + r")((?:\.[A-Za-z_][A-Za-z0-9_]*)+)"
    refs = set()
    for group, path in re.findall(pattern, text):
        path = path.removesuffix(".value")
        if path:
            refs.add(f"{group}{path}")
    return refs


def _missing_numbers(folder) -> list[str]:
    numbers = {g: read_numbers(folder / f"{g}.json") for g in GROUPS}
    return [
        ref
        for ref in sorted(_references())
        if ref.split(".", 1)[1] not in numbers[ref.split(".", 1)[0]]
    ]


def test_every_number_the_manuscript_reads_exists():
    refs = _references()
    assert len(refs) > 20  # the manuscript does read generated numbers
    numbers = {g: read_numbers(NUMBERS / f"{g}.json") for g in GROUPS}
    missing = []
    for ref in sorted(refs):
        group, name = ref.split(".", 1)
        if name not in numbers[group]:
            missing.append(ref)
    assert not missing, missing


def test_every_file_the_manuscript_reads_is_generated_and_in_the_manifest():
    text = (PAPER_DIR / "paper.typ").read_text(encoding="utf-8")
    files = set(re.findall(r'(?:image|csv)\("([^"]+)"', text))
    manifest = json.loads((PAPER_DIR / "generated" / "manifest.json").read_text(encoding="utf-8"))
    # a path the manuscript completes from a number ("generated/figures/sbc_" + family + ".png") is a prefix
    prefixes = {f for f in files if not Path(f).suffix}
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in manifest), prefix
    files -= prefixes
    assert files and files <= set(manifest), files - set(manifest)
    for entry in manifest.values():
        assert entry["made_by"].startswith("estim.paper.") and entry["inputs"]


def test_every_figure_and_table_names_what_made_it():
    text = (PAPER_DIR / "paper.typ").read_text(encoding="utf-8")
    captions = re.findall(r"caption: \[(.*?)\],\n\s*\)", text, flags=re.S)
    assert len(captions) == text.count("#figure(") > 5
    unnamed = [c[:60] for c in captions if not re.search(r"Made\s+by\s+`estim\.paper\.", c)]
    assert not unnamed, unnamed


def test_committed_numbers_verify_and_a_changed_one_is_caught(tmp_path):
    rebuilt = tmp_path / "numbers"
    shutil.copytree(NUMBERS, rebuilt)
    ok, _ = verify_folder(NUMBERS, rebuilt)
    assert ok
    path = rebuilt / "border.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    median = data["whole_border"]["median"]
    median["value"] += 4 * 2**0.5 * median["mcse"]  # 4 × the combined MCSE of two equal ones
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    ok, report = verify_folder(NUMBERS, rebuilt)
    assert not ok and "whole_border.median" in report


def test_the_study_steps_give_the_committed_numbers_and_tables_from_the_committed_inputs(tmp_path):
    # the studies' outputs are committed inputs; the numbers and tables read from them must be current
    from estim.paper.build import STUDY_STEPS
    from estim.paper.context import Context

    copy = tmp_path / "paper"
    shutil.copytree(PAPER_DIR, copy, ignore=shutil.ignore_patterns("generated", "*.pdf"))
    ctx = Context(root=PAPER_DIR.parent, paper=copy, quick=False)
    committed_manifest = json.loads((PAPER_DIR / "generated" / "manifest.json").read_text("utf-8"))
    for step in STUDY_STEPS:
        for path in step(ctx):
            committed = PAPER_DIR / path.relative_to(copy)
            if "figures" not in path.parts:  # figures are made by a build, not committed
                assert path.read_bytes() == committed.read_bytes(), committed
            made_by = f"{step.__module__}.{step.__name__}"
            entry = ctx.manifest[path.relative_to(copy).as_posix()]
            assert entry["made_by"] == made_by
            # the committed manifest names the inputs, with their hashes, that the outputs came from
            assert committed_manifest[path.relative_to(copy).as_posix()] == entry, committed


@pytest.mark.slow
def test_a_quick_build_is_byte_identical_twice(tmp_path):
    # fits come from the fit store (refitted once if the code changed): two builds, same bytes
    sums = []
    for i in range(2):
        copy = tmp_path / f"paper{i}"
        shutil.copytree(PAPER_DIR, copy, ignore=shutil.ignore_patterns("generated", "*.pdf"))
        build(copy, quick=True)
        files = sorted((copy / "generated").rglob("*.json")) + [copy / "paper.pdf"]
        files = [f for f in files if f.name != "timings.json"]
        sums.append(
            {
                f.relative_to(copy).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in files
            }
        )
    assert sums[0] == sums[1]
    # the quick build made every number the manuscript reads (it typeset, so every file it reads exists)
    assert not _missing_numbers(tmp_path / "paper0" / "generated" / "numbers")
    assert (
        read_numbers(tmp_path / "paper0" / "generated" / "numbers" / "build.json")["mode"].value
        == "quick"
    )


def test_the_committed_outputs_were_made_from_the_inputs_as_they_are():
    # every step's inputs (specs, data, the simulator) hash as the manifest says they did when its outputs were
    # made: a spec or dataset changed since leaves the paper's numbers of the old one (data/synthetic's truth.nc
    # was regenerated once without its steps' entries)
    from estim.paper.context import _digest

    manifest = json.loads((PAPER_DIR / "generated" / "manifest.json").read_text(encoding="utf-8"))
    root = PAPER_DIR.parent
    stale = {
        f"{name} (read by {entry['made_by']})"
        for entry in manifest.values()
        for name, digest in entry["inputs"].items()
        if not (root / name).exists() or _digest(root / name) != digest
    }
    assert not stale, f"changed since the paper was built; rebuild the steps: {sorted(stale)}"
