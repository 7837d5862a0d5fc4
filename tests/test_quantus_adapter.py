"""``metric=quantus_<name>``: Quantus's own call through the adapter equals the library called directly and
the native metrics, its keywords are checked, and the shared model stays as it was."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.metrics.base import METRICS, build_metric
from benchmark.metrics.mass import relevance_mass
from benchmark.models.base import ModelInfo, freeze
from benchmark.registry import OptionError
from benchmark.types import Sample

quantus = pytest.importorskip("quantus")


def setup(size=32):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 4))
    info = ModelInfo(name="tiny", num_classes=4, input_size=size)
    prep = Preprocess(size, info.mean, info.std)
    rng = np.random.default_rng(0)
    boxes = np.array([[4, 2, 20, 30], [0, 0, 9, 9]])
    samples = [Sample(image_id=f"img/{i}", image=rng.integers(0, 256, (size, size, 3), dtype=np.uint8), labels=(1, 2),
                      boxes_xyxy=boxes, box_labels=np.array([1, 2]), box_difficult=np.zeros(2, bool)) for i in range(3)]
    model = freeze(net)
    return model, info, prep, samples, torch.stack([prep(s.image) for s in samples])


def test_names_register_without_importing_quantus_and_keywords_are_checked():
    assert "quantus_pixel_flipping" in METRICS and METRICS.options("quantus_mprt")[1]  # open: the adapter checks
    with pytest.raises(OptionError, match=r"'features_in_stp'.*features_in_step.*quantus.PixelFlipping"):
        build_metric("quantus_pixel_flipping", features_in_stp=3)


def test_sparseness_through_the_adapter_equals_quantus_called_directly():
    model, info, prep, samples, images = setup()
    method = build_method("gradient", model, info)
    rows = build_metric("quantus_sparseness", normalise=False).score_batch(samples, images, method, prep)
    cls = torch.tensor([r["class_id"] for r in rows])
    maps = method(images, cls)[:, None].numpy()
    direct = quantus.Sparseness(normalise=False, disable_warnings=True)(
        model=model, x_batch=images.numpy(), y_batch=cls.numpy(), a_batch=maps, device="cpu")
    np.testing.assert_allclose([r["score"] for r in rows], direct, rtol=1e-6)
    assert build_metric("quantus_sparseness").aggregate(pd.DataFrame(rows))["direction"] == "higher"


def test_relevance_mass_accuracy_gets_the_class_boxes_at_input_resolution():
    model, info, prep, samples, images = setup()
    method = build_method("gradient", model, info)
    rows = build_metric("quantus_relevance_mass_accuracy", normalise=False).score_batch(samples, images, method, prep)
    for i, row in enumerate(rows):
        region = np.zeros((32, 32), bool)
        x0, y0, x1, y1 = (4, 2, 20, 30) if row["class_id"] == 1 else (0, 0, 9, 9)
        region[y0:y1 + 1, x0:x1 + 1] = True
        saliency = method(images[i:i + 1], torch.tensor([row["class_id"]]))[0].numpy()
        assert row["score"] == pytest.approx(relevance_mass(saliency, region), rel=1e-5)


def test_mprt_through_the_adapter_explains_the_randomized_copies_like_the_native_check():
    model, info, prep, samples, images = setup()
    method = build_method("gradient", model, info)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = build_metric("quantus_mprt", seed=0).score_batch(samples, images, method, prep)
    native = build_metric("sanity_model_randomization", variants=["cascading"], seed=42).score_batch(
        samples, images, method, prep)
    np.testing.assert_allclose([r["scores"] for r in rows], [r["cascading_spearman_abs"] for r in native], atol=1e-9)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
