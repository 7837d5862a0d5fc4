"""The host pipeline at scale (``--sections pipeline``): can the CPU feed a GPU at Table 1's rate?

Inputs: ILSVRC-like JPEGs made for the bench, 500 x 375 and 375 x 500 at quality 90, from the
photos that scikit-image ships (centre-cropped to 4:3 and resized; smooth random pictures where
scikit-image is missing), written to a temporary folder. Per core (torch and the pool on one
thread, a loader worker's situation):

* ``decode (PIL)``: ``readers.load_rgb`` on the file, as every experiment decodes;
* ``preprocess (paper, 224)``: ``transforms.Preprocess`` of the decoded image;
* ``decode (libjpeg-turbo, simplejpeg)`` where simplejpeg is installed, and whether its pixels are
  identical to PIL's (the suite keeps PIL unless they are);
* ``to_original + box``: ``Preprocess.to_original`` of a Grad-CAM-like 224 map to the original
  size, then ``metrics.boxes.box_from_map`` (DESIGN 4.2);
* ``loader, num_workers N``: a ``DataLoader`` over the files (``load_rgb`` + ``Preprocess`` per item,
  batch 8, persistent workers), N = 1 .. cores, images/s in all;
* ``cores per GPU, MODEL``: host seconds per image (decode + preprocess + one map's
  ``to_original + box``) times the GPU's images/s, which is ``GPU_TFLOPS`` effective TFLOP/s at
  ``2 x GMACs`` per image (``estimates.py``) unless a device rate is given.

Contenders of a comparison run in interleaved rounds (``timing.interleaved``); each row keeps the
median rate and, for ``ratio`` rows, the median, min and max of the per-round ratios.
Reduced-DCT decoding (PIL ``draft``) only decodes at 1/2, 1/4, 1/8 when both sides stay at least
the requested size: the row ``draft scale for 224`` records the scale PIL picks for these files.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmark.data.readers import load_rgb
from benchmark.metrics.boxes import box_from_map
from benchmark.perf import estimates
from benchmark.perf.post import PREP, _jpeg, synthetic_cases
from benchmark.perf.timing import Contender, interleaved, paired_ratio, warm_up

COLUMNS = ["step", "images", "rounds", "images_per_s", "per", "ratio", "ratio_min", "ratio_max", "cores_per_gpu",
           "note"]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "colorwheel")


def make_jpegs(folder: Path, n: int, quality: int = 90) -> list[Path]:
    """``n`` ILSVRC-like JPEG files (500 x 375, every other one 375 x 500) under ``folder``."""
    try:
        import skimage.data as data
        photos = [getattr(data, name)() for name in PHOTOS]
    except (ImportError, OSError, AttributeError):
        photos = []
    paths = []
    for i in range(n):
        w, h = (500, 375) if i % 2 == 0 else (375, 500)
        if photos:
            img = Image.fromarray(photos[i % len(photos)]).convert("RGB")
            s = min(img.width / w, img.height / h)  # centre crop to the target aspect, then resize
            cw, ch = round(w * s), round(h * s)
            left, top = (img.width - cw) // 2, (img.height - ch) // 2
            img = img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            payload = buf.getvalue()
        else:
            payload = _jpeg(h, w, i)
        paths.append(folder / f"bench_{i:03d}.jpg")
        paths[-1].write_bytes(payload)
    return paths


def _simplejpeg():
    try:
        import simplejpeg
        return simplejpeg
    except ImportError:
        return None


class _Files(torch.utils.data.Dataset):
    """Decode + preprocess of each file, as the evaluation loop's loader does per item."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return PREP(load_rgb(self.paths[i]))


def _loader_rates(paths, workers: list[int], budget_s: float, rounds) -> tuple[list[Contender], list[float]]:
    loaders = [torch.utils.data.DataLoader(_Files(paths), batch_size=8, num_workers=n, persistent_workers=True)
               for n in workers]
    timed = [Contender(f"loader x{n}", "loader", (lambda ld=ld: [None for _ in ld]), len(paths), 1)
             for n, ld in zip(workers, loaders)]
    warm_up(timed, torch.device("cpu"))
    interleaved(timed, torch.device("cpu"), *rounds, deadline=time.perf_counter() + budget_s, measure_peak=False)
    for c in timed:
        c.fn = None  # the loaders' persistent workers end with their last reference
    del loaders
    return timed, [len(paths) / float(np.median(c.times)) for c in timed]


def run(cfg: dict, budget_s: float, rounds, notes: list, device_ips: dict | None = None) -> list[dict]:
    """The pipeline rows (see the module docstring); ``device_ips``: measured GPU images/s per model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
            return _run(cfg, Path(tmp), budget_s, rounds, notes, device_ips or {})
    finally:
        torch.set_num_threads(threads)


def _run(cfg, folder, budget_s, rounds, notes, device_ips) -> list[dict]:
    paths = make_jpegs(folder, cfg["images"])
    decoded = [load_rgb(p) for p in paths]
    cases = synthetic_cases(len(paths))  # Grad-CAM-like maps; the sizes are the files'
    sizes = [img.shape[:2] for img in decoded]
    fns = {"decode (PIL)": lambda: [load_rgb(p) for p in paths],
           "preprocess (paper, 224)": lambda: [PREP(img) for img in decoded],
           "decode + preprocess": lambda: [PREP(load_rgb(p)) for p in paths],
           "to_original + box": lambda: [box_from_map(PREP.to_original(m, hw)[0].numpy(), 0.15)
                                         for (_, m), hw in zip(cases, sizes)]}
    sj = _simplejpeg()
    if sj is not None:
        raw = [p.read_bytes() for p in paths]
        fns["decode (simplejpeg)"] = lambda: [sj.decode_jpeg(b, colorspace="RGB") for b in raw]
        same = sum(np.array_equal(sj.decode_jpeg(b, colorspace="RGB"), img) for b, img in zip(raw, decoded))
        notes.append(f"pipeline: simplejpeg {sj.__version__} decoded {same} of {len(raw)} files to PIL's exact pixels")
    timed = [Contender(k, k, fn, len(paths), 1) for k, fn in fns.items()]
    warm_up(timed, torch.device("cpu"))
    done = interleaved(timed, torch.device("cpu"), *rounds, deadline=time.perf_counter() + budget_s / 2,
                       measure_peak=False)
    by = {c.name: c for c in timed}
    rate = {c.name: len(paths) / float(np.median(c.times)) for c in timed}
    rows = [{"step": k, "images": len(paths), "rounds": done, "images_per_s": v, "per": "core"} for k, v in rate.items()]
    if sj is not None:
        r = paired_ratio(by["decode (PIL)"].times, by["decode (simplejpeg)"].times)
        rows.append({"step": "decode speed-up, simplejpeg / PIL", "images": len(paths), "rounds": done,
                     "ratio": r["ratio"], "ratio_min": r["ratio_min"], "ratio_max": r["ratio_max"],
                     "note": f"identical pixels: {same} of {len(paths)}"})
    with Image.open(paths[0]) as im:
        width = im.size[0]
        im.draft("RGB", (PREP.size, PREP.size))  # the largest DCT reduction keeping both sides >= 224
        scale = width / im.size[0]
    rows.append({"step": "draft scale for 224", "images": 1, "rounds": 1, "per": "file",
                 "note": f"PIL draft decodes {paths[0].name} at 1/{scale:g} for a 224 x 224 input"})
    workers = list(range(1, (cfg.get("max_workers") or os.cpu_count() or 1) + 1))
    loaders, lrates = _loader_rates(paths, workers, budget_s / 2, rounds)
    rows += [{"step": f"loader, num_workers {n}", "images": len(paths), "rounds": len(c.times), "images_per_s": v,
              "per": "all workers"} for n, c, v in zip(workers, loaders, lrates)]
    if len(workers) > 1:
        r = paired_ratio(loaders[0].times, loaders[-1].times)
        rows.append({"step": f"loader speed-up, {workers[-1]} workers / 1", "images": len(paths),
                     "rounds": len(loaders[0].times), "ratio": r["ratio"], "ratio_min": r["ratio_min"],
                     "ratio_max": r["ratio_max"]})
    host_s = 1.0 / rate["decode + preprocess"] + 1.0 / rate["to_original + box"]
    for name in cfg["models"]:
        ips = device_ips.get(name) or estimates.GPU_TFLOPS * 1e12 / (2 * estimates.gmacs(name) * 1e9)
        source = "measured" if name in device_ips else f"assumed {estimates.GPU_TFLOPS:g} TFLOP/s"
        rows.append({"step": f"cores per GPU, {name}", "images": len(paths), "images_per_s": ips, "per": "GPU",
                     "cores_per_gpu": ips * host_s, "note": f"GPU forward images/s {source}; host {host_s * 1e3:.1f} ms/image"})
    return rows
