"""ROAD: remove and debias (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML 2022; DESIGN 4.7).

For each percentage ``p`` of ``percentages`` and each order, the removed pixels of the map ``m``
``[S, S]`` (of the GT class with the highest logit) are, as in the authors' code and
pytorch-grad-cam: MoRF ``m >= percentile(m, 100 - p)``, LeRF ``1 - m >= percentile(1 - m, 100 - p)``
(numpy's linear interpolation, on the raw map). They are filled by noisy linear imputation
(``_imputation``; ``noise`` x N(0, 1) drawn from a generator seeded by ``seed``, the image id, the
order and ``p``, so an image's draws do not depend on its batch) and the class probability (or logit)
is read. Per image: the MoRF and LeRF curves over ``percentages``, their means, and ROAD's combined
score ``(mean LeRF - mean MoRF) / 2`` (higher is better); whether the class stays the top-1 is kept too.
Cost: one sparse solve per (image, order, percentage) on the host and ``2 x len(percentages) + 1``
forwards per image. A degenerate map scores NaN, excluded and counted.

Aggregation ``road_means_percentile_bootstrap`` v1: mean combined score with a 95 % percentile
bootstrap interval, mean MoRF and LeRF, and the MoRF/LeRF mean per percentage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.metrics._imputation import noisy_linear_imputation
from benchmark.metrics._perturbation import SCORES, check_choice, class_scores, image_generator
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.deletion import explained_maps, mean_with_interval
from benchmark.types import is_degenerate

ORDERS = ("morf", "lerf")


def removed_pixels(saliency: torch.Tensor, percentage: float, order: str) -> torch.Tensor:
    """Bool ``[H, W]``: the pixels ROAD removes at ``percentage`` (%) in ``order`` (``morf``/``lerf``)."""
    values = saliency if order == "morf" else 1 - saliency
    threshold = np.percentile(values.cpu().numpy(), 100 - percentage)
    return values >= torch.as_tensor(threshold, dtype=values.dtype)


class Road(Metric):
    name = "road"
    aggregation = ("road_means_percentile_bootstrap", 1)
    direction = "higher"
    uses_regions = False  # scores the map against the model, not against boxes: labels need no region

    def __init__(self, percentages: tuple | list = (10, 20, 30, 40, 50, 60, 70, 80, 90), noise: float = 0.01,
                 score: str = "probability", max_batch: int = 64, seed: int = 0, bootstrap: int = 10_000):
        self.percentages = tuple(float(p) for p in percentages)
        if not self.percentages or not all(0 < p < 100 for p in self.percentages):
            raise ValueError(f"road metric option percentages={list(percentages)}: expected values in (0, 100)")
        self.noise, self.score = float(noise), check_choice(self.name, "score", score, SCORES)
        self.max_batch, self.seed, self.bootstrap = int(max_batch), int(seed), int(bootstrap)

    def settings(self):
        return {"percentages": list(self.percentages), "noise": self.noise, "score": self.score,
                "imputation": "noisy linear (8 neighbours, 1/6 direct, 1/12 diagonal), scipy spsolve",
                "removed": "MoRF m >= percentile(m, 100 - p); LeRF 1 - m >= percentile(1 - m, 100 - p)",
                "combined": "(mean LeRF - mean MoRF) / 2", "explained_class": "GT class with the highest logit",
                "direction": self.direction, "seed": self.seed, "bootstrap": self.bootstrap}

    def imputed(self, sample, image: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """``[2 * P, C, S, S]``: the image imputed for every (order, percentage), MoRF first."""
        out = []
        for order in ORDERS:
            for p in self.percentages:
                generator = image_generator(self.seed, f"{sample.image_id}:{order}:{p}")
                out.append(noisy_linear_imputation(image, removed_pixels(saliency, p, order), self.noise, generator))
        return torch.stack(out)

    def forward_scores(self, model, inputs: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score, top1)`` of ``classes [N]`` for ``inputs [N, C, S, S]``, ``max_batch`` per forward."""
        scores, top1 = [], []
        with torch.inference_mode():
            for x, c in zip(inputs.split(self.max_batch), classes.split(self.max_batch)):
                logits = model(x)
                scores.append(class_scores(logits, c, self.score))
                top1.append(logits.argmax(1) == c)
        return torch.cat(scores), torch.cat(top1)

    def score_batch(self, samples, images, method, prep):
        """One record per image: MoRF/LeRF curves, their means, the combined score, top-1 kept."""
        classes, maps = explained_maps(samples, images, method)
        k = 2 * len(self.percentages)
        inputs = torch.cat([self.imputed(s, x, m) for s, x, m in zip(samples, images, maps)])
        scores, top1 = self.forward_scores(method.model, inputs, classes.repeat_interleave(k))
        scores, top1 = scores.view(-1, 2, k // 2).cpu().numpy(), top1.view(-1, 2, k // 2).cpu().numpy()
        rows = []
        for i, (sample, cls) in enumerate(zip(samples, classes.tolist())):
            bad = is_degenerate(maps[i].cpu().numpy())
            morf, lerf = scores[i, 0].astype(float), scores[i, 1].astype(float)
            rows.append({"image_id": sample.image_id, "class_id": int(cls), "morf": morf.tolist(), "lerf": lerf.tolist(),
                         "morf_top1": top1[i, 0].tolist(), "lerf_top1": top1[i, 1].tolist(),
                         "mean_morf": float(morf.mean()), "mean_lerf": float(lerf.mean()),
                         "combined": float("nan") if bad else float((lerf.mean() - morf.mean()) / 2),
                         "forwards": k + 1, "degenerate": bad})
        return rows

    def aggregate(self, records: pd.DataFrame) -> dict:
        out = mean_with_interval(records["combined"].to_numpy(np.float64), "mean_combined", self.bootstrap, self.seed)
        good = records[np.isfinite(records["combined"].to_numpy(np.float64))]
        out.update(direction=self.direction, mean_morf=float(good["mean_morf"].mean()),
                   mean_lerf=float(good["mean_lerf"].mean()), n_images=int(len(records)),
                   n_degenerate=int(records["degenerate"].sum()))
        for order in ORDERS:
            curves = np.array(good[order].tolist(), np.float64).reshape(len(good), -1)
            for j, p in enumerate(self.percentages):
                out[f"{order}_{p:g}"] = float(curves[:, j].mean()) if len(good) else float("nan")
        return out


METRICS.register("road", Road)
