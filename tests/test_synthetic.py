"""The synthetic generator: determinism, real ILSVRC / VOC formats, and the manifests it prepares."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from benchmark.data.manifest import read_manifest
from data_prep import synthetic
from data_prep._xml import parse_annotation

N_TRAIN, N_VAL = 12, 6


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "manifests" not in p.parts}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synthetic.generate(tmp_path_factory.mktemp("a") / "synth", seed=0, n_train=N_TRAIN, n_val=N_VAL)


def _solution(root: Path, split: str) -> dict[str, list[tuple[str, list[int]]]]:
    rows = list(csv.reader(open(root / f"LOC_{split}_solution.csv")))
    assert rows[0] == ["ImageId", "PredictionString"]
    out = {}
    for image_id, pred in rows[1:]:
        tok = pred.split()
        out[image_id] = [(tok[k], [int(v) for v in tok[k + 1:k + 5]]) for k in range(0, len(tok), 5)]
    return out


def test_same_seed_gives_identical_files_and_index_only_dependence(synth, tmp_path):
    again = synthetic.generate(tmp_path / "again", seed=0, n_train=N_TRAIN, n_val=N_VAL)
    assert _files(again) == _files(synth)
    fewer = synthetic.generate(tmp_path / "fewer", seed=0, n_train=3, n_val=1)
    for k in (1, 2, 3):  # image k depends only on (seed, split, k), not on the count
        name = f"train/SYNTH_train_{k:08d}.JPEG"
        assert (fewer / name).read_bytes() == (synth / name).read_bytes()
    other = synthetic.generate(tmp_path / "other", seed=1, n_train=3, n_val=1)
    first = "train/SYNTH_train_00000001.JPEG"
    assert (other / first).read_bytes() != (synth / first).read_bytes()


def test_layout_classes_and_synset_order(synth):
    lines = (synth / "LOC_synset_mapping.txt").read_text().splitlines()
    wnids = [line.split()[0] for line in lines]
    assert len(wnids) >= 10 and wnids == sorted(wnids) and len(set(wnids)) == len(wnids)
    assert len({line.split()[1] for line in lines}) == len(lines)
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        expected = [f"SYNTH_{split}_{k:08d}.JPEG" for k in range(1, n + 1)]
        assert sorted(p.name for p in (synth / split).iterdir()) == expected
        assert len(list((synth / "bbox" / split).glob("*.xml"))) == n
    assert json.loads((synth / "DONE.json").read_text())["seed"] == 0


def test_images_sizes_boxes_and_xml_match_csv(synth):
    wnids = [line.split()[0] for line in (synth / "LOC_synset_mapping.txt").read_text().splitlines()]
    sizes, counts = [], []
    for split in ("train", "val"):
        solution = _solution(synth, split)
        assert len(solution) == (N_TRAIN if split == "train" else N_VAL)
        for image_id, objects in solution.items():
            with Image.open(synth / split / f"{image_id}.JPEG") as img:
                w, h = img.size
                assert img.mode == "RGB" and not img.info.get("exif")
            assert 112 <= w <= 256 and 112 <= h <= 256
            sizes.append((w, h))
            size_wh, xml_objects = parse_annotation((synth / "bbox" / split / f"{image_id}.xml").read_bytes(), image_id)
            assert size_wh == (w, h)
            assert [(o.name, list(o.box)) for o in xml_objects] == objects
            assert 1 <= len(objects) <= 3 and len({o[0] for o in objects}) == 1 and objects[0][0] in wnids
            counts.append(len(objects))
            for _, (x0, y0, x1, y1) in objects:
                assert 0 <= x0 < x1 < w and 0 <= y0 < y1 < h
                assert max(x1 - x0 + 1, y1 - y0 + 1) >= 0.15 * min(w, h)  # shapes are large
    assert any(w != h for w, h in sizes) and len(set(sizes)) > 5
    assert len(set(counts)) > 1


def test_distractors_are_another_class_and_smaller(synth):
    wnids = [line.split()[0] for line in (synth / "LOC_synset_mapping.txt").read_text().splitlines()]
    per_image = Counter()
    for split in ("train", "val"):
        solution = _solution(synth, split)
        rows = list(csv.reader(open(synth / f"{split}_distractors.csv")))
        assert rows[0] == ["image_id", "class_index", "x0", "y0", "x1", "y1"]
        for image_id, cls, *box in rows[1:]:
            gt_wnid, gt_box = solution[image_id][0]
            assert wnids[int(cls)] != gt_wnid
            x0, y0, x1, y1 = map(int, box)
            assert 0 <= x0 <= x1 and 0 <= y0 <= y1
            per_image[image_id] += 1
    # one or two per scene (a distractor that finds no free place is dropped, rarely)
    assert max(per_image.values()) <= 2 and 2 in per_image.values()
    assert len(per_image) >= 0.9 * (N_TRAIN + N_VAL)


def test_manifests_written_through_ilsvrc_prep(synth):
    man = read_manifest(synth / "manifests" / "val")
    assert man.meta["dataset"] == "synthetic_val" and man.meta["layout"] == "xml"
    assert man.image_root == (synth / "val").resolve()
    assert man.num_classes == 10 and man.meta["class_names"][0] == "red_disc"
    solution = _solution(synth, "val")
    wnids = man.meta["wnids"]
    for row in man.table.itertuples():
        objects = solution[row.image_id]
        assert [list(b) for b in row.boxes_xyxy] == [box for _, box in objects]
        assert list(row.labels) == [wnids.index(objects[0][0])] and row.split == "val" and not row.blacklisted
        assert (man.image_root / row.path).is_file()
    assert len(read_manifest(synth / "manifests" / "train").table) == N_TRAIN


def test_rerun_is_a_noop_unless_forced(synth, capsys):
    stamp = (synth / "train" / "SYNTH_train_00000001.JPEG").stat().st_mtime_ns
    synthetic.generate(synth, seed=0, n_train=N_TRAIN, n_val=N_VAL)
    assert "up to date" in capsys.readouterr().out
    assert (synth / "train" / "SYNTH_train_00000001.JPEG").stat().st_mtime_ns == stamp
    before = _files(synth)
    synthetic.generate(synth, seed=0, n_train=N_TRAIN, n_val=N_VAL, force=True)
    leftovers = [p for p in synth.parent.iterdir() if p.name.startswith(".") and p.name != ".synth.lock"]
    assert _files(synth) == before and not leftovers  # the empty build-lock file stays (data_prep/_fs.py)


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(root, split, *args):
        (root / split).mkdir()
        (root / split / "half.JPEG").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_ilsvrc_split", boom)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(tmp_path / "out", n_train=2, n_val=1)
    # only the (empty) lock file that serialises builders of this folder remains
    assert [p.name for p in tmp_path.iterdir()] == [".out.lock"]
    assert (tmp_path / ".out.lock").stat().st_size == 0


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to replace"):
        synthetic.generate(tmp_path, n_train=1, n_val=1)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_multi_voc_layout(tmp_path, capsys):
    out = tmp_path / "multi"
    assert synthetic.main(["--out", str(out), "--multi", "--train", "6", "--val", "3", "--test", "4"]) == 0
    assert "synthetic multi test: 4 images" in capsys.readouterr().out
    names = (out / "classes.txt").read_text().split()
    assert len(names) == 10
    voc = out / "VOCdevkit" / "VOC2007"
    sets = {s: (voc / "ImageSets" / "Main" / f"{s}.txt").read_text().split()
            for s in ("train", "val", "test", "trainval")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [6, 3, 4]
    assert sets["trainval"] == sorted(sets["train"] + sets["val"]) and not set(sets["trainval"]) & set(sets["test"])
    for image_id in sets["trainval"] + sets["test"]:
        with Image.open(voc / "JPEGImages" / f"{image_id}.jpg") as img:
            w, h = img.size
        size_wh, objects = parse_annotation((voc / "Annotations" / f"{image_id}.xml").read_bytes(), image_id)
        classes = {o.name for o in objects}
        assert size_wh == (w, h) and 2 <= len(classes) <= 4 and len(classes) <= len(objects) <= 6
        assert classes <= set(names)
        for o in objects:  # VOC boxes are 1-based inclusive
            assert 1 <= o.box[0] < o.box[2] <= w and 1 <= o.box[1] < o.box[3] <= h
    again = synthetic.generate_multi(tmp_path / "again", n_train=6, n_val=3, n_test=4)
    assert _files(again) == _files(out)


def test_processes_that_start_together_build_the_data_once(tmp_path):
    """Two jobs on a fresh cache (the demo's workers, a Slurm array): one builds the multi-object scenes
    and their manifests under the build lock, the other waits and finds them done; both read them whole."""
    import subprocess
    import sys

    root = tmp_path / "synthetic_multi"
    code = ("import sys\nfrom data_prep import synthetic_multi as m\nfrom benchmark.data.manifest import read_manifest\n"
            "d = m.prepare_all(sys.argv[1], n_train=6, n_val=4, n_test=4)\n"
            "print('rows', len(read_manifest(d['test']).table))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = "".join(o for o, _ in outs)
    assert said.count("synthetic multi test: 4 images") == 1 and said.count("up to date (DONE.json matches") == 1
    assert said.count("rows 4") == 2
    assert not list(tmp_path.glob(".synthetic_multi.tmp-*"))


def test_the_build_lock_is_reentrant_and_excludes_other_threads(tmp_path):
    import threading
    import time

    from data_prep._fs import building

    order = []

    def other():
        with building(tmp_path / "d"):
            order.append("other")

    with building(tmp_path / "d"):
        with building(tmp_path / "d"):  # the holder may take it again (prepare_all -> generate_multi)
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.2)
            order.append("holder")
    thread.join(5)
    assert order == ["holder", "other"]
