"""A small name -> factory registry; unknown or duplicate names are errors that list what exists.

``import_submodules`` imports every public module of a package, so their ``register`` calls run.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any, Callable, Iterator


class Registry:
    """Maps names to factories. ``@REG.register("name")`` adds one; ``REG.get(name)`` finds it."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, obj: Callable[..., Any] | None = None):
        """Register ``obj`` under ``name`` (usable as a decorator when ``obj`` is omitted)."""

        def add(target: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = target
            return target

        return add if obj is None else add(obj)

    def get(self, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name``; the error lists close and all names."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_submodules(package_name: str) -> None:
    """Import every public module of a package once, so that each registers its entries."""
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
