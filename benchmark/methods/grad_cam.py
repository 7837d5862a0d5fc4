"""Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) with the design-choice options of Table 3.

``alpha_k^c = pool_{ij}(T(dy^c / dA_k^{ij}))`` and ``map = ReLU(sum_k alpha_k^c A_k)``, where ``A`` is
the target layer's activations ``[B, C, h, w]``, ``pool`` is the spatial mean (``gap``, the paper)
or max (``gmp``), ``T`` is identity or ``abs``, ``relu`` may be switched off, the ReLUs between the
layer and the output may use the ``guided`` or ``deconv`` backward rule, and ``counterfactual``
negates the gradients (Sec. 3.2 of the IJCV version). The trunk below the layer runs without a
graph; K classes per image share one forward and one batched backward. ``channels_last``,
``fold_batchnorm`` and ``trunk_precision`` are the speed options of ``benchmark.methods._fast``
(off by default).

Where the ReLU acts (``relu_at``): ``input`` (default) rectifies the map after the bilinear
upsampling to the input size, ``ReLU(upsample(sum_k alpha_k A_k))``; ``layer`` rectifies the
layer-resolution map and then upsamples it, as the paper's released Torch code did. Upsampling is
linear, so with ``input`` Grad-CAM on a CAM-compatible model is exactly ``ReLU(c * CAM)`` with
``c = 1 / (h * w) > 0`` at every input pixel, and its 15 %-of-maximum segments are CAM's (the
equivalence behind the paper's identical GoogLeNet Grad-CAM and CAM rows in Table 1); the metric's
resize to the original resolution can still differ where an input pixel above the threshold
borders a negative one. With ``layer``, a cell above the threshold next to a negative cell is
interpolated against 0 instead of the negative value, which widens the segment by up to a cell.
``align_corners`` picks the upsampling grid: ``False`` (default, PyTorch's half-pixel convention)
or ``True`` (corner cells on corner pixels, as Torch7's ``image.scale`` in the released code).
"""

from __future__ import annotations

import torch

from benchmark.methods._fast import FastPath
from benchmark.methods.backprop import Backprop
from benchmark.methods.base import METHODS, Explanation, SaliencyMethod, upsample

POOLINGS = ("gap", "gmp")
TRANSFORMS = ("identity", "abs")
RELU_AT = ("input", "layer")


class GradCAM(SaliencyMethod):
    name = "grad_cam"

    def __init__(self, model, info, layer=None, relu: bool = True, grad_transform: str = "identity",
                 pooling: str = "gap", backward_relu: str = "standard", counterfactual: bool = False,
                 relu_at: str = "input", channels_last: bool = False, trunk_precision: str = "float32",
                 fold_batchnorm: bool = False, align_corners: bool = False):
        super().__init__(model, info)
        layer = layer or info.layers.get("gradcam")
        if not layer:
            raise ValueError(f"grad_cam: model {info.name!r} has no 'gradcam' layer preset; pass method.layer")
        if pooling not in POOLINGS:
            raise ValueError(f"grad_cam: pooling={pooling!r}; expected one of {POOLINGS}")
        if grad_transform not in TRANSFORMS:
            raise ValueError(f"grad_cam: grad_transform={grad_transform!r}; expected one of {TRANSFORMS}")
        if relu_at not in RELU_AT:
            raise ValueError(f"grad_cam: relu_at={relu_at!r}; expected one of {RELU_AT}")
        self.layer, self.relu, self.grad_transform, self.relu_at = layer, relu, grad_transform, relu_at
        self.pooling, self.counterfactual, self.align_corners = pooling, counterfactual, bool(align_corners)
        self.fast = FastPath(model, channels_last, trunk_precision, layer, self.name, fold_batchnorm)
        self.backprop = Backprop(self.fast.model, layer, backward_relu)

    def settings(self) -> dict:
        """The options that define the map (written into each run's summary)."""
        return {"layer": self.layer, "relu": self.relu, "relu_at": self.relu_at, "grad_transform": self.grad_transform,
                "pooling": self.pooling, "backward_relu": self.backprop.rule, "counterfactual": self.counterfactual,
                "align_corners": self.align_corners}

    def layer_maps(self, images: torch.Tensor, class_ids: torch.Tensor, rectify: bool = True):
        """Layer-resolution maps ``[B, K, h, w]`` (before upsampling; ReLU'd if ``relu`` and
        ``rectify``) and the logits."""
        with self.fast.scope(images.device):
            p = self.backprop(self.fast.images(images), class_ids)
        if p.acts.dim() != 4:
            raise ValueError(f"grad_cam: layer {self.layer!r} gives shape {tuple(p.acts.shape)}; expected [B, C, h, w]")
        grads = -p.grads if self.counterfactual else p.grads
        if self.grad_transform == "abs":
            grads = grads.abs()
        alpha = grads.mean(dim=(-2, -1)) if self.pooling == "gap" else grads.amax(dim=(-2, -1))
        cam = torch.einsum("bkc,bchw->bkhw", alpha, p.acts)
        if self.relu and rectify:
            cam = cam.clamp_min(0)
        return cam, p.logits

    def _explain(self, images, class_ids):
        at_input = self.relu and self.relu_at == "input"
        cam, logits = self.layer_maps(images, class_ids, rectify=not at_input)
        maps = upsample(cam, tuple(images.shape[-2:]), self.align_corners)
        return Explanation(maps=maps.clamp_min(0) if at_input else maps, logits=logits)


@METHODS.register("grad_cam", options=GradCAM)
def grad_cam(model, info, layer=None, **options):
    return GradCAM(model, info, layer=layer, **options)


# Table 3 ablations: each variant is its own registered method so sweeps name it directly.
ABLATIONS = {
    "grad_cam_no_relu": {"relu": False},
    "grad_cam_abs_grad": {"grad_transform": "abs"},
    "grad_cam_gmp": {"pooling": "gmp"},
    "grad_cam_deconv_relu": {"backward_relu": "deconv"},
    "grad_cam_guided_relu": {"backward_relu": "guided"},
    "grad_cam_counterfactual": {"counterfactual": True},
}


def _variant(fixed: dict):
    def build(model, info, layer=None, **options):
        return GradCAM(model, info, layer=layer, **{**options, **fixed})

    return build


for _name, _fixed in ABLATIONS.items():
    METHODS.register(_name, _variant(_fixed), options=GradCAM)
