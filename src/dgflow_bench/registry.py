"""The one way to find an implementation by name. Each axis of the benchmark (datasets, model families,
network architectures, checkpoint sources, refinement methods, suites) has a ``Registry``; an implementation
registers itself in its own module, with the registry's ``register`` as a decorator or a call::

    @METHODS.register("dgflow")
    @dataclass(frozen=True)
    class DGflowParams(MethodParams): ...

``catalog.py`` imports the modules that register the built-in entries; a test or a user's module registers
more the same way, and nothing else needs an edit. Entries are light declarations (no torch at import):
the Snakefile reads them on every plan, and the heavy code behind an entry is imported when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, axis: str):
        self.axis = axis
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None):
        """``register(name, entry)`` adds ``entry``; ``register(name)`` is a decorator that adds what it
        decorates. A name is registered once: a second entry under it is a mistake, never an override."""

        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise ValueError(f"{self.axis} {name!r} is registered twice")
            self._entries[name] = item
            return item

        return add if entry is None else add(entry)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy entry clean up with this)."""
        self._entries.pop(name, None)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.axis} {name!r}; registered: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self):
        return self._entries.items()

    def names(self) -> list[str]:
        return sorted(self._entries)


@dataclass(frozen=True)
class DeclaredKind:
    """A kind of entry a config block declares: ``schema`` (JSON schema of the block, with its ``kind``),
    ``build(name, block) -> entry`` (light: it reads no file; a DatasetEntry for DATASET_KINDS, a model family
    for MODEL_KINDS) and a one-line ``description`` for the docs."""

    schema: dict
    build: Callable[[str, dict], Any]
    description: str


# The axes. Entries: suites.Suite, data: DatasetEntry (suites/base.py), training.family.ModelFamily, a
# network class's ``from_spec`` (models/*), suites.base.Source, refine.method_params.MethodParams subclasses.
SUITES: Registry = Registry("suite")
DATASETS: Registry = Registry("dataset")
MODELS: Registry = Registry("model")
ARCHITECTURES: Registry = Registry("network architecture")
SOURCES: Registry = Registry("model source")
METHODS: Registry = Registry("refinement method kind")
# Kinds of entries a config declares itself: a ``datasets.<name>`` or ``models.<name>`` block with ``kind:``
# (e.g. an image folder, a model built by the user's own function) becomes a DATASETS / MODELS entry under that
# name (catalog.declare). Entries: registry.DeclaredKind.
DATASET_KINDS: Registry = Registry("dataset kind")
MODEL_KINDS: Registry = Registry("model kind")
