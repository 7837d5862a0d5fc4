"""TorchRay's pointing protocol as settings, on hand-worked inputs: smoothing (sigma rule, which
methods), aspect-kept preprocessing (sizes, boxes, maps back), the difficult-list reader, the
class mean over all classes."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.data.transforms import Preprocess
from benchmark.metrics._pointing_torchray import DifficultList, class_mean_all_classes, gaussian_smooth, smoothing_sigma
from benchmark.metrics.pointing import Pointing
from benchmark.types import Sample

from test_pointing import FakeMethod, _sample

IDENTITY = Preprocess(40, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # 40x40 images: to_original is the identity


# ---------------------------------------------------------------- smoothing


def test_sigma_is_a_fraction_of_the_longer_side():
    assert smoothing_sigma(0.02, (375, 500)) == pytest.approx(10.0)
    assert smoothing_sigma(0.02, (500, 333)) == pytest.approx(10.0)
    assert smoothing_sigma(0.0, (40, 40)) == 0.0


def test_gaussian_of_a_delta_is_the_normalized_kernel_by_hand():
    delta = torch.zeros(1, 21, 21)
    delta[0, 10, 10] = 1.0
    out = gaussian_smooth(delta, 1.0)[0]
    taps = [math.exp(-0.5 * i * i) for i in range(-4, 5)]  # width ceil(4 sigma) = 4
    total = sum(taps)
    assert out[10, 10].item() == pytest.approx((1 / total) ** 2, rel=1e-6)
    assert out[10, 11].item() == pytest.approx(taps[5] / total * taps[4] / total, rel=1e-6)
    assert out[10, 15].item() == 0.0  # beyond 4 sigma: outside the kernel
    assert out.sum().item() == pytest.approx(1.0, rel=1e-6)  # away from the borders nothing is lost
    flat = torch.full((1, 6, 9), 3.0)
    assert torch.allclose(gaussian_smooth(flat, 2.5), flat)  # replicated borders keep a constant map constant
    assert torch.equal(gaussian_smooth(delta, 0.0), delta)


def _spike_and_blob():
    """A one-pixel spike (raw maximum) far from a broad blob (maximum once smoothed)."""
    m = np.zeros((40, 40), np.float32)
    m[5, 5] = 1.0
    m[28:35, 28:35] = 0.5
    return m


def test_smoothing_moves_the_point_for_pixel_space_methods_only():
    sample = _sample([[27, 27, 36, 36]], [0], hw=(40, 40))
    images = torch.zeros(1, 3, 40, 40)
    raw = Pointing(smooth=0.0)
    smooth = Pointing(smooth=0.05)  # sigma = 0.05 * 40 = 2 px
    gradient, grad_cam = FakeMethod({0: _spike_and_blob()}), FakeMethod({0: _spike_and_blob()})
    gradient.name, grad_cam.name = "gradient", "grad_cam"
    assert smooth.smooths(gradient) and not smooth.smooths(grad_cam) and not raw.smooths(gradient)
    (before,) = raw.score_batch([sample], images, gradient, IDENTITY)
    (after,) = smooth.score_batch([sample], images, gradient, IDENTITY)
    (untouched,) = smooth.score_batch([sample], images, grad_cam, IDENTITY)
    assert (before["point_x"], before["point_y"], before["hit"], before["smoothed"]) == (5, 5, False, False)
    assert (after["point_x"], after["point_y"], after["hit"], after["smoothed"]) == (31, 31, True, True)
    assert (untouched["point_x"], untouched["point_y"], untouched["smoothed"]) == (5, 5, False)
    settings = smooth.settings()
    assert settings["smooth"] == 0.05 and settings["smooth_methods"] == ["gradient", "guided_backprop", "deconvnet"]
    assert raw.settings()["smoothing"] == "none"
    with pytest.raises(ValueError, match="smooth=2"):
        Pointing(smooth=2)


# ---------------------------------------------------------------- aspect-kept input


def test_shorter_side_keeps_the_aspect_ratio_by_hand():
    prep = Preprocess(224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "shorter_side")
    assert prep._resized_hw(375, 500) == (224, 299)  # 500 * 224 / 375 = 298.67
    assert prep._resized_hw(500, 333) == (336, 224)  # 500 * 224 / 333 = 336.34
    assert prep._resized_hw(224, 224) == (224, 224)
    x = prep(np.zeros((375, 500, 3), np.uint8))
    assert tuple(x.shape) == (3, 224, 299)
    # boxes: x scales by 299/500, y by 224/375; inclusive ends map through (end + 1) * s - 1
    boxes = prep.boxes_to_input(np.array([[0, 0, 499, 374], [100, 50, 199, 149]]), (375, 500))
    assert boxes.tolist() == [[0, 0, 298, 223], [60, 30, 119, 89]]
    # the map comes back at the original size; a constant map stays exactly constant
    back = prep.to_original(torch.full((2, 224, 299), 0.25), (375, 500))
    assert tuple(back.shape) == (2, 375, 500) and torch.all(back == 0.25)


def test_a_map_peaked_in_the_input_box_points_into_the_original_box():
    prep = Preprocess(224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "shorter_side")
    box = np.array([[100, 50, 199, 149]])
    (x0, y0, x1, y1), = prep.boxes_to_input(box, (375, 500))
    m = torch.zeros(1, 224, 299)
    m[0, (y0 + y1) // 2, (x0 + x1) // 2] = 1.0
    back = prep.to_original(m, (375, 500))[0].numpy()
    y, x = divmod(int(np.argmax(back)), back.shape[1])
    assert 100 <= x <= 199 and 50 <= y <= 149
    assert abs(x - 150) <= 1 and abs(y - 100) <= 1  # the box centre, to a pixel


# ---------------------------------------------------------------- difficult lists


def _write_list(tmp_path, lines):
    path = tmp_path / "pointing_game_ebp_difficult.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_difficult_list_reader_by_hand(tmp_path):
    path = _write_list(tmp_path, ["000001\t0\t1\t0", "000002\t1\t1\t1", "COCO_val2014_000000000042\t0\t0\t1"])
    flags = DifficultList(path, num_classes=3)
    assert flags.flags["000001"] == (False, True, False)
    assert flags.in_subset("000001", 1) and not flags.in_subset("000001", 0)
    assert flags.in_subset("000002", 2)
    assert flags.in_subset("000009", 0)  # an unlisted image stays in the subset, as TorchRay scores it
    assert flags.in_subset("000000000042", 2, "val2014") and not flags.in_subset("000000000042", 0, "val2014")
    assert "EBP list" in flags.describe() and "3 images" in flags.describe()
    with pytest.raises(ValueError, match=r"line 1: 3 flags .* expected 4"):
        DifficultList(path, num_classes=4)
    bad = _write_list(tmp_path, ["000001\t0\t2\t0"])
    with pytest.raises(ValueError, match="line 1"):
        DifficultList(bad)
    with pytest.raises(FileNotFoundError, match="difficult_list"):
        DifficultList(tmp_path / "missing.txt")


def test_pointing_reads_the_difficult_subset_from_the_list(tmp_path):
    path = _write_list(tmp_path, ["a\t1\t0", "b\t0\t0"])
    metric = Pointing(difficult_list=str(path), all_classes=2)
    peak = np.zeros((40, 40), np.float32)
    peak[10, 10] = 1.0
    samples = [_sample([[5, 5, 15, 15], [25, 25, 35, 35]], [0, 1], hw=(40, 40), image_id=i) for i in ("a", "b", "c")]
    rows = metric.score_batch(samples, torch.zeros(3, 3, 40, 40), FakeMethod({0: peak, 1: peak}), IDENTITY)
    subset = {(r["image_id"], r["class_id"]): r["difficult_subset"] for r in rows}
    assert subset == {("a", 0): True, ("a", 1): False, ("b", 0): False, ("b", 1): False,
                      ("c", 0): True, ("c", 1): True}
    summary = metric.aggregate(pd.DataFrame(rows))
    # the point (10, 10) hits class 0 and misses class 1 (nearest box pixel (25, 25), 21.2 px away)
    assert summary["difficult_n_records"] == 3 and summary["difficult_acc_pooled"] == pytest.approx(200 / 3)
    assert metric.settings()["difficult_subset"].startswith("EBP list")
    assert Pointing().settings()["difficult_subset"].startswith("computed")


# ---------------------------------------------------------------- class mean over all classes


def test_class_mean_over_all_classes_by_hand():
    records = pd.DataFrame({"class_id": [0, 0, 2], "hit": [True, False, True]})
    assert class_mean_all_classes(records, 4) == pytest.approx(100 * (0.5 + 0 + 1 + 0) / 4)
    assert class_mean_all_classes(records.iloc[:0], 4) == 0.0
    with pytest.raises(ValueError, match="all_classes"):
        class_mean_all_classes(records, 2)
    summary = Pointing(all_classes=4).aggregate(records.assign(image_id=["x", "x", "y"], degenerate=False,
                                                               difficult_subset=[True, True, False]))
    assert summary["acc_class_mean"] == pytest.approx(75.0)  # classes met only
    assert summary["acc_class_mean_all_classes"] == pytest.approx(37.5)
    assert summary["difficult_acc_class_mean_all_classes"] == pytest.approx(12.5)
    assert "acc_class_mean_all_classes" not in Pointing().aggregate(records.assign(
        image_id="x", degenerate=False, difficult_subset=False))
