"""Wall-time estimates of the paper's evaluations from one ``benchmark.perf`` run.

Estimate = images x (forward-equivalents per image) / (forward images per second on the device).

* Forward-equivalents per image come from this run: a method's median time divided by the plain
  forward's on the same model and batch (Grad-CAM/CAM: ``ours kK / forward``; pixel-space methods,
  also standing in for excitation backprop, one backward to the input: ``ours guided kK / forward``
  on the pixel-section model, c-MWP counted twice; occlusion at stride 1: ``H*W + 1`` forwards with
  the plain engine, ``1 + H*W / r`` with the incremental one, ``r`` its speed-up over plain measured
  in the occlusion-engines section on the same model at the smallest stride timed: the cost per
  window does not depend on the stride, and at stride 1 every pixel is a window).
  These ratios are assumed to carry over from this CPU to a GPU (forward and backward kernels keep
  roughly their cost ratio).
* Forward images/s on the device: measured when the bench ran on CUDA (batch of this run, so a
  lower bound); otherwise an assumption: ``gpu_tflops`` effective TFLOP/s at ``2 x GMACs`` per image
  (GMACs from torchvision's weight metadata). Models without a measured ratio use the nearest
  measured model's ratios.
* CPU work per image (JPEG decode + preprocessing, and per map the post-processing: resize to the
  original size, box or argmax), measured in this run on one core, is listed in core-hours: it runs
  beside the GPU in loader/pool workers and needs enough cores to keep up.
* ``time_this_cpu``: the same forward-equivalents at this run's measured CPU forward rate (models
  not measured: scaled by GMACs from the nearest measured one).
"""

from __future__ import annotations

import torchvision.models as tvm

GPU_TFLOPS = 25.0  # an A100-class GPU in TF32 sustains about this on ResNet-50/VGG-16 inference
# (experiment, images, model, method family, maps per image)
PLAN = [
    # Table 1: every model x gradient (threshold and GrabCut boxes: two runs of 50 000 images), c-MWP,
    # Grad-CAM (+ CAM on the CAM-compatible GoogLeNet and ResNet-50, priced as a second Grad-CAM class)
    *[("Table 1 ILSVRC val", runs * 50_000, m, fam, maps)
      for m, cam in (("vgg16", 1), ("alexnet", 1), ("googlenet", 2), ("resnet50", 2))
      for fam, runs, maps in (("grad_cam", 1, cam), ("pixel", 2, 1), ("c-mwp", 1, 1))],
    ("Table 2 VOC07 (2510 imgs)", 2_510, "vgg16", "occlusion", 1),
    ("Table 2 VOC07 (2510 imgs)", 3 * 2_510, "vgg16", "pixel", 1),  # guided BP, c-MWP, guided Grad-CAM
    ("Table 3 ablations (6 variants)", 6 * 50_000, "vgg16", "grad_cam", 1),
    # pointing: every method priced as a pixel-space one (an upper bound); ~1.5 (VOC) and ~2.9 (COCO)
    # GT classes per image, priced with the K-class factor of this run; modified game: top-5
    ("Pointing VOC07 test, 8 methods", 8 * 4_952, "vgg16", "pixel", 2),
    ("Pointing VOC07 test, 8 methods", 8 * 4_952, "resnet50", "pixel", 2),
    ("Pointing COCO14 val, 8 methods", 8 * 40_137, "vgg16", "pixel", 3),
    ("Pointing COCO14 val, 8 methods", 8 * 40_137, "resnet50", "pixel", 3),
    ("Modified pointing VOC07, 2 methods", 2 * 4_952, "vgg16", "grad_cam", 5),
]


def gmacs(model: str) -> float | None:
    """Multiply-accumulates per 224 x 224 image (billions), from torchvision's weight metadata."""
    try:
        return float(tvm.get_model_weights(model).DEFAULT.meta["_ops"])
    except (ValueError, KeyError, AttributeError):
        return None


def _median(rows, section, model, contender):
    for r in rows:
        if r["section"] == section and r["model"] == model and r["contender"] == contender:
            return r["median_s"]
    return None


def factors(rows: list[dict], k: int) -> dict:
    """Forward-equivalents per image measured in this run: ``{(model, family, classes): factor}``.
    Grad-CAM from ``ours kK``, pixel-space methods from ``ours guided kK``, each over the plain forward
    of the same model (timed in the Grad-CAM section)."""
    out = {}
    for section, family, contender in (("grad_cam", "grad_cam", "ours k{}"), ("pixel", "pixel", "ours guided k{}")):
        for model in {r["model"] for r in rows if r["section"] == section}:
            fwd = _median(rows, "grad_cam", model, "forward")
            for kk in (1, k):
                cost = _median(rows, section, model, contender.format(kk))
                if fwd and cost:
                    out[(model, family, kk)] = cost / fwd
    return out


def occlusion_speedup(engine_rows: list[dict] | None, model: str, key: str = "incremental_vs_plain") -> float | None:
    """The incremental engine's speed-up over plain (``key``: measured, or ``..._flop_bound``) on
    ``model`` at the smallest stride of the occlusion-engines rows; None where not measured."""
    mine = [r for r in engine_rows or [] if r["model"] == model]
    return float(min(mine, key=lambda r: int(r["stride"]))[key]) if mine else None


def occlusion_factor(size: int, speedup: float | None) -> float:
    """Forward-equivalents of one stride-1 occlusion map: the clean pass and ``size^2`` windows."""
    return 1.0 + size * size / (speedup or 1.0)


def _factor(f: dict, model: str, family: str, maps: int, k: int, size: int, speedup: float | None = None) -> float | None:
    if family == "occlusion":
        return occlusion_factor(size, speedup)
    base = "pixel" if family in ("pixel", "c-mwp") else "grad_cam"
    kk = 1 if maps == 1 else k
    candidates = [m for (m, fam, c) in f if fam == base and c == kk]
    if not candidates:
        return None
    known = [m for m in candidates if gmacs(m) is not None]
    if model in candidates:
        near = model
    elif known and gmacs(model) is not None:
        near = min(known, key=lambda m: abs(gmacs(m) - gmacs(model)))
    else:
        near = sorted(candidates)[0]
    value = f[(near, base, kk)]
    return 2 * value if family == "c-mwp" else value


def duration(hours: float) -> str:
    """``2 d 3 h``, ``5 h 12 min``, ``14 min``, ``40 s``: a readable wall time."""
    seconds = hours * 3600
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _cpu_forward_ips(rows: list[dict], model: str) -> float | None:
    """Forward images/s measured in this run, scaled by GMACs from the nearest measured model."""
    measured = {r["model"]: r["maps_per_s"] for r in rows if r["section"] == "grad_cam" and r["contender"] == "forward"}
    if model in measured:
        return measured[model]
    known = [m for m in measured if gmacs(m) is not None]
    if not known or gmacs(model) is None:
        return None
    near = min(known, key=lambda m: abs(gmacs(m) - gmacs(model)))
    return measured[near] * gmacs(near) / gmacs(model)


def gpu_hours(images: int, factor: float, model: str, measured_ips: float | None = None,
              gpu_tflops: float = GPU_TFLOPS) -> float:
    """Hours on one GPU for ``images`` x ``factor`` forwards of ``model`` (measured or assumed images/s)."""
    return images * factor / (measured_ips or gpu_tflops * 1e12 / (2 * gmacs(model) * 1e9)) / 3600


def table2_occlusion(engine_rows: list[dict], gpus: int, size: int = 224) -> list[dict]:
    """Table 2's occlusion maps (VGG-16, stride 1, 2 510 images) with each engine: the plain one, the
    incremental one at its measured speed-up and at its FLOP bound; 1 GPU and ``gpus`` GPUs."""
    (_, images, model, _, _), = [p for p in PLAN if p[3] == "occlusion"]
    out = []
    for engine, key in (("plain", None), ("incremental, measured", "incremental_vs_plain"),
                        ("incremental, FLOP bound", "incremental_vs_plain_flop_bound")):
        speedup = 1.0 if key is None else occlusion_speedup(engine_rows, model, key)
        if speedup is None:
            continue
        hours = gpu_hours(images, occlusion_factor(size, speedup), model)
        out.append({"engine": engine, "speedup": speedup, "hours_1_gpu": hours, "time_1_gpu": duration(hours),
                    "gpus": gpus, "time_n_gpus": duration(hours / gpus)})
    return out


def estimates(rows: list[dict], post_rows: list[dict], k: int, gpus: int, measured_fwd_ips: dict | None,
              gpu_tflops: float = GPU_TFLOPS, size: int = 224, engine_rows: list[dict] | None = None) -> list[dict]:
    """One row per planned job: forward-equivalents, wall time on 1 and on ``gpus`` GPUs and on
    this machine's CPU, and the CPU core-hours of decoding, preprocessing and post-processing.
    Occlusion is priced with the incremental engine where ``engine_rows`` measured it on the model."""
    f = factors(rows, k)
    per = {r["step"]: r.get("median_ms") for r in post_rows}
    decode_ms = (per.get("jpeg decode (PIL)") or 0.0) + (per.get("preprocess to 224") or 0.0)
    post_ms = per.get("post-processing total") or 0.0
    out = []
    for experiment, images, model, family, maps in PLAN:
        speedup = occlusion_speedup(engine_rows, model) if family == "occlusion" else None
        factor = _factor(f, model, family, maps, k, size, speedup)
        measured = (measured_fwd_ips or {}).get(model)
        if factor is None or (measured is None and gmacs(model) is None):
            continue
        ips = measured or gpu_tflops * 1e12 / (2 * gmacs(model) * 1e9)
        hours = gpu_hours(images, factor, model, measured, gpu_tflops)
        cpu_ips = _cpu_forward_ips(rows, model)
        cpu_ms = decode_ms + (0.0 if family == "occlusion" else maps * post_ms)
        method = f"occlusion incremental ({speedup:.2f}x plain)" if speedup else family
        out.append({"experiment": experiment, "model": model, "method": method, "images": images,
                    "maps_per_image": maps, "forward_equiv_per_image": factor, "forward_ips": ips,
                    "forward_ips_source": "measured" if measured else f"assumed {gpu_tflops:g} TFLOP/s",
                    "hours_1_gpu": hours, "time_1_gpu": duration(hours), f"time_{gpus}_gpus": duration(hours / gpus),
                    "time_this_cpu": None if cpu_ips is None else duration(images * factor / cpu_ips / 3600),
                    "cpu_core_hours": images * cpu_ms / 1e3 / 3600})
    return out
