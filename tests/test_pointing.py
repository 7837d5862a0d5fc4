"""Pointing game and modified pointing game on hand-made samples (DESIGN 4.3, 4.4)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pycocotools import mask as mask_utils
from scipy import ndimage

from benchmark.data.readers import class_region
from benchmark.data.transforms import Preprocess
from benchmark.methods.base import Explanation, SaliencyMethod
from benchmark.methods.center import Center
from benchmark.metrics._pointing_core import first_argmax, in_difficult_subset
from benchmark.metrics._pointing_theta import calibration_mask, choose_theta, outcome
from benchmark.metrics.pointing import Pointing
from benchmark.metrics.pointing_modified import PointingModified
from benchmark.report.specs import pointing_modified_table, pointing_table
from benchmark.types import Sample


def _sample(boxes, labels, hw=(40, 60), difficult=None, image_id="img", masks=None, classes=None):
    boxes = np.array(boxes, np.int64).reshape(-1, 4)
    return Sample(image_id=image_id, image=np.zeros((*hw, 3), np.uint8),
                  labels=tuple(classes if classes is not None else sorted(set(labels))), boxes_xyxy=boxes,
                  box_labels=np.array(labels, np.int64), masks_rle=masks or {},
                  box_difficult=np.array(difficult if difficult is not None else [False] * len(labels), bool))


def _peak(x, y, hw=(40, 60)):
    m = np.zeros(hw, np.float32)
    m[y, x] = 1.0
    return m


class FakeMethod(SaliencyMethod):
    """Returns preset maps per class and preset logits; remembers the class ids it was asked for."""

    name = "fake"

    def __init__(self, maps_by_class, logits=None):
        self.maps, self.logits, self.seen = maps_by_class, logits, []
        self.model = lambda images: self.logits

    def _explain(self, images, class_ids):
        self.seen.append(class_ids.clone())
        maps = torch.stack([torch.stack([torch.as_tensor(self.maps[int(c)]) for c in row]) for row in class_ids])
        return Explanation(maps=maps.float(), logits=torch.zeros(len(images), 10))


PREP = Preprocess(40, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # 40x40 images: to_original is the identity


# ---------------------------------------------------------------- pointing game


@pytest.mark.parametrize("x, y, hit", [(16, 15, True), (15, 15, False), (49, 15, True), (50, 15, False),
                                       (21, 31, True), (21, 32, False), (33, 15, True)])
def test_tolerance_is_strictly_less_than_15_px(x, y, hit):
    # box x 30..35, y 10..20: (16,15) is 14 px left, (15,15) 15 px; (21,31): dx 9, dy 11 -> 14.2 px;
    # (21,32): dx 9, dy 12 -> exactly 15 px; (33,15) inside
    sample = _sample([[30, 10, 35, 20]], [2])
    row = Pointing().score_one(sample, 2, _peak(x, y))
    assert (row["point_x"], row["point_y"], row["hit"]) == (x, y, hit)
    edt = ndimage.distance_transform_edt(~class_region(sample, 2, "boxes"))
    assert row["distance_px"] == pytest.approx(edt[y, x])


def test_first_argmax_ties_go_to_the_first_row_then_column():
    m = np.zeros((20, 30))
    m[7, 2] = m[3, 8] = m[3, 5] = 1.0
    assert first_argmax(m) == (5, 3)


def test_degenerate_maps_are_flagged_misses():
    sample = _sample([[0, 0, 59, 39]], [1])  # the whole image: any real point would hit
    flat = Pointing().score_one(sample, 1, np.full((40, 60), 0.5))
    assert flat["degenerate"] and not flat["hit"]
    nan = Pointing().score_one(sample, 1, np.full((40, 60), np.nan))
    assert nan["degenerate"] and not nan["hit"] and (nan["point_x"], nan["point_y"]) == (-1, -1)


def test_all_difficult_class_is_skipped_and_rows_are_padded():
    a = _sample([[0, 0, 9, 9], [20, 20, 29, 29], [5, 25, 9, 29], [30, 30, 35, 35]], [1, 2, 3, 3],
                hw=(40, 40), difficult=[False, True, True, False], image_id="a")
    b = _sample([[10, 10, 19, 19]], [4], hw=(40, 40), image_id="b")
    method = FakeMethod({c: _peak(15, 15, (40, 40)) for c in range(5)})
    rows = Pointing().score_batch([a, b], torch.zeros(2, 3, 40, 40), method, PREP)
    assert method.seen[0].tolist() == [[1, 3], [4, 4]]  # class 2 (all difficult) skipped; b padded with 4
    assert [(r["image_id"], r["class_id"]) for r in rows] == [("a", 1), ("a", 3), ("b", 4)]
    # point (15, 15): 8.5 px from class 1's box (9, 9); class 3: 11.7 px from its difficult box's
    # corner (9, 25) (difficult boxes are GT pixels too), 21.2 px from its other box; inside class 4's
    assert [(r["hit"], round(r["distance_px"], 1)) for r in rows] == [(True, 8.5), (True, 11.7), (True, 0.0)]


def test_class_mean_differs_from_pooled():
    records = pd.DataFrame({"image_id": ["i1", "i2", "i3", "i4"], "class_id": [0, 0, 0, 1],
                            "hit": [True, True, True, False], "degenerate": [False] * 4,
                            "difficult_subset": [False, True, True, True]})
    out = Pointing().aggregate(records)
    assert out["acc_class_mean"] == 50.0 and out["acc_pooled"] == 75.0  # (1 + 0) / 2 vs 3 / 4
    assert out["difficult_acc_class_mean"] == 50.0 and out["difficult_acc_pooled"] == pytest.approx(200 / 3)
    assert out["n_records"] == 4 and out["difficult_n_records"] == 3 and out["n_classes"] == 2


@pytest.mark.parametrize("boxes, labels, expected", [
    ([[0, 0, 39, 39], [60, 60, 69, 69]], [0, 1], True),  # 1600 px = 16 % and class 1 present
    ([[0, 0, 59, 49], [60, 60, 69, 69]], [0, 1], False),  # 3000 px = 30 %
    ([[0, 0, 49, 49], [60, 60, 69, 69]], [0, 1], False),  # exactly 25 %: not below
    ([[0, 0, 39, 39], [50, 50, 89, 89], [95, 95, 99, 99]], [0, 0, 1], False),  # disjoint union 3200 px
    ([[0, 0, 39, 39], [0, 0, 39, 39], [95, 95, 99, 99]], [0, 0, 1], True),  # same box twice: union 1600
    ([[0, 0, 39, 39]], [0], False),  # small, but no other class
])
def test_difficult_subset_rule(boxes, labels, expected):
    assert in_difficult_subset(_sample(boxes, labels, hw=(100, 100)), 0) is expected


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": rle["counts"].decode("ascii")}


def test_masks_region_for_a_coco_like_sample():
    band = np.zeros((60, 60), bool)
    band[:10] = True  # the class's pixels: rows 0..9; its (crowd) box is the whole image
    sample = _sample([[0, 0, 59, 59]], [5], hw=(60, 60), difficult=[True], masks={5: _rle(band)})
    auto, boxes = Pointing(), Pointing(region="boxes")
    assert auto.score_one(sample, 5, _peak(30, 23, (60, 60)))["hit"]  # 14 px below row 9
    far = auto.score_one(sample, 5, _peak(30, 24, (60, 60)))
    assert not far["hit"] and far["region"] == "masks" and far["distance_px"] == 15.0
    assert boxes.score_one(sample, 5, _peak(30, 40, (60, 60)))["hit"]  # inside the box
    method = FakeMethod({5: _peak(30, 23, (60, 60))})
    prep = Preprocess(60, (0.0,) * 3, (1.0,) * 3)
    assert len(auto.score_batch([sample], torch.zeros(1, 3, 60, 60), method, prep)) == 1  # crowd: kept
    assert boxes.score_batch([sample], torch.zeros(1, 3, 60, 60), method, prep) == []  # boxes: all difficult


def test_center_baseline_points_at_the_image_center():
    class Model(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 3)

    maps = Center(Model(), None).explain(torch.zeros(1, 3, 224, 224), torch.tensor([0])).maps[0]
    assert first_argmax(maps[0].numpy()) == (111, 111)  # upper-left of the four center pixels
    prep = Preprocess(224, (0.0,) * 3, (1.0,) * 3)
    for h, w in ((375, 500), (500, 333), (224, 224)):
        x, y = first_argmax(prep.to_original(maps, (h, w))[0].numpy())
        # bilinear resizing turns the four tied center pixels into a plateau; its first pixel lies
        # within 1 px of the true center for sizes up to 500 px
        assert abs(x - (w - 1) / 2) <= 1 and abs(y - (h - 1) / 2) <= 1, (h, w, x, y)


# ---------------------------------------------------------------- modified pointing game


def test_modified_game_outcomes_for_the_four_cases():
    sample = _sample([[20, 20, 29, 29]], [1], hw=(40, 40))
    game = PointingModified()
    on_box, off_box = _peak(25, 25, (40, 40)), _peak(0, 0, (40, 40))
    rows = [game.score_one(sample, 1, 0.8 * on_box, 1, 3.0),  # present, accepted, point hits -> hit
            game.score_one(sample, 1, 0.8 * off_box, 1, 3.0),  # present, accepted, point misses -> miss
            game.score_one(sample, 1, 0.1 * on_box, 1, 3.0),  # present, rejected -> miss
            game.score_one(sample, 2, 0.8 * on_box, 2, 2.0),  # absent, accepted -> miss
            game.score_one(sample, 3, 0.1 * on_box, 3, 1.0)]  # absent, rejected -> hit
    frame = pd.DataFrame(rows)
    assert frame["present"].tolist() == [True, True, True, False, False]
    assert frame["hit_if_accepted"].tolist() == [True, False, True, False, False]
    assert frame["s"].tolist() == pytest.approx([0.8, 0.8, 0.1, 0.8, 0.1])
    assert outcome(frame, 0.5).tolist() == [True, False, False, False, True]


def test_modified_game_explains_the_top5_predictions():
    sample = _sample([[0, 0, 9, 9]], [4], hw=(40, 40))
    logits = torch.tensor([[0.0, 5.0, 1.0, 4.0, 6.0, 3.0, 2.0]])  # top-5: 4, 1, 3, 5, 6
    method = FakeMethod({c: _peak(5, 5, (40, 40)) * (c + 1) for c in range(7)}, logits)
    rows = PointingModified().score_batch([sample], torch.zeros(1, 3, 40, 40), method, PREP)
    assert method.seen[0].tolist() == [[4, 1, 3, 5, 6]]
    assert [(r["class_id"], r["rank"], r["present"], r["s"]) for r in rows] == [
        (4, 1, True, 5.0), (1, 2, False, 2.0), (3, 3, False, 4.0), (5, 4, False, 6.0), (6, 5, False, 7.0)]
    assert rows[0]["hit_if_accepted"]


def _records(s, present, hit, ids=None):
    return pd.DataFrame({"image_id": ids or [f"i{k}" for k in range(len(s))], "s": s, "present": present,
                         "hit_if_accepted": hit, "degenerate": False})


def test_theta_is_the_midpoint_of_the_best_cut():
    theta, acc = choose_theta(_records([0.1, 0.2, 0.5, 0.9], [False, False, True, True], [False, False, True, True]))
    assert theta == pytest.approx(0.35) and acc == 1.0
    # cuts 0.1 / 0.3 / 0.7 / reject all give 2/4, 3/4, 3/4, 2/4: the lowest best cut, midpoint 0.2
    theta, acc = choose_theta(_records([0.1, 0.3, 0.3, 0.7], [False, True, False, True], [False, True, False, True]))
    assert theta == pytest.approx(0.2) and acc == 0.75
    theta, acc = choose_theta(_records([0.5], [False], [False]))  # rejecting everything is best
    assert theta > 0.5 and acc == 1.0
    theta, acc = choose_theta(_records([np.nan, 0.5], [False, True], [False, True]))  # NaN: always a miss
    assert theta == 0.5 and acc == 0.5


def test_theta_never_sees_evaluation_images(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"{k:06d}" for k in range(400) for _ in range(2)]
    frame = _records(rng.random(800).tolist(), (rng.random(800) < 0.4).tolist(), (rng.random(800) < 0.3).tolist(), ids)
    frame["hit_if_accepted"] &= frame["present"]
    game = PointingModified()
    before = game.aggregate(frame)
    evaluation = ~calibration_mask(frame["image_id"], 0.25)
    assert 0.15 < 1 - evaluation.mean() < 0.35 and before["n_calibration_records"] == (~evaluation).sum()
    changed = frame.copy()
    changed.loc[evaluation, "s"] = rng.random(evaluation.sum()) * 10
    changed.loc[evaluation, "present"] = True
    changed.loc[evaluation, "hit_if_accepted"] = True
    after = game.aggregate(changed.sample(frac=1.0, random_state=1))  # shuffled, too
    assert after["theta"] == before["theta"] and after["accuracy_calibration"] == before["accuracy_calibration"]
    assert after["accuracy"] != before["accuracy"]
    # a separate run's records as the calibration set: θ from them alone; shared images are refused
    calibration = _records([0.1, 0.2, 0.5, 0.9], [False, False, True, True], [False, False, True, True],
                           ["v1", "v2", "v3", "v4"])
    calibration.to_parquet(tmp_path / "records.parquet")
    out = PointingModified(calibration_records=str(tmp_path)).aggregate(frame)
    assert out["theta"] == pytest.approx(0.35) and out["n_records"] == 800 and out["n_calibration_records"] == 4
    with pytest.raises(ValueError, match="disjoint"):
        PointingModified(calibration_records=str(tmp_path)).aggregate(_records([0.3], [True], [True], ["v2"]))


def test_artifacts_and_tables(tmp_path):
    rng = np.random.default_rng(1)
    frame = _records(rng.random(300).tolist(), (rng.random(300) < 0.5).tolist(), (rng.random(300) < 0.4).tolist(),
                     [f"{k:04d}" for k in range(300)])
    game = PointingModified()
    summary = game.aggregate(frame)
    csv, png = game.write_artifacts(frame, tmp_path)
    assert png.read_bytes()[:4] == b"\x89PNG"
    curve = pd.read_csv(csv)
    at_theta = curve[curve["theta"] >= summary["theta"]].iloc[0]  # θ lies between two grid scores
    assert at_theta["accuracy_evaluation"] == pytest.approx(summary["accuracy"])
    assert at_theta["accuracy_calibration"] == pytest.approx(summary["accuracy_calibration"])
    runs = pd.DataFrame([
        {"model": "m", "method": "grad_cam", "dataset": "d", "metric": "pointing", "status": "finished",
         "acc_class_mean": 80.0, "acc_pooled": 81.0, "n_records": 10},
        {"model": "m", "method": "center", "dataset": "d", "metric": "pointing", "status": "finished",
         "acc_class_mean": 30.0, "acc_pooled": 31.0, "n_records": 10},
        {"model": "m", "method": "cam", "dataset": "d", "metric": "pointing", "status": "not_applicable"},
        {"model": "m", "method": "grad_cam", "dataset": "d", "metric": "pointing_modified", "status": "finished",
         "theta": 0.5, "accuracy": 70.0}])
    table = pointing_table(runs)
    assert table["method"].tolist() == ["center", "grad_cam"]
    assert table["all: class-mean acc (%)"].tolist() == [30.0, 80.0]
    modified = pointing_modified_table(runs)
    assert modified["accuracy (%)"].tolist() == [70.0] and modified["θ"].tolist() == ["0.5"]
    assert math.isnan(pointing_table(runs)["difficult: class-mean acc (%)"].iloc[0])
