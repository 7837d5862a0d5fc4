"""CAM's 10-crop pipeline and bbox generator on inputs small enough to work out by hand."""

import numpy as np
import pytest
import torch

from benchmark.metrics import cam_boxes
from benchmark.metrics.cam_boxes import big_overlap, distance_mask, dt_boxes, guess_order, merge_boxes, to_xyxy
from benchmark.metrics.cam_protocol import (crop_offsets, frame_size, heatmap_uint8, merge_crops, resize_bicubic,
                                            ten_crops)


def test_frame_and_crop_geometry_of_the_released_256_224_setting():
    assert frame_size(224) == 256 and frame_size(64) == 73  # 64 * 256 / 224 = 73.14
    # corners (left column first, as prepare_image.m walks the transposed image) and the centre at 16
    assert crop_offsets(256, 224) == [(0, 0), (32, 0), (0, 32), (32, 32), (16, 16)]
    assert crop_offsets(5, 3) == [(0, 0), (2, 0), (0, 2), (2, 2), (1, 1)]
    assert crop_offsets(73, 64)[4] == (5, 5)  # (73 - 64 + 1) // 2


def test_ten_crops_cut_and_flip_by_hand():
    frame = torch.arange(25.0).view(1, 1, 5, 5)  # pixel value = 5 * row + col
    crops = ten_crops(frame, 3)[0, :, 0]
    assert crops.shape == (10, 3, 3)
    assert crops[1].tolist() == [[10, 11, 12], [15, 16, 17], [20, 21, 22]]  # top 2, left 0
    assert crops[4].tolist() == [[6, 7, 8], [11, 12, 13], [16, 17, 18]]  # centre
    assert crops[6].tolist() == [[12, 11, 10], [17, 16, 15], [22, 21, 20]]  # crop 1 flipped left-right


def test_merge_undoes_the_flips_and_sums_absolute_values():
    # each crop's map marks its own top-left pixel in frame coordinates: after the merge every crop adds
    # |value| at the crop's top-left corner, flipped crops included (their map is unflipped first)
    crops = ten_crops(torch.zeros(1, 1, 5, 5), 3)[0, :, 0].clone()
    for k in range(5):
        crops[k, 0, 0] = -1.0  # negative: counted as |.|
        crops[5 + k, 0, -1] = 2.0  # the flipped crop sees the corner at its right end
    merged = merge_crops(crops, 5)
    expected = torch.zeros(5, 5, dtype=torch.float64)
    for t, l in crop_offsets(5, 3):
        expected[t, l] += 3.0
    assert torch.equal(merged, expected)
    # signed mean over the crops covering each pixel: the centre pixel (2, 2) is covered by all 10
    ones = torch.ones(10, 3, 3)
    assert merge_crops(ones, 5, "mean")[2, 2] == 1.0 and merge_crops(ones, 5)[2, 2] == 10.0
    assert merge_crops(ones, 5)[0, 0] == 2.0  # only the top-left crop and its flip cover the corner


def test_heatmap_is_map_over_max_in_8_bits_rounded_half_up():
    heat = heatmap_uint8(np.array([[0.0, 1.0], [2.0, 4.0]]) / 1.0, jpeg_quality=0)
    assert heat.tolist() == [[0, 64], [128, 255]]  # 63.75 -> 64, 127.5 -> 128 (half up)
    assert heatmap_uint8(np.zeros((2, 2)), 0) is None and heatmap_uint8(-np.ones((2, 2)), 0) is None
    jpeg = heatmap_uint8(np.tile(np.linspace(0, 1, 16), (16, 1)), 75)
    assert jpeg.dtype == np.uint8 and np.abs(jpeg.astype(int) - np.round(np.linspace(0, 255, 16))).max() <= 8


def test_bicubic_resize_uses_keys_kernel_minus_half():
    # 1-D step [0, 1, 1, 0] doubled: output x = 3 samples input 1.25; taps at distances 1.25, .25, .75, 1.75
    # have weights -0.0703, 0.8672, 0.2266, -0.0234 (a = -0.5), so the value is 0.8672 + 0.2266 = 1.09375
    m = np.zeros((4, 4))
    m[:, 1:3] = 1.0
    out = resize_bicubic(m, (4, 8))
    assert out[0, 3] == pytest.approx(1.09375, abs=1e-5) and out[0, 4] == pytest.approx(1.09375, abs=1e-5)


def test_distance_transform_threshold_by_hand():
    # a 1 x 25 foreground strip inside a 3 x 27 image: distance 1 everywhere, scaled to 255: all kept
    strip = np.zeros((3, 27), bool)
    strip[1, 1:26] = True
    assert np.array_equal(distance_mask(strip), strip)
    # one pixel far from the rest: the max distance 24 makes distance 1 -> round(10.6) = 11 > 10 (kept),
    # and with max distance 26, distance 1 -> round(9.8) = 10, not > 10 (dropped)
    for side, kept in ((47, True), (51, False)):
        img = np.zeros((side + 2, side + 2 + 3), bool)
        img[1:side + 1, 1:side + 1] = True  # max distance (side + 1) // 2
        img[1, side + 3] = True  # an isolated pixel at distance 1
        assert distance_mask(img)[1, side + 3] == kept
    assert distance_mask(np.ones((3, 3), bool)).all() and not distance_mask(np.zeros((3, 3), bool)).any()


def test_big_overlap_is_strictly_more_than_half_the_larger_area():
    a = (0, 0, 10, 10)  # area 100; overlap with b: 5 x 10 = 50, not > 50
    assert not big_overlap(a, (5, 0, 10, 10))
    assert big_overlap(a, (4, 0, 10, 10))  # 6 x 10 = 60 > 50


def test_merge_erases_while_iterating_as_released():
    a, b, c, d = (0, 0, 10, 10), (0, 0, 9, 10), (0, 0, 8, 10), (50, 50, 2, 2)
    # i = 0: b overlaps a -> erased, c moves into slot 1 and is skipped; d kept; i = 1: c vs d: kept
    assert merge_boxes([a, b, c, d]) == [a, c, d]
    assert merge_boxes([a, d, b]) == [a, d]


def test_generator_thresholds_clamp_sort_and_merge():
    heat = np.zeros((40, 60), np.uint8)
    heat[10:30, 5:25] = 200  # above every threshold
    heat[12:20, 40:55] = 105  # above 20 and 100 only
    a, b = (5, 10, 20, 20), (40, 12, 15, 8)
    # boxes by threshold: [a, b], [a, b], [a]; sorted [a, a, a, b, b]; merge keeps a, skips the second a,
    # erases the third; b vs b: erased
    assert dt_boxes(heat) == [a, a, b]
    # the right border clamp: a box reaching the image edge loses 5 pixels of width
    edge = np.zeros((20, 30), np.uint8)
    edge[5:15, 20:30] = 255
    assert dt_boxes(edge)[0] == (20, 5, 5, 10)  # width min(10, 30 - 20 - 5)
    assert dt_boxes(heat, (100, 20, 110)) == dt_boxes(heat, cam_boxes.PROGRAM_DEFAULTS)  # not increasing
    assert to_xyxy((5, 10, 20, 20)) == (5, 10, 25, 30)


def test_box_choice_guesses():
    assert guess_order("first") == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]
    assert guess_order("second")[0] == (1, 1)
    assert guess_order("combined") == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0)]
    with pytest.raises(ValueError, match="'third'"):
        guess_order("third")


def _sample(box, label=2, hw=(40, 60)):
    from benchmark.types import Sample

    return Sample(image_id="img", image=np.zeros((*hw, 3), np.uint8), labels=(label,),
                  boxes_xyxy=np.array([box], np.int64), box_labels=np.array([label]), box_difficult=np.zeros(1, bool))


def test_devkit_flags_follow_the_box_choice():
    from benchmark.metrics.cam_localization import CamLocalization

    saliency = np.zeros((40, 60))
    saliency[10:30, 5:25] = 0.3  # heat 77: above threshold 20 only; box 1 (largest): (5, 10, 25, 30)
    saliency[12:20, 40:55] = 1.0  # heat 255: above all three; box (40, 12, 55, 20)
    # boxes [big, small, small, small] -> merge: the first small box erases the third, [big, small, small]
    on_second = _sample((40, 12, 55, 20))
    second_rank = np.array([0, 2, 1, 3, 4])  # GT class ranked 2nd
    first = CamLocalization(jpeg_quality=0).score_crops(on_second, 2, saliency, second_rank)
    assert first["n_boxes"] == 3 and not first["loc_correct_top5"] and not first["gt_known_correct"]
    second = CamLocalization(box_choice="second", jpeg_quality=0).score_crops(on_second, 2, saliency, second_rank)
    assert second["loc_correct_top5"] and not second["loc_correct_top1"] and second["gt_known_correct"]
    combined = CamLocalization(box_choice="combined", jpeg_quality=0)
    assert combined.score_crops(on_second, 2, saliency, second_rank)["loc_correct_top5"]
    # combined reaches rank 3 with the first box only, and ranks 4-5 not at all
    assert not combined.score_crops(on_second, 2, saliency, np.array([0, 1, 2, 3, 4]))["loc_correct_top5"]
    # top-1 under combined is (rank 1, box 1) only
    top1 = combined.score_crops(on_second, 2, saliency, np.array([2, 0, 1, 3, 4]))
    assert not top1["loc_correct_top1"] and top1["loc_correct_top5"]


def test_text_reading_twenty_percent_of_max_largest_component():
    from benchmark.metrics.cam_localization import CamLocalization

    saliency = np.zeros((10, 10))
    saliency[0:2, 0:2] = 1.0
    saliency[5:9, 5:9] = 0.2  # at 20 % of the max: kept, and larger
    row = CamLocalization(box="text", jpeg_quality=0).score_crops(_sample((5, 5, 8, 8), hw=(10, 10)), 2, saliency,
                                                                  np.array([2, 0, 1, 3, 4]))
    assert (row["box_x0"], row["box_y0"], row["box_x1"], row["box_y1"]) == (5, 5, 8, 8) and row["loc_correct_top1"]
    with pytest.raises(ValueError, match="box_choice='combined' needs box=dt_box"):
        CamLocalization(box="text", box_choice="combined")


def test_stored_maps_cannot_feed_the_ten_crops():
    from types import SimpleNamespace

    from benchmark.metrics.cam_localization import CamLocalization

    stored = SimpleNamespace(uses_samples=True, name="precomputed")
    with pytest.raises(ValueError, match="'precomputed' reads stored maps"):
        CamLocalization(jpeg_quality=0).prepare_batch([_sample((0, 0, 1, 1))], torch.zeros(1, 3, 8, 8), stored, None)


def test_released_binary_zeroes_the_one_pixel_frame_before_tracing_as_opencv_2_4():
    from benchmark.metrics.cam_boxes import contour_boxes

    corner = np.zeros((30, 30), bool)
    corner[0:10, 0:12] = True  # touches the top and left borders
    assert contour_boxes(corner, "source") == [(0, 0, 12, 10)]
    assert contour_boxes(corner, "released_binary") == [(1, 1, 11, 9)]  # traced inside the zeroed frame
    assert contour_boxes(corner) == contour_boxes(corner, "released_binary")  # the default
    inside = np.zeros((30, 30), bool)
    inside[3:10, 4:12] = True
    assert contour_boxes(inside, "source") == contour_boxes(inside, "released_binary") == [(4, 3, 8, 7)]
    with pytest.raises(ValueError, match="border='opencv3'; expected one of"):
        contour_boxes(inside, "opencv3")
    heat = np.zeros((40, 40), np.uint8)
    heat[0:40, 0:20] = 255  # the left half, border to border
    assert dt_boxes(heat, border="source")[0][:2] == (0, 0) and dt_boxes(heat)[0][:2] == (1, 1)
