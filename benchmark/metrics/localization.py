"""ILSVRC weakly-supervised localization (Grad-CAM paper Table 1; DESIGN 4.2).

Per image, the map of the GT class (computed once, in the same pass that gives the logits) is
resized to the original resolution, thresholded at 15 % of its maximum, and the box of the largest
8-connected segment is compared with the GT boxes of that class (max IoU, inclusive convention).
ILSVRC devkit rule: guess j of the top-k is correct iff it is the GT class and the box of the map
for it has IoU >= 0.5; since only the GT class can be correct, only its map is ever computed.
GT-known localization uses the same box regardless of the prediction.

Protocol settings of the threshold rule: ``normalization`` (``max``, the default: 15 % of the
maximum; ``minmax``: min + 15 % of the range, the reading of the authors' Torch display code and
the only one under which a map's negative values matter, e.g. Table 3's no-ReLU row) and
``align_corners`` of the bilinear resize to the original size (default ``False``). Both are
written into each summary's ``protocol``. ``maxboxacc: true`` adds MaxBoxAcc and MaxBoxAccV2 (Choe
et al., CVPR 2020; ``maxboxacc.py``) computed from the same original-size maps.

``box: grabcut`` replaces the threshold rule by Simonyan et al.'s GrabCut post-processing (the
protocol of the Grad-CAM paper's Backprop row; ``boxes.box_from_grabcut``: seeds above the
``grabcut_fg_percentile`` (95) and below the ``grabcut_bg_percentile`` (30) of the map,
``grabcut_iterations`` (5) GrabCut iterations on the original image, largest 8-connected foreground
component). It needs OpenCV (``pip install 'gradcam-benchmark[grabcut]'``); without it the metric
refuses to start, saying so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics.base import METRICS, Metric
from benchmark.metrics.boxes import (GRABCUT_BG_PERCENTILE, GRABCUT_FG_PERCENTILE, GRABCUT_ITERATIONS,
                                     NORMALIZATIONS, box_from_grabcut, box_from_map, max_iou, require_cv2)
from benchmark.metrics.maxboxacc import STEP, aggregate_hits, hit_strings
from benchmark.registry import in_range
from benchmark.types import is_degenerate, top_classes

THRESHOLD = 0.15
IOU_THRESHOLD = 0.5
TOPK = 5
BOX_RULES = ("threshold", "grabcut")
MAXBOXACC_SETTINGS = {"maxboxacc": True, "maxboxacc_step": STEP, "maxboxacc_iou": [0.3, 0.5, 0.7],
                      "maxboxacc_map": "min-max normalized, 8-bit, original resolution"}
RULE_BOX = object()  # score_one's default: the box of the configured rule


class Localization(Metric):
    name = "localization"
    aggregation = ("pooled_over_images", 1)

    def __init__(self, threshold: float = THRESHOLD, iou_threshold: float = IOU_THRESHOLD, topk: int = TOPK,
                 box: str = "threshold", grabcut_fg_percentile: float = GRABCUT_FG_PERCENTILE,
                 grabcut_bg_percentile: float = GRABCUT_BG_PERCENTILE, grabcut_iterations: int = GRABCUT_ITERATIONS,
                 normalization: str = "max", align_corners: bool = False, maxboxacc: bool = False):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"localization: normalization={normalization!r}; expected one of {NORMALIZATIONS}")
        if not isinstance(align_corners, bool):
            raise ValueError(f"localization: align_corners={align_corners!r}; expected true or false")
        if not isinstance(maxboxacc, bool):
            raise ValueError(f"localization: maxboxacc={maxboxacc!r}; expected true or false")
        self.normalization, self.align_corners, self.maxboxacc = normalization, align_corners, maxboxacc
        self.threshold = in_range("localization", "threshold", threshold, 0, 1, low_open=True, high_open=True)
        self.iou_threshold = in_range("localization", "iou_threshold", iou_threshold, 0, 1, low_open=True)
        self.topk = in_range("localization", "topk", topk, 1, integer=True)
        if box not in BOX_RULES:
            raise ValueError(f"localization: box={box!r}; expected one of {BOX_RULES}")
        fg, bg = float(grabcut_fg_percentile), float(grabcut_bg_percentile)
        if not 0.0 <= bg < fg <= 100.0:
            raise ValueError(f"localization: grabcut_bg_percentile={bg}, grabcut_fg_percentile={fg}; "
                             "expected 0 <= bg < fg <= 100")
        if int(grabcut_iterations) != grabcut_iterations or grabcut_iterations < 1:
            raise ValueError(f"localization: grabcut_iterations={grabcut_iterations!r}; expected a positive integer")
        self.box, self.grabcut = box, {"fg_percentile": fg, "bg_percentile": bg, "iterations": int(grabcut_iterations)}
        if box == "grabcut":
            require_cv2()  # fail before the run starts, with the install command

    def settings(self):
        return {**self.rule_settings(), **(MAXBOXACC_SETTINGS if self.maxboxacc else {})}

    def rule_settings(self):
        common = {"iou_threshold": self.iou_threshold, "topk": self.topk, "box": self.box,
                  "iou": "inclusive, max over GT boxes of the class", "align_corners": self.align_corners}
        if self.box == "threshold":
            return {"threshold": self.threshold, "normalization": self.normalization, **common, "connectivity": 8,
                    "segment": "largest"}
        return {**common, **{f"grabcut_{k}": v for k, v in self.grabcut.items()},
                "grabcut_seeds": "GC_FGD > fg percentile, GC_BGD < bg percentile, others GC_PR_BGD",
                "connectivity": 8, "segment": "largest GrabCut foreground component"}

    def box_of(self, saliency: np.ndarray, image: np.ndarray):
        """The box of one map at original resolution under the configured rule."""
        if self.box == "grabcut":
            return box_from_grabcut(saliency, image, self.grabcut["fg_percentile"], self.grabcut["bg_percentile"],
                                    self.grabcut["iterations"])
        return box_from_map(saliency, self.threshold, self.normalization)

    def score_batch(self, samples, images, method, prep):
        return self.prepare_batch(samples, images, method, prep)()

    def prepare_batch(self, samples, images, method, prep):
        """Device: the GT-class maps and the logits. Host (returned): each map resized to its image's
        original size, its box, IoU and the devkit flags."""
        import torch

        gt = torch.tensor([s.labels[0] for s in samples], dtype=torch.long)
        ex = method.explain(images, gt)
        top = top_classes(ex.logits, min(self.topk, ex.logits.shape[1]), [s.image_id for s in samples]).cpu().numpy()
        maps = ex.maps.detach().cpu()

        def finish():
            return [self.score_one(sample, int(gt[i]), self.to_original(prep, maps[i], sample), top[i])
                    for i, sample in enumerate(samples)]

        return finish

    def to_original(self, prep, maps, sample) -> np.ndarray:
        """The first of ``maps [K, S, S]`` resized to the sample's original ``[H, W]``."""
        return prep.to_original(maps, sample.orig_size_hw, self.align_corners)[0].numpy()

    def score_one(self, sample, class_id: int, saliency: np.ndarray, top: np.ndarray, box=RULE_BOX) -> dict:
        """Record for one image: classification, box (the rule's unless given), IoU and the devkit's flags."""
        box = self.box_of(saliency, sample.image) if box is RULE_BOX else box
        iou = max_iou(box, sample.boxes_of(class_id))
        gt_known = iou >= self.iou_threshold
        cls1, cls5 = bool(top[0] == class_id), bool(class_id in top)
        finite = np.isfinite(saliency)
        return {
            "image_id": sample.image_id, "class_id": class_id,
            **{f"pred_{j + 1}": int(c) for j, c in enumerate(top)},
            "map_max": float(saliency[finite].max()) if finite.any() else float("nan"),
            "has_box": box is not None,
            "box_x0": -1 if box is None else int(box[0]), "box_y0": -1 if box is None else int(box[1]),
            "box_x1": -1 if box is None else int(box[2]), "box_y1": -1 if box is None else int(box[3]),
            "iou": float(iou), "cls_correct_top1": cls1, "cls_correct_top5": cls5,
            "gt_known_correct": bool(gt_known), "loc_correct_top1": bool(cls1 and gt_known),
            "loc_correct_top5": bool(cls5 and gt_known), "degenerate": is_degenerate(saliency),
            "blacklisted": bool(sample.blacklisted),
            **(hit_strings(saliency, sample.boxes_of(class_id)) if self.maxboxacc else {}),
        }

    def aggregate(self, records: pd.DataFrame) -> dict:
        """Errors in % pooled over images; also without blacklisted images when any are flagged."""
        out = {**_rates(records), **aggregate_hits(records)}
        if "blacklisted" in records and records["blacklisted"].any():
            out.update({f"{k}_no_blacklist": v for k, v in _rates(records[~records["blacklisted"]]).items()})
        return out


def _rates(r: pd.DataFrame) -> dict:
    n = len(r)
    if n == 0:
        return {"n_images": 0}

    def err(col):
        return float(100.0 * (1.0 - r[col].mean()))

    return {
        "n_images": int(n),
        "cls_err_top1": err("cls_correct_top1"), "cls_err_top5": err("cls_correct_top5"),
        "loc_err_top1": err("loc_correct_top1"), "loc_err_top5": err("loc_correct_top5"),
        "gt_known_loc_acc": float(100.0 * r["gt_known_correct"].mean()),
        "mean_iou": float(r["iou"].mean()),
        "n_degenerate": int(r["degenerate"].astype(bool).sum()), "n_no_box": int((~r["has_box"].astype(bool)).sum()),
    }


METRICS.register("localization", Localization, version=2)  # 2: thread-invariant float64 resize to the original size
