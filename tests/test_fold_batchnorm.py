"""``fold_batchnorm``: BatchNorm folded into the preceding convolution keeps every map.

ResNet-50 with random weights and *random BatchNorm statistics and affine parameters* (torchvision
initializes them to the identity map, which would make folding vacuous); 64 x 64 inputs.
"""

import copy
import warnings

import pytest
import torch
from torch import nn

from benchmark.methods import build_method
from benchmark.methods._fast import batchnorm_pairs, fold_batchnorms
from benchmark.models import build_model

RESNET50_BATCHNORMS = 53  # stem 1 + 16 bottlenecks x 3 + 4 downsample branches


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    model, info = build_model("resnet50", weights=None)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval(), info


def _inputs(seed=4, batch=2, k=2, size=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 1000, (batch, k), generator=g)


def _bns(model):
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_model_computes_the_same_logits(resnet50):
    model, _ = resnet50
    folded = copy.deepcopy(model)
    pairs = fold_batchnorms(folded)
    assert len(pairs) == RESNET50_BATCHNORMS and _bns(folded) == 0 and _bns(model) == RESNET50_BATCHNORMS
    assert ("conv1", "bn1") in pairs and ("layer1.0.downsample.0", "layer1.0.downsample.1") in pairs
    assert not torch.equal(folded.conv1.weight, model.conv1.weight)  # the statistics went into the weights
    x, _ = _inputs()
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert torch.allclose(out, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    # the folding is not an identity: with the BatchNorms simply removed the logits differ
    removed = copy.deepcopy(model)
    for name in [n for n, m in removed.named_modules() if isinstance(m, nn.BatchNorm2d)]:
        parent, _, child = name.rpartition(".")
        setattr(removed.get_submodule(parent) if parent else removed, child, nn.Identity())
    assert _bns(removed) == 0
    with torch.no_grad():
        assert not torch.allclose(removed(x), ref, rtol=0, atol=1e-2 * ref.abs().max().item())


@pytest.mark.parametrize("name", ["grad_cam", "guided_backprop", "guided_grad_cam"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fold_batchnorm_option_keeps_maps(name, channels_last, resnet50):
    model, info = resnet50
    x, ids = _inputs()
    ref = build_method(name, model, info).explain(x, ids).maps
    maps = build_method(name, model, info, fold_batchnorm=True, channels_last=channels_last).explain(x, ids).maps
    assert ref.abs().max() > 0
    assert torch.allclose(maps, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    assert _bns(model) == RESNET50_BATCHNORMS  # the caller's model is untouched


def test_pairs_straddling_the_target_layer_are_left_alone(resnet50):
    model, info = resnet50
    layer = "layer4.2.conv3"  # its BatchNorm (layer4.2.bn3) lies outside the layer
    pairs = batchnorm_pairs(model, layer)
    assert len(pairs) == RESNET50_BATCHNORMS - 1 and ("layer4.2.conv3", "layer4.2.bn3") not in pairs
    assert ("layer4.2.conv2", "layer4.2.bn2") in pairs
    assert len(batchnorm_pairs(model, "layer4")) == RESNET50_BATCHNORMS  # inside or outside, never across
    x, ids = _inputs(k=1)
    ref = build_method("grad_cam", model, info, layer=layer).explain(x, ids).maps
    method = build_method("grad_cam", model, info, layer=layer, fold_batchnorm=True)
    maps = method.explain(x, ids).maps
    assert len(method.fast.folded) == RESNET50_BATCHNORMS - 1
    assert isinstance(method.fast.model.layer4[2].bn3, nn.BatchNorm2d)
    assert torch.allclose(maps, ref, rtol=0, atol=1e-4 * ref.abs().max().item())


class _Branchy(nn.Module):
    """A model torch.fx cannot trace (data-dependent control flow) with a conv-BN pair."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 3)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if y.sum() > 0:
            y = y * 2
        return self.fc(y.mean((2, 3)))


def test_a_hook_that_rejects_fx_proxies_does_not_stop_folding(resnet50):
    """A forward hook that branches on its output (as pytorch-grad-cam's does) breaks a trace;
    hooks are suspended while tracing and still run afterwards, on the folded copy too."""
    model, info = resnet50
    seen = []

    def hook(_module, _inputs, output):
        if output.requires_grad:  # a bool of an fx proxy raises
            return None
        seen.append(output.shape)
        return None

    handle = model.layer4.register_forward_hook(hook)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            method = build_method("grad_cam", model, info, fold_batchnorm=True)
        assert len(method.fast.folded) == RESNET50_BATCHNORMS
        assert len(model.layer4._forward_hooks) == 1 and len(method.fast.model.layer4._forward_hooks) == 1
        x, ids = _inputs(k=1)
        method.explain(x, ids)
        assert len(seen) == 1
    finally:
        handle.remove()


def test_untraceable_model_runs_unfolded_with_a_warning():
    model = _Branchy().eval()
    with pytest.warns(UserWarning, match="could not trace _Branchy"):
        assert fold_batchnorms(model) == []
    assert isinstance(model.bn, nn.BatchNorm2d)


class _Plain(_Branchy):
    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def test_training_mode_batchnorm_is_not_folded():
    model = _Plain().train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert batchnorm_pairs(model) == []
    assert batchnorm_pairs(model.eval()) == [("conv", "bn")]
