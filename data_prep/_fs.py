"""Folder helpers for all-or-nothing outputs: temporary sibling folders and swapping them into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


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
