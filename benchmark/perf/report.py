"""Ratios, targets, text tables and CSV files of ``benchmark.perf``.

A ratio is a throughput ratio (ours / theirs, higher is better) or a cost ratio (ours / forward,
lower is better), computed per interleaved round from paired samples and summarized by the median
over rounds with its min and max (``timing.paired_ratio``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from benchmark.perf.timing import paired_ratio
from benchmark.io import atomic_write_bytes

MEMORY_GROWTH_LIMIT_MB = 50.0


def _row(rows, section, model, contender):
    for r in rows:
        if r["section"] == section and r["model"] == model and r["contender"] == contender:
            return r
    return None


def _ratio(rows, section, model, slow, fast, name, target=None, higher=True):
    a, b = _row(rows, section, model, slow), _row(rows, section, model, fast)
    if a is None or b is None:
        return None
    per_a, per_b = (a["maps_per_call"], b["maps_per_call"]) if higher else (1, 1)
    # higher: throughput ratio per map (fast's maps/s over slow's); else: cost of ``slow`` per call
    # relative to ``fast``. ``best``: the same ratio between the fastest calls (load only adds time).
    r = paired_ratio(a["times"], b["times"], per_a, per_b)
    best = (min(a["times"]) / per_a) / (min(b["times"]) / per_b) if a["times"] and b["times"] else float("nan")
    holds = None
    if target is not None:
        holds = bool(r["ratio"] >= target) if higher else bool(r["ratio"] <= target)
    return {"ratio": name, "model": model, "value": r["ratio"], "min": r["ratio_min"], "max": r["ratio_max"],
            "best": best, "target": None if target is None else (">= " if higher else "<= ") + f"{target:g}",
            "holds": holds}


# (slow contender, fast contender, name, target, higher is better); ``{k}`` is the class count.
# "pytorch-grad-cam" is that tool as its README runs it (trainable parameters); "pytorch-grad-cam
# frozen" its cheapest set-up (frozen model, input requiring grad). Targets are set on the first.
_PGC = (("pytorch-grad-cam", "pytorch-grad-cam", 1), ("pytorch-grad-cam frozen", "pytorch-grad-cam (frozen model)", 0))
GRAD_CAM_RATIOS = [
    *((f"{c} k1", "ours k1", f"Grad-CAM 1 class: ours / {label}", 4 if t else None, True) for c, label, t in _PGC),
    *((f"{c} k{{k}}", "ours k{k}", f"Grad-CAM {{k}} classes: ours / {label}", 10 if t else None, True)
      for c, label, t in _PGC),
    ("captum k1", "ours k1", "Grad-CAM 1 class: ours / Captum LayerGradCam", 1, True),
    ("captum k{k}", "ours k{k}", "Grad-CAM {k} classes: ours / Captum LayerGradCam", 4, True),
    ("ours k{k}", "forward", "Grad-CAM {k} classes cost / plain forward", 1.2, False),
    ("ours k1", "forward", "Grad-CAM 1 class cost / plain forward", None, False),
    # the speed options against the same targets: "ours cl" = channels_last + fold_batchnorm ("cl+fold"),
    # "ours cl+amp" = those + trunk_precision=auto; their maps' agreement with float32 is in agreement.csv
    *((f"{c} k1", "ours cl k1", f"Grad-CAM 1 class: ours cl+fold / {label}", 4 if t else None, True)
      for c, label, t in _PGC),
    *((f"{c} k{{k}}", "ours cl k{k}", f"Grad-CAM {{k}} classes: ours cl+fold / {label}", 10 if t else None, True)
      for c, label, t in _PGC),
    ("captum k1", "ours cl k1", "Grad-CAM 1 class: ours cl+fold / Captum LayerGradCam", 1, True),
    ("captum k{k}", "ours cl k{k}", "Grad-CAM {k} classes: ours cl+fold / Captum LayerGradCam", 4, True),
    *((f"{c} k1", "ours cl+amp k1", f"Grad-CAM 1 class: ours cl+amp / {label} (float32)", 4 if t else None, True)
      for c, label, t in _PGC),
    *((f"{c} k{{k}}", "ours cl+amp k{k}", f"Grad-CAM {{k}} classes: ours cl+amp / {label} (float32)",
       10 if t else None, True) for c, label, t in _PGC),
    ("ours k{k}", "ours cl k{k}", "Grad-CAM {k} classes: cl+fold / float32", None, True),
    ("ours k{k}", "ours cl+amp k{k}", "Grad-CAM {k} classes: cl+fold + low-precision trunk / float32", None, True),
]


# the stated tolerances of the speed options (benchmark/methods/_fast.py), checked on agreement.csv
# (agreement column, limit): channels-last + folded BatchNorm max |diff| <= 1e-4 of the map maximum; bfloat16 trunk
# per-map Pearson >= 0.98
TOLERANCES = {"ours cl": ("max_rel_diff", 1e-4), "ours cl+amp": ("min_pearson", 0.98)}


def _within_tolerance(checks: list[dict], model: str, tool: str) -> bool | None:
    """Whether the agreement rows of ``tool`` on ``model`` meet its stated tolerance (None: not measured)."""
    if tool not in TOLERANCES:
        return None
    column, limit = TOLERANCES[tool]
    values = [c[column] for c in checks if c["model"] == model and c["compared"] == tool and c.get(column) is not None]
    if not values:
        return None
    return all(v >= limit for v in values) if column == "min_pearson" else all(v <= limit for v in values)


def ratios(rows: list[dict], k: int, with_targets: bool = True, checks: list[dict] | None = None) -> list[dict]:
    """Every ratio the issue asks for, with its target where one is set.

    A speed option's ratio ``holds`` only when its maps also met the option's stated tolerance in
    ``checks`` (the agreement rows); ``maps_ok`` says whether they did.
    """
    t = (lambda v: v) if with_targets else (lambda v: None)
    out = []
    for model in sorted({r["model"] for r in rows if r["section"] == "grad_cam"}):
        for slow, fast, name, target, higher in GRAD_CAM_RATIOS:
            row = _ratio(rows, "grad_cam", model, slow.format(k=k), fast.format(k=k), name.format(k=k),
                         t(target), higher)
            tool = fast.rsplit(" k", 1)[0]
            if row is not None and tool in TOLERANCES:
                row["maps_ok"] = _within_tolerance(checks or [], model, tool)
                if row["holds"] is not None:
                    row["holds"] = bool(row["holds"] and row["maps_ok"])
            out.append(row)
    for model in sorted({r["model"] for r in rows if r["section"] == "pixel"}):
        for tag, name in (("guided", "guided backprop"), ("saliency", "gradient")):
            for kk in (1, k):
                out.append(_ratio(rows, "pixel", model, f"captum {tag} k{kk}", f"ours {tag} k{kk}",
                                  f"{name} {kk} class{'es' if kk > 1 else ''}: ours / Captum"))
    for model in sorted({r["model"] for r in rows if r["section"] == "occlusion"}):
        out.append(_ratio(rows, "occlusion", model, "captum occlusion k1", "ours occlusion k1",
                          "occlusion 1 class: ours / Captum Occlusion (maps/s)", t(1)))
        out.append(_ratio(rows, "occlusion", model, "captum occlusion k1", "ours occlusion mb8 k1",
                          "occlusion 1 class: ours with max_batch=8 / Captum Occlusion (maps/s)"))
    return [r for r in out if r is not None]


def memory_checks(rows: list[dict]) -> list[dict]:
    """Pass/fail lines of the long run: growth under the limit, nothing left behind."""
    out = []
    for r in rows:
        what = f"{r['method']} on {r['model']} ({r['images']} images)"
        out += [{"check": f"{what}: RSS growth < {MEMORY_GROWTH_LIMIT_MB:g} MB", "value": r["rss_growth_mb"],
                 "holds": r["rss_growth_mb"] < MEMORY_GROWTH_LIMIT_MB},
                {"check": f"{what}: saved tensors surviving their batch = 0", "value": r["saved_tensors_surviving"],
                 "holds": r["saved_tensors_surviving"] == 0 and r["saved_tensors_seen"] > 0},
                {"check": f"{what}: module hooks left = 0", "value": r["hooks_left"], "holds": r["hooks_left"] == 0},
                {"check": f"{what}: live tensors with grad_fn/requires_grad = 0", "value": r["live_graph_tensors"],
                 "holds": r["live_graph_tensors"] == 0},
                {"check": f"{what}: modes, grad mode, autocast, param grads restored",
                 "value": r["function_modes_left"], "holds": bool(r["function_modes_left"] == 0 and r["grad_mode_restored"]
                                                                  and r["autocast_off"] and r["params_grad_none"])}]
    return out


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table(rows: list[dict], columns: list[str], title: str) -> str:
    """A fixed-width text table of ``columns`` (missing values as ``-``)."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows as CSV atomically (raw per-round seconds joined by ``;`` in ``times_s``)."""
    flat = []
    for r in rows:
        r = dict(r)
        if "times" in r:
            r["times_s"] = ";".join(f"{t:.6f}" for t in r.pop("times"))
        flat.append(r)
    buf = io.StringIO()
    pd.DataFrame(flat).to_csv(buf, index=False)
    atomic_write_bytes(Path(path), buf.getvalue().encode())
