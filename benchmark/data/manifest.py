"""Prepared dataset manifests: one Parquet table (a row per image) plus ``meta.json``.

A manifest directory holds:

* ``manifest.parquet`` with the columns of ``COLUMNS``: ``image_id`` (str, unique), ``path``
  (str, relative to the manifest's ``image_root``), ``height``/``width`` (original size, int),
  ``labels`` (list of class indices present), ``boxes_xyxy`` (list of [x0, y0, x1, y1], 0-based
  inclusive pixel indices), ``box_labels`` (class index per box), ``box_difficult`` (bool per
  box), ``mask_labels`` / ``masks_rle`` (class index and COCO compressed-RLE ``counts`` string of
  that class's union mask, size = (height, width)), ``split`` (str) and ``blacklisted`` (bool).
* ``meta.json``: ``format_version``, ``dataset``, ``image_root`` (absolute, or relative to the
  manifest directory), ``wnids`` (class ids in index order), ``class_names``, and ``source``.

Both files are written to temporary names and renamed, so a reader never sees half a manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.io import atomic_write_bytes

FORMAT_VERSION = 1
COLUMNS = [
    "image_id", "path", "height", "width", "labels", "boxes_xyxy", "box_labels", "box_difficult",
    "mask_labels", "masks_rle", "split", "blacklisted",
]
SCHEMA = pa.schema([
    ("image_id", pa.string()),
    ("path", pa.string()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("labels", pa.list_(pa.int32())),
    ("boxes_xyxy", pa.list_(pa.list_(pa.int32(), 4))),
    ("box_labels", pa.list_(pa.int32())),
    ("box_difficult", pa.list_(pa.bool_())),
    ("mask_labels", pa.list_(pa.int32())),
    ("masks_rle", pa.list_(pa.string())),
    ("split", pa.string()),
    ("blacklisted", pa.bool_()),
])


class ManifestError(ValueError):
    """A manifest, or the raw files it is made from, is not what the suite expects."""


@dataclass
class Manifest:
    """A loaded manifest: the table, its metadata and the directory it came from."""

    table: pd.DataFrame
    meta: dict
    directory: Path

    @property
    def image_root(self) -> Path:
        root = Path(self.meta["image_root"])
        return root if root.is_absolute() else (self.directory / root).resolve()

    @property
    def num_classes(self) -> int:
        return len(self.meta["wnids"])


def _check_rows(frame: pd.DataFrame, where: str) -> None:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {missing}; expected {COLUMNS}")
    dup = frame["image_id"][frame["image_id"].duplicated()].tolist()
    if dup:
        raise ManifestError(f"{where}: field 'image_id' has duplicate(s) {dup[:5]}; expected each image once")
    for row in frame.itertuples(index=False):
        if len(row.labels) == 0:
            raise ManifestError(f"{where}: image {row.image_id!r}: field 'labels' is empty; expected the class "
                                f"indices present in the image (at least one)")
        n = len(row.boxes_xyxy)
        if len(row.box_labels) != n or len(row.box_difficult) != n:
            raise ManifestError(
                f"{where}: image {row.image_id!r}: boxes_xyxy, box_labels and box_difficult "
                f"have lengths {n}, {len(row.box_labels)}, {len(row.box_difficult)}; expected equal"
            )
        for box in row.boxes_xyxy:
            x0, y0, x1, y1 = (int(v) for v in box)
            if not (0 <= x0 <= x1 < row.width and 0 <= y0 <= y1 < row.height):
                raise ManifestError(
                    f"{where}: image {row.image_id!r}: field 'boxes_xyxy' has box {[x0, y0, x1, y1]} (0-based "
                    f"inclusive), empty or outside the {row.width}x{row.height} image; expected "
                    f"0 <= x0 <= x1 < {row.width} and 0 <= y0 <= y1 < {row.height}"
                )


def write_manifest(directory: Path, rows: list[dict] | pd.DataFrame, meta: dict) -> Path:
    """Validate and atomically write ``manifest.parquet`` and ``meta.json`` into ``directory``."""
    directory = Path(directory)
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    for col, default in (("mask_labels", []), ("masks_rle", []), ("blacklisted", False), ("split", "")):
        if col not in frame.columns:
            frame[col] = [default] * len(frame)
    _check_rows(frame, str(directory / "manifest.parquet"))
    for key in ("dataset", "image_root", "wnids", "class_names"):
        if key not in meta:
            raise ManifestError(f"{directory / 'meta.json'}: missing field {key!r}")
    frame = frame.sort_values("image_id", kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame[COLUMNS], schema=SCHEMA, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(directory / "manifest.parquet", sink.getvalue().to_pybytes())
    meta = {"format_version": FORMAT_VERSION, **meta, "num_images": int(len(frame))}
    atomic_write_bytes(directory / "meta.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    return directory


def read_manifest(directory: Path) -> Manifest:
    """Load a manifest directory, with errors that name the missing file or field."""
    directory = Path(directory)
    parquet, meta_path = directory / "manifest.parquet", directory / "meta.json"
    for path in (parquet, meta_path):
        if not path.is_file():
            raise ManifestError(f"{path}: not found; prepare the dataset with `python -m data_prep.<name> --out {directory}`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ManifestError(f"{meta_path}: not valid JSON ({err})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{meta_path}: field 'format_version' is {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        frame = pq.read_table(parquet).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise ManifestError(f"{parquet}: not a readable Parquet file ({err})") from None
    _check_rows(frame, str(parquet))
    return Manifest(table=frame, meta=meta, directory=directory)
