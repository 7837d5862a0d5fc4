"""Hydra's own files of a job (``.hydra/*.yaml``, ``run.log``) written as safely as the results are.

``install`` makes Hydra save its job configs through ``benchmark.io.atomic_write_bytes``: a full disk
is a ``DiskFullError`` naming the file, and no 0-byte or half-written ``config.yaml`` is left (a job
that stops there leaves no empty ``run.log`` or ``.hydra/`` either). A read-only results root
only skips those files (with a warning), so a finished run's skip still works. ``RunLogHandler`` (the
``file`` handler of ``conf/config.yaml``) remembers a full disk instead of printing "--- Logging
error ---" on each line; ``check_run_log`` turns it into the job's error, so the job does not end
with status 0 and an empty log. ``detach_run_log`` stops this process writing a ``run.log`` that
belongs to another process's run (the loser of the run-folder lock). ``keep_sweep_config`` keeps
each sweep's ``multirun.yaml`` (one per experiment folder, rewritten by every sweep) under ``sweeps/``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import sys
from pathlib import Path

from benchmark.io import DISK_FULL, DiskFullError, atomic_write_bytes

_failures: list[tuple[str, DiskFullError]] = []  # (log file, its error), in this process
_stopped: set[str] = set()  # log files this process stopped writing
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only results root


def save_config(cfg, filename: str, output_dir: Path) -> None:
    """Hydra's ``_save_config``, atomic; on a full disk the job's empty files and folders are removed."""
    from omegaconf import OmegaConf

    output_dir = Path(output_dir)
    try:
        atomic_write_bytes(output_dir / filename, OmegaConf.to_yaml(cfg).encode())
    except DiskFullError:
        _remove_empty(output_dir)
        raise
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # a read-only results root: Hydra's record of the job is skipped, the job itself decides (a
        # finished run is skipped without writing; a run to do fails at its first result write)
        sys.stderr.write(f"warning: {output_dir / filename}: not written ({err.strerror or err})\n")


def _remove_empty(hydra_dir: Path) -> None:
    """Remove the 0-byte logs beside ``hydra_dir`` and the folders this leaves empty (job folder included)."""
    for folder in (hydra_dir, hydra_dir.parent):
        for path in folder.glob("*.log"):
            if path.is_file() and path.stat().st_size == 0:
                path.unlink(missing_ok=True)
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            pass


def install() -> None:
    """Make Hydra's job runner save ``.hydra/*.yaml`` through ``save_config`` (idempotent)."""
    import hydra.core.utils

    hydra.core.utils._save_config = save_config


def keep_sweep_config(hydra_cfg) -> Path | None:
    """In a multirun, a copy of the sweep's ``multirun.yaml`` (already scrubbed of secrets) kept as
    ``<sweep dir>/sweeps/multirun-<sha256 of its text>.yaml``: every sweep of an experiment writes the
    same ``multirun.yaml``, the copies keep each one. Returns the copy's path."""
    if str(hydra_cfg.mode) not in ("RunMode.MULTIRUN", "MULTIRUN"):
        return None
    source = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if not source.is_file():
        return None
    data = source.read_bytes()
    copy = source.parent / "sweeps" / f"multirun-{hashlib.sha256(data).hexdigest()[:16]}.yaml"
    if not copy.is_file():  # the first job of the sweep writes it; the others find it
        try:
            atomic_write_bytes(copy, data)
        except OSError as err:
            if err.errno not in UNWRITABLE:
                raise
            sys.stderr.write(f"warning: {copy}: not written ({err.strerror or err})\n")  # a read-only root
            return None
    return copy


class RunLogHandler(logging.FileHandler):
    """A ``FileHandler`` opened by its first record (no empty log), that stops writing when its file
    cannot be written: a full disk is remembered (``check_run_log`` raises it), a read-only results
    root is one warning on stderr (a finished run's skip needs no log)."""

    def __init__(self, filename, mode: str = "a", encoding=None, delay: bool = True, errors=None):
        super().__init__(filename, mode, encoding, delay=True, errors=errors)

    def emit(self, record: logging.LogRecord) -> None:
        if self.baseFilename in _stopped:
            return
        try:
            super().emit(record)  # opens the file on the first record; that open may fail here
        except OSError as err:
            self._stop(err)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            self._stop(err)
            return
        super().handleError(record)

    def _stop(self, err: OSError) -> None:
        _stopped.add(self.baseFilename)
        if err.errno in DISK_FULL:
            full = DiskFullError(f"{self.baseFilename}: cannot write the run's log: {err.strerror or err} (the disk is "
                                 f"full or the quota exceeded); free space and run again")
            full.errno = err.errno  # (a filename would change str(full); the message names it)
            _failures.append((self.baseFilename, full))
            path = Path(self.baseFilename)
            if path.is_file() and path.stat().st_size == 0:
                path.unlink(missing_ok=True)
        else:
            sys.stderr.write(f"warning: {self.baseFilename}: cannot write the run's log ({err}); "
                             f"the job goes on without it\n")


def check_run_log() -> None:
    """Raise the ``DiskFullError`` of a run log that could not be written in this process, if any."""
    if _failures:
        raise _failures[-1][1]


def detach_run_log() -> None:
    """Close and remove this process's run-log handlers (their file is another process's run.log)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
