"""Runs whose inputs changed after they ran: ``python -m benchmark.runs.stale --results ROOT``.

A finished run records its identity (``config_hash``) and the digests of what it read (``inputs``:
dataset content, plugin sources, declared versions; ``benchmark.runs.inputs``). ``stale_runs``
recomputes both from the run's recorded config and lists each run whose hash no longer matches,
with what changed (``dataset``, ``plugins.<module>``, ``versions.<method|metric>``, the shipped
weights or the generated data's version). Running the same command again computes such a run anew
in a new folder; the stale folder is kept (and ``benchmark.report`` marks it) until it is removed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.runs.identity import config_hash, semantic_config


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def changes(summary: dict) -> list[str]:
    """What changed since the run of ``summary`` (empty when its identity still holds)."""
    config = summary.get("config") or {}
    if not config.get("dataset") or not summary.get("config_hash"):
        return []
    current = semantic_config(config)
    if config_hash(current) == summary["config_hash"]:
        return []
    before = _flat({"inputs": summary.get("inputs", {})})
    now = _flat({"inputs": current.get("inputs", {})})
    changed = sorted(k.removeprefix("inputs.") for k in set(before) | set(now) if before.get(k) != now.get(k))
    if "inputs" not in summary:
        changed = ["inputs not recorded (made by an older identity)"]
    return changed or ["configuration identity (shipped weights or generated data version)"]


def stale_runs(results_root: Path | str) -> list[dict]:
    """``[{"run_dir", "changed"}]`` for every finished run under ``<root>/runs`` whose inputs changed."""
    out = []
    for path in sorted(Path(results_root, "runs").glob("**/summary.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if summary.get("status") != "finished":
            continue
        changed = changes(summary)
        if changed:
            out.append({"run_dir": str(path.parent), "changed": changed})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.runs.stale",
                                     description="List finished runs whose inputs changed after they ran.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    args = parser.parse_args(argv)
    runs = stale_runs(args.results)
    for run in runs:
        print(f"stale: {run['run_dir']} (changed: {', '.join(run['changed'])})")
    print(f"{len(runs)} stale run(s) under {Path(args.results) / 'runs'}" if runs else "no stale runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
