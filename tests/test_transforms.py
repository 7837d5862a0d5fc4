"""Preprocessing modes (DESIGN 4.1): sizes, crop offsets, boxes into the input and maps back out,
with hand-worked values for a 500x375 (W x H) image, the most common ILSVRC/VOC size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.transforms import Preprocess

H, W = 375, 500  # original image, rows x columns
BOX = (100, 80, 299, 249)  # x0, y0, x1, y1 inclusive
UNIT = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # input = pixel / 255


def prep(mode: str, size: int = 224) -> Preprocess:
    return Preprocess(size, mode=mode, **UNIT)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def image_with_box(h: int, w: int, box) -> np.ndarray:
    image = np.zeros((h, w, 3), np.uint8)
    image[box[1]:box[3] + 1, box[0]:box[2] + 1] = 255
    return image


def test_paper_mode_resizes_the_whole_image_to_a_square():
    p = prep("paper")
    assert p._resized_hw(H, W) == (224, 224) and p.crop_offset(H, W) == (0, 0)
    assert tuple(p(image_with_box(H, W, BOX)).shape) == (3, 224, 224)


def test_center_crop_sizes_and_offsets_hand_worked():
    p = prep("center_crop")
    # shorter side 375 -> 256, longer 500 * 256 / 375 = 341.33 -> 341; crop (256-224)/2 = 16, (341-224)//2 = 58
    assert p._resized_hw(H, W) == (256, 341) and p.crop_offset(H, W) == (16, 58)
    assert p._resized_hw(W, H) == (341, 256) and p.crop_offset(W, H) == (58, 16)  # portrait
    assert p._resized_hw(224, 224) == (256, 256) and p.crop_offset(224, 224) == (16, 16)
    assert tuple(p(image_with_box(H, W, BOX)).shape) == (3, 224, 224)


def test_normalization_uses_mean_and_std_per_channel():
    p = Preprocess(4, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    x = p(np.full((8, 8, 3), 255, np.uint8))
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, 3.0, 0.5]))


@pytest.mark.parametrize("mode, expected", [
    # paper: sx = 224/500 = 0.448, sy = 224/375 = 0.5973; x0 = 44.8, y0 = 47.8, x1 = 300*0.448-1 = 133.4,
    # y1 = 250*0.5973-1 = 148.3
    ("paper", (45, 48, 133, 148)),
    # center_crop: sx = 341/500 = 0.682, sy = 256/375 = 0.6827, minus the offsets (58, 16):
    # x0 = 68.2-58 = 10.2, y0 = 54.6-16 = 38.6, x1 = 204.6-1-58 = 145.6, y1 = 170.7-1-16 = 153.7
    ("center_crop", (10, 39, 146, 154)),
])
def test_box_into_input_hand_worked(mode, expected):
    assert tuple(prep(mode).boxes_to_input(np.array([BOX]), (H, W))[0]) == expected


@pytest.mark.parametrize("mode", ["paper", "center_crop"])
@pytest.mark.parametrize("hw", [(375, 500), (500, 375), (300, 451), (100, 90), (224, 224)])
def test_drawn_box_lands_on_the_mapped_box(mode, hw):
    h, w = hw
    box = (int(w * 0.3), int(h * 0.25), int(w * 0.7), int(h * 0.8))
    p = prep(mode)
    drawn = bbox(p(image_with_box(h, w, box))[0].numpy() > 0.5)
    mapped = p.boxes_to_input(np.array([box]), hw)[0]
    assert np.abs(np.array(drawn) - mapped).max() <= 1, (drawn, mapped)


@pytest.mark.parametrize("mode", ["paper", "center_crop"])
@pytest.mark.parametrize("hw", [(375, 500), (500, 375), (300, 451), (100, 90), (224, 224)])
def test_map_of_the_mapped_box_comes_back_as_the_box(mode, hw):
    h, w = hw
    box = (int(w * 0.3), int(h * 0.25), int(w * 0.7), int(h * 0.8))
    p = prep(mode)
    x0, y0, x1, y1 = p.boxes_to_input(np.array([box]), hw)[0]
    maps = torch.zeros(1, 224, 224)
    maps[0, y0:y1 + 1, x0:x1 + 1] = 1.0
    back = p.to_original(maps, hw)
    assert tuple(back.shape) == (1, h, w)
    recovered = bbox(back[0].numpy() >= 0.5)
    assert np.abs(np.array(recovered) - np.array(box)).max() <= 2, (recovered, box)


def test_center_crop_map_is_zero_outside_the_crop_hand_worked():
    # An all-ones map placed at the crop (rows 16..239, cols 58..281 of the 256x341 frame), then
    # resized bilinearly to 375x500. Original column x samples frame column u = (x+0.5)*341/500 - 0.5:
    # u <= 57 (x <= 83) touches no crop column -> 0; x = 84: u = 57.129 -> 0.129; u in [58, 281]
    # (x in 86..412) -> 1; x = 413: u = 281.507 -> 0.493; x >= 414 -> 0. Rows likewise with 256/375.
    back = prep("center_crop").to_original(torch.ones(1, 224, 224), (H, W))[0].numpy()
    row, col = back[200], back[:, 250]
    assert (row[:84] == 0).all() and (row[86:413] == 1).all() and (row[414:] == 0).all()
    assert row[84] == pytest.approx(0.129, abs=1e-3) and row[413] == pytest.approx(0.493, abs=1e-3)
    assert (col[:23] == 0).all() and (col[24:351] == 1).all() and (col[352:] == 0).all()
    assert col[23] == pytest.approx(0.5427, abs=1e-3) and col[351] == pytest.approx(0.5427, abs=1e-3)


def test_paper_map_of_ones_stays_ones_everywhere():
    back = prep("paper").to_original(torch.ones(2, 224, 224), (H, W))
    assert tuple(back.shape) == (2, H, W) and torch.all(back == 1)


def test_box_partly_outside_the_crop_is_clipped_to_it():
    # rows 250..800 of a 1000x230 portrait; the 256x1113 frame keeps rows 444..667 (orig 398.9..600.2)
    p = prep("center_crop")
    x0, y0, x1, y1 = p.boxes_to_input(np.array([(69, 250, 161, 800)]), (1000, 230))[0]
    assert (y0, y1) == (0, 223) and 0 < x0 < x1 < 223


def test_box_wholly_outside_the_crop_is_marked_invisible():
    # cols 0..40 of 500 -> frame cols 0..27, all left of the crop (starts at 58)
    out = prep("center_crop").boxes_to_input(np.array([(0, 100, 40, 200)]), (H, W))[0]
    assert tuple(out) == (-1, -1, -1, -1)


def test_one_pixel_wide_box_stays_a_box():
    # col 11 of 500 in paper mode: x0 = round(11*0.448) = 5, x1 = round(12*0.448 - 1) = 4 < x0
    x0, _, x1, _ = prep("paper").boxes_to_input(np.array([(11, 0, 11, 10)]), (H, W))[0]
    assert x1 >= x0


def test_unknown_mode_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="center_crop"):
        Preprocess(224, mode="crop", **UNIT)
