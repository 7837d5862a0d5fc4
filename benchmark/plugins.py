"""Plugins: the user's own modules that register methods, metrics and models, loaded by name.

``plugins=[mypkg.explainers]`` on the command line (a field of the config schema) names modules to
import before any registry is read; their ``@METHODS.register(...)`` / ``METRICS.register(...)`` /
``@MODELS.register(...)`` calls then add entries exactly as the package's own modules do, with their
options declared by their signatures (``benchmark.registry``). An entry a plugin adds without a YAML
file in ``conf/`` gets a config group entry holding only its name, so ``method=<name>`` (``metric=``,
``model=``) selects it like a shipped one.

Where the import happens: ``python -m benchmark`` imports the plugins named on its command line
before Hydra composes the config (the group entries must exist by then, and Hydra hands its config
store to every multirun job, Slurm's included); ``evaluate`` imports the config's ``plugins`` again
before it reads a registry, in every job (a Slurm or submitit job is a fresh process whose registries
start empty) and for the Python API. Importing is idempotent.
"""

from __future__ import annotations

import importlib
from typing import Iterable

from hydra.core.config_store import ConfigStore

from benchmark.methods import METHODS
from benchmark.metrics import METRICS
from benchmark.models import MODELS
from benchmark.models.base import CONF_DIR
from benchmark.names import check_name

GROUPS = {"method": METHODS, "metric": METRICS, "model": MODELS}
_shipped = {group: set(registry.names()) for group, registry in GROUPS.items()}
_loaded: list[str] = []


class PluginError(ImportError):
    """A plugin module that cannot be imported; the message names it and the exception."""


def load_plugins(modules: Iterable[str] | None) -> list[str]:
    """Import each named module once and give its new entries config group entries; returns the new ones."""
    if isinstance(modules, str):
        modules = [modules]
    new = []
    for name in modules or ():
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001  (any failure of the user's module is reported the same way)
            raise PluginError(f"config field 'plugins': module {name!r} could not be imported: "
                              f"{type(err).__name__}: {err} (is its folder on PYTHONPATH?)") from err
        _loaded.append(name)
        new.append(name)
    if new:
        store_group_entries()
    return new


def store_group_entries() -> None:
    """A config group entry ``<group>/<name>`` (``{name: <name>}``) for each entry that plugins added
    and that has no YAML file in ``conf/<group>/`` (a YAML file, when present, wins)."""
    store = ConfigStore.instance()
    for group, registry in GROUPS.items():
        for name in set(registry.names()) - _shipped[group]:
            check_name(name, f"the name of a {group} a plugin registered")  # it names run folders
            if not (CONF_DIR / group / f"{name}.yaml").is_file():
                store.store(group=group, name=name, node={"name": name})


def plugins_on_command_line(args: list[str]) -> list[str]:
    """The modules of a ``plugins=[...]`` (or ``++plugins=...``) override among Hydra's arguments."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[str] = []
    for arg in args:
        if arg.lstrip("+~").split("=", 1)[0] != "plugins" or "=" not in arg:
            continue
        value = OverridesParser.create().parse_override(arg).value()
        found += [str(v) for v in (value if isinstance(value, list) else [value])]
    return found
