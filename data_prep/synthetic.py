"""Deterministic synthetic shapes dataset: the suite's embedded default data (no download needed).

Usage::

    python -m data_prep.synthetic --out DIR [--seed 0] [--train 2000] [--val 500] [--force]
    python -m data_prep.synthetic --out DIR --multi [--train N] [--val N] [--test N] [--force]

Single-label mode writes the real ILSVRC on-disk formats, then prepares them with
``data_prep.ilsvrc`` (the same path real data takes) into ``DIR/manifests/<split>/``::

    DIR/<split>/SYNTH_<split>_00000001.JPEG     images, width and height each in [112, 256]
    DIR/bbox/<split>/SYNTH_<split>_00000001.xml ILSVRC XML, GT-class boxes only
    DIR/LOC_synset_mapping.txt                  "n90000001 red_disc" ... in class-index order
    DIR/LOC_<split>_solution.csv                Kaggle format: ImageId,PredictionString
    DIR/<split>_distractors.csv                 image_id,class_index,x0,y0,x1,y1 (0-based inclusive)

``--multi`` writes 3-6 objects of 2-4 classes per image in PASCAL VOC2007 layout
(``DIR/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}``, 1-based boxes, ``difficult`` =
more than half of the object hidden) plus ``DIR/classes.txt``. Image ``i`` (1-based) of a split
depends only on ``numpy.random.default_rng([seed, split_code, i])``; the same seed gives
byte-identical files. Everything is built in a temporary sibling folder and renamed into place
(an existing ``DIR`` is replaced only if this generator wrote it); ``DIR/DONE.json``, written
last, records the parameters and makes a repeated call a no-op (unless ``force``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmark.data.manifest import ManifestError
from benchmark.io import atomic_write_bytes
from data_prep import checksums, ilsvrc
from data_prep._fs import building, replace_dir, temp_dir
from data_prep._shapes import CLASSES
from data_prep._synth_write import write_ilsvrc_split, write_voc_multi

VERSION = 4  # bump whenever the rendered content changes: stale DONE.json then triggers a rebuild
MULTI_VERSION = 5  # the same for the multi-object scenes (5: smaller, more, touching objects of 2-4 classes)
MARKER = "SYNTHETIC_DATASET.txt"
WNIDS = tuple(f"n{90000001 + k}" for k in range(len(CLASSES)))
CLASS_NAMES = tuple(c.name for c in CLASSES)


def generator_version(generator: str) -> int:
    """Version of the data made by a dataset's ``generate:`` hook (``synthetic_multi`` or ``synthetic``)."""
    return MULTI_VERSION if generator == "synthetic_multi" else VERSION


def _is_done(out: Path, params: dict) -> bool:
    try:
        return json.loads((out / "DONE.json").read_text()) == params
    except (OSError, ValueError):
        return False


def _build(out: Path, fill) -> None:
    """Run ``fill(tmp_dir)`` in a temporary sibling of ``out`` and swap it into place.

    An existing ``out`` is replaced only if it is empty or was written by this generator (it
    holds ``MARKER``), so a mistyped ``--out`` never deletes unrelated files.
    """
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FileExistsError(f"{out}: exists, is not empty and holds no {MARKER}, so it was not written by "
                              "data_prep.synthetic; refusing to replace it (choose another --out)")
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        (tmp / MARKER).write_text("written by python -m data_prep.synthetic; safe to delete and rebuild\n")
        fill(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _mark_done(out: Path, params: dict) -> None:
    atomic_write_bytes(out / "DONE.json", json.dumps(params, indent=2, sort_keys=True).encode())


def generate(out: Path, seed: int = 0, n_train: int = 2000, n_val: int = 500, force: bool = False) -> Path:
    """Write the single-label ILSVRC-format dataset and its manifests; returns ``out``. One process at a
    time (``_fs.building``): another that finds it building waits, then finds it up to date."""
    with building(Path(out)):
        return _generate(Path(out), seed, n_train, n_val, force)


def _generate(out: Path, seed: int, n_train: int, n_val: int, force: bool) -> Path:
    params = {"mode": "ilsvrc", "version": VERSION, "seed": seed, "n_train": n_train, "n_val": n_val}
    if not force and _is_done(out, params):
        print(f"{out}: up to date (DONE.json matches {params}); use --force to rebuild")
        return out
    counts: dict[str, dict] = {}

    def fill(tmp: Path) -> None:
        lines = "".join(f"{w} {n}\n" for w, n in zip(WNIDS, CLASS_NAMES))
        (tmp / "LOC_synset_mapping.txt").write_text(lines)
        for split, n in (("train", n_train), ("val", n_val)):
            counts[split] = write_ilsvrc_split(tmp, split, seed, n, WNIDS)

    _build(out, fill)
    for split in ("train", "val"):
        ilsvrc.prepare(out, out / "manifests" / split, split=split, dataset_name=f"synthetic_{split}",
                       layout="xml", relative_image_root=True)
    if (seed, n_train, n_val) == (0, 2000, 500):  # the recorded default data (data_prep/checksums)
        checksums.check("synthetic", out)
    _mark_done(out, params)
    for split, c in counts.items():
        print(f"synthetic {split}: {c['images']} images, {c['gt_boxes']} GT boxes, "
              f"{c['distractors']} distractors, {c['non_square']} non-square")
    return out


def generate_multi(out: Path, seed: int = 0, n_train: int = 1000, n_val: int = 250, n_test: int = 500,
                   force: bool = False) -> Path:
    """Write the multi-object VOC2007-layout dataset (pointing game); returns ``out`` (one process at a time)."""
    with building(Path(out)):
        return _generate_multi(Path(out), seed, n_train, n_val, n_test, force)


def _generate_multi(out: Path, seed: int, n_train: int, n_val: int, n_test: int, force: bool) -> Path:
    params = {"mode": "voc_multi", "version": MULTI_VERSION, "seed": seed, "n_train": n_train, "n_val": n_val,
              "n_test": n_test}
    if not force and _is_done(out, params):
        print(f"{out}: up to date (DONE.json matches {params}); use --force to rebuild")
        return out
    counts: dict = {}

    def fill(tmp: Path) -> None:
        (tmp / "classes.txt").write_text("".join(f"{n}\n" for n in CLASS_NAMES))
        counts.update(write_voc_multi(tmp, seed, {"train": n_train, "val": n_val, "test": n_test}, CLASS_NAMES))

    _build(out, fill)
    _mark_done(out, params)
    for split, c in counts.items():
        print(f"synthetic multi {split}: {c['images']} images, {c['objects']} objects, {c['difficult']} difficult")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=None, help="train images (default 2000; multi: 1000)")
    parser.add_argument("--val", type=int, default=None, help="val images (default 500; multi: 250)")
    parser.add_argument("--test", type=int, default=None, help="multi only: test images (default 500)")
    parser.add_argument("--multi", action="store_true", help="multi-object scenes in PASCAL VOC layout")
    parser.add_argument("--force", action="store_true", help="rebuild even if DONE.json matches")
    args = parser.parse_args(argv)
    counts = {k: v for k, v in (("n_train", args.train), ("n_val", args.val), ("n_test", args.test)) if v is not None}
    if "n_test" in counts and not args.multi:
        parser.error("--test applies to --multi only")
    try:
        if args.multi:
            generate_multi(args.out, seed=args.seed, force=args.force, **counts)
        else:
            generate(args.out, seed=args.seed, force=args.force, **counts)
    except (FileExistsError, ManifestError, checksums.ChecksumError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
