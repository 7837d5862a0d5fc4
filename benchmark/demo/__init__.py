"""``python -m benchmark.demo``: the demo's experiments, each swept only when some job is unfinished.

``make demo`` runs it once the embedded data and the toy models exist. For every experiment it
composes each job of the sweep (the composition ``python -m benchmark -m experiment=NAME`` makes)
and asks the run store whether that job finished with the same configuration hash. An experiment
whose jobs all finished is reported and not launched again (a repeated ``make demo`` costs one
process instead of one per experiment); otherwise the whole sweep is launched, and the sweep itself
skips the jobs that finished. Extra arguments are Hydra overrides passed to every experiment.
"""

from __future__ import annotations

import subprocess
import sys

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (registers the config schemas and the run_path resolver)
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import job_state

EXPERIMENTS = ("demo", "demo_grabcut", "demo_ablations", "demo_ablations_minmax", "demo_cam_protocol", "demo_layers",
               "demo_pointing", "demo_pointing_torchray", "demo_pointing_modified", "demo_occlusion", "demo_faithfulness", "demo_sanity")


def sweep_jobs(experiment: str, overrides: list[str]) -> list[list[str]]:
    """Every job's override list, as Hydra's basic sweeper expands them: the experiment's
    ``hydra.sweeper.params`` first, so a value given in ``overrides`` for the same key wins."""
    cfg = compose("config", overrides=[f"experiment={experiment}", *overrides], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {}, resolve=False)
    arguments = [f"{k}={v}" for k, v in params.items()] + [f"experiment={experiment}", *overrides]
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)
    return [list(job) for job in jobs]


def unfinished(experiment: str, overrides: list[str]) -> list[str]:
    """Run folders of the experiment's jobs that did not finish with their current configuration."""
    todo = []
    for job in sweep_jobs(experiment, overrides):
        config = OmegaConf.to_container(compose("config", overrides=job), resolve=True)
        run_dir, _, done = job_state(config)
        if done is None:
            todo.append(str(run_dir))
    return todo


def main(argv: list[str] | None = None) -> int:
    overrides = list(sys.argv[1:] if argv is None else argv)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        plans = {name: unfinished(name, overrides) for name in EXPERIMENTS}
    return run_plans(plans, overrides)


def run_plans(plans: dict[str, list[str]], overrides: list[str]) -> int:
    """Launch each experiment that has unfinished jobs (``{experiment: unfinished run folders}``); the
    first failing sweep's exit code, else 0."""
    for name, todo in plans.items():
        if not todo:
            print(f"{name}: every job finished with this configuration (force=true to redo)")
            continue
        print(f"{name}: {len(todo)} job(s) to run")
        code = subprocess.call([sys.executable, "-m", "benchmark", "-m", f"experiment={name}", *overrides])
        if code:
            return code
    return 0

