"""Hydra's own files: on a full disk (``.hydra/*.yaml``, ``run.log``), a ``DiskFullError``
naming the file, no 0-byte file left, and a job that does not end with status 0.

ENOSPC is simulated: every file opened for writing under the test's folder (through ``open`` or
``os.fdopen``, the two ways Hydra and ``benchmark.io`` open files) fails on ``write``. And each sweep
of an experiment keeps its own ``multirun.yaml``."""

import builtins
import errno
import logging
import os
from pathlib import Path

import hydra.core.utils
import pytest
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (installs the atomic save of Hydra's job configs)
from benchmark.io import DiskFullError
from benchmark.runs import hydra_files


class _Full:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def _fill_disk(monkeypatch, root: Path) -> None:
    real_open, real_fdopen = builtins.open, os.fdopen

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(m in mode for m in "wax") and str(file).startswith(str(root))
        return _Full(handle) if writing else handle

    def full_fdopen(fd, mode="r", *args, **kwargs):
        target = os.readlink(f"/proc/self/fd/{fd}")
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return _Full(handle) if any(m in mode for m in "wax") and target.startswith(str(root)) else handle

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(os, "fdopen", full_fdopen)


def test_hydra_job_config_on_a_full_disk_names_the_file_and_leaves_nothing_empty(tmp_path, monkeypatch):
    job = tmp_path / "runs" / "job"
    job.mkdir(parents=True)
    (job / "run.log").touch()  # Hydra opens the job's log before it saves the configs
    _fill_disk(monkeypatch, tmp_path)
    with pytest.raises(DiskFullError, match=f"{job / '.hydra' / 'config.yaml'}: .*disk is full"):
        hydra.core.utils._save_config(OmegaConf.create({"seed": 0}), "config.yaml", job / ".hydra")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no 0-byte config.yaml or run.log
    assert not job.exists()


def test_run_log_on_a_full_disk_is_the_jobs_error(tmp_path, monkeypatch):
    monkeypatch.setattr(hydra_files, "_failures", [])
    path = tmp_path / "run.log"
    handler = hydra_files.RunLogHandler(str(path))
    logger = logging.getLogger(f"test_run_log.{tmp_path.name}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        monkeypatch.setattr(handler, "stream", _Full(handler._open()))
        logger.error("first line")  # no "--- Logging error ---", no exception here
        logger.error("second line")
        with pytest.raises(DiskFullError, match=f"{path}: cannot write the run's log"):
            hydra_files.check_run_log()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert not path.exists()  # the empty log was removed


def test_the_job_log_handler_is_the_disk_full_aware_one():
    conf = OmegaConf.load(Path(benchmark.run.CONF_DIR) / "config.yaml")
    assert conf.hydra.job_logging.handlers.file["class"] == "benchmark.runs.hydra_files.RunLogHandler"


def test_each_sweep_keeps_its_multirun_config(tmp_path):
    sweep = tmp_path / "runs" / "exp"
    sweep.mkdir(parents=True)
    kept = []
    for overrides in ("method=grad_cam,cam", "method=gradient,cam"):  # two sweeps of one experiment
        (sweep / "multirun.yaml").write_text(f"hydra:\n  overrides: {overrides}\n")
        cfg = OmegaConf.create({"mode": "RunMode.MULTIRUN", "sweep": {"dir": str(sweep)}})
        kept += [hydra_files.keep_sweep_config(cfg), hydra_files.keep_sweep_config(cfg)]  # two jobs each
    assert kept[0] == kept[1] != kept[2] == kept[3]
    assert sorted(p.read_text() for p in (sweep / "sweeps").iterdir()) == [
        "hydra:\n  overrides: method=grad_cam,cam\n", "hydra:\n  overrides: method=gradient,cam\n"]


def _read_only(monkeypatch, root: Path) -> None:
    real_open, real_os_open = builtins.open, os.open

    def refuse(path):
        if str(path).startswith(str(root)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def ro_open(file, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def ro_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", ro_open)
    monkeypatch.setattr(os, "open", ro_os_open)


def test_a_read_only_results_root_lets_hydra_start_a_finished_runs_skip(tmp_path, monkeypatch, capsys):
    """Hydra's job files are a record, not a result: on a read-only root they are skipped with a warning."""
    monkeypatch.setattr(hydra_files, "_failures", [])
    job = tmp_path / "runs" / "job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
    _read_only(monkeypatch, tmp_path)
    handler = hydra_files.RunLogHandler(str(job / "run.log"))  # as Hydra builds it: before any record
    handler._builtin_open = builtins.open  # logging's reference to ``open``, taken in __init__ on 3.11
    logger = logging.getLogger(f"test_read_only.{tmp_path.name}")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        hydra.core.utils._save_config(OmegaConf.create({"seed": 0}), "config.yaml", job / ".hydra")
        logger.info("skip: finished with the same configuration")
        logger.info("a second line")
    finally:
        logger.removeHandler(handler)
        handler.close()
    hydra_files.check_run_log()  # not a full disk: the job's status is its own
    err = capsys.readouterr().err
    assert f"{job / '.hydra' / 'config.yaml'}: not written" in err
    assert err.count(f"{job / 'run.log'}: cannot write the run's log") == 1
    assert (job / ".hydra" / "config.yaml").read_text() == "seed: 0\n" and not (job / "run.log").exists()
