"""Sparseness: the Gini index of a map's absolute values (Chalasani et al., "Concise explanations of neural
networks using adversarial training", ICML 2020; Hurley and Rickard's Gini; DESIGN 4.7).

The map ``[S, S]`` of the GT class with the highest logit, at the model's input resolution:
``G = sum_i (2 i - n - 1) a_(i) / (n sum_i a_(i))`` over the ``n`` absolute values sorted
increasingly. 0: every pixel equal; ``1 - 1/n``: one pixel holds everything. Higher is sparser.
Quantus's ``Sparseness`` adds ``1e-7`` to every value first (and normalizes by the maximum unless
``normalise=False``); here nothing is added, so an all-zero or degenerate map is NaN, excluded and counted.

Aggregation ``mean_percentile_bootstrap`` v1: mean Gini with a 95 % percentile bootstrap interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import explained_maps, mean_with_interval
from benchmark.types import is_degenerate


def gini(values: np.ndarray) -> float:
    """Gini index of ``|values|`` (Hurley and Rickard's form); NaN for an all-zero input."""
    a = np.sort(np.abs(np.asarray(values, np.float64).ravel()))
    n, total = a.size, a.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * a).sum() / (n * total))


class Sparseness(Metric):
    name = "sparseness"
    aggregation = ("mean_percentile_bootstrap", 1)
    direction = "higher"
    uses_regions = False  # scores the map against the model, not against boxes: labels need no region

    def __init__(self, bootstrap: int = 10_000, seed: int = 0):
        self.bootstrap, self.seed = int(bootstrap), int(seed)

    def settings(self):
        return {"definition": "Gini index of |map| at input resolution, no offset",
                "explained_class": "GT class with the highest logit (first on ties)",
                "direction": self.direction, "bootstrap": self.bootstrap, "seed": self.seed}

    def score_batch(self, samples, images, method, prep):
        """One record per image: ``image_id, class_id, gini, degenerate``."""
        classes, maps = explained_maps(samples, images, method)
        rows = []
        for sample, cls, saliency in zip(samples, classes.tolist(), maps.cpu().numpy()):
            bad = is_degenerate(saliency)
            rows.append({"image_id": sample.image_id, "class_id": int(cls),
                         "gini": float("nan") if bad else gini(saliency), "degenerate": bad})
        return rows

    def aggregate(self, records: pd.DataFrame) -> dict:
        out = mean_with_interval(records["gini"].to_numpy(np.float64), "mean_gini", self.bootstrap, self.seed)
        return {**out, "direction": self.direction, "n_images": int(len(records)),
                "n_degenerate": int(records["degenerate"].sum())}


METRICS.register("sparseness", Sparseness)
