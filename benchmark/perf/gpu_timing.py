"""Table 1's job timed phase by phase on one device: host preparation, device work, host post-processing.

A Table 1 job (Grad-CAM, localization with the 15 % box rule) on ``images`` ILSVRC-like JPEGs
(``pipeline.make_jpegs``: 500 x 375 and 375 x 500, quality 90), in batches of ``batch``:

* host, before: decode (``readers.load_rgb``) and ``Preprocess`` of each image, stacked;
* device: the copy to the device, the forward pass with top-5 predictions and the Grad-CAM maps of
  the first prediction (``build_method("grad_cam")``), synchronized;
* host, after: each map to its original size (``Preprocess.to_original``) and its box
  (``metrics.boxes.box_from_map``).

One batch first as a warm-up (not counted). Phases run one after another in this process, so
``serial_images_per_s`` is the rate without overlap; the evaluation loop overlaps the host phases
with the device (loader workers, a post-processing thread), so the slowest phase bounds it:
``bound_images_per_s``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmark.data.readers import load_rgb
from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.metrics.boxes import box_from_map
from benchmark.perf import pipeline, sections
from benchmark.perf.timing import sync


def _batches(paths: list[Path], batch: int) -> list[list[Path]]:
    return [paths[i:i + batch] for i in range(0, len(paths), batch)]


def table1_job(name: str, device: torch.device, images: int, batch: int, size: int) -> dict:
    """Seconds per phase and images/s of a Grad-CAM localization job on ``name`` (random weights)."""
    model, info = sections.model(name, device)
    prep = Preprocess(size, tuple(info.mean), tuple(info.std), "paper")
    method = build_method("grad_cam", model, info)
    spent = {"host_prepare": 0.0, "device": 0.0, "host_post": 0.0}
    boxes = 0
    with tempfile.TemporaryDirectory(prefix="gpu_timing_") as tmp:
        paths = pipeline.make_jpegs(Path(tmp), images + batch)
        for i, group in enumerate(_batches(paths, batch)):
            t0 = time.perf_counter()
            decoded = [load_rgb(p) for p in group]
            x = torch.stack([prep(img) for img in decoded])
            t1 = time.perf_counter()
            x = x.to(device)
            with torch.no_grad():
                top5 = model(x).topk(min(5, info.num_classes), dim=1).indices
            maps = method.explain(x, top5[:, :1]).maps[:, 0].float().cpu()
            sync(device)
            t2 = time.perf_counter()
            found = [box_from_map(prep.to_original(m[None], img.shape[:2])[0].numpy(), 0.15)
                     for m, img in zip(maps, decoded)]
            t3 = time.perf_counter()
            if i == 0:
                continue  # warm-up batch
            boxes += sum(b is not None for b in found)
            for key, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2)):
                spent[key] += seconds
    counted = images  # every file after the warm-up batch
    total = sum(spent.values())
    row = {"model": name, "images": counted, "batch": batch, "size": size, "boxes": boxes,
           **{f"{k}_ms_per_image": 1e3 * v / counted for k, v in spent.items()},
           "device_images_per_s": counted / spent["device"], "serial_images_per_s": counted / total,
           "bound_images_per_s": counted / max(spent.values()), "device_share": spent["device"] / total}
    del model, method
    return row
