"""Thin Hydra entry: compose the config, skip finished work, call ``evaluate``.

Secrets in the config or on the command line (``+logger.api_key=...``) never reach a file or a log:
the config passed on is scrubbed, the files Hydra wrote for the job are rewritten without them, and
the log handlers mask them (``benchmark.runs.redact``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.runs import hydra_files, redact
from benchmark.runs.identity import register_hydra, run_dir_for
from benchmark.runs.store import RunFolderBusy, RunStore

log = logging.getLogger("benchmark")
register_hydra()  # the config schema and the run_path resolver of conf/config.yaml
hydra_files.install()  # Hydra's .hydra/*.yaml written atomically; a full disk names the file


def use_cache_dir(config: dict) -> None:
    """Make ``paths.cache`` the cache of the whole job: the toy models, the generated data and the
    occlusion cache are found through ``$BENCHMARK_CACHE`` (``benchmark.paths``), which loader workers
    inherit too. The value is set exactly as configured (not made absolute): ``paths.cache`` defaults
    to that variable, so the next job of a multirun in this process composes the same config (and
    config hash) as the first."""
    cache = (config.get("paths") or {}).get("cache")
    if cache:
        os.environ["BENCHMARK_CACHE"] = str(cache)


def discard_failed(job_dir: Path, config: dict) -> None:
    """After a failed job: remove its run folder when no result was written there (Hydra's ``.hydra/``
    and ``run.log``, the lock and marker of a run that never wrote a record), and the folders above
    it left empty, so a failed run leaves no folder behind. A folder with record parts (a resumable
    run), records or a summary is kept, and so is one another process is writing (its lock is held)
    or one that is not this configuration's run folder (``hydra.run.dir`` set elsewhere)."""
    runs_root = Path(config["paths"]["results"]) / "runs"
    if not job_dir.is_dir() or job_dir.resolve() != run_dir_for(config).resolve():
        return
    try:
        with RunStore(job_dir).lock() as store:
            if store.holds_results():
                return
            shutil.rmtree(job_dir)
    except RunFolderBusy:
        return
    for parent in job_dir.parents:
        if parent.resolve() == runs_root.resolve() or runs_root.resolve() not in parent.resolve().parents:
            break
        try:
            parent.rmdir()  # only an empty folder
        except OSError:
            break


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    secrets = redact.secret_values(config, sys.argv[1:])
    redact.remember(secrets)  # the log filters of conf/config.yaml mask them from now on
    config = redact.public_config(config, secrets)
    if HydraConfig.initialized():
        redact.scrub_hydra_outputs(HydraConfig.get(), secrets)
        hydra_files.keep_sweep_config(HydraConfig.get())  # each sweep's multirun.yaml, not only the last
    use_cache_dir(config)
    if int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0:
        config["force"] = False  # a requeued job resumes its parts instead of wiping them again
    from benchmark.tracking import tracked

    try:  # tracking is entered inside: a failure there too leaves no empty run folder
        with tracked(config) as tracker:
            summary = evaluate(config)
            tracker.log_summary(summary)
    except Exception as err:
        if isinstance(err, RunFolderBusy):
            hydra_files.detach_run_log()  # that run.log is the other process's
        log.exception("run failed: %s", config["experiment_name"])  # the traceback reaches run.log too
        if HydraConfig.initialized():
            discard_failed(Path(HydraConfig.get().runtime.output_dir), config)
        raise
    hydra_files.check_run_log()  # a run.log the disk had no room for fails the job
    if summary.get("skipped"):
        log.info("already finished (force=true to redo): %s", summary.get("run_dir"))
    elif summary.get("status") == "not_applicable":
        log.info("not applicable: %s", summary.get("reason"))


if __name__ == "__main__":
    redact.guard_stderr()
    main()
