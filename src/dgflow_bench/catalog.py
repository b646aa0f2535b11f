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
import pkgutil

import os

from . import suites
from .refine.methods import register_builtin
from .registry import DATASETS, METHODS, MODELS, SOURCES, SUITES  # noqa: F401

# the config's `extensions`, comma-separated, for the jobs (the Snakefile sets it from the validated config)
EXTENSIONS_VARIABLE = "DGFLOW_BENCH_EXTENSIONS"

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


load_extensions([m for m in os.environ.get(EXTENSIONS_VARIABLE, "").split(",") if m])
