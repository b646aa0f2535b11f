"""The built-in entries of every registry (registry.py explains the mechanism): importing this module imports
the method parameters (refine/params.py) and every module of the ``suites`` package, each of which registers
its suite with its datasets, models and sources. A new suite is a new module there; nothing here changes.

Everything imported here is light (no torch), so the Snakefile plans without loading the numerical code.
Re-exports the registries for convenience."""

from __future__ import annotations

import importlib
import pkgutil

from . import suites
from .refine import params as _methods  # noqa: F401  (registers base, dgflow, dot, ddls)
from .registry import DATASETS, METHODS, MODELS, SOURCES, SUITES  # noqa: F401

for _module in sorted(m.name for m in pkgutil.iter_modules(suites.__path__)):
    importlib.import_module(f"{suites.__name__}.{_module}")
