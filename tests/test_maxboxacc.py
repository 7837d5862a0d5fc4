"""MaxBoxAcc / MaxBoxAccV2 (Choe et al., CVPR 2020) on maps small enough to work out by hand."""

import numpy as np
import pandas as pd
import pytest

from benchmark.metrics.localization import Localization
from benchmark.metrics.maxboxacc import aggregate_hits, boxes_at, hit_strings, normalize_scoremap, thresholds
from benchmark.types import Sample


def test_sweep_and_normalization():
    assert len(thresholds()) == 100 and thresholds()[0] == 0 and thresholds()[-1] == pytest.approx(0.99)
    assert normalize_scoremap(np.array([[2.0, 4.0], [3.0, 2.0]])).tolist() == [[0.0, 1.0], [0.5, 0.0]]
    assert not normalize_scoremap(np.full((2, 2), 3.0)).any() and not normalize_scoremap(np.array([[np.nan, 1.0]])).any()


def _two_blobs():
    m = np.zeros((20, 30))
    m[2:6, 2:6] = 1.0  # 16 px, value 255 in 8 bits
    m[10:18, 10:26] = 0.5  # 128 px, value 127
    return m


def test_boxes_at_a_threshold_largest_contour_or_all():
    s = normalize_scoremap(_two_blobs())
    # tau 0.3: cut int(0.3 * 255) = 76, both blobs pass; the larger contour wins; boxes are (x, y, x + w, y + h)
    assert boxes_at(s, 0.3, False) == [(10, 10, 26, 18)]
    assert sorted(boxes_at(s, 0.3, True)) == [(2, 2, 6, 6), (10, 10, 26, 18)]
    assert boxes_at(s, 0.6, False) == [(2, 2, 6, 6)]  # cut 153: only the small blob
    assert boxes_at(np.zeros((4, 4)), 0.5, True) == [(0, 0, 0, 0)]  # no contour


def test_hits_and_best_threshold_by_hand():
    gt = np.array([[2, 2, 5, 5]])  # the small blob, inclusive: the box (2, 2, 6, 6) has IoU 16 / 25 = 0.64
    hits = hit_strings(_two_blobs(), gt)
    # largest contour: the big blob up to tau = 0.49 (cut 124 < 127), the small one from tau = 0.50 (cut 127)
    assert hits["maxboxacc_iou50"] == "0" * 50 + "1" * 50
    assert hits["maxboxacc_v2_iou50"] == "1" * 100  # every contour: the small blob is always there
    assert hits["maxboxacc_v2_iou70"] == "0" * 100  # 0.64 < 0.7
    miss = {k: "0" * 100 for k in hits}
    out = aggregate_hits(pd.DataFrame([hits, miss]))
    assert out["maxboxacc"] == 50.0 and out["maxboxacc_iou50_threshold"] == 0.5
    assert out["maxboxacc_v2"] == pytest.approx((50 + 50 + 0) / 3) and out["maxboxacc_v2_iou30_threshold"] == 0.0


def test_localization_reports_maxboxacc_from_the_same_maps_only_when_asked():
    sample = Sample(image_id="a", image=np.zeros((20, 30, 3), np.uint8), labels=(1,), boxes_xyxy=np.array([[2, 2, 5, 5]]),
                    box_labels=np.array([1]), box_difficult=np.zeros(1, bool))
    top = np.array([1, 0, 2, 3, 4])
    assert "maxboxacc_iou50" not in Localization().score_one(sample, 1, _two_blobs(), top)
    metric = Localization(maxboxacc=True)
    row = metric.score_one(sample, 1, _two_blobs(), top)
    assert metric.settings()["maxboxacc_step"] == 0.01 and "maxboxacc" not in Localization().settings()
    out = metric.aggregate(pd.DataFrame([row]))
    assert out["maxboxacc"] == 100.0 and out["loc_err_top1"] == 100.0  # 15 % of max keeps the big blob: a miss
