"""Occlusion at the original resolution (patch and stride in original pixels), by hand."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.methods._occlusion_original import OriginalOcclusion
from benchmark.metrics.base import build_metric
from benchmark.models.base import ModelInfo, freeze
from benchmark.types import Sample


class MeanOfRed(nn.Module):
    """Logit 0 = mean of the (normalized) red channel: an occluded pixel lowers it by 1 / (H W)."""

    def forward(self, x):
        return torch.stack([x[:, 0].mean(dim=(1, 2)), -x[:, 0].mean(dim=(1, 2))], dim=1)


def _engine(size, patch, stride, mode="paper"):
    prep = Preprocess(size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), mode)
    info = ModelInfo(name="mean_of_red", num_classes=2, input_size=size)
    return OriginalOcclusion(freeze(MeanOfRed()), info, prep, patch=patch, stride=stride, fill=0.0), prep


def test_values_by_hand_when_the_input_is_the_original_size():
    engine, _ = _engine(8, patch=3, stride=1)
    image = np.full((8, 8, 3), 255, np.uint8)  # red 1.0 everywhere; the fill color is 0 (mean 0, std 1)
    m = engine.map(image, 0, "cpu")
    assert m.shape == (8, 8) and m.dtype == np.float32
    assert m[4, 4] == pytest.approx(9 / 64)  # a full 3x3 square
    assert m[0, 0] == pytest.approx(4 / 64)  # the corner: 2x2 of the square inside the image
    assert m[0, 4] == pytest.approx(6 / 64)


def test_patch_and_stride_are_in_original_pixels():
    engine, _ = _engine(8, patch=4, stride=2)
    image = np.full((16, 24, 3), 255, np.uint8)  # resized to 8x8: the occluder spans 2x1.33 input pixels
    m = engine.map(image, 0, "cpu")
    assert m.shape == (16, 24)
    # a 4x4 original square is 16 / 384 of the image; the resize keeps the mean, so the drop is that share
    assert m[8, 12] == pytest.approx(16 / 384, rel=1e-4)
    assert m[8, 13] == pytest.approx(m[8, 12], rel=1e-4)  # between two centers: interpolated, equal here
    assert engine.settings()["resolution"] == "original"


def test_metric_at_original_resolution_records_and_caches_original_size_maps(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    model, info = freeze(net), ModelInfo(name="tiny", num_classes=3, input_size=12)
    prep = Preprocess(12, info.mean, info.std)
    rng = np.random.default_rng(0)
    samples = [Sample(image_id=f"i{k}", image=rng.integers(0, 256, (18, 30, 3), dtype=np.uint8), labels=(k % 3,))
               for k in range(2)]
    images = torch.stack([prep(s.image) for s in samples])
    metric = build_metric("occlusion_correlation", patch=5, stride=3, resolution="original", cache_dir=str(tmp_path),
                          bootstrap=100)
    rows = metric.score_batch(samples, images, build_method("gradient", model, info), prep)
    assert len(rows) == 2 and all(np.isfinite(r["rho"]) for r in rows)
    cache = metric.cache_for(model, info, prep, "cpu")
    stored = sorted(cache.dir.glob("*.npy"))
    assert len(stored) == 2 and np.load(stored[0]).shape == (18, 30)
    assert json.loads((cache.dir / "settings.json").read_text())["resolution"] == "original"
    again = build_metric("occlusion_correlation", patch=5, stride=3, resolution="original", cache_dir=str(tmp_path))
    again.score_batch(samples, images, build_method("grad_cam", model, info, layer="1"), prep)
    assert (again.cache_for(model, info, prep, "cpu").loaded, again.cache_for(model, info, prep, "cpu").computed) == (2, 0)
    settings = metric.settings()
    assert settings["resolution"] == "original" and settings["units"] == "original pixels"
    assert settings["explained_class"].startswith("GT class with the highest logit")
    with pytest.raises(ValueError, match="resolution='full'"):
        build_metric("occlusion_correlation", resolution="full")
