"""``python -m benchmark.report [--results results] [--out DIR] [--experiment PREFIX] [--reference METHOD]``: every table.

Merges sharded runs first (``benchmark.runs.merge``), then reads every ``summary.json`` under the
results root and writes each paper table, its demo counterpart, the layer-sweep plot and the
pointing and occlusion tables to ``<results>/tables/<name>.md|.csv|.tex``, printing each; every
other experiment gets a generic table per metric (``benchmark.report.generic``), and an experiment
with several metrics a metric-agreement table (``benchmark.report.agreement``).

The set is written into a temporary folder and swapped in at the end (``benchmark.report.publish``):
a failure leaves the previous tables untouched. A finished run whose inputs changed after it ran
(``benchmark.runs.stale``) is marked on the console with what changed. A summary that cannot be read, or that names an invalid
experiment, is listed by path and skipped; the rest is built and the exit status is 1. A full disk is a
``DiskFullError`` naming the folder, exit status 1, nothing changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.io import DISK_FULL, DiskFullError
from benchmark.report.agreement import agreement_outputs
from benchmark.report.generic import generic_tables
from benchmark.report.publish import discard, publish, staging
from benchmark.report.significance import DEFAULT_REFERENCE
from benchmark.report.specs import SPECS, extra_outputs, spec_table
from benchmark.report.tables import collect, to_markdown, write_table
from benchmark.report.sanity_figure import sanity_figures
from benchmark.runs.merge import merge_all
from benchmark.runs.stale import stale_runs


def build_all(frame, out: Path, experiment: str | None, results: Path, reference: str) -> list[Path]:
    """Write every table of ``frame`` into ``out``; returns the paths written."""
    written: list[Path] = []
    for spec in SPECS:
        if experiment and not any(e.startswith(experiment) for e in spec.experiments):
            continue
        if not len(frame) or not frame["experiment"].isin(spec.experiments).any():
            continue
        table, notes, yours = spec_table(spec, frame, reference)
        written += write_table(table, out, spec.name, spec.title, notes)
        print(to_markdown(table.drop(columns=[c for c in table if c == "path" or c.startswith("_")]), spec.title, notes))
        if yours is not None:
            mine, mine_notes = yours
            title = f"{spec.title}: your runs (not comparable with the published numbers)"
            written += write_table(mine, out, f"{spec.name}_your_runs", title, mine_notes)
            print(to_markdown(mine.drop(columns=[c for c in mine if c == "path" or c.startswith("_")]), title, mine_notes))
    written += extra_outputs(frame, out, experiment, results, reference)
    written += generic_tables(frame, out, experiment, reference)
    written += agreement_outputs(frame, out, experiment)
    written += sanity_figures(frame, out, experiment)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report",
                                     description="Build the paper tables from run summaries.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    parser.add_argument("--out", default=None, help="output folder (default: <results>/tables)")
    parser.add_argument("--experiment", default=None, help="only tables of experiments whose name starts with this (e.g. demo, or any "
                        "experiment_name of your own)")
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help="method every other method is compared with, on the same images (default grad_cam)")
    args = parser.parse_args(argv)
    results, out = Path(args.results), Path(args.out or Path(args.results) / "tables")
    if (results / "runs").is_dir():
        merge_all(results)
    frame = collect(results)
    skipped = list(frame.attrs.get("skipped", []))
    tmp = staging(out)
    try:
        written = build_all(frame, tmp, args.experiment, results, args.reference)
        final = publish(tmp, out) if written else []
    except OSError as err:
        discard(tmp)
        if isinstance(err, DiskFullError) or err.errno in DISK_FULL:
            message = str(err).replace(str(tmp), str(out))
            print(f"error: {message}\nNo table was changed under {out}.", file=sys.stderr)
            return 1
        raise
    if not written:
        discard(tmp)
    names = {p.name for p in written}
    shown = [p for p in final if p.name in names]
    print("tables written: " + (", ".join(map(str, shown)) or "none (no finished runs)"))
    for run in stale_runs(results):
        if not args.experiment or Path(run["run_dir"]).relative_to(results / "runs").parts[0].startswith(args.experiment):
            print(f"stale: {run['run_dir']}: its inputs changed after it ran ({', '.join(run['changed'])}); "
                  "its row shows the old inputs' result, rerun the same command to replace it", file=sys.stderr)
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} summary file(s) skipped; the other tables were built", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
