"""The metrics section of ``benchmark.perf``: native perturbation curves against Quantus on the same model,
images, maps, classes and steps, in interleaved rounds.

* deletion (``_perturbation.perturbation_curves``, zeros, one image row of pixels per point as RISE's
  224 at 224 x 224, ``max_batch`` inputs per forward) against ``quantus.PixelFlipping(features_in_step=3 * step, perturb_baseline=0.0,
  normalise=False)``, which forwards one step of every image at a time;
* region perturbation (``patch`` 9, ``regions`` 100, constant baseline 0) against
  ``quantus.RegionPerturbation`` at the same settings.

Quantus steps through the ``C x H x W`` elements of the channel-broadcast map but requires ``H x W``
to be a multiple of its step, so whole pixels per step (``3 x step`` elements) need ``3 | H``: the
images and maps are cropped to the largest side divisible by 3 (222 at 224).

Rows: images per second of each (a curve per image), the paired ratio ``native / Quantus`` (median
of per-round ratios), and the largest difference between the two curves (the native curve also
holds the untouched point, which Quantus does not compute). Skipped, with a note, without Quantus.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from benchmark.methods import build_method
from benchmark.metrics._perturbation import descending_ranks, perturbation_curves, step_counts
from benchmark.metrics.region_perturbation import region_ranks
from benchmark.perf.compare import timed_rows
from benchmark.perf.timing import Contender, paired_ratio

PATCH, REGIONS = 9, 100


def _contenders(model, images, maps, classes, step: int, max_batch: int):
    """``{name: (native fn, quantus fn)}`` for the two curves; each fn returns ``[B, points]`` scores."""
    import quantus

    x, a, y = images.detach().cpu().numpy(), maps[:, None].detach().cpu().numpy(), classes.cpu().numpy()
    device = str(images.device)
    pixels = maps[0].numel()
    zeros = torch.zeros_like(images)
    deletion = quantus.PixelFlipping(features_in_step=3 * step, perturb_baseline=0.0, normalise=False,
                                     disable_warnings=True)
    regions = quantus.RegionPerturbation(patch_size=PATCH, regions_evaluation=REGIONS, perturb_baseline=0.0,
                                         normalise=False, disable_warnings=True)

    def native_deletion():
        return perturbation_curves(model, images, zeros, descending_ranks(maps), step_counts(pixels, step), classes,
                                   "probability", max_batch)[:, 1:]

    def native_regions():
        ranks = region_ranks(maps, PATCH)
        counts = torch.arange(min(REGIONS, int(ranks.max()) + 1) + 1)
        s = perturbation_curves(model, images, zeros, ranks, counts, classes, "probability", max_batch)
        return (s[:, :1] - s)[:, 1:]

    return {"deletion": (native_deletion, lambda: deletion(model=model, x_batch=x, y_batch=y, a_batch=a, device=device,
                                                            softmax=True)),
            "region_perturbation": (native_regions, lambda: regions(model=model, x_batch=x, y_batch=y, a_batch=a,
                                                                     device=device, softmax=True))}


def run(model_name, model, images, maps, classes, device, budget_s, rounds,
        max_batch: int = 64) -> tuple[list[dict], list[dict], list[str]]:
    """Throughput rows, ratio rows (with the curves' largest difference) and notes; ``images [B, 3, S, S]``,
    ``maps [B, S, S]`` of ``classes [B]``."""
    if importlib.util.find_spec("quantus") is None:
        return [], [], ["metrics: quantus not installed, the section is skipped (pip install 'gradcam-benchmark[test]')"]
    side = images.shape[-1] - images.shape[-1] % 3
    images, maps = images[..., :side, :side].contiguous(), maps[..., :side, :side].contiguous()
    step, rows, ratios = side, [], []
    n = images.shape[0]
    pairs = _contenders(model, images, maps, classes, step, max_batch)
    for name, (native, theirs) in pairs.items():
        contenders = [Contender(f"{name} native", "native", native, n, 1),
                      Contender(f"{name} quantus", "quantus", theirs, n, 1)]
        r = timed_rows("metrics", model_name, contenders, device, budget_s / len(pairs), rounds)
        rows += r
        ratio = paired_ratio(r[1]["times"], r[0]["times"])  # Quantus time / native time = native speed-up
        diff = float(np.abs(native().detach().cpu().numpy() - np.asarray(theirs(), np.float32)).max())
        ratios.append({"model": model_name, "metric": name, "native_images_per_s": r[0]["maps_per_s"],
                       "quantus_images_per_s": r[1]["maps_per_s"], "native_over_quantus": ratio["ratio"],
                       "min": ratio["ratio_min"], "max": ratio["ratio_max"], "rounds": r[0]["rounds"],
                       "max_abs_diff": diff})
    return rows, ratios, []


def section(model_name, model, info, images, class_ids, device, budget_s, rounds) -> tuple[list[dict], list[dict], list[str]]:
    """``run`` on the gradient maps of each image's first class (``class_ids [B]`` or ``[B, K]``), as the
    bench's other sections are called."""
    classes = class_ids if class_ids.dim() == 1 else class_ids[:, 0]
    maps = build_method("gradient", model, info)(images, classes).detach()
    return run(model_name, model, images, maps, classes, device, budget_s, rounds)
