"""Paired significance in a table: every method against a reference method on the same samples.

For each row with a run folder, the reference is the row of the same model and dataset (and the same
protocol columns ``group``) whose method is ``reference`` (Grad-CAM by default). Both runs' per-sample
outcomes (``per_sample``) are read from their ``records.parquet`` and joined on ``(image_id, class_id)``;
when the two sets of samples differ the pair is refused and a note gives the count of samples that
differ. The columns added: ``Δ <figure> vs <reference>``, ``Δ 95% CI low``, ``Δ 95% CI high`` and
``p (Holm)`` (``Δ <figure> 95% CI low|high`` carry the figure's unit): exact McNemar for binary outcomes, Wilcoxon signed-rank for scores
(``benchmark.report.stats.paired``), Holm-corrected over the rows of the table.

``PAIRED`` says, per metric, which per-sample outcome is compared: localization correct at top-1
(shown as a change of top-1 localization error, in points), a pointing hit (pooled accuracy, in
points), the modified game's hit at the run's θ, the occlusion correlation ρ. A metric of another
kind declares ``per_sample(records) -> DataFrame[image_id, class_id, value]``, ``per_sample_binary``
and ``per_sample_label`` on its class; without them its table gets no paired columns.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.stats import holm, paired

DEFAULT_REFERENCE = "grad_cam"
# metric -> (label of the difference, binary?, scale, sign): difference = sign * scale * (ours - reference)
PAIRED = {
    "localization": ("loc err top-1 (pp)", True, 100.0, -1.0),
    "localization_cam": ("loc err top-1 (pp)", True, 100.0, -1.0),
    "pointing": ("pooled acc (pp)", True, 100.0, 1.0),
    "pointing_modified": ("accuracy (pp)", True, 100.0, 1.0),
    "occlusion_correlation": ("mean rho", False, 1.0, 1.0),
}
KEY = ["image_id", "class_id"]


def per_sample(metric: str, run_dir: Path) -> pd.DataFrame | None:
    """``image_id, class_id, value`` of one run, or None when the metric has no per-sample outcome."""
    records_path = Path(run_dir) / "records.parquet"
    if not records_path.is_file():
        return None
    records = pd.read_parquet(records_path)
    if "error" in records:  # images that raised under on_error=record are not outcomes
        records = records[records["error"].isna()]
    if metric in ("localization", "localization_cam"):
        value = records["loc_correct_top1"].astype(float)
    elif metric == "pointing":
        value = records["hit"].astype(float)
    elif metric == "occlusion_correlation":
        value = records["rho"].astype(float)
    elif metric == "pointing_modified":
        from benchmark.metrics import build_metric
        from benchmark.metrics._pointing_theta import choose_theta, outcome

        options = json.loads((Path(run_dir) / "summary.json").read_text()).get("config", {}).get("metric", {}).get("options") or {}
        calibration, records = build_metric("pointing_modified", **options).split(records)
        value = pd.Series(outcome(records, choose_theta(calibration)[0]).astype(float), index=records.index)
    else:
        cls = _metric_class(metric)
        if cls is None or not hasattr(cls, "per_sample"):
            return None
        return cls.per_sample(records)[[*KEY, "value"]]
    return pd.DataFrame({"image_id": records["image_id"].astype(str), "class_id": records["class_id"], "value": value})


def _metric_class(metric: str):
    from benchmark.metrics.base import METRICS

    try:
        return METRICS.get(metric)
    except Exception:  # an unknown metric (a plugin not loaded): no paired columns
        return None


def describe(metric: str) -> tuple[str, bool, float, float] | None:
    """(label, binary, scale, sign) of a metric's paired comparison, or None."""
    if metric in PAIRED:
        return PAIRED[metric]
    cls = _metric_class(metric)
    if cls is None or not hasattr(cls, "per_sample"):
        return None
    return (getattr(cls, "per_sample_label", "value"), bool(getattr(cls, "per_sample_binary", False)), 1.0, 1.0)


def add_paired(table: pd.DataFrame, metric: str, reference: str = DEFAULT_REFERENCE,
               group: tuple[str, ...] = ("model", "dataset")) -> tuple[pd.DataFrame, list[str]]:
    """``table`` (with columns ``path``, ``method`` and ``group``) with the paired columns; and its notes."""
    spec = describe(metric)
    if spec is None or "path" not in table or not table["path"].notna().any():
        return table, []
    label, binary, scale, sign = spec
    group = [g for g in group if g in table]
    cache: dict[str, pd.DataFrame | None] = {}

    def outcomes(path):
        if path not in cache:
            cache[path] = per_sample(metric, Path(path))
        return cache[path]

    results, notes = [], []
    for _, row in table.iterrows():
        refs = table[(table["method"] == reference) & table["path"].notna()]
        for g in group:
            refs = refs[refs[g].astype(str) == str(row[g])]
        if not isinstance(row.get("path"), str) or len(refs) != 1:
            if isinstance(row.get("path"), str) and len(refs) > 1:
                notes.append(f"{row['model']}/{row['method']}: not compared: {len(refs)} {reference} runs of the same "
                             "model and dataset differ in other settings.")
            results.append(None)
            continue
        ours, theirs = outcomes(row["path"]), outcomes(refs.iloc[0]["path"])
        if ours is None or theirs is None:
            results.append(None)
            continue
        a, b = set(zip(ours["image_id"], ours["class_id"])), set(zip(theirs["image_id"], theirs["class_id"]))
        if a != b:
            notes.append(f"{row['model']}/{row['method']}: not compared with {reference}: the two runs' samples "
                         f"differ ({len(a ^ b)} of {len(a | b)} (image, class) pairs in one run only).")
            results.append(None)
            continue
        both = ours.merge(theirs, on=KEY, suffixes=("", "_ref"))
        results.append(paired(both["value"], both["value_ref"], binary))
    if not any(results) and not notes:
        missing = not (table["method"] == reference).any()
        return table, ([f"No {reference} run in this table: no paired comparison (python -m benchmark.report "
                        "--reference METHOD picks another reference)."] if missing else [])
    column = f"Δ {label} vs {reference}"
    table = table.copy()
    table[column] = [sign * scale * r["delta"] if r else math.nan for r in results]
    bounds = [sorted((sign * scale * r["lo"], sign * scale * r["hi"])) if r else (math.nan, math.nan) for r in results]
    table[f"Δ {label} 95% CI low"] = [lo for lo, _ in bounds]
    table[f"Δ {label} 95% CI high"] = [hi for _, hi in bounds]
    raw = [r["p"] if r and row_method != reference else math.nan for r, row_method in zip(results, table["method"])]
    table["p (Holm)"] = holm(raw)
    table.loc[(table["method"] == reference) & table[column].notna(), "p (Holm)"] = 1.0
    test = "exact McNemar test" if binary else "Wilcoxon signed-rank test"
    notes.insert(0, f"Δ vs {reference}: this method minus {reference} on the same samples, same model and dataset; "
                    f"95 % paired percentile bootstrap interval; p: two-sided {test}, Holm-corrected over the "
                    f"{int(np.isfinite(raw).sum())} comparisons of this table ({reference} itself: Δ 0, p 1).")
    return table, notes
