"""Render synthetic scenes and write them in the ILSVRC and PASCAL VOC on-disk formats.

Each image is rendered from its own generator ``default_rng([seed, split_code, index])`` (index
1-based), so it depends only on those three numbers; rendering is spread over worker processes
and the results are written in index order.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from data_prep._scene import ilsvrc_scene, jpeg_bytes, multi_scene
from data_prep._shapes import CLASSES
from data_prep._xml import XmlObject, ilsvrc_xml, voc_xml

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
MULTI_SPLIT_CODES = {"train": 10, "val": 11, "test": 12}
MULTI_DIFFICULT_VISIBLE = 0.5  # an object with less than half of its pixels visible is "difficult"


def _render_ilsvrc(job: tuple[int, int, int]):
    seed, code, index = job
    img, gt, placed = ilsvrc_scene(np.random.default_rng([seed, code, index]), len(CLASSES))
    return jpeg_bytes(img), img.size, gt, placed


def _render_multi(job: tuple[int, int, int]):
    seed, code, index = job
    img, placed = multi_scene(np.random.default_rng([seed, code, index]), len(CLASSES))
    return jpeg_bytes(img), img.size, placed


def _render_all(fn, jobs: list[tuple[int, int, int]]):
    """Render in worker processes when there is enough work; results come back in job order."""
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(jobs) < 64:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs, chunksize=32))


def write_ilsvrc_split(root: Path, split: str, seed: int, count: int, wnids: tuple[str, ...]) -> dict:
    """Write ``count`` images of ``split`` with their XMLs, Kaggle CSV and distractor CSV under ``root``."""
    img_dir, xml_dir = root / split, root / "bbox" / split
    img_dir.mkdir(parents=True)
    xml_dir.mkdir(parents=True)
    solution, distract = ["ImageId,PredictionString"], ["image_id,class_index,x0,y0,x1,y1"]
    stats = {"images": count, "gt_boxes": 0, "distractors": 0, "non_square": 0}
    jobs = [(seed, SPLIT_CODES[split], i) for i in range(1, count + 1)]
    for (_, _, index), (data, size_wh, gt, placed) in zip(jobs, _render_all(_render_ilsvrc, jobs)):
        stem = f"SYNTH_{split}_{index:08d}"
        (img_dir / f"{stem}.JPEG").write_bytes(data)
        boxes = [p.box_xyxy for p in placed if p.role == "gt"]
        objects = [XmlObject(wnids[gt], box) for box in boxes]
        (xml_dir / f"{stem}.xml").write_bytes(ilsvrc_xml(split, stem, size_wh, objects, database="SYNTHETIC"))
        solution.append(f"{stem}," + " ".join(f"{wnids[gt]} {x0} {y0} {x1} {y1}" for x0, y0, x1, y1 in boxes))
        for p in placed:
            if p.role == "distractor":
                distract.append(",".join(str(v) for v in (stem, p.class_id, *p.box_xyxy)))
                stats["distractors"] += 1
        stats["gt_boxes"] += len(boxes)
        stats["non_square"] += int(size_wh[0] != size_wh[1])
    (root / f"LOC_{split}_solution.csv").write_text("\n".join(solution) + "\n")
    (root / f"{split}_distractors.csv").write_text("\n".join(distract) + "\n")
    return stats


def write_voc_multi(root: Path, seed: int, counts: dict[str, int], class_names: tuple[str, ...]) -> dict:
    """Write multi-object scenes in VOC2007 layout; ids ``000001``.. run over train, val, test."""
    voc = root / "VOCdevkit" / "VOC2007"
    img_dir, ann_dir, sets_dir = voc / "JPEGImages", voc / "Annotations", voc / "ImageSets" / "Main"
    for folder in (img_dir, ann_dir, sets_dir):
        folder.mkdir(parents=True)
    next_id, stats, sets = 1, {}, {}
    for split, count in counts.items():
        jobs = [(seed, MULTI_SPLIT_CODES[split], i) for i in range(1, count + 1)]
        ids, n_obj, n_hard = [], 0, 0
        for data, size_wh, placed in _render_all(_render_multi, jobs):
            stem = f"{next_id:06d}"
            next_id += 1
            (img_dir / f"{stem}.jpg").write_bytes(data)
            objects = [XmlObject(class_names[p.class_id], tuple(v + 1 for v in p.box_xyxy),
                                 difficult=p.visible < MULTI_DIFFICULT_VISIBLE) for p in placed]
            (ann_dir / f"{stem}.xml").write_bytes(voc_xml(f"{stem}.jpg", size_wh, objects))
            ids.append(stem)
            n_obj += len(objects)
            n_hard += sum(o.difficult for o in objects)
        sets[split] = ids
        stats[split] = {"images": count, "objects": n_obj, "difficult": n_hard}
    sets["trainval"] = sorted(sets.get("train", []) + sets.get("val", []))
    for name in ("train", "val", "test", "trainval"):
        (sets_dir / f"{name}.txt").write_text("".join(f"{i}\n" for i in sets.get(name, [])))
    return stats
