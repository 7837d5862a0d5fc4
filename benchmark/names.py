"""Names are data, never paths: the check every name passes before it becomes part of a path.

A name (``experiment_name``, a method label or layer, a model, dataset or metric name, a plugin entry's
name) may reach a file or folder name. ``check_name`` accepts only a safe character set (ASCII letters,
digits and ``. _ - + = @ ,``), never ``.`` or ``..``, never a leading ``.``, ``-`` or ``~``, and at most
``MAX_NAME_LEN`` characters, so no name can climb out of the results folder, hide a file, look like an
option or exceed a file system's name limit. ``inside`` checks that a path, once resolved, lies under a
root: the last guard before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME_LEN = 120
_SAFE = re.compile(r"[A-Za-z0-9_+=@,][A-Za-z0-9._+=@,-]*")


class UnsafeNameError(ValueError):
    """A name that would not be a single, plain path component."""


class OutsideRootError(ValueError):
    """A path that would land outside the folder it must stay in."""


def name_problem(value) -> str | None:
    """Why ``value`` is not a safe name, or None when it is."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "it is empty"
    if len(value) > MAX_NAME_LEN:
        return f"it has {len(value)} characters (at most {MAX_NAME_LEN})"
    if value in (".", ".."):
        return "it names a folder ('.' or '..')"
    if not _SAFE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9._+=@,-]", c)})
        shown = ", ".join(repr(c) for c in bad[:5]) if bad else repr(value[0]) + " at the start"
        return f"it contains {shown}; allowed: letters, digits and . _ - + = @ , (not first: . -)"
    return None


def check_name(value, field: str) -> str:
    """``value`` itself when it is a safe name, else ``UnsafeNameError`` naming ``field``."""
    problem = name_problem(value)
    if problem:
        raise UnsafeNameError(f"{field}={value!r} is not a valid name: {problem}. A name becomes part of a "
                              f"folder or file name, so it must be one plain path component.")
    return value


def inside(root: Path | str, path: Path | str) -> Path:
    """``path`` resolved, when it lies under ``root`` (resolved too); else ``OutsideRootError``."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise OutsideRootError(f"{path} resolves to {path_r}, outside {root_r}; nothing was written")
    return path_r
