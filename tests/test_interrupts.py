"""Interrupts keep the scored work and say so; parts are flushed by time; progress speaks from the start."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import benchmark.evaluate as ev
from benchmark.progress import Progress, cost_per_map
from benchmark.runs.store import Interrupted, PartWriter, RunStore

REPO = Path(__file__).resolve().parents[1]


def _config(results, **extra):
    return {"experiment_name": "intr", "seed": 0, "batch_size": 2, "part_size": 512, "progress": True,
            "paths": {"results": str(results)}, "model": {"name": "toy_gap"},
            "method": {"name": "grad_cam", "label": "grad_cam", "options": {}},
            "metric": {"name": "localization", "options": {}},
            "dataset": {"name": "synthetic_val", "root": "${paths.cache}/data/synthetic/manifests/val", "split": "val",
                        "generate": "synthetic", "limit": 8}, **extra}


def _interrupt_on_batch(monkeypatch, n):
    """The n-th batch's device phase raises KeyboardInterrupt, as Ctrl-C during it would."""
    real = ev.build_metric
    calls = {"n": 0}

    def build(name, **options):
        metric = real(name, **options)
        prepare = metric.prepare_batch

        def interrupted(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return prepare(*args, **kwargs)

        metric.prepare_batch = interrupted
        return metric

    monkeypatch.setattr(ev, "build_metric", build)


def test_an_interrupt_keeps_the_scored_rows_and_the_rerun_says_it_resumes(tiny_synthetic, tmp_path, monkeypatch, caplog):
    """With the default part size (512) an interrupted 8-image job used to keep nothing."""
    _interrupt_on_batch(monkeypatch, 3)
    with pytest.raises(Interrupted) as stop:
        ev.evaluate(_config(tmp_path))
    assert str(stop.value) == "interrupted after 4 of 8 images; 4 kept; rerun the same command to resume"
    monkeypatch.undo()
    with caplog.at_level(logging.INFO):
        summary = ev.evaluate(_config(tmp_path))
    assert summary["status"] == "finished" and summary["counts"]["records"] >= 8
    assert "resuming: 4 of 8 images reused from record parts" in caplog.messages
    assert any("4 images to compute (4 reused from record parts)" in m for m in caplog.messages)


def test_an_interrupt_before_the_first_part_leaves_no_folder(tiny_synthetic, tmp_path, monkeypatch):
    _interrupt_on_batch(monkeypatch, 1)
    with pytest.raises(Interrupted, match="after 0 of 8 images; 0 kept"):
        ev.evaluate(_config(tmp_path))
    assert not any((tmp_path / "runs").rglob("*")), list((tmp_path / "runs").rglob("*"))


def test_parts_are_flushed_by_time_as_well_as_by_count(tmp_path):
    now = [0.0]
    store = RunStore(tmp_path / "run")
    store.parts.mkdir(parents=True)
    writer = PartWriter(store, size=100, seconds=60, clock=lambda: now[0])
    writer.add([{"image_id": "a", "class_id": 0}])
    assert store.part_files() == []
    now[0] = 61.0
    writer.add([{"image_id": "b", "class_id": 0}])
    assert len(store.part_files()) == 1 and sorted(store.done_ids()) == ["a", "b"]
    writer.add([{"image_id": str(i), "class_id": 0} for i in range(100)])  # by count
    assert len(store.part_files()) == 2


def test_progress_starts_with_a_line_and_beats_while_a_batch_runs(caplog):
    with caplog.at_level(logging.INFO, logger="benchmark.progress"):
        with Progress(4, "m/x/d", heartbeat=0.05, cost=cost_per_map("occlusion", {"stride": 8})):
            time.sleep(0.3)  # one long batch: no update
    assert caplog.messages[0] == ("m/x/d: 4 images to compute; each map costs 785 forwards "
                                  "(stride 8: 784 occluded inputs + the original)")
    assert sum("still working: 0/4 images done" in m for m in caplog.messages) >= 2
    assert cost_per_map("grad_cam", {}) == "1 forward + 1 backward"


@pytest.mark.slow  # a real process interrupted mid-run: tens of seconds on a loaded machine
def test_ctrl_c_prints_one_line_and_exits_130(tiny_synthetic, tmp_path):
    env = {**os.environ, "BENCHMARK_CACHE": str(tiny_synthetic), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "benchmark", "model=toy_gap", "method=occlusion", "method.options.stride=2",
            "dataset.limit=24", "batch_size=1", "part_seconds=0.5", "progress=false",
            f"paths.results={tmp_path}"]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("runs/**/parts/part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the first time-flushed part: the job is under way and has work to keep
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert last.startswith("interrupted after ") and last.endswith("kept; rerun the same command to resume"), out[-2000:]
    assert " 0 kept" not in last
