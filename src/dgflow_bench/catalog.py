"""The built-in entries of every registry: importing this module imports the modules that register them
(registry.py explains the mechanism). Everything imported here is light (no torch), so the Snakefile can
plan without loading the numerical code. Re-exports the registries for convenience."""

from __future__ import annotations

from .refine import params as _methods  # noqa: F401  (registers base, dgflow, dot, ddls)
from .registry import DATASETS, METHODS, MODELS, SOURCES, SUITES  # noqa: F401
from .suites import images as _images, sources as _sources, text as _text, toy2d as _toy2d  # noqa: F401
