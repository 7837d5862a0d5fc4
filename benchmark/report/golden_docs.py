"""The demo figures of README.md and docs/*.md, written from the golden demo tables.

A block ``<!-- golden:NAME -->`` ... ``<!-- /golden -->`` holds a markdown table made from
``results/golden/<csv of NAME>`` (``BLOCKS``); ``python -m benchmark.report.golden --readme`` rewrites
every block, and a test fails when a block differs from what the golden tables give.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from benchmark.paths import REPO_ROOT

GOLDEN_DIR = REPO_ROOT / "results" / "golden"  # the golden demo tables (benchmark.report.golden)

# name -> (golden CSV, columns shown). A column is a name or a tuple of alternatives (the first the CSV has is
# shown: tables before and after units entered the headers); OPTIONAL columns are shown only when present.
LOC1, LOC5, GTK = ("loc err top-1 (%)", "loc err top-1"), ("loc err top-5 (%)", "loc err top-5"), \
    ("GT-known loc acc (%)", "GT-known loc acc")
V2 = ("MaxBoxAccV2 (%)", "MaxBoxAccV2")
PAIRED_LOC = ("Δ loc err top-1 (pp) vs grad_cam", "p (Holm)")
PAIRED_POINT = ("Δ pooled acc (pp) vs grad_cam", "p (Holm)")
OPTIONAL = {*PAIRED_LOC, *PAIRED_POINT, "Δ accuracy (pp) vs grad_cam", "Δ mean rho vs grad_cam"}
BLOCKS = {
    "localization": ("demo_localization.csv", ("model", "method", LOC1, LOC5, GTK,
                                               ("cls err top-1 (%)", "cls err top-1"), "n images", *PAIRED_LOC)),
    "ablations": ("demo_ablations.csv", ("model", "method", "normalization", LOC1, GTK, V2, "n images", *PAIRED_LOC)),
    "cam_protocol": ("demo_cam_protocol.csv", ("model", "method", LOC1, LOC5, GTK, V2, "n images", *PAIRED_LOC)),
    "layers": ("demo_layers.csv", ("model", "depth", "layer", ("loc err top-1 (%)", "loc_err_top1"), "n_images")),
    "pointing": ("demo_pointing.csv", ("model", "method", "all: class-mean acc (%)", "difficult: class-mean acc (%)",
                                       "n", "n difficult", *PAIRED_POINT)),
    "pointing_torchray": ("demo_pointing_torchray.csv", ("model", "method", "all: class-mean acc (%)",
                                                         "all: mean over all classes (%)", "n", "degenerate",
                                                         *PAIRED_POINT)),
    "pointing_modified": ("demo_pointing_modified.csv", ("model", "method", "θ", "accuracy (%)", "n images",
                                                         "Δ accuracy (pp) vs grad_cam", "p (Holm)")),
    "occlusion": ("demo_occlusion.csv", ("model", "method", "mean rho", ("mean rho 95% CI low", "95% CI low"),
                                         ("mean rho 95% CI high", "95% CI high"), "n", "Δ mean rho vs grad_cam",
                                         "p (Holm)")),
}
BLOCK = re.compile(r"(<!-- golden:(\w+) -->\n)(.*?)(<!-- /golden -->)", re.S)


def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if value.is_integer() and column.startswith("n"):
            return str(int(value))
        return f"{value:.5f}" if column == "θ" else f"{value:.4f}" if column.startswith("p ") else f"{value:.2f}"
    return str(value)


def block_text(name: str, golden: Path = GOLDEN_DIR) -> str:
    """The markdown a block ``name`` holds: its source line and table."""
    if name not in BLOCKS:
        raise KeyError(f"demo-figure block {name!r}: unknown; expected one of {sorted(BLOCKS)}")
    csv, wanted = BLOCKS[name]
    frame = pd.read_csv(Path(golden) / csv)
    picked = [next((a for a in (c if isinstance(c, tuple) else (c,)) if a in frame), None) for c in wanted]
    missing = [c for c, p in zip(wanted, picked) if p is None and c not in OPTIONAL]
    columns = [p for p in picked if p is not None]
    if missing:
        raise KeyError(f"{Path(golden) / csv}: column(s) {missing} missing for block {name!r}")
    lines = [f"Golden table `results/golden/{csv}` (`make demo`, shipped toy weights):", "",
             "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(row[c], c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def rewrite_text(text: str, golden: Path = GOLDEN_DIR) -> str:
    """``text`` with every golden block's content regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + block_text(m.group(2), golden) + m.group(4), text)


def documents(root: Path = REPO_ROOT) -> list[Path]:
    return [Path(root) / "README.md", *sorted((Path(root) / "docs").glob("*.md"))]


def rewrite_all(root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite the blocks of README.md and docs/*.md; returns the files that changed."""
    changed = []
    for path in documents(root):
        if not path.is_file():
            continue
        text = path.read_text()
        new = rewrite_text(text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed
