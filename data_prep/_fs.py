"""Folder helpers for all-or-nothing outputs: temporary sibling folders and swapping them into place,
and the lock that lets one process at a time build a generated dataset."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from pathlib import Path

_GUARD = threading.Lock()
_HELD: dict[str, list] = {}  # lock file -> [threading.RLock, depth in the holding thread, file descriptor]


@contextlib.contextmanager
def building(out: Path):
    """Hold the build lock of the folder ``out`` (``.<name>.lock`` beside it, ``flock``): one process
    (and one thread) at a time checks and builds it, so jobs that start together on a fresh cache (the
    demo's workers, a Slurm array) neither build it twice nor read it while another swaps it. Reentrant
    in the thread that holds it; the kernel releases it when its holder dies."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    key = str((out.parent / f".{out.name}.lock").resolve())
    with _GUARD:
        entry = _HELD.setdefault(key, [threading.RLock(), 0, None])
    with entry[0]:
        if entry[1] == 0:
            fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
            entry[2] = fd
        entry[1] += 1
        try:
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                os.close(entry[2])  # releases the flock
                entry[2] = None


def temp_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder in ``parent`` (same filesystem, so a later rename is atomic).

    ``mkdtemp`` creates it private (0700); it gets the usual permissions (0777 minus the umask)
    because it becomes a dataset folder that others may read.
    """
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    return path


def replace_dir(src: Path, dst: Path) -> Path:
    """Move folder ``src`` to ``dst``, replacing (then deleting) whatever ``dst`` was."""
    if dst.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
        os.replace(dst, old / dst.name)
        shutil.rmtree(old)
    os.replace(src, dst)
    return dst
