"""How ``benchmark.perf`` compares map stacks; the speed options themselves are method options
(``benchmark.methods._fast``: ``channels_last``, ``trunk_precision``)."""

from __future__ import annotations

import torch


def pearson_per_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of corresponding maps ``[..., H, W]`` (NaN for a constant map)."""
    x = a.flatten(-2).double()
    y = b.flatten(-2).double()
    x = x - x.mean(-1, keepdim=True)
    y = y - y.mean(-1, keepdim=True)
    return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))


def max_normalized_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference of two map stacks after min-max normalizing each map to [0, 1]."""
    def norm(m):
        f = m.flatten(-2).double()
        lo, hi = f.amin(-1, keepdim=True), f.amax(-1, keepdim=True)
        return (f - lo) / (hi - lo).clamp_min(1e-30)

    return float((norm(a) - norm(b)).abs().max())
