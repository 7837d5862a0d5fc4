"""Manifest reader: order, sharding, RGB conversion, clear errors, GT regions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from benchmark.data.manifest import ManifestError, write_manifest
from benchmark.data.readers import (
    ImageDecodeError, ManifestDataset, class_region, collate_samples, decode_mask, load_rgb,
)
from benchmark.types import Sample


def row(image_id: str, path: str, h: int, w: int, **extra) -> dict:
    base = {"image_id": image_id, "path": path, "height": h, "width": w, "labels": [0], "boxes_xyxy": [],
            "box_labels": [], "box_difficult": [], "mask_labels": [], "masks_rle": [], "split": "val",
            "blacklisted": False}
    return {**base, **extra}


def meta(image_root: str = "../images") -> dict:
    return {"dataset": "toy", "image_root": image_root, "wnids": ["a", "b"], "class_names": ["a", "b"]}


def make_images(folder: Path) -> dict[str, tuple[str, int, int]]:
    """One tiny image per colour mode; returns ``{image_id: (path, h, w)}``."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 4), (200, 10, 10)).save(folder / "rgb.jpg", quality=95)
    Image.new("L", (5, 3), 77).save(folder / "grey.jpg", quality=95)
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=95)
    Image.new("RGBA", (3, 2), (10, 200, 30, 0)).save(folder / "rgba.png")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return {"b_rgb": ("rgb.jpg", 4, 6), "c_grey": ("grey.jpg", 3, 5), "a_cmyk": ("cmyk.jpg", 4, 4),
            "d_rgba": ("rgba.png", 2, 3), "e_trunc": ("truncated.jpg", 64, 64)}


@pytest.fixture
def modes_manifest(tmp_path) -> Path:
    images = make_images(tmp_path / "images")
    rows = [row(i, p, h, w) for i, (p, h, w) in images.items()]
    rows[0].update(boxes_xyxy=[[1, 0, 2, 1], [0, 2, 0, 3]], box_labels=[1, 1], box_difficult=[False, True], labels=[1])
    return write_manifest(tmp_path / "m", rows, meta())


def test_images_converted_to_rgb_uint8(modes_manifest):
    ds = ManifestDataset(modes_manifest)
    assert ds.image_ids == ["a_cmyk", "b_rgb", "c_grey", "d_rgba", "e_trunc"]  # sorted by image_id
    samples = {ds.image_ids[i]: ds[i] for i in range(4)}
    for sample in samples.values():
        assert sample.image.dtype == np.uint8 and sample.image.ndim == 3 and sample.image.shape[2] == 3
    assert samples["c_grey"].image.shape == (3, 5, 3) and np.all(np.abs(samples["c_grey"].image.astype(int) - 77) <= 2)
    assert np.allclose(samples["a_cmyk"].image.reshape(-1, 3).mean(0), (255, 0, 0), atol=12)  # CMYK (0,1,1,0) = red
    assert (samples["d_rgba"].image == np.array([10, 200, 30], np.uint8)).all()  # alpha dropped, not composited
    assert samples["b_rgb"].orig_size_hw == (4, 6)


def test_truncated_image_names_file(modes_manifest):
    ds = ManifestDataset(modes_manifest)
    with pytest.raises(ImageDecodeError, match=r"truncated\.jpg"):
        ds[4]


def test_sample_fields_and_dtypes(modes_manifest):
    ds = ManifestDataset(modes_manifest)
    s = ds[ds.image_ids.index("b_rgb")]
    assert s.boxes_xyxy.dtype == np.int64 and s.boxes_xyxy.shape == (2, 4)
    assert s.box_labels.dtype == np.int64 and s.box_difficult.tolist() == [False, True] and s.labels == (1,)
    empty = ds[0]
    assert empty.boxes_xyxy.shape == (0, 4) and empty.box_labels.shape == (0,) and empty.masks_rle == {}
    assert ds.meta["dataset"] == "toy" and s.split == "val"
    region = class_region(s, 1, "boxes")
    # inclusive boxes: x 1..2, y 0..1 (4 px) and x 0, y 2..3 (2 px)
    assert region.sum() == 6 and region[0, 1] and region[1, 2] and region[3, 0] and not region[0, 0]
    assert class_region(s, 1, "boxes", include_difficult=False).sum() == 4
    assert class_region(s, 0, "boxes").sum() == 0


def test_decode_mask_and_mask_region(tmp_path):
    m = np.zeros((4, 5), np.uint8, order="F")
    m[1:3, 2:5] = 1
    counts = mask_utils.encode(m)["counts"].decode("ascii")
    assert np.array_equal(decode_mask({"size": [4, 5], "counts": counts}), m.astype(bool))
    image = np.zeros((4, 5, 3), np.uint8)
    sample = Sample("x", image, (1,), masks_rle={1: {"size": [4, 5], "counts": counts}})
    assert class_region(sample, 1, "masks").sum() == 6 and class_region(sample, 0, "masks").sum() == 0
    with pytest.raises(ValueError, match="'points'"):
        class_region(sample, 1, "points")


def _many(tmp_path: Path, n: int = 11) -> Path:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "images" / "x.png")
    rows = [row(f"img{i:02d}", "x.png", 2, 2, split="val" if i % 4 else "cal") for i in range(n)]
    return write_manifest(tmp_path / "m", rows[::-1], meta())


@pytest.mark.parametrize("num_shards", [1, 2, 3, 4, 11, 13])
def test_shards_partition_ids(tmp_path, num_shards):
    directory = _many(tmp_path)
    everything = ManifestDataset(directory).image_ids
    assert everything == sorted(everything) and len(everything) == 11
    shards = [ManifestDataset(directory, num_shards=num_shards, shard=s).image_ids for s in range(num_shards)]
    flat = [i for ids in shards for i in ids]
    assert sorted(flat) == everything and len(set(flat)) == len(flat)  # disjoint, union = all
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards[0] == everything[::num_shards]


def test_split_and_limit(tmp_path):
    directory = _many(tmp_path)
    cal = ManifestDataset(directory, split="cal")
    assert cal.image_ids == ["img00", "img04", "img08"]
    assert ManifestDataset(directory, split="val", num_shards=2, shard=1, limit=2).image_ids == ["img02", "img05"]
    assert ManifestDataset(directory, limit=0).image_ids == []
    with pytest.raises(ManifestError, match=r"'test'.*\['cal', 'val'\]"):
        ManifestDataset(directory, split="test")
    for bad in ({"num_shards": 0}, {"num_shards": 2, "shard": 2}, {"shard": -1}, {"limit": -1}):
        with pytest.raises(ValueError):
            ManifestDataset(directory, **bad)


def test_dataloader_with_identity_collate(tmp_path):
    ds = ManifestDataset(_many(tmp_path, 5))
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_samples))
    assert [len(b) for b in batches] == [2, 2, 1] and all(isinstance(s, Sample) for b in batches for s in b)
    assert [s.image_id for b in batches for s in b] == ds.image_ids


def test_missing_manifest_says_how_to_prepare(tmp_path):
    with pytest.raises(ManifestError) as err:
        ManifestDataset(tmp_path / "nowhere")
    text = str(err.value)
    assert "nowhere" in text and "manifest.parquet" in text
    assert "python -m data_prep.voc2007" in text and "python -m data_prep.coco2014" in text


def test_missing_image_and_size_mismatch(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (3, 2)).save(tmp_path / "images" / "x.png")
    directory = write_manifest(tmp_path / "m", [row("a", "gone.jpg", 2, 3), row("b", "x.png", 3, 3)], meta())
    ds = ManifestDataset(directory)
    with pytest.raises(ImageDecodeError, match=r"gone\.jpg: image file not found"):
        ds[0]
    with pytest.raises(ImageDecodeError, match=r"x\.png: decoded size 2x3"):
        ds[1]
    assert load_rgb(tmp_path / "images" / "x.png").shape == (2, 3, 3)
