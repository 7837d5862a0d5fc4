"""How much of a map falls on the object: relevance mass and rank accuracy (Arras et al., "CLEVR-XAI",
Information Fusion 2022) and energy-based pointing (Wang et al., "Score-CAM", CVPRW 2020); DESIGN 4.7.

For every scored GT class of an image (the pointing game's classes and GT region: boxes, or the
COCO union mask with ``region=masks|auto``), the class's map is resized to the original resolution
and compared with the region ``G`` (``N = |G|`` pixels):

* ``relevance_mass``: ``sum(map in G) / sum(map)`` over the raw values (Quantus's
  ``RelevanceMassAccuracy`` with ``abs=False``, ``normalise=False``);
* ``relevance_rank``: the fraction of the ``N`` highest pixels (decreasing, ties row-major) inside ``G``;
* ``energy_pointing``: ``sum(max(map, 0) in G) / sum(max(map, 0))``.

Higher is better for all three. A degenerate map (non-finite or constant), a zero total, or an
empty region scores NaN, excluded and counted. Aggregation ``mean_percentile_bootstrap`` v1: mean
over the finite (image, class) values with a 95 % percentile bootstrap interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.data.readers import class_region
from benchmark.metrics._perturbation import descending_ranks
from benchmark.metrics._pointing_core import check_region, pad_rows, region_kind, scored_classes
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import mean_with_interval
from benchmark.types import is_degenerate


def relevance_mass(saliency: np.ndarray, region: np.ndarray) -> float:
    """``sum(saliency in region) / sum(saliency)``; NaN for an empty region or a zero total."""
    a, inside = np.asarray(saliency, np.float64).ravel(), np.asarray(region, bool).ravel()
    total = a.sum()
    return float(a[inside].sum() / total) if inside.any() and total != 0 else float("nan")


def relevance_rank(saliency: np.ndarray, region: np.ndarray) -> float:
    """Fraction of the ``|region|`` highest pixels (ties row-major) that lie in ``region``; NaN if empty."""
    inside = np.asarray(region, bool).ravel()
    n = int(inside.sum())
    if n == 0:
        return float("nan")
    ranks = descending_ranks(torch.from_numpy(np.asarray(saliency, np.float64).ravel()[None]))[0].numpy()
    return float(inside[ranks < n].sum() / n)


def energy_pointing(saliency: np.ndarray, region: np.ndarray) -> float:
    """Share of the positive energy ``sum(max(map, 0))`` inside ``region``."""
    return relevance_mass(np.clip(np.asarray(saliency, np.float64), 0, None), region)


class _RegionShare(Metric):
    """One record per (image, scored class); subclasses set ``name`` and ``score``."""

    aggregation = ("mean_percentile_bootstrap", 1)
    direction = "higher"
    score = staticmethod(relevance_mass)

    def __init__(self, region: str = "auto", skip_difficult: bool = True, bootstrap: int = 10_000, seed: int = 0):
        self.region, self.skip_difficult = check_region(region), bool(skip_difficult)
        self.bootstrap, self.seed = int(bootstrap), int(seed)

    def settings(self):
        return {"region": self.region, "skip_difficult": self.skip_difficult, "classes": "every scored GT class",
                "resolution": "original image", "definition": (self.score.__doc__ or "").strip(),
                "direction": self.direction, "bootstrap": self.bootstrap, "seed": self.seed}

    def score_batch(self, samples, images, method, prep):
        """Maps of every scored class in one call; one record per (image, class) with ``value``."""
        classes = [scored_classes(s, self.region, self.skip_difficult) for s in samples]
        if not any(classes):
            return []
        ids, counts = pad_rows(classes)
        maps = method.explain(images, ids).maps
        rows = []
        for i, sample in enumerate(samples):
            if counts[i] == 0:
                continue
            orig = prep.to_original(maps[i, :counts[i]], sample.orig_size_hw).cpu().numpy()
            for c, saliency in zip(classes[i], orig):
                kind = region_kind(sample, c, self.region)
                bad = is_degenerate(saliency)
                value = float("nan") if bad else self.score(saliency, class_region(sample, c, kind))
                rows.append({"image_id": sample.image_id, "class_id": int(c), "value": value, "region": kind,
                             "degenerate": bad})
        return rows

    def aggregate(self, records: pd.DataFrame) -> dict:
        out = mean_with_interval(records["value"].to_numpy(np.float64), f"mean_{self.name}", self.bootstrap, self.seed)
        return {**out, "direction": self.direction, "n_records": int(len(records)),
                "n_images": int(records["image_id"].nunique()), "n_degenerate": int(records["degenerate"].sum())}


class RelevanceMass(_RegionShare):
    name = "relevance_mass"
    score = staticmethod(relevance_mass)


class RelevanceRank(_RegionShare):
    name = "relevance_rank"
    score = staticmethod(relevance_rank)


class EnergyPointing(_RegionShare):
    name = "energy_pointing"
    score = staticmethod(energy_pointing)


METRICS.register("relevance_mass", RelevanceMass)
METRICS.register("relevance_rank", RelevanceRank)
METRICS.register("energy_pointing", EnergyPointing)
