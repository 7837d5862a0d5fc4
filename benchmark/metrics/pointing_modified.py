"""Grad-CAM's modified pointing game (Selvaraju et al., Sec. 4.3 and appendix; DESIGN 4.4).

For each image the model's top-5 classes (by logit) are explained; for each, the raw map at the
original resolution, its maximum ``s`` and its first-argmax point. A method accepts a class iff
``s >= θ``; the outcome is a hit iff (class present, accepted and the point hits the GT region as
in the pointing game) or (class absent and rejected). θ is calibrated per run on a split disjoint
from the evaluated images (see ``_pointing_theta``), and the pooled accuracy is reported.

Decisions: the top-5 come from a plain forward pass before the maps are computed (the classes
must be known before they can be explained); ``present`` means listed in the image's labels (a
VOC class with only difficult boxes counts as present, its boxes as its region). A non-finite map
is a miss whatever θ; a constant map for a present class never hits (its point is meaningless),
while a constant map for an absent class (e.g. Grad-CAM's all-zero map) is rejected normally.

Aggregation ``pooled_calibrated_theta`` v1: ``theta``, ``accuracy`` (% on the evaluation split),
``accuracy_calibration`` (%), ``accuracy_reject_all`` (% of evaluation records whose class is
absent: what rejecting every class, e.g. with all-zero maps, scores) and counts, ``n_degenerate``
among them (a degenerate map points nowhere, so it never hits when accepted); ``write_artifacts``
adds the accuracy-vs-θ curve on both splits as CSV and PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.metrics._pointing_core import check_region, point_and_hit
from benchmark.metrics._pointing_theta import calibration_mask, choose_theta, curve, outcome
from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.pointing import TOLERANCE_PX
from benchmark.registry import in_range
from benchmark.types import top_classes

TOPK = 5


class PointingModified(Metric):
    name = "pointing_modified"
    aggregation = ("pooled_calibrated_theta", 1)

    def __init__(self, topk: int = TOPK, tolerance_px: float = TOLERANCE_PX, region: str = "auto",
                 calibration_fraction: float = 0.25, calibration_records: str | None = None):
        self.topk = in_range("pointing_modified", "topk", topk, 1, integer=True)
        self.tolerance_px = in_range("pointing_modified", "tolerance_px", tolerance_px, 0)
        self.region = check_region(region)
        self.calibration_fraction = float(calibration_fraction)
        self.calibration_records = calibration_records
        calibration_mask([], self.calibration_fraction)  # validates the fraction now, not after the run

    def settings(self):
        how = (f"records of {self.calibration_records}" if self.calibration_records
               else f"sha256(image_id) < {self.calibration_fraction}")
        return {"topk": self.topk, "tolerance_px": self.tolerance_px, "region": self.region,
                "calibration": how, "accept": "s >= theta, s = max of the raw map at original resolution"}

    def score_batch(self, samples, images, method, prep):
        """Top-k classes of ``images [B, 3, S, S]`` from a forward pass, their maps ``[B, k, S, S]``
        in one call, each resized to its image's original size: ``B * k`` records."""
        with torch.no_grad():
            logits = method.model(images)
        k = min(self.topk, logits.shape[1])
        indices = top_classes(logits, k, [s.image_id for s in samples])
        values = logits.gather(1, indices)
        maps = method.explain(images, indices).maps
        rows = []
        for i, sample in enumerate(samples):
            orig = prep.to_original(maps[i], sample.orig_size_hw).cpu().numpy()
            for rank in range(k):
                c = int(indices[i, rank])
                rows.append(self.score_one(sample, c, orig[rank], rank + 1, float(values[i, rank])))
        return rows

    def score_one(self, sample, class_id: int, saliency: np.ndarray, rank: int, logit: float) -> dict:
        """Record for one (image, predicted class)."""
        present = int(class_id) in set(int(c) for c in sample.labels)
        p = point_and_hit(sample, class_id, saliency, self.region, self.tolerance_px)
        s = p["map_max"] if np.all(np.isfinite(saliency)) else float("nan")
        return {"image_id": sample.image_id, "class_id": int(class_id), "rank": rank, "logit": logit,
                "present": present, "s": s, "point_x": p["point_x"], "point_y": p["point_y"],
                "hit_if_accepted": bool(present and p["hit"]), "degenerate": p["degenerate"], "region": p["region"]}

    def split(self, records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(calibration, evaluation) records; evaluation images never enter the calibration set."""
        if self.calibration_records:
            return external_calibration(self.calibration_records, records), records
        mask = calibration_mask(records["image_id"], self.calibration_fraction)
        return records[mask], records[~mask]

    def aggregate(self, records: pd.DataFrame) -> dict:
        calibration, evaluation = self.split(records)
        theta, acc_cal = choose_theta(calibration)
        defined = len(evaluation) > 0 and not np.isnan(theta)  # no finite calibration score: no θ
        return {"theta": theta if defined else None,
                "accuracy": float(100.0 * outcome(evaluation, theta).mean()) if defined else None,
                "accuracy_calibration": 100.0 * acc_cal if defined else None,
                "accuracy_reject_all": reject_all(evaluation),
                "accepted_fraction": float((evaluation["s"] >= theta).mean()) if defined else None,
                "n_records": int(len(evaluation)), "n_images": int(evaluation["image_id"].nunique()),
                "n_calibration_records": int(len(calibration)),
                "n_calibration_images": int(calibration["image_id"].nunique()),
                "n_degenerate": int(evaluation["degenerate"].sum())}

    def write_artifacts(self, records: pd.DataFrame, run_dir: Path) -> list[Path]:
        """``pointing_modified_curve.csv`` and ``.png``: accuracy vs θ on both splits, θ marked."""
        from benchmark.metrics._pointing_plot import write_curve

        calibration, evaluation = self.split(records)
        theta, _ = choose_theta(calibration)
        return write_curve(curve(calibration, evaluation), theta, Path(run_dir), "pointing_modified_curve")


def reject_all(records: pd.DataFrame) -> float | None:
    """Accuracy (%) of rejecting every class: the share of records whose class is absent.

    A method that shows nothing (zero or constant maps, all rejected) scores this much; the
    accuracy means something only above it."""
    return float(100.0 * (~records["present"].astype(bool)).mean()) if len(records) else None


def external_calibration(path: str | Path, evaluation: pd.DataFrame) -> pd.DataFrame:
    """Records of another run (its ``records.parquet`` or its folder) as the calibration set.

    Its images must be disjoint from the evaluated ones and, where both carry them, its model and
    method must be the evaluated ones.
    """
    path = Path(path)
    path = path / "records.parquet" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"pointing_modified option calibration_records: {path} not found "
                                "(expected a run folder or its records.parquet)")
    calibration = pd.read_parquet(path)
    missing = {"image_id", "s", "present", "hit_if_accepted"} - set(calibration)
    if missing:
        raise ValueError(f"{path}: not pointing_modified records (missing columns {sorted(missing)})")
    shared = set(calibration["image_id"]) & set(evaluation["image_id"])
    if shared:
        raise ValueError(f"{path}: {len(shared)} calibration images are also evaluated (e.g. {sorted(shared)[0]!r}); "
                         "the calibration split must be disjoint from the evaluation split")
    for column in ("model", "method"):
        if column in calibration and column in evaluation:
            a, b = set(calibration[column]), set(evaluation[column])
            if a != b:
                raise ValueError(f"{path}: calibration records have {column} {sorted(a)}, evaluated {sorted(b)}")
    return calibration


METRICS.register("pointing_modified", PointingModified, version=2)  # 2: near-tie rule, degenerate maps, reject-all baseline
