"""The fast paths compute what the straightforward implementations compute.

* Grad-CAM with the graph-free trunk and one batched vector-Jacobian product for K classes equals
  a full forward with graph, one ``torch.autograd.grad`` per class w.r.t. the layer output captured
  by a plain forward hook (ResNet-50, VGG-16; random weights, 64 x 64 inputs).
* The Grad-CAM graph covers only the head; pixel-space methods' graphs hold exactly one leaf, the
  input (no ``AccumulateGrad`` node for a parameter: no weight gradient is ever computed).
* Guided backprop and deconvnet equal a reference built from per-module
  ``register_full_backward_hook`` on a copy of VGG-16 with non-inplace ReLUs (VGG-16 uses ``nn.ReLU``
  modules only, so the hooks reach every ReLU).
* The bench's channels-last copy and low-precision trunk keep maps within their stated tolerance.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from benchmark.methods._fast import trunk_autocast
from benchmark.methods import build_method
from benchmark.models import build_model
from benchmark.models.base import resolve_layer
from benchmark.perf.fast import pearson_per_map
from graph_walk import autograd_graph

SIZE = 64  # ResNet-50's layer4 is 2 x 2 here
VGG_SIZE = 32  # VGG-16's features.29 is 2 x 2 here (the smallest input VGG-16 accepts)


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return build_model("resnet50", weights=None)


@pytest.fixture(scope="module")
def vgg16():
    torch.manual_seed(0)
    return build_model("vgg16", weights=None)


def _inputs(seed=1, batch=2, k=3, size=SIZE):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 1000, (batch, k), generator=g)


def reference_grad_cam(model, layer, images, class_ids):
    """Full graph from the input, layer output from a plain hook, one backward per class.

    Returns the signed maps and the maps rectified at the layer's resolution, ``[B, K, H, W]`` each."""
    store = {}
    handle = resolve_layer(model, layer).register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    try:
        logits = model(images.clone().requires_grad_(True))
    finally:
        handle.remove()
    acts, maps = store["a"], []
    for k in range(class_ids.shape[1]):
        (grad,) = torch.autograd.grad(logits.gather(1, class_ids[:, k:k + 1]).sum(), acts, retain_graph=True)
        maps.append((grad.mean(dim=(2, 3))[:, :, None, None] * acts).sum(1))
    cam = torch.stack(maps, 1).detach()
    b, k, h, w = cam.shape
    signed = F.interpolate(cam.reshape(b * k, 1, h, w), size=images.shape[-2:], mode="bilinear",
                           align_corners=False).reshape(b, k, *images.shape[-2:])
    return signed, F.interpolate(cam.clamp_min(0).reshape(b * k, 1, h, w), size=images.shape[-2:],
                                 mode="bilinear", align_corners=False).reshape(b, k, *images.shape[-2:])


@pytest.mark.parametrize("which, size", [("resnet50", SIZE), ("vgg16", VGG_SIZE)])
def test_grad_cam_fast_path_equals_full_graph_reference(which, size, request):
    model, info = request.getfixturevalue(which)
    x, ids = _inputs(size=size)
    signed, relu_layer = reference_grad_cam(model, info.layers["gradcam"], x, ids)
    assert (signed.flatten(2).abs().amax(-1) > 0).all()  # signed maps are not all zero: not vacuous
    for ref, options in ((signed, {"relu": False}), (signed.clamp_min(0), {}), (relu_layer, {"relu_at": "layer"})):
        fast = build_method("grad_cam", model, info, **options).explain(x, ids).maps
        assert torch.allclose(fast, ref, rtol=0, atol=1e-5 * signed.abs().max().item()), options


def _graph_of(model, info, name, x, ids, last):
    """Build ``name``'s maps while a hook on module ``last`` keeps the logits' graph; its node names
    and the variables of its ``AccumulateGrad`` nodes."""
    kept = {}
    handle = resolve_layer(model, last).register_forward_hook(lambda _m, _i, out: kept.__setitem__("out", out))
    try:
        build_method(name, model, info).explain(x, ids)
    finally:
        handle.remove()
    return autograd_graph(kept["out"])


def test_grad_cam_graph_covers_only_the_head(resnet50):
    model, info = resnet50
    x, ids = _inputs(batch=1, k=2)
    names, leaves = _graph_of(model, info, "grad_cam", x, ids, "fc")
    # layer4 -> avgpool -> flatten -> fc: no convolution, one leaf (the layer's activations)
    assert not any(n.startswith("ConvolutionBackward") for n in names)
    assert len(leaves) == 1 and tuple(leaves[0].shape) == (1, 2048, 2, 2)


@pytest.mark.parametrize("name", ["gradient", "guided_backprop", "deconvnet"])
def test_pixel_methods_compute_no_weight_gradient(name, resnet50):
    model, info = resnet50
    x, ids = _inputs(batch=1, k=1, size=32)
    names, leaves = _graph_of(model, info, name, x, ids, "fc")
    params = {id(p) for p in model.parameters()}
    assert sum(n.startswith("ConvolutionBackward") for n in names) == 53  # 1 + 16 blocks x 3 + 4 downsample
    assert len(leaves) == 1 and id(leaves[0]) not in params and tuple(leaves[0].shape) == (1, 3, 32, 32)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


@pytest.fixture(scope="module")
def hooked_vgg16(vgg16):
    """A copy of VGG-16 with non-inplace ReLUs whose full backward hooks apply ``rule["name"]``."""
    net, rule = copy.deepcopy(vgg16[0]), {"name": None}

    def hook(_module, grad_in, grad_out):
        if rule["name"] == "guided":  # grad_in = grad_out * [x > 0]; keep its positive part
            return (grad_in[0].clamp_min(0),)
        return (grad_out[0].clamp_min(0),)  # deconvnet: positive part of grad_out, whatever x was

    for module in net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
            module.register_full_backward_hook(hook)
    return net, rule


def reference_pixel(net, images, class_ids):
    """``max_c |d logit / d input|`` per class, one backward each, on the hooked copy."""
    maps = []
    for k in range(class_ids.shape[1]):
        leaf = images.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(leaf).gather(1, class_ids[:, k:k + 1]).sum(), leaf)
        maps.append(grad.abs().amax(1))
    return torch.stack(maps, 1)


@pytest.mark.parametrize("rule, name", [("guided", "guided_backprop"), ("deconv", "deconvnet")])
def test_modified_relu_backprop_equals_backward_hook_reference(rule, name, vgg16, hooked_vgg16):
    model, info = vgg16
    net, current = hooked_vgg16
    current["name"] = rule
    # 13 conv ReLUs + 2 classifier ReLUs, all nn.ReLU modules called once each: hooks see them all
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 15
    x, ids = _inputs(seed=2, k=2, size=VGG_SIZE)
    ours = build_method(name, model, info).explain(x, ids).maps
    ref = reference_pixel(net, x, ids)
    scale = ref.abs().max().item()
    assert scale > 0 and torch.allclose(ours, ref, rtol=0, atol=1e-5 * scale)
    plain = build_method("gradient", model, info).explain(x, ids).maps
    assert not torch.allclose(plain, ours, atol=1e-3 * scale)  # the rule made a difference


def test_channels_last_option_keeps_maps(resnet50):
    model, info = resnet50
    x, ids = _inputs(k=2)
    ref = build_method("grad_cam", model, info).explain(x, ids).maps
    method = build_method("grad_cam", model, info, channels_last=True)
    maps = method.explain(x, ids).maps
    assert method.backprop.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(maps, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    assert model.conv1.weight.is_contiguous()  # the caller's model is untouched
    ref = build_method("guided_backprop", model, info).explain(x[:1], ids[:1]).maps
    maps = build_method("guided_backprop", model, info, channels_last=True).explain(x[:1], ids[:1]).maps
    assert torch.allclose(maps, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    ref = build_method("guided_grad_cam", model, info).explain(x[:1], ids[:1]).maps
    combined = build_method("guided_grad_cam", model, info, channels_last=True)
    maps = combined.explain(x[:1], ids[:1]).maps
    assert torch.allclose(maps, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    assert combined.guided.backprop.model is combined.gradcam.backprop.model is not model  # one shared copy


def test_low_precision_option_within_tolerance(resnet50):
    model, info = resnet50
    x, ids = _inputs(seed=3, k=2)
    ref = build_method("grad_cam", model, info).explain(x, ids).maps
    low = build_method("grad_cam", model, info, trunk_precision="bfloat16").explain(x, ids).maps
    live = ref.flatten(2).amax(-1) > 0
    assert live.any() and low.dtype == torch.float32 and not torch.equal(low, ref)
    assert (pearson_per_map(low, ref)[live] >= 0.98).all()
    assert not torch.is_autocast_enabled("cpu") and not model.layer4._forward_hooks
    with pytest.raises(ValueError, match="needs a target layer"):
        build_method("gradient", model, info, trunk_precision="bfloat16")
    with pytest.raises(ValueError, match="trunk_precision='half'"):
        build_method("grad_cam", model, info, trunk_precision="half")


def test_low_precision_trunk_within_tolerance_and_scoped(resnet50):
    model, info = resnet50
    x, ids = _inputs(seed=1, k=2)
    method = build_method("grad_cam", model, info)
    ref = method.explain(x, ids).maps
    before = len(model.layer4._forward_hooks)
    with trunk_autocast(model, method.layer, torch.device("cpu")):
        low = method.explain(x, ids).maps
    live = ref.flatten(2).amax(-1) > 0
    assert live.any() and low.dtype == torch.float32
    assert (pearson_per_map(low, ref)[live] >= 0.98).all()
    assert not torch.is_autocast_enabled("cpu") and len(model.layer4._forward_hooks) == before
    with pytest.raises(RuntimeError, match="inside"):
        with trunk_autocast(model, method.layer, torch.device("cpu")):
            raise RuntimeError("inside")
    assert not torch.is_autocast_enabled("cpu") and len(model.layer4._forward_hooks) == before


def test_low_precision_option_within_tolerance_on_trained_weights():
    """bfloat16 trunk on the genuine ImageNet EfficientNet-Lite0 weights and five real photos:
    every non-zero map of the top-5 classes correlates with its float32 map at >= 0.98."""
    import numpy as np
    import skimage.data as data

    from benchmark.data.transforms import Preprocess

    model, info = build_model("efficientnet_lite0", weights="imagenet")
    prep = Preprocess(info.input_size, tuple(info.mean), tuple(info.std), "paper")
    photos = [data.chelsea(), data.coffee(), data.rocket(), data.astronaut(), data.cat()]
    x = torch.stack([prep(np.ascontiguousarray(p[..., :3])) for p in photos])
    with torch.no_grad():
        top = model(x).topk(5, dim=1).indices
    ref = build_method("grad_cam", model, info).explain(x, top).maps
    low = build_method("grad_cam", model, info, trunk_precision="bfloat16").explain(x, top).maps
    live = ref.flatten(2).amax(-1) > 0
    assert live.sum() >= 10 and not torch.equal(low, ref)
    assert (pearson_per_map(low, ref)[live] >= 0.98).all()
