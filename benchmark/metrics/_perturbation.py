"""Batched perturbation curves: many steps of several images in one forward, built in torch on the model's device.

An image's curve is a sequence of inputs ``x_k = where(rank < count_k, end, start)`` (``rank [H*W]``:
each pixel's position in the order of its map), scored by the model for one class. The inputs of
every (image, step) pair of a batch are laid out as one list and forwarded ``max_batch`` at a time,
so the number of forwards per image is the number of curve points (the floor) and the number of
model calls is ``ceil(B * points / max_batch)``. Shared by ``deletion``/``insertion`` and
``region_perturbation``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

SCORES = ("probability", "logit")


def check_choice(metric: str, option: str, value, choices) -> str:
    """``value`` if it is one of ``choices``; else a ``ValueError`` naming the metric and option."""
    if value not in choices:
        raise ValueError(f"{metric} metric option {option}={value!r}: expected one of {list(choices)}")
    return value


def descending_ranks(maps: torch.Tensor) -> torch.Tensor:
    """LongTensor ``[B, N]``: each element's position when ``maps [B, ...]`` (flattened) is sorted by
    decreasing value; ties keep row-major order (the first pixel first)."""
    flat = maps.flatten(1)
    order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def class_scores(logits: torch.Tensor, classes: torch.Tensor, score: str) -> torch.Tensor:
    """``[N]``: the softmax probability (``score="probability"``) or the logit of ``classes [N]``."""
    values = logits.float().softmax(1) if score == "probability" else logits.float()
    return values.gather(1, classes[:, None].to(values.device))[:, 0]


def perturbation_curves(model, start: torch.Tensor, end: torch.Tensor, ranks: torch.Tensor, counts: torch.Tensor,
                        classes: torch.Tensor, score: str, max_batch: int) -> torch.Tensor:
    """Scores ``[B, K]``: point ``k`` of image ``b`` is ``start[b]`` with the pixels of ``rank < counts[k]``
    taken from ``end[b]`` (``start, end [B, C, H, W]``, ``ranks [B, H*W]``, ``counts [K]``)."""
    b, c, h, w = start.shape
    k = counts.numel()
    counts = counts.to(start.device)
    jobs = torch.arange(b * k, device=start.device)
    out = torch.empty(b * k, dtype=torch.float32, device=start.device)
    with torch.inference_mode():
        for chunk in jobs.split(max(1, int(max_batch))):
            image, step = chunk // k, chunk % k
            mask = (ranks[image] < counts[step][:, None]).view(-1, 1, h, w)
            inputs = torch.where(mask, end[image], start[image])
            out[chunk] = class_scores(model(inputs), classes[image], score)
    return out.view(b, k)


def normalized_auc(curve: np.ndarray) -> float:
    """Trapezoidal area under ``curve`` with its points spread evenly over ``[0, 1]`` (RISE's ``auc``)."""
    curve = np.asarray(curve, np.float64)
    from scipy.integrate import trapezoid  # on use: its import costs a sixth of a second

    return float(trapezoid(curve, dx=1.0 / (curve.size - 1))) if curve.size > 1 else float("nan")


def step_counts(n_pixels: int, step: int) -> torch.Tensor:
    """``[0, step, 2 step, ..., n_pixels]``: pixels taken after each of ``ceil(n_pixels / step)`` steps."""
    if step < 1:
        raise ValueError(f"perturbation step={step}: expected a positive number of pixels per step")
    return torch.tensor([min(i * step, n_pixels) for i in range(-(-n_pixels // step) + 1)], dtype=torch.long)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """RISE's ``gkern``: a centred impulse of ``size x size`` filtered by ``scipy.ndimage.gaussian_filter``."""
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1.0
    return gaussian_filter(impulse, sigma)


def blur(images: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """``images [B, C, H, W]`` convolved per channel with ``gaussian_kernel`` (zero padding, as RISE)."""
    kernel = torch.tensor(gaussian_kernel(size, sigma), dtype=images.dtype, device=images.device)
    c = images.shape[1]
    return torch.nn.functional.conv2d(images, kernel.expand(c, 1, size, size), padding=size // 2, groups=c)


def image_generator(seed: int, image_id: str) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and the image id: an image's draws depend on neither its
    batch nor the device."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return generator
