"""models_zoo imports in one direction: the registry loads backends by dotted path, no backend imports the
registry, and no chain of imports (top-level or inside a function) leads a module back to itself."""

from __future__ import annotations

import ast
from pathlib import Path

import models_zoo

ROOT = Path(models_zoo.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every models_zoo module and the models_zoo modules it imports anywhere in its source."""
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {target for target in targets if target in modules and target != name}
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return path[path.index(child):] + [child]
            if child not in state and (found := visit(child)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_no_backend_imports_the_registry_and_the_zoo_has_no_import_circle() -> None:
    graph = _imports()
    assert "models_zoo.backends.heads" in graph and "models_zoo.registry" in graph
    importers = sorted(name for name, targets in graph.items() if "models_zoo.registry" in targets)
    assert not [name for name in importers if name.startswith("models_zoo.backends")], importers
    assert not graph["models_zoo.backends"] - {"models_zoo.backends.base", "models_zoo.errors"}, (
        "the backend table names backends by dotted path; it imports none of them")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
