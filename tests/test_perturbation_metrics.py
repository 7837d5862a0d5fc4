"""Deletion, insertion and region perturbation: curves by hand, batching, seeding, and per-sample
agreement with Quantus's PixelFlipping and RegionPerturbation at identical settings."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import Explanation, SaliencyMethod, build_method
from benchmark.metrics._perturbation import (blur, descending_ranks, gaussian_kernel, normalized_auc,
                                             perturbation_curves, step_counts)
from benchmark.metrics.base import build_metric
from benchmark.metrics.region_perturbation import region_ids, region_ranks
from benchmark.models.base import ModelInfo, freeze
from benchmark.types import Sample

quantus = pytest.importorskip("quantus")


def tiny_model(seed=0, classes=5):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes))
    return freeze(net), ModelInfo(name="tiny", num_classes=classes, input_size=12)


def _inputs(seed=0, b=3, size=12):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g), torch.rand(b, size, size, generator=g)


def test_ranks_are_decreasing_with_ties_in_row_major_order():
    maps = torch.tensor([[[0.5, 0.9], [0.5, 0.1]]])
    assert descending_ranks(maps).tolist() == [[1, 0, 2, 3]]


def test_step_counts_and_auc_by_hand():
    assert step_counts(10, 4).tolist() == [0, 4, 8, 10]
    assert normalized_auc([1.0, 0.0]) == 0.5 and normalized_auc([1.0, 1.0, 0.0]) == 0.75
    with pytest.raises(ValueError, match="step=0"):
        step_counts(10, 0)


def test_blur_uses_rise_kernel_with_zero_padding():
    kernel = gaussian_kernel(11, 5.0)
    assert kernel.sum() == pytest.approx(1.0) and kernel[5, 5] == kernel.max() and np.allclose(kernel, kernel.T)
    flat = torch.ones(1, 3, 21, 21)
    out = blur(flat, 11, 5.0)
    assert out[0, :, 10, 10].tolist() == pytest.approx([1.0] * 3, abs=1e-6)  # full kernel inside
    assert out[0, 0, 0, 0] < 0.5  # zeros outside the image, as RISE's conv2d padding


@pytest.mark.parametrize("step,max_batch", [(4, 7), (12, 100)])
def test_deletion_curve_equals_quantus_pixel_flipping_per_sample(step, max_batch):
    model, _ = tiny_model()
    x, a = _inputs()
    y = torch.tensor([0, 3, 4])
    theirs = quantus.PixelFlipping(features_in_step=3 * step, perturb_baseline=0.0, normalise=False,
                                   disable_warnings=True)(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
                                                          a_batch=a[:, None].numpy(), device="cpu", softmax=True)
    ours = perturbation_curves(model, x, torch.zeros_like(x), descending_ranks(a), step_counts(144, step), y,
                               "probability", max_batch)
    # Quantus's curve starts after the first step; ours also holds the unperturbed point
    np.testing.assert_array_equal(ours[:, 1:].numpy(), np.asarray(theirs, np.float32))
    with torch.no_grad():
        assert torch.equal(ours[:, 0], model(x).softmax(1)[torch.arange(3), y])


@pytest.mark.parametrize("size", [12, 13])  # 13: Quantus's centred padding of the region grid
def test_region_perturbation_equals_quantus_per_sample(size):
    model, _ = tiny_model()
    x, a = _inputs(1, size=size)
    y = torch.tensor([1, 2, 0])
    theirs = quantus.RegionPerturbation(patch_size=3, regions_evaluation=6, perturb_baseline=0.5, normalise=False,
                                        disable_warnings=True)(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
                                                               a_batch=a[:, None].numpy(), device="cpu", softmax=True)
    scores = perturbation_curves(model, x, torch.full_like(x, 0.5), region_ranks(a, 3), torch.arange(7), y,
                                 "probability", 5)
    np.testing.assert_array_equal((scores[:, :1] - scores)[:, 1:].numpy(), np.asarray(theirs, np.float32))


def test_region_grid_is_centred_like_quantus():
    ids, count = region_ids((4, 5), 3)  # rows pad (1, 1), columns pad (0, 1)
    assert count == 4
    assert ids.view(4, 5).tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [2, 2, 2, 3, 3], [2, 2, 2, 3, 3]]


def _samples(n, labels=(0,)):
    rng = np.random.default_rng(3)
    return [Sample(image_id=f"img/{i}", image=rng.integers(0, 256, (14, 12, 3), dtype=np.uint8), labels=labels)
            for i in range(n)]


class Constant(SaliencyMethod):
    name = "constant"

    def _explain(self, images, class_ids):
        return Explanation(torch.zeros(*class_ids.shape, *images.shape[-2:]), self.model(images))


def _batch(info, n=3):
    prep = Preprocess(12, info.mean, info.std)
    samples = _samples(n, labels=(1, 3))
    return prep, samples, torch.stack([prep(s.image) for s in samples])


@pytest.mark.parametrize("name", ["deletion", "insertion"])
def test_causal_metric_records_forwards_and_degenerate_maps(name):
    model, info = tiny_model()
    prep, samples, images = _batch(info)
    seen = []
    handle = model.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].shape[0]))
    try:
        metric = build_metric(name, step=10, max_batch=8, bootstrap=200)
        rows = metric.score_batch(samples, images, build_method("gradient", model, info), prep)
    finally:
        handle.remove()
    points = 1 + 15  # ceil(144 / 10) steps after the untouched point
    assert [r["forwards"] for r in rows] == [points] * 3 and len(rows[0]["curve"]) == points
    assert sum(seen) == 3 + 3 + 3 * points  # class choice, the gradient's pass, the curves
    assert max(seen) == 8
    with torch.no_grad():
        probs = model(images).softmax(1)
    whole = 0 if name == "deletion" else -1  # the point where the image is untouched
    assert [r["curve"][whole] for r in rows] == pytest.approx([probs[i, r["class_id"]].item() for i, r in enumerate(rows)])
    assert all(r["auc"] == pytest.approx(normalized_auc(r["curve"])) for r in rows)
    const = metric.score_batch(samples, images, Constant(model, info), prep)
    assert all(np.isnan(r["auc"]) and r["degenerate"] for r in const)
    summary = metric.aggregate(pd.DataFrame(rows + const))
    assert (summary["n"], summary["n_nan"], summary["n_degenerate"], summary["forwards_per_image"]) == (3, 3, 3, points)
    assert summary["direction"] == ("lower" if name == "deletion" else "higher")
    assert summary["ci95_low"] <= summary["mean_auc"] <= summary["ci95_high"]


def test_causal_metric_logit_option_and_batch_size_do_not_change_the_curve_points():
    model, info = tiny_model()
    prep, samples, images = _batch(info)
    method = build_method("gradient", model, info)
    big = build_metric("deletion", step=24, score="logit", max_batch=100).score_batch(samples, images, method, prep)
    small = build_metric("deletion", step=24, score="logit", max_batch=3).score_batch(samples, images, method, prep)
    with torch.no_grad():
        logits = model(images)
    assert big[0]["curve"][0] == pytest.approx(logits[0, big[0]["class_id"]].item(), rel=1e-5)
    np.testing.assert_allclose([r["curve"] for r in big], [r["curve"] for r in small], atol=1e-6)
    with pytest.raises(ValueError, match="score='margin'"):
        build_metric("deletion", score="margin")


def test_region_perturbation_uniform_baseline_is_seeded_per_image():
    model, info = tiny_model()
    prep, samples, images = _batch(info)
    method = build_method("gradient", model, info)
    metric = build_metric("region_perturbation", patch=3, regions=5, seed=7, bootstrap=100)
    together = metric.score_batch(samples, images, method, prep)
    alone = metric.score_batch(samples[2:], images[2:], method, prep)
    assert together[2]["curve"] == pytest.approx(alone[0]["curve"], abs=1e-6)  # draws do not depend on the batch
    assert together[0]["curve"][0] == 0.0 and len(together[0]["curve"]) == 6
    assert together[0]["aopc"] == pytest.approx(np.mean(together[0]["curve"]))
    other = build_metric("region_perturbation", patch=3, regions=5, seed=8).score_batch(samples, images, method, prep)
    assert other[0]["curve"] != pytest.approx(together[0]["curve"])
    noise = metric.substrate(samples[:1], images[:1], prep.mean, prep.std)
    rgb = noise * torch.tensor(prep.std)[:, None, None] + torch.tensor(prep.mean)[:, None, None]
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0 and rgb.std() > 0.2
