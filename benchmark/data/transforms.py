"""Preprocessing (DESIGN 4.1) and the way back from input-resolution maps to the original image.

* ``paper`` (default): resize the whole image to ``S x S`` (aspect not kept, no crop), as the
  original Grad-CAM code did.
* ``center_crop``: resize the shorter side to ``256/224 * S``, center-crop ``S x S``.
* ``shorter_side`` (TorchRay's pointing benchmark): resize the shorter side to ``S`` keeping the
  aspect ratio (the longer side ``round(long * S / short)``), no crop; the input is not square, so
  it needs a model that accepts any size (global or adaptive pooling); a batch holds only inputs of
  one shape (``benchmark.data.buckets``).

Maps are evaluated at the original resolution: ``to_original`` resizes a ``[K, S, S]`` map
bilinearly (``align_corners=False`` by default; ``True`` is the convention of Torch7's
``image.scale``) to ``H x W``; for ``center_crop`` the map is first placed
at its crop position in the resized frame, and the cropped-away border, where the model saw
nothing, gets the value 0 (no evidence).

The resize decides points, cuts and boxes, so it must not depend on the thread count or on how
many maps are resized together: ``F.interpolate`` on CPU does (its vectorized paths change with
the channel count and the threads' split, e.g. 1.8e-7 for K = 3). ``bilinear_resize`` is the same
separable bilinear rule written as gathers, products and sums in float64, each correctly
rounded, then rounded once to float32: bit-identical for any thread count, any K (a map gives
the same result alone or in a batch) and on any device; within 2e-6 of the map's scale of
``F.interpolate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MODES = ("paper", "center_crop", "shorter_side")


def _taps(n_in: int, n_out: int, align_corners: bool, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices ``i0, i1`` and weight ``lam`` (float64) of each output position, as PyTorch's rule."""
    dst = torch.arange(n_out, dtype=torch.float64, device=device)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else torch.zeros_like(dst)
    else:
        src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp_(min=0.0)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    return i0, i1, src - i0.to(torch.float64)


def _lerp_dim1(x: torch.Tensor, i0: torch.Tensor, i1: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Along dim 1: ``x[:, i0] * (1 - lam) + x[:, i1] * lam``, two products and one sum per element."""
    out = x.index_select(1, i0).mul_((1.0 - lam)[:, None])
    return out.add_(x.index_select(1, i1).mul_(lam[:, None]))


def bilinear_resize(maps: torch.Tensor, size_hw: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """``[K, h, w]`` -> ``[K, H, W]`` float32, bilinear, each output a fixed sum of correctly rounded products.

    Float64 throughout (columns, then rows, the order of PyTorch's kernel), rounded once to float32
    at the end; no reduction whose order could depend on threads or on K, so the same bits
    everywhere. Within 2e-6 of the map's scale of ``F.interpolate`` (whose float32 source
    coordinates are the less exact of the two).
    """
    if maps.device.type == "mps":  # no float64 there: the same bits from the CPU
        return bilinear_resize(maps.cpu(), size_hw, align_corners).to(maps.device)
    x = maps.to(torch.float64)
    rows = _taps(x.shape[1], size_hw[0], align_corners, x.device)
    cols = _taps(x.shape[2], size_hw[1], align_corners, x.device)
    x = _lerp_dim1(x.transpose(1, 2), *cols)  # [K, W, h]
    x = _lerp_dim1(x.transpose(1, 2), *rows)  # [K, H, W]
    return x.to(torch.float32)


@dataclass(frozen=True)
class Preprocess:
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    mode: str = "paper"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"preprocessing mode {self.mode!r}; expected one of {MODES}")

    def _resized_hw(self, h: int, w: int) -> tuple[int, int]:
        if self.mode == "paper":
            return self.size, self.size
        if self.mode == "shorter_side":
            return (self.size, round(w * self.size / h)) if h <= w else (round(h * self.size / w), self.size)
        short = round(self.size * 256 / 224)
        return (short, max(short, round(w * short / h))) if h <= w else (max(short, round(h * short / w)), short)

    def input_hw(self, h: int, w: int) -> tuple[int, int]:
        """The model input's ``(H, W)`` for an ``h x w`` image: ``(S, S)`` except under ``shorter_side``."""
        return self._resized_hw(h, w) if self.mode == "shorter_side" else (self.size, self.size)

    def crop_offset(self, h: int, w: int) -> tuple[int, int]:
        rh, rw = self._resized_hw(h, w)
        return (rh - self.size) // 2, (rw - self.size) // 2

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """``[H, W, 3]`` uint8 RGB -> normalized ``[3, S, S]`` float32."""
        x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255)
        rh, rw = self._resized_hw(*image.shape[:2])
        x = F.interpolate(x[None], size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)[0]
        if self.mode == "center_crop":
            top, left = self.crop_offset(*image.shape[:2])
            x = x[:, top:top + self.size, left:left + self.size]
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def to_original(self, maps: torch.Tensor, orig_hw: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
        """``[K, S, S]`` input-resolution maps -> ``[K, H, W]`` at the original resolution."""
        h, w = orig_hw
        maps = maps.float()
        if self.mode == "center_crop":
            rh, rw = self._resized_hw(h, w)
            top, left = self.crop_offset(h, w)
            frame = maps.new_zeros(maps.shape[0], rh, rw)
            frame[:, top:top + self.size, left:left + self.size] = maps
            maps = frame
        return bilinear_resize(maps, (h, w), bool(align_corners))

    def boxes_to_input(self, boxes_xyxy: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
        """Map original-resolution inclusive boxes into input coordinates (clipped to the input).

        A box narrower than one input pixel keeps at least one pixel; a box wholly outside the
        center crop becomes ``(-1, -1, -1, -1)`` (not visible to the model).
        """
        h, w = orig_hw
        rh, rw = self._resized_hw(h, w)
        top, left = self.crop_offset(h, w) if self.mode == "center_crop" else (0, 0)
        b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        sx, sy = rw / w, rh / h
        out = np.stack([b[:, 0] * sx - left, b[:, 1] * sy - top, (b[:, 2] + 1) * sx - 1 - left,
                        (b[:, 3] + 1) * sy - 1 - top], axis=1)
        out = np.round(out)
        out[:, 2] = np.maximum(out[:, 2], out[:, 0])
        out[:, 3] = np.maximum(out[:, 3], out[:, 1])
        last_x, last_y = (rw - 1, rh - 1) if self.mode == "shorter_side" else (self.size - 1, self.size - 1)
        visible = (out[:, 2] >= 0) & (out[:, 3] >= 0) & (out[:, 0] <= last_x) & (out[:, 1] <= last_y)
        out[:, 0::2] = np.clip(out[:, 0::2], 0, last_x)
        out[:, 1::2] = np.clip(out[:, 1::2], 0, last_y)
        out = out.astype(np.int64)
        out[~visible] = -1
        return out
