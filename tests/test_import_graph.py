"""The import graph of our packages: no cycle at any depth, and no first-party import tucked
inside a function (where it would hide one). Which package may import which is written as
import-linter contracts in pyproject.toml and checked by `lint-imports` in CI."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "api", "console", "workers", "engine", "connectors")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import cycles of `graph`: its strongly connected components of more than one module
    (Tarjan's algorithm, iterative so a deep graph needs no deep recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []  # the depth-first path, each with what is left

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        work.append((module, iter(sorted(graph.find_modules_directly_imported_by(module)))))

    for root in sorted(graph.modules):
        if root in index:
            continue
        visit(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    visit(other)
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_among_the_modules_of_our_packages():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert {m.split(".")[0] for m in graph.modules} >= set(PACKAGES)
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in (("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")):
        graph.add_import(importer=importer, imported=imported)
    assert strongly_connected(graph) == [["a.x", "a.y", "a.z"]]


def imports_inside_functions(path: Path) -> Iterator[str]:
    """`file:line module` for each import of one of our packages inside a function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                if name.split(".")[0] in PACKAGES:
                    yield f"{path.relative_to(ROOT)}:{node.lineno} {name}"


def test_no_package_imports_one_of_ours_inside_a_function():
    hidden = sorted({found for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                     for found in imports_inside_functions(path)})
    assert hidden == []
