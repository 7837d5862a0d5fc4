"""The recorded sections of ``benchmark.perf``: what ``--sections``, ``--verify`` and the docs share.

A ``Section`` is a part of the bench that runs alone (``python -m benchmark.perf --sections NAME``),
is recorded for the docs (``results/recorded/bench/<stem>.csv``) and is checked by ``--verify``.
It names the CSV ``stem`` of its recorded table, the ``keys`` naming one row (model, stride, ...),
its ``ratios`` (each column ``R`` with ``R_min`` and ``R_max``: the median and extremes of the
per-round ratios, ``policy.ratio_stats``), the prefix of the run notes that belong to it, and
``run(cfg, device, budget_s, rounds, notes) -> {stem: rows, ...}``. A new section is a module with
such a function and one entry in ``SECTIONS`` below.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable

import torch

from benchmark.models import build_model
from benchmark.perf import compare, ecosystem, occlusion, pipeline, report

TOYS = ("toy_gap", "toy_vgg")  # built with weights="random" (no training run on first use)


@dataclass(frozen=True)
class Section:
    """One recorded section: its CSV stem, row keys, checked ratios, note prefix and runner."""

    name: str
    stem: str
    keys: tuple[str, ...]
    ratios: tuple[str, ...]
    note_prefix: str
    run: Callable[[dict, torch.device, float, tuple[int, int], list], dict[str, list[dict]]]


def say(text: str) -> None:
    print(text, flush=True)


def model(name: str, device, seed: int = 0):
    """``(model, info)`` with seeded random weights (the same in every run, so agreement figures repeat)."""
    torch.manual_seed(seed)
    m, info = build_model(name, weights="random" if name in TOYS else None)
    return m.to(device), info


def batch(info, cfg: dict, device, seed: int = 0):
    """Seeded random images ``[B, 3, S, S]`` and class ids ``[B, K]`` of the run's settings."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"], generator=g).to(device)
    ids = torch.randint(0, info.num_classes, (cfg["batch"], cfg["k"]), generator=g).to(device)
    return images, ids


def engines_one(name: str, net, cfg: dict, device, budget_s: float, rounds, out_rows: list, notes: list) -> None:
    """Occlusion maps/s of the plain and incremental engines and Captum on ``name`` (``perf/occlusion.py``)."""
    eng = cfg["engines"]
    if name not in eng["models"]:
        return
    r, n = occlusion.engines(name, net, device, cfg["budget"]["engines"] * budget_s / len(eng["models"]),
                             rounds, eng["patch"], eng["strides"], eng["size"])
    out_rows += r
    notes += n
    say(report.table(r, occlusion.COLUMNS, f"\nOcclusion engines, {name}, patch {eng['patch']}, 1 image (maps/s from "
                     "timed window batches; ratios: median of per-round ratios, min and max in _min/_max columns; "
                     "bounds from FLOP counts)"))
    say("\n".join(n))


def ecosystem_one(name, net, info, images, ids, cfg, device, budget_s, rounds, rows, notes, eco_rows) -> None:
    """The adapters against their libraries called directly, 2 images (``perf/ecosystem.py``)."""
    r, eco, eco_notes = ecosystem.run(name, net, info, images[:2], ids[:2], device,
                                      cfg["budget"]["ecosystem"] * budget_s, rounds)
    rows += r
    notes += eco_notes
    eco_rows.extend(eco)
    say(report.table(eco, list(eco[0]) if eco else ["family"], f"\nEcosystem adapters vs the library called "
                     f"directly, {name}, 2 images x {ids.shape[1]} classes (maps/s; ratio 1 = no overhead)"))


def gradcam_ratios(rows: list[dict], checks: list[dict], cfg: dict) -> list[dict]:
    """The Grad-CAM ratios of ``report.ratios`` (median of per-round ratios) with ``value_min``/``value_max``."""
    rounds = {}
    for r in rows:
        if r["section"] == "grad_cam":
            rounds[r["model"]] = min(rounds.get(r["model"], r["rounds"]), r["rounds"])
    return [{**r, "value_min": r["min"], "value_max": r["max"], "rounds": rounds[r["model"]]}
            for r in report.ratios(rows, cfg["k"], with_targets=cfg["targets"], checks=checks)
            if r["ratio"].startswith("Grad-CAM")]


def _gradcam(cfg, device, budget_s, rounds, notes) -> dict:
    rows, checks = [], []
    for name in cfg["models"]:
        net, info = model(name, device)
        images, ids = batch(info, cfg, device)
        r, c = compare.grad_cam(name, net, info, images, ids, device, cfg["budget"][name] * budget_s, rounds)
        rows, checks = rows + r, checks + c
        del net
        gc.collect()
    ratios = gradcam_ratios(rows, checks, cfg)
    say(report.table(ratios, ["model", "ratio", "value", "value_min", "value_max", "target", "maps_ok", "holds"],
                     "\nGrad-CAM ratios (median of per-round ratios, min and max)"))
    return {"gradcam_ratios": ratios, "gradcam_throughput": rows, "gradcam_agreement": checks}


def _engines(cfg, device, budget_s, rounds, notes) -> dict:
    rows: list[dict] = []
    for name in cfg["engines"]["models"]:
        net, _ = model(name, device)
        engines_one(name, net, cfg, device, budget_s, rounds, rows, notes)
        del net
        gc.collect()
    return {"occlusion_engines": rows}


def _ecosystem(cfg, device, budget_s, rounds, notes) -> dict:
    net, info = model(cfg["pixel_model"], device)
    images, ids = batch(info, cfg, device)
    throughput, eco = [], []
    ecosystem_one(cfg["pixel_model"], net, info, images, ids, cfg, device, budget_s, rounds, throughput, notes, eco)
    return {"ecosystem": eco, "ecosystem_throughput": throughput}


@torch.no_grad()
def forward_ips(name: str, device, batch: int = 32, size: int = 224, calls: int = 5) -> float:
    """Forward images/s of ``name`` (random weights) on ``device``: the median of ``calls`` timed batches."""
    import time

    from benchmark.perf.timing import sync

    net, _ = model(name, device)
    x = torch.randn(batch, 3, size, size, device=device)
    net(x)
    sync(device)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        net(x)
        sync(device)
        times.append(time.perf_counter() - start)
    return batch / sorted(times)[len(times) // 2]


def _pipeline(cfg, device, budget_s, rounds, notes) -> dict:
    measured = {m: forward_ips(m, device) for m in cfg["pipeline"]["models"]} if device.type == "cuda" else None
    rows = pipeline.run(cfg["pipeline"], budget_s * cfg["budget"]["pipeline"], rounds, notes, measured)
    say(report.table(rows, pipeline.COLUMNS, "\nHost pipeline at ILSVRC-like sizes (per core; loader: images/s "
                     "with num_workers N; cores per GPU at the stated device rate)"))
    return {"pipeline": rows}


SECTIONS = {s.name: s for s in (
    Section("gradcam", "gradcam_ratios", ("model", "ratio"), ("value",), "grad-cam", _gradcam),
    Section("engines", "occlusion_engines", ("model", "stride"),
            ("plain_vs_captum", "incremental_vs_captum", "incremental_vs_plain"), "occlusion engines", _engines),
    Section("ecosystem", "ecosystem", ("model", "family"), ("adapter_over_library",), "ecosystem", _ecosystem),
    Section("pipeline", "pipeline", ("step",), ("ratio",), "pipeline", _pipeline),
)}
