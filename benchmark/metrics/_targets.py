"""The occlusion correlation's pairing rule (Grad-CAM Table 2; DESIGN 4.5): one class per image.

Shared by the metric (``occlusion.py``) and its Fig. 1 panel (``_fig1.py``), which draws the maps
of the same classes.
"""

from __future__ import annotations

import torch

from benchmark.types import check_logits


def target_classes(samples, logits: torch.Tensor) -> torch.Tensor:
    """LongTensor ``[B]``: per image, its GT label with the highest logit (first on ties)."""
    check_logits(logits, [s.image_id for s in samples])
    out = []
    for sample, row in zip(samples, logits.detach().float().cpu()):
        labels = [int(c) for c in sample.labels]
        if not labels:
            raise ValueError(f"occlusion_correlation: image {sample.image_id!r} has no labels")
        out.append(max(labels, key=lambda c: (row[c].item(), -c)))
    return torch.tensor(out, dtype=torch.long)

