"""Excitation backprop (MWP) and contrastive MWP: hand-worked maps, the propagation rules,
conservation of probability on torchvision ResNet-50 / VGG-16 / GoogLeNet, untouched models, and
class-discriminative c-MWP maps on a small CNN trained in the test."""

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from benchmark.methods import NotApplicable, build_method
from benchmark.methods._ebp_rules import excitation_rules
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze
from graph_walk import graph_kept_at

METHODS = ("excitation_backprop", "contrastive_excitation_backprop")


def _tiny():
    """Identity (the saliency layer: the input itself), 2x2 conv reading channel 0, ReLU, flatten,
    FC, ReLU, FC."""
    net = nn.Sequential(nn.Identity(), nn.Conv2d(3, 1, 2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4, 2, bias=False), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[0, 0] = torch.tensor([[1.0, -1.0], [2.0, 1.0]])
        net[1].bias.fill_(-1.0)  # biases take no part in MWP
        net[4].weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 1.0]]))
        net[6].weight.copy_(torch.tensor([[1.0, -2.0], [-1.0, 1.0]]))
        net[6].bias.fill_(0.5)
    info = ModelInfo(name="tiny", num_classes=2, input_size=3, layers={"ebp": "0", "contrast": "5"})
    return freeze(net), info


X_TINY = torch.ones(1, 3, 3, 3)  # channels 1, 2 meet zero weights: they get no probability
X_TINY[0, 0] = torch.tensor([[1.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.0, 2.0, 1.0]])


def _conv_back(s):
    """``x * (K+ transposed applied to s)`` for the tiny conv: K+ = [[1, 0], [2, 1]], s 2x2."""
    (a, b), (c, d) = s
    return torch.tensor([[1 * a, 2 * b, 0.0],
                         [3 * (2 * a + c), 1 * (a + 2 * b + d), 1 * b],
                         [0.0, 2 * (c + 2 * d), 1 * d]])


def test_mwp_equals_hand_computed_map():
    # conv windows [[1,2],[3,1]] [[2,0],[1,1]] [[3,1],[0,2]] [[1,1],[2,1]]: h = [5, 4, 3, 4],
    # positive responses Z = [8, 5, 5, 6]. fc1: g = [9, 2]; class 0 row [1, -2]: P(g) = [1, 0];
    # fc1+ row 0 [1, 1, 0, 0], Z = 9: P(h) = [5/9, 4/9, 0, 0]; conv: s = P(h) / Z
    net, info = _tiny()
    maps = build_method("excitation_backprop", net, info)(X_TINY, torch.tensor([0]))
    expected = _conv_back([[5 / 9 / 8, 4 / 9 / 5], [0.0, 0.0]])
    assert torch.allclose(expected, torch.tensor([[5 / 72, 8 / 45, 0], [5 / 12, 5 / 72 + 8 / 45, 4 / 45], [0, 0, 0]]))
    assert torch.allclose(maps[0], expected, atol=1e-6)
    assert maps.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_cmwp_equals_hand_computed_map():
    # dual row -[1, -2] -> positive part [0, 2], Z = 4: P_dual(g) = [0, 1]; difference [1, -1] at "5".
    # fc1+: rows [1,1,0,0] (Z = 9), [0,0,1,1] (Z = 7): P(h) = h * [1/9, 1/9, -1/7, -1/7]
    #     = [5/9, 4/9, -3/7, -4/7]; conv: s = P(h) / [8, 5, 5, 6]
    net, info = _tiny()
    method = build_method("contrastive_excitation_backprop", net, info)
    signed, logits = method.layer_maps(X_TINY, torch.tensor([0]))
    expected = _conv_back([[5 / 72, 4 / 45], [-3 / 35, -2 / 21]])
    assert expected[2, 2].item() == pytest.approx(-2 / 21) and expected.sum().item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(signed[0, 0], expected, atol=1e-6)
    assert torch.allclose(logits, net(X_TINY))
    assert torch.allclose(method(X_TINY, torch.tensor([0]))[0], expected.clamp_min(0), atol=1e-6)


def test_rules_identity_batchnorm_relu_and_skip_split():
    with excitation_rules():
        x = torch.tensor([[-1.0, 2.0, 0.5]], requires_grad=True)
        bn = F.batch_norm(x, torch.zeros(3), torch.full((3,), 4.0), torch.full((3,), 3.0), torch.ones(3))
        out = F.relu(bn.clone(), inplace=True)
        a = torch.tensor([2.0, -1.0, 0.0], requires_grad=True) * 1
        b = torch.tensor([2.0, 3.0, 0.0], requires_grad=True) * 1
        s = a + b
        a2 = a.clone()
        a2 += b
    assert torch.allclose(bn, 3.0 * x / (4.0 + 1e-5) ** 0.5 + 1) and torch.equal(out, bn.clamp_min(0))
    signal = torch.tensor([[0.3, 0.5, 0.2]])
    (through,) = torch.autograd.grad(out, x, signal)  # BN and ReLU (even at x < 0) pass it unchanged
    assert torch.equal(through, signal)
    assert torch.equal(s, a2) and torch.equal(s, torch.tensor([4.0, 2.0, 0.0]))
    for total in (s, a2):  # a+ / (a+ + b+): [1/2, 0, dropped], b+ / (a+ + b+): [1/2, 1, dropped]
        ga, gb = torch.autograd.grad(total, (a, b), torch.ones(3))
        assert torch.allclose(ga, torch.tensor([0.5, 0.0, 0.0])) and torch.allclose(gb, torch.tensor([0.5, 1.0, 0.0]))


def test_rules_negative_inputs_and_zero_positive_input():
    w = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -2.0, 0.0]])
    with excitation_rules():
        x = torch.tensor([[-1.0, 2.0, 1.0]], requires_grad=True)
        y = F.linear(x, w, torch.tensor([5.0, 5.0]))
    assert torch.allclose(y, torch.tensor([[7.0, 2.0]]))
    (p0,) = torch.autograd.grad(y, x, torch.tensor([[1.0, 0.0]]), retain_graph=True)
    assert torch.allclose(p0, torch.tensor([[0.0, 2 / 3, 1 / 3]]))  # a negative input gets nothing
    (p1,) = torch.autograd.grad(y, x, torch.tensor([[0.0, 1.0]]))  # Z = 0: the signal is dropped
    assert torch.equal(p1, torch.zeros(1, 3))


def test_rules_are_scoped():
    net, _ = _tiny()
    x = X_TINY.clone().requires_grad_(True)
    with excitation_rules():
        inside = net(x)
    outside = net(x)
    assert torch.equal(inside, outside)
    (g,) = torch.autograd.grad(outside[0, 0], x)
    (p,) = torch.autograd.grad(inside[0, 0], x)
    assert not torch.allclose(g, p) and p.sum().item() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def zoo():
    torch.manual_seed(0)
    return {
        "resnet50": (freeze(tvm.resnet50()), {"ebp": "layer3", "contrast": "avgpool"}),
        "vgg16": (freeze(tvm.vgg16()), {"ebp": "features.23", "contrast": "classifier.4"}),
        "googlenet": (freeze(tvm.googlenet(weights=None, aux_logits=False, init_weights=False)),
                      {"ebp": "maxpool2", "contrast": "avgpool"}),
    }


@pytest.mark.parametrize("arch", ["resnet50", "vgg16", "googlenet"])
def test_probability_is_conserved_and_maps_follow_the_contract(zoo, arch):
    model, layers = zoo[arch]
    info = ModelInfo(name=arch, num_classes=1000, input_size=64, layers=layers)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    ids = torch.tensor([[3, 500], [17, 999]])
    with torch.no_grad():
        plain = model(x)
    sums = {}
    for name in METHODS:
        method = build_method(name, model, info)
        signed, logits = method.layer_maps(x, ids)
        assert torch.equal(logits, plain), name
        sums[name] = signed.sum(dim=(-2, -1))
        maps = method(x, ids)
        assert maps.shape == (2, 2, 64, 64) and maps.dtype == torch.float32 and torch.isfinite(maps).all()
        assert (maps >= 0).all() and (maps.flatten(2).amax(-1) > 0).all(), name
    # MWP: every unit on the way has positive input, so the total is 1 at the saliency layer;
    # c-MWP: target (1) minus dual (1) is 0 before clipping
    assert torch.allclose(sums["excitation_backprop"], torch.ones(2, 2), atol=1e-5)
    assert torch.allclose(sums["contrastive_excitation_backprop"], torch.zeros(2, 2), atol=1e-5)


def test_cmwp_differs_from_mwp_and_classes_are_independent(zoo):
    model, layers = zoo["resnet50"]
    info = ModelInfo(name="resnet50", num_classes=1000, input_size=64, layers=layers)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 64, 64)
    ids = torch.tensor([[1, 2], [3, 4]])
    mwp = build_method("excitation_backprop", model, info)
    cmwp = build_method("contrastive_excitation_backprop", model, info)
    together = cmwp(x, ids)
    assert not torch.allclose(mwp(x, ids), together, atol=1e-4 * together.max().item())
    for k in range(2):
        assert torch.allclose(cmwp(x, ids[:, k]), together[:, k], atol=1e-7)


def test_model_untouched_after_call_and_after_exception(zoo):
    model, layers = zoo["resnet50"]
    info = ModelInfo(name="resnet50", num_classes=1000, input_size=64, layers=layers)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()}

    def boom(_m, _i, _o):
        raise RuntimeError("boom")

    for name in METHODS:
        build_method(name, model, info)(x, torch.tensor([1]))
        handle = model.layer4.register_forward_hook(boom)  # after the saliency layer's hook fired
        try:
            with pytest.raises(RuntimeError, match="boom"):
                build_method(name, model, info)(x, torch.tensor([1]))
        finally:
            handle.remove()
    assert {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()} == hooks
    assert torch.is_grad_enabled() and not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())
    x.requires_grad_(True)
    out = model(x)
    with torch.no_grad():
        assert torch.equal(model(x), before)
    (g,) = torch.autograd.grad(out[0, 1], x)  # plain gradients again: not conserved like MWP
    assert g.sum().abs().item() != pytest.approx(1.0, abs=1e-3)


def test_trunk_runs_without_graph(zoo):
    model, layers = zoo["resnet50"]
    info = ModelInfo(name="resnet50", num_classes=1000, input_size=64, layers=layers)
    method = build_method("contrastive_excitation_backprop", model, info)
    seen = graph_kept_at(lambda: method(torch.randn(1, 3, 64, 64), torch.tensor([5])), trunk=model.layer2, head=model.fc)
    assert seen == {"trunk": False, "head": True}


def test_layer_errors():
    net, info = _tiny()
    with pytest.raises(NotApplicable, match="'ebp' layer preset"):
        build_method("excitation_backprop", net, ModelInfo(name="tiny", num_classes=2, input_size=3))
    with pytest.raises(NotApplicable, match="'contrast' layer preset"):
        build_method("contrastive_excitation_backprop", net,
                     ModelInfo(name="tiny", num_classes=2, input_size=3, layers={"ebp": "0"}))
    with pytest.raises(KeyError, match="'features.9' does not exist"):
        build_method("excitation_backprop", net, info, layer="features.9")
    with pytest.raises(TypeError):
        build_method("excitation_backprop", net, info, contrast_layer="5")
    with pytest.raises(RuntimeError, match="above the saliency layer"):
        build_method("contrastive_excitation_backprop", net, info, layer="5", contrast_layer="2")
    with pytest.raises(NotApplicable, match="linear/conv layer above the contrast"):
        build_method("contrastive_excitation_backprop", net, info, contrast_layer="6")


def test_ops_without_a_rule_are_not_applicable():
    net = freeze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.SiLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)))
    info = ModelInfo(name="silu", num_classes=2, input_size=8, layers={"ebp": "1", "contrast": "5"})
    for name in METHODS:
        with pytest.raises(NotApplicable, match="silu"):
            build_method(name, net, info)
    # below the saliency layer any op is fine: the trunk runs as it is
    above_silu = build_method("excitation_backprop", net, info, layer="3")
    assert above_silu(torch.randn(1, 3, 8, 8), torch.tensor([1])).shape == (1, 8, 8)


def test_relu6_and_clamp_pass_the_signal():
    w = torch.tensor([[1.0, 1.0]])
    x = torch.tensor([[2.0, 9.0]], requires_grad=True)
    with excitation_rules() as state:
        y = F.linear(F.relu6(x).clamp_max(5.0), w)
        z = torch.sigmoid(x.clone())
    assert torch.allclose(y, torch.tensor([[7.0]])) and torch.allclose(z, torch.sigmoid(x))
    assert state.unsupported == {"sigmoid"}
    (p,) = torch.autograd.grad(y, x, torch.ones(1, 1))
    assert torch.allclose(p, torch.tensor([[2 / 7, 5 / 7]]))  # saturated units keep their share


@pytest.mark.parametrize("arch,layers", [("toy_vgg", {"ebp": "features.10", "contrast": "classifier.5"}),
                                         ("toy_gap", {"ebp": "features.10", "contrast": "avgpool"})])
def test_toy_models(arch, layers):
    torch.manual_seed(0)
    model, info = build_model(arch, weights="random", layers=layers)
    x = torch.randn(2, 3, 64, 64)
    for name in METHODS:
        signed, _ = build_method(name, model, info).layer_maps(x, torch.tensor([[0, 9], [4, 5]]))
        assert signed.shape[-2:] == (16, 16)
        assert torch.allclose(signed.sum(dim=(-2, -1)), torch.full((2, 2), float(name == METHODS[0])), atol=1e-5)


COLOURS = torch.tensor([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1]])  # class 0: red square, class 1: green


def _blob_scenes(gen, n, both=False, size=32, side=8):
    """Grey noise with a red and/or a green square, one per image half; multi-hot labels, boxes."""
    images = 0.5 + 0.05 * torch.randn(n, 3, size, size, generator=gen)
    labels, boxes = torch.zeros(n, 2), torch.zeros(n, 2, 4, dtype=torch.long)
    for i in range(n):
        present = torch.ones(2) if both else (torch.rand(2, generator=gen) < 0.5).float()
        halves = torch.randperm(2, generator=gen)
        for c in torch.nonzero(present).flatten().tolist():
            x0 = int(halves[c]) * size // 2 + int(torch.randint(0, size // 2 - side + 1, (1,), generator=gen))
            y0 = int(torch.randint(0, size - side + 1, (1,), generator=gen))
            images[i, :, y0:y0 + side, x0:x0 + side] = COLOURS[c][:, None, None]
            labels[i, c], boxes[i, c] = 1.0, torch.tensor([x0, y0, x0 + side - 1, y0 + side - 1])
    return images - 0.5, labels, boxes


def train_blob_cnn(steps: int = 60, seed: int = 0):
    """A small multi-label CNN (conv blocks, global average pooling, linear) trained in seconds."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        images, labels, _ = _blob_scenes(gen, 32)
        loss = F.binary_cross_entropy_with_logits(net(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    info = ModelInfo(name="blobs", num_classes=2, input_size=32, layers={"ebp": "2", "contrast": "8"},
                     multilabel=True)
    return freeze(net), info, gen


def test_cmwp_peaks_on_each_class_object():
    net, info, gen = train_blob_cnn()
    images, labels, boxes = _blob_scenes(gen, 12, both=True)
    assert ((net(images) > 0).float() == labels).all()
    maps = build_method("contrastive_excitation_backprop", net, info)(images, torch.tensor([[0, 1]] * 12))
    for i in range(12):
        for c in range(2):
            row, col = divmod(int(maps[i, c].flatten().argmax()), 32)
            x0, y0, x1, y1 = boxes[i, c].tolist()
            assert x0 <= col <= x1 and y0 <= row <= y1, (i, c)
            ox0, oy0, ox1, oy1 = boxes[i, 1 - c].tolist()
            assert maps[i, c, y0:y1 + 1, x0:x1 + 1].sum() > 2 * maps[i, c, oy0:oy1 + 1, ox0:ox1 + 1].sum()
