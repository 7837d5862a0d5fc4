"""VOC-layout preparation: hand-checked manifest fields and one test per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.manifest import ManifestError, read_manifest
from data_prep import voc2007

OBJ = "<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>" \
      "<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"


def xml(width: int, height: int, objects: list[tuple]) -> str:
    body = "".join(OBJ.format(name=n, difficult=d, x0=a, y0=b, x1=c, y1=e) for n, d, a, b, c, e in objects)
    return f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>{body}</annotation>"


def write_voc(root: Path, images: dict[str, tuple[int, int, list[tuple]]], split: str = "test") -> Path:
    """Write a tiny VOCdevkit/VOC2007 with ``{id: (width, height, [(name, difficult, x0, y0, x1, y1)])}``."""
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
    for image_id, (w, h, objects) in images.items():
        (voc / "Annotations" / f"{image_id}.xml").write_text(xml(w, h, objects))
        Image.new("RGB", (w, h), (10, 20, 30)).save(voc / "JPEGImages" / f"{image_id}.jpg")
    return voc


BASIC = {
    "000001": (40, 30, [("dog", 0, 1, 1, 10, 20), ("person", 1, 5, 6, 40, 30)]),
    "000002": (20, 20, [("cat", 1, 2, 3, 4, 5)]),
}


def assert_no_manifest(out: Path) -> None:
    assert not (out / "manifest.parquet").exists() and not (out / "meta.json").exists()


def test_manifest_fields_by_hand(tmp_path):
    write_voc(tmp_path / "raw", BASIC)
    out = voc2007.prepare(tmp_path / "raw", tmp_path / "m", "test")
    m = read_manifest(out)
    rows = {r["image_id"]: r for r in m.table.to_dict("records")}
    a = rows["000001"]
    assert a["path"] == "JPEGImages/000001.jpg" and (a["width"], a["height"]) == (40, 30)
    # 1-based inclusive (1, 1, 10, 20) -> 0-based inclusive (0, 0, 9, 19); (5, 6, 40, 30) -> (4, 5, 39, 29)
    assert [list(b) for b in a["boxes_xyxy"]] == [[0, 0, 9, 19], [4, 5, 39, 29]]
    assert list(a["box_labels"]) == [11, 14] and list(a["box_difficult"]) == [False, True]
    assert list(a["labels"]) == [11, 14]
    b = rows["000002"]  # a class whose instances are all difficult is still listed
    assert list(b["labels"]) == [7] and list(b["box_difficult"]) == [True]
    assert [list(x) for x in b["boxes_xyxy"]] == [[1, 2, 3, 4]]
    assert list(a["mask_labels"]) == [] and a["split"] == "test" and not a["blacklisted"]
    assert m.meta["dataset"] == "voc2007_test" and m.meta["wnids"] == list(voc2007.VOC_CLASSES)
    assert m.meta["class_names"][11] == "dog" and m.image_root == (tmp_path / "raw/VOCdevkit/VOC2007").resolve()


def test_root_may_be_voc2007_itself_and_name_is_kept(tmp_path):
    voc = write_voc(tmp_path / "raw", BASIC)
    m = read_manifest(voc2007.prepare(voc, tmp_path / "m", "test", dataset_name="mine"))
    assert m.meta["dataset"] == "mine" and len(m.table) == 2


def test_custom_classes_file(tmp_path):
    write_voc(tmp_path / "raw", {"a": (8, 8, [("zork", 0, 1, 1, 8, 8), ("blip", 0, 2, 2, 3, 3)])})
    (tmp_path / "classes.txt").write_text("blip\nzork\n")
    m = read_manifest(voc2007.prepare(tmp_path / "raw", tmp_path / "m", "test", classes=tmp_path / "classes.txt"))
    row = m.table.iloc[0]
    assert list(row["box_labels"]) == [1, 0] and list(row["labels"]) == [0, 1]
    assert m.meta["wnids"] == ["blip", "zork"]


def test_cli_writes_and_reports(tmp_path, capsys):
    write_voc(tmp_path / "raw", BASIC)
    assert voc2007.main(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "m"), "--split", "test"]) == 0
    assert "2 images, 3 boxes (2 difficult)" in capsys.readouterr().out
    assert voc2007.main(["--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "n")]) == 2
    assert "VOCdevkit" in capsys.readouterr().err


def _rewrite_xml(voc: Path, image_id: str, text: str) -> None:
    (voc / "Annotations" / f"{image_id}.xml").write_text(text)


BAD = {
    "missing_layout": (lambda voc: None, "VOCdevkit", None),
    "missing_image_set": (lambda voc: (voc / "ImageSets/Main/test.txt").unlink(), "test.txt", "ImageSets/Main"),
    "missing_annotation": (lambda voc: (voc / "Annotations/000002.xml").unlink(), "000002.xml", "not found"),
    "missing_jpeg": (lambda voc: (voc / "JPEGImages/000002.jpg").unlink(), "000002.jpg", "not found"),
    "unknown_class": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("unicorn", 0, 1, 1, 2, 2)])),
                      "000002.xml", "'name' is 'unicorn'"),
    "box_outside": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("cat", 0, 1, 1, 21, 5)])),
                    "000002.xml", "outside the 20x20 image"),
    "box_empty": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("cat", 0, 5, 1, 4, 5)])),
                  "000002.xml", "'bndbox'"),
    "box_zero_based": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("cat", 0, 0, 1, 4, 5)])),
                       "000002.xml", "1 <= xmin"),
    "size_mismatch": (lambda voc: _rewrite_xml(voc, "000002", xml(21, 20, [("cat", 0, 1, 1, 4, 5)])),
                      "000002.xml", "says 21x20"),
    "duplicate_id": (lambda voc: (voc / "ImageSets/Main/test.txt").write_text("000001\n000002\n000001\n"),
                     "test.txt", "listed twice (lines 1 and 3)"),
    "empty_annotation_file": (lambda voc: _rewrite_xml(voc, "000002", ""), "000002.xml", "not valid XML"),
    "no_objects": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [])), "000002.xml", "no <object>"),
    "missing_size": (lambda voc: _rewrite_xml(voc, "000002", "<annotation></annotation>"), "000002.xml", "'size'"),
    "bad_number": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("cat", 0, "x", 1, 4, 5)])),
                   "000002.xml", "'xmin'"),
    "bad_difficult": (lambda voc: _rewrite_xml(voc, "000002", xml(20, 20, [("cat", 2, 1, 1, 4, 5)])),
                      "000002.xml", "'difficult'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_field(tmp_path, case):
    mutate, where, what = BAD[case]
    root = tmp_path / "raw"
    if case == "missing_layout":
        root.mkdir()
    else:
        mutate(write_voc(root, BASIC))
    out = tmp_path / "m"
    with pytest.raises(ManifestError) as err:
        voc2007.prepare(root, out, "test")
    assert where in str(err.value) and (what is None or what in str(err.value)), str(err.value)
    assert_no_manifest(out)


def test_unknown_split_and_duplicate_classes(tmp_path):
    write_voc(tmp_path / "raw", BASIC)
    with pytest.raises(ManifestError, match="split 'dev'"):
        voc2007.prepare(tmp_path / "raw", tmp_path / "m", "dev")
    # a name listed twice is allowed (class lists are read by index), but an annotation using it is ambiguous
    (tmp_path / "c.txt").write_text("dog\nperson\ncat\ndog\n")
    with pytest.raises(ManifestError, match=r"000001\.xml: object 0 \('dog'\).*holds at indices \[0, 3\]"):
        voc2007.prepare(tmp_path / "raw", tmp_path / "m", "test", classes=tmp_path / "c.txt")
    assert_no_manifest(tmp_path / "m")


def test_reader_region_matches_shifted_box(tmp_path):
    from benchmark.data.readers import ManifestDataset, class_region

    write_voc(tmp_path / "raw", BASIC)
    ds = ManifestDataset(voc2007.prepare(tmp_path / "raw", tmp_path / "m", "test"))
    sample = ds[0]
    assert sample.image_id == "000001" and sample.image.shape == (30, 40, 3)
    region = class_region(sample, 11, "boxes")
    assert region.sum() == 10 * 20 and region[0, 0] and region[19, 9] and not region[20, 9] and not region[0, 10]
    assert np.array_equal(class_region(sample, 14, "boxes", include_difficult=False), np.zeros((30, 40), bool))
