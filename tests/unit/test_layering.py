"""Imports run one way, down the layers: foundation (with the registries) -> data -> models -> training ->
refine -> metrics -> report -> settings (the authors' settings) -> suites -> plan (catalog, config,
provenance, preflight) -> stages -> cli -> api (the Python API, an entry point as the CLI is). Every import
counts, also the ones inside functions, found by walking the package's syntax trees. Within a layer, and within
a package, no module imports itself back through others: the import graph has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dgflow_bench"
FOUNDATION = {"io", "errors", "progress", "image_kernels", "runtime", "snapshots", "registry", "layout", "resolve", "__init__"}
PLAN = {"catalog", "config", "provenance", "preflight", "stage_table"}
ORDER = ["foundation", "data", "models", "training", "refine", "metrics", "report", "settings", "suites", "plan", "stages",
         "cli", "api"]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dgflow_bench":
        return None
    top = parts[1] if len(parts) > 1 else "__init__"
    if top in FOUNDATION:
        return "foundation"
    if top in PLAN:
        return "plan"
    return top if top in ORDER else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(module: str, is_package: bool, source: str, modules: frozenset = frozenset()) -> set[str]:
    """Absolute names of every module ``source`` (the text of ``module``) imports; ``from pkg import name``
    counts as ``pkg.name`` where that is one of ``modules`` (a submodule, not an attribute)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def upward(module: str, targets: set[str]) -> set[tuple[str, str]]:
    mine = layer_of(module)
    assert mine is not None, f"{module} belongs to no layer: add it to the layer table above"
    return {(module, t) for t in targets
            if layer_of(t) is not None and ORDER.index(layer_of(t)) > ORDER.index(mine)}


def upward_imports() -> set[tuple[str, str]]:
    bad = set()
    known = frozenset(module_name(path) for path in PACKAGE.rglob("*.py"))  # `from . import x` counts as x
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        bad |= upward(module, imports(module, path.name == "__init__.py", path.read_text(), known))
    return bad


def import_graph() -> dict[str, set[str]]:
    """Every module of the package -> the modules of the package it imports."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = frozenset(paths)
    return {module: {t for t in imports(module, path.name == "__init__.py", path.read_text(), known)
                     if t in known and t != module}
            for module, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_imports_run_down_the_layers():
    assert upward_imports() == set()


def test_no_module_imports_itself_back():
    """A circle (once refine/params.py and the five algorithm modules: each imported the other lazily) means
    neither side can be read, tested or replaced alone."""
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_circle_inside_a_package_even_through_a_function():
    params = "from .dgflow import run\n\ndef f():\n    from .ddls import run_ddls\n"
    modules = frozenset({"dgflow_bench.refine.params", "dgflow_bench.refine.dgflow", "dgflow_bench.refine.ddls"})
    graph = {"dgflow_bench.refine.params": imports("dgflow_bench.refine.params", False, params, modules),
             "dgflow_bench.refine.dgflow": imports("dgflow_bench.refine.dgflow", False,
                                                   "from .params import DGflowParams\n", modules),
             "dgflow_bench.refine.ddls": imports("dgflow_bench.refine.ddls", False,
                                                 "def g():\n    from . import params\n", modules)}
    assert cycles(graph) == [sorted(modules)]
    graph["dgflow_bench.refine.ddls"] = set()
    assert cycles(graph) == [["dgflow_bench.refine.dgflow", "dgflow_bench.refine.params"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_check_sees_an_upward_import_even_inside_a_function():
    source = "from ..io import savez\n\ndef f():\n    from ..metrics.protocols import PROTOCOLS\n"
    found = imports("dgflow_bench.data.images", False, source)
    assert found == {"dgflow_bench.io", "dgflow_bench.metrics.protocols"}
    assert upward("dgflow_bench.data.images", found) == {("dgflow_bench.data.images", "dgflow_bench.metrics.protocols")}
    assert upward("dgflow_bench.stages.refine", {"dgflow_bench.refine.common", "dgflow_bench.io"}) == set()


def test_from_package_import_module_counts_as_that_module():
    # `from . import config` in a foundation module is an upward import of config, not of the package
    known = frozenset(module_name(path) for path in PACKAGE.rglob("*.py"))
    found = imports("dgflow_bench.layout", False, "from . import config as dg\n", known)
    assert ("dgflow_bench.layout", "dgflow_bench.config") in upward("dgflow_bench.layout", found)
