"""Pieces shared by the two pointing games (Zhang et al., ECCV 2016; Grad-CAM Sec. 4.3; DESIGN 4.3-4.4).

Maps here are ``[H, W]`` numpy arrays at the original image resolution; points are ``(x, y)``
pixel indices (column, row), 0-based. Decisions:

* The point is the *first* maximum in row-major order, so ties go to the top-most, then left-most
  pixel. A tie is any value within ``NEAR_TIE`` (1e-6) of the map's largest magnitude below the
  maximum: the four pixels a bilinear resize makes equal around a peak differ by float rounding
  only, and that rounding changes with the kernels (threads, batch size, device); the tolerance
  makes the point the same everywhere unless a pixel lies within rounding of the tolerance's edge.
* A hit needs a GT pixel at Euclidean distance ``< tolerance_px`` from the point. The distance is
  computed exactly in integers (``dx**2 + dy**2 < tolerance_px**2``) over the GT pixels near the
  point, which equals reading ``scipy.ndimage.distance_transform_edt(~region)`` at the point.
* GT region (``region``): ``boxes`` = union of every box of the class, difficult ones included
  (they are real pixels of the class); ``masks`` = the class's union instance mask; ``auto`` =
  masks when the sample carries an RLE for the class, boxes otherwise.
* Skipped classes: a class scored on boxes whose boxes are all ``difficult`` (PASCAL VOC). On COCO
  the flag marks crowd annotations, whose pixels belong to the union mask, so a class scored on
  its mask is never skipped.
* Difficult subset: the union of the class's boxes covers less than 1/4 of the image and another
  class is present in the image (Zhang et al.'s definition, from annotations only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmark.data.readers import class_region
from benchmark.types import Sample, is_degenerate

REGIONS = ("auto", "boxes", "masks")
NEAR_TIE = 1e-6  # relative to max |map|: values this close to the maximum are ties
DIFFICULT_AREA_FRACTION = 0.25


def check_region(region: str) -> str:
    if region not in REGIONS:
        raise ValueError(f"pointing metric option region={region!r}: expected one of {list(REGIONS)}")
    return region


def region_kind(sample: Sample, class_id: int, region: str) -> str:
    """``boxes`` or ``masks`` for this class under the ``region`` option."""
    if region == "auto":
        return "masks" if int(class_id) in sample.masks_rle else "boxes"
    return region


def scored_classes(sample: Sample, region: str, skip_difficult: bool = True) -> list[int]:
    """GT classes of the image that the pointing game scores (sorted)."""
    keep = []
    for c in sorted(set(int(c) for c in sample.labels)):
        flags = sample.box_difficult[sample.box_labels == c]
        all_difficult = len(flags) > 0 and bool(flags.all())
        if skip_difficult and all_difficult and region_kind(sample, c, region) == "boxes":
            continue
        keep.append(c)
    return keep


def first_argmax(saliency: np.ndarray, near_tie: float = NEAR_TIE) -> tuple[int, int]:
    """``(x, y)`` of the first maximum in row-major order of a finite ``[H, W]`` map.

    Values ``>= max - near_tie * max|map|`` count as the maximum (``near_tie=0``: exact ties only).
    """
    s = np.asarray(saliency, dtype=np.float64)
    peak = s.max()
    flat = int(np.argmax(s >= peak - near_tie * max(abs(peak), abs(s.min()))))
    y, x = divmod(flat, saliency.shape[1])
    return x, y


def distance_to_region(region: np.ndarray, x: int, y: int) -> float:
    """Exact Euclidean distance from pixel ``(x, y)`` to the nearest True pixel (inf if none)."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return math.inf
    d2 = (ys.astype(np.int64) - y) ** 2 + (xs.astype(np.int64) - x) ** 2
    return math.sqrt(int(d2.min()))


def hits(region: np.ndarray, x: int, y: int, tolerance_px: float) -> bool:
    """Some GT pixel lies at distance ``< tolerance_px`` from ``(x, y)``: exact integer test."""
    r = int(math.ceil(tolerance_px))
    h, w = region.shape
    window = region[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
    ys, xs = np.nonzero(window)
    if len(ys) == 0:
        return False
    d2 = (ys + max(0, y - r) - y) ** 2 + (xs + max(0, x - r) - x) ** 2
    return bool(d2.min() < tolerance_px * tolerance_px)


def box_union_fraction(sample: Sample, class_id: int) -> float:
    """Fraction of the image covered by the union of the class's boxes (all of them)."""
    return float(class_region(sample, class_id, "boxes").mean())


def in_difficult_subset(sample: Sample, class_id: int) -> bool:
    """Class boxes cover < 1/4 of the image and another class is present."""
    others = set(int(c) for c in sample.labels) - {int(class_id)}
    if not others:
        return False
    if len(sample.boxes_of(class_id)):
        fraction = box_union_fraction(sample, class_id)
    else:  # a class with a mask only: its mask area stands in for the box area
        fraction = float(class_region(sample, class_id, "masks").mean())
    return fraction < DIFFICULT_AREA_FRACTION


def pad_rows(rows: list[list[int]]) -> tuple[torch.Tensor, list[int]]:
    """Class lists of unequal length -> ``[B, K]`` LongTensor padded with each row's first class.

    Rows with no class are padded with class 0; the caller keeps only the first ``len(row)`` maps.
    """
    k = max((len(r) for r in rows), default=0)
    padded = [list(r) + [r[0] if r else 0] * (k - len(r)) for r in rows]
    return torch.tensor(padded, dtype=torch.long).reshape(len(rows), k), [len(r) for r in rows]


def point_and_hit(sample: Sample, class_id: int, saliency: np.ndarray, region: str, tolerance_px: float) -> dict:
    """Point, hit and map statistics of one map for one class; a degenerate map is a flagged miss
    that points nowhere (``point_x = point_y = -1``)."""
    kind = region_kind(sample, class_id, region)
    degenerate = is_degenerate(saliency)
    finite = np.isfinite(saliency)
    peak = float(saliency[finite].max()) if finite.any() else float("nan")
    if degenerate:  # non-finite or constant: no location to read, the map points nowhere
        return {"point_x": -1, "point_y": -1, "hit": False, "distance_px": float("nan"), "map_max": peak,
                "degenerate": True, "region": kind}
    x, y = first_argmax(saliency)
    gt = class_region(sample, class_id, kind)
    hit = hits(gt, x, y, tolerance_px)
    return {"point_x": x, "point_y": y, "hit": bool(hit), "distance_px": distance_to_region(gt, x, y),
            "map_max": peak, "degenerate": degenerate, "region": kind}
