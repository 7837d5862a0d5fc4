"""Merge the shard runs of one job into the run an unsharded job would have written.

``python -m benchmark.runs.merge --results ROOT [--experiment E]`` finds the folders
``runs/<experiment>/<model>/<method>/<dataset>/<metric>-<hash>/shard-<i>-of-<n>``, checks that the shards of a
job belong together, and writes ``records.parquet`` and ``summary.json`` into the parent folder
(the unsharded run path). Shards belong together when their semantic configs (what
``config_hash`` covers) are equal once ``dataset.shard`` is dropped, every shard ``0..n-1``
finished, and no image appears in two shards. Records are concatenated and sorted by
``(image_id, class_id)``; the summary is rebuilt with the metric's current ``aggregate``.

The merged config is the one an unsharded run over the same images has: ``num_shards=1``,
``shard=0`` and, because ``dataset.limit`` keeps the first ``limit`` images of each shard (strided
sharding), ``limit = n * limit``, so the merged ``config_hash`` equals that run's and a later
unsharded job finds it finished. Fields that may differ from an unsharded run are provenance
(``versions``, ``git``, ``device``: ``None`` when the shards disagree) and the ``merge`` block,
which lists them under ``merge.differs_from_unsharded`` with the per-shard values.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_bytes
from benchmark.metrics import build_metric
from benchmark.runs.identity import config_hash, run_dir_for, semantic_config, unsharded
from benchmark.runs.store import RECORDS, RUN_CONFIG, SUMMARY, frame_bytes, write_json

log = logging.getLogger(__name__)
SHARD_DIR = re.compile(r"^shard-(\d+)-of-(\d+)$")
PROVENANCE = ("versions", "git", "device")
RECOMPUTED = ("config", "config_hash", "run_dir", "metrics", "errors", "aggregation", "counts", "merge")


class MergeError(RuntimeError):
    """Shards that cannot be merged; the message names every problem found."""


def find_shard_groups(results_root: Path, experiment: str | None = None) -> dict[Path, list[Path]]:
    """``{unsharded run dir: [shard dirs, sorted]}`` under ``<results_root>/runs[/<experiment>]``."""
    base = Path(results_root) / "runs"
    base = base / experiment if experiment else base
    groups: dict[Path, list[Path]] = {}
    for path in sorted(base.glob("**/shard-*-of-*")):
        if path.is_dir() and SHARD_DIR.match(path.name):
            groups.setdefault(path.parent, []).append(path)
    return groups


def _without_shard(config: dict) -> dict:
    out = copy.deepcopy(semantic_config(config))
    out["dataset"].pop("shard", None)
    return out


def _config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = sorted(set(a) | set(b))
    out = []
    for key in keys:
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} vs {vb!r}")
    return out


def load_shards(target: Path, shard_dirs: list[Path]) -> list[dict]:
    """Read and check the shard summaries of one job; raise ``MergeError`` naming each problem."""
    counts = {int(SHARD_DIR.match(d.name).group(2)) for d in shard_dirs}
    if len(counts) != 1:
        raise MergeError(f"{target}: shard folders with different shard counts: {sorted(d.name for d in shard_dirs)}")
    n = counts.pop()
    problems, summaries = [], []
    for i in range(n):
        name = f"shard-{i}-of-{n}"
        path = target / name / SUMMARY
        summary = json.loads(path.read_text()) if path.is_file() else None
        if summary is None or summary.get("status") not in ("finished", "not_applicable"):
            state = ("missing" if not path.parent.is_dir() else "unfinished (no summary.json)" if summary is None
                     else f"status {summary.get('status')!r}")
            problems.append(f"{name}: {state}")
            continue
        ds = summary["config"]["dataset"]
        if (ds.get("shard"), ds.get("num_shards")) != (i, n):
            problems.append(f"{name}/summary.json: dataset.shard={ds.get('shard')}, "
                            f"dataset.num_shards={ds.get('num_shards')}, expected {i} and {n}")
        summaries.append((name, summary))
    if summaries:
        first, reference = summaries[0][0], _without_shard(summaries[0][1]["config"])
        for name, summary in summaries[1:]:
            diff = _config_differences(reference, _without_shard(summary["config"]))
            if diff:
                problems.append(f"{name}: config differs from {first}'s: " + "; ".join(diff))
        statuses = {name: s["status"] for name, s in summaries}
        if len(set(statuses.values())) > 1:
            problems.append(f"shards end in different states: {statuses}")
    if problems:
        raise MergeError(f"{target}: cannot merge its shards:\n  " + "\n  ".join(problems))
    return [s for _, s in summaries]


def merged_config(shard_config: dict, num_shards: int) -> dict:
    """The config of the unsharded run over the union of the shards' images (``num_shards`` of them)."""
    config = unsharded(shard_config)
    return config


def merged_records(target: Path, summaries: list[dict]) -> pd.DataFrame:
    """Concatenate the shards' records sorted by ``(image_id, class_id)``; overlaps are errors."""
    frames, owner, overlaps = [], {}, []
    for summary in summaries:
        name = f"shard-{summary['config']['dataset']['shard']}-of-{summary['config']['dataset']['num_shards']}"
        if not (target / name / RECORDS).is_file():
            raise MergeError(f"{target / name}: summary.json says finished but {RECORDS} is missing")
        frame = pd.read_parquet(target / name / RECORDS)
        for image_id in sorted(set(frame["image_id"])) if len(frame) else []:
            if image_id in owner:
                overlaps.append((owner[image_id], name, image_id))
            owner.setdefault(image_id, name)
        frames.append(frame)
    if overlaps:
        pairs = sorted({(a, b) for a, b, _ in overlaps})
        ids = [i for _, _, i in overlaps]
        raise MergeError(f"{target}: overlapping images in {', '.join(f'{a} and {b}' for a, b in pairs)}: "
                         f"{ids[:5]}{' ...' if len(ids) > 5 else ''} ({len(ids)} in all)")
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(frame):
        frame = frame.sort_values(["image_id", "class_id"], kind="stable").reset_index(drop=True)
    return frame


def _shared_fields(target: Path, summaries: list[dict]) -> tuple[dict, dict]:
    """Fields copied from the shards: equal ones as they are, provenance ``None`` when they differ."""
    out, differing = {}, {}
    for key in sorted(set().union(*summaries) - set(RECOMPUTED)):
        values = [s.get(key) for s in summaries]
        if all(v == values[0] for v in values):
            out[key] = values[0]
        elif key in PROVENANCE:
            out[key], differing[key] = None, values
        else:
            raise MergeError(f"{target}: shards disagree on summary field {key!r}: {values}")
    return out, differing


def merge_group(target: Path, shard_dirs: list[Path]) -> Path:
    """Merge one job's shards into ``target``; returns it. Never overwrites an unsharded run."""
    existing = target / SUMMARY
    if (existing.is_file() and "merge" not in json.loads(existing.read_text())) or (target / RUN_CONFIG).is_file():
        raise MergeError(f"{target}: holds an unsharded run (summary.json or run_config.json not written by "
                         f"a merge); not overwriting it with its shards {[d.name for d in shard_dirs]}")
    summaries = load_shards(target, shard_dirs)
    n = len(summaries)
    config = merged_config(summaries[0]["config"], n)
    summary, differing = _shared_fields(target, summaries)
    summary.update(config=config, config_hash=config_hash(semantic_config(config)), run_dir=str(run_dir_for(config)))
    if summary["status"] == "finished":
        metric = build_metric(config["metric"]["name"], **(config["metric"].get("options") or {}))
        frame = merged_records(target, summaries)
        # as evaluate does: records of images that failed (on_error=record) are counted, not scored
        failed = frame["error"].notna() if "error" in frame else pd.Series(False, index=frame.index)
        scored = frame[~failed].infer_objects() if len(frame) else frame
        summary.update(metrics=metric.aggregate(scored) if len(scored) else {},
                       aggregation={"name": metric.aggregation[0], "version": metric.aggregation[1]},
                       counts={"images": sum(s["counts"]["images"] for s in summaries), "records": int(len(frame))})
        if "errors" in summaries[0]:
            summary["errors"] = {"n_images": int(failed.sum()), "policy": config.get("on_error", "raise"),
                                 "examples": frame.loc[failed, ["image_id", "error"]].head(20).to_dict("records")}
        atomic_write_bytes(target / RECORDS, frame_bytes(frame))
        if hasattr(metric, "write_artifacts"):
            metric.write_artifacts(frame, target)
    summary["merge"] = {
        "num_shards": n, "differs_from_unsharded": sorted(["merge", *PROVENANCE]), "provenance_by_shard": differing,
        "shards": [{"shard": i, "run_dir": s["run_dir"], "config_hash": s["config_hash"]}
                   for i, s in enumerate(summaries)],
    }
    write_json(target / SUMMARY, summary)
    return target


def merge_all(results_root: Path, experiment: str | None = None, strict: bool = False) -> list[Path]:
    """Merge every sharded job under ``results_root``; returns the merged run folders.

    Groups that cannot be merged (a shard missing or unfinished, configs that differ, overlapping
    images, an unsharded run in the way) are skipped with a warning, or, with ``strict``, reported
    together in one ``MergeError`` after the others were merged.
    """
    merged, problems = [], []
    for target, shard_dirs in find_shard_groups(results_root, experiment).items():
        try:
            merged.append(merge_group(target, shard_dirs))
        except MergeError as err:
            problems.append(str(err))
            log.warning("%s", err)
    if strict and problems:
        raise MergeError("\n".join(problems))
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Merge shard runs (shard-i-of-n) into unsharded run folders.")
    parser.add_argument("--results", default="results", help="results root holding runs/")
    parser.add_argument("--experiment", default=None, help="only this experiment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    try:
        merged = merge_all(Path(args.results), args.experiment, strict=True)
    except MergeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("\n".join(f"merged: {p}" for p in merged) or "no sharded runs found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
