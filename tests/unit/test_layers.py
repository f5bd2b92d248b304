"""Imports only look down: voxloop/ -> routers/ (and middleware/) -> api/ -> engines/ (issue 16).

Read with `ast` from the source, so a lazy import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("voxloop", "routers", "middleware", "api", "engines")
# What each layer must never import.
FORBIDDEN = {
    "engines": {"api", "routers", "middleware", "voxloop"},
    "api": {"routers", "middleware", "voxloop"},
    "middleware": {"routers", "voxloop"},
    "routers": {"voxloop"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level project packages a module imports, with line numbers."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
    return {(name, line) for name, line in found if name in LAYERS}


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    assert modules(layer), f"no modules found under {layer}/"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules(layer)
        for name, line in sorted(imported_packages(path))
        if name in FORBIDDEN[layer]
    ]
    assert not wrong, "imports that look up:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from api.settings import Settings\n    return Settings\n")
    assert imported_packages(module) == {("api", 4)}


def test_engine_modules_do_not_import_each_other_in_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in modules("engines"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("engines."):
                deps.add(node.module)
        graph[name] = deps
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for dep in graph.get(node, ()):
            if dep in trail:
                cycles.append(" -> ".join([*trail[trail.index(dep):], dep]))
            elif dep in graph:
                visit(dep, [*trail, dep])

    for start in graph:
        visit(start, [start])
    assert not cycles, "import cycles among engines:\n" + "\n".join(sorted(set(cycles)))
