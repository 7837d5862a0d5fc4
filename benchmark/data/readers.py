"""Read a prepared manifest as ``Sample``s, and the ground-truth regions the pointing game uses.

Order is deterministic: images sorted by ``image_id``. Sharding is strided: shard ``s`` of ``n``
takes the images at sorted positions ``i`` with ``i % n == s``, so shards are disjoint, their union
is the whole split, and their sizes differ by at most one (a slow region of the id space is spread
over all shards). ``limit`` keeps the first N images of a shard, after sharding.

Images are decoded with PIL and converted to RGB uint8 ``[H, W, 3]`` (greyscale, CMYK, palette and
RGBA alike; alpha is dropped, not composited; 16-bit greyscale is scaled by 255/65535, where PIL's
own conversion would clip it to white). EXIF orientation is *not* applied: VOC and COCO
annotations refer to the stored pixel grid. A truncated or corrupt file, or a floating-point image
(no defined 8-bit range), is an error naming the file and what was expected.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from benchmark.data.manifest import ManifestError, read_manifest
from benchmark.types import Sample

REGION_KINDS = ("boxes", "masks")
PREP_COMMANDS = (
    "python -m data_prep.voc2007 --root RAW --out {dir} --split test",
    "python -m data_prep.coco2014 --root RAW --out {dir} --split val2014",
    "python -m data_prep.ilsvrc --out {dir} ...",
    "python -m data_prep.synthetic --out {dir} ...",
)


class ImageDecodeError(ManifestError):
    """An image listed in a manifest cannot be decoded (missing, truncated or corrupt)."""


def _load_manifest(directory: Path):
    missing = [n for n in ("manifest.parquet", "meta.json") if not (directory / n).is_file()]
    if missing:
        commands = "\n  ".join(c.format(dir=directory) for c in PREP_COMMANDS)
        raise ManifestError(
            f"{directory}: no prepared manifest here (missing {', '.join(missing)}). "
            f"Prepare the dataset first with one of:\n  {commands}"
        )
    return read_manifest(directory)


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # "I": how some PIL versions open 16-bit PNGs


def _to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` of a decoded PIL image of any mode with a defined 8- or 16-bit range."""
    if image.mode in SIXTEEN_BIT:  # convert("RGB") would clip every value above 255 to white
        grey = np.asarray(image).astype(np.float64)
        grey8 = np.clip(np.rint(grey * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(grey8[..., None], 3, axis=2)
    if image.mode == "F":
        raise ImageDecodeError(f"{path}: mode 'F' (32-bit floating point) has no defined pixel range; expected an "
                               f"8-bit or 16-bit image (RGB, greyscale, palette, CMYK, with or without alpha)")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_rgb(path: Path, size_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8 ``[H, W, 3]``; check its size against ``size_hw``."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, inside the try, so truncation surfaces here
            rgb = _to_rgb(image, path)
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: image file not found; expected the file the manifest's field 'path' "
                               f"names under its image_root") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageDecodeError):
            raise
        raise ImageDecodeError(f"{path}: cannot decode image ({type(err).__name__}: {err}); expected a complete "
                               f"image file PIL can read (truncated or corrupt: copy or extract it again)") from None
    if size_hw is not None and rgb.shape[:2] != tuple(size_hw):
        raise ImageDecodeError(
            f"{path}: decoded size {rgb.shape[0]}x{rgb.shape[1]} (HxW) differs from the manifest's "
            f"{size_hw[0]}x{size_hw[1]}; re-run the data_prep script"
        )
    return rgb


class ManifestDataset(Dataset):
    """A ``torch`` Dataset of ``Sample``s from one manifest directory (sorted, optionally sharded)."""

    def __init__(self, manifest_dir: Path | str, split: str | None = None, num_shards: int = 1,
                 shard: int = 0, limit: int | None = None) -> None:
        if num_shards < 1 or not 0 <= shard < num_shards:
            raise ValueError(
                f"shard={shard}, num_shards={num_shards}: expected num_shards >= 1 and 0 <= shard < num_shards"
            )
        if limit is not None and limit < 0:
            raise ValueError(f"limit={limit}: expected None or >= 0")
        manifest = _load_manifest(Path(manifest_dir))
        frame = manifest.table
        if split is not None:
            frame = frame[frame["split"] == split]
            if frame.empty:
                found = sorted(manifest.table["split"].unique().tolist())
                raise ManifestError(f"{manifest.directory}: no image of split {split!r}; splits present: {found}")
        frame = frame.sort_values("image_id", kind="stable").reset_index(drop=True)
        rows = frame.iloc[shard::num_shards]
        if limit is not None:
            rows = rows.iloc[:limit]
        self._rows = rows.to_dict("records")
        self._image_root = manifest.image_root
        self.meta = dict(manifest.meta)
        self.directory = manifest.directory

    @property
    def image_ids(self) -> list[str]:
        """Image ids of this dataset (shard), in iteration order."""
        return [row["image_id"] for row in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def sizes_hw(self) -> list[tuple[int, int]]:
        """Original ``(height, width)`` of each image, in iteration order, from the manifest (nothing decoded)."""
        return [(int(row["height"]), int(row["width"])) for row in self._rows]

    @property
    def manifest_file(self) -> Path:
        return self.directory / "manifest.parquet"

    def missing_files(self) -> list[tuple[str, Path]]:
        """``(image_id, path)`` of this dataset's images whose file does not exist (a stat each)."""
        return [(row["image_id"], self._image_root / row["path"]) for row in self._rows
                if not (self._image_root / row["path"]).is_file()]

    def labels_outside(self, num_classes: int) -> list[tuple[str, str, int]]:
        """``(image_id, field, class)`` for class indices outside ``0..num_classes-1``."""
        out = []
        for row in self._rows:
            for name in ("labels", "box_labels", "mask_labels"):
                out += [(row["image_id"], name, int(c)) for c in row[name] if not 0 <= int(c) < num_classes]
        return out

    def labels_without_region(self) -> list[tuple[str, int]]:
        """``(image_id, class)`` for a label with neither a box nor a mask of its class (nothing to localize)."""
        return [(row["image_id"], int(c)) for row in self._rows for c in row["labels"]
                if int(c) not in {int(b) for b in row["box_labels"]} | {int(m) for m in row["mask_labels"]}]

    def used_classes(self) -> set[int]:
        """Manifest class indices that some image of this dataset uses (labels, boxes or masks)."""
        return {int(c) for row in self._rows for name in ("labels", "box_labels", "mask_labels") for c in row[name]}

    def remap_classes(self, mapping: dict[int, int]) -> None:
        """Rewrite every class index through ``mapping`` (manifest index -> model output), labels kept unique."""
        for row in self._rows:
            row["labels"] = list(dict.fromkeys(mapping[int(c)] for c in row["labels"]))
            for name in ("box_labels", "mask_labels"):
                row[name] = [mapping[int(c)] for c in row[name]]

    def __getitem__(self, index: int) -> Sample:
        row = self._rows[index]
        h, w = int(row["height"]), int(row["width"])
        image = load_rgb(self._image_root / row["path"], (h, w))
        boxes = np.asarray([list(b) for b in row["boxes_xyxy"]], dtype=np.int64).reshape(-1, 4)
        masks = {
            int(c): {"size": [h, w], "counts": str(counts)}
            for c, counts in zip(row["mask_labels"], row["masks_rle"])
        }
        return Sample(
            image_id=str(row["image_id"]),
            image=image,
            labels=tuple(int(c) for c in row["labels"]),
            boxes_xyxy=boxes,
            box_labels=np.asarray(row["box_labels"], dtype=np.int64).reshape(-1),
            box_difficult=np.asarray(row["box_difficult"], dtype=bool).reshape(-1),
            masks_rle=masks,
            split=str(row["split"]),
            blacklisted=bool(row["blacklisted"]),
        )


def collate_samples(batch: list[Sample]) -> list[Sample]:
    """Identity collate for ``DataLoader``: samples differ in size, so keep them as a list."""
    return list(batch)


def decode_mask(rle: dict) -> np.ndarray:
    """COCO compressed RLE (``size`` [h, w], ``counts`` str or bytes) -> bool mask ``[H, W]``."""
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    encoded = {"size": [int(v) for v in rle["size"]], "counts": counts}
    with warnings.catch_warnings():  # pycocotools' numpy-2 ``__array__(copy=...)`` deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(encoded).astype(bool)


def class_region(sample: Sample, class_id: int, kind: str, include_difficult: bool = True) -> np.ndarray:
    """Ground-truth region of one class as a bool mask ``[H, W]`` at original resolution.

    ``kind="boxes"`` (VOC): union of the class's boxes (inclusive pixel indices; difficult boxes
    included unless ``include_difficult=False``, they are real pixels of the class).
    ``kind="masks"`` (COCO): the class's union instance mask. A class absent from the sample has
    an empty region.
    """
    if kind not in REGION_KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {list(REGION_KINDS)}")
    h, w = sample.orig_size_hw
    if kind == "masks":
        rle = sample.masks_rle.get(int(class_id))
        if rle is None:
            return np.zeros((h, w), dtype=bool)
        region = decode_mask(rle)
        if region.shape != (h, w):
            raise ManifestError(
                f"image {sample.image_id!r}: mask of class {class_id} is {region.shape}, image is {(h, w)}"
            )
        return region
    region = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in sample.boxes_of(int(class_id), include_difficult=include_difficult):
        region[y0:y1 + 1, x0:x1 + 1] = True
    return region
