"""Region perturbation, most relevant first (Samek et al., "Evaluating the visualization of what a deep neural
network has learned", IEEE TNNLS 2017; DESIGN 4.7).

The map ``[S, S]`` is cut into non-overlapping ``patch`` x ``patch`` regions on a grid centred as
Quantus centres it (the ``patch - S mod patch`` missing pixels split floor/ceil before/after, so edge
regions may be smaller); regions are ordered by the sum of the map over them (decreasing, ties in
row-major region order). Step ``k`` replaces the first ``k`` regions (all channels) by the baseline:
``uniform`` draws every pixel and channel from U(0, 1) in RGB and normalizes it like the image
(seeded by ``seed`` and the image id, so an image's draws do not depend on its batch), ``constant``
uses ``fill`` in the normalized space. The curve holds ``f(x_0) - f(x_k)`` for ``k = 0..L``,
``L = min(regions, number of regions)`` (``f``: class probability or logit of the GT class with the
highest logit); AOPC is its mean over the ``L + 1`` points. Higher is better. A degenerate map scores NaN, excluded and counted.

Aggregation ``mean_aopc_percentile_bootstrap`` v1: mean AOPC with a 95 % percentile bootstrap interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.metrics._perturbation import (SCORES, check_choice, descending_ranks, image_generator,
                                             perturbation_curves)
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import curve_rows, curve_summary, explained_maps

BASELINES = ("uniform", "constant")


def region_ids(size_hw: tuple[int, int], patch: int) -> tuple[torch.Tensor, int]:
    """``(ids [H*W], count)``: each pixel's region on the centred grid of ``patch`` x ``patch`` regions."""
    axes = []
    for n in size_hw:
        before = ((patch - n % patch) % patch) // 2
        axes.append((torch.arange(n) + before) // patch)
    columns = int(axes[1].max()) + 1
    ids = (axes[0][:, None] * columns + axes[1][None, :]).flatten()
    return ids, int(ids.max()) + 1


def region_ranks(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, H*W]``: the rank of each pixel's region by the map's sum over it (decreasing, ties row-major)."""
    ids, count = region_ids(tuple(maps.shape[-2:]), patch)
    ids = ids.to(maps.device)
    flat = maps.flatten(1).double()
    sums = torch.zeros(flat.shape[0], count, dtype=flat.dtype, device=flat.device).index_add_(1, ids, flat)
    return descending_ranks(sums)[:, ids]


class RegionPerturbation(Metric):
    name = "region_perturbation"
    aggregation = ("mean_aopc_percentile_bootstrap", 1)
    direction = "higher"
    uses_regions = False  # scores the map against the model, not against boxes: labels need no region

    def __init__(self, patch: int = 9, regions: int = 100, baseline: str = "uniform", fill: float = 0.0,
                 score: str = "probability", max_batch: int = 64, seed: int = 0, bootstrap: int = 10_000):
        if int(patch) < 1 or int(regions) < 1:
            raise ValueError(f"region_perturbation metric options patch={patch}, regions={regions}: expected positive integers")
        self.patch, self.regions = int(patch), int(regions)
        self.baseline = check_choice(self.name, "baseline", baseline, BASELINES)
        self.fill, self.score = float(fill), check_choice(self.name, "score", score, SCORES)
        self.max_batch, self.seed, self.bootstrap = int(max_batch), int(seed), int(bootstrap)

    def settings(self):
        baseline = ("uniform: U(0, 1) per pixel and channel in RGB, then normalized; seeded by seed and image id"
                    if self.baseline == "uniform" else f"constant {self.fill} in the normalized input")
        return {"patch": self.patch, "regions": self.regions, "baseline": baseline, "score": self.score,
                "order": "most relevant first: region sum of the map, decreasing, ties row-major",
                "grid": "non-overlapping, centred (Quantus's padding)",
                "aopc": "mean of f(x_0) - f(x_k), k = 0..min(regions, number of regions)",
                "explained_class": "GT class with the highest logit (first on ties)", "direction": self.direction,
                "seed": self.seed, "bootstrap": self.bootstrap}

    def substrate(self, samples, images: torch.Tensor, mean, std) -> torch.Tensor:
        """The baseline images ``[B, 3, S, S]`` in the normalized input space."""
        if self.baseline == "constant":
            return torch.full_like(images, self.fill)
        noise = torch.stack([torch.rand(images.shape[1:], generator=image_generator(self.seed, s.image_id))
                             for s in samples]).to(images.device, images.dtype)
        mean = torch.tensor(mean, dtype=images.dtype, device=images.device)[:, None, None]
        std = torch.tensor(std, dtype=images.dtype, device=images.device)[:, None, None]
        return (noise - mean) / std

    def curves(self, samples, images, maps, classes, model, mean, std) -> torch.Tensor:
        """``f(x_0) - f(x_k)`` ``[B, L + 1]`` for each image ``[B, 3, S, S]``."""
        ranks = region_ranks(maps, self.patch)
        counts = torch.arange(min(self.regions, int(ranks.max()) + 1) + 1)  # Quantus stops at the last region too
        scores = perturbation_curves(model, images, self.substrate(samples, images, mean, std), ranks, counts,
                                     classes, self.score, self.max_batch)
        return scores[:, :1] - scores

    def score_batch(self, samples, images, method, prep):
        """One record per image: ``image_id, class_id, aopc, curve, forwards, degenerate``."""
        classes, maps = explained_maps(samples, images, method)
        curves = self.curves(samples, images, maps, classes, method.model, prep.mean, prep.std).cpu().numpy()
        return curve_rows(samples, classes, maps, curves, "aopc", lambda curve: float(curve.astype(np.float64).mean()))

    def aggregate(self, records: pd.DataFrame) -> dict:
        return curve_summary(self, records, "aopc")


METRICS.register("region_perturbation", RegionPerturbation)
