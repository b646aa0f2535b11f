"""Imports run one way, down the layers: foundation (with the registries) -> data -> models -> training ->
refine -> metrics -> report -> settings (the authors' settings) -> suites -> plan (catalog, config,
provenance, preflight) -> stages -> cli. Every import counts, also the
ones inside functions, found by walking the package's syntax trees."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dgflow_bench"
FOUNDATION = {"io", "errors", "progress", "imaging", "runtime", "snapshots", "registry", "layout", "resolve", "__init__"}
PLAN = {"catalog", "config", "provenance", "preflight", "stage_table"}
ORDER = ["foundation", "data", "models", "training", "refine", "metrics", "report", "settings", "suites", "plan", "stages",
         "cli"]


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


def imports(module: str, is_package: bool, source: str) -> set[str]:
    """Absolute names of every module ``source`` (the text of ``module``) imports."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
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
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        bad |= upward(module, imports(module, path.name == "__init__.py", path.read_text()))
    return bad


def test_imports_run_down_the_layers():
    assert upward_imports() == set()


def test_the_check_sees_an_upward_import_even_inside_a_function():
    source = "from ..io import savez\n\ndef f():\n    from ..metrics.protocols import PROTOCOLS\n"
    found = imports("dgflow_bench.data.images", False, source)
    assert found == {"dgflow_bench.io", "dgflow_bench.metrics.protocols"}
    assert upward("dgflow_bench.data.images", found) == {("dgflow_bench.data.images", "dgflow_bench.metrics.protocols")}
    assert upward("dgflow_bench.stages.refine", {"dgflow_bench.refine.common", "dgflow_bench.io"}) == set()
