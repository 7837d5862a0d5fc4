"""Atomic file writes and the disk-full error every result, manifest and checkpoint write goes through.

``atomic_write_bytes`` writes through a temporary file in the target's folder and a rename, so a
reader never sees a torn file; a full disk or exceeded quota (``DISK_FULL``) becomes a
``DiskFullError`` that names the file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class DiskFullError(OSError):
    """A write failed because the disk is full or the quota is exceeded (ENOSPC, EDQUOT)."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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
