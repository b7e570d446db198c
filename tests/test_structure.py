"""The house's structure, checked on every run: imports point one way between the layers, no module imports
itself back through others, and each package's ``__all__`` says exactly what it exports.

The import graph is read from the source with ``ast`` (imports inside functions count: they run too, only later;
``if TYPE_CHECKING:`` blocks do not). ``from pkg import sub`` is an edge to the submodule ``pkg.sub``, not to the
package, as it is for the reader.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Lower layers first: a module may import its own layer and the ones before it, never one after it.
LAYERS = ["schemas", "infra", "projectors", "producers"]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module that ``name`` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node, less the bodies of ``if TYPE_CHECKING:`` (those imports never run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported(module: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            targets.update(name for name in submodules if name in MODULES)
            if any(name not in MODULES for name in submodules):
                targets.add(base)
    owners = {_owner(target) for target in targets}
    return {owner for owner in owners if owner is not None and owner != module}


GRAPH = {module: _imported(module, path) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_point_one_way_between_layers() -> None:
    wrong = [f"{module} imports {target}" for module, targets in GRAPH.items() for target in targets
             if LAYERS.index(target.split(".")[0]) > LAYERS.index(module.split(".")[0])]
    assert wrong == []


def test_no_module_imports_itself_back() -> None:
    assert _cycles(GRAPH) == []


def _packages_with_all() -> list[str]:
    return sorted(module for module, path in MODULES.items() if path.name == "__init__.py"
                  and "__all__" in path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("package", _packages_with_all())
def test_all_says_what_the_package_exports(package: str) -> None:
    """Every name in ``__all__`` exists, and every public name the package takes from its submodules is in it."""
    loaded = importlib.import_module(package)
    declared = set(loaded.__all__)
    assert [name for name in sorted(declared) if not hasattr(loaded, name)] == []
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    # Names taken from the package's own submodules (not the submodules themselves) are there for others.
    reexported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                  and (node.level or (node.module or "").startswith(f"{package}.")) for alias in node.names
                  if f"{node.module}.{alias.name}" not in MODULES and f"{package}.{alias.name}" not in MODULES}
    assert sorted(name for name in reexported if not name.startswith("_") and name not in declared) == []


#: The surfaces over the command side. What they share (tool handlers, registry, LLM client) lives below them.
SURFACES = ("producers.http", "producers.mcp", "producers.cli")
#: Edges between surfaces that are wiring, not sharing: the ``ai-memory mcp`` verb starts the MCP stdio server.
SURFACE_WIRING = {("producers.cli.mcp_verb", "producers.mcp")}


def _surface(module: str) -> str | None:
    return next((s for s in SURFACES if module == s or module.startswith(f"{s}.")), None)


def test_surfaces_do_not_import_each_other() -> None:
    crossing = {(module, target) for module, targets in GRAPH.items() for target in targets
                if _surface(module) and _surface(target) and _surface(module) != _surface(target)}
    assert sorted(crossing - SURFACE_WIRING) == []
