"""Accuracy-vs-θ curve of the modified pointing game as CSV and a matplotlib PNG (DESIGN 4.4)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes


def write_curve(table: pd.DataFrame, theta: float, run_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.csv`` (columns theta, accuracy_*, accepted_fraction_*) and ``<stem>.png``."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    csv_path, png_path = run_dir / f"{stem}.csv", run_dir / f"{stem}.png"
    atomic_write_bytes(csv_path, table.to_csv(index=False).encode())
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    try:
        for split, style in (("calibration", "--"), ("evaluation", "-")):
            ax.plot(table["theta"], table[f"accuracy_{split}"], style, drawstyle="steps-post", label=split)
        if not math.isnan(theta):
            ax.axvline(theta, color="grey", lw=0.8, label=f"θ = {theta:.4g} (from calibration)")
        ax.set_xlabel("θ (accept a class iff max of its map >= θ)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Modified pointing game: accuracy vs θ")
        ax.legend(loc="best", fontsize=8)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(png_path, buffer.getvalue())
    return [csv_path, png_path]
