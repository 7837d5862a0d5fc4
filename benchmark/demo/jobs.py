"""An experiment's jobs as resolved configs, from one Hydra composition of the experiment.

``python -m benchmark -m experiment=NAME`` composes every job of the sweep through Hydra (a fraction
of a second each). Here the experiment is composed once (``compose`` with its ``hydra.sweeper.params``),
the sweep is expanded by Hydra's own ``BasicSweeper.split_arguments``, and each job's config is
assembled from the composed one exactly as Hydra's composition orders it:

1. every config-group choice of the job (``model=toy_gap``, ``method=cam``) replaces that group's node
   with the group's schema (``benchmark.config``), merged with ``conf/<group>/<option>.yaml``, then with
   the experiment file's node for that group (the experiment comes last in ``conf/config.yaml``);
2. the job's value overrides (``method.layer=...``, ``dataset.limit=6``, ``+key=...``) are applied in
   order by Hydra's own override code.

A job this cannot assemble exactly (a group option that is not a plain YAML file, e.g. a plugin's, or
one with its own defaults list, or a ``group@package`` override) is composed through Hydra instead.
``tests/test_demo_runner.py`` checks the assembled configs against Hydra's composition.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from hydra import compose
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from benchmark.config import base_config
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import job_state, register_hydra


@dataclass
class Job:
    """One job of a sweep: its overrides, its resolved config, its run folder, and whether it finished."""

    overrides: list[str]
    config: dict
    run_dir: Path
    finished: bool


def sweep_jobs(experiment: str, overrides: list[str], composed: DictConfig | None = None) -> list[list[str]]:
    """Every job's override list, as Hydra's basic sweeper expands them: the experiment's
    ``hydra.sweeper.params`` first, so a value given in ``overrides`` for the same key wins
    (``composed``: ``_compose_experiment`` of the same arguments, when already made)."""
    cfg = composed if composed is not None else _compose_experiment(experiment, overrides)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {}, resolve=False)
    arguments = [f"{k}={v}" for k, v in params.items()] + [f"experiment={experiment}", *overrides]
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)
    return [list(job) for job in jobs]


def _compose_experiment(experiment: str, overrides: list[str]) -> DictConfig:
    """The experiment composed with the group choices and Hydra settings of ``overrides``; their value
    overrides are left out (each job applies them, in its own order)."""
    register_hydra()
    kept = [o.input_line for o in OverridesParser.create().parse_overrides(overrides)
            if o.is_hydra_override() or o.package is not None or "/" in o.key_or_group or _is_group(o.key_or_group)]
    return compose("config", overrides=[f"experiment={experiment}", *kept], return_hydra_config=True)


@functools.lru_cache(maxsize=256)
def _yaml(path: Path) -> DictConfig | None:
    return OmegaConf.load(path) if path.is_file() else None


def _is_group(key: str) -> bool:
    return "/" not in key and (CONF_DIR / key).is_dir()


def assemble(composed: DictConfig, experiment: str, job: list[str]) -> dict | None:
    """The resolved config of one job of ``experiment`` (``composed``: ``_compose_experiment`` of the same
    command-line overrides); None where it must be composed through Hydra (see the module docstring)."""
    cfg = OmegaConf.masked_copy(composed, [k for k in composed if k != "hydra"])
    exp = _yaml(CONF_DIR / "experiment" / f"{experiment}.yaml")
    schema = base_config()
    values = []
    for override in OverridesParser.create().parse_overrides(job):
        key = override.key_or_group
        if override.is_hydra_override() or key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue  # Hydra's own settings: not part of the job's config
        if override.package is not None or "/" in key:
            return None
        if not _is_group(key):
            values.append(override)
            continue
        if key == "experiment":
            if override.value() != experiment:
                return None
            continue
        node = _yaml(CONF_DIR / key / f"{override.value()}.yaml")
        if node is None or "defaults" in node or key not in schema:
            return None  # a ConfigStore entry (a plugin's option) or a file with its own defaults
        merged = OmegaConf.merge(schema[key], node, (exp or {}).get(key) or {})
        with open_dict(cfg):
            cfg[key] = merged
    OmegaConf.set_struct(cfg, True)
    for key in ("method.options", "metric.options"):  # open to new keys, as base_config leaves them
        OmegaConf.set_struct(OmegaConf.select(cfg, key), False)
    ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def expand(experiment: str, overrides: list[str]) -> list[Job]:
    """Every job of the experiment's sweep with its resolved config and run state (``job_state``).

    Needs an initialized Hydra (``hydra.initialize_config_dir(CONF_DIR)``)."""
    composed = _compose_experiment(experiment, overrides)
    jobs = []
    for job in sweep_jobs(experiment, overrides, composed):
        config = assemble(composed, experiment, job)
        if config is None:
            config = OmegaConf.to_container(compose("config", overrides=job), resolve=True)
        run_dir, _, done = job_state(config)
        jobs.append(Job(job, config, run_dir, done is not None))
    return jobs


def unfinished(experiment: str, overrides: list[str]) -> list[str]:
    """Run folders of the experiment's jobs that did not finish with their current configuration."""
    return [str(job.run_dir) for job in expand(experiment, overrides) if not job.finished]
