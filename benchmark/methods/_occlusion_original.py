"""Occlusion at the original image resolution (Grad-CAM supplement: the occlusion map is "of the
same size as the original image"; DESIGN 4.5 occludes the 224x224 input instead).

The ``patch x patch`` square and the ``stride`` are in original pixels: for every center on the
original ``H x W`` grid (``0, s, 2s, ...``; the image zero-padded so every pixel can be a center)
the square is filled with the color whose normalized value is ``fill`` (0: the dataset mean), the
occluded image goes through the run's preprocessing (resize to the input, normalization) and the
model; the value at the center is logit(clean) - logit(occluded), upsampled as in
``methods.occlusion`` when ``stride > 1``. Output: one float32 ``[H, W]`` map per (image, class).
Cost: ``ceil(H/s) * ceil(W/s)`` forwards per image (187,500 for a 500x375 image at stride 1,
3.7 times the 50,176 at a 224x224 input), plus one resize per occluded copy.

``OriginalOcclusionCache`` keeps the maps on disk like ``OcclusionCache`` (same key scheme, its
settings say ``resolution: original``), so every method's run reuses them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.methods._occlusion_cache import OcclusionCache
from benchmark.methods.occlusion import _autocast, _window_masks, default_max_batch, upsample_centers


class OriginalOcclusion:
    """Engine: occlusion maps ``[H, W]`` at the original resolution for (sample, class) pairs."""

    def __init__(self, model, info, prep, patch: int = 35, stride: int = 1, fill: float = 0.0,
                 max_batch: int | None = None, amp: bool = False):
        if prep.mode == "center_crop":
            raise ValueError("occlusion_correlation resolution=original: preprocessing center_crop is not supported "
                             "(the cropped-away border has no logit change); use paper or shorter_side")
        self.model, self.info, self.prep = model, info, prep
        self.patch, self.stride, self.fill = int(patch), int(stride), float(fill)
        self.max_batch, self.amp = (int(max_batch) if max_batch else None), bool(amp)

    def settings(self, device="cpu") -> dict:
        effective_amp = self.amp and torch.device(device).type == "cuda"
        return {"patch": self.patch, "stride": self.stride, "fill": self.fill, "amp": effective_amp,
                "resolution": "original"}

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [0, 1] -> normalized model input, as ``Preprocess.__call__`` does."""
        rh, rw = self.prep._resized_hw(x.shape[-2], x.shape[-1])
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.prep.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.prep.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def map(self, image: np.ndarray, class_id: int, device) -> np.ndarray:
        """Occlusion map ``[H, W]`` float32 of one ``[H, W, 3]`` uint8 image for one class."""
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().div(255)[None]
        h, w = x.shape[-2:]
        mean = torch.tensor(self.prep.mean, device=device).view(3, 1, 1)
        std = torch.tensor(self.prep.std, device=device).view(3, 1, 1)
        color = mean + self.fill * std  # normalizes to ``fill``
        rows = _window_masks(h, self.patch, self.stride, device)
        cols = _window_masks(w, self.patch, self.stride, device)
        n_w, n = cols.shape[0], rows.shape[0] * cols.shape[0]
        use_amp = self.amp and torch.device(device).type == "cuda"
        with _autocast(use_amp):
            clean = self.model(self._to_input(x)).float()[0, class_id]
        out = torch.empty(n, dtype=torch.float32, device=device)
        step = self.max_batch or default_max_batch(torch.device(device))
        for start in range(0, n, step):
            cell = torch.arange(start, min(n, start + step), device=device)
            mask = rows[cell // n_w][:, :, None] & cols[cell % n_w][:, None, :]
            occluded = torch.where(mask[:, None], color, x)
            with _autocast(use_amp):
                out[start:start + len(cell)] = clean - self.model(self._to_input(occluded)).float()[:, class_id]
        coarse = out.view(rows.shape[0], n_w)
        return upsample_centers(coarse, (h, w), self.stride).cpu().numpy().astype(np.float32)


class OriginalOcclusionCache(OcclusionCache):
    """``OcclusionCache`` for original-resolution maps (shape ``[H, W]`` of each image)."""

    def _load(self, path, shape=None):
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return value if value.dtype == np.float32 and (shape is None or value.shape == shape) else None

    def maps(self, samples, images, class_ids) -> list[np.ndarray]:
        """Occlusion maps ``[H_i, W_i]`` for ``class_ids [B]``: read, or computed and stored."""
        out = []
        for sample, c in zip(samples, [int(c) for c in class_ids.reshape(-1).tolist()]):
            path = self.path(sample, c)
            value = self._load(path, sample.orig_size_hw)
            if value is None:
                value = self.engine.map(sample.image, c, images.device)
                self._store(path, value)
                self.computed += 1
            else:
                self.loaded += 1
            out.append(value)
        return out
