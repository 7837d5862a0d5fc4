"""Move run folders of the older layout to the folders ``benchmark.runs.identity`` gives them.

``python -m benchmark.runs.migrate --results ROOT [--dry-run]``: every run folder under
``ROOT/runs`` (a folder with ``summary.json`` or ``run_config.json``) whose place differs from
``run_dir_for`` of its recorded config is moved there (shard folders first, so a merged run and its
shards end up together again). A folder is left in place, with a line saying why, when its target
already exists or when its recorded config hash differs from the hash the current code gives its
config (it was made with other generated data or another identity rule: the suite would redo it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmark.runs.identity import config_hash, run_dir_for, semantic_config
from benchmark.runs.store import RUN_CONFIG, SUMMARY


def _recorded(folder: Path) -> dict | None:
    for name in (SUMMARY, RUN_CONFIG):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    return None


def plan(results_root: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``([(old folder, new folder)], [reasons for folders left in place])``, deepest folders first."""
    runs = Path(results_root) / "runs"
    folders = {p.parent for name in (SUMMARY, RUN_CONFIG) for p in runs.glob(f"**/{name}")}
    moves, kept = [], []
    for folder in sorted(folders, key=lambda p: (-len(p.parts), str(p))):
        recorded = _recorded(folder)
        config = dict(recorded.get("config") or {}) if recorded else {}
        if not config.get("dataset") or not config.get("method") or not config.get("metric"):
            kept.append(f"{folder}: no run config recorded; left in place")
            continue
        config["paths"] = {**(config.get("paths") or {}), "results": str(results_root)}
        target = run_dir_for(config)
        if target.resolve() == folder.resolve():
            continue
        if recorded.get("config_hash") != config_hash(semantic_config(config)):
            kept.append(f"{folder}: recorded config hash {recorded.get('config_hash')} is not the current one "
                        f"({config_hash(semantic_config(config))}); it would be run again, left in place")
        elif _recorded(target) is not None:
            kept.append(f"{folder}: {target} holds a run already; left in place")
        else:
            moves.append((folder, target))
    return moves, kept


def move_run(old: Path, new: Path, run_folders: list[Path]) -> None:
    """Move the files of the run in ``old`` into ``new`` entry by entry (the new folder may lie inside
    the old one), leaving out entries that hold other run folders (shards, moved runs)."""
    new.mkdir(parents=True, exist_ok=True)
    for child in sorted(old.iterdir()):
        if child == new or child in new.parents or any(child == f or child in f.parents for f in run_folders):
            continue
        shutil.move(str(child), str(new / child.name))
    if old.is_dir() and not any(old.iterdir()):
        old.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.runs.migrate",
                                     description="Move run folders of the older layout to their current place.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    parser.add_argument("--dry-run", action="store_true", help="print the moves without making them")
    args = parser.parse_args(argv)
    moves, kept = plan(Path(args.results))
    for old, new in moves:
        print(f"{'would move' if args.dry_run else 'moved'}: {old} -> {new}")
        if not args.dry_run:
            move_run(old, new, [o for o, _ in moves] + [n for _, n in moves])
    for line in kept:
        print(line, file=sys.stderr)
    if not moves:
        print("nothing to move")
    return 0


if __name__ == "__main__":
    sys.exit(main())
