"""Occlusion maps (Zeiler & Fergus, ECCV 2014), the reference of Grad-CAM's faithfulness test
(Selvaraju et al., Table 2; DESIGN 4.5), also usable as a saliency method in its own right.

Geometry (pixel indices, 0-based, input resolution ``H x W``):

* Centers are ``0, s, 2s, ...`` (all ``< H``) along each axis, ``s = stride``: ``ceil(H / s)`` rows.
* The occluder of a ``p x p`` patch centered at row ``i`` covers rows ``i - (p-1)//2 .. i + p//2``
  clipped to the image; columns alike. For odd ``p`` this is the symmetric window (padding
  ``(p-1)/2`` on both sides, as in the paper); for even ``p`` the center is the upper-left of the
  four central pixels (padding ``p/2 - 1`` before and ``p/2`` after, PyTorch's ``'same'`` rule).
  "Zero padding" means the window may extend past the border: the model still sees an ``H x W``
  image, only the part of the window inside it is filled.
* The occluded pixels (all channels) get ``fill`` in normalized input space (0 = the dataset mean).
* Value at a center: ``logit_c(original) - logit_c(occluded)`` (raw; negative where occluding
  raises the logit).
* ``stride > 1``: coarse value ``k`` sits exactly on pixel ``k * s``; pixel ``y`` takes the linear
  interpolation at coarse coordinate ``u = y / s`` (bilinear in 2-D), and pixels past the last
  center take its value. This is neither ``align_corners=False`` nor ``True`` of ``F.interpolate``
  (it equals ``align_corners=True`` exactly when ``(H - 1) % s == 0``): it keeps each measured value
  at the pixel it was measured at.

Engine: all (image, center) pairs of a batch are flattened and evaluated ``max_batch`` occluded
copies per forward pass under ``torch.inference_mode``; ``K`` target classes per image share the
same forwards. ``amp=True`` runs the forwards under CUDA autocast (float16: its 11-bit mantissa
keeps logit differences, bfloat16's 8 bits would not); on CPU the flag has no effect.

``engine="incremental"`` (``benchmark/methods/_occlusion_incremental.py``) runs each image once,
keeps every layer's activations and recomputes, for each occluded copy, only the occluder's
footprint layer by layer (Krypton, Nakandala et al., SIGMOD 2019); it needs a ``torch.fx`` trace of
the model and falls back to ``plain`` with a warning where tracing fails. Both engines give the same
maps up to float rounding; the engine in effect is part of ``settings()`` (and of the cache key).
"""

from __future__ import annotations

import contextlib
import logging
import weakref

import torch

from benchmark.methods._occlusion_incremental import IncrementalOcclusion
from benchmark.methods._occlusion_regions import occluder
from benchmark.methods.base import METHODS, Explanation, SaliencyMethod

log = logging.getLogger(__name__)
ENGINES = ("plain", "incremental")
DEFAULT_ENGINE = "incremental"  # exact on VGG-16, AlexNet, ResNet-50, GoogLeNet, EfficientNet-Lite0 (tests)
_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# Occluded copies per forward when ``max_batch`` is unset: large batches pay off on a GPU, but on a
# CPU a batch of 128-256 copies falls out of cache (measured 8 vs 19.5 forward images/s on
# ResNet-50 at 224, 2 cores), so small batches are faster there.
MAX_BATCH = {"cuda": 256}
MAX_BATCH_OTHER = 8
# The incremental engine's footprints are small, and its full-map tail (e.g. VGG-16's 25088x4096
# layer) is amortized over the batch: 32 copies per call cost 0.54 s per copy against 0.72 s at 8
# (VGG-16, patch 35, 224 px, 2 shared cores).
MAX_BATCH_INCREMENTAL_OTHER = 32


def default_max_batch(device: torch.device, engine: str = "plain") -> int:
    other = MAX_BATCH_INCREMENTAL_OTHER if engine == "incremental" else MAX_BATCH_OTHER
    return MAX_BATCH.get(device.type, other)


def window_bounds(center: int, patch: int, size: int) -> tuple[int, int]:
    """Half-open ``[lo, hi)`` of the occluder centered at ``center`` along an axis of ``size``."""
    return max(0, center - (patch - 1) // 2), min(size, center + patch // 2 + 1)


def centers(size: int, stride: int) -> torch.Tensor:
    """Patch centers ``0, s, 2s, ... < size`` (LongTensor ``[ceil(size / s)]``)."""
    return torch.arange(0, size, stride)


def _window_masks(size: int, patch: int, stride: int, device) -> torch.Tensor:
    """Bool ``[n_centers, size]``: row ``k`` marks the pixels occluded by the ``k``-th center."""
    pos = torch.arange(size, device=device)
    c = centers(size, stride).to(device)[:, None]
    return (pos >= c - (patch - 1) // 2) & (pos <= c + patch // 2)


def center_interpolation(size: int, stride: int) -> torch.Tensor:
    """Weights ``[size, n]`` mapping ``n`` coarse values (on pixels ``k * stride``) to every pixel."""
    n = len(centers(size, stride))
    u = (torch.arange(size, dtype=torch.float64) / stride).clamp(max=n - 1)
    i0 = u.floor().long()
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = u - i0
    weights = torch.zeros(size, n, dtype=torch.float64)
    rows = torch.arange(size)
    weights.index_put_((rows, i0), 1 - frac, accumulate=True)
    weights.index_put_((rows, i1), frac, accumulate=True)
    return weights


def upsample_centers(coarse: torch.Tensor, size_hw: tuple[int, int], stride: int) -> torch.Tensor:
    """Coarse maps ``[..., n_h, n_w]`` measured at centers -> float32 ``[..., H, W]`` (see module doc)."""
    wy = center_interpolation(size_hw[0], stride).to(coarse.device)
    wx = center_interpolation(size_hw[1], stride).to(coarse.device)
    if tuple(coarse.shape[-2:]) != (wy.shape[1], wx.shape[1]):
        raise ValueError(f"occlusion: coarse map {tuple(coarse.shape[-2:])} does not fit {size_hw} at stride {stride}")
    if stride == 1:
        return coarse.float()
    return torch.einsum("yi,...ij,xj->...yx", wy, coarse.double(), wx).float()


def incremental_engine(model) -> IncrementalOcclusion | None:
    """The model's traced incremental engine (memoized per model), or ``None`` with a warning if fx fails."""
    if model not in _TRACES:
        try:
            _TRACES[model] = IncrementalOcclusion(model)
        except Exception as err:  # fx raises many kinds of errors on untraceable Python control flow
            log.warning("occlusion: torch.fx cannot trace %s (%s: %s); engine 'plain' is used instead",
                        type(model).__name__, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
            _TRACES[model] = None
    return _TRACES[model]


def _autocast(enabled: bool):
    if enabled:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.inference_mode()
def occlusion_coarse(model, images: torch.Tensor, class_ids: torch.Tensor, patch: int, stride: int,
                     fill: float, max_batch: int | None = None, amp: bool = False, engine: str = "plain"):
    """Occlusion values at the centers: ``[B, K, n_h, n_w]`` float32 and the clean logits ``[B, C]``.

    ``images [B, 3, H, W]`` normalized; ``class_ids [B, K]``. Occluded copies of all images are
    batched together, at most ``max_batch`` per forward (``engine``: see the module doc).
    """
    incremental = incremental_engine(model) if engine == "incremental" else None
    b, _, h, w = images.shape
    use_amp = bool(amp) and images.device.type == "cuda"
    rows = _window_masks(h, patch, stride, images.device)
    cols = _window_masks(w, patch, stride, images.device)
    n_w = cols.shape[0]
    n = rows.shape[0] * n_w
    ids = class_ids.to(images.device).long()
    with _autocast(use_amp):
        if incremental is not None:
            cached = incremental.clean(images)
            clean = cached[incremental.nodes[-1]].float()
        else:
            clean = model(images).float()
    out = torch.empty(b * n, ids.shape[1], dtype=torch.float32, device=images.device)
    max_batch = max_batch or default_max_batch(images.device, "incremental" if incremental else "plain")
    bounds = [((c - (patch - 1) // 2).clamp(min=0), (c + patch // 2 + 1).clamp(max=size))
              for size in (h, w) for c in (centers(size, stride).to(images.device),)]

    def spans(cell):  # [N, 2] first and past-the-last occluded (row, column) of each job
        i, j = cell // n_w, cell % n_w
        return (torch.stack([bounds[0][0][i], bounds[1][0][j]], 1), torch.stack([bounds[0][1][i], bounds[1][1][j]], 1))

    for start in range(0, b * n, max_batch):
        job = torch.arange(start, min(b * n, start + max_batch), device=images.device)
        img, cell = job // n, job % n
        with _autocast(use_amp):
            if incremental is not None:
                logits = incremental.occluded(cached, img, occluder(images, img, *spans(cell), fill)).float()
            else:
                mask = rows[cell // n_w][:, :, None] & cols[cell % n_w][:, None, :]  # [N, H, W]
                logits = model(torch.where(mask[:, None], fill, images[img])).float()
        sel = ids[img]
        out[start:start + len(job)] = clean[img].gather(1, sel) - logits.gather(1, sel)
    return out.view(b, n, -1).permute(0, 2, 1).reshape(b, -1, rows.shape[0], n_w).contiguous(), clean


class Occlusion(SaliencyMethod):
    """Occlusion map at input resolution: ``[B, K, H, W]`` float32, raw (may be negative)."""

    name = "occlusion"

    def __init__(self, model, info, layer=None, patch: int = 35, stride: int = 1, fill: float = 0.0,
                 max_batch: int | None = None, amp: bool = False, engine: str = DEFAULT_ENGINE):
        super().__init__(model, info)
        if engine not in ENGINES:
            raise ValueError(f"occlusion: engine={engine!r}; expected one of {ENGINES}")
        if layer is not None:
            raise ValueError(f"occlusion: method.layer={layer!r} given, but occlusion works on the input (use null)")
        for key, value in (("patch", patch), ("stride", stride), ("max_batch", max_batch or 1)):
            if int(value) != value or value < 1:
                raise ValueError(f"occlusion: {key}={value!r}; expected a positive integer")
        self.patch, self.stride, self.fill = int(patch), int(stride), float(fill)
        self.max_batch, self.amp = (int(max_batch) if max_batch else None), bool(amp)
        self.layer = None
        self.engine = "incremental" if engine == "incremental" and incremental_engine(model) else "plain"

    def settings(self, device: str | torch.device = "cpu") -> dict:
        """What determines the map (``max_batch`` does not); ``amp`` and ``engine`` as in effect."""
        effective_amp = self.amp and torch.device(device).type == "cuda"
        return {"patch": self.patch, "stride": self.stride, "fill": self.fill, "amp": effective_amp,
                "engine": self.engine}

    def _explain(self, images, class_ids):
        coarse, logits = occlusion_coarse(self.model, images, class_ids, self.patch, self.stride,
                                          self.fill, self.max_batch, self.amp, self.engine)
        return Explanation(maps=upsample_centers(coarse, tuple(images.shape[-2:]), self.stride), logits=logits)


@METHODS.register("occlusion", options=Occlusion)
def occlusion(model, info, layer=None, **options):
    return Occlusion(model, info, layer=layer, **options)
