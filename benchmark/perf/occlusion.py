"""The occlusion-engine section of ``benchmark.perf``: plain, incremental and Captum ``Occlusion``.

A whole map at the paper's scale is minutes to hours of CPU time per contender, so the section
times each contender per occluded window and converts to maps/s for each stride:

* plain: one forward of ``max_batch`` occluded copies (8 on CPU), windows spread over the grid;
* incremental: ``engine.occluded`` on a batch of ``max_batch`` windows sampled from the stride's
  grid (the footprint shrinks at the border, so the sample is spread over the whole grid), plus one
  clean pass per map;
* Captum: ``Occlusion.attribute`` on one image at a stride with 16 windows (one forward per window,
  whatever the stride) at stride ``min(p, (224 - p) // 3)``, divided by its window count.

Maps/s = 1 / (seconds per window x windows per map (+ the clean pass)); ours has ``ceil(224/s)^2``
centers per map (DESIGN 4.5), Captum ``((224 - p) // s + 1)^2`` windows. The FLOP bound beside each
ratio is the same quotient with multiply-adds counted by ``torch.utils.flop_counter`` instead of
seconds (convs and matmuls only), so the gap between a ratio and its bound is overhead.
Contenders are timed in interleaved rounds (``timing.interleaved``: plain, Captum, the clean pass,
incremental per stride, in rotating order; at least ``rounds[0]``, more while the budget lasts).
Each ratio is computed per round from the calls of that round, which ran seconds apart, and kept as
the median over rounds with its min and max (``policy.ratio_stats``); maps/s come from each
contender's median call.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.perf.policy import ratio_stats
from benchmark.perf.timing import Contender, interleaved, warm_up
from benchmark.perf.tools import captum_occlusion
from benchmark.methods._occlusion_regions import materialize, occluder
from benchmark.methods.occlusion import centers, default_max_batch, incremental_engine

TARGETS = {"vgg16": 4.0, "resnet50": 2.0}  # incremental / Captum, maps/s, on a 2-core CPU (issue 21)


def _flops(fn) -> tuple[float, object]:
    """FLOPs counted in one call of ``fn`` (convs and matmuls), and what it returned."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return float(counter.get_total_flops()), out


def _sample(size: int, patch: int, stride: int, n: int, seed: int):
    """``n`` window spans ``(lo [n, 2], hi [n, 2])`` drawn from the stride's grid of centers."""
    c = centers(size, stride)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(c), (n, 2), generator=g)
    mid = c[pick]
    return (mid - (patch - 1) // 2).clamp(min=0), (mid + patch // 2 + 1).clamp(max=size)


@torch.no_grad()
def engines(name: str, model, device, budget_s: float, rounds: tuple[int, int], patch: int, strides,
            size: int = 224) -> tuple[list[dict], list[str]]:
    """Rows (one per stride) of maps/s, ratios to Captum with their FLOP bounds, and profile notes."""
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    cls = int(model(x).argmax())
    engine = incremental_engine(model)
    plain_batch, inc_batch = default_max_batch(device), default_max_batch(device, "incremental")
    lo, hi = _sample(size, patch, strides[0], plain_batch, seed=1)
    region = occluder(x, torch.zeros(plain_batch, dtype=torch.long, device=device), lo.to(device), hi.to(device), 0.0)
    copies = materialize(x, torch.zeros(plain_batch, dtype=torch.long, device=device), region)
    f_forward, _ = _flops(lambda: model(x))
    cap_stride = min(patch, max(1, (size - patch) // 3))  # Captum needs stride <= window
    cap_windows = ((size - patch) // cap_stride + 1) ** 2
    cap = captum_occlusion(model, patch, cap_stride, 0.0)
    clean = engine.clean(x)
    img = torch.zeros(inc_batch, dtype=torch.long, device=device)
    batches, timings = {}, {s: {} for s in strides}
    for stride in strides:
        lo, hi = _sample(size, patch, stride, inc_batch, seed=stride)
        batches[stride] = occluder(x, img, lo.to(device), hi.to(device), 0.0)

    def incremental(stride):
        engine.timings = timings[stride]
        try:
            engine.occluded(clean, img, batches[stride])
        finally:
            engine.timings = None

    fns = {"plain": lambda: model(copies), "captum": lambda: cap(x, torch.tensor([cls], device=device)),
           "clean": lambda: engine.clean(x), **{s: (lambda s=s: incremental(s)) for s in strides}}
    timed = [Contender(str(k), str(k), fn, 1, 1) for k, fn in fns.items()]
    warm_up(timed, device)  # one unrecorded call each: one-time costs stay out of the first round
    done = interleaved(timed, device, rounds[0], rounds[1], time.perf_counter() + budget_s, measure_peak=False)
    times = {k: c.times for k, c in zip(fns, timed)}
    rows, notes = [], []
    for stride in strides:
        f_inc, got = _flops(lambda: engine.occluded(clean, img, batches[stride]))
        f_inc /= inc_batch
        got = got[:plain_batch, cls]  # checked against plain forwards of the first copies (they are slow)
        ref = model(materialize(x, img, batches[stride])[:plain_batch])[:, cls]
        drop = (clean[engine.nodes[-1]][0, cls] - ref).abs().max().clamp_min(1e-30)
        ours_n, cap_n = len(centers(size, stride)) ** 2, ((size - patch) // stride + 1) ** 2
        # seconds per map of each contender in each round (the calls of one round ran seconds apart)
        per_map = [{"plain": t["clean"] + ours_n * t["plain"] / plain_batch, "captum": cap_n * t["captum"] / cap_windows,
                    "incremental": t["clean"] + ours_n * t[stride] / inc_batch}
                   for t in ({k: v[i] for k, v in times.items()} for i in range(done))]
        bound = {"plain": cap_n / (ours_n + 1), "incremental": cap_n * f_forward / (f_forward + ours_n * f_inc)}
        row = {"model": name, "patch": patch, "stride": stride, "windows_ours": ours_n, "windows_captum": cap_n,
               "rounds": done}
        row.update({f"{k}_maps_per_s": 1.0 / statistics.median(p[k] for p in per_map) for k in per_map[0]})
        for k in ("plain", "incremental"):
            row.update(ratio_stats(f"{k}_vs_captum", [p["captum"] / p[k] for p in per_map]))
            row[f"{k}_flop_bound"] = bound[k]
        row.update(ratio_stats("incremental_vs_plain", [p["plain"] / p["incremental"] for p in per_map]))
        row["incremental_vs_plain_flop_bound"] = (ours_n + 1) * f_forward / (f_forward + ours_n * f_inc)
        row["gmac_per_window"] = f"{f_inc / 2e9:.2f} of {f_forward / 2e9:.2f}"
        row["max_diff_rel"] = float((got - ref).abs().max() / drop)
        row["target"] = TARGETS.get(name)
        row["holds"] = None if row["target"] is None else row["incremental_vs_captum"] >= row["target"]
        row["profile"] = profile(timings[stride])
        rows.append(row)
        notes.append(f"occlusion engines, {name}, stride {stride}: incremental time per node ({done} timed calls of "
                     f"{inc_batch} windows): {row['profile']}")
    return rows, notes


def profile(timings: dict, top: int = 8) -> str:
    """The ``top`` graph nodes by time, ``name how share%`` (``how``: footprint or full recomputation)."""
    spent = sorted(timings.items(), key=lambda kv: -kv[1][0])[:top]
    total = sum(v[0] for v in timings.values()) or 1.0
    return ", ".join(f"{k} {v[2]} {100 * v[0] / total:.0f}%" for k, v in spent)


COLUMNS = ["model", "stride", "rounds", "windows_ours", "windows_captum", "captum_maps_per_s", "plain_maps_per_s",
           "incremental_maps_per_s", "plain_vs_captum", "plain_flop_bound", "incremental_vs_captum",
           "incremental_flop_bound", "incremental_vs_plain", "incremental_vs_plain_flop_bound", "incremental_vs_plain_min",
           "incremental_vs_plain_max", "gmac_per_window",
           "max_diff_rel", "target", "holds"]
