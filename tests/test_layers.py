"""The import layers (CONTRIBUTING.md): no circles, pure statistics and models free of Django, workers on top.

Built from the source with grimp (the graph behind import-linter), so imports inside functions count too.
"""

from __future__ import annotations

import functools

import grimp
import pytest

FIRST_PARTY = ("annotation", "corpora", "jobs", "accounts", "config", "workers", "models_zoo")
DJANGO_FREE = ("annotation.agreement", "models_zoo")


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*FIRST_PARTY, include_external_packages=True, cache_dir=None)


def _first_party_modules() -> list[str]:
    return sorted(m for m in _graph().modules if m.split(".")[0] in FIRST_PARTY and ".migrations" not in m)


def _imports(graph: grimp.ImportGraph, module: str) -> set[str]:
    return {m for m in graph.find_modules_directly_imported_by(module) if ".migrations" not in m}


def import_circles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan): the modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(_imports(graph, module) & modules):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles() -> None:
    assert import_circles(_graph(), set(_first_party_modules())) == []


def test_the_circle_finder_finds_a_circle_and_nothing_else() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=importer, imported=imported)
    assert import_circles(graph, {"a", "b", "c", "d"}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", DJANGO_FREE)
def test_pure_packages_never_import_django(package: str) -> None:
    chains = _graph().find_shortest_chains(importer=package, imported="django", as_packages=True)
    assert not chains, f"{package} reaches Django: {sorted(chains)[:5]}"


def test_nothing_imports_workers_but_celery_config() -> None:
    offenders = sorted(
        f"{module} -> {imported}"
        for module in _first_party_modules()
        if not module.startswith(("workers", "config"))
        for imported in _imports(_graph(), module)
        if imported == "workers" or imported.startswith("workers.")
    )
    assert offenders == []
