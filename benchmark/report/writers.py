"""The writers of a table: Markdown, CSV (rounded, no float noise) and LaTeX, one precision per column.

``write_table`` checks the table's name (``benchmark.names``) before it writes ``<name>.md|.csv|.tex``
(each atomically; ``benchmark.report.publish`` makes the whole set atomic) and drops the bookkeeping
columns (``path``, ``_...``) that the builders carry for the paired comparisons.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes
from benchmark.names import name_problem
from benchmark.report.latex import to_latex


def decimals(column) -> int:
    """One precision per column: p-values 4 decimals; correlations, IoU and fractions 3; rates (%) and
    differences in points 2."""
    name = str(column)
    if name.startswith("p ") or name == "p":
        return 4
    if "(%)" in name or "(pp)" in name:
        return 2
    if any(k in name.lower() for k in ("rho", "iou", "τ", "tau", "fraction", "accepted", "ρ")):
        return 3
    return 2


def _cell(value, column="") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and decimals(column) == 4 and 0 <= value < 0.00005:
        return "<0.0001"
    if isinstance(value, float):
        text = f"{value:.{decimals(column)}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"
    return str(value)


def rounded(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each float column rounded to its precision (no float noise in a CSV)."""
    table = table.copy()
    for column in table.columns:
        if pd.api.types.is_float_dtype(table[column]):
            table[column] = table[column].round(decimals(column)) + 0.0  # + 0.0: no -0.0
    return table


def to_markdown(table: pd.DataFrame, title: str = "", notes: tuple[str, ...] | list[str] = ()) -> str:
    lines = [f"## {title}", ""] if title else []
    lines.append("| " + " | ".join(map(str, table.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, c) for v, c in zip(row, table.columns)) + " |")
    if notes:
        lines += [""] + list(notes)
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir: Path, name: str, title: str = "", notes=()) -> list[Path]:
    """Write ``name.md``, ``name.csv`` and ``name.tex`` atomically; return the paths.

    ``name`` must be a valid name (``benchmark.names``): it is checked before anything is written."""
    problem = name_problem(name)
    if problem:
        raise ValueError(f"table name {name!r} is not a valid name: {problem}")
    out_dir = Path(out_dir)
    table = table.drop(columns=[c for c in table.columns if str(c) == "path" or str(c).startswith("_")])
    paths = [out_dir / f"{name}.{ext}" for ext in ("md", "csv", "tex")]
    atomic_write_bytes(paths[0], to_markdown(table, title, notes).encode())
    atomic_write_bytes(paths[1], rounded(table).to_csv(index=False).encode())
    atomic_write_bytes(paths[2], to_latex(table, _cell, title, notes).encode())
    return paths


def sample_size_notes(table: pd.DataFrame) -> list[str]:
    """A note when the rows of a table have different sample sizes (or count skipped/failed images)."""
    notes = []
    for column in ("n images", "n", "n_images", "n_records"):
        if column in table:
            sizes = sorted({int(v) for v in pd.to_numeric(table[column], errors="coerce").dropna()})
            if len(sizes) > 1:
                notes.append(f"Mixed sample sizes: {column} is {', '.join(map(str, sizes))} across rows; rates are "
                             "over different images and their intervals differ in width.")
            break
    if "failed images" in table and pd.to_numeric(table["failed images"], errors="coerce").fillna(0).gt(0).any():
        notes.append("failed images: images that raised an error under on_error=record and were left out of the row.")
    return notes
