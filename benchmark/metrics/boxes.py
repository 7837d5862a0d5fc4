"""Box extraction from a saliency map and IoU: small pure functions (Grad-CAM paper, Sec. 4.1).

Conventions: maps are ``[H, W]`` at the original image resolution; boxes are ``(x0, y0, x1, y1)``
0-based inclusive pixel indices, so a box's width is ``x1 - x0 + 1`` (the ILSVRC devkit rule).

Two box rules: ``box_from_map`` (the Grad-CAM paper's: threshold at 15 % of the maximum, or of the
range above the minimum under ``minmax`` normalization) and
``box_from_grabcut`` (Simonyan et al.'s GrabCut post-processing for pixel-space maps, which the
Grad-CAM paper's Backprop row used; needs OpenCV, the ``grabcut`` extra).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


NORMALIZATIONS = ("max", "minmax")


def box_from_map(saliency: np.ndarray, threshold: float = 0.15,
                 normalization: str = "max") -> tuple[int, int, int, int] | None:
    """Box of the largest 8-connected segment of the map thresholded at a fraction of its scale.

    ``max`` (default): keep ``saliency >= threshold * max``, so a negative pixel never passes and
    ``m`` and ``ReLU(m)`` give the same box. ``minmax``: keep ``saliency >= min + threshold * (max -
    min)``, the rule after the min-max rescaling of the authors' Torch display code
    (``image.toDisplayTensor``), pytorch-grad-cam's ``scale_cam_image`` and wsolevaluation's
    ``normalize_scoremap``; there negative values move the cut.

    Returns ``None`` (no box: a localization failure) when the map has a non-finite value, is
    constant (no location to read: a whole-image box would otherwise score as a find) or has
    ``max <= 0``, under both normalizations. Ties between equally large segments go to the lowest
    label, i.e. the segment whose first pixel comes first in raster (row-major) order.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"box_from_map: normalization={normalization!r}; expected one of {NORMALIZATIONS}")
    saliency = np.asarray(saliency)
    if saliency.ndim != 2:
        raise ValueError(f"box_from_map: expected a [H, W] map, got shape {saliency.shape}")
    if saliency.size == 0 or not np.all(np.isfinite(saliency)):
        return None
    peak, floor = saliency.max(), saliency.min()
    if peak <= 0 or peak == floor:
        return None
    cut = threshold * peak if normalization == "max" else floor + threshold * (peak - floor)
    return largest_component_box(saliency >= cut)


def largest_component_box(binary: np.ndarray) -> tuple[int, int, int, int] | None:
    """Box of the largest 8-connected component of a bool ``[H, W]`` mask (None if it is empty).

    Ties go to the lowest label: the component whose first pixel comes first in raster order.
    """
    labels, count = ndimage.label(binary, structure=EIGHT_CONNECTED)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    best = int(np.argmax(sizes)) + 1  # argmax returns the first (lowest) label among ties
    rows, cols = ndimage.find_objects(labels, max_label=best)[best - 1]
    return cols.start, rows.start, cols.stop - 1, rows.stop - 1


GRABCUT_FG_PERCENTILE = 95.0
GRABCUT_BG_PERCENTILE = 30.0
GRABCUT_ITERATIONS = 5
GRABCUT_GMM_COMPONENTS = 5  # OpenCV's colour models: 5-component GMMs (fixed in cv2.grabCut)
GRABCUT_INSTALL = ("the GrabCut box rule needs OpenCV: pip install 'gradcam-benchmark[grabcut]' "
                   "(or pip install opencv-python-headless)")


def require_cv2():
    """Import OpenCV or fail with the install command."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f"{GRABCUT_INSTALL} ({err})") from None
    return cv2


def grabcut_seeds(saliency: np.ndarray, fg_percentile: float = GRABCUT_FG_PERCENTILE,
                  bg_percentile: float = GRABCUT_BG_PERCENTILE) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background seed masks (bool ``[H, W]``, disjoint) of a finite, non-constant map.

    With ``q_p = np.percentile(saliency, p)`` (linear interpolation): foreground = the pixels
    ``> q_fg`` (Simonyan et al.: above the 95 % quantile), background = the pixels ``< q_bg``
    (below the 30 % quantile). Ties: when no pixel is strictly above ``q_fg`` (it is the maximum)
    the foreground is the pixels ``== q_fg``; when none is strictly below ``q_bg`` (it is the
    minimum, e.g. a sparse map whose zeros fill more than 30 %) the background is the pixels
    ``== q_bg``. For a non-constant map the two sets are then disjoint and non-empty.
    """
    s = np.asarray(saliency, dtype=np.float64)
    if not 0.0 <= bg_percentile < fg_percentile <= 100.0:
        raise ValueError(f"grabcut: percentiles bg={bg_percentile}, fg={fg_percentile}; expected 0 <= bg < fg <= 100")
    if s.ndim != 2 or s.size == 0 or not np.all(np.isfinite(s)) or s.max() == s.min():
        raise ValueError(f"grabcut_seeds: expected a finite, non-constant [H, W] map, got shape {s.shape}")
    q_fg, q_bg = np.percentile(s, [fg_percentile, bg_percentile])
    fg = s > q_fg
    if not fg.any():
        fg = s >= q_fg
    bg = s < q_bg
    if not bg.any():
        bg = s <= q_bg
    return fg, bg & ~fg


def box_from_grabcut(saliency: np.ndarray, image: np.ndarray, fg_percentile: float = GRABCUT_FG_PERCENTILE,
                     bg_percentile: float = GRABCUT_BG_PERCENTILE, iterations: int = GRABCUT_ITERATIONS,
                     seed: int = 0) -> tuple[int, int, int, int] | None:
    """Box by GrabCut segmentation seeded from the map (Simonyan et al., ICLR 2014 workshop, Sec. 3.1).

    Simonyan et al. estimate the foreground colour model from the pixels whose saliency is above
    the 95 % quantile and the background model from those below the 30 % quantile, segment the
    image with GraphCut, and take the largest connected component of the foreground. Here:

    * seeds: ``grabcut_seeds`` (``fg_percentile`` 95, ``bg_percentile`` 30), labelled ``GC_FGD``
      and ``GC_BGD`` (hard constraints); every other pixel starts as ``GC_PR_BGD`` (probably
      background). OpenCV estimates the initial colour models from all pixels of each side, so the
      foreground model starts exactly from the top 5 %; the background model's first estimate also
      takes the band between the two quantiles (OpenCV has no way to leave pixels out of it);
      later iterations re-estimate both from the current labelling.
    * ``cv2.grabCut(image_bgr, mask, None, ..., iterations, GC_INIT_WITH_MASK)`` on the original
      image (uint8 RGB ``[H, W, 3]``, same size as the map), ``iterations`` 5 (Simonyan et al. do
      not state a count; 5 is OpenCV's customary value), 5-component GMMs (fixed by OpenCV),
      OpenCV's RNG seeded with ``seed`` before the call (its k-means initialisation), so a run is
      repeatable.
    * foreground = ``GC_FGD`` or ``GC_PR_FGD`` after GrabCut; its largest 8-connected component
      (ties: first in raster order, as ``box_from_map``); the box is that component's extent.

    No box (a localization failure) when the map has a non-finite value, ``max <= 0`` (as the
    threshold rule) or is constant (no seeds), when a side has fewer seed pixels than the colour
    models have components, or when the segmentation has no foreground.
    """
    saliency = np.asarray(saliency)
    image = np.asarray(image)
    if saliency.ndim != 2:
        raise ValueError(f"box_from_grabcut: expected a [H, W] map, got shape {saliency.shape}")
    if image.shape != (*saliency.shape, 3) or image.dtype != np.uint8:
        raise ValueError(f"box_from_grabcut: image {image.shape} {image.dtype}; expected uint8 RGB "
                         f"{(*saliency.shape, 3)} (the original image, the map's size)")
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"box_from_grabcut: iterations={iterations!r}; expected a positive integer")
    if saliency.size == 0 or not np.all(np.isfinite(saliency)) or saliency.max() <= 0 or saliency.max() == saliency.min():
        return None
    cv2 = require_cv2()
    fg, bg = grabcut_seeds(saliency, fg_percentile, bg_percentile)
    if fg.sum() < GRABCUT_GMM_COMPONENTS or (~fg).sum() < GRABCUT_GMM_COMPONENTS:
        return None
    mask = np.full(saliency.shape, cv2.GC_PR_BGD, np.uint8)
    mask[bg] = cv2.GC_BGD
    mask[fg] = cv2.GC_FGD
    bgr = np.ascontiguousarray(image[..., ::-1])
    bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    cv2.grabCut(bgr, mask, None, bgd_model, fgd_model, int(iterations), cv2.GC_INIT_WITH_MASK)
    return largest_component_box((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))


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
