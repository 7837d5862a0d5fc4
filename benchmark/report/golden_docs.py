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

# name -> (golden CSV, columns shown)
BLOCKS = {
    "localization": ("demo_localization.csv", ("model", "method", "loc err top-1", "loc err top-5", "GT-known loc acc",
                                               "cls err top-1", "n images")),
    "ablations": ("demo_ablations.csv", ("model", "method", "normalization", "loc err top-1", "GT-known loc acc",
                                         "MaxBoxAccV2", "n images")),
    "cam_protocol": ("demo_cam_protocol.csv", ("model", "method", "loc err top-1", "loc err top-5", "GT-known loc acc",
                                               "MaxBoxAccV2", "n images")),
    "layers": ("demo_layers.csv", ("model", "depth", "layer", "loc_err_top1", "n_images")),
    "pointing": ("demo_pointing.csv", ("model", "method", "all: class-mean acc (%)", "difficult: class-mean acc (%)",
                                       "n", "n difficult")),
    "pointing_torchray": ("demo_pointing_torchray.csv", ("model", "method", "all: class-mean acc (%)",
                                                         "all: mean over all classes (%)", "n", "degenerate")),
    "pointing_modified": ("demo_pointing_modified.csv", ("model", "method", "θ", "accuracy (%)", "n images")),
    "occlusion": ("demo_occlusion.csv", ("model", "method", "mean rho", "95% CI low", "95% CI high", "n")),
}
BLOCK = re.compile(r"(<!-- golden:(\w+) -->\n)(.*?)(<!-- /golden -->)", re.S)


def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if value.is_integer() and column.startswith("n"):
            return str(int(value))
        return f"{value:.5f}" if column == "θ" else f"{value:.2f}"
    return str(value)


def block_text(name: str, golden: Path = GOLDEN_DIR) -> str:
    """The markdown a block ``name`` holds: its source line and table."""
    if name not in BLOCKS:
        raise KeyError(f"demo-figure block {name!r}: unknown; expected one of {sorted(BLOCKS)}")
    csv, columns = BLOCKS[name]
    frame = pd.read_csv(Path(golden) / csv)
    missing = [c for c in columns if c not in frame]
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
