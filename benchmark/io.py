"""Atomic file writes and the disk-full error every result, manifest and checkpoint write goes through.

``atomic_write_bytes`` writes through a temporary file in the target's folder and a rename, so a
reader never sees a torn file; a full disk or exceeded quota (``DISK_FULL``) becomes a
``DiskFullError`` that names the file. The file gets the permissions a plain ``open`` gives (0666
minus the process umask, e.g. 0644 under umask 022), not the 0600 of ``tempfile.mkstemp``, so
prepared data and results can be shared as the umask allows.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class DiskFullError(OSError):
    """A write failed because the disk is full or the quota is exceeded (ENOSPC, EDQUOT)."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def current_umask() -> int:
    """The process umask, read without changing it where the system shows it (Linux ``/proc``): the
    set-and-restore fallback would briefly change it for every thread."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    On any failure the temporary file is removed and ``path`` keeps its previous content (or stays
    absent). A full disk or exceeded quota raises ``DiskFullError`` naming ``path``, chained from
    the ``OSError`` the system gave.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file follows the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            full = DiskFullError(
                f"{path}: cannot write {len(data)} bytes: {os.strerror(err.errno)} (the disk is full or the quota "
                f"exceeded). Nothing was written under this name (its previous content, if any, is unchanged) and "
                f"the temporary file was removed; free space and run again")
            full.errno = err.errno  # (a filename would change str(full); the message names it)
            raise full from err
        raise
