"""The saliency-method contract: ``maps = method(images, class_ids)``.

``images`` ``[B, 3, H, W]`` are already normalized; ``class_ids`` is a LongTensor ``[B]`` (one map
per image) or ``[B, K]`` (K maps per image, computed in one pass where the method allows). Maps
are float32 ``[B, H, W]`` (or ``[B, K, H, W]``) at the input resolution, raw (not normalized).
``explain`` also returns the logits of the same forward pass, so a metric never runs the model
twice for one batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.base import ModelInfo
from benchmark.registry import Registry

METHODS = Registry("method", bound=("model", "info", "layer"))


class NotApplicable(RuntimeError):
    """The method is undefined for this model (CAM on a model without global pooling + linear)."""


@dataclass
class Explanation:
    maps: torch.Tensor  # [B, K, H, W] float32, input resolution
    logits: torch.Tensor  # [B, C]


class SaliencyMethod:
    """Base class; subclasses implement ``_explain(images, class_ids [B, K]) -> Explanation``."""

    name = "method"

    def __init__(self, model: nn.Module, info: ModelInfo):
        self.model, self.info = model, info

    def explain(self, images: torch.Tensor, class_ids: torch.Tensor) -> Explanation:
        """Maps ``[B, K, H, W]`` for ``class_ids [B, K]`` (or ``[B]``, giving K=1) and the logits."""
        if images.dim() != 4:
            raise ValueError(f"{self.name}: images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        ids = class_ids.to(images.device).long()
        if ids.dim() == 1:
            ids = ids[:, None]
        if ids.shape[0] != images.shape[0]:
            raise ValueError(f"{self.name}: {ids.shape[0]} class rows for {images.shape[0]} images")
        out = self._explain(images, ids)
        expected = (images.shape[0], ids.shape[1], *images.shape[-2:])
        if tuple(out.maps.shape) != expected or out.maps.dtype != torch.float32:
            raise ValueError(f"{self.name}: maps {tuple(out.maps.shape)} {out.maps.dtype}, expected {expected} float32")
        return out

    def __call__(self, images: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        maps = self.explain(images, class_ids).maps
        return maps[:, 0] if class_ids.dim() == 1 else maps

    def _explain(self, images: torch.Tensor, class_ids: torch.Tensor) -> Explanation:
        raise NotImplementedError


def for_samples(method, samples):
    """Context in which ``method`` knows which images its next ``explain`` calls are for.

    Methods that read per-image data (``precomputed``: maps from files named by image id) set
    ``uses_samples = True`` and implement ``bind_samples(samples)`` (a context manager); for every
    other method this is a no-op. ``evaluate`` wraps each ``metric.score_batch`` call in it.
    """
    if not getattr(method, "uses_samples", False):
        return contextlib.nullcontext()
    return method.bind_samples(samples)


def upsample(maps: torch.Tensor, size_hw: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of ``[B, K, h, w]`` maps to ``size_hw`` (``align_corners=True``: Torch7's
    ``image.scale`` convention, corner cells on corner pixels)."""
    if tuple(maps.shape[-2:]) == tuple(size_hw):
        return maps.float()
    b, k = maps.shape[:2]
    out = F.interpolate(maps.reshape(b * k, 1, *maps.shape[-2:]).float(), size=size_hw,
                        mode="bilinear", align_corners=bool(align_corners))
    return out.reshape(b, k, *size_hw)


def build_method(name: str, model: nn.Module, info: ModelInfo, layer: str | None = None, **options) -> SaliencyMethod:
    """Build a registered method for ``model``; ``layer`` overrides the model's preset layer.

    An option the method does not declare is an ``OptionError`` listing the ones it does."""
    import benchmark.methods  # noqa: F401  (registers every method)

    factory = METHODS.get(name)
    METHODS.check_options(name, options)
    return factory(model, info, layer=layer, **options)
