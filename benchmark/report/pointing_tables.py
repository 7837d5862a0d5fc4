"""The pointing-game tables: rows model x method (x dataset), accuracies with their intervals, published numbers.

``pointing_table`` shows class-mean and pooled accuracy (all and difficult subsets): the pooled rates get a
Wilson interval, the class-mean ones a percentile bootstrap interval over the run's records
(``benchmark.report.stats.class_mean_ci``). ``pointing_modified_table`` shows θ and the accuracy on the
evaluation split with its Wilson interval. ``pointing_with_reference`` puts the published numbers beside them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.stats import class_mean_ci
from benchmark.report.tables import METHOD_ORDER, REFERENCE_DIR, add_intervals


def _with_reference(table: pd.DataFrame, csv: str, keys: list[str], ours: str, theirs: str, query: str = "") -> pd.DataFrame:
    """Add the published column ``theirs`` (and our difference) beside ``ours``; unmatched rows stay."""
    ref = pd.read_csv(REFERENCE_DIR / csv)
    ref = ref.query(query) if query else ref
    ref = ref[[*keys, theirs]].rename(columns={theirs: f"{ours} (paper)"})
    merged = table.merge(ref, on=keys, how="outer")
    merged[f"{ours} Δ"] = pd.to_numeric(merged[ours], errors="coerce") - merged[f"{ours} (paper)"]
    return merged


def _reference_model(model: str, published: set[str]) -> str:
    """The published row a run's model answers to: its own name, else the name before its fine-tuning suffix.

    ``pointing.csv`` names architectures (``vgg16``, ``resnet50``); the runs name the fine-tuned configs
    (``vgg16_voc07``, ``resnet50_coco14``), whose dataset column then picks the VOC or the COCO row.
    """
    if model in published:
        return model
    base = str(model).split("_", 1)[0]
    return base if base in published else model


def pointing_with_reference(table: pd.DataFrame) -> pd.DataFrame:
    """Published pointing accuracies (all and difficult subsets) beside ours, with their differences.

    A row matches on (architecture, method, dataset); the center baseline's published row (model ``any``)
    matches every model's center run. Published rows no run matched stay, with no number of ours.
    """
    ref = pd.read_csv(REFERENCE_DIR / "pointing.csv")
    published = set(ref["model"]) - {"any"}
    table = table.copy()
    table["_ref"] = [("any" if method == "center" else _reference_model(model, published))
                     for model, method in zip(table["model"], table["method"])]
    for subset, ours in (("all", "all: class-mean acc (%)"), ("difficult", "difficult: class-mean acc (%)")):
        rows = ref[ref["subset"] == subset][["model", "method", "dataset", "accuracy"]]
        rows = rows.rename(columns={"model": "_ref", "accuracy": f"{ours} (paper)"})
        table = table.merge(rows, on=["_ref", "method", "dataset"], how="outer")
        if ours not in table:
            table[ours] = float("nan")
        table[f"{ours} Δ"] = pd.to_numeric(table[ours], errors="coerce") - table[f"{ours} (paper)"]
    table["model"] = table["model"].fillna(table["_ref"])
    return table.drop(columns="_ref")


POINTING_COLUMNS = {
    "acc_class_mean": "all: class-mean acc (%)", "acc_pooled": "all: pooled acc (%)",
    "difficult_acc_class_mean": "difficult: class-mean acc (%)", "difficult_acc_pooled": "difficult: pooled acc (%)",
    "n_records": "n", "difficult_n_records": "n difficult", "n_degenerate": "degenerate", "_failed": "failed images",
    "acc_class_mean_all_classes": "all: mean over all classes (%)",
    "difficult_acc_class_mean_all_classes": "difficult: mean over all classes (%)",
}
POINTING_MODIFIED_COLUMNS = {"theta": "θ", "accuracy": "accuracy (%)", "accuracy_calibration": "calibration accuracy (%)",
                             "accepted_fraction": "accepted (%)", "n_images": "n images", "n_records": "n",
                             "n_calibration_images": "n calibration images", "n_calibration_records": "n calibration",
                             "_failed": "failed images"}


def finished_rows(frame: pd.DataFrame, metric: str, columns: dict) -> pd.DataFrame:
    """Finished runs of ``metric`` as rows model x method (x dataset), columns renamed, sorted."""
    if frame.empty or "metric" not in frame:
        return pd.DataFrame(columns=["model", "method", "dataset", *columns.values()])
    done = frame[(frame["metric"] == metric) & (frame["status"] == "finished")]
    table = done.reindex(columns=["model", "method", "dataset", *columns, "path"]).copy()
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    table["_order"] = table["method"].map(lambda m: (order.get(m, len(order)), m))
    table = table.sort_values(["model", "dataset", "_order"]).drop(columns="_order")
    table = table.rename(columns=columns).reset_index(drop=True)
    for c in [c for c in table if c.startswith("n") or c in ("degenerate", "failed images")]:
        table[c] = pd.to_numeric(table[c], errors="coerce").round().astype("Int64")
    return table


def pointing_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method (x dataset); all/difficult class-mean and pooled accuracy (%), counts."""
    table = finished_rows(frame, "pointing", POINTING_COLUMNS)
    extra = [c for c in table if "over all classes" in c and table[c].isna().all()]
    table = table.drop(columns=extra)  # the mean over all classes is reported only where a run computed it
    table = _class_mean_intervals(table)
    table = add_intervals(table, ["all: pooled acc (%)"], "n")
    return add_intervals(table, ["difficult: pooled acc (%)"], "n difficult")


def pointing_modified_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method (x dataset); θ, accuracy on the evaluation split (%), counts.

    θ is a raw map value whose scale depends on the method, so it is shown with 4 significant digits. Every
    rate (accuracy, calibration accuracy, accepted share of the evaluated (image, class) pairs) gets a Wilson
    interval over its records.
    """
    table = finished_rows(frame, "pointing_modified", POINTING_MODIFIED_COLUMNS)
    table["θ"] = [None if t is None or t != t else f"{t:.4g}" for t in table["θ"]]
    table["accepted (%)"] = 100 * pd.to_numeric(table["accepted (%)"], errors="coerce")
    table = add_intervals(table, ["accuracy (%)", "accepted (%)"], "n")
    return add_intervals(table, ["calibration accuracy (%)"], "n calibration")


POINTING_NOTE = ("95% CI: Wilson score interval of each pooled rate over its n (statsmodels proportion_confint); of a "
                 "class-mean accuracy, a percentile bootstrap interval over the run's (image, class) records.")




def _class_mean_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``<class-mean column> 95% CI low|high`` from each run's records (bootstrap over its records)."""
    table = table.copy()
    for subset, column in (("all", "all: class-mean acc (%)"), ("difficult", "difficult: class-mean acc (%)")):
        bounds = []
        for path in table.get("path", pd.Series([None] * len(table))):
            records = Path(str(path)) / "records.parquet"
            if not isinstance(path, str) or not records.is_file():
                bounds.append((float("nan"), float("nan")))
                continue
            r = pd.read_parquet(records, columns=["class_id", "hit", "difficult_subset"])
            r = r[r["difficult_subset"].astype(bool)] if subset == "difficult" else r
            lo, hi = class_mean_ci(r["hit"].astype(float).to_numpy(), r["class_id"].to_numpy())
            bounds.append((100 * lo, 100 * hi))
        at = list(table.columns).index(column) + 1
        table.insert(at, f"{column} 95% CI low", [lo for lo, _ in bounds])
        table.insert(at + 1, f"{column} 95% CI high", [hi for _, hi in bounds])
    return table
