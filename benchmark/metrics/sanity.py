"""Model randomization sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018; DESIGN 4.7).

For the GT class with the highest logit (read on the trained model), the method's map ``[S, S]``
on the trained model is compared with its map on randomized copies (``_randomize``): ``cascading``
randomizes the layers from the top down, one more per step; ``independent`` one layer at a time.
The method is rebuilt on each copy; the shared model is never changed. Per step four similarities
(Adebayo et al. Sec. 3): Spearman's rho of the raw maps and of their absolute values, SSIM
(``skimage.metrics.structural_similarity``, data range 1) and the Pearson correlation of HOG
features (``skimage.feature.hog``, its defaults) of ``|map| / max|map|``. A constant map (either
side) gives NaN for the measures that need variation. Lower similarity after randomization means
the map depends on the weights: lower is better. Cost: ``1 + layers x variants`` explanations per batch.

Aggregation ``mean_final_similarity`` v1: per variant and measure the mean over images at the
last step (every layer randomized, cascading) or over the layers (independent); the per-layer
means are the records' lists (``layers`` names the steps) and the report's figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics import _randomize
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import explained_maps
from benchmark.metrics.occlusion import spearman

VARIANTS = ("cascading", "independent")
MEASURES = ("spearman", "spearman_abs", "ssim", "hog")


def _unit(saliency: np.ndarray) -> np.ndarray:
    """``|map| / max|map|`` (unchanged when the maximum is 0 or not finite)."""
    a = np.abs(np.asarray(saliency, np.float64))
    peak = a.max() if a.size and np.isfinite(a).all() else 0.0
    return a / peak if peak > 0 else a


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; NaN when either side is constant or not finite."""
    if a.std() == 0 or b.std() == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    from scipy.stats import pearsonr  # on use (scipy.stats and skimage: a third of a second to import)

    return float(pearsonr(a, b)[0])


def similarities(original: np.ndarray, randomized: np.ndarray) -> dict[str, float]:
    """The four measures between two maps ``[S, S]``."""
    from skimage.feature import hog
    from skimage.metrics import structural_similarity

    u, v = _unit(original), _unit(randomized)
    return {"spearman": spearman(original, randomized), "spearman_abs": spearman(np.abs(original), np.abs(randomized)),
            "ssim": float(structural_similarity(u, v, data_range=1.0)),
            "hog": _pearson(hog(u), hog(v))}


class ModelRandomization(Metric):
    name = "sanity_model_randomization"
    aggregation = ("mean_final_similarity", 1)
    direction = "lower"
    uses_regions = False  # scores the map against the model, not against boxes: labels need no region

    def __init__(self, variants: tuple | list = VARIANTS, seed: int = 42, max_layers: int | None = None):
        self.variants = tuple(variants)
        if not self.variants or any(v not in VARIANTS for v in self.variants):
            raise ValueError(f"sanity_model_randomization metric option variants={list(variants)}: "
                             f"expected a non-empty subset of {list(VARIANTS)}")
        self.seed, self.max_layers = int(seed), int(max_layers) if max_layers else None

    def settings(self):
        return {"variants": list(self.variants), "seed": self.seed, "max_layers": self.max_layers,
                "layers": "modules with reset_parameters, top down; reset_parameters under manual_seed(seed + 1)",
                "measures": list(MEASURES), "map_scaling": "|map| / max|map| for SSIM and HOG",
                "explained_class": "GT class with the highest logit on the trained model", "direction": self.direction}

    def layers(self, model) -> list[str]:
        """The randomized layers, top first (the first ``max_layers`` of them when set)."""
        names = _randomize.randomizable_layers(model)
        return names[:self.max_layers] if self.max_layers else names

    def score_batch(self, samples, images, method, prep):
        """One record per image: for each variant and measure, a list over ``layers``."""
        classes, maps = explained_maps(samples, images, method)
        original = maps.cpu().numpy()
        layers = self.layers(method.model)
        rows = [{"image_id": s.image_id, "class_id": int(c), "layers": layers} for s, c in zip(samples, classes.tolist())]
        for variant in self.variants:
            values = {m: [[] for _ in samples] for m in MEASURES}
            for _, randomized in getattr(_randomize, variant)(method.model, layers, self.seed):
                clone = _randomize.method_on(method, randomized)
                changed = clone.explain(images, classes).maps[:, 0].float().cpu().numpy()
                for i in range(len(samples)):
                    for m, v in similarities(original[i], changed[i]).items():
                        values[m][i].append(v)
            for i, row in enumerate(rows):
                row.update({f"{variant}_{m}": values[m][i] for m in MEASURES})
        return rows

    def aggregate(self, records: pd.DataFrame) -> dict:
        out: dict = {"direction": self.direction, "n_images": int(len(records))}
        for variant in self.variants:
            for m in MEASURES:
                curves = np.array(records[f"{variant}_{m}"].tolist(), np.float64)
                per_image = curves[:, -1] if variant == "cascading" else np.nanmean(curves, axis=1)
                out[f"{variant}_{m}"] = float(np.nanmean(per_image)) if np.isfinite(per_image).any() else float("nan")
        return out


def layer_curves(records: pd.DataFrame, variant: str = "cascading") -> pd.DataFrame:
    """Mean over images of each measure per step: rows = layers (in randomization order), columns = measures."""
    layers = list(records["layers"].iloc[0])
    data = {m: np.nanmean(np.array(records[f"{variant}_{m}"].tolist(), np.float64), axis=0) for m in MEASURES}
    return pd.DataFrame(data, index=pd.Index(layers, name="layer"))


METRICS.register("sanity_model_randomization", ModelRandomization)
