"""The model randomization figure (Adebayo et al., NeurIPS 2018, Fig. 2): similarity to the trained model's
map per randomized layer, one line per method, one panel per measure.

``sanity_figures(frame, out)`` reads the finished ``sanity_model_randomization`` runs of every
experiment in ``frame`` (``benchmark.report.tables.collect``), averages each run's per-image
curves over its images (``benchmark.metrics.sanity.layer_curves``) and writes, per experiment and
model, ``<experiment>_<model>_randomization.png`` and the same numbers as a table (``.md|.csv|.tex``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmark.metrics.sanity import MEASURES, layer_curves
from benchmark.names import name_problem
from benchmark.report.tables import write_table

METRIC = "sanity_model_randomization"
TITLES = {"spearman": "Spearman", "spearman_abs": "Spearman (|map|)", "ssim": "SSIM", "hog": "HOG (Pearson)"}


def curves(runs: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Long table ``method, step, layer, <measure>...`` of the runs' mean curves for ``variant``."""
    parts = []
    for method, path in zip(runs["method"], runs["path"]):
        records = pd.read_parquet(Path(path) / "records.parquet")
        if f"{variant}_{MEASURES[0]}" not in records.columns or not len(records):
            continue
        table = layer_curves(records, variant).reset_index()
        table.insert(0, "step", range(1, len(table) + 1))
        table.insert(0, "method", method)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def sanity_figures(frame: pd.DataFrame, out: Path, experiment: str | None = None,
                   variant: str = "cascading") -> list[Path]:
    """Write the figure and its table for every (experiment, model) with finished randomization runs;
    ``experiment``: only experiments whose name starts with it."""
    if not len(frame):
        return []
    runs = frame[(frame["metric"] == METRIC) & (frame["status"] == "finished")]
    if experiment is not None:
        runs = runs[runs["experiment"].astype(str).str.startswith(experiment)]
    written: list[Path] = []
    for (experiment, model), group in runs.groupby(["experiment", "model"], sort=True):
        table = curves(group, variant)
        if not len(table):
            continue
        name = f"{experiment}_{model}_randomization"
        if name_problem(name):  # a model name from a summary is data: never a path; the other tables are built
            print(f"skipped: the randomization figure of {experiment!r}, model {model!r}: {name_problem(name)}",
                  file=sys.stderr)
            continue
        written += write_table(table, Path(out), name, f"{experiment}, {model}: similarity to the trained model's "
                               f"map after {variant} randomization (step k: k layers from the top randomized)")
        written.append(_plot(table, Path(out) / f"{name}.png", f"{experiment}, {model}: {variant} randomization"))
    return written


def _plot(table: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MEASURES), figsize=(3.2 * len(MEASURES), 3.2), sharey=True)
    for ax, measure in zip(axes, MEASURES):
        for method, group in table.groupby("method", sort=True):
            ax.plot(group["step"], group[measure], marker="o", label=method)
        ax.set_title(TITLES[measure])
        ax.set_xticks(list(group["step"]))
        ax.set_xticklabels(list(group["layer"]), rotation=90, fontsize=7)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_xlabel("randomized down to layer")
    axes[0].set_ylabel("similarity to the trained model's map")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
