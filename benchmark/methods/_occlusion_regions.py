"""Footprint regions of the incremental occlusion engine (Krypton-style reuse, Nakandala et al.,
SIGMOD 2019) and the window arithmetic of spatial ops.

A ``Region`` stands for ``N`` occluded activations of one graph node at once: outside a rectangle
they equal the clean image's activation (cached), inside it they are ``values``. All ``N``
rectangles have the same size ``(h, w)`` (so the values stack into one tensor ``[N, *mid, h, w]``)
and their own upper-left corner ``starts [N, 2]`` (row, column), kept inside the map. ``img [N]``
names the clean image each occluded copy belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Region:
    """``N`` occluded copies of a node: ``values [N, *mid, h, w]`` at ``starts [N, 2]`` of a clean map."""

    starts: torch.Tensor
    values: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        return int(self.values.shape[-2]), int(self.values.shape[-1])


def _axis_index(starts: torch.Tensor, length: int, limit: int):
    """Indices ``[N, length]`` from ``starts [N]``, clamped to ``[0, limit)``, and their validity."""
    pos = starts[:, None] + torch.arange(length, device=starts.device)
    return pos.clamp(0, limit - 1), (pos >= 0) & (pos < limit), pos


def crop(clean: torch.Tensor, img: torch.Tensor, region: Region | None, starts: torch.Tensor,
         size: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """The occluded activations in windows ``starts [N, 2]`` of ``size``: ``[N, *mid, h, w]``.

    ``clean [B, *mid, H, W]`` is the clean activation; ``region`` (or ``None``: unchanged) holds what
    the occluder changed. Window pixels outside the map get ``fill`` (a conv's zero padding, or
    ``-inf`` for max pooling).
    """
    if region is not None and region.size == tuple(size) and torch.equal(region.starts, starts):
        return region.values
    b, mid, (hh, ww) = clean.shape[0], clean.shape[1:-2], clean.shape[-2:]
    flat = clean.reshape(b, -1, hh, ww)
    h, w = size
    rows, row_ok, row_pos = _axis_index(starts[:, 0], h, hh)
    cols, col_ok, col_pos = _axis_index(starts[:, 1], w, ww)
    out = flat[img[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # [N, h, w, C]
    if region is not None:
        rh, rw = region.size
        vals = region.values.reshape(region.values.shape[0], -1, rh, rw)
        r_rows, r_row_ok, _ = _axis_index(row_pos[:, 0] - region.starts[:, 0], h, rh)
        r_cols, r_col_ok, _ = _axis_index(col_pos[:, 0] - region.starts[:, 1], w, rw)
        n = torch.arange(len(img), device=img.device)
        changed = vals[n[:, None, None], :, r_rows[:, :, None], r_cols[:, None, :]]
        out = torch.where((r_row_ok[:, :, None] & r_col_ok[:, None, :])[..., None], changed, out)
    if not (bool(row_ok.all()) and bool(col_ok.all())):
        out = out.masked_fill(~(row_ok[:, :, None] & col_ok[:, None, :])[..., None], fill)
    return out.permute(0, 3, 1, 2).reshape(len(img), *mid, h, w)


def materialize(clean: torch.Tensor, img: torch.Tensor, region: Region) -> torch.Tensor:
    """The whole occluded activations ``[N, *mid, H, W]``: the clean maps with the region pasted in."""
    zero = torch.zeros_like(region.starts)
    return crop(clean, img, region, zero, tuple(clean.shape[-2:]))


def occluder(images: torch.Tensor, img: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, fill: float) -> Region:
    """The input region of ``N`` occluded copies: rows/columns ``[lo, hi)`` (``[N, 2]`` each) set to ``fill``.

    The windows share the size of the largest one; a window clipped by the border is stored in a
    window of that size moved inside the image, the rest of which keeps the clean pixels.
    """
    shape = images.shape[-2:]
    (y, h), (x, w) = fit(lo[:, 0], hi[:, 0], shape[0]), fit(lo[:, 1], hi[:, 1], shape[1])
    starts = torch.stack([y, x], 1)
    values = crop(images, img, None, starts, (h, w))
    rows = (starts[:, :1] + torch.arange(h, device=lo.device) - lo[:, :1]).ge(0) & \
        (starts[:, :1] + torch.arange(h, device=lo.device)).lt(hi[:, :1])
    cols = (starts[:, 1:] + torch.arange(w, device=lo.device) - lo[:, 1:]).ge(0) & \
        (starts[:, 1:] + torch.arange(w, device=lo.device)).lt(hi[:, 1:])
    return Region(starts, values.masked_fill((rows[:, :, None] & cols[:, None, :])[:, None], fill))


def fit(lo: torch.Tensor, hi: torch.Tensor, limit: int) -> tuple[torch.Tensor, int]:
    """One window length covering every ``[lo, hi)`` (clipped to ``[0, limit)``) and its starts."""
    lo, hi = lo.clamp(0, limit), hi.clamp(0, limit)
    length = max(1, int((hi - lo).max()))
    if length >= limit:
        return torch.zeros_like(lo), limit
    return torch.minimum(lo, torch.full_like(lo, limit - length)), length


def union(regions: list[Region], shape: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Equal-size windows ``(starts [N, 2], (h, w))`` covering each copy's rectangles in ``regions``."""
    lo = torch.stack([r.starts for r in regions]).amin(0)
    hi = torch.stack([r.starts + torch.tensor(r.size, device=r.starts.device) for r in regions]).amax(0)
    (y, h), (x, w) = fit(lo[:, 0], hi[:, 0], shape[0]), fit(lo[:, 1], hi[:, 1], shape[1])
    return torch.stack([y, x], 1), (h, w)


def window_out(region: Region, kernel, stride, padding, dilation, out_shape):
    """Output windows of a sliding op whose inputs changed only in ``region``, and the input they read.

    Per axis, output ``o`` reads inputs ``o*s - p .. o*s - p + d*(k-1)``. Returns ``None`` when the
    output window covers the whole map (full recomputation from there), else ``(out_starts [N, 2],
    out_size, in_starts [N, 2], in_size)``: ``in_*`` is the input window (it may reach into the
    padding) that an unpadded op turns into exactly the output window.
    """
    out_starts, out_size, in_starts, in_size = [], [], [], []
    for axis in (0, 1):
        k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
        a = region.starts[:, axis]
        b = a + region.size[axis]
        lo = torch.div(a + p - d * (k - 1) + s - 1, s, rounding_mode="floor")  # ceil division
        hi = torch.div(b - 1 + p, s, rounding_mode="floor") + 1
        start, length = fit(lo, hi, out_shape[axis])
        out_starts.append(start)
        out_size.append(length)
        in_starts.append(start * s - p)
        in_size.append((length - 1) * s + d * (k - 1) + 1)
    if tuple(out_size) == tuple(out_shape):
        return None
    return torch.stack(out_starts, 1), tuple(out_size), torch.stack(in_starts, 1), tuple(in_size)


def pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[-1]))


def conv_padding(padding, kernel, dilation) -> tuple[int, int] | None:
    """Leading (top, left) zero padding of a conv: ints, or ``'valid'`` / ``'same'`` (PyTorch's split)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    if isinstance(padding, str):
        return None
    return pair(padding)
