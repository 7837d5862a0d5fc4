"""Pixel-space gradient methods: gradient (Simonyan et al., 2014), guided backprop
(Springenberg et al., 2015), deconvnet (Zeiler & Fergus, 2014), and guided Grad-CAM.

Each is the gradient of the class logit w.r.t. the input under a ReLU backward rule (every ReLU,
functional and reused ones included), reduced over colour channels by ``max_c |g_c|`` as in
Simonyan et al. Parameters are frozen, so no weight gradient is computed. Guided Grad-CAM is the
guided-backprop map times the upsampled (standard) Grad-CAM map (Selvaraju et al., Sec. 3.1).
"""

from __future__ import annotations

import torch

from benchmark.methods._fast import FastPath
from benchmark.methods.backprop import Backprop
from benchmark.methods.base import METHODS, Explanation, SaliencyMethod
from benchmark.methods.grad_cam import GradCAM

REDUCTIONS = ("max_abs", "sum_abs", "l2")


def reduce_channels(grads: torch.Tensor, how: str = "max_abs", dim: int = 2) -> torch.Tensor:
    """Channel dimension ``dim`` reduced: ``[B, K, 3, H, W] -> [B, K, H, W]`` with the default ``dim``."""
    if how == "max_abs":
        return grads.abs().amax(dim=dim)
    if how == "sum_abs":
        return grads.abs().sum(dim=dim)
    if how == "l2":
        return grads.pow(2).sum(dim=dim).sqrt()
    raise ValueError(f"channel reduction {how!r}; expected one of {REDUCTIONS}")


class PixelGradient(SaliencyMethod):
    def __init__(self, model, info, rule: str, name: str, reduction: str = "max_abs", layer=None,
                 channels_last: bool = False, trunk_precision: str = "float32", fold_batchnorm: bool = False):
        super().__init__(model, info)
        if reduction not in REDUCTIONS:
            raise ValueError(f"{name}: reduction={reduction!r}; expected one of {REDUCTIONS}")
        self.name, self.reduction = name, reduction
        self.fast = FastPath(model, channels_last, trunk_precision, None, name, fold_batchnorm)
        self.backprop = Backprop(self.fast.model, None, rule)

    def _explain(self, images, class_ids):
        p = self.backprop(self.fast.images(images), class_ids)
        return Explanation(maps=reduce_channels(p.grads, self.reduction).float(), logits=p.logits)


class GuidedGradCAM(SaliencyMethod):
    name = "guided_grad_cam"

    def __init__(self, model, info, layer=None, reduction: str = "max_abs", channels_last: bool = False,
                 fold_batchnorm: bool = False):
        super().__init__(model, info)
        layer = layer or info.layers.get("gradcam")
        # one copy shared by both parts; folding respects the Grad-CAM layer's boundary
        fast = FastPath(model, channels_last, layer=layer, method=self.name, fold_batchnorm=fold_batchnorm)
        self.images = fast.images
        self.guided = PixelGradient(fast.model, info, "guided", "guided_backprop", reduction)
        self.gradcam = GradCAM(fast.model, info, layer=layer)

    def _explain(self, images, class_ids):
        images = self.images(images)
        guided = self.guided.explain(images, class_ids)
        cam = self.gradcam.explain(images, class_ids)
        return Explanation(maps=guided.maps * cam.maps, logits=cam.logits)


@METHODS.register("gradient", options=PixelGradient)
def gradient(model, info, layer=None, **options):
    return PixelGradient(model, info, "standard", "gradient", **options)


@METHODS.register("guided_backprop", options=PixelGradient)
def guided_backprop(model, info, layer=None, **options):
    return PixelGradient(model, info, "guided", "guided_backprop", **options)


@METHODS.register("deconvnet", options=PixelGradient)
def deconvnet(model, info, layer=None, **options):
    return PixelGradient(model, info, "deconv", "deconvnet", **options)


@METHODS.register("guided_grad_cam", options=GuidedGradCAM)
def guided_grad_cam(model, info, layer=None, **options):
    return GuidedGradCAM(model, info, layer=layer, **options)
