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

from benchmark import errors
from benchmark.paths import REPO_ROOT
from benchmark.runs import hydra_files, redact
from benchmark.runs.identity import register_hydra, run_dir_for

CONF_DIR = REPO_ROOT / "conf"  # benchmark.models.base.CONF_DIR, without importing torch

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
    from benchmark.runs.store import RunFolderBusy, RunStore

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
    from benchmark.evaluate import evaluate
    from benchmark.tracking import tracked

    try:  # tracking is entered inside: a failure there too leaves no empty run folder
        with tracked(config) as tracker:
            summary = evaluate(config, strict=False)  # Hydra checked the keys ('+key=...' adds one)
            tracker.log_summary(summary)
    except BaseException as err:
        from benchmark.runs.store import RunFolderBusy

        if isinstance(err, RunFolderBusy):
            hydra_files.detach_run_log()  # that run.log is the other process's
        _log_failure(err, config)
        if HydraConfig.initialized():
            discard_failed(Path(HydraConfig.get().runtime.output_dir), config)
        raise
    hydra_files.check_run_log()  # a run.log the disk had no room for fails the job
    if summary.get("skipped"):
        log.info("already finished (force=true to redo): %s", summary.get("run_dir"))
    elif summary.get("status") == "not_applicable":
        log.info("not applicable: %s", summary.get("reason"))


_CLI_PRINTS_USER_ERRORS = False  # set by ``cli``: a job launched by submitit (Slurm) has no ``cli`` around it


def _log_failure(err: BaseException, config: dict) -> None:
    """A defect's traceback reaches run.log (and the console); a user error or an interrupt is one block,
    printed once by ``cli``, with the traceback only under ``verbose=true``. In a job that ``cli`` does not
    wrap (a Slurm task), a user error is logged as that block, so the task's log says why it failed."""
    if isinstance(err, KeyboardInterrupt):
        return
    found = errors.user_error(err)
    if found is not None and not config.get("verbose"):
        if _CLI_PRINTS_USER_ERRORS:
            log.debug("run failed: %s", config["experiment_name"], exc_info=True)
        else:
            log.error("run failed: %s\n%s", config["experiment_name"], errors.format_error(found))
    else:
        log.exception("run failed: %s", config["experiment_name"])  # the traceback reaches run.log too


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def cli(argv: list[str] | None = None) -> int:
    """``python -m benchmark``: run Hydra's app; a user error prints one block (exit status 2), an interrupt
    one line (exit status 130); ``HYDRA_FULL_ERROR=1`` or ``verbose=true`` shows tracebacks instead."""
    import signal

    global _CLI_PRINTS_USER_ERRORS
    argv = sys.argv[1:] if argv is None else argv
    _CLI_PRINTS_USER_ERRORS = True
    full = os.environ.get("HYDRA_FULL_ERROR") == "1" or errors.verbose(argv)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises; what is shown is decided here
    refusal = sweep_refusal(argv)
    if refusal:
        print(errors.format_error(refusal), file=sys.stderr)
        return errors.EXIT_USER_ERROR
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_interrupt)  # a scheduler's SIGTERM stops like Ctrl-C
    held = _HeldJobError(sys.stderr)
    sys.stderr = held  # Hydra's "Error executing job with overrides" line waits for the verdict below
    try:
        main()
    except KeyboardInterrupt as err:
        sys.stderr = held.stream
        if full:
            held.release()
            raise
        text = str(err) if err.__class__.__name__ == "Interrupted" else "interrupted; rerun the same command to resume"
        print(text, file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001  (a user error becomes one block; anything else keeps its traceback)
        from benchmark.config import schema_keys

        sys.stderr = held.stream
        found = errors.user_error(err, schema_keys())
        if found is None or full:
            held.release()
            raise
        print(errors.format_error(found), file=sys.stderr)
        return errors.EXIT_USER_ERROR
    finally:
        sys.stderr = held.stream
    held.release()
    return 0


class _HeldJobError:
    """``sys.stderr`` that holds back Hydra's "Error executing job with overrides: [...]" line (written just
    before a failed job's exception is re-raised) until ``cli`` knows whether the error is a user error,
    shown as one block without it, or a defect, shown with it and its traceback."""

    PREFIX = "Error executing job with overrides"

    def __init__(self, stream):
        self.stream, self.held = stream, []

    def write(self, text: str) -> int:
        if text.startswith(self.PREFIX):
            self.held.append(text)
            return len(text)
        return self.stream.write(text)

    def release(self) -> None:
        for text in self.held:
            self.stream.write(text)
        self.held = []

    def __getattr__(self, name):
        return getattr(self.stream, name)


def sweep_refusal(argv: list[str]) -> Exception | None:
    """A ``ConfigError`` for a multirun that sweeps ``experiment=`` (each experiment brings its own sweep,
    which Hydra would drop, labelling jobs ``@None``); ``None`` otherwise. Checked before anything runs."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return None
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key == "experiment" and ("," in value or value.startswith(("choice(", "range(", "glob("))):
            names = value.replace("choice(", "").rstrip(")").split(",")
            commands = "; ".join(f"python -m benchmark -m experiment={n.strip()}" for n in names if n.strip())
            return errors.ConfigError(
                f"experiment={value}: one multirun sweeps one experiment (each experiment's own sweep would be "
                f"dropped). Run them one after the other: {commands}")
    return None


if __name__ == "__main__":
    redact.guard_stderr()
    sys.exit(cli())
