"""Records -> tables, the generic part: ``TableSpec``, ``collect``, ``build``, ``wilson`` and the
writers; ``python -m benchmark.report`` (``__main__.py``) reads every ``summary.json`` under a
results root (merging sharded runs first) and writes ``results/tables/<name>.md|.csv|.tex``.
The paper's specs live in ``specs.py``, which imports this module (never the reverse).

Each paper table is a pandas frame with our number, the published number and the difference side
by side, the sample count, and a 95 % interval where the metric has one (a Wilson interval for
error rates; the bootstrap interval of the occlusion correlation). Tables are built from the
summaries (themselves built from the records), never from printed output; a missing cell stays
missing, and a published row without a run of ours is kept, with our cells empty.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes
from benchmark.paths import REPO_ROOT

REFERENCE_DIR = REPO_ROOT / "results" / "reference"
METHOD_ORDER = ["center", "gradient", "deconvnet", "guided_backprop", "excitation_backprop",
                "contrastive_excitation_backprop", "cam", "grad_cam", "guided_grad_cam", "occlusion"]
LOC_COLUMNS = {"cls_err_top1": "cls err top-1", "cls_err_top5": "cls err top-5",
               "loc_err_top1": "loc err top-1", "loc_err_top5": "loc err top-5",
               "gt_known_loc_acc": "GT-known loc acc"}


@dataclass
class TableSpec:
    """One output table: which runs feed it, which columns, and which published numbers."""

    name: str
    title: str
    experiments: tuple[str, ...]
    metric: str | tuple[str, ...]
    columns: dict[str, str]
    reference: str | None = None
    keys: tuple[str, ...] = ("model", "method")
    compare: tuple[str, ...] = ()
    counts: dict[str, str] = field(default_factory=lambda: {"n_images": "n images", "n_degenerate": "degenerate"})
    interval: str | None = "loc_err_top1"
    notes: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # protocol columns shown after the keys (e.g. normalization)


PROTOCOL_COLUMNS = ("normalization", "crops")  # protocol settings collect() adds beside the figures


def collect(results_root: Path, experiment: str | None = None) -> pd.DataFrame:
    """One row per run summary (sharded runs are read through their merged summary)."""
    rows = []
    runs = Path(results_root) / "runs"
    pattern = f"{experiment}/**/summary.json" if experiment else "**/summary.json"
    for path in sorted(runs.glob(pattern)):
        if any(part.startswith("shard-") for part in path.parent.parts):
            continue
        summary = json.loads(path.read_text())
        row = {"experiment": summary.get("config", {}).get("experiment_name"), "model": summary.get("model"),
               "method": summary.get("method"), "dataset": summary.get("dataset"),
               "metric": summary.get("metric"), "status": summary.get("status"), "path": str(path.parent),
               "normalization": summary.get("protocol", {}).get("normalization"),
               "crops": summary.get("protocol", {}).get("crops", 1)}
        row.update(summary.get("metrics", {}))
        rows.append(row)
    return pd.DataFrame(rows, columns=["experiment", "model", "method", "dataset", "metric", "status", "path"]
                        if not rows else None)


def _method_key(series: pd.Series) -> pd.Series:
    def key(name):
        base = str(name).split("@")[0]
        return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), str(name))

    return series.map(key)


def wilson(rate_percent: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval (in %) of a rate given in %."""
    if not n or rate_percent is None or (isinstance(rate_percent, float) and math.isnan(rate_percent)):
        return float("nan"), float("nan")
    p = rate_percent / 100.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def build(spec: TableSpec, frame: pd.DataFrame, reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """The table of ``spec``: our columns, published columns and differences, counts, interval."""
    metrics = (spec.metric,) if isinstance(spec.metric, str) else spec.metric
    ours = frame[frame["experiment"].isin(spec.experiments) & frame["metric"].isin(metrics)
                 & (frame["status"] == "finished")] if len(frame) else frame
    keep = [*dict.fromkeys(["model", "method", "dataset", *spec.keys, *spec.extra])]
    data = {c: ours[c] if c in ours else pd.Series(dtype=float) for c in [*spec.columns, *spec.counts]}
    table = pd.concat([ours[keep].reset_index(drop=True) if len(ours) else pd.DataFrame(columns=keep),
                       pd.DataFrame(data).reset_index(drop=True)], axis=1)
    if spec.interval and spec.interval in table and "n_images" in table:
        bounds = [wilson(r, n) for r, n in zip(table[spec.interval], table["n_images"])]
        table[f"{spec.interval} 95% CI"] = [f"[{lo:.1f}, {hi:.1f}]" if not math.isnan(lo) else None for lo, hi in bounds]
    devkit = [c for c in spec.compare if f"{c}_no_blacklist" in ours and ours[f"{c}_no_blacklist"].notna().any()]
    for c in devkit:  # blacklist flagged: the devkit figure (blacklisted images removed) is the one compared
        table[f"{c} devkit"] = ours[f"{c}_no_blacklist"].fillna(ours[c]).reset_index(drop=True)
    if spec.reference:
        ref = pd.read_csv(reference_dir / spec.reference)
        ref_cols = [c for c in spec.compare if c in ref]
        card = ["card"] if "card" in ref else []
        ref = ref[[*spec.keys, *ref_cols, *card]].rename(columns={c: f"{c} (paper)" for c in ref_cols})
        table = table.merge(ref, on=list(spec.keys), how="outer")
        for c in ref_cols:
            ours_c = f"{c} devkit" if c in devkit else c
            table[f"{c} Δ"] = table[ours_c] - table[f"{c} (paper)"] if ours_c in table else float("nan")
    order = ["model", *spec.extra, "method"]
    table = table.sort_values(order, key=lambda s: _method_key(s) if s.name == "method" else s.astype(str))
    for c in spec.counts:  # counts print as integers (a missing one as a dash)
        if c in table:
            table[c] = pd.to_numeric(table[c], errors="coerce").round().astype("Int64")
    labels = {**spec.columns, **spec.counts}
    renamed = {c: labels.get(c, c) for c in table.columns}
    for c in spec.compare:
        renamed[f"{c} (paper)"] = f"{labels[c]} (paper)"
        renamed[f"{c} Δ"] = f"{labels[c]} Δ"
        renamed[f"{c} devkit"] = f"{labels[c]} devkit"
    if spec.interval in labels:
        renamed[f"{spec.interval} 95% CI"] = f"{labels[spec.interval]} 95% CI"
    return table.rename(columns=renamed).reset_index(drop=True)


BLACKLIST_NOTE = ("'devkit' columns: blacklisted images removed from the denominator, as the ILSVRC devkit and "
                  "CAM's evaluation count them; the published numbers are compared with these.")


def table_notes(spec: TableSpec, table: pd.DataFrame) -> list[str]:
    """The spec's notes, the blacklist note when a devkit column is shown, and one line per protocol card."""
    from benchmark.report.cards import card_notes

    notes = list(spec.notes)
    if any(str(c).endswith(" devkit") for c in table.columns):
        notes.append(BLACKLIST_NOTE)
    if "card" in table:
        notes += card_notes(table["card"])
    return notes


def _cell(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def to_markdown(table: pd.DataFrame, title: str = "", notes: tuple[str, ...] | list[str] = ()) -> str:
    lines = [f"## {title}", ""] if title else []
    lines.append("| " + " | ".join(map(str, table.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if notes:
        lines += [""] + list(notes)
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir: Path, name: str, title: str = "", notes=()) -> list[Path]:
    """Write ``name.md``, ``name.csv`` and ``name.tex`` atomically; return the paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.{ext}" for ext in ("md", "csv", "tex")]
    atomic_write_bytes(paths[0], to_markdown(table, title, notes).encode())
    atomic_write_bytes(paths[1], table.to_csv(index=False).encode())
    atomic_write_bytes(paths[2], table.to_latex(index=False, na_rep="--", float_format="%.2f").encode())
    return paths
