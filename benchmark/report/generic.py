"""Tables for any experiment: one per (experiment, metric), rows model x method, columns the metric's figures.

The paper and demo experiments keep their own layouts (``benchmark.report.specs``); every other
experiment found among the run summaries gets a generic table ``<experiment>_<metric>.md|.csv|.tex``
whose columns are the figures its summaries hold (``summary.json``'s ``metrics``), in the order
the summaries list them; counts print as integers. Runs of one (model, method, dataset) that differ in other settings are told
apart by their run folder's name (``<metric>-<hash>``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.specs import SPECIAL_EXPERIMENTS, SPECS
from benchmark.report.tables import PROTOCOL_COLUMNS, _method_key, to_markdown, write_table

KEYS = ["model", "method", "dataset"]
BASE = ["experiment", "model", "method", "dataset", "metric", "status", "path", *PROTOCOL_COLUMNS]


def special_experiments() -> set[str]:
    """Experiments whose tables have a layout of their own."""
    return {e for spec in SPECS for e in spec.experiments} | set(SPECIAL_EXPERIMENTS)


def generic_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method (x dataset) of one experiment and metric; columns: status and every figure."""
    figures = [c for c in runs.columns if c not in BASE and runs[c].notna().any()]
    table = runs[[*KEYS, "status", *figures]].copy()
    for c in figures:
        values = pd.to_numeric(table[c], errors="coerce")
        if values.notna().any() and (values.dropna() % 1 == 0).all() and not str(c).startswith(("acc", "loc", "cls")):
            table[c] = values.round().astype("Int64")
    if table.duplicated(KEYS).any():  # same names, other settings: the run folder tells them apart
        table.insert(3, "run", [Path(p).name for p in runs["path"]])
    table = table.sort_values(["model", "method"], key=lambda s: _method_key(s) if s.name == "method" else s.astype(str))
    return table.reset_index(drop=True)


def generic_tables(frame: pd.DataFrame, out: Path, experiment: str | None = None) -> list[Path]:
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
        write_table(table, out, name, title)
        print(to_markdown(table, title))
        written.append(Path(out) / f"{name}.md")
    return written
