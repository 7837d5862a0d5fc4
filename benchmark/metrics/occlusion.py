"""Faithfulness: rank correlation between saliency maps and occlusion maps (Grad-CAM Table 2; DESIGN 4.5).

One pair per image: the GT class with the highest logit (among ``sample.labels``, which for VOC
lists every class with a box, difficult ones included; for a single-label image, its label). The method's map for that class and the occlusion map (the
``occlusion`` method on the same model, read from or written to ``OcclusionCache``) are compared at
the model's input resolution (``S x S``, 224 for the paper's VGG-16) by Spearman's rho with
average ranks for ties over all ``S*S`` pixels. A constant or non-finite map (either side) gives
NaN, which is excluded from the mean and counted. Aggregation: mean rho over the finite values
with a 95 % percentile bootstrap interval (``bootstrap`` resamples of the images, fixed ``seed``).

``resolution="original"`` (the supplement's "same size as the original image") occludes the original
image instead, ``patch`` and ``stride`` in original pixels (``methods._occlusion_original``), and
correlates over the original ``H x W`` pixels with the method's map resized there. Which class is
explained (the paper does not say) is the protocol setting ``explained_class``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.methods._occlusion_cache import OcclusionCache
from benchmark.methods._occlusion_original import OriginalOcclusion, OriginalOcclusionCache
from benchmark.methods.occlusion import DEFAULT_ENGINE, Occlusion
from benchmark.metrics._targets import target_classes
from benchmark.metrics.base import METRICS, Metric
from benchmark.paths import cache_dir
from benchmark.types import is_degenerate

RESOLUTIONS = ("input", "original")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties) of two equally sized arrays; NaN if one is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"spearman: {a.size} vs {b.size} values")
    if is_degenerate(a) or is_degenerate(b):
        return float("nan")
    from scipy.stats import rankdata  # on use: scipy.stats costs a fifth of a second to import

    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    return float(np.clip(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))


def bootstrap_mean_ci(values: np.ndarray, resamples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; NaNs for no values, ``(x, x)`` for one."""
    values = np.asarray(values, np.float64)
    if values.size == 0 or resamples < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // values.size)  # bounded memory for long value lists
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


class OcclusionCorrelation(Metric):
    name = "occlusion_correlation"
    uses_regions = False  # correlates maps with occlusion drops: labels need no box
    aggregation = ("mean_rho_percentile_bootstrap", 1)

    def __init__(self, patch: int = 35, stride: int = 1, fill: float = 0.0, max_batch: int | None = None,
                 amp: bool = False, bootstrap: int = 10_000, seed: int = 0, cache_dir: str | None = None,
                 figure_images: int = 4, engine: str = DEFAULT_ENGINE, resolution: str = "input"):
        if resolution not in RESOLUTIONS:
            raise ValueError(f"occlusion_correlation option resolution={resolution!r}: expected one of {list(RESOLUTIONS)}")
        self.resolution = resolution
        self.occlusion = {"patch": int(patch), "stride": int(stride), "fill": float(fill),
                          "max_batch": int(max_batch) if max_batch else None, "amp": bool(amp), "engine": str(engine)}
        self.bootstrap, self.seed, self.figure_images = int(bootstrap), int(seed), int(figure_images)
        self.cache_root = Path(cache_dir) if cache_dir else None
        self._caches: dict = {}
        self._figure: dict = {}

    def settings(self):
        return {**{k: v for k, v in self.occlusion.items() if k != "max_batch"},
                "resolution": self.resolution,
                "units": "input pixels" if self.resolution == "input" else "original pixels",
                "explained_class": "GT class with the highest logit (first on ties)",
                "pair": "GT class with the highest logit",
                "correlation": f"spearman, average ranks, all {self.resolution} pixels",
                "bootstrap": self.bootstrap, "seed": self.seed, "interval": "95 % percentile bootstrap over images"}

    def cache_for(self, model, info, prep, device) -> OcclusionCache:
        """The occlusion cache of this model and preprocessing (one engine per model object)."""
        key = (id(model), prep)
        if key not in self._caches:
            root = self.cache_root or cache_dir() / "occlusion"
            if self.resolution == "original":
                plain = {k: v for k, v in self.occlusion.items() if k != "engine"}  # the occluder passes through the resize
                engine = OriginalOcclusion(model, info, prep, **plain)
                self._caches[key] = OriginalOcclusionCache(root, engine, prep, device)
            else:
                self._caches[key] = OcclusionCache(root, Occlusion(model, info, **self.occlusion), prep, device)
        return self._caches[key]

    def score_batch(self, samples, images, method, prep):
        """One record per image: ``image_id, class_id, rho, degenerate, occlusion_degenerate``."""
        with torch.inference_mode():
            logits = method.model(images)
        chosen = target_classes(samples, logits)
        maps = method.explain(images, chosen.to(images.device)).maps[:, 0].float()
        if self.resolution == "original":
            maps = [prep.to_original(m[None], s.orig_size_hw)[0].cpu().numpy() for m, s in zip(maps, samples)]
        else:
            maps = maps.cpu().numpy()
            self._remember(method, samples, prep)
        cache = self.cache_for(method.model, method.info, prep, images.device)
        occlusion = cache.maps(samples, images, chosen)
        rows = []
        for sample, cls, saliency, occ in zip(samples, chosen.tolist(), maps, occlusion):
            rows.append({"image_id": sample.image_id, "class_id": int(cls), "rho": spearman(saliency, occ),
                         "degenerate": is_degenerate(saliency), "occlusion_degenerate": is_degenerate(occ)})
        return rows

    def _remember(self, method, samples, prep) -> None:
        """Keep the first few samples (and what drew them) for the qualitative figure."""
        held = self._figure.setdefault("samples", [])
        if len(held) < self.figure_images:
            held.extend(samples[: self.figure_images - len(held)])
            self._figure.update(method=method, prep=prep)

    def aggregate(self, records: pd.DataFrame) -> dict:
        rho = records["rho"].to_numpy(np.float64)
        finite = rho[np.isfinite(rho)]
        low, high = bootstrap_mean_ci(finite, self.bootstrap, self.seed)
        return {"mean_rho": float(finite.mean()) if finite.size else float("nan"), "ci95_low": low,
                "ci95_high": high, "n": int(finite.size), "n_nan": int(rho.size - finite.size),
                "n_images": int(rho.size), "n_degenerate": int(records["degenerate"].sum()),
                "n_occlusion_degenerate": int(records["occlusion_degenerate"].sum())}

    def write_artifacts(self, records: pd.DataFrame, run_dir: Path) -> Path | None:
        """``fig1.png`` (Fig. 1-style panel) for the first images this run scored; None if none.

        The run's method is drawn too (in place of the same-named standard row, so its options apply).
        """
        if self.figure_images < 1 or not self._figure.get("samples"):
            return None
        from benchmark.metrics._fig1 import write_fig1

        method = self._figure["method"]
        extra = {} if method.name == "occlusion" else {method.name: method}
        prep = self._figure["prep"]
        device = next(method.model.parameters()).device
        return write_fig1(method.model, method.info, self._figure["samples"], prep, run_dir, n=self.figure_images,
                          cache=self.cache_for(method.model, method.info, prep, device), extra=extra)


METRICS.register("occlusion_correlation", OcclusionCorrelation)
