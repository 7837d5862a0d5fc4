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


def _overlap(a: int, length: int, b: int, other: int) -> tuple[int, int, int, int] | None:
    """Where ``[b, b + other)`` meets ``[a, a + length)``: ``(lo, hi)`` relative to ``a`` and to ``b``, or None."""
    lo, hi = max(a, b), min(a + length, b + other)
    return None if hi <= lo else (lo - a, hi - a, lo - b, hi - b)


def crop(clean: torch.Tensor, img: torch.Tensor, region: Region | None, starts: torch.Tensor,
         size: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """The occluded activations in windows ``starts [N, 2]`` of ``size``: ``[N, *mid, h, w]``.

    ``clean [B, *mid, H, W]`` is the clean activation; ``region`` (or ``None``: unchanged) holds what
    the occluder changed. Window pixels outside the map get ``fill`` (a conv's zero padding, or
    ``-inf`` for max pooling). One slice copy per copy and source: the windows differ per copy, and
    slices keep the copies contiguous (a gather with per-copy indices is several times slower).
    """
    if region is not None and region.size == tuple(size) and torch.equal(region.starts, starts):
        return region.values
    (hh, ww), (h, w) = clean.shape[-2:], size
    where = starts.tolist()
    inside = all(0 <= y and y + h <= hh and 0 <= x and x + w <= ww for y, x in where)
    if inside and (h, w) == (hh, ww):
        out = clean.index_select(0, img)
    else:
        shape = (len(where), *clean.shape[1:-2], h, w)
        out = clean.new_empty(shape) if inside else clean.new_full(shape, fill)
        for i, (b, (y, x)) in enumerate(zip(img.tolist(), where)):
            ry, rx = _overlap(y, h, 0, hh), _overlap(x, w, 0, ww)
            if ry and rx:
                out[i, ..., ry[0]:ry[1], rx[0]:rx[1]] = clean[b, ..., ry[2]:ry[3], rx[2]:rx[3]]
    if region is not None:
        rh, rw = region.size
        for i, ((y, x), (ry0, rx0)) in enumerate(zip(where, region.starts.tolist())):
            ry, rx = _overlap(y, h, ry0, rh), _overlap(x, w, rx0, rw)
            if ry and rx:
                out[i, ..., ry[0]:ry[1], rx[0]:rx[1]] = region.values[i, ..., ry[2]:ry[3], rx[2]:rx[3]]
    return out


def materialize(clean: torch.Tensor, img: torch.Tensor, region: Region) -> torch.Tensor:
    """The whole occluded activations ``[N, *mid, H, W]``: the clean maps with the region pasted in."""
    return crop(clean, img, region, torch.zeros_like(region.starts), tuple(clean.shape[-2:]))


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
