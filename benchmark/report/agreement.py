"""Do the metrics agree? Kendall's τ between the method rankings of each pair of metrics of an experiment.

For an experiment whose finished runs hold several metrics, each metric ranks the methods of one
(model, dataset) by its primary figure (``PRIMARY``, else a metric's ``primary`` class attribute, else its
first figure with a known direction), oriented so that "better" ranks first. ``scipy.stats.kendalltau``
(τ-b, with its two-sided p-value) compares each pair of rankings over the methods both metrics scored.
Written: ``<experiment>_agreement.md|csv|tex`` and a heat map ``<experiment>_agreement.png`` (mean τ over
(model, dataset) groups). τ = 1: the two metrics order the methods alike; 0: unrelated; -1: reversed.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmark.io import atomic_write_bytes
from benchmark.report.tables import write_table

PRIMARY = {"localization": "loc_err_top1", "localization_cam": "loc_err_top1", "pointing": "acc_class_mean",
           "pointing_modified": "accuracy", "occlusion_correlation": "mean_rho"}
NOTE = ("Kendall's tau-b (scipy.stats.kendalltau) between the method rankings of two metrics on the same model and "
        "dataset, each ranking by the metric's primary figure with better first; p: two-sided, uncorrected; "
        "n methods: methods both metrics scored.")


def primary(metric: str, runs: pd.DataFrame) -> tuple[str, int] | None:
    """(figure, sign) ranking the methods by a metric, sign +1 when higher is better; None when unknown."""
    from benchmark.report.generic import direction
    from benchmark.report.significance import _metric_class

    figure = PRIMARY.get(metric) or getattr(_metric_class(metric), "primary", None)
    candidates = [figure] if figure else [c for c in runs.columns if direction(metric, str(c))]
    for figure in candidates:
        if figure in runs and runs[figure].notna().any() and direction(metric, figure):
            return figure, 1 if direction(metric, figure) == "higher" else -1
    return None


def agreement_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows (model, dataset, metric a, metric b): τ, p and the number of methods ranked by both."""
    rows = []
    for (model, dataset), group in runs.groupby(["model", "dataset"], sort=True):
        scores = {}
        for metric, sub in group.groupby("metric", sort=True):
            found = primary(str(metric), sub)
            if found:
                figure, sign = found
                scores[f"{metric}:{figure}"] = (sign * pd.to_numeric(sub[figure], errors="coerce")).groupby(sub["method"]).mean()
        for (a, sa), (b, sb) in itertools.combinations(sorted(scores.items()), 2):
            both = pd.concat([sa, sb], axis=1, join="inner").dropna()
            tau, p = kendalltau(both.iloc[:, 0], both.iloc[:, 1]) if len(both) >= 2 else (np.nan, np.nan)
            rows.append({"model": model, "dataset": dataset, "metric a": a, "metric b": b,
                         "Kendall τ": float(tau), "p": float(p), "n methods": int(len(both))})
    return pd.DataFrame(rows, columns=["model", "dataset", "metric a", "metric b", "Kendall τ", "p", "n methods"])


def _heatmap(table: pd.DataFrame, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(set(table["metric a"]) | set(table["metric b"]))
    grid = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), tau in table.groupby(["metric a", "metric b"])["Kendall τ"].mean().items():
        grid.loc[a, b] = grid.loc[b, a] = tau
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(names), 1.2 + 0.9 * len(names)))
    image = ax.imshow(grid.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i, j in itertools.product(range(len(names)), repeat=2):
        ax.text(j, i, "—" if np.isnan(grid.iat[i, j]) else f"{grid.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="Kendall τ")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def agreement_outputs(frame: pd.DataFrame, out: Path, experiment: str | None = None) -> list[Path]:
    """The agreement table and heat map of every experiment with several metrics; returns the paths."""
    written: list[Path] = []
    if not len(frame):
        return written
    done = frame[frame["status"] == "finished"]
    for exp, runs in done.groupby("experiment", sort=True):
        if (experiment is not None and not str(exp).startswith(experiment)) or runs["metric"].nunique() < 2:
            continue
        table = agreement_table(runs)
        if table.empty:
            continue
        name, title = f"{exp}_agreement", f"Experiment {exp}: do the metrics rank the methods alike?"
        written += write_table(table, out, name, title, [NOTE])
        png = Path(out) / f"{name}.png"
        atomic_write_bytes(png, _heatmap(table, title))
        written.append(png)
    return written
