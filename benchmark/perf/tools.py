"""The contenders ``benchmark.perf`` times: this suite's methods and the tools users would pick instead.

Each competitor is used through its natural public API, as its documentation shows, on the same
frozen model object, batch and classes:

* pytorch-grad-cam (``grad-cam`` package): ``GradCAM(model, target_layers=[layer])`` called with one
  ``ClassifierOutputTarget`` per image; K classes per image are K calls. Its ``loss.backward()``
  needs a graph through the whole model. Two set-ups, both timed: ``pytorch-grad-cam`` as its
  README uses it, on a model whose parameters require grad (torchvision's default; a copy with the
  same weights), so every call also computes every weight gradient; and ``pytorch-grad-cam frozen``,
  its cheapest set-up, on the frozen model with an input that requires grad (the graph then
  reaches the input, and no weight gradient is computed). It returns min-max normalized maps.
* Captum: ``LayerGradCam(model, layer).attribute(x, target=..., relu_attributions=True)`` followed by
  ``LayerAttribution.interpolate(..., "bilinear")`` (Grad-CAM at input size); ``GuidedBackprop`` and
  ``Saliency`` reduced by ``max_c |.|`` as this suite's pixel maps are; ``Occlusion`` with the same
  window, stride and baseline. K classes are K ``attribute`` calls.
* The plain forward pass under ``torch.no_grad`` is the floor every method is compared with.
"""

from __future__ import annotations

import copy
import warnings

import torch

from benchmark.perf.timing import Contender, split_calls
from benchmark.methods import build_method
from benchmark.models.base import resolve_layer


def forward(model, images, device, k: int, repeat: int = 1) -> Contender:
    """The floor: one forward pass without graph, ``B`` outputs (counted as ``B * k`` maps' worth)."""
    def run():
        with torch.no_grad():
            return model(images)
    return Contender("forward", "torch.no_grad forward", run, images.shape[0], 0, repeat=repeat)


def ours(name: str, model, info, images, class_ids, tag: str = "ours", repeat: int = 1, **options) -> Contender:
    """This suite's ``name`` method for all ``class_ids [B, K]`` in one call (``repeat`` calls a round)."""
    method = build_method(name, model, info, **options)
    return Contender(f"{tag} k{class_ids.shape[1]}", tag, lambda: method.explain(images, class_ids).maps,
                     images.shape[0] * class_ids.shape[1], class_ids.shape[1], repeat=repeat)


def ours_fast(model, info, images, class_ids, low_precision: bool, repeat: int = 1) -> Contender:
    """Grad-CAM with its exact speed options, ``channels_last`` and ``fold_batchnorm``, and, if
    ``low_precision``, ``trunk_precision="auto"`` (bfloat16 on CPU, float16 on CUDA)."""
    method = build_method("grad_cam", model, info, channels_last=True, fold_batchnorm=True,
                          trunk_precision="auto" if low_precision else "float32")
    tag = "ours cl+amp" if low_precision else "ours cl"
    return Contender(f"{tag} k{class_ids.shape[1]}", tag, lambda: method.explain(images, class_ids).maps,
                     images.shape[0] * class_ids.shape[1], class_ids.shape[1], repeat=repeat)


def _split(tag: str, calls, images, k: int, device) -> list[Contender]:
    if k == 1:
        return [Contender(f"{tag} k1", tag, calls[0], images.shape[0], 1)]
    one = Contender(f"{tag} k1", tag, None, images.shape[0], 1)
    many = Contender(f"{tag} k{k}", tag, split_calls(calls, one.times, device), images.shape[0] * k, k,
                     split=one.name, warm=calls[0], calls=list(calls))
    return [many, one]


class PytorchGradCam:
    """pytorch-grad-cam's ``GradCAM`` on ``layer``; ``close()`` removes the hooks it keeps.

    ``trainable``: run it as its README does, on a copy of ``model`` whose parameters require grad;
    otherwise on the frozen ``model`` with an input that requires grad (see the module doc).
    """

    def __init__(self, model, layer: str, trainable: bool = True):
        from pytorch_grad_cam import GradCAM

        self.trainable = trainable
        self.tag = "pytorch-grad-cam" if trainable else "pytorch-grad-cam frozen"
        self.model = copy.deepcopy(model).requires_grad_(True) if trainable else model
        self.cam = GradCAM(model=self.model, target_layers=[resolve_layer(self.model, layer)])

    def maps(self, images, ids_k: torch.Tensor) -> torch.Tensor:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        x = images.detach() if self.trainable else images.detach().requires_grad_(True)
        out = self.cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in ids_k])
        return torch.from_numpy(out)

    def contenders(self, images, class_ids, device) -> list[Contender]:
        calls = [lambda j=j: self.maps(images, class_ids[:, j]) for j in range(class_ids.shape[1])]
        return _split(self.tag, calls, images, class_ids.shape[1], device)

    def close(self) -> None:
        self.cam.activations_and_grads.release()
        if self.trainable:
            self.model.zero_grad(set_to_none=True)


def captum_grad_cam(model, layer: str):
    """``maps(images, ids_k) -> [B, H, W]`` with Captum's ``LayerGradCam`` at input size."""
    from captum.attr import LayerAttribution, LayerGradCam

    explainer = LayerGradCam(model, resolve_layer(model, layer))

    def maps(images, ids_k):
        attr = explainer.attribute(images, target=ids_k, relu_attributions=True)
        return LayerAttribution.interpolate(attr, tuple(images.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    return maps


def captum_pixel(model, kind: str):
    """``maps(images, ids_k) -> [B, H, W]``: Captum ``GuidedBackprop`` or ``Saliency``, ``max_c |.|``."""
    from captum.attr import GuidedBackprop, Saliency

    explainer = GuidedBackprop(model) if kind == "guided_backprop" else Saliency(model)

    def maps(images, ids_k):
        return explainer.attribute(images, target=ids_k).abs().amax(1)
    return _quiet_maps(maps)


def captum_occlusion(model, patch: int, stride: int, fill: float):
    """``maps(images, ids_k) -> [B, H, W]``: Captum ``Occlusion``, one window over all channels."""
    from captum.attr import Occlusion

    explainer = Occlusion(model)

    def maps(images, ids_k):
        return explainer.attribute(images, sliding_window_shapes=(images.shape[1], patch, patch),
                                   strides=(images.shape[1], stride, stride), baselines=fill, target=ids_k)[:, 0]
    return maps


def _quiet_maps(maps):
    """Captum warns on every call that it set ``requires_grad`` on the input; silence that."""
    def run(images, ids_k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return maps(images, ids_k)
    return run


def captum_contenders(maps, images, class_ids, device, tag: str = "captum") -> list[Contender]:
    """K one-class Captum calls as a split contender (``tag kK``, fills ``tag k1``)."""
    calls = [lambda j=j: maps(images, class_ids[:, j]) for j in range(class_ids.shape[1])]
    return _split(tag, calls, images, class_ids.shape[1], device)
