"""Tables for any experiment: one per (experiment, metric), rows model x method, columns the metric's figures.

The paper and demo experiments keep their own layouts (``benchmark.report.specs``); every other
experiment found among the run summaries gets a generic table ``<experiment>_<metric>.md|.csv|.tex``
whose columns are the figures its summaries hold (``summary.json``'s ``metrics``), in the order
the summaries list them; counts print as integers. Runs of one (model, method, dataset) that differ in other settings are told
apart by the settings that differ between them (``settings`` column, from their summaries' protocol and
method settings), else their run folder's name. A figure's direction (higher or lower is better) comes from
the metric's ``directions`` (a class attribute mapping figure -> "higher" | "lower"), else from its name
(``err`` lower; ``acc``, ``iou``, ``rho``, ``auc`` higher), and is stated in the notes. Every table gets the
paired comparison with the reference method where the metric has a per-sample outcome.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd


from benchmark.report.significance import DEFAULT_REFERENCE, add_paired
from benchmark.report.specs import SPECIAL_EXPERIMENTS, SPECS
from benchmark.report.tables import (INTERVAL_NOTE, PROTOCOL_COLUMNS, _method_key, add_intervals, sample_size_notes,
                                     to_markdown, write_table)

KEYS = ["model", "method", "dataset"]
RATE = re.compile(r"(^|_)err(_|$)|pooled|gt_known_loc_acc|maxboxacc")  # rates in % of images (Wilson interval)
BASE = ["experiment", "model", "method", "dataset", "metric", "status", "path", *PROTOCOL_COLUMNS]


def special_experiments() -> set[str]:
    """Experiments whose tables have a layout of their own."""
    return {e for spec in SPECS for e in spec.experiments} | set(SPECIAL_EXPERIMENTS)


def generic_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method (x dataset) of one experiment and metric; columns: status and every figure."""
    figures = [c for c in runs.columns if c not in BASE and not str(c).startswith("_") and runs[c].notna().any()]
    figures = sorted(figures, key=lambda c: (str(c).startswith("n_") or str(c) == "n",
                                             str(c).startswith("ci95_") or str(c) in ("ci_low", "ci_high"),
                                             str(c).endswith("high")))  # figure, its interval (low, high), counts
    table = runs[[*KEYS, "status", *figures, "path"]].copy()
    for c in figures:
        values = pd.to_numeric(table[c], errors="coerce")
        if values.notna().any() and (values.dropna() % 1 == 0).all() and not str(c).startswith(("acc", "loc", "cls")):
            table[c] = values.round().astype("Int64")
    if table.duplicated(KEYS).any():  # same names, other settings: name the settings that differ
        table.insert(3, "settings", differing_settings(list(runs["path"])))
    table = table.sort_values(["model", "method"], key=lambda s: _method_key(s) if s.name == "method" else s.astype(str))
    return table.reset_index(drop=True)


def _settings(path) -> dict:
    try:
        summary = json.loads((Path(path) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    flat = {f"protocol.{k}": v for k, v in (summary.get("protocol") or {}).items()}
    flat.update({f"method.{k}": v for k, v in (summary.get("method_settings") or {}).items()})
    config = summary.get("config") or {}
    flat.update({f"dataset.{k}": v for k, v in (config.get("dataset") or {}).items() if k in ("limit", "root", "split")})
    flat.update({f"model.{k}": v for k, v in (config.get("model") or {}).items() if k in ("weights", "checkpoint")})
    return flat


def differing_settings(paths: list) -> list[str]:
    """For runs of the same names, the settings in which each differs from the others (``key=value, ...``);
    the run folder's name where none differ."""
    flats = [_settings(p) for p in paths]
    keys = sorted({k for f in flats for k in f if len({json.dumps(g.get(k), sort_keys=True, default=str) for g in flats}) > 1})
    return [", ".join(f"{k}={f.get(k)}" for k in keys) or Path(p).name for f, p in zip(flats, paths)]


def direction(metric: str, figure: str) -> str | None:
    """"higher" or "lower" (is better) for a figure of a metric, or None when unknown."""
    from benchmark.report.significance import _metric_class

    declared = getattr(_metric_class(metric), "directions", None) or {}
    if figure in declared:
        return declared[figure]
    name = figure.lower()
    if name.startswith("n_") or name.startswith("ci95"):
        return None
    if "err" in name:
        return "lower"
    if any(k in name for k in ("acc", "iou", "rho", "auc", "hit")):
        return "higher"
    return None


def generic_tables(frame: pd.DataFrame, out: Path, experiment: str | None = None,
                   reference: str = DEFAULT_REFERENCE) -> list[Path]:
    """Write the generic table of every (experiment, metric) outside ``special_experiments``;
    ``experiment``: only experiments whose name starts with it. Returns the markdown paths."""
    written: list[Path] = []
    if not len(frame):
        return written
    special = special_experiments()
    for (exp, metric), runs in frame.groupby(["experiment", "metric"], sort=True):
        if exp in special or (experiment is not None and not str(exp).startswith(experiment)):
            continue
        name, title = f"{exp}_{metric}", f"Experiment {exp}: {metric}"
        table = generic_table(runs.dropna(axis=1, how="all"))
        figures = [c for c in table.columns if c not in (*KEYS, "status", "settings", "path")]
        ways = {f: direction(str(metric), str(f)) for f in figures}
        notes = ["Direction: " + "; ".join(f"{f} {'higher' if d == 'higher' else 'lower'} is better"
                                          for f, d in ways.items() if d)] if any(ways.values()) else []
        rates = [c for c in figures if RATE.search(str(c)) and f"{c} 95% CI low" not in table]
        for c in rates:
            table = add_intervals(table, [c], "n_records" if "pooled" in str(c) and "n_records" in table else "n_images")
        notes += [INTERVAL_NOTE] if rates else []
        table, paired_notes = add_paired(table, str(metric), reference)
        notes += [*sample_size_notes(table.rename(columns={"n_images": "n images"})), *paired_notes]
        written += write_table(table, out, name, title, notes)
        print(to_markdown(table.drop(columns="path"), title, notes))
    return written
