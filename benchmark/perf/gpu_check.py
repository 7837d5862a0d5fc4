"""``make gpu-check``: the suite on a CUDA device, checked against the CPU and timed, in one JSON.

    python -m benchmark.perf.gpu_check --device cuda [--out results/gpu_check] [--record]
    python -m benchmark.perf.gpu_check --device cpu --quick      # what the tests run (seconds)

1. Agreement: every method (``conf/method``, but ``precomputed``, which reads maps from files)
   under the localization metric on the embedded synthetic val split, and every other metric with
   the methods of its demo, on ``limit`` images, once with ``device=cpu`` and once with
   ``--device``; the records are compared within the tolerances stated per column in
   ``perf/gpu_compare.py`` (discrete outcomes: a stated count of rows may differ).
2. Table 1's jobs timed (``perf/gpu_timing.py``): Grad-CAM with the 15 % box rule on VGG-16 and
   ResNet-50 (random weights) over ILSVRC-like JPEGs, images/s with the host and device split.
3. The occlusion engines (``perf/occlusion.py``) on the device.

Writes ``gpu_check.json`` under ``--out``; ``--record`` (CUDA only) copies it to
``results/recorded/gpu/`` for the docs' ``<!-- bench:gpu-check -->`` block. Exit 1 when an
agreement check fails. ``--quick``: toy models, Grad-CAM under 2 metrics, 2 images, 64 px, one thread (the test).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from benchmark.io import atomic_write_bytes
from benchmark.models.base import CONF_DIR
from benchmark.perf import gpu_compare, gpu_timing, occlusion, sections
from benchmark.runs import provenance

RECORDED = Path(__file__).resolve().parents[2] / "results" / "recorded" / "gpu"
SKIP_METHODS = ("precomputed",)
# (metric, model, dataset, methods or None for every method, extra overrides)
FULL = {"limit": 16, "jobs": [
    ("localization", "toy_gap", "synthetic_val", None, []),
    ("localization_cam", "toy_gap", "synthetic_val", ["cam", "grad_cam", "gradient"], ["batch_size=4"]),
    ("pointing", "toy_gap_multi", "synthetic_multi_test", ["center", "gradient", "deconvnet", "guided_backprop",
     "excitation_backprop", "contrastive_excitation_backprop", "cam", "grad_cam"], []),
    ("pointing_modified", "toy_gap_multi", "synthetic_multi_test", ["grad_cam", "contrastive_excitation_backprop"], []),
    ("occlusion_correlation", "toy_gap", "synthetic_val", ["gradient", "grad_cam", "guided_grad_cam"],
     ["metric.options.patch=11", "metric.options.stride=4"])],
    "timing": {"models": ("vgg16", "resnet50"), "images": 64, "batch": 32, "size": 224},
    "engines": {"models": ("vgg16", "resnet50"), "patch": 35, "strides": (14, 8), "size": 224, "budget_s": 60.0,
                "rounds": (3, 5)}}
QUICK = {"limit": 2, "jobs": [("localization", "toy_gap", "synthetic_val", ["grad_cam"], []),
                              ("pointing", "toy_gap_multi", "synthetic_multi_test", ["grad_cam"], [])],
         "timing": {"models": ("toy_vgg",), "images": 2, "batch": 2, "size": 64},
         "engines": {"models": ("toy_vgg",), "patch": 15, "strides": (8,), "size": 64, "budget_s": 1.0, "rounds": (1, 1)}}


def every_method() -> list[str]:
    """The methods of ``conf/method`` that run on a model alone (all but ``SKIP_METHODS``)."""
    return sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml") if p.stem not in SKIP_METHODS)


def _records(overrides: list[str], results: Path, device: str) -> tuple[pd.DataFrame | None, str]:
    from hydra import compose

    from benchmark.evaluate import evaluate
    import benchmark.run  # noqa: F401  (the config schemas and resolvers)

    cfg = compose("config", overrides=[*overrides, f"device={device}", f"paths.results={results}", "progress=false",
                                       "experiment_name=gpu_check"])
    summary = evaluate(cfg)
    path = Path(summary["run_dir"]) / "records.parquet"
    return (pd.read_parquet(path) if path.is_file() else None), summary.get("status", "?")


def agreement(plan: dict, device: str, work: Path) -> list[dict]:
    """One row per (metric, method): the CPU and ``device`` records compared (``gpu_compare``)."""
    from hydra import initialize_config_dir

    rows = []
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for metric, model, dataset, methods, extra in plan["jobs"]:
            for method in methods or every_method():
                over = [f"model={model}", f"method={method}", f"metric={metric}", f"dataset={dataset}",
                        f"dataset.limit={plan['limit']}", *extra]
                row = {"metric": metric, "model": model, "method": method}
                try:
                    ref, status = _records(over, work / "cpu", "cpu")
                    other, other_status = _records(over, work / device, device)
                except Exception as err:  # noqa: BLE001  (one job's failure is reported, the others still run)
                    rows.append({**row, "ok": False, "error": f"{type(err).__name__}: {err}"[:500]})
                    print(f"gpu-check {metric} {model} {method}: FAILED ({rows[-1]['error']})", flush=True)
                    continue
                row["status"] = status
                if ref is None or other is None:  # not applicable (e.g. CAM on a model without a GAP head)
                    row.update(ok=status == other_status, rows=0, columns=[])
                else:
                    row.update(gpu_compare.compare_records(ref, other))
                rows.append(row)
                print(f"gpu-check {metric} {model} {method}: {'ok' if row['ok'] else 'DIFFERS'}", flush=True)
    return rows


def run(plan: dict, device: torch.device, out: Path) -> dict:
    """Every part of the check; writes and returns the JSON document."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        agree = agreement(plan, device.type, Path(tmp))
    timing = [gpu_timing.table1_job(name, device, **{k: v for k, v in plan["timing"].items() if k != "models"})
              for name in plan["timing"]["models"]]
    eng = []
    for name in plan["engines"]["models"]:
        net, _ = sections.model(name, device)
        e = plan["engines"]
        rows, n = occlusion.engines(name, net, device, e["budget_s"], e["rounds"], e["patch"], e["strides"], e["size"])
        eng += [{k: r[k] for k in ("model", "stride", "rounds", "captum_maps_per_s", "plain_maps_per_s",
                                   "incremental_maps_per_s", "incremental_vs_captum", "incremental_vs_plain",
                                   "max_diff_rel")} for r in rows]
    doc = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": provenance.device_description(
        str(device)), "torch": torch.__version__, "git": provenance.git_state(), "limit": plan["limit"],
           "tolerances": {"discrete_share": gpu_compare.DISCRETE_SHARE, "exact": list(gpu_compare.EXACT),
                          "float": gpu_compare.FLOAT_TOLERANCES, "default_float": gpu_compare.DEFAULT_FLOAT},
           "agreement": agree, "table1": timing, "engines": eng, "ok": all(r["ok"] for r in agree)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "gpu_check.json", json.dumps(doc, indent=2, default=str).encode())
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="toy models, 2 images, 64 px: the test's settings")
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check"))
    parser.add_argument("--record", action="store_true", help="copy the JSON to results/recorded/gpu/ (CUDA only)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build (the check runs on CPU with "
                     "--device cpu, as the tests do)")
    if args.record and (args.device != "cuda" or args.quick):
        parser.error("--record keeps a full check on a CUDA device only")
    threads = torch.get_num_threads()
    if args.quick:
        torch.set_num_threads(1)  # tiny inputs: one thread, as bench --quick (restored after)
    try:
        doc = run(QUICK if args.quick else FULL, torch.device(args.device), args.out)
    finally:
        torch.set_num_threads(threads)
    failed = [f"{r['metric']}/{r['method']}" for r in doc["agreement"] if not r["ok"]]
    print(f"gpu-check: {len(doc['agreement']) - len(failed)} of {len(doc['agreement'])} jobs agree with the CPU"
          + (f"; differ: {', '.join(failed)}" if failed else "") + f"; {args.out / 'gpu_check.json'}", flush=True)
    if args.record and not failed:
        RECORDED.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "gpu_check.json", RECORDED / "gpu_check.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
