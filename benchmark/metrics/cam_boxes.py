"""CAM's ILSVRC bbox generator, reimplemented from the behaviour of the released ``dt_box`` (Zhou et
al., CVPR 2016; zhoubolei/CAM ``bboxgenerator/dt_box.cpp``, ``dt.c``, ``ILSVRC_evaluate_bbox.m``).

Input: an 8-bit heatmap ``[H, W]`` (uint8, the original image's size). For each of the three
thresholds (``ILSVRC_evaluate_bbox.m`` passes 20 / 100 / 110; the program's own defaults are
30 / 90 / 150): the pixels ``> t`` form a binary mask; its Euclidean distance transform (distance
of each foreground pixel to the nearest background pixel) is rescaled to 0..255 by ``255 / (max -
min)`` without subtracting the minimum and rounded half up, and the pixels ``> 10`` are kept (a mask
with a single distance value is left as it was); the bounding rectangle of every contour of that mask
(OpenCV ``RETR_CCOMP``: outer contours and holes) is clamped 5 pixels from the right and bottom
borders as released. The boxes of all thresholds are sorted by area (largest first; equal areas keep
their generation order, where the released ``std::sort`` leaves it unspecified) and merged as
released: box ``j > i`` is erased when its overlap with box ``i`` exceeds half the larger area, and the
box that moves into the erased slot is skipped for that ``i``. Boxes are ``(x, y, w, h)``;
``ILSVRC_evaluate_bbox.m`` turns them into ``(x, y, x + w, y + h)`` and compares them with the devkit
boxes, which the suite reads 0-based inclusive as they are stored, so ``to_xyxy`` does the same.

``border`` says which ``dt_box`` is reproduced. The released binary links OpenCV 2.4, whose
``cvFindContours`` (``cvStartFindContours``) sets the image's outermost 1-pixel frame to 0 before
tracing, so a mask touching the image border is traced one pixel inside it (``released_binary``,
the default: the program that made the published numbers). OpenCV >= 3.2 traces the mask as it
is, which is what the released source does when built today (``source``). The two differ on
most masks that reach the border: a first box ``(0, 0, 219, 219)`` becomes ``(1, 1, 218, 218)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchmark.metrics.boxes import require_cv2

RELEASED_THRESHOLDS = (20, 100, 110)  # ILSVRC_evaluate_bbox.m and generate_bbox.m
PROGRAM_DEFAULTS = (30, 90, 150)  # dt_box.cpp's g_Ths, used when the arguments are not increasing in (0, 255)
DISTANCE_CUT = 10
BORDER_PX = 5
CHOICES = ("first", "second", "combined")
BORDERS = ("released_binary", "source")


def distance_mask(binary: np.ndarray) -> np.ndarray:
    """``dt.c``'s ``dt_binary`` then ``> 10``: bool ``[H, W]`` of the pixels far enough inside the mask."""
    binary = np.asarray(binary, dtype=bool)
    if binary.all() or not binary.any():
        return binary.copy()  # one distance value everywhere: the released code leaves the image unchanged
    dist = ndimage.distance_transform_edt(binary)
    scaled = np.floor(dist * (255.0 / dist.max()) + 0.5)  # minimum 0 (a background pixel exists); ROUND
    return np.minimum(scaled, 255) > DISTANCE_CUT


def contour_boxes(mask: np.ndarray, border: str = "released_binary") -> list[tuple[int, int, int, int]]:
    """Clamped bounding rectangles ``(x, y, w, h)`` of every contour (outer and hole) of a bool mask.

    ``border="released_binary"``: the mask's 1-pixel frame is zeroed first, as OpenCV 2.4 did.
    """
    if border not in BORDERS:
        raise ValueError(f"cam bbox generator: border={border!r}; expected one of {BORDERS}")
    cv2 = require_cv2()
    h_img, w_img = mask.shape
    image = mask.astype(np.uint8) * 255
    if border == "released_binary":
        image[0, :] = image[-1, :] = 0
        image[:, 0] = image[:, -1] = 0
    found = cv2.findContours(image, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    contours = found[-2]  # OpenCV 3 returns (image, contours, hierarchy), 4 returns (contours, hierarchy)
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append((_limit(x, 0, w_img - BORDER_PX), _limit(y, 0, h_img - BORDER_PX),
                      _limit(w, 0, w_img - x - BORDER_PX), _limit(h, 0, h_img - y - BORDER_PX)))
    return boxes


def _limit(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else (hi if v > hi else v)


def big_overlap(a, b) -> bool:
    """The released merge test: overlap area ``> int(0.5 * max(area a, area b))`` (``x + w`` as the right edge)."""
    t = int(max(a[2] * a[3], b[2] * b[3]) * 0.5)
    ox = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    oy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ox * oy > t


def merge_boxes(boxes: list) -> list:
    """``mergeBBox`` as released: erase while iterating (the box moved into an erased slot is skipped)."""
    boxes = list(boxes)
    i = 0
    while i < len(boxes):
        j = i + 1
        while j < len(boxes):
            if big_overlap(boxes[i], boxes[j]):
                del boxes[j]
            j += 1
        i += 1
    return boxes


def dt_boxes(heatmap: np.ndarray, thresholds=RELEASED_THRESHOLDS,
             border: str = "released_binary") -> list[tuple[int, int, int, int]]:
    """Every box ``(x, y, w, h)`` the generator writes for a uint8 ``[H, W]`` heatmap, in its order."""
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2 or heatmap.dtype != np.uint8:
        raise ValueError(f"dt_boxes: expected a uint8 [H, W] heatmap, got {heatmap.dtype} {heatmap.shape}")
    t = tuple(int(v) for v in thresholds)
    if len(t) != 3 or not 0 < t[0] < t[1] < t[2] < 255:
        t = PROGRAM_DEFAULTS  # the program ignores thresholds that are not increasing inside (0, 255)
    boxes = []
    for threshold in t:
        boxes += contour_boxes(distance_mask(heatmap > threshold), border)
    boxes.sort(key=lambda b: -b[2] * b[3])  # stable: equal areas keep their generation order
    return merge_boxes(boxes)


def to_xyxy(box) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` -> ``(x, y, x + w, y + h)``, as ``ILSVRC_evaluate_bbox.m`` reads the generator's output."""
    x, y, w, h = box
    return int(x), int(y), int(x + w), int(y + h)


def guess_order(choice: str = "first", topk: int = 5) -> list[tuple[int, int]]:
    """The devkit guesses ``(class rank, box index)`` (1-based rank, 0-based box) the script submits.

    ``first``/``second``: one guess per class rank, with its first or second box. ``combined``: the
    script interleaves (rank 1, box 0), (rank 1, box 1), (rank 2, box 0), (rank 2, box 1), ... and keeps
    the first ``topk`` guesses, so the top-1 guess is (rank 1, box 0) and the top-5 guesses reach rank 3.
    """
    if choice not in CHOICES:
        raise ValueError(f"cam box choice {choice!r}; expected one of {CHOICES}")
    if choice == "combined":
        return [(r, b) for r in range(1, topk + 1) for b in (0, 1)][:topk]
    return [(r, 0 if choice == "first" else 1) for r in range(1, topk + 1)]
