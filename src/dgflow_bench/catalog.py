"""The built-in entries of every registry (registry.py explains the mechanism): importing this module imports
every module of ``refine/methods`` (one method each) and of the ``suites`` package, each of which registers
its suite with its datasets, models and sources. A new method or suite is a new module there; nothing here
changes. A user's own modules (the config's ``extensions``) register more the same way: ``load_extensions``
imports them, at plan time (config.validate) and, through the environment variable EXTENSIONS_VARIABLE that
the Snakefile sets, in every job when this module is imported.

Everything imported here is light (no torch), so the Snakefile plans without loading the numerical code.
Re-exports the registries for convenience."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil

from . import suites
from .refine.methods import register_builtin
from .registry import DATASET_KINDS, DATASETS, METHODS, MODEL_KINDS, MODELS, SOURCES, SUITES  # noqa: F401

# the config's `extensions`, comma-separated, for the jobs (the Snakefile sets it from the validated config)
EXTENSIONS_VARIABLE = "DGFLOW_BENCH_EXTENSIONS"
# the config's declared datasets and models ({"datasets": {name: block}, "models": {...}}, JSON), for the jobs
DECLARED_VARIABLE = "DGFLOW_BENCH_DECLARED"
# axis of the config -> (the registry its blocks name, the kinds a block may declare)
_DECLARABLE = {"datasets": (DATASETS, DATASET_KINDS), "models": (MODELS, MODEL_KINDS)}
_declared: dict[tuple[str, str], dict] = {}  # (axis, name) -> the block its entry was built from

register_builtin()
for _module in sorted(m.name for m in pkgutil.iter_modules(suites.__path__)):
    importlib.import_module(f"{suites.__name__}.{_module}")


def load_extensions(modules) -> None:
    """Import a user's modules (importable names, e.g. on PYTHONPATH), each registering its own entries (a
    method: a module shaped as refine/methods/*.py; a dataset, a model: as in suites/*.py)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the extension itself imports something missing: that error says what
            raise ValueError(f"extensions: module {name!r} is not importable ({exc}); put the folder that holds "
                             "it on PYTHONPATH (also for the jobs), or fix the name in the config") from None


def declared_blocks(config: dict) -> dict:
    """The config's blocks that declare their own entry (a ``kind:`` key): {axis: {name: block}}."""
    return {axis: {name: block for name, block in (config.get(axis) or {}).items()
                   if isinstance(block, dict) and "kind" in block}
            for axis in _DECLARABLE}


def declare(config: dict) -> None:
    """Register the entries the config's blocks declare (``datasets.<name>: {kind: image-folder, ...}``), each
    under its block's name, built by its kind (registry.DATASET_KINDS / MODEL_KINDS). A name declared before
    is rebuilt from its new block (one process may plan several configs); a built-in name is never replaced."""
    for axis, blocks in declared_blocks(config).items():
        registry, kinds = _DECLARABLE[axis]
        for name, block in blocks.items():
            if (axis, name) not in _declared and name in registry:
                raise ValueError(f"{axis}.{name}: `kind: {block['kind']}` declares a new entry, but {name!r} is a "
                                 f"built-in {registry.axis}; give yours another name")
            if block["kind"] not in kinds:
                raise ValueError(f"{axis}.{name}.kind: unknown {kinds.axis} {block['kind']!r}; registered: "
                                 f"{', '.join(kinds.names()) or 'none'}")
            if _declared.get((axis, name)) == block:
                continue
            registry.unregister(name)
            registry.register(name, kinds[block["kind"]].build(name, block))
            _declared[(axis, name)] = json.loads(json.dumps(block))  # a copy: later edits of the config are new


load_extensions([m for m in os.environ.get(EXTENSIONS_VARIABLE, "").split(",") if m])
declare(json.loads(os.environ.get(DECLARED_VARIABLE) or "{}"))
