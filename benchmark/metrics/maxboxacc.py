"""MaxBoxAcc and MaxBoxAccV2 (Choe et al., "Evaluating Weakly Supervised Object Localization
Methods Right", CVPR 2020; behaviour of clovaai/wsolevaluation ``evaluation.py``).

GT-known box accuracy over a sweep of map thresholds, the best threshold reported. Per image: the
map is min-max normalized (a map with a NaN or a constant map becomes all zeros), scaled to 8 bits
by truncation (``(m * 255).astype(uint8)``), and for each threshold ``tau`` in ``0, step, 2 step, ..
< 1`` (``step`` 0.01, the interval of the repository's tests; its ``CAMComputer`` default is 0.001)
the pixels ``> int(tau * max)`` are taken (OpenCV ``THRESH_BINARY``), their contours found
(``RETR_TREE``), and each contour's bounding box ``(x, y, min(x + w, W - 1), min(y + h, H - 1))``
compared with the GT boxes (inclusive IoU). MaxBoxAcc: the largest contour by ``contourArea``, IoU
>= 0.5. MaxBoxAccV2: every contour (the best one counts), IoU >= 0.3 / 0.5 / 0.7, averaged over the
three. No contour: the box ``(0, 0, 0, 0)``. Here the map and the GT boxes stay at the original
resolution (wsolevaluation resizes both to 224 x 224).

Per image the hits are stored as strings of '0'/'1' over the thresholds (one column per variant)
so the records stay flat; ``aggregate`` turns them into accuracies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics.boxes import max_iou, require_cv2

STEP = 0.01
VARIANTS = {"maxboxacc_iou50": (False, 0.5), "maxboxacc_v2_iou30": (True, 0.3), "maxboxacc_v2_iou50": (True, 0.5),
            "maxboxacc_v2_iou70": (True, 0.7)}


def thresholds(step: float = STEP) -> np.ndarray:
    """The map thresholds of the sweep: ``np.arange(0, 1, step)``."""
    return np.arange(0, 1, step)


def normalize_scoremap(saliency: np.ndarray) -> np.ndarray:
    """Min-max normalization to [0, 1]; a map with a NaN or a constant map becomes all zeros."""
    s = np.asarray(saliency, dtype=np.float64)
    if np.isnan(s).any() or not np.all(np.isfinite(s)) or s.max() == s.min():
        return np.zeros_like(s)
    return (s - s.min()) / (s.max() - s.min())


def boxes_at(scoremap: np.ndarray, tau: float, multi_contour: bool) -> list[tuple[int, int, int, int]]:
    """Boxes (xyxy) of the contours of the 8-bit map above ``int(tau * max)`` (the largest only, or all)."""
    image = (scoremap * 255).astype(np.uint8)
    largest, every = _contour_boxes(image, int(tau * image.max()))
    return every if multi_contour else largest


def _contour_boxes(image: np.ndarray, cut: int) -> tuple[list, list]:
    """``([box of the largest contour], [box of every contour])`` of the 8-bit ``image`` above ``cut``
    (both ``[(0, 0, 0, 0)]`` where there is no contour): one ``findContours`` for both variants."""
    cv2 = require_cv2()
    height, width = image.shape
    _, binary = cv2.threshold(image, cut, 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if not contours:
        return [(0, 0, 0, 0)], [(0, 0, 0, 0)]

    def box(contour):
        x, y, w, h = cv2.boundingRect(contour)
        return x, y, min(x + w, width - 1), min(y + h, height - 1)

    return [box(max(contours, key=cv2.contourArea))], [box(c) for c in contours]


def hit_strings(saliency: np.ndarray, gt_boxes: np.ndarray, step: float = STEP) -> dict[str, str]:
    """Per variant, '1' where the box(es) at that threshold reach the IoU, else '0'."""
    image = (normalize_scoremap(saliency) * 255).astype(np.uint8)
    top = image.max()
    best = {multi: [] for multi in (False, True)}  # best IoU over the boxes, per threshold
    for tau in thresholds(step):
        largest, every = _contour_boxes(image, int(tau * top))
        best[False].append(max(max_iou(b, gt_boxes) for b in largest))
        best[True].append(max(max_iou(b, gt_boxes) for b in every))
    return {name: "".join("1" if iou >= cut else "0" for iou in best[multi]) for name, (multi, cut) in VARIANTS.items()}


def aggregate_hits(records: pd.DataFrame, step: float = STEP) -> dict:
    """Accuracy (%) at the best threshold and that threshold, per variant; MaxBoxAccV2 = mean over 30/50/70."""
    out = {}
    taus = thresholds(step)
    for name in VARIANTS:
        if name not in records or not len(records):
            return {}
        hits = np.array([[c == "1" for c in s] for s in records[name]], dtype=float)
        accuracy = 100.0 * hits.mean(axis=0)
        best = int(np.argmax(accuracy))  # the first threshold among equals
        out[name] = float(accuracy[best])
        out[f"{name}_threshold"] = float(round(taus[best], 6))
    out["maxboxacc"] = out["maxboxacc_iou50"]
    out["maxboxacc_v2"] = float(np.mean([out[f"maxboxacc_v2_iou{k}"] for k in (30, 50, 70)]))
    return out
