"""The ``center`` baseline: a map that peaks at the image center and ignores the image.

``m(y, x) = 1 - d / d_max`` with ``d`` the distance to the center ``((H-1)/2, (W-1)/2)`` measured
in units of the half-sides (so the map is an axis-scaled cone) and ``d_max`` the corner distance,
giving a positive map whose first argmax is the center pixel (upper-left of the four for even
sizes). The logits come from a plain forward pass, for the classification columns.
"""

from __future__ import annotations

import torch

from benchmark.methods.base import METHODS, Explanation, SaliencyMethod


def center_map(h: int, w: int) -> torch.Tensor:
    ys = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) / max(h / 2, 1)
    xs = (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) / max(w / 2, 1)
    d = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return 1.0 - d / (d.max() * 1.0001)


class Center(SaliencyMethod):
    name = "center"

    def _explain(self, images, class_ids):
        with torch.no_grad():
            logits = self.model(images)
        b, k = class_ids.shape
        cone = center_map(*images.shape[-2:]).to(images.device)
        return Explanation(maps=cone.expand(b, k, *cone.shape).contiguous(), logits=logits)


@METHODS.register("center")
def center(model, info, layer=None):
    return Center(model, info)
