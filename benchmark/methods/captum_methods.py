"""Captum's attribution methods (Kokhlikyan et al., 2020) as methods of the suite.

``captum_<name>`` wraps ``captum.attr.<Class>``: the map is the library's ``attribute(inputs,
target=...)`` on the same model, input and classes, reduced over channels and, for layer methods,
upsampled; nothing else is changed.

* Input methods (``[N, 3, H, W]`` attributions): Saliency, IntegratedGradients, InputXGradient,
  DeepLift, GuidedBackprop, Deconvolution, GuidedGradCam, Occlusion, and NoiseTunnel over Saliency
  (SmoothGrad, SmoothGrad², VarGrad) and over IntegratedGradients. Channel reduction: ``max_c |.|``
  as the suite's pixel methods (DESIGN 4.6), except Occlusion, whose window spans the three channels
  so every channel holds the same signed logit drop: ``mean`` keeps it as it is.
* Layer methods on the Grad-CAM layer preset or ``method.layer`` (``[N, C, h, w]``):
  LayerGradCam (its own channel sum; ``relu_attributions`` on by default, the Grad-CAM paper's ReLU,
  applied at layer resolution), LayerActivation (class-independent), LayerGradientXActivation,
  LayerConductance, LayerIntegratedGradients, LayerDeepLift, reduced by ``max_c |.|`` and upsampled as
  ``LayerAttribution.interpolate(..., "bilinear")`` does (``align_corners=False``).

Options: ``reduction`` (max_abs | sum_abs | l2 | sum | mean | none); every other key goes to the
class's constructor (e.g. ``multiply_by_inputs``) or to ``attribute`` (``n_steps``, ``baselines``,
``internal_batch_size``, ``sliding_window_shapes``, ``strides``, ``nt_samples``, ``stdevs`` ...);
unknown keys are errors. K classes per image are one ``attribute`` call on the images repeated K
times. Captum returns no logits, so one extra forward pass without graph gives them.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field

import torch

from benchmark.methods._ecosystem import (REDUCTIONS, as_tuples, init_keywords, reduce_channels, register_family, require,
                                         split_options, untouched)
from benchmark.methods.base import Explanation, SaliencyMethod, upsample
from benchmark.models.base import resolve_layer


@dataclass(frozen=True)
class Spec:
    cls: str  # class in captum.attr
    layer: bool = False  # the constructor takes the layer module
    at_layer: bool = False  # attributions have the layer's shape (upsampled)
    target: bool = True  # attribute() takes a target
    noise: str | None = None  # NoiseTunnel nt_type around cls
    reduction: str = "max_abs"
    defaults: dict = field(default_factory=dict)  # library keywords whose default differs here


# Path methods evaluate n_steps (50 by default) copies of every input; left unbounded, Captum runs them all in one
# forward/backward (5 EfficientNet-Lite0 images at 224 px took over 20 GB). 32 rows per pass bound the memory and
# leave the attributions as they are (the same steps, summed in chunks).
BOUNDED = {"internal_batch_size": 32}

SPECS = {
    "saliency": Spec("Saliency"),
    "integrated_gradients": Spec("IntegratedGradients", defaults=BOUNDED),
    "input_x_gradient": Spec("InputXGradient"),
    "deep_lift": Spec("DeepLift"),
    "guided_backprop": Spec("GuidedBackprop"),
    "deconvolution": Spec("Deconvolution"),
    "guided_grad_cam": Spec("GuidedGradCam", layer=True),
    # the window of the suite's occlusion method (35 px over all channels); stride 8 keeps it affordable
    "occlusion": Spec("Occlusion", reduction="mean",
                      defaults={"sliding_window_shapes": (3, 35, 35), "strides": (3, 8, 8)}),
    "smoothgrad": Spec("Saliency", noise="smoothgrad"),
    "smoothgrad_sq": Spec("Saliency", noise="smoothgrad_sq"),
    "vargrad": Spec("Saliency", noise="vargrad"),
    "integrated_gradients_smoothgrad": Spec("IntegratedGradients", noise="smoothgrad", defaults=BOUNDED),
    "layer_grad_cam": Spec("LayerGradCam", layer=True, at_layer=True, reduction="none",
                           defaults={"relu_attributions": True}),
    "layer_activation": Spec("LayerActivation", layer=True, at_layer=True, target=False),
    "layer_gradient_x_activation": Spec("LayerGradientXActivation", layer=True, at_layer=True),
    "layer_conductance": Spec("LayerConductance", layer=True, at_layer=True, defaults=BOUNDED),
    "layer_integrated_gradients": Spec("LayerIntegratedGradients", layer=True, at_layer=True, defaults=BOUNDED),
    "layer_deep_lift": Spec("LayerDeepLift", layer=True, at_layer=True),
}


def _keywords(fn) -> set[str]:
    return set(inspect.signature(fn).parameters) - {"self", "inputs", "target", "kwargs"}


class CaptumMethod(SaliencyMethod):
    """One Captum attribution class; maps ``[B, K, H, W]`` (see the module doc)."""

    def __init__(self, model, info, spec: Spec, name: str, layer=None, reduction: str | None = None, **options):
        super().__init__(model, info)
        self.spec, self.name = spec, name
        self.reduction = reduction or spec.reduction
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"{name}: reduction={self.reduction!r}; expected one of {REDUCTIONS}")
        attr = require("captum.attr", name)
        self.cls = getattr(attr, spec.cls)
        self.layer, self.module = None, None
        if spec.layer:
            self.layer = layer or info.layers.get("gradcam")
            if not self.layer:
                raise ValueError(f"{name}: model {info.name!r} has no 'gradcam' layer preset; pass method.layer")
            self.module = resolve_layer(model, self.layer)
        self.init, call = split_options(self.cls, {**spec.defaults, **options})
        allowed = _keywords(self.cls.attribute) | (_keywords(attr.NoiseTunnel.attribute) if spec.noise else set())
        unknown = sorted(set(call) - allowed - {"nt_type"})
        if unknown:
            raise ValueError(f"{name}: unknown option(s) {unknown} for captum.attr.{spec.cls}; known: "
                             f"{sorted(allowed | init_keywords(self.cls))} and reduction")
        self.call = {k: as_tuples(v) for k, v in call.items()}
        if spec.noise:
            self.call["nt_type"] = spec.noise

    def settings(self) -> dict:
        """What defines the map (written into each run's summary)."""
        return {"library": "captum", "class": self.spec.cls, "noise_tunnel": self.spec.noise, "layer": self.layer,
                "reduction": self.reduction, **self.init, **{k: v for k, v in self.call.items() if k != "nt_type"}}

    def _explainer(self, attr):
        base = self.cls(self.model, self.module, **self.init) if self.spec.layer else self.cls(self.model, **self.init)
        return attr.NoiseTunnel(base) if self.spec.noise else base

    def _explain(self, images, class_ids):
        attr = require("captum.attr", self.name)
        b, k = class_ids.shape
        x = images.detach() if not self.spec.target else images.detach().repeat_interleave(k, dim=0)
        x.requires_grad_(True)  # the graph some layer methods hook into; the model stays frozen
        kwargs = dict(self.call, target=class_ids.reshape(-1)) if self.spec.target else dict(self.call)
        with untouched(self.model), warnings.catch_warnings():
            # Captum warns on every call that it sets requires_grad or hooks; both are undone here
            warnings.filterwarnings("ignore", category=UserWarning, module="captum")
            out = self._explainer(attr).attribute(x, **kwargs)
        maps = reduce_channels(out.detach().float(), self.reduction)
        maps = maps.reshape(b, -1, *maps.shape[-2:]).expand(b, k, *maps.shape[-2:])
        maps = upsample(maps, tuple(images.shape[-2:])) if self.spec.at_layer else maps
        with torch.no_grad():
            logits = self.model(images)
        return Explanation(maps=maps.contiguous().float(), logits=logits.float())


register_family("captum", SPECS, CaptumMethod)
