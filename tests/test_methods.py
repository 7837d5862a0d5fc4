"""Saliency methods: CAM/Grad-CAM identity, scoped ReLU rules, hooks, the graph-free trunk."""

import pytest
import torch
import torchvision.models as tvm

from benchmark.methods import build_method
from benchmark.methods.backprop import relu_rule
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze
from graph_walk import autograd_graph, graph_kept_at


def _graph_nodes(output: torch.Tensor) -> list[str]:
    return autograd_graph(output)[0]


def _relu_nodes(names):
    return sum(n.startswith(("ReluBackward", "ThresholdBackward")) for n in names)


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    model = freeze(tvm.resnet50())
    info = ModelInfo(name="resnet50", num_classes=1000, layers={"gradcam": "layer4", "cam": "layer4"}, cam_head="fc")
    return model, info


@pytest.fixture(scope="module")
def googlenet():
    torch.manual_seed(0)
    model = freeze(tvm.googlenet(weights=None, aux_logits=False, init_weights=False))
    info = ModelInfo(name="googlenet", num_classes=1000, layers={"gradcam": "inception5b"}, cam_head="fc")
    return model, info


def test_cam_equals_grad_cam_without_relu_on_resnet50(resnet50):
    model, info = resnet50
    x = torch.randn(2, 3, 224, 224)
    ids = torch.tensor([[3, 400], [17, 999]])
    gc = build_method("grad_cam", model, info, relu=False).explain(x, ids).maps
    cam = build_method("cam", model, info).explain(x, ids).maps
    hw = 7 * 7  # layer4 is 7x7: alpha = w / (h*w)
    assert torch.allclose(gc * hw, cam, atol=1e-5 * cam.abs().max().item())


def test_cam_equals_grad_cam_without_relu_on_toy_gap():
    torch.manual_seed(1)
    model, info = build_model("toy_gap", weights="random")
    x = torch.randn(4, 3, 64, 64)
    ids = torch.tensor([0, 3, 5, 9])
    gc = build_method("grad_cam", model, info, relu=False)(x, ids)
    cam = build_method("cam", model, info)(x, ids)
    ratio = (cam.flatten(1) * gc.flatten(1)).sum(1) / (gc.flatten(1) ** 2).sum(1)
    assert torch.allclose(ratio, torch.full_like(ratio, 256.0), rtol=1e-4)  # positive constant h*w = 16*16
    assert torch.allclose(gc * 256, cam, atol=1e-5 * cam.abs().max().item())


@pytest.mark.parametrize("rule", ["guided", "deconv"])
@pytest.mark.parametrize("which", ["resnet50", "googlenet"])
def test_relu_rule_reaches_every_relu(rule, which, request):
    model, _ = request.getfixturevalue(which)
    x = torch.randn(1, 3, 224, 224, requires_grad=True)
    standard = _graph_nodes(model(x)[0, 1])
    expected = _relu_nodes(standard)
    assert expected >= 49  # ResNet-50: 1 + 16 * 3 (reused module); GoogLeNet: functional F.relu
    with relu_rule(rule) as mode:
        modified = _graph_nodes(model(x)[0, 1])
    assert _relu_nodes(modified) == 0
    custom = sum(n.endswith("ReLUBackward") for n in modified)
    assert custom == expected and mode.calls == expected


def test_relu_rule_is_scoped_and_forward_unchanged(resnet50):
    model, _ = resnet50
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        with relu_rule("guided"):
            during = model(x)
        after = model(x)
    assert torch.equal(before, during) and torch.equal(before, after)
    names = _graph_nodes(model(x.requires_grad_(True))[0, 0])
    assert _relu_nodes(names) > 0 and not any(n.endswith("ReLUBackward") for n in names)


def test_guided_backprop_matches_definition_on_tiny_net():
    # y = w2 . relu(W1 x): guided grad = W1^T ([h > 0] * [w2 > 0] * w2)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 3.0, -1.0]]))
    x = torch.tensor([[1.0, -1.0, 2.0]])  # h = [1, -1, 2, 2]
    with relu_rule("guided"):
        xg = x.clone().requires_grad_(True)
        net(xg).sum().backward()
    # units 0 (h>0, w>0) and 2 (h>0, w>0) pass; 1 (h<0) and 3 (w<0) are blocked
    assert torch.allclose(xg.grad, torch.tensor([[1.0, 0.0, 3.0]]))
    with relu_rule("deconv"):
        xd = x.clone().requires_grad_(True)
        net(xd).sum().backward()
    # deconv: relu(grad) regardless of h: units 0, 2 pass (w > 0)
    assert torch.allclose(xd.grad, torch.tensor([[1.0, 0.0, 3.0]]))
    x2 = torch.tensor([[-1.0, -1.0, -2.0]])  # all h < 0 except none: guided gives 0, deconv still passes
    with relu_rule("guided"):
        a = x2.clone().requires_grad_(True)
        net(a).sum().backward()
    with relu_rule("deconv"):
        b = x2.clone().requires_grad_(True)
        net(b).sum().backward()
    assert torch.count_nonzero(a.grad) == 0 and torch.allclose(b.grad, torch.tensor([[1.0, 0.0, 3.0]]))


def test_hooks_removed_and_model_unchanged_after_method_raises(resnet50):
    model, info = resnet50
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
    counts = {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()}

    def boom(_m, _i, _o):
        raise RuntimeError("boom")

    handle = model.fc.register_forward_hook(boom)  # fails after the Grad-CAM layer hook has fired
    try:
        for name in ("grad_cam", "cam", "guided_backprop", "guided_grad_cam"):
            with pytest.raises(RuntimeError, match="boom"):
                build_method(name, model, info)(x, torch.tensor([1]))
    finally:
        handle.remove()
    assert {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()} == counts
    assert torch.is_grad_enabled()
    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert not any(p.requires_grad for p in model.parameters())


def test_grad_cam_trunk_runs_without_graph(resnet50):
    model, info = resnet50
    method = build_method("grad_cam", model, info)
    seen = graph_kept_at(lambda: method(torch.randn(1, 3, 224, 224), torch.tensor([5])), trunk=model.layer3, head=model.fc)
    assert seen == {"trunk": False, "head": True}


def test_several_classes_in_one_pass_equal_one_class_at_a_time(resnet50):
    model, info = resnet50
    x = torch.randn(2, 3, 224, 224)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    for name in ("grad_cam", "gradient", "guided_backprop", "grad_cam_deconv_relu"):
        method = build_method(name, model, info)
        together = method.explain(x, ids).maps
        for k in range(3):
            alone = method(x, ids[:, k])
            assert torch.allclose(together[:, k], alone, atol=1e-6 * max(alone.abs().max().item(), 1e-12)), name


def test_maps_follow_the_contract(resnet50):
    model, info = resnet50
    x = torch.randn(2, 3, 224, 224)
    for name in ("grad_cam", "cam", "gradient", "guided_backprop", "deconvnet", "guided_grad_cam", "center",
                 "grad_cam_no_relu", "grad_cam_gmp", "grad_cam_abs_grad", "grad_cam_guided_relu", "grad_cam_counterfactual"):
        maps = build_method(name, model, info)(x, torch.tensor([1, 2]))
        assert maps.shape == (2, 224, 224) and maps.dtype == torch.float32, name
        assert torch.isfinite(maps).all(), name
        if name not in ("grad_cam_no_relu", "cam"):
            assert (maps >= 0).all(), name


def test_counterfactual_negates_gradients(resnet50):
    model, info = resnet50
    x = torch.randn(1, 3, 224, 224)
    plain = build_method("grad_cam", model, info, relu=False)(x, torch.tensor([7]))
    counter = build_method("grad_cam_counterfactual", model, info, relu=False)(x, torch.tensor([7]))
    assert torch.allclose(plain, -counter, atol=1e-6)


def test_unknown_layer_names_close_candidates(resnet50):
    model, info = resnet50
    with pytest.raises(KeyError, match="layer4"):
        build_method("grad_cam", model, info, layer="layer5")
