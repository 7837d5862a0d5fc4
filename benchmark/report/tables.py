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
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.names import name_problem
from benchmark.paths import REPO_ROOT
from benchmark.report.writers import (  # noqa: F401  (re-exported)
    _cell, decimals, rounded, sample_size_notes, to_markdown, write_table)

REFERENCE_DIR = REPO_ROOT / "results" / "reference"
METHOD_ORDER = ["center", "gradient", "deconvnet", "guided_backprop", "excitation_backprop",
                "contrastive_excitation_backprop", "cam", "grad_cam", "guided_grad_cam", "occlusion"]
LOC_COLUMNS = {"cls_err_top1": "cls err top-1 (%)", "cls_err_top5": "cls err top-5 (%)",
               "loc_err_top1": "loc err top-1 (%)", "loc_err_top5": "loc err top-5 (%)",
               "gt_known_loc_acc": "GT-known loc acc (%)"}
COUNTS = {"n_images": "n images", "n_degenerate": "degenerate", "_failed": "failed images"}


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
    counts: dict[str, str] = field(default_factory=lambda: dict(COUNTS))
    interval: str | None = "loc_err_top1"  # (kept for specs that name it; every rate column gets an interval)
    notes: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # protocol columns shown after the keys (e.g. normalization)
    dataset: str | None = None  # the published numbers' dataset: runs on anything else go to "your runs"


PROTOCOL_COLUMNS = ("normalization", "crops")  # protocol settings collect() adds beside the figures


SHARD_DIR = re.compile(r"shard-\d+-of-\d+")  # a shard's own folder (benchmark.runs.merge), never a name


def collect(results_root: Path, experiment: str | None = None) -> pd.DataFrame:
    """One row per run summary (sharded runs are read through their merged summary).

    A shard's folder is recognised by its own name (``shard-<i>-of-<n>``) relative to ``runs/``, so a results
    root or an experiment named ``shard-...`` is read like any other. A summary that cannot be read, or whose
    ``experiment_name`` is not a valid name (``benchmark.names``), is left out and listed, by path and reason,
    in ``frame.attrs["skipped"]``.
    """
    rows, skipped = [], []
    runs = Path(results_root) / "runs"
    if experiment is not None and name_problem(experiment):
        raise ValueError(f"experiment={experiment!r} is not a valid name: {name_problem(experiment)}")
    pattern = f"{experiment}/**/summary.json" if experiment else "**/summary.json"
    for path in sorted(runs.glob(pattern)):
        if any(SHARD_DIR.fullmatch(part) for part in path.parent.relative_to(runs).parts):
            continue
        try:
            summary = json.loads(path.read_text())
            if not isinstance(summary, dict):
                raise ValueError(f"expected a JSON object, got {type(summary).__name__}")
        except (OSError, ValueError) as err:
            skipped.append(f"{path}: unreadable summary ({type(err).__name__}: {err}); skipped")
            continue
        config = summary.get("config") if isinstance(summary.get("config"), dict) else {}
        name = config.get("experiment_name", path.relative_to(runs).parts[0])  # (older summaries: the folder's)
        problem = name_problem(name) or (name_problem(summary["metric"]) if summary.get("metric") is not None else None)
        if problem:
            skipped.append(f"{path}: experiment_name {name!r} / metric {summary.get('metric')!r} is not a valid "
                           f"name ({problem}); skipped")
            continue
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
        errors = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
        row = {"experiment": name, "model": summary.get("model"),
               "method": summary.get("method"), "dataset": summary.get("dataset"),
               "metric": summary.get("metric"), "status": summary.get("status"), "path": str(path.parent),
               "normalization": summary.get("protocol", {}).get("normalization"),
               "crops": summary.get("protocol", {}).get("crops", 1),
               "_weights": model.get("weights"), "_checkpoint": model.get("checkpoint"),
               "_limit": dataset.get("limit"), "_root": dataset.get("root"), "_split": dataset.get("split"),
               "_failed": errors.get("n_images", 0), "_protocol": summary.get("protocol")}
        row.update(summary.get("metrics", {}) if isinstance(summary.get("metrics"), dict) else {})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["experiment", "model", "method", "dataset", "metric", "status", "path"]
                         if not rows else None)
    frame.attrs["skipped"] = skipped
    return frame


def _method_key(series: pd.Series) -> pd.Series:
    def key(name):
        base = str(name).split("@")[0]
        return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), str(name))

    return series.map(key)


def wilson(rate_percent: float, n: int) -> tuple[float, float]:
    """95 % Wilson score interval (in %) of a rate given in % over ``n`` (statsmodels' ``proportion_confint``)."""
    from benchmark.report.stats import proportion_ci

    if not n or rate_percent is None or (isinstance(rate_percent, float) and math.isnan(rate_percent)):
        return float("nan"), float("nan")
    lo, hi = proportion_ci(round(rate_percent / 100.0 * n), n)
    return 100 * lo, 100 * hi


def add_intervals(table: pd.DataFrame, columns, n_column: str) -> pd.DataFrame:
    """A Wilson 95 % interval (``<column> 95% CI low|high``, in %) right after each rate column in %."""
    table = table.copy()
    for column in [c for c in columns if c in table]:
        n = pd.to_numeric(table[n_column], errors="coerce") if n_column in table else pd.Series(math.nan, index=table.index)
        bounds = [wilson(r, int(k)) if pd.notna(k) and k > 0 else (math.nan, math.nan)
                  for r, k in zip(pd.to_numeric(table[column], errors="coerce"), n)]
        at = list(table.columns).index(column) + 1
        table.insert(at, f"{column} 95% CI low", [lo for lo, _ in bounds])
        table.insert(at + 1, f"{column} 95% CI high", [hi for _, hi in bounds])
    return table


def split_runs(spec: TableSpec, ours: pd.DataFrame, reference_dir: Path = REFERENCE_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our finished runs that match the published protocol (weights, dataset identity and size, and the
    ``metric.options`` settings of the card of the published row they would stand beside), and the others
    with a ``reason`` column."""
    from benchmark.report.cards import load_cards
    from benchmark.report.matching import mismatch

    if not spec.reference or not spec.dataset or not len(ours):
        return ours, ours.iloc[0:0].assign(reason=pd.Series(dtype=str))
    ref = pd.read_csv(reference_dir / spec.reference)
    cards = load_cards() if "card" in ref else {}
    card_of = {tuple(str(r[k]) for k in spec.keys): r.get("card") for r in ref.to_dict("records")}
    reasons = ["; ".join(mismatch(row, spec.dataset, cards.get(card_of.get(tuple(str(row.get(k)) for k in spec.keys)))))
               for row in ours.to_dict("records")]
    bad = pd.Series([bool(r) for r in reasons], index=ours.index)
    return ours[~bad], ours[bad].assign(reason=[r for r in reasons if r])


def build(spec: TableSpec, frame: pd.DataFrame, reference_dir: Path = REFERENCE_DIR,
          yours: list | None = None) -> pd.DataFrame:
    """The table of ``spec``: our columns with their intervals, published columns and differences, counts.

    Rows keep their run folder in ``path`` (for the paired comparisons; the writers drop it). Runs that do
    not match the published protocol (``split_runs``) are left out and, when ``yours`` is a list, appended
    to it as one frame (the "your runs" table, with its reasons and no published column)."""
    metrics = (spec.metric,) if isinstance(spec.metric, str) else spec.metric
    ours = frame[frame["experiment"].isin(spec.experiments) & frame["metric"].isin(metrics)
                 & (frame["status"] == "finished")] if len(frame) else frame
    ours, others = split_runs(spec, ours, reference_dir)
    if yours is not None and len(others):
        from dataclasses import replace

        mine = build(replace(spec, reference=None, compare=(), dataset=None), others.drop(columns="reason"))
        reason = dict(zip(others["path"], others["reason"]))
        yours.append(mine.assign(reason=[reason.get(p) for p in mine["path"]]))
    keep = [*dict.fromkeys(["model", "method", "dataset", *spec.keys, *spec.extra])]
    data = {c: ours[c] if c in ours else pd.Series(dtype=float) for c in [*spec.columns, *spec.counts]}
    table = pd.concat([ours[[*keep, "path"]].reset_index(drop=True) if len(ours) else pd.DataFrame(columns=[*keep, "path"]),
                       pd.DataFrame(data).reset_index(drop=True)], axis=1)
    devkit = [c for c in spec.compare if f"{c}_no_blacklist" in ours and ours[f"{c}_no_blacklist"].notna().any()]
    for c in devkit:  # blacklist flagged: the devkit figure (blacklisted images removed) is the one compared
        table[f"{c} devkit"] = ours[f"{c}_no_blacklist"].fillna(ours[c]).reset_index(drop=True)
    table = add_intervals(table, [c for c in spec.columns if c in table], "n_images")
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
    for c in spec.columns:
        for end in ("95% CI low", "95% CI high"):
            renamed[f"{c} {end}"] = f"{labels[c]} {end}"
    for c in spec.compare:
        renamed[f"{c} (paper)"] = f"{labels[c]} (paper)"
        renamed[f"{c} Δ"] = f"{labels[c]} Δ"
        renamed[f"{c} devkit"] = f"{labels[c]} devkit"
    return table.rename(columns=renamed).reset_index(drop=True)


BLACKLIST_NOTE = ("'devkit' columns: blacklisted images removed from the denominator, as the ILSVRC devkit and "
                  "CAM's evaluation count them; the published numbers are compared with these.")


def table_notes(spec: TableSpec, table: pd.DataFrame) -> list[str]:
    """The spec's notes, the interval and sample-size notes, the blacklist note when a devkit column is
    shown, and one line per protocol card."""
    from benchmark.report.cards import card_notes

    notes = list(spec.notes)
    if any(str(c).endswith("95% CI low") and not str(c).startswith("Δ") for c in table.columns):
        notes.append(INTERVAL_NOTE)
    notes += sample_size_notes(table)
    if any(str(c).endswith(" devkit") for c in table.columns):
        notes.append(BLACKLIST_NOTE)
    if "card" in table:
        notes += card_notes(table["card"])
    return notes


INTERVAL_NOTE = "95% CI: Wilson score interval of each rate over the row's n images (statsmodels proportion_confint)."
