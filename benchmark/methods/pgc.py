"""pytorch-grad-cam's CAM methods (``grad-cam`` package, Gildenblat et al.) as methods of the suite.

``pgc_<name>`` wraps the library's class ``CLASSES[name]`` on the model's Grad-CAM layer preset (or
``method.layer``): the map is the library's own call, ``cam(input_tensor, targets)``, on the same
model, input and ``ClassifierOutputTarget`` classes. The suite needs raw maps, so the adapter keeps
the library's per-layer map before its per-image min-max scaling and resize: the output of the
instance's ``get_cam_image`` ``[N, h, w]``, rectified as the library does (``max(cam, 0)``), then
upsampled bilinearly (``align_corners=False``) to the input size. The library's own result is
therefore ``(map - m) / (M - m + 1e-7)`` with ``m, M`` the layer map's min and max; the exactness
tests check that identity. FullGrad has no single layer (it sums ``|input * grad|`` and
``|bias * grad|`` of every Conv2d/BatchNorm2d bias, each min-max scaled per image and channel as
its paper's code does): its raw map is that sum at input size, before the final scaling.

K classes per image are one library call on the images repeated K times (one target per row).
Options: the class's constructor keywords (``ratio_channels_to_ablate`` and ``batch_size`` for
Ablation-CAM, ``kernel``/``gamma`` for KPCA-CAM, ``k`` for FEM), ``batch_size`` for Score-CAM and
``eigen_smooth``; for Eigen-CAM and Eigen-Grad-CAM ``eigen_sign``: ``library`` (the default, the
library's ``get_2d_projection``, whose sign is the SVD's and so arbitrary: the rectified map shows
either the region or its complement) or ``corrected`` (the library's own
``get_2d_projection_with_sign_correction``, Seg-Eigen-CAM's rule: flipped when ``|min| > |max|``),
put in the instance's ``get_cam_image`` so the library's result and the raw map agree. The
library wants a graph from the logits to the layer; the adapter gives it by
an input that requires grad, never by unfreezing the model, and runs under ``untouched``.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from benchmark.methods._ecosystem import SKIP, init_keywords, register_family, require, split_options, untouched
from benchmark.methods.base import Explanation, SaliencyMethod, upsample
from benchmark.models.base import resolve_layer

# suite name -> class exported by pytorch_grad_cam 1.5.7. Left out: RandomCAM (random weights, a
# control rather than an explanation), FinerCAM (needs comparison classes), SegEigenCAM (segmentation
# outputs), RefineCAM and SESS (wrappers of another CAM over image pyramids), DeepFeatureFactorization,
# ShapleyCAM (its Hessian-vector product needs a second-order graph that a frozen model does not have:
# the library's own call raises on the suite's models).
CLASSES = {
    "gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcam_elementwise": "GradCAMElementWise",
    "gradcam_plusplus": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "ablationcam": "AblationCAM",
    "scorecam": "ScoreCAM", "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM", "layercam": "LayerCAM",
    "fullgrad": "FullGrad", "kpca_cam": "KPCA_CAM", "fem": "FEM",
}
LEFT_OUT = ("RandomCAM", "FinerCAM", "SegEigenCAM", "RefineCAM", "SESS", "ShapleyCAM")
_PROGRESS_BARS = ("AblationCAM", "ScoreCAM")  # tqdm bars per image: kept off the run's log
EIGEN = ("EigenCAM", "EigenGradCAM")
EIGEN_SIGNS = ("library", "corrected")


class PytorchGradCamMethod(SaliencyMethod):
    """One pytorch-grad-cam class; maps ``[B, K, H, W]``, raw (see the module doc)."""

    def __init__(self, model, info, class_name: str, name: str, layer=None, eigen_smooth: bool = False,
                 eigen_sign: str = "library", **options):
        super().__init__(model, info)
        self.name, self.class_name, self.eigen_smooth = name, class_name, bool(eigen_smooth)
        if eigen_sign not in EIGEN_SIGNS or (eigen_sign != "library" and class_name not in EIGEN):
            raise ValueError(f"{name}: eigen_sign={eigen_sign!r}; expected one of {EIGEN_SIGNS} "
                             f"('corrected' for {' and '.join(EIGEN)} only)")
        self.eigen_sign = eigen_sign
        self.cls = getattr(require("pytorch_grad_cam", name), class_name)
        if class_name == "FullGrad":
            self.layer, self.module = "all Conv2d/BatchNorm2d biases", None
        else:
            self.layer = layer or info.layers.get("gradcam")
            if not self.layer:
                raise ValueError(f"{name}: model {info.name!r} has no 'gradcam' layer preset; pass method.layer")
            self.module = resolve_layer(model, self.layer)
        skip = (*SKIP, "reshape_transform", "ablation_layer")
        self.init, rest = split_options(self.cls, options, skip=skip)
        self.attrs = {k: rest.pop(k) for k in list(rest) if k in self._attr_keys()}
        if rest:
            raise ValueError(f"{name}: unknown option(s) {sorted(rest)} for pytorch_grad_cam.{class_name}; "
                             f"known: {sorted(init_keywords(self.cls, skip) | {'eigen_smooth'} | self._attr_keys())}")

    def _attr_keys(self) -> set[str]:
        """Attributes the library reads but its constructor does not take."""
        return {"batch_size"} if self.class_name == "ScoreCAM" else set()

    def settings(self) -> dict:
        """What defines the map (written into each run's summary), scaling included."""
        return {"library": "pytorch_grad_cam", "class": self.class_name, "layer": self.layer,
                "eigen_smooth": self.eigen_smooth, **self.init, **self.attrs,
                **({"eigen_sign": self.eigen_sign} if self.class_name in EIGEN else {}),
                "scaling": "none (per-layer map before the library's min-max scaling)" if self.module is not None
                else "per-component min-max (FullGrad's definition); none after the sum"}

    def _build(self, lib):
        init = dict(self.init)
        if self.class_name == "AblationCAM":
            init["ablation_layer"] = lib.AblationLayer()  # the library's default instance is shared state
        cam = self.cls(model=self.model, target_layers=[] if self.module is None else [self.module], **init)
        for key, value in self.attrs.items():
            setattr(cam, key, value)
        if self.eigen_sign == "corrected":
            _sign_corrected(cam, self.class_name == "EigenGradCAM")
        return cam

    def _explain(self, images, class_ids):
        lib = require("pytorch_grad_cam", self.name)
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        b, k = class_ids.shape
        x = images.detach().repeat_interleave(k, dim=0).requires_grad_(True)
        targets = [ClassifierOutputTarget(int(c)) for c in class_ids.reshape(-1).tolist()]
        raw = []
        quiet = self.class_name in _PROGRESS_BARS
        with untouched(self.model), (contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()):
            cam = self._build(lib)
            try:
                _capture(cam, raw, self.module is None)
                cam(input_tensor=x, targets=targets, eigen_smooth=self.eigen_smooth)
                logits = cam.outputs.detach()[::k]
            finally:
                cam.activations_and_grads.release()
        maps = torch.from_numpy(np.ascontiguousarray(raw[-1], dtype=np.float32)).to(images.device)
        maps = upsample(maps.reshape(b, k, *maps.shape[-2:]), tuple(images.shape[-2:]))
        return Explanation(maps=maps.contiguous(), logits=logits.float())


def _sign_corrected(cam, with_grads: bool) -> None:
    """The instance's projection by the library's sign-corrected SVD (activations, or grads * activations)."""
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    def image(input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        return get_2d_projection_with_sign_correction(grads * activations if with_grads else activations)
    cam.get_cam_image = image


def _capture(cam, store: list, fullgrad: bool) -> None:
    """Record the raw map on the instance's own path (no global patching): the per-layer
    ``get_cam_image`` output rectified as the library does, or FullGrad's summed components."""
    if fullgrad:
        compute = cam.compute_cam_per_layer

        def record(*args, **kwargs):
            out = compute(*args, **kwargs)
            store.append(np.asarray(out)[:, 0])
            return out
        cam.compute_cam_per_layer = record
        return
    image = cam.get_cam_image

    def record(*args, **kwargs):
        out = image(*args, **kwargs)
        out_np = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        store.append(np.maximum(out_np, 0))
        return out
    cam.get_cam_image = record


register_family("pgc", CLASSES, PytorchGradCamMethod)
