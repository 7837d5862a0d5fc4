"""Deletion and insertion (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018; DESIGN 4.7).

The explained class is the GT class with the highest logit (as for the occlusion correlation). The
map ``[S, S]`` orders the pixels by decreasing value (ties: row-major order); ``step`` pixels (all
channels) change per point, RISE's 224 at 224 x 224. Deletion starts from the image and replaces
pixels by zeros of the model's input (normalized) space; insertion starts from the image blurred by
RISE's kernel (``blur_size`` x ``blur_size`` impulse through ``scipy.ndimage.gaussian_filter`` with
``blur_sigma``, zero padding) and puts the image's pixels back. The curve has ``ceil(S*S/step) + 1``
points (first: no pixel changed), each the class probability (``score="probability"``) or logit;
its AUC is RISE's trapezoid over points spread evenly on ``[0, 1]``. Deletion: lower is better;
insertion: higher. A degenerate map (non-finite or constant) scores NaN, excluded and counted.

Aggregation ``mean_auc_percentile_bootstrap`` v1: mean AUC over the finite values with a 95 %
percentile bootstrap interval (``bootstrap`` resamples of the images, ``seed``), and forwards per image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.metrics._perturbation import (SCORES, blur, check_choice, descending_ranks, normalized_auc,
                                             perturbation_curves, step_counts)
from benchmark.metrics._targets import target_classes
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.occlusion import bootstrap_mean_ci
from benchmark.types import is_degenerate


def explained_maps(samples, images, method):
    """``(classes [B], maps [B, S, S])``: the GT class with the highest logit and the method's map of it."""
    with torch.inference_mode():
        logits = method.model(images)
    classes = target_classes(samples, logits).to(images.device)
    return classes, method.explain(images, classes).maps[:, 0].float()


def mean_with_interval(values: np.ndarray, key: str, resamples: int, seed: int) -> dict:
    """``{key, ci95_low, ci95_high, n, n_nan}`` over the finite ``values``."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    low, high = bootstrap_mean_ci(finite, resamples, seed)
    return {key: float(finite.mean()) if finite.size else float("nan"), "ci95_low": low, "ci95_high": high,
            "n": int(finite.size), "n_nan": int(values.size - finite.size)}


def curve_rows(samples, classes: torch.Tensor, maps: torch.Tensor, curves: np.ndarray, key: str, score) -> list[dict]:
    """One record per image: ``image_id, class_id, <key>, curve, forwards, degenerate``; ``score(curve)`` gives
    ``<key>``, NaN for a degenerate map (it orders no pixel)."""
    rows = []
    for sample, cls, saliency, curve in zip(samples, classes.tolist(), maps.cpu().numpy(), curves):
        bad = is_degenerate(saliency)
        rows.append({"image_id": sample.image_id, "class_id": int(cls), key: float("nan") if bad else score(curve),
                     "curve": curve.astype(float).tolist(), "forwards": int(curve.size), "degenerate": bad})
    return rows


def curve_summary(metric, records: pd.DataFrame, key: str) -> dict:
    """The mean of ``<key>`` with its bootstrap interval, the direction, and the image and forward counts."""
    out = mean_with_interval(records[key].to_numpy(np.float64), f"mean_{key}", metric.bootstrap, metric.seed)
    return {**out, "direction": metric.direction, "n_images": int(len(records)),
            "n_degenerate": int(records["degenerate"].sum()), "forwards_per_image": float(records["forwards"].mean())}


class _CausalMetric(Metric):
    """RISE's causal metric; subclasses choose the substrate and the direction of the change."""

    uses_regions = False  # scores the map against the model, not against boxes: labels need no region

    aggregation = ("mean_auc_percentile_bootstrap", 1)
    direction = "higher"

    def __init__(self, step: int = 224, score: str = "probability", blur_sigma: float = 5.0, blur_size: int = 11,
                 max_batch: int = 64, bootstrap: int = 10_000, seed: int = 0):
        self.step, self.score = int(step), check_choice(self.name, "score", score, SCORES)
        if self.step < 1:
            raise ValueError(f"{self.name} metric option step={step}: expected a positive number of pixels")
        if float(blur_sigma) <= 0 or int(blur_size) < 1 or int(blur_size) % 2 == 0:
            raise ValueError(f"{self.name} metric options blur_sigma={blur_sigma}, blur_size={blur_size}: "
                             "expected sigma > 0 and an odd kernel size")
        self.blur_sigma, self.blur_size = float(blur_sigma), int(blur_size)
        self.max_batch, self.bootstrap, self.seed = int(max_batch), int(bootstrap), int(seed)

    def settings(self):
        return {"step": self.step, "score": self.score, "order": "decreasing map value, ties row-major",
                "explained_class": "GT class with the highest logit (first on ties)",
                "auc": "trapezoid, points evenly on [0, 1], first point: nothing changed",
                "direction": self.direction, "bootstrap": self.bootstrap, "seed": self.seed,
                **self._substrate_settings()}

    def curves(self, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor, model) -> torch.Tensor:
        """Scores ``[B, K]`` of ``classes`` along the curve of each image ``[B, 3, S, S]``."""
        start, end = self._ends(images)
        counts = step_counts(maps[0].numel(), self.step)
        return perturbation_curves(model, start, end, descending_ranks(maps), counts, classes, self.score,
                                   self.max_batch)

    def score_batch(self, samples, images, method, prep):
        """One record per image: ``image_id, class_id, auc, curve, forwards, degenerate``."""
        classes, maps = explained_maps(samples, images, method)
        curves = self.curves(images, maps, classes, method.model).cpu().numpy()
        return curve_rows(samples, classes, maps, curves, "auc", normalized_auc)

    def aggregate(self, records: pd.DataFrame) -> dict:
        return curve_summary(self, records, "auc")


class Deletion(_CausalMetric):
    name = "deletion"
    direction = "lower"

    def _ends(self, images):
        return images, torch.zeros_like(images)

    def _substrate_settings(self):
        return {"substrate": "zeros of the normalized input (the dataset mean)"}


class Insertion(_CausalMetric):
    name = "insertion"
    direction = "higher"

    def _ends(self, images):
        return blur(images, self.blur_size, self.blur_sigma), images

    def _substrate_settings(self):
        return {"substrate": "blurred image (RISE's gkern through scipy.ndimage.gaussian_filter, zero padding)",
                "blur_sigma": self.blur_sigma, "blur_size": self.blur_size}


METRICS.register("deletion", Deletion)
METRICS.register("insertion", Insertion)
