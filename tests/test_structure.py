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


# -- one style of HTTP route module ---------------------------------------------------------------------------

HTTP = ROOT / "producers" / "http"
#: The one module that builds a Route without being a route module: it assembles the tables and mounts MCP.
HTTP_ASSEMBLY = "app.py"


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == name]


def _handler_name(endpoint: ast.expr) -> str | None:
    """The method a route's endpoint names, through ``api.endpoint(...)`` and ``partial(...)`` wrappers."""
    while isinstance(endpoint, ast.Call) and endpoint.args:
        endpoint = endpoint.args[0]
    return endpoint.attr if isinstance(endpoint, ast.Attribute) else None


def _nested_handlers(tree: ast.Module) -> list[str]:
    """Functions defined inside functions that take a ``request``: handler closures."""
    found = []
    for outer in ast.walk(tree):
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(outer):
                if inner is not outer and isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) \
                        and "request" in {a.arg for a in inner.args.args}:
                    found.append(f"{inner.name} inside {outer.name}")
    return found


def route_style_faults(source: str) -> list[str]:
    """How a module that builds routes departs from the one style: one ``<Domain>Routes`` class whose
    ``__init__`` takes the ``ApiContext`` and whose methods are the handlers, then one module-level
    ``routes(api: ApiContext) -> list[Route]`` table, last in the module, with no functions inside it."""
    tree = ast.parse(source)
    faults = [f"handler closure {name}" for name in _nested_handlers(tree)]
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Routes")]
    if len(classes) != 1:
        return [*faults, f"{len(classes)} classes named <Domain>Routes, not one"]
    methods = {n.name: n for n in classes[0].body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    init = methods.get("__init__")
    if init is None or len(init.args.args) != 2 or ast.unparse(init.args.args[1].annotation or ast.Constant(None)) \
            != "ApiContext":
        faults.append(f"{classes[0].name}.__init__ does not take (self, api: ApiContext)")
    last = tree.body[-1]
    if not (isinstance(last, ast.FunctionDef) and last.name == "routes"):
        return [*faults, "no module-level routes() last in the module"]
    signature = f"({ast.unparse(last.args)}) -> {ast.unparse(last.returns or ast.Constant(None))}"
    if signature != "(api: ApiContext) -> list[Route]":
        faults.append(f"routes{signature} is not routes(api: ApiContext) -> list[Route]")
    faults += [f"function {getattr(n, 'name', 'lambda')} inside routes()" for n in ast.walk(last)
               if n is not last and isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
    for call in _calls(last, "Route"):
        endpoint = call.args[1] if len(call.args) > 1 else None
        name = _handler_name(endpoint) if endpoint is not None else None
        if name not in methods:
            faults.append(f"the route {ast.unparse(call.args[0])} is not served by a method of {classes[0].name}")
    return faults


def _route_modules() -> list[str]:
    return sorted(path.name for path in HTTP.glob("*.py") if path.name != HTTP_ASSEMBLY
                  and _calls(ast.parse(path.read_text(encoding="utf-8")), "Route"))


def test_the_route_style_check_finds_a_closure() -> None:
    closures = ("from starlette.routing import Route\n"
                "def routes(api: ApiContext) -> list[Route]:\n"
                "    async def get(request): ...\n"
                "    return [Route('/x', api.endpoint(get))]\n")
    assert route_style_faults(closures) == ["handler closure get inside routes",
                                            "0 classes named <Domain>Routes, not one"]
    one_style = ("class XRoutes:\n"
                 "    def __init__(self, api: ApiContext) -> None: ...\n"
                 "    async def get(self, request: Request) -> Response: ...\n"
                 "def routes(api: ApiContext) -> list[Route]:\n"
                 "    x, e = XRoutes(api), api.endpoint\n"
                 "    return [Route('/x', e(x.get)), Route('/y', e(partial(x.get, 1)))]\n")
    assert route_style_faults(one_style) == []
    assert route_style_faults(one_style.replace("e(x.get))", "e(x.put))")) == [
        "the route '/x' is not served by a method of XRoutes"]
    assert route_style_faults(one_style + "HELPER = 1\n") == ["no module-level routes() last in the module"]


@pytest.mark.parametrize("module", _route_modules())
def test_http_route_modules_share_one_style(module: str) -> None:
    assert route_style_faults((HTTP / module).read_text(encoding="utf-8")) == []


def test_the_app_assembles_every_route_module() -> None:
    from producers.http.app import DOMAIN_ROUTES

    assert sorted(f"{m.__name__.rpartition('.')[2]}.py" for m in DOMAIN_ROUTES) == _route_modules()
