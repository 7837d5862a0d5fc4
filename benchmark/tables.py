"""Records -> tables: ``python -m benchmark.tables`` reads every ``summary.json`` under a results
root and writes ``results/tables/<name>.md|.csv|.tex``. Tables are built from the summaries (which
are built from the records), never from anything printed; a missing cell stays missing.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from benchmark.data.manifest import atomic_write_bytes

LOCALIZATION_COLUMNS = {
    "cls_err_top1": "cls err top-1 (%)", "cls_err_top5": "cls err top-5 (%)",
    "loc_err_top1": "loc err top-1 (%)", "loc_err_top5": "loc err top-5 (%)",
    "gt_known_loc_acc": "GT-known loc acc (%)", "n_images": "n images", "n_degenerate": "degenerate",
}
METHOD_ORDER = ["center", "gradient", "deconvnet", "guided_backprop", "excitation_backprop",
                "contrastive_excitation_backprop", "cam", "grad_cam", "guided_grad_cam"]


def collect(results_root: Path, experiment: str | None = None) -> pd.DataFrame:
    """One row per finished run summary: identity columns plus every summary metric."""
    rows = []
    runs = Path(results_root) / "runs"
    pattern = f"{experiment}/**/summary.json" if experiment else "**/summary.json"
    for path in sorted(runs.glob(pattern)):
        summary = json.loads(path.read_text())
        row = {"experiment": summary.get("config", {}).get("experiment_name"), "model": summary.get("model"),
               "method": summary.get("method"), "dataset": summary.get("dataset"),
               "metric": summary.get("metric"), "status": summary.get("status"), "path": str(path.parent)}
        row.update(summary.get("metrics", {}))
        rows.append(row)
    return pd.DataFrame(rows)


def _method_key(name: str) -> tuple:
    base = next((i for i, m in enumerate(METHOD_ORDER) if name == m), len(METHOD_ORDER))
    return base, name


def localization_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows model x method, the Table-1 columns; not-applicable runs are left out."""
    done = frame[(frame["metric"] == "localization") & (frame["status"] == "finished")]
    if done.empty:
        return pd.DataFrame(columns=["model", "method", *LOCALIZATION_COLUMNS.values()])
    table = done[["model", "method", "dataset", *[c for c in LOCALIZATION_COLUMNS if c in done]]].copy()
    table = table.sort_values(["model", "method"], key=lambda s: s.map(_method_key) if s.name == "method" else s)
    return table.rename(columns=LOCALIZATION_COLUMNS).reset_index(drop=True)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def to_markdown(table: pd.DataFrame, title: str = "", notes: list[str] | None = None) -> str:
    lines = [f"## {title}", ""] if title else []
    lines.append("| " + " | ".join(map(str, table.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if notes:
        lines += [""] + [f"{n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir: Path, name: str, title: str = "", notes: list[str] | None = None) -> list[Path]:
    """Write ``name.md``, ``name.csv`` and ``name.tex`` atomically; return the paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.{ext}" for ext in ("md", "csv", "tex")]
    atomic_write_bytes(paths[0], to_markdown(table, title, notes).encode())
    atomic_write_bytes(paths[1], table.to_csv(index=False).encode())
    atomic_write_bytes(paths[2], table.to_latex(index=False, na_rep="--", float_format="%.2f").encode())
    return paths


def build_demo(results_root: Path, out_dir: Path) -> dict[str, pd.DataFrame]:
    frame = collect(results_root, "demo")
    tables = {}
    if not frame.empty:
        loc = localization_table(frame)
        notes = ["Synthetic val split, toy models; protocol: Grad-CAM Table 1 (15 % of max, largest "
                 "8-connected segment, IoU >= 0.5). Errors in %."]
        write_table(loc, out_dir, "demo_localization", "Demo: weakly-supervised localization", notes)
        tables["demo_localization"] = loc
    return tables


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build tables from run summaries.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    parser.add_argument("--out", default=None, help="output folder (default: <results>/tables)")
    parser.add_argument("--experiment", default=None, help="only this experiment's tables")
    args = parser.parse_args(argv)
    out = Path(args.out or Path(args.results) / "tables")
    written = build_demo(Path(args.results), out) if args.experiment in (None, "demo") else {}
    for name, table in written.items():
        print(to_markdown(table, name))
    print("tables written: " + (", ".join(str(out / f"{n}.md") for n in written) or "none (no finished runs)"))


if __name__ == "__main__":
    main()
