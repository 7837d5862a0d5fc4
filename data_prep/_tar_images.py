"""Images shipped as a tar (``ILSVRC2012_img_val.tar``): list members, extract atomically.

Extraction goes to a temporary folder next to the final ``images/`` folder and is renamed into
place only after the caller has validated everything, so ``images/`` is either complete or absent.
A complete ``images/`` from an earlier run (same names and byte sizes) is reused.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from benchmark.data.manifest import ManifestError
from data_prep._fs import replace_dir, temp_dir
from data_prep._ilsvrc_raw import IMAGE_EXTS


def list_tar_images(path: Path) -> dict[str, tarfile.TarInfo]:
    """JPEG members of a tar keyed by stem; unsafe member paths and duplicates are errors."""
    out: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ManifestError(f"{path}: not a readable tar archive of JPEG images ({err})") from None
    for member in members:
        name = PurePosixPath(member.name)
        if not member.isfile() or name.suffix.lower() not in IMAGE_EXTS:
            continue
        if name.is_absolute() or ".." in name.parts:
            raise ManifestError(f"{path}: member {member.name!r} has an unsafe path; expected a relative file name")
        if name.stem in out:
            raise ManifestError(f"{path}: duplicate image id {name.stem!r} (members {out[name.stem].name!r} "
                                f"and {member.name!r})")
        out[name.stem] = member
    if not out:
        raise ManifestError(f"{path}: no JPEG images in the archive; expected ILSVRC2012_val_XXXXXXXX.JPEG members")
    return out


def _complete(folder: Path, members: list[tarfile.TarInfo]) -> bool:
    try:
        return folder.is_dir() and all((folder / m.name).stat().st_size == m.size for m in members)
    except OSError:
        return False


def stage_tar_images(path: Path, members: list[tarfile.TarInfo], out: Path) -> tuple[Path, Path | None]:
    """Return ``(folder holding the images, staging folder or None)``; reuse ``out/images`` if complete."""
    final = out / "images"
    if _complete(final, members):
        return final, None
    staging = temp_dir(out, ".images.tmp-")
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in sorted(members, key=lambda m: m.offset):
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"extracted {len(members)} images from {path}")
    return staging, staging


def commit_staged(staging: Path, out: Path) -> Path:
    """Move a validated staging folder to ``out/images`` (replacing an incomplete one)."""
    return replace_dir(staging, out / "images")
