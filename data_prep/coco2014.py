"""COCO 2014 instances (boxes and per-class union masks) -> a manifest the suite reads.

Usage::

    python -m data_prep.coco2014 --root RAW --out MANIFEST_DIR --split val2014

``RAW`` holds ``annotations/instances_<split>.json`` and the images in ``<split>/``. Decisions:

* Classes are the categories ordered by category id, mapped to contiguous indices 0..K-1 (the 80
  COCO categories -> 0..79); ``wnids`` and ``class_names`` hold the names (COCO has no WordNet
  ids), ``category_ids`` the original ids. ``image_id`` is the COCO id zero-padded to 12 digits,
  as in the file names, so that string order is numeric order.
* Boxes: COCO ``[x, y, w, h]`` floats cover the continuous region ``[x, x+w) x [y, y+h)``; the
  pixels it touches are ``x0 = floor(x)``, ``y0 = floor(y)``, ``x1 = ceil(x + w) - 1``,
  ``y1 = ceil(y + h) - 1`` (0-based inclusive), so ``[10.5, 20, 5, 5] -> [10, 20, 15, 24]``. A
  box thinner than one pixel keeps one pixel (``x1 = max(x1, x0)``); the result is clipped to the
  image; a box entirely outside the image, or with a negative size, is an error.
* Masks: for every class present, the union of its instance masks (polygons, uncompressed RLE and
  compressed RLE alike, via ``pycocotools.mask``) stored as compressed-RLE ``counts``. Polygons
  with fewer than 3 points are dropped (zero area); an instance whose mask is empty contributes
  its box instead, so that every listed class has GT pixels.
* Crowd annotations (``iscrowd=1``) cover real pixels of their class, which is what a pointing
  game "hit" needs: their pixels go into the union mask and the class is listed in ``labels``
  even when all its instances are crowd; their boxes are flagged ``box_difficult=True``.
* Images without annotations are dropped (the pointing game has nothing to score there) and
  counted in ``meta.json``'s ``source`` and in the printed summary.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from benchmark.data.manifest import ManifestError, read_manifest, write_manifest
from data_prep.voc2007 import image_size

LAYOUT = "expected layout: ROOT/annotations/instances_<split>.json and ROOT/<split>/<file_name>"
_FIELDS = {
    "images": ("id", "file_name", "height", "width"),
    "categories": ("id", "name"),
    "annotations": ("id", "image_id", "category_id", "bbox", "segmentation"),
}


def load_instances(path: Path) -> dict:
    """Read an instances JSON and check the fields this script uses; errors name the field."""
    if not path.is_file():
        raise ManifestError(f"{path}: annotation file not found; {LAYOUT}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        what = "empty file" if not path.read_bytes().strip() else "not valid JSON"
        raise ManifestError(f"{path}: {what} ({err}); expected a COCO instances JSON object with 'images', "
                            f"'annotations' and 'categories'") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: top level is {type(data).__name__}; expected an object")
    for key, fields in _FIELDS.items():
        items = data.get(key)
        if not isinstance(items, list):
            raise ManifestError(f"{path}: field {key!r} is missing or not a list")
        seen: set = set()
        for k, item in enumerate(items):
            missing = [f for f in fields if not isinstance(item, dict) or f not in item]
            if missing:
                raise ManifestError(f"{path}: {key}[{k}] lacks field(s) {missing}; expected {list(fields)}")
            if item["id"] in seen:
                raise ManifestError(
                    f"{path}: {key}[{k}] field 'id' = {item['id']!r} is a duplicate; expected unique ids"
                )
            seen.add(item["id"])
    for k, image in enumerate(data["images"]):
        for f in ("id", "height", "width"):
            if not isinstance(image[f], int) or image[f] < (0 if f == "id" else 1):
                kind = "a non-negative" if f == "id" else "a positive"
                raise ManifestError(f"{path}: images[{k}] field {f!r} = {image[f]!r}; expected {kind} integer")
    for k, ann in enumerate(data["annotations"]):
        if ann.get("iscrowd", 0) not in (0, 1):
            raise ManifestError(f"{path}: annotations[{k}] field 'iscrowd' = {ann['iscrowd']!r}; expected 0 or 1")
    return data


def coco_box(bbox, width: int, height: int, where: str) -> list[int]:
    """COCO ``[x, y, w, h]`` floats -> 0-based inclusive ``[x0, y0, x1, y1]`` clipped to the image."""
    numbers = isinstance(bbox, list) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)
    if not numbers or len(bbox) != 4:
        raise ManifestError(f"{where}: field 'bbox' = {bbox!r}; expected [x, y, w, h] finite numbers")
    x, y, w, h = bbox
    if w < 0 or h < 0:
        raise ManifestError(f"{where}: field 'bbox' = {bbox!r} has a negative size; expected w, h >= 0")
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = max(math.ceil(x + w) - 1, x0), max(math.ceil(y + h) - 1, y0)
    if x0 >= width or y0 >= height or x1 < 0 or y1 < 0:
        raise ManifestError(f"{where}: field 'bbox' = {bbox!r} lies outside the {width}x{height} image")
    return [max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)]


def segmentation_rle(segm, height: int, width: int, where: str) -> dict:
    """Polygons, uncompressed or compressed RLE -> one compressed RLE of the instance."""
    if isinstance(segm, list):
        polygons = []
        for p in segm:
            if not isinstance(p, list) or len(p) % 2 or not all(isinstance(v, (int, float)) for v in p):
                raise ManifestError(
                    f"{where}: field 'segmentation' has polygon {str(p)[:60]}; expected [x1, y1, x2, y2, ...]"
                )
            if len(p) >= 6:  # fewer than 3 points enclose no area
                polygons.append(p)
        if not polygons:
            return mask_utils.encode(np.zeros((height, width), np.uint8, order="F"))
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if not isinstance(segm, dict) or "counts" not in segm or "size" not in segm:
        raise ManifestError(f"{where}: field 'segmentation' is neither polygons nor RLE (dict with 'size', 'counts')")
    if not isinstance(segm["size"], list) or segm["size"] != [height, width]:
        raise ManifestError(
            f"{where}: field 'segmentation.size' = {segm['size']!r}; expected the image's [{height}, {width}]"
        )
    if isinstance(segm["counts"], list):
        if sum(segm["counts"]) != height * width:
            raise ManifestError(
                f"{where}: field 'segmentation.counts' sums to {sum(segm['counts'])}; "
                f"expected height*width = {height * width}"
            )
        return mask_utils.frPyObjects(segm, height, width)
    if isinstance(segm["counts"], str):
        return {"size": [height, width], "counts": segm["counts"].encode("ascii")}
    kind = type(segm["counts"]).__name__
    raise ManifestError(f"{where}: field 'segmentation.counts' is {kind}; expected list or str")


def _image_row(image: dict, anns: list[dict], cat_index: dict, split: str, root: Path, where: str,
               stats: dict) -> dict:
    h, w = image["height"], image["width"]
    path = f"{split}/{image['file_name']}"
    if not (root / path).is_file():
        raise ManifestError(f"{root / path}: image file not found (image id {image['id']} in {where}); {LAYOUT}")
    real = image_size(root / path)
    if real != (w, h):
        raise ManifestError(
            f"{where}: image id {image['id']} fields 'width'/'height' = {w}x{h} but {root / path} "
            f"is {real[0]}x{real[1]}; expected them equal"
        )
    boxes, labels, crowd, per_class = [], [], [], {}
    for ann in sorted(anns, key=lambda a: a["id"]):
        here = f"{where}: annotation id {ann['id']}"
        box = coco_box(ann["bbox"], w, h, here)
        rle = segmentation_rle(ann["segmentation"], h, w, here)
        if mask_utils.area(rle) == 0:
            stats["empty_masks_replaced_by_box"] += 1
            filled = np.zeros((h, w), np.uint8, order="F")
            filled[box[1]:box[3] + 1, box[0]:box[2] + 1] = 1
            rle = mask_utils.encode(filled)
        cls = cat_index[ann["category_id"]]
        boxes.append(box)
        labels.append(cls)
        crowd.append(bool(ann.get("iscrowd", 0)))
        per_class.setdefault(cls, []).append(rle)
    mask_labels = sorted(per_class)
    masks = [mask_utils.merge(per_class[c])["counts"].decode("ascii") for c in mask_labels]
    return {
        "image_id": f"{image['id']:012d}", "path": path, "height": h, "width": w,
        "labels": sorted(set(labels)), "boxes_xyxy": boxes, "box_labels": labels, "box_difficult": crowd,
        "mask_labels": mask_labels, "masks_rle": masks, "split": split, "blacklisted": False,
    }


def prepare(root: Path, out: Path, split: str = "val2014", dataset_name: str | None = None) -> Path:
    """Write the manifest of one COCO split to ``out`` and return ``out``."""
    root = Path(root)
    json_path = root / "annotations" / f"instances_{split}.json"
    data = load_instances(json_path)
    if not (root / split).is_dir():
        raise ManifestError(f"{root / split}: image folder not found; {LAYOUT}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    cat_ids = sorted(coco.getCatIds())
    cat_index = {cid: i for i, cid in enumerate(cat_ids)}
    for k, ann in enumerate(data["annotations"]):
        for field, known in (("image_id", coco.imgs), ("category_id", cat_index)):
            if ann[field] not in known:
                table = "images" if field == "image_id" else "categories"
                raise ManifestError(
                    f"{json_path}: annotations[{k}] (id {ann['id']}) field {field!r} = {ann[field]!r} "
                    f"refers to no entry in {table!r}; expected one of its ids {sorted(known)[:10]}"
                    f"{' ...' if len(known) > 10 else ''}"
                )
    stats = {"images_listed": len(coco.imgs), "images_dropped_no_annotations": 0, "empty_masks_replaced_by_box": 0}
    rows = []
    for image_id in sorted(coco.imgs):
        anns = coco.imgToAnns.get(image_id, [])
        if not anns:
            stats["images_dropped_no_annotations"] += 1
            continue
        rows.append(_image_row(coco.imgs[image_id], anns, cat_index, split, root, str(json_path), stats))
    names = [coco.cats[c]["name"] for c in cat_ids]
    meta = {
        "dataset": dataset_name or f"coco2014_{split.removesuffix('2014')}", "image_root": str(root.resolve()),
        "wnids": names, "class_names": names, "category_ids": cat_ids,
        "source": {"kind": "coco", "annotations": str(json_path.resolve()), "split": split, **stats},
    }
    return write_manifest(Path(out), rows, meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: prepare one split and print a summary with the dropped images."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.coco2014", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="folder holding annotations/ and <split>/")
    parser.add_argument("--out", required=True, type=Path, help="manifest directory to write")
    parser.add_argument("--split", default="val2014", help="val2014 (default) or train2014")
    parser.add_argument("--dataset-name", default=None, help="name stored in meta.json (default coco2014_<val|train>)")
    args = parser.parse_args(argv)
    try:
        out = prepare(args.root, args.out, args.split, args.dataset_name)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifest = read_manifest(out)
    src = manifest.meta["source"]
    print(
        f"wrote {len(manifest.table)} images ({src['images_dropped_no_annotations']} of "
        f"{src['images_listed']} dropped: "
        f"no annotations), {int(manifest.table['box_labels'].map(len).sum())} annotations, "
        f"{manifest.num_classes} classes to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
