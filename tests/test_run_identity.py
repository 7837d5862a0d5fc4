"""Run identity: one folder per configuration, force within it only, failed runs leave nothing (issue 18)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.runs import migrate
from benchmark.runs.identity import config_hash, folder_hash, run_dir_for, semantic_config
from benchmark.runs.store import RunStore, write_json

REPO = Path(__file__).resolve().parents[1]


def _config(root, **changes):
    config = {"experiment_name": "ident", "seed": 0, "on_error": "raise", "batch_size": 2, "force": False,
              "paths": {"results": str(root)}, "model": {"name": "toy_gap"},
              "method": {"name": "grad_cam", "label": "grad_cam", "layer": None, "options": {}},
              "metric": {"name": "localization", "options": {}},
              "dataset": {"name": "tiny", "root": "/data", "shard": 0, "num_shards": 1, "limit": None}}
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[key] = value
    return config


@pytest.mark.parametrize("change", [
    {"metric.name": "pointing"}, {"metric.options": {"threshold": 0.5}}, {"method.layer": "features.3"},
    {"method.options": {"relu_at": "layer"}}, {"dataset.root": "/other"}, {"dataset.limit": 8}, {"seed": 1}])
def test_every_setting_that_changes_results_changes_the_folder(tmp_path, change):
    assert run_dir_for(_config(tmp_path, **change)) != run_dir_for(_config(tmp_path))


def test_folder_is_readable_and_ignores_non_semantic_settings(tmp_path):
    config = _config(tmp_path, **{"method.layer": "features.3", "metric.name": "pointing"})
    assert run_dir_for(config) == (tmp_path / "runs/ident/toy_gap/grad_cam@features.3/tiny"
                                   / f"pointing-{folder_hash(config)}")
    assert run_dir_for({**config, "force": True, "num_workers": 8, "progress": False}) == run_dir_for(config)


def test_shards_sit_in_the_folder_of_their_unsharded_job(tmp_path):
    shard = _config(tmp_path, **{"dataset.num_shards": 2, "dataset.shard": 1, "dataset.limit": 3})
    whole = _config(tmp_path, **{"dataset.limit": 6})
    assert run_dir_for(shard) == run_dir_for(whole) / "shard-1-of-2"


def test_force_never_removes_another_configurations_results(tmp_path):
    store = RunStore(tmp_path / "run")
    store.start({"a": 1}, "hash-a", force=False)
    store.write_part([{"image_id": "x", "class_id": 0}])
    for force in (False, True):
        with pytest.raises(RuntimeError, match="another configuration") as err:
            store.start({"a": 2}, "hash-b", force=force)
        assert "force=" not in str(err.value) and store.part_files()
    store.start({"a": 1}, "hash-a", force=True)  # its own configuration: replaced
    assert not store.part_files()


def test_a_run_without_records_is_no_obstacle(tmp_path):
    """A run stopped before its first record part (another ``on_error``) starts without ``force``."""
    store = RunStore(tmp_path / "run")
    store.start({"on_error": "raise"}, "hash-raise", force=False)
    store.start({"on_error": "record"}, "hash-record", force=False)
    assert json.loads((store.dir / "run_config.json").read_text())["config_hash"] == "hash-record"


def test_migrate_moves_old_layout_folders(tmp_path, capsys):
    config = _config(tmp_path)
    old = tmp_path / "runs/ident/toy_gap/grad_cam/tiny"
    write_json(old / "summary.json", {"config": config, "config_hash": config_hash(semantic_config(config)),
                                      "status": "finished"})
    (old / "records.parquet").write_bytes(b"x")
    assert migrate.main(["--results", str(tmp_path)]) == 0
    new = run_dir_for(config)
    assert new.parent == old and (new / "records.parquet").read_bytes() == b"x"
    assert json.loads((new / "summary.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in old.iterdir()) == [new.name]
    assert migrate.plan(tmp_path) == ([], [])


# --- through the CLI ------------------------------------------------------------------------------

def _cli(args, cache, results, ok=True):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BENCHMARK_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-m", "benchmark", *args, f"paths.results={results}", "progress=false",
                          "model=toy_gap", "dataset.limit=4", "batch_size=4"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert (out.returncode == 0) == ok, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_two_metric_sweep_finishes_four_jobs_in_four_folders(tiny_synthetic, tmp_path):
    _cli(["-m", "experiment_name=two", "metric=pointing,localization", "method=grad_cam,center"],
         tiny_synthetic, tmp_path)
    summaries = sorted((tmp_path / "runs/two").glob("**/summary.json"))
    assert len(summaries) == 4
    seen = {(s["method"], s["metric"]) for s in (json.loads(p.read_text()) for p in summaries)}
    assert seen == {(m, k) for m in ("grad_cam", "center") for k in ("pointing", "localization")}
    for path in summaries:  # Hydra's files sit in the run folder itself
        assert (path.parent / ".hydra/config.yaml").is_file() and (path.parent / "run.log").is_file()


@pytest.mark.slow
def test_layer_change_and_back_and_failed_runs_leave_no_trace(tiny_synthetic, tmp_path):
    _cli(["experiment_name=lay"], tiny_synthetic, tmp_path)
    _cli(["experiment_name=lay", "method.layer=features.10"], tiny_synthetic, tmp_path)
    back = _cli(["experiment_name=lay"], tiny_synthetic, tmp_path)
    assert "skip" in back.stdout + back.stderr
    base = tmp_path / "runs/lay/toy_gap"
    assert sorted(p.name for p in base.iterdir()) == ["grad_cam", "grad_cam@features.10"]
    (first,) = (base / "grad_cam/synthetic_val").iterdir()
    log_before = (first / "run.log").read_text()
    # a layer that does not exist, an option the method does not take: errors, and no folder
    _cli(["experiment_name=lay", "method.layer=nope"], tiny_synthetic, tmp_path, ok=False)
    _cli(["experiment_name=lay", "+method.options.bogus=1"], tiny_synthetic, tmp_path, ok=False)
    _cli(["experiment_name=typo", "+method.options.bogus=1"], tiny_synthetic, tmp_path, ok=False)
    assert sorted(p.name for p in base.iterdir()) == ["grad_cam", "grad_cam@features.10"]
    assert [p.name for p in (base / "grad_cam/synthetic_val").iterdir()] == [first.name]
    assert (first / "run.log").read_text() == log_before
    assert not (tmp_path / "runs/typo").exists()
