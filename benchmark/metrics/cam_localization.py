"""Localization over CAM's 10 crops (Zhou et al., CVPR 2016; Grad-CAM IJCV appendix Table 3).

Per image: the 10 crops of ``cam_protocol`` go through the method in one pass; classification uses
the softmax scores averaged over the crops (the CAM deploy nets end in a softmax ``prob`` layer);
the GT class's map is either merged over the crops and resized bicubically to the original size
(``maps: crops``) or taken from the single full image under the run's preprocessing (``maps: full``,
resized as the ``localization`` metric does). Box rules (``box``):

* ``dt_box`` (default): the map divided by its maximum as an 8-bit heatmap (JPEG quality
  ``jpeg_quality``, 0 = no JPEG step), CAM's bbox generator with ``thresholds`` (20 / 100 / 110),
  the box choice ``box_choice`` (``first``, ``second``, ``combined``; ``cam_boxes.guess_order``)
  and ``border`` (``released_binary``, the default: OpenCV 2.4's zeroed 1-pixel frame, as the
  released binary; ``source``: the released source under today's OpenCV; see ``cam_boxes``);
* ``text``: the CAM paper's text, ``text_threshold`` (20 %) of the maximum, largest component;
* ``threshold``: the Grad-CAM rule of ``localization`` (``threshold``, ``normalization``).

Records and aggregation are those of ``localization``; the devkit rule applies to the guesses
the box choice submits. Only ``maps: crops`` with ``merge: abs_sum`` is CAM's pipeline as released.
When every crop's map is degenerate (constant, non-finite; checked per crop before the merge) the
image gets no box and is flagged ``degenerate``, as a degenerate single map is.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data.transforms import Preprocess
from benchmark.metrics import cam_boxes
from benchmark.metrics.base import METRICS
from benchmark.metrics.boxes import box_from_map, max_iou, require_cv2
from benchmark.metrics.cam_protocol import (JPEG_QUALITY, MERGES, frame_size, heatmap_uint8, merge_crops,
                                            resize_bicubic, ten_crops)
from benchmark.metrics.localization import Localization  # records, aggregation, MaxBoxAcc
from benchmark.types import check_logits, is_degenerate, top_classes

RULES = ("dt_box", "text", "threshold")
MAP_SOURCES = ("crops", "full")


class CamLocalization(Localization):
    name = "localization_cam"

    def __init__(self, box: str = "dt_box", box_choice: str = "first", thresholds=cam_boxes.RELEASED_THRESHOLDS,
                 jpeg_quality: int = JPEG_QUALITY, text_threshold: float = 0.20, maps: str = "crops",
                 merge: str = "abs_sum", threshold: float = 0.15, normalization: str = "max",
                 iou_threshold: float = 0.5, topk: int = 5, maxboxacc: bool = False, border: str = "released_binary"):
        super().__init__(threshold=threshold, iou_threshold=iou_threshold, topk=topk, normalization=normalization,
                         maxboxacc=maxboxacc)
        for field, value, choices in (("box", box, RULES), ("box_choice", box_choice, cam_boxes.CHOICES),
                                      ("maps", maps, MAP_SOURCES), ("merge", merge, MERGES),
                                      ("border", border, cam_boxes.BORDERS)):
            if value not in choices:
                raise ValueError(f"localization_cam: {field}={value!r}; expected one of {choices}")
        if box != "dt_box" and box_choice != "first":
            raise ValueError(f"localization_cam: box_choice={box_choice!r} needs box=dt_box (the other rules give one box)")
        if len(list(thresholds)) != 3 or int(jpeg_quality) != jpeg_quality or not 0 <= jpeg_quality <= 100:
            raise ValueError(f"localization_cam: thresholds={thresholds!r}, jpeg_quality={jpeg_quality!r}; "
                             "expected three thresholds on 0..255 and a JPEG quality in 0..100 (0: no JPEG)")
        self.rule, self.box_choice, self.maps, self.merge, self.border = box, box_choice, maps, merge, border
        self.thresholds, self.jpeg_quality = tuple(int(t) for t in thresholds), int(jpeg_quality)
        self.text_threshold = float(text_threshold)
        if box == "dt_box" or self.jpeg_quality:
            require_cv2()

    def rule_settings(self):
        out = {"crops": 10, "scores": "softmax averaged over the 10 crops", "maps": self.maps, "box": self.rule,
               "iou_threshold": self.iou_threshold, "topk": self.topk, "iou": "inclusive, max over GT boxes of the class"}
        if self.maps == "crops":
            out.update(merge=self.merge, frame="round(S * 256 / 224)", resize="bicubic (a = -0.5, PIL)")
        if self.rule == "dt_box":
            out.update(thresholds=list(self.thresholds), jpeg_quality=self.jpeg_quality, box_choice=self.box_choice,
                       heatmap="map / max, 8-bit", distance_cut=cam_boxes.DISTANCE_CUT, border_px=cam_boxes.BORDER_PX,
                       border=self.border)
        elif self.rule == "text":
            out.update(threshold=self.text_threshold, normalization="max", connectivity=8, segment="largest")
        else:
            out.update(threshold=self.threshold, normalization=self.normalization, connectivity=8, segment="largest")
        return out

    def prepare_batch(self, samples, images, method, prep):
        """Device: the 10-crop pass (and the full-image pass for ``maps: full``). Host: boxes and flags."""
        if getattr(method, "uses_samples", False):
            raise ValueError(f"localization_cam: method {method.name!r} reads stored maps per image and has none for "
                             "the 10 crops; use metric localization")
        size = images.shape[-1]
        framer = Preprocess(frame_size(size), prep.mean, prep.std, "paper")
        frames = torch.stack([framer(s.image) for s in samples]).to(images.device)
        crops = ten_crops(frames, size).flatten(0, 1)
        gt = torch.tensor([s.labels[0] for s in samples], dtype=torch.long)
        ex = method.explain(crops, gt.repeat_interleave(10))
        check_logits(ex.logits.view(len(samples), -1), [s.image_id for s in samples])
        probs = ex.logits.float().softmax(dim=1).view(len(samples), 10, -1).mean(dim=1)
        top = top_classes(probs, min(self.topk, probs.shape[1]), [s.image_id for s in samples]).cpu().numpy()
        crop_maps = ex.maps[:, 0].detach().cpu().view(len(samples), 10, size, size)
        full = method.explain(images, gt).maps.detach().cpu() if self.maps == "full" else None

        def finish():
            rows = []
            for i, sample in enumerate(samples):
                if full is None:
                    merged = merge_crops(crop_maps[i], frames.shape[-1], self.merge).numpy()
                    saliency = resize_bicubic(merged, sample.orig_size_hw)
                    empty = all(is_degenerate(c) for c in crop_maps[i].numpy())  # before the merge
                else:
                    saliency = self.to_original(prep, full[i], sample).astype(np.float64)
                    empty = False
                rows.append(self.score_crops(sample, int(gt[i]), saliency, top[i], empty))
            return rows

        return finish

    def boxes_of(self, saliency: np.ndarray) -> list:
        """The boxes (xyxy) the rule gives for one original-size map, in the generator's order."""
        if is_degenerate(saliency):
            return []
        if self.rule == "dt_box":
            heat = heatmap_uint8(saliency, self.jpeg_quality)
            boxes = [] if heat is None else cam_boxes.dt_boxes(heat, self.thresholds, self.border)
            return [cam_boxes.to_xyxy(b) for b in boxes]
        if self.rule == "text":
            box = box_from_map(saliency, self.text_threshold, "max")
        else:
            box = box_from_map(saliency, self.threshold, self.normalization)
        return [] if box is None else [box]

    def score_crops(self, sample, class_id: int, saliency: np.ndarray, top: np.ndarray,
                    crops_degenerate: bool = False) -> dict:
        """Record for one image: the devkit flags over the guesses of the box choice.

        ``crops_degenerate``: every crop's map was degenerate before the merge. Merging constant
        crop maps gives the crops' coverage pattern (larger where more crops overlap), which
        would otherwise yield a near-whole-image box; such an image gets no box and is flagged.
        """
        boxes = [] if crops_degenerate else self.boxes_of(saliency)
        gt_boxes = sample.boxes_of(class_id)
        hits = [max_iou(b, gt_boxes) >= self.iou_threshold for b in boxes]
        rank = int(np.flatnonzero(top == class_id)[0]) + 1 if class_id in top else None
        guesses = cam_boxes.guess_order(self.box_choice, len(top))
        correct = [r == rank and b < len(hits) and hits[b] for r, b in guesses]
        own = 1 if self.box_choice == "second" else 0  # the box the GT class gets as its first guess
        box = boxes[own] if own < len(boxes) else None
        row = super().score_one(sample, class_id, saliency, top, box=box)
        row.update(loc_correct_top1=bool(correct[0]), loc_correct_top5=bool(any(correct)), n_boxes=len(boxes),
                   degenerate=bool(row["degenerate"] or crops_degenerate))
        return row


METRICS.register("localization_cam", CamLocalization, version=2)  # 2: per-crop degenerate check, released_binary border
