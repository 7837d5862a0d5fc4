"""The localization metric on hand-made samples (devkit rule, GT-known, degenerate maps)."""

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.metrics.localization import Localization
from benchmark.types import Sample


def _sample(boxes, label=3, hw=(20, 30)):
    return Sample(image_id="img", image=np.zeros((*hw, 3), np.uint8), labels=(label,),
                  boxes_xyxy=np.array(boxes, np.int64), box_labels=np.full(len(boxes), label),
                  box_difficult=np.zeros(len(boxes), bool))


def _map_with_box(box, hw=(20, 30)):
    m = np.zeros(hw, np.float32)
    x0, y0, x1, y1 = box
    m[y0:y1 + 1, x0:x1 + 1] = 1.0
    return m


def test_correct_box_and_top1_prediction():
    metric = Localization()
    row = metric.score_one(_sample([[5, 5, 14, 14]]), 3, _map_with_box((5, 5, 14, 14)), np.array([3, 1, 2, 4, 5]))
    assert row["iou"] == 1.0 and row["loc_correct_top1"] and row["loc_correct_top5"] and row["gt_known_correct"]


def test_gt_in_top5_only_counts_for_top5():
    row = Localization().score_one(_sample([[5, 5, 14, 14]]), 3, _map_with_box((5, 5, 14, 14)), np.array([1, 3, 2, 4, 5]))
    assert not row["loc_correct_top1"] and row["loc_correct_top5"] and not row["cls_correct_top1"]


def test_iou_below_half_fails_even_with_right_class():
    # box 5..14 (100 px) vs map box 10..19 x 5..14 (100 px): overlap 5x10 = 50 -> IoU 50/150
    row = Localization().score_one(_sample([[5, 5, 14, 14]]), 3, _map_with_box((10, 5, 19, 14)), np.array([3, 0, 1, 2, 4]))
    assert abs(row["iou"] - 1 / 3) < 1e-9 and not row["loc_correct_top1"] and not row["gt_known_correct"]


def test_max_over_gt_boxes_of_the_class():
    s = _sample([[0, 0, 3, 3], [10, 10, 19, 19]])
    row = Localization().score_one(s, 3, _map_with_box((10, 10, 19, 19), (20, 30)), np.array([3, 0, 1, 2, 4]))
    assert row["iou"] == 1.0


def test_degenerate_maps_are_flagged_and_fail():
    for m in (np.zeros((20, 30)), np.full((20, 30), np.nan), np.full((20, 30), 2.0)):
        row = Localization().score_one(_sample([[0, 0, 29, 19]]), 3, m, np.array([3, 0, 1, 2, 4]))
        assert row["degenerate"]
    nan_row = Localization().score_one(_sample([[0, 0, 29, 19]]), 3, np.full((20, 30), np.nan), np.array([3, 0, 1, 2, 4]))
    assert not nan_row["has_box"] and not nan_row["loc_correct_top1"]


def test_constant_map_has_no_box_and_fails_even_when_its_box_would_hit():
    # a constant positive map used to give the whole-image box: IoU 1 with a whole-image GT box
    for options in ({}, {"normalization": "minmax"}):
        row = Localization(**options).score_one(_sample([[0, 0, 29, 19]]), 3, np.full((20, 30), 2.0),
                                                np.array([3, 0, 1, 2, 4]))
        assert row["degenerate"] and not row["has_box"] and row["iou"] == 0.0
        assert not row["loc_correct_top1"] and not row["gt_known_correct"]


def test_normalization_and_align_corners_are_recorded_and_checked():
    s = Localization(normalization="minmax", align_corners=True).settings()
    assert s["normalization"] == "minmax" and s["align_corners"] is True
    assert Localization().settings()["normalization"] == "max" and Localization().settings()["align_corners"] is False
    with pytest.raises(ValueError, match="normalization='l2'"):
        Localization(normalization="l2")
    with pytest.raises(ValueError, match="align_corners"):
        Localization(align_corners="yes")


def test_align_corners_of_the_resize_to_the_original_size():
    from benchmark.data.transforms import Preprocess

    prep = Preprocess(size=2, mean=(0, 0, 0), std=(1, 1, 1))
    m = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    # 2 -> 4 columns. aligned corners: 0, 1/3, 2/3, 1; half-pixel: 0, 0.25, 0.75, 1
    aligned = prep.to_original(m, (1, 4), align_corners=True)[0, 0].tolist()
    half = prep.to_original(m, (1, 4))[0, 0].tolist()
    assert aligned == pytest.approx([0, 1 / 3, 2 / 3, 1]) and half == pytest.approx([0, 0.25, 0.75, 1])


def test_aggregate_pools_over_images_and_reports_blacklist_variant():
    rows = pd.DataFrame({
        "cls_correct_top1": [True, True, False, True], "cls_correct_top5": [True, True, True, True],
        "loc_correct_top1": [True, False, False, True], "loc_correct_top5": [True, False, True, True],
        "gt_known_correct": [True, False, True, True], "iou": [0.9, 0.1, 0.6, 0.7],
        "degenerate": [False, False, False, True], "has_box": [True, True, True, False],
        "blacklisted": [False, False, False, True],
    })
    out = Localization().aggregate(rows)
    assert out["loc_err_top1"] == 50.0 and out["loc_err_top5"] == 25.0 and out["cls_err_top1"] == 25.0
    assert out["gt_known_loc_acc"] == 75.0 and out["n_degenerate"] == 1 and out["n_images"] == 4
    assert out["loc_err_top1_no_blacklist"] == 100 * (1 - 1 / 3) and out["n_images_no_blacklist"] == 3
