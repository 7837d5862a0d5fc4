"""PASCAL VOC 2007 (or any VOC-layout dataset) -> a manifest the suite reads.

Usage::

    python -m data_prep.voc2007 --root RAW --out MANIFEST_DIR --split test [--classes FILE]

``RAW`` is the folder holding ``VOCdevkit/`` or ``VOCdevkit/VOC2007`` itself. The script reads
``ImageSets/Main/<split>.txt`` (first token of each line), ``Annotations/<id>.xml`` and the header of
``JPEGImages/<id>.jpg`` (size only, no decode). Decisions:

* VOC's 1-based inclusive coordinates are shifted by -1 to the suite's 0-based inclusive
  ``boxes_xyxy``; a non-integral coordinate (some VOC-layout tools write ``12.0`` or ``12.5``) is
  rounded half up first.
* ``difficult`` flags are kept per box (missing tag = not difficult); ``labels`` lists every class
  with a box, including classes whose boxes are all difficult: the pointing game decides what to
  skip (DESIGN 4.3).
* An image without objects, a class name outside the class list, an empty or out-of-image box,
  an XML size that differs from the JPEG's real size, or an id listed twice is an error naming the
  file and field; nothing is written unless every image passes.
* VOC has no WordNet ids, so the ``wnids`` meta field holds the class names.
"""

from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from PIL import Image, UnidentifiedImageError

from benchmark.data.manifest import ManifestError, read_manifest, write_manifest

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)
SPLITS = ("train", "val", "trainval", "test")
LAYOUT = (
    "expected layout: ROOT/VOCdevkit/VOC2007/ (or ROOT itself being VOC2007/) holding "
    "ImageSets/Main/<split>.txt, Annotations/<id>.xml and JPEGImages/<id>.jpg"
)


def find_voc_dir(root: Path) -> Path:
    """Return the folder holding ``ImageSets``/``Annotations``/``JPEGImages`` under ``root``."""
    root = Path(root)
    for candidate in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (candidate / "Annotations").is_dir() or (candidate / "ImageSets").is_dir():
            break
    else:
        raise ManifestError(f"{root}: no VOC dataset found; {LAYOUT}")
    for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
        if not (candidate / sub).is_dir():
            raise ManifestError(f"{candidate / sub}: folder not found; {LAYOUT}")
    return candidate


def read_classes(path: Path) -> list[str]:
    """Class names from a file, one per line in class-index order (blank lines ignored).

    A name may occur twice (ImageNet's 1000 names hold two 'crane' and two 'maillot'): the list is
    read by index; only an annotation that uses such a name is an error (``class_indices``).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: classes file not found (expected one class name per line)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ManifestError(f"{path}: no class names (expected one class name per line)")
    return names


def class_indices(names: list[str]) -> dict[str, int | tuple[int, ...]]:
    """``{name: index}``; a name listed more than once maps to the tuple of its indices (ambiguous)."""
    out: dict[str, int | tuple[int, ...]] = {}
    for i, name in enumerate(names):
        seen = out.get(name)
        out[name] = i if seen is None else (*((seen,) if isinstance(seen, int) else seen), i)
    return out


def read_image_set(path: Path) -> list[str]:
    """Image ids from ``ImageSets/Main/<split>.txt``; an id listed twice is an error."""
    if not path.is_file():
        raise ManifestError(f"{path}: image set not found; {LAYOUT}")
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        image_id = line.split()[0]
        if image_id in first_line:
            raise ManifestError(
                f"{path}: image id {image_id!r} listed twice (lines {first_line[image_id]} and {number}); "
                "expected each id once"
            )
        first_line[image_id] = number
        ids.append(image_id)
    if not ids:
        raise ManifestError(f"{path}: image set is empty; expected one image id per line")
    return ids


def _number(node: ET.Element, field: str, where: str) -> int:
    text = node.findtext(field)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: field {field!r} is {text!r}; expected a number") from None
    if not math.isfinite(value):
        raise ManifestError(f"{where}: field {field!r} is {text!r}; expected a finite number")
    return math.floor(value + 0.5)


def parse_annotation(xml_path: Path, class_index: dict[str, int]) -> dict:
    """One VOC XML -> ``width``, ``height`` and 0-based ``boxes_xyxy``/``box_labels``/``box_difficult``."""
    if not xml_path.is_file():
        raise ManifestError(f"{xml_path}: annotation file not found; {LAYOUT}")
    try:
        tree = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise ManifestError(f"{xml_path}: not valid XML ({err}); expected a VOC <annotation>") from None
    size = tree.find("size")
    if size is None:
        raise ManifestError(f"{xml_path}: missing field 'size' (expected <size><width>..<height>..)")
    width, height = _number(size, "width", f"{xml_path}: size"), _number(size, "height", f"{xml_path}: size")
    objects = tree.findall("object")
    if not objects:
        raise ManifestError(f"{xml_path}: no <object> elements; expected at least one annotated object")
    boxes, labels, difficult = [], [], []
    for k, obj in enumerate(objects):
        name = (obj.findtext("name") or "").strip()
        where = f"{xml_path}: object {k} ({name!r})"
        if name not in class_index:
            shown = list(class_index)
            raise ManifestError(
                f"{where}: field 'name' is {name!r}; expected one of the {len(shown)} classes {shown} "
                "(use --classes FILE for a dataset with other classes)"
            )
        if isinstance(class_index[name], tuple):
            raise ManifestError(
                f"{where}: field 'name' is {name!r}, which the class list holds at indices {list(class_index[name])}; "
                "expected a name listed once (rename one of them in the classes file and the annotations)")
        box = obj.find("bndbox")
        if box is None:
            raise ManifestError(f"{where}: missing field 'bndbox'")
        x0, y0, x1, y1 = (_number(box, f, f"{where}: bndbox") for f in ("xmin", "ymin", "xmax", "ymax"))
        if not (1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height):
            raise ManifestError(
                f"{where}: field 'bndbox' (xmin, ymin, xmax, ymax) = {(x0, y0, x1, y1)} is empty or outside "
                f"the {width}x{height} image; expected 1 <= xmin <= xmax <= width and 1 <= ymin <= ymax <= height"
            )
        flag = (obj.findtext("difficult") or "0").strip()
        if flag not in ("0", "1"):
            raise ManifestError(f"{where}: field 'difficult' is {flag!r}; expected 0 or 1")
        boxes.append([x0 - 1, y0 - 1, x1 - 1, y1 - 1])
        labels.append(class_index[name])
        difficult.append(flag == "1")
    return {"width": width, "height": height, "boxes_xyxy": boxes, "box_labels": labels, "box_difficult": difficult}


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (no full decode)."""
    if not path.is_file():
        raise ManifestError(f"{path}: image file not found; {LAYOUT}")
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as err:
        raise ManifestError(f"{path}: not a readable image ({err})") from None


def prepare(root: Path, out: Path, split: str = "test", dataset_name: str | None = None,
            classes: Sequence[str] | str | Path | None = None) -> Path:
    """Write the manifest of one VOC split to ``out`` and return ``out``.

    ``classes``: class names in index order (a sequence, or a path to a file with one per line);
    default the 20 VOC classes in their standard order.
    """
    if split not in SPLITS:
        raise ManifestError(f"split {split!r} is not one of {list(SPLITS)}")
    voc = find_voc_dir(Path(root))
    if classes is None:
        names = list(VOC_CLASSES)
    elif isinstance(classes, (str, Path)):
        names = read_classes(Path(classes))
    else:
        names = [str(c) for c in classes]
    class_index = class_indices(names)
    image_set = voc / "ImageSets" / "Main" / f"{split}.txt"
    rows = []
    for image_id in read_image_set(image_set):
        xml_path = voc / "Annotations" / f"{image_id}.xml"
        ann = parse_annotation(xml_path, class_index)
        jpg = voc / "JPEGImages" / f"{image_id}.jpg"
        real = image_size(jpg)
        if real != (ann["width"], ann["height"]):
            raise ManifestError(
                f"{xml_path}: field 'size' says {ann['width']}x{ann['height']} (width x height) but "
                f"{jpg} is {real[0]}x{real[1]}; expected them equal"
            )
        rows.append({
            "image_id": image_id, "path": f"JPEGImages/{image_id}.jpg",
            "height": ann["height"], "width": ann["width"], "labels": sorted(set(ann["box_labels"])),
            "boxes_xyxy": ann["boxes_xyxy"], "box_labels": ann["box_labels"],
            "box_difficult": ann["box_difficult"], "mask_labels": [], "masks_rle": [],
            "split": split, "blacklisted": False,
        })
    meta = {
        "dataset": dataset_name or f"voc2007_{split}", "image_root": str(voc.resolve()),
        "wnids": names, "class_names": names,
        "source": {"kind": "voc", "root": str(voc.resolve()), "image_set": str(image_set.resolve()), "split": split},
    }
    return write_manifest(Path(out), rows, meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: prepare one split and print a one-line summary."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.voc2007", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="folder holding VOCdevkit/ (or VOC2007 itself)")
    parser.add_argument("--out", required=True, type=Path, help="manifest directory to write")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--classes", type=Path, default=None, help="file with one class name per line")
    parser.add_argument("--dataset-name", default=None, help="name stored in meta.json (default voc2007_<split>)")
    args = parser.parse_args(argv)
    try:
        out = prepare(args.root, args.out, args.split, args.dataset_name, classes=args.classes)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    frame = read_manifest(out).table
    boxes = int(frame["box_labels"].map(len).sum())
    hard = int(frame["box_difficult"].map(sum).sum())
    print(f"wrote {len(frame)} images, {boxes} boxes ({hard} difficult) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
