"""Box extraction from a saliency map and IoU: small pure functions (Grad-CAM paper, Sec. 4.1).

Conventions: maps are ``[H, W]`` at the original image resolution; boxes are ``(x0, y0, x1, y1)``
0-based inclusive pixel indices, so a box's width is ``x1 - x0 + 1`` (the ILSVRC devkit rule).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def box_from_map(saliency: np.ndarray, threshold: float = 0.15) -> tuple[int, int, int, int] | None:
    """Box of the largest 8-connected segment of ``saliency >= threshold * max(saliency)``.

    Returns ``None`` (no box: a localization failure) when the map has a non-finite value or
    ``max <= 0``. Ties between equally large segments go to the lowest label, i.e. the segment
    whose first pixel comes first in raster (row-major) order.
    """
    saliency = np.asarray(saliency)
    if saliency.ndim != 2:
        raise ValueError(f"box_from_map: expected a [H, W] map, got shape {saliency.shape}")
    if saliency.size == 0 or not np.all(np.isfinite(saliency)):
        return None
    peak = saliency.max()
    if peak <= 0:
        return None
    labels, count = ndimage.label(saliency >= threshold * peak, structure=EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    best = int(np.argmax(sizes)) + 1  # argmax returns the first (lowest) label among ties
    rows, cols = ndimage.find_objects(labels, max_label=best)[best - 1]
    return cols.start, rows.start, cols.stop - 1, rows.stop - 1


def iou_xyxy(a, b) -> float:
    """Intersection over union of two inclusive boxes ``(x0, y0, x1, y1)``."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area_a + area_b - inter))


def max_iou(box, gt_boxes: np.ndarray) -> float:
    """Largest IoU of ``box`` with any GT box (0 when there is no box or no GT box)."""
    if box is None or len(gt_boxes) == 0:
        return 0.0
    return max(iou_xyxy(box, gt) for gt in np.asarray(gt_boxes))
