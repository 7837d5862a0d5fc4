"""CAM's ILSVRC 10-crop pipeline: crops, score averaging, map merge and the 8-bit heatmap (Zhou et
al., CVPR 2016; behaviour of zhoubolei/CAM ``prepare_image.m``, ``mergeTenCrop.m``,
``ILSVRC_generate_heatmap.m``).

Geometry, scaled from the released 256 / 224 to any input size ``S``: the whole image is resized
to a square frame of ``F = round(S * 256 / 224)`` pixels (aspect not kept), and 10 crops of ``S x S``
are taken: the 4 corners, the centre at offset ``(F - S + 1) // 2`` (the released 1-based
``floor((F - S + 1) / 2) + 1``; 16 for 256 / 224), and the horizontal flips of these 5. Class scores
are the deploy nets' softmax ``prob`` averaged over the crops. Each crop's map ``[S, S]`` is flipped
back where its crop was flipped, placed at its crop position in a zero ``[F, F]`` frame, and the
frame takes the sum of ``|map|`` over the crops (``merge="abs_sum"``, as released) or their signed
mean over the crops covering each pixel (``merge="mean"``, for maps whose sign matters). The merged
frame is resized to the original size bicubically (Keys' kernel with ``a = -0.5`` and antialiasing
when shrinking, as MATLAB's default ``imresize``; PIL's implementation, which renormalizes the taps
at the border where MATLAB mirrors the image), divided by its maximum and written as an 8-bit image
(``round(clip(x, 0, 1) * 255)``, MATLAB's ``im2uint8``), optionally through a JPEG round trip at
quality 75 (MATLAB ``imwrite``'s default; OpenCV's libjpeg encoder here).
"""

from __future__ import annotations

import numpy as np
import torch

JPEG_QUALITY = 75
MERGES = ("abs_sum", "mean")


def frame_size(crop: int) -> int:
    """Side of the square frame the 10 crops are cut from: 256 for 224, scaled for other inputs."""
    return int(round(crop * 256 / 224))


def crop_offsets(frame: int, crop: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the 5 unflipped crops in the released order (corners by column, then centre)."""
    if not 0 < crop <= frame:
        raise ValueError(f"crop_offsets: crop {crop} must fit in the frame {frame}")
    far, centre = frame - crop, (frame - crop + 1) // 2
    # prepare_image.m walks the image transposed (x first), so the corners go left column first
    return [(0, 0), (far, 0), (0, far), (far, far), (centre, centre)]


def ten_crops(frame_images: torch.Tensor, crop: int) -> torch.Tensor:
    """``[B, 3, F, F]`` -> ``[B, 10, 3, S, S]``: 5 crops, then their horizontal flips."""
    offsets = crop_offsets(frame_images.shape[-1], crop)
    crops = [frame_images[..., t:t + crop, l:l + crop] for t, l in offsets]
    crops += [c.flip(-1) for c in crops[:5]]
    return torch.stack(crops, dim=1)


def merge_crops(maps: torch.Tensor, frame: int, merge: str = "abs_sum") -> torch.Tensor:
    """``[10, S, S]`` crop maps -> ``[F, F]`` frame map: flips undone, placed, merged."""
    if merge not in MERGES:
        raise ValueError(f"merge_crops: merge={merge!r}; expected one of {MERGES}")
    crop = maps.shape[-1]
    total = maps.new_zeros(frame, frame, dtype=torch.float64)
    count = torch.zeros_like(total)
    for k, (t, l) in enumerate(crop_offsets(frame, crop) * 2):
        m = maps[k].double()
        m = m.flip(-1) if k >= 5 else m
        total[t:t + crop, l:l + crop] += m.abs() if merge == "abs_sum" else m
        count[t:t + crop, l:l + crop] += 1
    return total if merge == "abs_sum" else total / count.clamp_min(1)


def resize_bicubic(saliency: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """MATLAB-style bicubic resize of a float ``[h, w]`` map to ``size_hw`` (see the module note)."""
    from PIL import Image

    h, w = size_hw
    image = Image.fromarray(np.ascontiguousarray(saliency, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize((int(w), int(h)), Image.BICUBIC), dtype=np.float64)


def heatmap_uint8(saliency: np.ndarray, jpeg_quality: int | None = JPEG_QUALITY) -> np.ndarray | None:
    """The map divided by its maximum as an 8-bit ``[H, W]`` image (None when ``max <= 0`` or not finite)."""
    s = np.asarray(saliency, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or s.max() <= 0:
        return None
    heat = np.floor(np.clip(s / s.max(), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)  # MATLAB rounds half up
    if jpeg_quality:
        from benchmark.metrics.boxes import require_cv2

        cv2 = require_cv2()
        ok, data = cv2.imencode(".jpg", heat, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise RuntimeError("heatmap_uint8: OpenCV could not encode the heatmap as JPEG")
        heat = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return heat
