"""Quantus's image metrics by name: ``metric=quantus_<name>`` runs ``quantus.<Class>`` on each batch (Hokhikyan
et al., "Quantus", JMLR 2023), with the run store, sharding and resume of every other metric.

The adapter wraps, never copies: per batch it gives Quantus the model, the normalized images
``x [B, 3, S, S]``, the explained class (the GT class with the highest logit), the method's maps
``a [B, 1, S, S]``, for localisation metrics the class's GT region at input resolution ``s [B, 1, S, S]``
(boxes or COCO masks, ``model.preprocessing=paper`` only), and an ``explain_func`` that runs the
run's method (rebuilt on another model when Quantus passes one, e.g. MPRT's randomized copies; the
shared model is never changed). Quantus 0.6's ``ROAD`` indexes a 3-channel image's pixels past
its end and stops with an IndexError: use the native ``road``. ``metric.options`` are checked against the class's constructor
keywords plus ``softmax``; an unknown key is an error listing the accepted ones. Quantus's random
draws use numpy's global generator, seeded with ``seed`` before each batch, so a random metric's
scores depend on the batch composition. Registering the names never imports Quantus.

Records: ``score`` (a scalar score, else NaN) and ``scores`` (a curve or per-layer list). Aggregation
``mean_score`` v1: the mean of the finite scalar scores; ``direction`` is the class's ``score_direction``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.data.readers import class_region
from benchmark.methods._ecosystem import init_keywords, untouched
from benchmark.metrics._pointing_core import region_kind
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import explained_maps
from benchmark.registry import OptionError

QUANTUS_METRICS = {
    "pixel_flipping": "PixelFlipping", "region_perturbation": "RegionPerturbation", "road": "ROAD",
    "faithfulness_correlation": "FaithfulnessCorrelation", "monotonicity_correlation": "MonotonicityCorrelation",
    "selectivity": "Selectivity", "sparseness": "Sparseness", "complexity": "Complexity",
    "relevance_mass_accuracy": "RelevanceMassAccuracy", "relevance_rank_accuracy": "RelevanceRankAccuracy",
    "attribution_localisation": "AttributionLocalisation", "pointing_game": "PointingGame",
    "top_k_intersection": "TopKIntersection", "mprt": "MPRT", "random_logit": "RandomLogit",
    "max_sensitivity": "MaxSensitivity", "avg_sensitivity": "AvgSensitivity",
}
CALL_KEYWORDS = ("softmax",)
EXTRA = "pip install 'gradcam-benchmark[test]' (quantus)"


def quantus_class(class_name: str, metric: str):
    """``quantus.<class_name>``, or a one-line ImportError naming what installs it."""
    try:
        import quantus
    except ImportError:
        raise ImportError(f"metric {metric!r} needs the optional package 'quantus' (not installed): {EXTRA}") from None
    return getattr(quantus, class_name)


class QuantusMetric(Metric):
    """One Quantus metric class; ``options``: its constructor keywords and ``softmax``."""

    aggregation = ("mean_score", 1)

    def __init__(self, class_name: str, name: str, seed: int = 0, region: str = "auto", **options):
        self.name, self.class_name, self.seed, self.region = name, class_name, int(seed), region
        self.cls = quantus_class(class_name, name)
        accepted = sorted(init_keywords(self.cls)) + list(CALL_KEYWORDS)
        unknown = [k for k in options if k not in accepted]
        if unknown:
            raise OptionError(f"config field 'metric.options' of metric {name!r}: unknown option(s) "
                              f"{', '.join(map(repr, unknown))}; expected options: seed, region, "
                              f"{', '.join(accepted)} (quantus.{class_name})")
        self.call = {k: options.pop(k) for k in CALL_KEYWORDS if k in options}
        self.init = {"disable_warnings": True, "display_progressbar": False, **options}
        self.direction = getattr(getattr(self.cls, "score_direction", None), "value", "unknown")
        category = getattr(getattr(self.cls, "evaluation_category", None), "value", "")
        self.localisation = str(category).lower().startswith("locali")

    def settings(self):
        import quantus

        return {"library": f"quantus {quantus.__version__}", "class": self.class_name, "init": dict(self.init),
                "call": dict(self.call), "seed": self.seed, "direction": self.direction,
                "explained_class": "GT class with the highest logit (first on ties)",
                "region": self.region if self.localisation else None}

    def regions(self, samples, classes, size: int, prep) -> np.ndarray:
        """GT regions ``[B, 1, S, S]`` of the explained classes, nearest-resized to the input."""
        if prep.mode != "paper":
            raise ValueError(f"metric {self.name!r}: localisation needs model.preprocessing=paper, got {prep.mode!r}")
        out = []
        for sample, cls in zip(samples, classes):
            region = class_region(sample, int(cls), region_kind(sample, int(cls), self.region))
            mask = torch.nn.functional.interpolate(torch.from_numpy(region)[None, None].float(), size=(size, size))
            out.append(mask[0].numpy())
        return np.stack(out)

    def score_batch(self, samples, images, method, prep):
        """One record per image: ``score`` and ``scores`` as Quantus returns them."""
        from benchmark.metrics._randomize import method_on

        classes, maps = explained_maps(samples, images, method)

        def explain(model, inputs, targets, **_):
            chosen = method if model is method.model else method_on(method, model)
            x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=images.device)
            return chosen(x, torch.as_tensor(np.asarray(targets), device=images.device).long()).detach().cpu().numpy()[:, None]

        y = classes.cpu().numpy()
        s = self.regions(samples, y, images.shape[-1], prep) if self.localisation else None
        np.random.seed(self.seed)
        with untouched(method.model):
            out = self.cls(**self.init)(model=method.model, x_batch=images.detach().cpu().numpy(), y_batch=y,
                                        a_batch=maps[:, None].detach().cpu().numpy(), s_batch=s, channel_first=True,
                                        explain_func=explain, device=str(images.device), **self.call)
        return [{"image_id": sample.image_id, "class_id": int(c), **_split(value)}
                for sample, c, value in zip(samples, y.tolist(), _per_sample(out, len(samples)))]

    def aggregate(self, records: pd.DataFrame) -> dict:
        values = records["score"].to_numpy(np.float64)
        finite = values[np.isfinite(values)]
        return {"mean_score": float(finite.mean()) if finite.size else float("nan"), "direction": self.direction,
                "n": int(finite.size), "n_nan": int(values.size - finite.size), "n_images": int(len(records))}


def _per_sample(out, n: int) -> list:
    """Quantus's result as one value per sample (a dict of per-layer lists becomes per-sample lists)."""
    if isinstance(out, dict):
        layers = [k for k in out if k != "original"]
        return [[out[k][i] for k in layers] for i in range(n)]
    return list(out)


def _split(value) -> dict:
    """``score`` for a scalar result, ``scores`` for a curve or a list."""
    array = np.asarray(value, np.float64)
    if array.ndim == 0:
        return {"score": float(array), "scores": None}
    return {"score": float("nan"), "scores": array.ravel().tolist()}


def _builder(class_name: str, name: str):
    """The registry's factory of ``quantus_<name>`` (Quantus is imported when it is called)."""
    def build(seed: int = 0, region: str = "auto", **options):
        return QuantusMetric(class_name, name, seed=seed, region=region, **options)

    return build


for _key, _class in QUANTUS_METRICS.items():
    METRICS.register(f"quantus_{_key}", _builder(_class, f"quantus_{_key}"))
