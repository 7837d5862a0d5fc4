"""Where Grad-CAM's ReLU acts (``relu_at``): hand-worked maps, and CAM's boxes on GAP models."""

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from benchmark.methods import build_method
from benchmark.metrics.boxes import box_from_map
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze


class _Pooled(nn.Module):
    """Channel 0 of the input, 2x2 average pooled (the Grad-CAM layer), GAP, linear to 2 classes."""

    def __init__(self):
        super().__init__()
        self.feat = nn.AvgPool2d(2)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x):
        return self.fc(self.feat(x[:, :1]).mean(dim=(-2, -1)))


def _tiny():
    info = ModelInfo(name="tiny", num_classes=2, input_size=4, layers={"gradcam": "feat", "cam": "feat"},
                     cam_head="fc")
    return freeze(_Pooled()), info


def test_relu_at_input_and_layer_by_hand():
    # layer map A = [1, -1] (1x2); class 0: alpha = 1 / (h*w) = 1/2, so the linear map is [0.5, -0.5].
    # Bilinear (align_corners=False) to width 4 samples at x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (to 1):
    #   input: ReLU([0.5, 0.25, -0.25, -0.5]) = [0.5, 0.25, 0, 0]
    #   layer: upsample(ReLU([0.5, -0.5])) = upsample([0.5, 0]) = [0.5, 0.375, 0.125, 0]
    model, info = _tiny()
    x = torch.zeros(1, 3, 2, 4)
    x[0, 0] = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    ids = torch.tensor([0])
    at_input = build_method("grad_cam", model, info)(x, ids)[0]
    at_layer = build_method("grad_cam", model, info, relu_at="layer")(x, ids)[0]
    assert torch.allclose(at_input, torch.tensor([0.5, 0.25, 0.0, 0.0]).expand(2, 4))
    assert torch.allclose(at_layer, torch.tensor([0.5, 0.375, 0.125, 0.0]).expand(2, 4))
    # class 1 has alpha = -1/2: the mirror image
    mirrored = build_method("grad_cam", model, info)(x, torch.tensor([1]))[0]
    assert torch.allclose(mirrored, torch.tensor([0.0, 0.0, 0.25, 0.5]).expand(2, 4))


def test_relu_at_is_validated():
    model, info = _tiny()
    with pytest.raises(ValueError, match="relu_at='pixel'.*'input', 'layer'"):
        build_method("grad_cam", model, info, relu_at="pixel")


def test_no_relu_ignores_relu_at():
    model, info = _tiny()
    x = torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([0, 1])
    a = build_method("grad_cam", model, info, relu=False)(x, ids)
    b = build_method("grad_cam", model, info, relu=False, relu_at="layer")(x, ids)
    assert torch.equal(a, b) and (a < 0).any()


def test_grad_cam_is_rectified_cam_on_resnet50():
    torch.manual_seed(0)
    model = freeze(tvm.resnet50())
    info = ModelInfo(name="resnet50", num_classes=1000, layers={"gradcam": "layer4", "cam": "layer4"}, cam_head="fc")
    x = torch.randn(2, 3, 224, 224)
    ids = torch.tensor([[3, 400], [17, 999]])
    gc = build_method("grad_cam", model, info).explain(x, ids).maps
    cam = build_method("cam", model, info).explain(x, ids).maps
    assert (cam < 0).any() and (cam > 0).any()
    assert torch.allclose(gc * 49, cam.clamp_min(0), atol=1e-5 * cam.abs().max().item())  # layer4: 7x7


def test_grad_cam_boxes_equal_cam_boxes_on_toy_gap():
    """At the input resolution Grad-CAM is ReLU(CAM / (h*w)) exactly, so the boxes are CAM's."""
    torch.manual_seed(3)
    model, info = build_model("toy_gap", weights="random")
    x = torch.randn(6, 3, 64, 64)
    ids = torch.tensor([0, 3, 5, 9, 2, 7])
    gc = build_method("grad_cam", model, info)(x, ids)
    cam = build_method("cam", model, info)(x, ids)
    layer = build_method("grad_cam", model, info, relu_at="layer")(x, ids)
    assert torch.allclose(gc * 256, cam.clamp_min(0), atol=1e-5 * cam.abs().max().item())  # 16x16 layer
    boxes = [(box_from_map(gc[i].numpy()), box_from_map(cam[i].numpy())) for i in range(len(x))]
    assert all(a == b for a, b in boxes)
    assert sum(a is not None for a, _ in boxes) >= 3  # (an all-negative CAM has no box, Grad-CAM neither)
    # bilinear weights are non-negative, so upsample(ReLU(z)) >= ReLU(upsample(z)) everywhere,
    # strictly where a positive cell borders a negative one
    assert (layer >= gc - 1e-7).all() and (layer > gc + 1e-6).any()


def test_align_corners_upsampling_by_hand():
    # layer map [0.5, -0.5] (1x2) to width 4 with aligned corners samples x = 0, 1/3, 2/3, 1:
    #   linear [0.5, 1/6, -1/6, -0.5]; input ReLU: [0.5, 1/6, 0, 0]; layer ReLU: upsample([0.5, 0]) = [0.5, 1/3, 1/6, 0]
    model, info = _tiny()
    x = torch.zeros(1, 3, 2, 4)
    x[0, 0] = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    ids = torch.tensor([0])
    at_input = build_method("grad_cam", model, info, align_corners=True)(x, ids)[0]
    at_layer = build_method("grad_cam", model, info, relu_at="layer", align_corners=True)(x, ids)[0]
    assert torch.allclose(at_input, torch.tensor([0.5, 1 / 6, 0.0, 0.0]).expand(2, 4))
    assert torch.allclose(at_layer, torch.tensor([0.5, 1 / 3, 1 / 6, 0.0]).expand(2, 4))
    assert build_method("grad_cam", model, info, align_corners=True).settings()["align_corners"] is True
