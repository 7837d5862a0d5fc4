"""COCO preparation: hand-worked boxes and union masks, crowd handling, one test per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from benchmark.data.manifest import ManifestError, read_manifest
from benchmark.data.readers import ManifestDataset, class_region, decode_mask
from data_prep import coco2014


def person_rle() -> dict:
    """Compressed RLE of the rectangle x 30..34, y 5..9 (25 pixels) in a 30x40 (HxW) image."""
    m = np.zeros((30, 40), np.uint8, order="F")
    m[5:10, 30:35] = 1
    rle = mask_utils.encode(m)
    return {"size": [30, 40], "counts": rle["counts"].decode("ascii")}


def instances() -> dict:
    # column-major: 0 off, 2 on (rows 0-1 of column 0), 28 off, 2 on, 28 off, 2 on, rest off -> 6 pixels
    crowd_rle = {"size": [30, 40], "counts": [0, 2, 28, 2, 28, 2, 1200 - 62]}
    return {
        "images": [
            {"id": 42, "file_name": "COCO_val2014_000000000042.jpg", "height": 30, "width": 40},
            {"id": 7, "file_name": "COCO_val2014_000000000007.jpg", "height": 20, "width": 20},
            {"id": 9, "file_name": "COCO_val2014_000000000009.jpg", "height": 10, "width": 10},
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 18, "iscrowd": 0, "bbox": [10.5, 20, 5, 5],
             "segmentation": [[10, 10, 20, 10, 20, 15, 10, 15]]},  # rectangle: x 10..19, y 10..14 = 50 px
            {"id": 2, "image_id": 42, "category_id": 18, "iscrowd": 1, "bbox": [0, 0, 3, 2],
             "segmentation": crowd_rle},
            {"id": 3, "image_id": 42, "category_id": 1, "iscrowd": 0, "bbox": [30, 5, 5, 5],
             "segmentation": person_rle()},
            {"id": 4, "image_id": 7, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 1, 20],
             "segmentation": {"size": [20, 20], "counts": [0, 20, 380]}},  # column 0 = 20 px
            {"id": 5, "image_id": 7, "category_id": 18, "iscrowd": 0, "bbox": [15.5, 15.5, 10, 10],
             "segmentation": [[15, 15, 20, 20]]},  # 2 points: no area -> the clipped box, 5x5 px
        ],
    }


def write_coco(root: Path, data: dict | None = None, split: str = "val2014") -> Path:
    data = instances() if data is None else data
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    for image in data["images"]:
        Image.new("RGB", (image["width"], image["height"]), (1, 2, 3)).save(root / split / image["file_name"])
    return root


def test_manifest_fields_by_hand(tmp_path):
    m = read_manifest(coco2014.prepare(write_coco(tmp_path / "raw"), tmp_path / "m"))
    assert m.meta["wnids"] == ["person", "car", "dog"] and m.meta["category_ids"] == [1, 3, 18]
    assert m.meta["dataset"] == "coco2014_val"
    assert m.meta["source"]["images_dropped_no_annotations"] == 1
    assert m.meta["source"]["empty_masks_replaced_by_box"] == 1
    assert list(m.table["image_id"]) == ["000000000007", "000000000042"]
    rows = {r["image_id"]: r for r in m.table.to_dict("records")}
    a = rows["000000000042"]
    assert a["path"] == "val2014/COCO_val2014_000000000042.jpg" and (a["height"], a["width"]) == (30, 40)
    assert [list(b) for b in a["boxes_xyxy"]] == [[10, 20, 15, 24], [0, 0, 2, 1], [30, 5, 34, 9]]
    assert list(a["box_labels"]) == [2, 2, 0] and list(a["box_difficult"]) == [False, True, False]
    assert list(a["labels"]) == [0, 2] and list(a["mask_labels"]) == [0, 2]
    person, dog = (decode_mask({"size": [30, 40], "counts": c}) for c in a["masks_rle"])
    assert person.sum() == 25 and person[5:10, 30:35].all()
    assert dog.sum() == 50 + 6 and dog[10:15, 10:20].all() and dog[0:2, 0:3].all()
    b = rows["000000000007"]
    assert [list(x) for x in b["boxes_xyxy"]] == [[0, 0, 0, 19], [15, 15, 19, 19]]  # second one clipped
    assert list(b["labels"]) == [1, 2] and list(b["box_difficult"]) == [True, False]  # all-crowd car kept
    car, dog7 = (decode_mask({"size": [20, 20], "counts": c}) for c in b["masks_rle"])
    assert car.sum() == 20 and car[:, 0].all() and dog7.sum() == 25 and dog7[15:, 15:].all()


def test_reader_masks_region(tmp_path):
    ds = ManifestDataset(coco2014.prepare(write_coco(tmp_path / "raw"), tmp_path / "m"))
    sample = ds[1]
    assert sample.image_id == "000000000042" and set(sample.masks_rle) == {0, 2}
    assert class_region(sample, 2, "masks").sum() == 56 and class_region(sample, 1, "masks").sum() == 0


@pytest.mark.parametrize(("bbox", "expected"), [
    ([10.5, 20, 5, 5], [10, 20, 15, 24]),
    ([0, 0, 40, 30], [0, 0, 39, 29]),
    ([3, 4, 0, 0], [3, 4, 3, 4]),        # thinner than a pixel keeps one pixel
    ([-2.5, 28.2, 10, 10], [0, 28, 7, 29]),  # clipped
])
def test_coco_box(bbox, expected):
    assert coco2014.coco_box(bbox, 40, 30, "here") == expected


def test_cli_summary_counts_dropped(tmp_path, capsys):
    root = write_coco(tmp_path / "raw")
    assert coco2014.main(["--root", str(root), "--out", str(tmp_path / "m")]) == 0
    assert "2 images (1 of 3 dropped: no annotations), 5 annotations, 3 classes" in capsys.readouterr().out


def _edit(change):
    def mutate(root: Path) -> None:
        path = root / "annotations" / "instances_val2014.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return mutate


BAD = {
    "missing_json": (lambda r: (r / "annotations/instances_val2014.json").unlink(), ["instances_val2014.json", "not found"]),
    "malformed_json": (lambda r: (r / "annotations/instances_val2014.json").write_text("{\"images\": ["),
                       ["instances_val2014.json", "not valid JSON"]),
    "missing_field": (_edit(lambda d: d["annotations"][0].pop("bbox")), ["annotations[0]", "'bbox'"]),
    "missing_top_level": (_edit(lambda d: d.pop("categories")), ["'categories'"]),
    "unknown_image": (_edit(lambda d: d["annotations"][1].update(image_id=999)), ["annotations[1]", "'image_id'", "999"]),
    "unknown_category": (_edit(lambda d: d["annotations"][2].update(category_id=77)), ["annotations[2]", "'category_id'", "77"]),
    "duplicate_image": (_edit(lambda d: d["images"][1].update(id=42)), ["images[1]", "'id'", "duplicate"]),
    "image_missing": (lambda r: (r / "val2014/COCO_val2014_000000000007.jpg").unlink(),
                      ["COCO_val2014_000000000007.jpg", "not found"]),
    "image_folder_missing": (lambda r: [p.unlink() for p in (r / "val2014").iterdir()] and (r / "val2014").rmdir(),
                             ["val2014", "image folder not found"]),
    "size_mismatch": (_edit(lambda d: d["images"][0].update(height=31)), ["image id 42", "31"]),
    "negative_bbox": (_edit(lambda d: d["annotations"][0].update(bbox=[1, 1, -2, 3])), ["annotation id 1", "'bbox'"]),
    "bbox_outside": (_edit(lambda d: d["annotations"][0].update(bbox=[40, 1, 2, 3])), ["annotation id 1", "outside"]),
    "rle_size": (_edit(lambda d: d["annotations"][2]["segmentation"].update(size=[30, 41])),
                 ["annotation id 3", "'segmentation.size'"]),
    "rle_counts_sum": (_edit(lambda d: d["annotations"][1]["segmentation"].update(counts=[0, 2, 5])),
                       ["annotation id 2", "'segmentation.counts'"]),
    "odd_polygon": (_edit(lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5, 6, 7]])),
                    ["annotation id 1", "'segmentation'"]),
    "bad_crowd": (_edit(lambda d: d["annotations"][0].update(iscrowd=2)), ["annotations[0]", "'iscrowd'"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_field(tmp_path, case):
    mutate, needles = BAD[case]
    root = write_coco(tmp_path / "raw")
    mutate(root)
    out = tmp_path / "m"
    with pytest.raises(ManifestError) as err:
        coco2014.prepare(root, out)
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert not (out / "manifest.parquet").exists() and not (out / "meta.json").exists()
