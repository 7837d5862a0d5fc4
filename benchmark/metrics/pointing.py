"""The pointing game (Zhang et al., ECCV 2016, "Top-down neural attention by excitation backprop";
Grad-CAM paper Sec. 4.3; DESIGN 4.3).

For every GT class of an image (see ``_pointing_core`` for skipped classes and the GT region) the
map of that class is resized to the original resolution and its first maximum (row-major) is the
point; the point hits when a GT pixel of the class lies at distance ``< tolerance_px`` (15). All
classes of an image are explained in one pass (``class_ids [B, K]``, rows padded with a repeated
class whose extra maps are dropped). A degenerate map (non-finite or constant) is a miss, flagged.

Aggregation ``class_mean_and_pooled`` v1, in %: ``acc_class_mean`` (mean over classes of the
per-class hit rate: the published accuracy), ``acc_pooled`` (hits / records), and both again on
the difficult subset, with counts.

TorchRay's protocol (``_pointing_torchray``) as options: ``smooth`` (Gaussian sigma as a fraction of
the longer original side, 0: none) for the methods named in ``smooth_methods``; ``difficult_list``
(Zhang et al.'s flags file; without it the subset is computed as above); ``all_classes`` (the
dataset's class count: adds ``acc_class_mean_all_classes``, TorchRay's mean over every class).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes
from benchmark.metrics._pointing_core import check_region, in_difficult_subset, pad_rows, point_and_hit, scored_classes
from benchmark.metrics._pointing_torchray import (PIXEL_SPACE, DifficultList, class_mean_all_classes, gaussian_smooth,
                                                  smoothing_sigma)
from benchmark.metrics.base import METRICS, Metric
from benchmark.registry import in_range

TOLERANCE_PX = 15


class Pointing(Metric):
    name = "pointing"
    aggregation = ("class_mean_and_pooled", 1)

    def __init__(self, tolerance_px: float = TOLERANCE_PX, region: str = "auto", skip_difficult: bool = True,
                 smooth: float = 0.0, smooth_methods: tuple | list = PIXEL_SPACE, difficult_list: str | None = None,
                 all_classes: int | None = None):
        self.tolerance_px, self.region = in_range("pointing", "tolerance_px", tolerance_px, 0), check_region(region)
        self.skip_difficult = bool(skip_difficult)
        if not 0.0 <= float(smooth) < 1.0:
            raise ValueError(f"pointing metric option smooth={smooth}: expected a fraction of the longer side in [0, 1)")
        self.smooth, self.smooth_methods = float(smooth), tuple(str(m) for m in smooth_methods)
        self.difficult_list = DifficultList(difficult_list, all_classes) if difficult_list else None
        self.all_classes = int(all_classes) if all_classes else None

    def settings(self):
        computed = "computed: class box union < 1/4 of the image and another class present"
        return {"tolerance_px": self.tolerance_px, "region": self.region, "skip_difficult": self.skip_difficult,
                "point": "first maximum, row-major, at original resolution (ties: within 1e-6 of max |map|)",
                "difficult_subset": self.difficult_list.describe() if self.difficult_list else computed,
                "smooth": self.smooth, "smooth_methods": list(self.smooth_methods) if self.smooth else [],
                "smoothing": (f"Gaussian, sigma = {self.smooth} x longer original side, taps to ceil(4 sigma), "
                              "replicated borders, after the resize to original size" if self.smooth else "none"),
                "all_classes": self.all_classes}

    def smooths(self, method) -> bool:
        """Whether this method's maps are smoothed (TorchRay: the pixel-space methods)."""
        return self.smooth > 0 and getattr(method, "name", None) in self.smooth_methods

    def score_batch(self, samples, images, method, prep):
        """Maps ``[B, K, S, S]`` of every scored class of ``images [B, 3, S, S]`` in one call; one
        record per (image, class), each map resized to its image's original size first."""
        classes = [scored_classes(s, self.region, self.skip_difficult) for s in samples]
        if not any(classes):
            return []
        ids, counts = pad_rows(classes)
        maps = method.explain(images, ids).maps
        smooth = self.smooths(method)
        rows = []
        for i, sample in enumerate(samples):
            if counts[i] == 0:
                continue
            orig = prep.to_original(maps[i, :counts[i]], sample.orig_size_hw)
            if smooth:
                orig = gaussian_smooth(orig, smoothing_sigma(self.smooth, sample.orig_size_hw))
            rows += [{**self.score_one(sample, c, m), "smoothed": smooth} for c, m in zip(classes[i], orig.cpu().numpy())]
        return rows

    def score_one(self, sample, class_id: int, saliency) -> dict:
        """Record for one (image, class): point ``(x, y)``, hit, map maximum, flags."""
        return {"image_id": sample.image_id, "class_id": int(class_id),
                **point_and_hit(sample, class_id, saliency, self.region, self.tolerance_px),
                "difficult_subset": (self.difficult_list.in_subset(sample.image_id, class_id, sample.split)
                                     if self.difficult_list else in_difficult_subset(sample, class_id))}

    def aggregate(self, records: pd.DataFrame) -> dict:
        out = {"n_images": int(records["image_id"].nunique()), "n_degenerate": int(records["degenerate"].sum())}
        out.update(hit_rates(records, ""))
        difficult = records[records["difficult_subset"].astype(bool)]
        out.update(hit_rates(difficult, "difficult_"))
        if self.all_classes:
            out["acc_class_mean_all_classes"] = class_mean_all_classes(records, self.all_classes)
            out["difficult_acc_class_mean_all_classes"] = class_mean_all_classes(difficult, self.all_classes)
        return out

    def write_artifacts(self, records: pd.DataFrame, run_dir: Path) -> list[Path]:
        """``pointing_per_class.csv``: per-class counts and hit rates (all and difficult)."""
        path = Path(run_dir) / "pointing_per_class.csv"
        atomic_write_bytes(path, per_class(records).to_csv(index=False).encode())
        return [path]


def hit_rates(records: pd.DataFrame, prefix: str) -> dict:
    """Class-mean and pooled hit rates in % (``None`` when there is no record)."""
    if len(records) == 0:
        return {f"{prefix}acc_class_mean": None, f"{prefix}acc_pooled": None, f"{prefix}n_records": 0,
                f"{prefix}n_classes": 0}
    hit = records["hit"].astype(bool)
    return {f"{prefix}acc_class_mean": float(100.0 * hit.groupby(records["class_id"]).mean().mean()),
            f"{prefix}acc_pooled": float(100.0 * hit.mean()), f"{prefix}n_records": int(len(records)),
            f"{prefix}n_classes": int(records["class_id"].nunique())}


def per_class(records: pd.DataFrame) -> pd.DataFrame:
    """One row per class: records, hits and hit rate (%), overall and on the difficult subset."""
    r = records.assign(hit=records["hit"].astype(bool), difficult=records["difficult_subset"].astype(bool))
    rows = []
    for c, g in r.groupby("class_id", sort=True):
        d = g[g["difficult"]]
        rows.append({"class_id": int(c), "n": len(g), "hits": int(g["hit"].sum()), "acc": 100.0 * g["hit"].mean(),
                     "n_difficult": len(d), "hits_difficult": int(d["hit"].sum()),
                     "acc_difficult": 100.0 * d["hit"].mean() if len(d) else float("nan")})
    columns = ["class_id", "n", "hits", "acc", "n_difficult", "hits_difficult", "acc_difficult"]
    return pd.DataFrame(rows, columns=columns)


METRICS.register("pointing", Pointing, version=2)  # 2: near-tie rule for the point, degenerate maps point nowhere
