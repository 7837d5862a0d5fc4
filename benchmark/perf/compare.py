"""The throughput sections of ``benchmark.perf``: Grad-CAM, pixel-space gradients, occlusion.

Every section builds its contenders on one model, one batch ``images [B, 3, S, S]`` and one
``class_ids [B, K]`` (the first column is the one-class case), first checks that the maps agree
(ours vs each competitor, min-max normalized, so pytorch-grad-cam's normalized output compares),
then warms up and times them in interleaved rounds within its time budget.
"""

from __future__ import annotations

import time

from benchmark.perf import tools
from benchmark.perf.fast import max_normalized_diff, pearson_per_map
from benchmark.perf.timing import Contender, interleaved, summary, warm_up
from benchmark.methods import build_method


def timed_rows(section: str, model_name: str, contenders: list[Contender], device, budget_s: float,
               rounds: tuple[int, int]) -> list[dict]:
    """Warm up, then interleaved rounds while the budget (warm-up included) lasts; one row per contender."""
    deadline = time.perf_counter() + budget_s
    warm_up(contenders, device)
    n = interleaved(contenders, device, *rounds, deadline=deadline)
    rows = []
    for c in contenders:
        stats = summary(c.times)
        rows.append({"section": section, "model": model_name, "contender": c.name, "tool": c.tool,
                     "classes": c.classes, "maps_per_call": c.maps, "rounds": n, **stats,
                     "maps_per_s": c.maps / stats["median_s"] if stats["n"] else float("nan"),
                     "peak_extra_mb": c.peak_mb, "times": list(c.times)})
    return rows


def _agreement(section: str, model_name: str, ours, theirs, what: str, exact_scale: bool) -> dict:
    """How close two map stacks are: min-max normalized max difference and worst per-map Pearson."""
    ours, theirs = ours.detach().float().cpu(), theirs.detach().float().cpu()
    row = {"section": section, "model": model_name, "compared": what,
           "max_normalized_diff": max_normalized_diff(ours, theirs),
           "min_pearson": float(pearson_per_map(ours, theirs).nan_to_num(1.0).min())}
    if exact_scale:  # same units: also the raw relative difference
        row["max_rel_diff"] = float((ours - theirs).abs().max() / ours.abs().max().clamp_min(1e-30))
    return row


def grad_cam(model_name, model, info, images, class_ids, device, budget_s, rounds, fast: bool = True):
    """Grad-CAM: ours (K=1, K), pytorch-grad-cam and Captum (K one-class calls each), forward, fast variants."""
    k = class_ids.shape[1]
    layer = build_method("grad_cam", model, info).layer
    pgcs = [tools.PytorchGradCam(model, layer, trainable=True), tools.PytorchGradCam(model, layer, trainable=False)]
    cap = tools._quiet_maps(tools.captum_grad_cam(model, layer))
    try:
        # both tools rectify the layer-resolution map before upsampling: compare with relu_at="layer"
        ref = build_method("grad_cam", model, info, relu_at="layer").explain(images[:2], class_ids[:2, :1]).maps[:, 0]
        two = (images[:2], class_ids[:2, 0])
        checks = [*(_agreement("grad_cam", model_name, ref, p.maps(*two), p.tag, False) for p in pgcs),
                  _agreement("grad_cam", model_name, ref, cap(*two), "captum", True)]
        # the one-call contenders run `k` times a round, as many samples as a split competitor has
        contenders = [tools.ours("grad_cam", model, info, images, class_ids[:, :1], repeat=k),
                      tools.ours("grad_cam", model, info, images, class_ids, repeat=k),
                      tools.forward(model, images, device, k, repeat=k),
                      *(c for p in pgcs for c in p.contenders(images, class_ids, device)),
                      *tools.captum_contenders(cap, images, class_ids, device)]
        if fast:
            full = build_method("grad_cam", model, info).explain(images, class_ids).maps
            for ids in (class_ids[:, :1], class_ids):
                for low in (False, True):
                    c = tools.ours_fast(model, info, images, ids, low, repeat=k)
                    contenders.append(c)
                    if ids.shape[1] > 1:
                        checks.append(_agreement("grad_cam", model_name, full, c.fn(), c.tool, True))
        rows = timed_rows("grad_cam", model_name, contenders, device, budget_s, rounds)
    finally:
        for p in pgcs:
            p.close()
    return rows, checks


def pixel(model_name, model, info, images, class_ids, device, budget_s, rounds):
    """Guided backprop and gradient: ours (K=1, K) vs Captum ``GuidedBackprop`` / ``Saliency``."""
    contenders, checks = [], []
    for name, tag in (("guided_backprop", "guided"), ("gradient", "saliency")):
        cap = tools.captum_pixel(model, name)
        ref = build_method(name, model, info).explain(images[:2], class_ids[:2, :1]).maps[:, 0]
        checks.append(_agreement(name, model_name, ref, cap(images[:2], class_ids[:2, 0]), f"captum {tag}", True))
        for c in (tools.ours(name, model, info, images, class_ids[:, :1], tag=f"ours {tag}"),
                  tools.ours(name, model, info, images, class_ids, tag=f"ours {tag}"),
                  *tools.captum_contenders(cap, images, class_ids, device, tag=f"captum {tag}")):
            contenders.append(c)
    return timed_rows("pixel", model_name, contenders, device, budget_s, rounds), checks


def occlusion(model_name, model, info, images, class_ids, device, budget_s, rounds, patch, stride, fill=0.0,
              small_batch: int = 8):
    """Occlusion, one class: ours (default ``max_batch``, and ``small_batch``) vs Captum ``Occlusion``.

    Ours batches occluded copies of all images, ``max_batch`` per forward (default 256, sized for a
    GPU); on a CPU smaller forwards stay in cache, so the section also times ``max_batch=small_batch``.
    Captum runs its default ``perturbations_per_eval=1`` (one window for all B images per forward).
    """
    from benchmark.methods.base import METHODS

    if "occlusion" not in METHODS:
        return [], "occlusion: method not registered (benchmark/methods/occlusion.py missing); section skipped"
    ids = class_ids[:, :1]
    opts = {"patch": patch, "stride": stride, "fill": fill}
    contenders = [tools.ours("occlusion", model, info, images, ids, tag="ours occlusion", **opts),
                  tools.ours("occlusion", model, info, images, ids, tag=f"ours occlusion mb{small_batch}",
                             max_batch=small_batch, **opts),
                  *tools.captum_contenders(tools.captum_occlusion(model, patch, stride, fill), images, ids, device,
                                           tag="captum occlusion")]
    rows = timed_rows("occlusion", model_name, contenders, device, budget_s, rounds)
    size = images.shape[-1]
    ours_n, captum_n = (-(-size // stride)) ** 2, ((size - patch) // stride + 1) ** 2
    for row in rows:
        row["windows_per_image"] = captum_n if row["tool"].startswith("captum") else ours_n
        row["forward_images_per_s"] = row["maps_per_s"] * (row["windows_per_image"] + 1)
    note = (f"occlusion: patch {patch}, stride {stride}, fill {fill}, {images.shape[0]} images; ours evaluates "
            f"{ours_n} windows per image (centers 0, s, 2s, ... with zero padding, DESIGN 4.5), Captum {captum_n} "
            f"(windows inside the image only); both add one clean forward")
    return rows, note
