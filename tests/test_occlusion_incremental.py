"""The incremental occlusion engine: same maps as the plain engine, footprint-only recomputation,
fallbacks, and the engine in the cache key."""

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.methods._occlusion_cache import OcclusionCache
from benchmark.methods.occlusion import incremental_engine, occlusion_coarse
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze


class Mixed(nn.Module):
    """Every op kind the engine handles, and some it must hand to full recomputation."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm2d(8)
        self.dil = nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=2)
        self.branch = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, 1, padding=1)
        self.pad = nn.ZeroPad2d((0, 1, 1, 0))
        self.valid = nn.Conv2d(16, 6, 2)
        self.weight = nn.Parameter(torch.randn(4, 6, 3, 3) * 0.3)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = x + torch.sigmoid(self.dil(x)) * 0.5  # residual with a pointwise branch
        x = torch.cat([self.pool(x), self.pool(self.branch(x)).clamp_max(0.7)], 1)
        x = self.valid(self.pad(self.avg(x)))
        gate = x.mean((2, 3), keepdim=True)  # a whole-map op: full recomputation from here
        x = F.conv2d(F.pad(x * gate, (1, 1, 1, 1)), self.weight, stride=2)
        return self.head(x.amax((2, 3)))


def _frozen(module, seed=0):
    torch.manual_seed(seed)
    model = module.eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return freeze(model)


def _rel(a, b):
    """Largest deviation per map, relative to the reference map's largest magnitude."""
    return ((a - b).abs().amax((-1, -2)) / b.abs().amax((-1, -2))).max().item()


@pytest.mark.parametrize("patch,stride,max_batch", [(5, 1, 7), (8, 3, 64), (11, 4, 5)])
def test_incremental_equals_plain_in_float64_on_every_op_kind(patch, stride, max_batch):
    model = _frozen(Mixed()).double()
    x = torch.randn(2, 3, 29, 26, dtype=torch.float64)
    ids = torch.tensor([[0, 3], [4, 4]])
    plain, _ = occlusion_coarse(model, x, ids, patch, stride, 0.2, max_batch, engine="plain")
    inc, clean = occlusion_coarse(model, x, ids, patch, stride, 0.2, max_batch, engine="incremental")
    assert incremental_engine(model) is not None  # traced: not the plain fallback
    assert plain.abs().max() > 0 and _rel(inc, plain) < 1e-12
    assert torch.allclose(clean, model(x).float())


def test_footprint_path_skips_the_full_trunk():
    """The first convs run once (the clean pass) on the whole map; the head runs once per batch."""
    torch.manual_seed(0)
    model = freeze(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
                                 nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval())
    calls = {"conv": 0, "head": 0}
    model[0].register_forward_hook(lambda *_: calls.__setitem__("conv", calls["conv"] + 1))
    model[6].register_forward_hook(lambda *_: calls.__setitem__("head", calls["head"] + 1))
    x = torch.randn(1, 3, 24, 24)
    inc, _ = occlusion_coarse(model, x, torch.tensor([[1]]), 3, 4, 0.0, 9, engine="incremental")
    assert calls == {"conv": 1, "head": 1 + 4}  # 36 windows, 9 per batch
    plain, _ = occlusion_coarse(model, x, torch.tensor([[1]]), 3, 4, 0.0, 9, engine="plain")
    assert _rel(inc, plain) < 1e-4  # float32 rounding only


@pytest.mark.parametrize("name,size", [("vgg16", 64), ("alexnet", 80), ("resnet50", 64), ("googlenet", 64),
                                       ("efficientnet_lite0", 64)])
def test_incremental_equals_plain_on_the_paper_models(name, size):
    """float64, so the check is on the algorithm, not on float32 summation order (see docs/occlusion.md)."""
    torch.manual_seed(0)
    model, _ = build_model(name, weights="imagenet" if name == "efficientnet_lite0" else None)
    model = model.double()
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    ids = torch.tensor([[1, 7]])
    plain, _ = occlusion_coarse(model, x, ids, 15, 24, 0.0, 4, engine="plain")
    inc, _ = occlusion_coarse(model, x, ids, 15, 24, 0.0, 4, engine="incremental")
    assert incremental_engine(model) is not None
    assert plain.abs().max() > 0 and _rel(inc, plain) < 1e-10


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            x = -x
        return self.conv(x).mean((2, 3))


def test_untraceable_model_falls_back_to_plain_with_a_warning(caplog):
    model = freeze(Untraceable().eval())
    info = ModelInfo(name="untraceable", num_classes=2, input_size=8)
    with caplog.at_level(logging.WARNING):
        method = build_method("occlusion", model, info, patch=3, stride=2, engine="incremental")
    assert method.engine == "plain" and method.settings()["engine"] == "plain"
    assert "cannot trace" in caplog.text and "plain" in caplog.text
    assert method(torch.randn(1, 3, 8, 8), torch.tensor([1])).shape == (1, 8, 8)


def test_engine_option_is_checked_and_keyed_in_the_cache(tmp_path):
    torch.manual_seed(0)
    model = freeze(nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval())
    info = ModelInfo(name="tiny", num_classes=2, input_size=8)
    with pytest.raises(ValueError, match="engine='fast'.*plain.*incremental"):
        build_method("occlusion", model, info, engine="fast")
    prep = Preprocess(size=8, mean=(0.5,) * 3, std=(0.25,) * 3)
    plain = OcclusionCache(tmp_path, build_method("occlusion", model, info, engine="plain"), prep)
    inc = OcclusionCache(tmp_path, build_method("occlusion", model, info, engine="incremental"), prep)
    assert plain.settings["engine"] == "plain" and inc.settings["engine"] == "incremental"
    assert plain.dir != inc.dir and plain.dir.parent == inc.dir.parent
