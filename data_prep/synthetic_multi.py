"""The embedded multi-object dataset (pointing games): generate once, prepare every split's manifest.

Usage::

    python -m data_prep.synthetic_multi --root DIR [--force]

``DIR`` receives the VOC2007-layout scenes of ``data_prep.synthetic.generate_multi`` (seed 0, its
default split sizes) and, through the same path real PASCAL VOC takes (``data_prep.voc2007``
with the scenes' ``classes.txt``), one manifest per split in ``DIR/manifests/<split>`` for
``train``, ``val``, ``trainval`` and ``test``. A manifest is (re)written when it is missing or
older than the scenes' ``DONE.json`` (regenerated scenes make old manifests stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.data.manifest import ManifestError
from data_prep import checksums, synthetic, voc2007
from data_prep._fs import building
from data_prep.synthetic import generate_multi

SPLITS = ("train", "val", "trainval", "test")


def _stale(manifest_dir: Path, done: Path) -> bool:
    parquet = manifest_dir / "manifest.parquet"
    if not parquet.is_file() or not (manifest_dir / "meta.json").is_file():
        return True
    return done.is_file() and parquet.stat().st_mtime < done.stat().st_mtime


def _current(root: Path) -> bool:
    """Whether ``root``'s scenes were made by the current generator version."""
    try:
        return json.loads((root / "DONE.json").read_text()).get("version") == synthetic.MULTI_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def prepare_all(root: Path, force: bool = False, **counts) -> dict[str, Path]:
    """Generate the scenes under ``root`` if needed and write the manifest of every split.

    ``counts`` (``n_train``, ``n_val``, ``n_test``) go to ``generate_multi`` (its defaults otherwise).
    """
    root = Path(root)
    with building(root):  # the scenes and the manifests: one process at a time
        return _prepare_all(root, force, counts)


def _prepare_all(root: Path, force: bool, counts: dict) -> dict[str, Path]:
    generate_multi(root, force=force, **counts)
    written, changed = {}, False
    for split in SPLITS:
        out = root / "manifests" / split
        if force or _stale(out, root / "DONE.json"):
            voc2007.prepare(root, out, split=split, dataset_name=f"synthetic_multi_{split}",
                            classes=root / "classes.txt")
            changed = True
        written[split] = out
    if changed and not counts:  # the recorded default data (data_prep/checksums), checked once written
        checksums.check("synthetic_multi", root)
    return written


def ensure_synthetic_multi(manifest_dir: Path | str) -> Path:
    """Make ``<root>/manifests/<split>`` exist (the ``generate: synthetic_multi`` dataset hook).

    ``manifest_dir`` must have the form ``<root>/manifests/<split>`` with ``split`` one of
    ``train, val, trainval, test``; the scenes are generated in ``<root>`` when missing or made by an
    older generator version, and a split's manifest is rewritten when older than the scenes.
    """
    manifest_dir = Path(manifest_dir)
    split, parent = manifest_dir.name, manifest_dir.parent
    if parent.name != "manifests" or split not in SPLITS:
        raise ManifestError(f"dataset root {manifest_dir}: expected <root>/manifests/<split> with split one of "
                            f"{list(SPLITS)} for generate: synthetic_multi")
    root = parent.parent
    # scenes of an older generator version (DONE.json records it) are rebuilt: the shipped toy_gap_multi
    # weights mean something only on the current scenes
    if _current(root) and not _stale(manifest_dir, root / "DONE.json"):
        return manifest_dir
    with building(root):  # checked again by the one process that builds; the others wait, then find it done
        if not _current(root) or _stale(manifest_dir, root / "DONE.json"):
            prepare_all(root)
    return manifest_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.synthetic_multi", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="output folder (scenes and manifests/)")
    parser.add_argument("--force", action="store_true", help="regenerate the scenes and rewrite every manifest")
    args = parser.parse_args(argv)
    try:
        written = prepare_all(args.root, force=args.force)
    except (FileExistsError, ManifestError, checksums.ChecksumError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for split, path in written.items():
        print(f"synthetic_multi {split}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
