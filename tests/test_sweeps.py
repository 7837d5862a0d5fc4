"""Sweeps on clusters: the submitit launcher configs, merging shard runs, and a sharded sweep
with the local launcher that must give the table of an unsharded run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import benchmark.run  # noqa: F401  (registers the config schema and the run_path resolver)
from benchmark.models.base import CONF_DIR
from benchmark.runs import merge
from benchmark.runs.identity import NON_SEMANTIC, config_hash, run_dir_for, semantic_config
from benchmark.runs.store import RunStore, frame_bytes, write_json

REPO = Path(__file__).resolve().parents[1]


def _python(args, cache=None, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"BENCHMARK_CACHE": str(cache)} if cache else {})}
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return out


def test_slurm_launcher_settings_show_in_cfg():
    out = _python(["-m", "benchmark", "experiment=demo", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                   "hydra.launcher.timeout_min=30", "--cfg", "hydra"])
    launcher = yaml.safe_load(out.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["partition"], launcher["timeout_min"]) == ("gpu", 30)
    assert launcher["max_num_timeout"] > 0 and launcher["gpus_per_node"] is None and launcher["array_parallelism"] > 0
    assert launcher["cpus_per_task"] and launcher["mem_gb"] and any("OMP_NUM_THREADS" in s for s in launcher["setup"])


def test_slurm_gpus_follow_the_device():
    from hydra_plugins.benchmark_launcher.submitit_launcher import _device, gpus_for

    assert [gpus_for(d) for d in ("cpu", "cuda", "cuda:1", "mps")] == [0, 1, 1, 0]
    assert _device(["method=x", "device=cuda:0"], "cpu") == "cuda:0" and _device(["method=x"], "cpu") == "cpu"


def _launcher(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        return instantiate(cfg.hydra.launcher)


def test_launchers_compose_and_jobs_are_requeueable():
    import submitit

    slurm = _launcher(["experiment=demo", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                       "hydra.launcher.max_num_timeout=5"])
    assert type(slurm).__name__ == "SlurmLauncher"
    assert slurm.params["partition"] == "gpu" and slurm.params["max_num_timeout"] == 5
    assert slurm.params["submitit_folder"] == "results/runs/demo/.submitit/%j"
    # submitit requeues a job whose callable has ``checkpoint``: the launcher resubmits itself with the
    # same arguments, so the requeued job composes the same config and evaluate resumes from its parts
    job_args = (["method=grad_cam"], "hydra.sweep.dir", 0, "job_id_for_0", {})
    delayed = slurm.checkpoint(*job_args)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is slurm and delayed.args == job_args
    local = _launcher(["hydra/launcher=local"])
    assert type(local).__name__ == "LocalLauncher" and local.params["gpus_per_node"] == 0


# --- merging: hand-made shards whose merged numbers are worked out by hand -----------------------

# image, class, cls top-1, cls top-5, GT-known, loc top-1, loc top-5, IoU, has box
ROWS = {"a": (1, True, True, True, True, True, 0.8, True), "b": (0, False, True, True, False, True, 0.6, True),
        "c": (1, True, True, False, False, False, 0.2, True), "d": (2, False, False, False, False, False, 0.0, False)}
COLUMNS = ["class_id", "cls_correct_top1", "cls_correct_top5", "gt_known_correct", "loc_correct_top1",
           "loc_correct_top5", "iou", "has_box"]


def _records(ids, failed=()):
    """Records of ``ids`` plus, for each id in ``failed``, the row of an image that could not be read."""
    frame = pd.DataFrame([(i, *ROWS[i]) for i in ids], columns=["image_id", *COLUMNS])
    frame = frame.assign(degenerate=False, blacklisted=False, error=None)
    errors = pd.DataFrame({"image_id": list(failed), "class_id": -1, "error": "cannot decode image"})
    frame = pd.concat([frame, errors], ignore_index=True) if len(failed) else frame
    return frame.assign(model="toy", method="grad_cam", dataset="tiny")


def _config(root: Path, shard=0, num_shards=2, limit=3, **top):
    config = {"experiment_name": "sweep", "seed": 0, "on_error": "record", "batch_size": 2, "num_workers": 0, "part_size": 4,
              "progress": False, "force": False, "device": "cpu", "logger": {"name": "none"},
              "paths": {"results": str(root), "cache": "/cache"}, "model": {"name": "toy"},
              "method": {"name": "grad_cam", "label": "grad_cam", "options": {}},
              "metric": {"name": "localization", "options": {}},
              "dataset": {"name": "tiny", "root": "/data", "shard": shard, "num_shards": num_shards, "limit": limit}}
    config.update(top)
    return config


def only(paths):
    (path,) = list(paths)
    return path


def _summary(config, frame, status="finished", device="cpu (x86_64, 2 threads)"):
    """A shard summary as ``evaluate`` writes it (its numbers are not read by the merge)."""
    digest = config_hash({k: v for k, v in config.items() if k not in NON_SEMANTIC})
    base = {"config_hash": digest, "config": config, "run_dir": str(run_dir_for(config)), "model": "toy",
            "method": "grad_cam", "dataset": "tiny", "metric": "localization", "status": status}
    if status != "finished":
        return {**base, "reason": "toy has no CAM head"}
    return {**base, "metrics": {"loc_err_top1": -1.0}, "aggregation": {"name": "pooled_over_images", "version": 1},
            "protocol": {"threshold": 0.15}, "counts": {"images": len(frame), "records": len(frame)}, "seed": 0,
            "versions": {"torch": "2.13.0"}, "git": {"commit": "abc", "dirty": False}, "device": device,
            "layer": "features.3", "errors": {"n_images": int(frame["error"].notna().sum()), "policy": "record",
                                              "examples": []}}


def _shard(root, shard, ids, num_shards=2, failed=(), run_dir=None, **kwargs):
    config = _config(root, shard, num_shards, **kwargs.pop("config", {}))
    frame = _records(ids, failed)
    run_dir = run_dir or run_dir_for(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.parquet").write_bytes(frame_bytes(frame))
    write_json(run_dir / "summary.json", _summary(config, frame, **kwargs))
    return run_dir


def test_merge_equals_unsharded_run(tmp_path):
    _shard(tmp_path, 0, ["a", "c"], failed=["e"])  # strided, limit 3: positions 0, 2, 4 and 1, 3
    _shard(tmp_path, 1, ["b", "d"], device="cuda (A100)", config={"num_workers": 4})  # non-semantic: allowed
    (merged,) = merge.merge_all(tmp_path, strict=True)
    unsharded = _config(tmp_path, shard=0, num_shards=1, limit=6)
    assert merged == run_dir_for(unsharded) and merged.parent == tmp_path / "runs/sweep/toy/grad_cam/tiny"
    assert merged.name.startswith("localization-")
    records, summary = RunStore(merged).load()
    assert (merged / "records.parquet").read_bytes() == frame_bytes(_records(["a", "b", "c", "d"], ["e"]))
    assert list(records["image_id"]) == ["a", "b", "c", "d", "e"]
    assert summary["metrics"] == {"n_images": 4, "cls_err_top1": 50.0, "cls_err_top5": 25.0, "loc_err_top1": 75.0,
                                  "loc_err_top5": 50.0, "gt_known_loc_acc": 50.0, "mean_iou": pytest.approx(0.4),
                                  "n_degenerate": 0, "n_no_box": 1}
    assert summary["config"]["dataset"] == unsharded["dataset"] and summary["counts"] == {"images": 5, "records": 5}
    assert summary["errors"] == {"n_images": 1, "policy": "record",
                                 "examples": [{"image_id": "e", "error": "cannot decode image"}]}
    assert summary["config_hash"] == config_hash(semantic_config(unsharded))  # an unsharded run's identity
    assert RunStore(merged).finished(summary["config_hash"]) is not None  # an unsharded job now skips
    assert summary["layer"] == "features.3" and summary["git"] == {"commit": "abc", "dirty": False}
    assert summary["device"] is None  # the shards ran on different devices
    assert summary["merge"]["provenance_by_shard"] == {"device": ["cpu (x86_64, 2 threads)", "cuda (A100)"]}
    assert set(summary["merge"]["differs_from_unsharded"]) == {"merge", "versions", "git", "device"}
    assert [s["shard"] for s in summary["merge"]["shards"]] == [0, 1]


def test_merge_refuses_missing_unfinished_and_different_shards(tmp_path):
    _shard(tmp_path, 0, ["a"], num_shards=3)
    (run_dir_for(_config(tmp_path, 1, 3))).mkdir(parents=True)  # started, never finished
    with pytest.raises(merge.MergeError, match=r"shard-1-of-3: unfinished(.|\n)*shard-2-of-3: missing"):
        merge.merge_all(tmp_path, strict=True)
    other = tmp_path / "other"
    _shard(other, 0, ["a", "c"])
    changed = {"seed": 1, "metric": {"name": "localization", "options": {"topk": 1}}}
    assert run_dir_for(_config(other, 1, **changed)) != run_dir_for(_config(other, 1))  # its own folder
    _shard(other, 1, ["b", "d"], config=changed, run_dir=run_dir_for(_config(other, 1)))  # moved by hand
    with pytest.raises(merge.MergeError, match=r"shard-1-of-2: config differs from shard-0-of-2's: "
                                               r"metric\.options\.topk: '<missing>' vs 1; seed: 0 vs 1"):
        merge.merge_all(other, strict=True)


def test_merge_refuses_overlapping_images_and_unsharded_runs(tmp_path):
    _shard(tmp_path, 0, ["a", "c"])
    _shard(tmp_path, 1, ["a", "b"])
    with pytest.raises(merge.MergeError, match=r"overlapping images in shard-0-of-2 and shard-1-of-2: \['a'\]"):
        merge.merge_all(tmp_path, strict=True)
    _shard(tmp_path, 1, ["b", "d"])
    target = run_dir_for(_config(tmp_path, 0, 1, limit=6))
    write_json(target / "summary.json", {"status": "finished", "config_hash": "x"})  # a real unsharded run
    assert merge.merge_all(tmp_path) == []  # not strict: skipped with a warning
    assert json.loads((target / "summary.json").read_text()) == {"status": "finished", "config_hash": "x"}
    assert merge.main(["--results", str(tmp_path)]) == 1


def test_merge_not_applicable_and_cli(tmp_path, capsys):
    for i in (0, 1):
        _shard(tmp_path, i, [], status="not_applicable", config={"method": {"name": "cam", "label": "cam"}})
    assert merge.main(["--results", str(tmp_path), "--experiment", "sweep"]) == 0
    target = run_dir_for(_config(tmp_path, 0, 1, limit=6, method={"name": "cam", "label": "cam"}))
    summary = json.loads((target / "summary.json").read_text())
    assert summary["status"] == "not_applicable" and summary["reason"] == "toy has no CAM head"
    assert "metrics" not in summary and not (target / "records.parquet").exists()
    assert f"merged: {target}" in capsys.readouterr().out


# --- acceptance: a sharded sweep with the local submitit launcher equals an unsharded run ---------

@pytest.mark.slow
def test_sharded_local_sweep_matches_unsharded_run(tiny_synthetic, tmp_path):
    from benchmark.report.tables import LOC_COLUMNS, collect

    common = ["model=toy_gap", "method=grad_cam,gradient", "batch_size=1"]
    _python(["-m", "benchmark", "-m", "hydra/launcher=local", "dataset.num_shards=2", "dataset.shard=0,1",
             "dataset.limit=8", *common, f"paths.results={tmp_path / 'sharded'}"], tiny_synthetic)
    # each shard keeps its first 8 images: together the first 16, i.e. an unsharded run with limit 16
    _python(["-m", "benchmark", "-m", "dataset.limit=16", *common, f"paths.results={tmp_path / 'single'}"],
            tiny_synthetic)
    assert len(merge.merge_all(tmp_path / "sharded", strict=True)) == 2
    columns = ["model", "method", "dataset", *LOC_COLUMNS, "mean_iou", "n_images", "n_degenerate"]
    tables = [collect(tmp_path / name).sort_values(["model", "method"])[columns].reset_index(drop=True)
              for name in ("sharded", "single")]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert list(tables[0]["n_images"]) == [16, 16]
    for method in ("grad_cam", "gradient"):
        runs = [only((tmp_path / name / "runs/default/toy_gap" / method / "synthetic_val").glob("localization-*"))
                for name in ("sharded", "single")]
        assert (runs[0] / "records.parquet").read_bytes() == (runs[1] / "records.parquet").read_bytes()
        ours, theirs = (json.loads((r / "summary.json").read_text()) for r in runs)
        assert ours["config_hash"] == theirs["config_hash"] and ours["metrics"] == theirs["metrics"]
        assert f"{method}/synthetic_val: 8/8 images (100%)" in (runs[0] / "shard-1-of-2" / "run.log").read_text()
