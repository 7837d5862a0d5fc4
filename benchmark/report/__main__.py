"""``python -m benchmark.report [--results results] [--out DIR] [--experiment PREFIX]``: every table.

Merges sharded runs first (``benchmark.runs.merge``), then reads every ``summary.json`` under the
results root and writes each paper table, its demo counterpart, the layer-sweep plot and the
pointing and occlusion tables to ``<results>/tables/<name>.md|.csv|.tex``, printing each; every
other experiment gets a generic table per metric (``benchmark.report.generic``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.report.generic import generic_tables
from benchmark.report.specs import SPECS, extra_outputs
from benchmark.report.tables import build, collect, table_notes, to_markdown, write_table
from benchmark.runs.merge import merge_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report",
                                     description="Build the paper tables from run summaries.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    parser.add_argument("--out", default=None, help="output folder (default: <results>/tables)")
    parser.add_argument("--experiment", default=None, help="only tables of experiments whose name starts with this (e.g. demo, or any "
                        "experiment_name of your own)")
    args = parser.parse_args(argv)
    results, out = Path(args.results), Path(args.out or Path(args.results) / "tables")
    if (results / "runs").is_dir():
        merge_all(results)
    frame = collect(results)
    written = []
    for spec in SPECS:
        if args.experiment and not any(e.startswith(args.experiment) for e in spec.experiments):
            continue
        if not len(frame) or not frame["experiment"].isin(spec.experiments).any():
            continue
        table = build(spec, frame)
        notes = table_notes(spec, table)
        write_table(table, out, spec.name, spec.title, notes)
        print(to_markdown(table, spec.title, notes))
        written.append(out / f"{spec.name}.md")
    written += extra_outputs(frame, out, args.experiment, results)
    written += generic_tables(frame, out, args.experiment)
    print("tables written: " + (", ".join(map(str, written)) or "none (no finished runs)"))


if __name__ == "__main__":
    main()
