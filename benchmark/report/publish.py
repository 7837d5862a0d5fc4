"""Tables are written as a set: into a temporary folder beside the output folder, then swapped in.

``staging(out)`` makes ``.<out>.<random>.tmp`` beside ``out``; the report writes every table and figure
there. ``publish(tmp, out)`` then links the files of ``out`` the report did not rewrite (tables of other
experiments; not the old "your runs" table of a table it rewrote) into ``tmp`` and swaps the folders with two renames (``out`` -> ``.<out>.old``, ``tmp`` ->
``out``), so a reader sees the old set or the new set, never a new ``.md`` beside an old ``.csv``. A
failure before the swap (a full disk, a kill) leaves ``out`` as it was; ``discard(tmp)`` removes the
temporary folder, and the next ``staging`` removes stale ones and puts back a ``.old`` folder left by a
kill between the two renames (a temporary folder is stale after ``STALE_S`` seconds untouched).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmark.io import DISK_FULL, DiskFullError


STALE_S = 3600  # a temporary folder untouched this long was left by a killed report


def _backup(out: Path) -> Path:
    return out.with_name(f".{out.name}.old")


def recover(out: Path) -> None:
    """Undo what a kill during ``publish`` left: a missing ``out`` with its ``.old`` copy, stale temporaries."""
    out, backup = Path(out), _backup(Path(out))
    if backup.is_dir():
        if out.exists():
            shutil.rmtree(backup)
        else:
            os.rename(backup, out)
    for stale in out.parent.glob(f".{out.name}.*.tmp"):
        if stale.is_dir() and time.time() - stale.stat().st_mtime > STALE_S:  # not another report's, still writing
            shutil.rmtree(stale, ignore_errors=True)


def staging(out: Path) -> Path:
    """A fresh temporary folder beside ``out`` to write the new set of tables into."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))


def _keep(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno in DISK_FULL:
            raise
        shutil.copy2(source, target)


def publish(tmp: Path, out: Path) -> list[Path]:
    """Swap the set written in ``tmp`` in as ``out``; returns the final paths of the files written."""
    tmp, out = Path(tmp), Path(out)
    written = sorted(p.name for p in tmp.iterdir())
    stems = {name.split(".", 1)[0] for name in written}
    try:
        if out.is_dir():
            for old in out.iterdir():
                replaced = any(old.name.startswith(f"{stem}_your_runs.") for stem in stems)
                if not (tmp / old.name).exists() and not replaced:
                    if old.is_dir():
                        shutil.copytree(old, tmp / old.name, copy_function=_keep)
                    else:
                        _keep(old, tmp / old.name)
    except OSError as err:
        discard(tmp)
        if err.errno in DISK_FULL:
            raise DiskFullError(f"{out}: the disk is full while assembling the new set of tables; no table was "
                                f"changed and the temporary folder was removed; free space and run again") from err
        raise
    if out.is_dir():
        backup = _backup(out)
        os.rename(out, backup)
        os.rename(tmp, out)
        shutil.rmtree(backup)
    else:
        os.rename(tmp, out)
    return [out / name for name in written]


def discard(tmp: Path) -> None:
    """Remove a temporary folder whose set is not published."""
    shutil.rmtree(tmp, ignore_errors=True)
