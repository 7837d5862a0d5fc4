"""Class Activation Mapping (Zhou et al., CVPR 2016): ``map = sum_k w_k^c A_k``.

``A`` are the activations feeding global average pooling and ``w^c`` the weights of the linear
classifier that follows; the bias is not part of the map, and no ReLU is applied (the map is raw).
Only for CAM-compatible models (global pooling + one linear layer); others raise ``NotApplicable``.
On such a model Grad-CAM without ReLU equals CAM divided by ``h*w`` (a test checks it).
"""

from __future__ import annotations

import torch

from benchmark.methods.backprop import forward_hook
from benchmark.methods.base import METHODS, Explanation, NotApplicable, SaliencyMethod, upsample
from benchmark.models.base import resolve_layer


class CAM(SaliencyMethod):
    name = "cam"

    def __init__(self, model, info, layer=None):
        super().__init__(model, info)
        if not info.cam_compatible and layer is None:
            raise NotApplicable(f"cam: model {info.name!r} is not CAM-compatible (needs global pooling + one linear layer)")
        self.layer = layer or info.layers["cam"]
        head = resolve_layer(model, info.cam_head) if info.cam_head else None
        if not isinstance(head, torch.nn.Linear):
            raise NotApplicable(f"cam: model {info.name!r} has no linear head after global pooling")
        self.weight = head.weight

    def _explain(self, images, class_ids):
        store = {}
        capture = lambda _m, _i, out: store.__setitem__("acts", out.detach().clone())  # noqa: E731
        with forward_hook(self.model, self.layer, capture), torch.no_grad():
            logits = self.model(images)
        acts = store["acts"]
        if acts.shape[1] != self.weight.shape[1]:
            raise ValueError(f"cam: layer {self.layer!r} has {acts.shape[1]} channels, the head expects {self.weight.shape[1]}")
        w = self.weight[class_ids]  # [B, K, C]
        cam = torch.einsum("bkc,bchw->bkhw", w, acts)
        return Explanation(maps=upsample(cam, tuple(images.shape[-2:])), logits=logits)


@METHODS.register("cam")
def cam(model, info, layer=None):
    return CAM(model, info, layer=layer)
