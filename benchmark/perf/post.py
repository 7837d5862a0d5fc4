"""CPU work around the model in ``benchmark.perf``: decode, preprocessing, localization post-processing.

Per image at ILSVRC-like sizes (about 500 x 375): JPEG decode (PIL, as ``load_rgb``), ``Preprocess``
to 224 x 224, and the localization post-processing of DESIGN 4.2 (``Preprocess.to_original`` to the
original size, then ``Localization.score_one``: threshold, 8-connected components, box, IoU). Also
whether that post-processing scales with threads (it does not where it holds the GIL) or with
processes, which decides how an evaluation loop can keep a GPU busy.
"""

from __future__ import annotations

import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.perf.timing import summary
from benchmark.data.transforms import Preprocess
from benchmark.metrics.boxes import box_from_map
from benchmark.metrics.localization import Localization
from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD
from benchmark.types import Sample

SIZES_HW = ((375, 500), (500, 375), (333, 500), (500, 500), (375, 500), (334, 500), (500, 333), (281, 500))
PREP = Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "paper")
METRIC = Localization()


def synthetic_cases(n: int, seed: int = 0) -> list[tuple[Sample, torch.Tensor]]:
    """``n`` (sample, map ``[1, 224, 224]``) pairs: Grad-CAM-like maps (7 x 7 upsampled, ReLU)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, 7, 7, generator=g)
    maps = F.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False).clamp_min(0)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        h, w = SIZES_HW[i % len(SIZES_HW)]
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        box = np.array([[x0, y0, int(rng.integers(x0, w)), int(rng.integers(y0, h))]], dtype=np.int64)
        image = np.zeros((h, w, 0), np.uint8)  # only its shape is read; no bytes to pickle
        cases.append((Sample(f"img{i}", image, (7,), box, np.array([7])), maps[i]))
    return cases


def post_one(case) -> dict:
    """The per-image localization post-processing of ``Localization.score_batch``."""
    sample, saliency = case
    full = PREP.to_original(saliency, sample.orig_size_hw)[0].numpy()
    return METRIC.score_one(sample, 7, full, np.array([7, 1, 2, 3, 4]))


def box_cv2(saliency: np.ndarray, threshold: float = 0.15):
    """Prototype of ``box_from_map`` on OpenCV's one-pass labelling with statistics (releases the GIL).

    Same rule: no box for a non-finite map or ``max <= 0``; 8-connected components of
    ``map >= threshold * max``; largest component, ties to the lowest label (OpenCV numbers
    components in raster order of their first pixel, as ``scipy.ndimage.label`` does).
    """
    import cv2

    if saliency.size == 0 or not np.all(np.isfinite(saliency)):
        return None
    peak = saliency.max()
    if peak <= 0:
        return None
    binary = (saliency >= threshold * peak).view(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[best, :4])
    return x, y, x + w - 1, y + h - 1


def _per_image(fn, items, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        times.append((time.perf_counter() - start) / len(items))
    return times


def _pool_rate(pool_cls, workers: int, items, fn=None, **kw) -> float:
    """Images per second of ``fn`` (default ``post_one``) over ``items`` in a pool of ``workers``."""
    fn = fn or post_one
    with pool_cls(workers, **kw) as pool:
        list(pool.map(fn, items[:workers]))  # warm-up: workers started, imports done
        start = time.perf_counter()
        list(pool.map(fn, items, chunksize=max(1, len(items) // (4 * workers))))
        return len(items) / (time.perf_counter() - start)


def _jpeg(h: int, w: int, seed: int) -> bytes:
    """A smooth random RGB picture encoded as JPEG (quality 90), compressing like a photo."""
    g = torch.Generator().manual_seed(seed)
    img = F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bicubic", align_corners=False)
    img = (img[0].permute(1, 2, 0).clamp(0, 1) * 255).to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def run(n_images: int, rounds: int, workers: int = 2) -> list[dict]:
    """Rows ``(step, per-image ms stats, images_per_s)``, then post-processing rates in thread/process pools."""
    cases = synthetic_cases(n_images)
    full = [PREP.to_original(m, s.orig_size_hw)[0].numpy() for s, m in cases]
    jpegs = [_jpeg(h, w, i) for i, (h, w) in enumerate(SIZES_HW)]
    decoded = [_decode(d) for d in jpegs]
    steps = {
        "jpeg decode (PIL)": (_decode, jpegs),
        "preprocess to 224": (PREP, decoded),
        "to_original (upsample)": (lambda c: PREP.to_original(c[1], c[0].orig_size_hw), cases),
        "box (threshold+components)": (lambda m: box_from_map(m, 0.15), full),
        "box, OpenCV prototype": (box_cv2, full),
        "post-processing total": (post_one, cases),
    }
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-image work: what one loader/pool worker does
    rows = []
    try:
        for step, (fn, items) in steps.items():
            fn(items[0])
            stats = summary(_per_image(fn, items, rounds))
            rows.append({"section": "post", "step": step, "images": len(items),
                         **{k.replace("_s", "_ms"): v * 1e3 if k.endswith("_s") else v for k, v in stats.items()},
                         "images_per_s": 1.0 / stats["median_s"]})
        rates = {"threads x1": _pool_rate(ThreadPoolExecutor, 1, cases),
                 f"threads x{workers}": _pool_rate(ThreadPoolExecutor, workers, cases)}
        rates.update({f"OpenCV box, threads x{n}": _pool_rate(ThreadPoolExecutor, n, full, fn=box_cv2)
                      for n in (1, workers)})
        rates.update({f"box, threads x{n}": _pool_rate(ThreadPoolExecutor, n, full, fn=box_from_map)
                      for n in (1, workers)})
        try:
            ctx = multiprocessing.get_context("fork")
            rates[f"processes x{workers}"] = _pool_rate(ProcessPoolExecutor, workers, cases, mp_context=ctx)
        except (OSError, RuntimeError, ValueError) as err:
            rates[f"processes x{workers}"] = float("nan")
            print(f"  post: process pool unavailable ({err})")
    finally:
        torch.set_num_threads(torch_threads)
    for name, rate in rates.items():
        step = name if "box" in name else f"post-processing, pool of {name}"
        rows.append({"section": "post", "step": step, "images": len(cases), "images_per_s": rate})
    same = sum(box_cv2(m) == box_from_map(m, 0.15) for m in full)
    rows.append({"section": "post", "step": "OpenCV box == box_from_map", "images": len(full), "count": same})
    return rows
