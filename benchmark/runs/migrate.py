"""Move run folders of the older layout to the folders ``benchmark.runs.identity`` gives them.

``python -m benchmark.runs.migrate --results ROOT [--dry-run]``: every run folder under
``ROOT/runs`` (a folder with ``summary.json`` or ``run_config.json``) whose place differs from
``run_dir_for`` of its recorded config is moved there (shard folders first, so a merged run and its
shards end up together again). A folder is left in place, with a line saying why, when its target
already exists or when its recorded config hash differs from the hash the current code gives its
config (it was made with other generated data or another identity rule: the suite would redo it).

A run made before the identity covered its inputs (``benchmark.runs.inputs``: a prepared dataset's
content, plugin sources, declared versions) has the hash of its config alone. Nothing records what
it read, so it is moved only with ``--assume-unchanged-inputs``: its summary and marker then get
today's input digests and identity (``inputs``, ``config_hash``), and ``identity_migrated_from`` keeps
the old hash. Without the flag it is left in place and the next run computes it anew.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmark.runs import inputs
from benchmark.runs.identity import config_hash, run_dir_for, semantic_config
from benchmark.runs.store import RUN_CONFIG, SUMMARY, write_json


def _recorded(folder: Path) -> dict | None:
    for name in (SUMMARY, RUN_CONFIG):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    return None


def plan(results_root: Path, assume_unchanged_inputs: bool = False) -> tuple[list[tuple[Path, Path]], list[str]]:
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
        legacy = recorded.get("config_hash") == config_hash(semantic_config(config, with_inputs=False))
        if legacy and not assume_unchanged_inputs and recorded.get("config_hash") != config_hash(semantic_config(config)):
            kept.append(f"{folder}: made before the run identity covered its inputs (dataset content, plugin "
                        f"sources, versions); left in place (--assume-unchanged-inputs moves it)")
        elif not legacy and recorded.get("config_hash") != config_hash(semantic_config(config)):
            kept.append(f"{folder}: recorded config hash {recorded.get('config_hash')} is not the current one "
                        f"({config_hash(semantic_config(config))}); it would be run again, left in place")
        elif _recorded(target) is not None:
            kept.append(f"{folder}: {target} holds a run already; left in place")
        else:
            moves.append((folder, target))
    return moves, kept


def rekey(folder: Path, results_root: Path) -> None:
    """Give the run in ``folder`` today's input digests and identity (``--assume-unchanged-inputs``)."""
    for name in (SUMMARY, RUN_CONFIG):
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        config = {**data["config"], "paths": {**(data["config"].get("paths") or {}), "results": str(results_root)}}
        digest = config_hash(semantic_config(config))
        if data.get("config_hash") != digest:
            data.update(identity_migrated_from=data.get("config_hash"), config_hash=digest, inputs=inputs.inputs(config))
            write_json(path, data)


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
    parser.add_argument("--assume-unchanged-inputs", action="store_true",
                        help="also move runs made before the identity covered their inputs, taking today's inputs as theirs")
    args = parser.parse_args(argv)
    moves, kept = plan(Path(args.results), args.assume_unchanged_inputs)
    for old, new in moves:
        print(f"{'would move' if args.dry_run else 'moved'}: {old} -> {new}")
        if not args.dry_run:
            move_run(old, new, [o for o, _ in moves] + [n for _, n in moves])
            rekey(new, Path(args.results))
    for line in kept:
        print(line, file=sys.stderr)
    if not moves:
        print("nothing to move")
    return 0


if __name__ == "__main__":
    sys.exit(main())
