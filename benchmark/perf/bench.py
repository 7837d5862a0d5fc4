"""``make bench``: this suite's fast paths measured against the tools users would pick instead.

    python -m benchmark.perf [--device cpu|cuda] [--quick] [--out results/bench] [--budget 480]
    python -m benchmark.perf --sections engines,ecosystem,pipeline [--quiet-only]   # the recorded sections
    python -m benchmark.perf --verify                                               # do the recorded ratios reproduce?

One process, one model object per comparison, the same batch and classes for every contender;
a warm-up round, then interleaved rounds (median, min/max, quartiles) within a time budget.
Sections: Grad-CAM (ours, pytorch-grad-cam, Captum ``LayerGradCam``, a plain forward, channels-last +
folded-BatchNorm and low-precision-trunk variants) on VGG-16 and ResNet-50 with random weights; guided backprop and
gradient vs Captum; occlusion vs Captum; per-image CPU work (decode, preprocessing, localization
post-processing); a long run checking memory growth and that no hook or autograd graph survives;
and the recorded sections (``perf/sections.py``): the occlusion engines, the pytorch-grad-cam and Captum
adapters against their libraries called directly, and the host pipeline at ILSVRC-like sizes; and
wall-time estimates of the paper's tables derived from these numbers. Writes CSV files under
``--out`` and prints every table. ``--quick`` runs the same code on tiny inputs (a smoke test).
``run.json`` records the machine (CPU, cores, load average at start and end, the other processes'
CPU use during each section, quiet or loaded: ``perf/policy.py``), the versions, the date and the commit; the recorded sections of
a run go to the docs with ``python -m benchmark.perf.recorded`` (``make bench-record``), and
``--verify`` (``perf/verify.py``, ``make bench-verify``) checks them against a fresh run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import benchmark  # noqa: F401  (makes torchvision importable on a CPU-only torch)
from benchmark.io import atomic_write_bytes
from benchmark.perf import compare, estimates, memory, metrics_section, pipeline, policy, post, report, sections, verify
from benchmark.runs import provenance

FULL = {"models": ("resnet50", "vgg16"), "batch": 8, "size": 224, "k": 5, "rounds": (2, 6),
        "recorded_rounds": (policy.MIN_ROUNDS, policy.MAX_ROUNDS),  # the sections the docs quote
        "pipeline": {"images": 32, "models": ("vgg16", "resnet50"), "max_workers": None},
        "budget": {"resnet50": 0.12, "vgg16": 0.30, "pixel": 0.15, "occlusion": 0.08, "ecosystem": 0.06,
                   "engines": 0.25, "pipeline": 0.06, "metrics": 0.06},
        "pixel_model": "resnet50", "occlusion": {"model": "resnet50", "batch": 2, "patch": 35, "stride": 28},
        "engines": {"models": ("vgg16", "resnet50"), "patch": 35, "strides": (14, 8), "size": 224},
        "post_images": 64, "post_rounds": 3,
        "memory": {"model": "resnet50", "images": 2000, "batch": 8, "size": 48}, "targets": True}
# quick: the toy models with random weights (a GAP head like ResNet-50's, an FC head like VGG-16's)
QUICK = {"models": ("toy_gap", "toy_vgg"), "batch": 2, "size": 64, "k": 2, "rounds": (1, 1), "recorded_rounds": (1, 1),
         "pipeline": {"images": 4, "models": ("vgg16",), "max_workers": 2},
         "budget": {"toy_gap": 0.3, "toy_vgg": 0.3, "pixel": 0.2, "occlusion": 0.1, "ecosystem": 0.1,
                    "engines": 0.1, "pipeline": 0.1, "metrics": 0.1},
         "pixel_model": "toy_gap", "occlusion": {"model": "toy_gap", "batch": 1, "patch": 15, "stride": 8},
         "engines": {"models": ("toy_vgg",), "patch": 15, "strides": (8,), "size": 64},
         "post_images": 4, "post_rounds": 1,
         "memory": {"model": "toy_gap", "images": 32, "batch": 8, "size": 64}, "targets": False}
THROUGHPUT_COLUMNS = ["model", "contender", "classes", "maps_per_call", "rounds", "median_s", "q1_s", "q3_s",
                      "min_s", "max_s", "maps_per_s", "peak_extra_mb"]
_say, _model, _batch = sections.say, sections.model, sections.batch


def _model_sections(name: str, cfg: dict, device, budget_s: float, rows: list, checks: list, notes: list,
                    eco_rows: list, engine_rows: list, metric_rows: list) -> None:
    """Grad-CAM on ``name``; pixel-space and occlusion sections too where ``cfg`` names this model."""
    model, info = _model(name, device)
    images, ids = _batch(info, cfg, device)
    r, c = compare.grad_cam(name, model, info, images, ids, device, cfg["budget"][name] * budget_s,
                            cfg["recorded_rounds"])  # a recorded section (sections.py: gradcam)
    rows += r
    checks += c
    _say(report.table(r, THROUGHPUT_COLUMNS, f"\nGrad-CAM, {name}, batch {cfg['batch']}, {cfg['size']}px"))
    if name == cfg["pixel_model"]:
        r, c = compare.pixel(name, model, info, images, ids, device, cfg["budget"]["pixel"] * budget_s, cfg["rounds"])
        rows += r
        checks += c
        _say(report.table(r, THROUGHPUT_COLUMNS, f"\nGuided backprop and gradient, {name}"))
        sections.ecosystem_one(name, model, info, images, ids, cfg, device, budget_s, cfg["recorded_rounds"], rows,
                               notes, eco_rows)
        r, ratios, metric_notes = metrics_section.section(name, model, info, images[:2], ids[:2], device,
                                                          cfg["budget"]["metrics"] * budget_s, cfg["rounds"])
        rows += r
        notes += metric_notes
        metric_rows.extend(ratios)
        _say(report.table(ratios, list(ratios[0]) if ratios else ["metric"], f"\nPerturbation metrics, native vs "
                          f"Quantus, {name}, 2 images (images/s; native_over_quantus > 1: native is faster)"))
    occ = cfg["occlusion"]
    if name == occ["model"]:
        r, note = compare.occlusion(name, model, info, images[:occ["batch"]], ids[:occ["batch"]], device,
                                    cfg["budget"]["occlusion"] * budget_s, cfg["rounds"], occ["patch"], occ["stride"])
        rows += r
        notes.append(note)
        _say(note)
        if r:
            _say(report.table(r, THROUGHPUT_COLUMNS + ["windows_per_image", "forward_images_per_s"],
                              f"\nOcclusion, {name}, {occ['batch']} images"))
    sections.engines_one(name, model, cfg, device, budget_s, cfg["recorded_rounds"], engine_rows, notes)


def _memory_section(cfg: dict, device) -> tuple[list[dict], list[dict]]:
    """The long run through Grad-CAM and guided backprop, and its pass/fail checks."""
    mem = cfg["memory"]
    model, info = _model(mem["model"], device)
    rows = [memory.long_run(mem["model"], model, info, method, mem["images"], mem["batch"], mem["size"],
                                   device=device) for method in ("grad_cam", "guided_backprop")]
    _say(report.table(rows, ["model", "method", "images", "input_size", "seconds", "images_per_s",
                             "rss_after_warmup_mb", "rss_end_mb", "rss_growth_mb", "peak_rss_mb",
                             "saved_tensors_seen", "saved_tensors_surviving", "hooks_left", "live_graph_tensors"],
                      "\nLong run: memory and leaks"))
    checks = report.memory_checks(rows)
    _say(report.table(checks, ["check", "value", "holds"], "\nLong-run checks"))
    return rows, checks


def run(cfg: dict, device: torch.device, out: Path, budget_s: float, gpus: int) -> dict:
    """Run every section; write CSVs under ``out``; return the tables as lists of rows."""
    rows, checks, notes, eco_rows, engine_rows, metric_rows = [], [], [], [], [], []
    loads, others, meter = [], [], policy.CpuMeter()  # after each model's sections: load average, others' cores
    for name in cfg["models"]:
        _model_sections(name, cfg, device, budget_s, rows, checks, notes, eco_rows, engine_rows, metric_rows)
        gc.collect()
        loads.append(os.getloadavg()[0])
        others.append(meter.other_cores())
    _say(report.table(checks, ["section", "model", "compared", "max_normalized_diff", "min_pearson", "max_rel_diff"],
                      "\nAgreement of maps (ours vs the other tool, same inputs and classes)"))
    post_rows = post.run(cfg["post_images"], cfg["post_rounds"])
    _say(report.table(post_rows, ["step", "images", "median_ms", "q1_ms", "q3_ms", "images_per_s", "count"],
                      "\nPer-image CPU work at ILSVRC-like sizes (one thread)"))
    measured = None
    if device.type == "cuda":  # forward images/s measured on the GPU replace the assumption
        measured = {r["model"]: r["maps_per_s"] for r in rows
                    if r["section"] == "grad_cam" and r["contender"] == "forward"}
    pipeline_rows = pipeline.run(cfg["pipeline"], cfg["budget"]["pipeline"] * budget_s, cfg["recorded_rounds"], notes,
                                 measured)
    _say(report.table(pipeline_rows, pipeline.COLUMNS, "\nHost pipeline at ILSVRC-like sizes (benchmark/perf/pipeline.py)"))
    memory_rows, mem_checks = _memory_section(cfg, device)
    ratios = report.ratios(rows, cfg["k"], with_targets=cfg["targets"], checks=checks)  # targets: full setting
    _say(report.table(ratios, ["model", "ratio", "value", "min", "max", "best", "target", "maps_ok", "holds"],
                      "\nRatios: throughput ours/theirs per map (or cost / forward); value = median of per-round "
                      "ratios [min, max over rounds]; best = ratio of the fastest calls; targets judged on value; "
                      "maps_ok: a speed option's maps met its stated tolerance (agreement table)"))
    est = estimates.estimates(rows, post_rows, cfg["k"], gpus, measured, engine_rows=engine_rows)
    _say(report.table(est, ["experiment", "model", "method", "images", "maps_per_image", "forward_equiv_per_image",
                            "forward_ips", "forward_ips_source", "time_1_gpu", f"time_{gpus}_gpus", "time_this_cpu",
                            "cpu_core_hours"],
                      "\nEstimated wall time of the paper's evaluations (see benchmark/perf/estimates.py)"))
    tables = {"throughput": rows, "agreement": checks, "post": post_rows, "memory": memory_rows,
              "memory_checks": mem_checks, "ratios": ratios, "estimates": est, "ecosystem": eco_rows,
              "occlusion_engines": engine_rows, "pipeline": pipeline_rows, "metrics": metric_rows,
              "gradcam_ratios": sections.gradcam_ratios(rows, checks, cfg)}
    for name, table_rows in tables.items():
        report.write_csv(out / f"{name}.csv", table_rows)
    return {**tables, "notes": notes, "loads": loads, "others": others}


def run_sections(cfg: dict, device: torch.device, out: Path, budget_s: float, names, rounds=None) -> dict:
    """Only the named recorded sections (``sections.SECTIONS``), with the same settings and budget shares as
    in a full run (``rounds``: default the recording's); writes their CSVs under ``out``."""
    tables, notes, loads, others, meter = {}, [], [], [], policy.CpuMeter()
    for name in names:
        tables.update(sections.SECTIONS[name].run(cfg, device, budget_s, rounds or cfg["recorded_rounds"], notes))
        gc.collect()
        loads.append(os.getloadavg()[0])  # recorded; it counts the bench's own threads
        others.append(meter.other_cores())  # the other processes' CPU use during the section: the verdict
    for name, table_rows in tables.items():
        report.write_csv(out / f"{name}.csv", table_rows)
    return {**tables, "notes": notes, "loads": loads, "others": others}


def _load_check(args, limit: float) -> int | None:
    """Exit status 3 (with the reason) when ``--quiet-only`` and the load average is above ``limit``."""
    if not args.quiet_only:
        return None
    load = os.getloadavg()[0]
    if load > limit:
        _say(f"benchmark.perf: one-minute load average {load:.2f} is above {limit:.2f} ({policy.LOAD_PER_CORE:g} per "
             f"core, --max-load): not a quiet machine, nothing run; wait for the other work to end and run again")
        return 3
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one round: a smoke test of the harness")
    parser.add_argument("--out", default=None, type=Path, help="folder for the CSV files (default results/bench, "
                        "with --verify results/bench/verify)")
    parser.add_argument("--budget", type=float, default=None, help="seconds shared by the timed sections (default "
                        f"480, quick 20, --verify {verify.BUDGET_S:g}); rounds adapt to it above their minimum")
    parser.add_argument("--gpus", type=int, default=8, help="GPU count for the N-GPU wall-time estimates")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core; quick: 1)")
    parser.add_argument("--sections", default="all", help="comma-separated subset of the recorded sections: "
                        f"{', '.join(sections.SECTIONS)}; default all (with --verify: every recorded one)")
    parser.add_argument("--max-load", type=float, default=policy.load_limit(),
                        help="highest one-minute load average of a quiet run (default %(default).2f: "
                        f"{policy.LOAD_PER_CORE:g} per core); run.json says quiet or loaded")
    parser.add_argument("--max-other-cores", type=float, default=policy.other_cpu_limit(),
                        help="most cores the machine's other processes may use on average during a section of a "
                        f"quiet run (default %(default).2f: {policy.OTHER_CPU_PER_CORE:g} per core)")
    parser.add_argument("--quiet-only", action="store_true", help="refuse to start (exit 3) above --max-load")
    parser.add_argument("--verify", action="store_true", help="rerun the recorded sections at a small budget and "
                        "fail (exit 1) where a ratio leaves its recorded range widened by --tolerance")
    parser.add_argument("--tolerance", type=float, default=policy.VERIFY_TOLERANCE,
                        help="--verify: relative widening of each recorded [min, max] (default %(default)g)")
    args = parser.parse_args(argv)
    chosen = set(args.sections.split(","))
    if chosen != {"all"} and not chosen <= set(sections.SECTIONS):
        parser.error(f"--sections {args.sections!r}: expected 'all' or a comma-separated subset of {', '.join(sections.SECTIONS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    if args.verify and args.quick:
        parser.error("--verify reruns the recorded (full) settings; it does not combine with --quick")
    if (refused := _load_check(args, args.max_load)) is not None:
        return refused
    cfg = QUICK if args.quick else FULL
    budget = args.budget if args.budget is not None else (
        verify.BUDGET_S if args.verify else 20.0 if args.quick else 480.0)
    out = args.out or Path("results/bench/verify" if args.verify else "results/bench")
    device = torch.device(args.device)
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    start, load0, date = time.perf_counter(), os.getloadavg(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    git = provenance.git_state()  # the code that runs: taken before the run, edits during it do not count
    _say(f"benchmark.perf: {'verify' if args.verify else 'quick' if args.quick else 'full'} run on "
         f"{provenance.device_description(str(device))}, torch {torch.__version__}, load average {load0[0]:.2f}, "
         f"budget {budget:.0f} s")
    if args.verify:
        names = verify.recorded_sections(chosen)
        result = run_sections(cfg, device, out, budget, names, policy.VERIFY_ROUNDS)
    elif chosen == {"all"}:
        result = run(cfg, device, out, budget, args.gpus)
    else:
        result = run_sections(cfg, device, out, budget, [n for n in sections.SECTIONS if n in chosen])
    wall, load1 = time.perf_counter() - start, os.getloadavg()
    others = [c for c in result["others"] if c is not None]
    other_max = round(max(others), 3) if others else None
    meta = {"date": date, "wall_s": wall, "quick": args.quick, "verify": args.verify, "sections": sorted(chosen),
            "device": provenance.device_description(str(device)), "cpu_model": policy.cpu_model(),
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_start": load0,
            "load_avg_end": load1, "load_avg_between": result["loads"], "max_load": args.max_load,
            "other_cores_between": [None if c is None else round(c, 3) for c in result["others"]],
            "other_cores_max": other_max, "max_other_cores": args.max_other_cores,
            "load_state": policy.load_state(load0[0], args.max_load, other_max, args.max_other_cores),
            "rounds": list(policy.VERIFY_ROUNDS if args.verify else cfg["recorded_rounds"]), "budget_s": budget,
            "settings": cfg, "notes": result["notes"], "versions": provenance.versions(), "git": git}
    atomic_write_bytes(out / "run.json", json.dumps(meta, indent=2, default=str).encode())
    other_text = "not readable" if other_max is None else f"{other_max:.2f} cores at most"
    _say(f"\nwall time {wall:.0f} s; load average {load0[0]:.2f} at the start (limit {args.max_load:.2f}), "
         f"{load1[0]:.2f} at the end with this run's own threads; other processes' CPU use during a section: "
         f"{other_text} (limit {args.max_other_cores:.2f}): {meta['load_state']}; CSVs in {out}/")
    if args.verify:
        return verify.report_and_status(out, names, args.tolerance, meta["load_state"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
