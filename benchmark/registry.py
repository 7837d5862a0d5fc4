"""A small name -> factory registry; unknown or duplicate names are errors that list what exists.

Each entry declares its options (the ``method.options`` / ``metric.options`` of a config): the keyword
parameters with defaults (or keyword-only) of the factory, or of the callable given as ``options=`` when
the factory passes ``**options`` on (a class constructor). A signature that still ends in ``**kwargs``
accepts further keys, which the callee checks itself (the library adapters check the library's keywords).
``import_submodules`` imports every public module of a package, so their ``register`` calls run.

Each entry also declares a ``version`` (``register(name, version=2)``, default 1), bumped whenever the
entry's output changes for the same inputs; it is part of a run's identity (``benchmark.runs.inputs``),
which reads it from the source with ``declared_versions`` so that no registry must be imported for it.
"""

from __future__ import annotations

import ast
import difflib
import math
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any, Callable, Iterator


class UnknownEntryError(KeyError):
    """A name no entry is registered under; the message lists the close and the known names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class OptionError(TypeError, ValueError):
    """An option a registered entry does not declare; the message names it and lists the accepted ones."""


def declared_options(source: Callable[..., Any], bound: tuple[str, ...] = ()) -> tuple[tuple[str, ...], bool]:
    """``(option names, open)`` of a callable: keyword parameters with a default or keyword-only, in
    signature order, without the ``bound`` ones the caller always passes; ``open`` when it takes ``**kwargs``."""
    params = inspect.signature(source).parameters.values()
    names = tuple(p.name for p in params if p.name not in bound and (
        p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


class Registry:
    """Maps names to factories. ``@REG.register("name")`` adds one; ``REG.get(name)`` finds it.

    ``bound``: parameters every factory receives from the caller (a method's ``model, info, layer``),
    which are therefore not options.
    """

    def __init__(self, kind: str, bound: tuple[str, ...] = ()):
        self.kind, self.bound = kind, bound
        self._items: dict[str, Callable[..., Any]] = {}
        self._options: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._versions: dict[str, int] = {}

    def register(self, name: str, obj: Callable[..., Any] | None = None, *, options: Callable[..., Any] | None = None,
                 version: int = 1):
        """Register ``obj`` under ``name`` (usable as a decorator when ``obj`` is omitted); its options are
        the signature's (``declared_options``), plus those of ``options`` when ``obj`` passes ``**kwargs`` to it.
        ``version``: bump it when the entry's output changes (a literal, read from the source by ``declared_versions``)."""

        def add(target: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            names, more = declared_options(target, self.bound)
            if options is not None and more:
                extra, more = declared_options(options, self.bound)
                names += tuple(n for n in extra if n not in names)
            self._items[name] = target
            self._options[name] = (names, more)
            self._versions[name] = int(version)
            return target

        return add if obj is None else add(obj)

    def get(self, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name``; the error lists close and all names."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownEntryError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def options(self, name: str) -> tuple[tuple[str, ...], bool]:
        """``(declared option names, open)`` of entry ``name`` (``open``: further keys go to the callee)."""
        self.get(name)
        return self._options[name]

    def check_options(self, name: str, given, field: str | None = None) -> None:
        """Raise ``OptionError`` for a key of ``given`` that entry ``name`` does not declare (unless it is open)."""
        names, more = self.options(name)
        unknown = [key for key in given if key not in names]
        if not unknown or more:
            return
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f"config field '{field}' of {self.kind} {name!r}" if field else f"{self.kind} {name!r}"
        raise OptionError(f"{where}: unknown option(s) {', '.join(map(repr, unknown))}{hint}; expected options: "
                          f"{', '.join(names) if names else f'none (the {self.kind} takes no options)'}")

    def version(self, name: str) -> int:
        """The declared ``version`` of entry ``name``."""
        self.get(name)
        return self._versions[name]

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


def declared_versions(files) -> dict[str, int]:
    """``{name: version}`` of every ``<registry>.register("name", ..., version=N)`` call with a literal name
    and version in the given source files (read, not imported); entries without ``version=`` are left out (1)."""
    found: dict[str, int] = {}
    for path in files:
        text = Path(path).read_text(errors="replace")
        if "version" not in text or "register" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                for kw in node.keywords:
                    if kw.arg == "version" and isinstance(kw.value, ast.Constant):
                        found[node.args[0].value] = int(kw.value.value)
    return found


class OptionRangeError(OptionError):
    """An option value outside its range (or not a finite number); the message names both. Checked when
    the entry is built (``in_range``), so ``threshold=-1`` or ``topk=0`` stops a run before any image is read."""


def in_range(metric: str, option: str, value, low: float | None = None, high: float | None = None, *,
             low_open: bool = False, high_open: bool = False, integer: bool = False):
    """``value`` as ``int``/``float`` when it is a finite number with ``low (<|<=) value (<|<=) high``."""
    lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
    hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
    expected = f"expected {'an integer' if integer else 'a number'} {lo}{option}{hi}".replace("  ", " ")
    try:
        number = float(value)
        ok = not isinstance(value, bool) and math.isfinite(number) and (not integer or number == int(number))
    except (TypeError, ValueError):
        ok = False
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        raise OptionRangeError(f"config field 'metric.options.{option}' of metric {metric!r} is {value!r}; {expected}")
    return int(number) if integer else number
