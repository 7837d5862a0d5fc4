"""Golden tests for box extraction and IoU, worked out by hand."""

import numpy as np
import pytest

from benchmark.metrics.boxes import box_from_map, iou_xyxy, max_iou


def test_single_blob_box_is_min_max_of_its_pixels():
    m = np.zeros((6, 8))
    m[1:4, 2:6] = 1.0  # rows 1..3, cols 2..5
    assert box_from_map(m) == (2, 1, 5, 3)


def test_threshold_is_fifteen_percent_of_max_inclusive():
    m = np.zeros((5, 5))
    m[2, 2] = 1.0
    m[2, 3] = 0.15  # exactly at the threshold: kept (>=)
    m[2, 1] = 0.1499  # below: dropped
    assert box_from_map(m) == (2, 2, 3, 2)


def test_all_zero_and_negative_maps_give_no_box():
    assert box_from_map(np.zeros((4, 4))) is None
    assert box_from_map(-np.ones((4, 4))) is None


def test_non_finite_map_gives_no_box():
    m = np.ones((3, 3))
    m[0, 0] = np.nan
    assert box_from_map(m) is None
    m[0, 0] = np.inf
    assert box_from_map(m) is None


def test_largest_of_several_components_wins():
    m = np.zeros((8, 8))
    m[0:2, 0:2] = 1.0  # 4 pixels, holds the max
    m[4:7, 4:7] = 0.5  # 9 pixels
    assert box_from_map(m) == (4, 4, 6, 6)


def test_diagonal_pixels_are_one_component_with_8_connectivity():
    m = np.zeros((5, 5))
    m[0, 0] = m[1, 1] = m[2, 2] = 1.0  # 3 diagonal pixels: one segment
    m[4, 3] = m[4, 4] = 1.0  # 2 pixels apart
    assert box_from_map(m) == (0, 0, 2, 2)


def test_tie_goes_to_first_segment_in_raster_order():
    m = np.zeros((5, 7))
    m[3, 0:2] = 1.0  # 2 pixels, starts at row 3
    m[0, 5:7] = 1.0  # 2 pixels, starts at row 0: first in raster order
    assert box_from_map(m) == (5, 0, 6, 0)


def test_iou_inclusive_convention_by_hand():
    # a: 0..9 x 0..9 = 100 px; b: 5..14 x 5..14 = 100 px; overlap 5..9 x 5..9 = 25 px
    assert iou_xyxy((0, 0, 9, 9), (5, 5, 14, 14)) == pytest.approx(25 / 175)
    assert iou_xyxy((0, 0, 0, 0), (0, 0, 0, 0)) == 1.0
    assert iou_xyxy((0, 0, 4, 4), (5, 0, 9, 4)) == 0.0  # touching edges: no shared pixel
    assert iou_xyxy((0, 0, 4, 4), (4, 0, 8, 4)) == pytest.approx(5 / 45)


def test_max_iou_over_gt_boxes_and_no_box():
    gts = np.array([[0, 0, 9, 9], [20, 20, 29, 29]])
    assert max_iou((20, 20, 29, 29), gts) == 1.0
    assert max_iou(None, gts) == 0.0
    assert max_iou((0, 0, 1, 1), np.zeros((0, 4))) == 0.0


def test_constant_positive_map_gives_no_box_under_every_rule():
    # the old rule kept every pixel of a constant map (>= 15 % of its max) and returned the whole image
    for normalization in ("max", "minmax"):
        assert box_from_map(np.full((4, 6), 2.0), normalization=normalization) is None


def test_minmax_threshold_is_min_plus_fifteen_percent_of_range():
    # min -1, max 1: the cut is -1 + 0.15 * 2 = -0.7; under max it is 0.15 (negatives never pass)
    m = np.full((3, 8), -1.0)
    m[1, 0] = 1.0
    m[1, 1:4] = -0.7  # exactly at the minmax cut: kept
    m[1, 4] = -0.7001  # below: dropped
    assert box_from_map(m, normalization="minmax") == (0, 1, 3, 1)
    assert box_from_map(m, normalization="max") == (0, 1, 0, 1)


def test_minmax_lets_negative_values_change_the_box_where_max_cannot():
    # m and ReLU(m) give the same box under max; under minmax the negative plateau is above the cut
    m = np.full((4, 4), -1.0)
    m[0, 0] = 1.0
    m[2:4, 0:4] = -0.5  # 8 pixels above the cut -0.7, not touching the peak
    assert box_from_map(m, normalization="max") == box_from_map(np.maximum(m, 0), normalization="max") == (0, 0, 0, 0)
    assert box_from_map(m, normalization="minmax") == (0, 2, 3, 3)
    assert box_from_map(np.maximum(m, 0), normalization="minmax") == (0, 0, 0, 0)


def test_unknown_normalization_is_an_error_naming_it():
    with pytest.raises(ValueError, match="normalization='sum'"):
        box_from_map(np.eye(3), normalization="sum")
