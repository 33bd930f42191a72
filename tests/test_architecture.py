"""The layout keeps the flow one-way: records → statistics → families → run → studies → report → paper → cli.

Read from the source with `ast` (every import, at module level or inside a function): a module imports only
from its own stage or from a lower one, stages of equal rank do not import each other, and no chain of
imports between estim's modules comes back to where it started. docs/architecture.md lists every module;
this file checks that the list and the tree agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "estim"

# Stages from the bottom up, each (name, the modules or packages in it); a module may import from its own stage
# and from any stage of a lower rank. Stages of one rank are independent of each other.
STAGES: list[list[tuple[str, tuple[str, ...]]]] = [
    [
        (
            "base",
            (
                "estim",
                "estim.errors",
                "estim.io",
                "estim.paths",
                "estim.priors",
                "estim.intervals",
                "estim.figure_style",
            ),
        )
    ],
    [("benchmarks", ("estim.benchmarks",)), ("records", ("estim.records",))],
    [("simulate", ("estim.simulate",)), ("statistics", ("estim.statistics",))],
    [("families", ("estim.families",))],
    [("run", ("estim.run",))],
    [("studies", ("estim.studies",)), ("measures", ("estim.measures",))],
    [("report", ("estim.report",))],
    [("paper", ("estim.paper",))],
    [("cli", ("estim.cli",))],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _stage(module: str) -> tuple[int, str]:
    """(rank, stage) of a module: the stage whose longest prefix it is, or lies under."""
    best: tuple[int, str, str] | None = None
    for rank, stages in enumerate(STAGES):
        for stage, prefixes in stages:
            for prefix in prefixes:
                if module == prefix or module.startswith(prefix + "."):
                    if best is None or len(prefix) > len(best[2]):
                        best = (rank, stage, prefix)
    assert best is not None, (
        f"{module} belongs to no stage: add it to STAGES and docs/architecture.md"
    )
    return best[0], best[1]


def _imports(module: str, path: Path) -> set[str]:
    """estim modules that `module` imports (``from a import b`` counts as a.b when b is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                )
                base = base.strip(".")
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n == "estim" or n.startswith("estim."))
    found.discard(module)
    return {n if n in MODULES else n.rpartition(".")[0] for n in found}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a higher stage, or of another stage of the same rank."""
    wrong = []
    for module, targets in graph.items():
        rank, stage = _stage(module)
        for target in targets:
            t_rank, t_stage = _stage(target)
            if t_rank > rank or (t_rank == rank and t_stage != stage):
                wrong.append(f"{module} ({stage}) imports {target} ({t_stage})")
    return sorted(wrong)


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk of the import graph closes."""
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_every_import_points_down_or_within_its_stage():
    assert not upward_imports(GRAPH), "\n".join(upward_imports(GRAPH))


def test_no_import_cycles():
    assert not import_cycles(GRAPH), "\n".join(import_cycles(GRAPH))


def test_the_checks_catch_what_they_look_for():
    assert upward_imports({"estim.records.load": {"estim.run.fit"}})
    assert upward_imports({"estim.simulate.core": {"estim.statistics"}})  # same rank, other stage
    assert not upward_imports({"estim.run.fit": {"estim.families.base", "estim.run.store"}})
    assert import_cycles({"estim.run.a": {"estim.run.b"}, "estim.run.b": {"estim.run.a"}})
    assert _stage("estim.families.border.model") == (3, "families")
    with pytest.raises(AssertionError):
        _stage("estim_other.module")


def test_no_module_is_over_600_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_architecture_doc_lists_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`(estim/[\w/]+\.py)`", doc))
    present = {p.relative_to(ROOT).as_posix() for p in MODULES.values()}
    assert not present - listed, (
        f"modules missing from docs/architecture.md: {sorted(present - listed)}"
    )
    assert not listed - present, (
        f"docs/architecture.md lists absent modules: {sorted(listed - present)}"
    )


def test_nothing_points_outside_the_repository():
    # written in two pieces so that this line does not match itself
    pattern = re.compile(r"DESIGN ?§|DESIGN\.md|" + "facts" + r"/border|\.\./shared")
    hits = []
    for path in [*ROOT.glob("*.md"), *ROOT.glob("*.toml")]:
        hits += [
            f"{path.name}: {line}" for line in path.read_text().splitlines() if pattern.search(line)
        ]
    for folder in ("estim", "docs", "data", "tests", "scripts", "models"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".csv", ".toml", ".txt"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                hits += [
                    f"{path.relative_to(ROOT)}: {ln[:80]}"
                    for ln in text.splitlines()
                    if pattern.search(ln)
                ]
    assert not hits, "\n".join(hits)
