"""Errors a user can act on: one short block on the command line, the same exception types from Python.

``USER_ERRORS`` names (``module.Class``) the exception types whose message already says what is wrong,
where, what was expected and how to fix it: bad input, an unknown option or config choice, missing or
altered weights, a plugin that does not import, an unsafe name, a full disk. ``python -m benchmark``
prints such an error as one block (``format_error``) and exits with status 2; ``HYDRA_FULL_ERROR=1`` or
``verbose=true`` shows the traceback instead. Any other exception is a defect and keeps its traceback.
A module adds its own types with ``register`` (or a line in ``USER_ERRORS``); types are looked up in the
modules already imported, so nothing here imports them.

An error raised while Hydra composes the config (the ``run_path`` resolver, an unknown choice such as
``method=gradcam``) arrives wrapped in Hydra's or OmegaConf's exception; ``user_error`` finds the user
error in the chain of causes, and ``choice_error`` turns Hydra's "Could not find 'method/gradcam'" and
"Could not override 'bacth_size'" into a ``ConfigError`` with a did-you-mean and, for an unknown method,
metric or model, the hint that a plugin's entries need ``plugins=[module]``.
"""

from __future__ import annotations

import difflib
import re
import sys

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
USER_ERRORS = [
    "benchmark.errors.ConfigError", "benchmark.registry.OptionError", "benchmark.registry.UnknownEntryError", "benchmark.data.manifest.ManifestError",
    "benchmark.models.zoo.OfflineWeightsError", "benchmark.models.shipped.WeightsError",
    "benchmark.plugins.PluginError", "benchmark.names.UnsafeNameError", "benchmark.names.OutsideRootError",
    "benchmark.io.DiskFullError", "benchmark.runs.overlap.TrainingOverlapError", "benchmark.runs.store.RunFolderBusy",
    "benchmark.runs.merge.MergeError", "benchmark.methods.precomputed.PrecomputedMapError",
    "benchmark.report.cards.CardError", "benchmark.evaluate.NothingScoredError", "benchmark.types.NonFiniteLogits",
]
PLUGIN_GROUPS = ("method", "metric", "model")


class ConfigError(ValueError):
    """A config value or the inputs it names do not fit; the message names the field and what is expected."""


def register(*types: type) -> None:
    """Count these exception types as user errors (one block on the command line)."""
    for kind in types:
        name = f"{kind.__module__}.{kind.__qualname__}"
        if name not in USER_ERRORS:
            USER_ERRORS.append(name)


def user_error_types() -> tuple[type, ...]:
    """The ``USER_ERRORS`` types whose modules are imported (an error of another can not have been raised)."""
    found = []
    for dotted in USER_ERRORS:
        module, _, name = dotted.rpartition(".")
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type):
            found.append(kind)
    return tuple(found)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def user_error(exc: BaseException, keys=()) -> BaseException | None:
    """The user error ``exc`` is or wraps (Hydra's composition errors become ``ConfigError``; ``keys``: the
    config's dotted keys, for the did-you-mean of an unknown one), else ``None``."""
    types = user_error_types()
    for item in _chain(exc):
        if types and isinstance(item, types):
            return item
    for item in _chain(exc):
        converted = choice_error(item, keys)
        if converted is not None:
            return converted
    return None


def _known(group: str) -> list[str]:
    """The choices of a config group: the YAML files of ``conf/<group>`` and the entries in Hydra's store."""
    from pathlib import Path

    names = {p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / group).glob("*.yaml")}
    try:
        from hydra.core.config_store import ConfigStore

        names |= {n.removesuffix(".yaml") for n in ConfigStore.instance().list(group)}
    except Exception:  # noqa: BLE001  (no store entries for the group)
        pass
    return sorted(names)


def did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


def choice_error(exc: BaseException, keys=()) -> ConfigError | None:
    """A ``ConfigError`` for Hydra's unknown config choice or unknown key, else ``None``."""
    kinds = {c.__name__ for c in type(exc).__mro__}
    if "HydraException" not in kinds:
        return None
    text = str(exc)
    found = re.search(r"Could not find '([\w./-]+)/([^'/]+)'", text)
    if found:
        group, name = found.groups()
        known = _known(group)
        hint = (f" If {name!r} is a {group} of your own, name the module that registers it: "
                f"plugins=[your.module] (docs/own_model_data_method.md)." if group in PLUGIN_GROUPS else "")
        close = did_you_mean(name, known)
        listing = "" if close else f" Known {group}s: {', '.join(known)}"
        return ConfigError(f"{group}={name}: no such {group}.{close}{hint}{listing}")
    found = re.search(r"Could not override '([\w.]+)'", text) or re.search(r"Key '([\w.]+)' (?:is )?not in struct", text)
    if found:
        key = found.group(1)
        group, _, rest = key.partition(".")
        option = (f" An option of the {group} goes under {group}.options: {group}.options.{rest}=..."
                  if group in ("method", "metric") and rest and "." not in rest else "")
        return ConfigError(f"config key {key!r} does not exist.{did_you_mean(key, keys)}{option} "
                           f"(a new key needs a '+': +{key}=...)")
    return None


def format_error(exc: BaseException) -> str:
    """The one block a user error prints: its type and message, and how to see the traceback."""
    message = str(exc).strip() or type(exc).__name__
    return (f"error ({type(exc).__name__}): {message}\n"
            f"(HYDRA_FULL_ERROR=1 or verbose=true shows the traceback)")


def verbose(argv: list[str]) -> bool:
    """Whether the command line asks for tracebacks (``verbose=true``)."""
    return any(a.lstrip("+").lower() in ("verbose=true", "verbose=1", "verbose=yes") for a in argv)
