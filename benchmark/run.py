"""Thin Hydra entry: compose the config, skip finished work, call ``evaluate``.

Secrets in the config or on the command line (``+logger.api_key=...``) never reach a file or a log:
the config passed on is scrubbed, the files Hydra wrote for the job are rewritten without them, and
the log handlers mask them (``benchmark.runs.redact``).
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from benchmark.config import register_configs
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.runs import redact

log = logging.getLogger("benchmark")
register_configs()
if not OmegaConf.has_resolver("shard_suffix"):
    OmegaConf.register_new_resolver("shard_suffix", lambda n, i: f"/shard-{i}-of-{n}" if int(n) > 1 else "")


def use_cache_dir(config: dict) -> None:
    """Make ``paths.cache`` the cache of the whole job: the toy models, the generated data and the
    occlusion cache are found through ``$BENCHMARK_CACHE`` (``benchmark.paths``), which loader workers
    inherit too. The value is set exactly as configured (not made absolute): ``paths.cache`` defaults
    to that variable, so the next job of a multirun in this process composes the same config (and
    config hash) as the first."""
    cache = (config.get("paths") or {}).get("cache")
    if cache:
        os.environ["BENCHMARK_CACHE"] = str(cache)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    secrets = redact.secret_values(config, sys.argv[1:])
    redact.remember(secrets)  # the log filters of conf/config.yaml mask them from now on
    config = redact.public_config(config, secrets)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        redact.scrub_hydra_outputs(HydraConfig.get(), secrets)
    use_cache_dir(config)
    if int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0:
        config["force"] = False  # a requeued job resumes its parts instead of wiping them again
    from benchmark.tracking import tracked

    with tracked(config) as tracker:
        try:
            summary = evaluate(config)
        except Exception:
            log.exception("run failed: %s", config["experiment_name"])  # the traceback reaches run.log too
            raise
        tracker.log_summary(summary)
    if summary.get("skipped"):
        log.info("already finished (force=true to redo): %s", summary.get("run_dir"))
    elif summary.get("status") == "not_applicable":
        log.info("not applicable: %s", summary.get("reason"))


if __name__ == "__main__":
    redact.guard_stderr()
    main()
