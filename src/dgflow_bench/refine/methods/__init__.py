"""One module per refinement method kind: its parameters (a ``MethodParams`` subclass registered with
``@method``), its algorithm, its paper-table column, its step-size name and what the comparison with the
authors' settings needs. catalog.py imports every module here, as it imports every suite; a user's method is
a module of the same shape named in the config's ``extensions``."""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def register_builtin() -> None:
    """Import every module of this package once: each registers its method kind in registry.METHODS."""
    for name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{name}")
