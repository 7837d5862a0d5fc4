"""ROAD: the imputation against pytorch-grad-cam's NoisyLinearImputer, and the metric per sample against
its ROADMostRelevantFirst / ROADLeastRelevantFirst with the same noise draws."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.metrics._imputation import linear_imputation, noisy_linear_imputation
from benchmark.metrics._perturbation import image_generator
from benchmark.metrics.base import build_metric
from benchmark.metrics.road import removed_pixels
from benchmark.models.base import ModelInfo, freeze
from benchmark.types import Sample

road = pytest.importorskip("pytorch_grad_cam.metrics.road")
targets = pytest.importorskip("pytorch_grad_cam.utils.model_targets")


def test_imputation_by_hand_is_the_neighbour_mean():
    image = np.arange(9, dtype=np.float64).reshape(1, 3, 3)
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    out = linear_imputation(image, removed)
    assert out[0, 1, 1] == pytest.approx(4.0)  # weighted mean of 0..8 without the centre, symmetric
    image[0, 0, 0] = 12.0
    assert linear_imputation(image, removed)[0, 1, 1] == pytest.approx(4.0 + 12 / 12)
    assert np.array_equal(linear_imputation(image, np.zeros((3, 3), bool)), image)


@pytest.mark.parametrize("size", [9, 20])
def test_imputation_equals_pytorch_grad_cam(size):
    g = torch.Generator().manual_seed(size)
    x, m = torch.randn(3, size, size, generator=g), torch.rand(size, size, generator=g)
    keep = (m < np.percentile(m.numpy(), 60)).float()
    theirs = road.NoisyLinearImputer(noise=0)(x, keep)
    ours = noisy_linear_imputation(x, keep == 0, 0.0, None)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert torch.equal(ours[:, keep == 1], x[:, keep == 1])


def tiny_model(classes=4):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes))
    return freeze(net), ModelInfo(name="tiny", num_classes=classes, input_size=12)


def test_road_metric_equals_pytorch_grad_cam_per_sample_with_the_same_noise():
    model, info = tiny_model()
    prep = Preprocess(12, info.mean, info.std)
    rng = np.random.default_rng(0)
    samples = [Sample(image_id=f"img/{i}", image=rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), labels=(1, 2))
               for i in range(2)]
    images = torch.stack([prep(s.image) for s in samples])
    method = build_method("gradient", model, info)
    metric = build_metric("road", percentages=[20, 50], noise=0.01, seed=3, bootstrap=100)
    rows = metric.score_batch(samples, images, method, prep)
    cams = method(images, torch.tensor([r["class_id"] for r in rows])).numpy()
    for i, row in enumerate(rows):
        cam = cams[i:i + 1]
        target = [targets.ClassifierOutputSoftmaxTarget(row["class_id"])]
        for order, cls, key in (("morf", road.ROADMostRelevantFirst, "morf"), ("lerf", road.ROADLeastRelevantFirst, "lerf")):
            for j, p in enumerate((20.0, 50.0)):
                # pytorch-grad-cam: percentile = share kept, noise 0.01 from the global generator
                torch.manual_seed(image_generator(3, f"{samples[i].image_id}:{order}:{p}").initial_seed())
                theirs = cls(percentile=100 - p)(images[i:i + 1], cam, target, model, return_diff=False)
                assert row[key][j] == pytest.approx(float(theirs[0]), abs=1e-6)
    assert all(r["forwards"] == 5 for r in rows)
    assert rows[0]["combined"] == pytest.approx((np.mean(rows[0]["lerf"]) - np.mean(rows[0]["morf"])) / 2)
    summary = metric.aggregate(pd.DataFrame(rows))
    assert summary["morf_20"] == pytest.approx(np.mean([r["morf"][0] for r in rows]))
    assert summary["direction"] == "higher" and summary["n"] == 2


def test_removed_share_and_bad_percentages():
    m = torch.arange(100, dtype=torch.float32).view(10, 10) / 100
    assert int(removed_pixels(m, 30, "morf").sum()) == 30 and bool(removed_pixels(m, 30, "morf")[9, 9])
    assert int(removed_pixels(m, 30, "lerf").sum()) == 30 and bool(removed_pixels(m, 30, "lerf")[0, 0])
    with pytest.raises(ValueError, match="percentages"):
        build_metric("road", percentages=[0, 50])
