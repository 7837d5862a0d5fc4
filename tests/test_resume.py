"""A run killed mid-way (SIGKILL) and restarted ends with the records of an uninterrupted run.

Both runs are real ``python -m benchmark`` processes on the tiny synthetic data, with
parts of 2 images so parts are written as the run goes. The restarted run must resume from the
complete parts (not start over), ignore the temporary file a kill during a write leaves behind,
and finish with a ``records.parquet`` byte-identical to the uninterrupted run's. The slow test
sends submitit's pre-emption signal to a job of the local launcher and checks it is requeued and
resumes, as a pre-empted Slurm job does.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import run_dir_for
from benchmark.runs.store import RunStore

REPO = Path(__file__).resolve().parents[1]
JOB = ["model=toy_gap", "method=grad_cam", "dataset.limit=8", "batch_size=2", "part_size=2"]


def _start(results: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "BENCHMARK_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "benchmark", *JOB, "experiment_name=resume", f"paths.results={results}"]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]


def _run_dir(results: Path, experiment: str = "resume") -> Path:
    """The run folder the job gets (its last part is the metric and the configuration's hash)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*JOB, f"experiment_name={experiment}", f"paths.results={results}"])
    return run_dir_for(OmegaConf.to_container(cfg, resolve=True))


def test_killed_run_resumes_to_identical_records(tiny_synthetic, tmp_path):
    reference = _start(tmp_path / "uninterrupted", tiny_synthetic)  # runs alongside the one we kill
    victim_dir = _run_dir(tmp_path / "killed")
    victim = _start(tmp_path / "killed", tiny_synthetic)
    parts = victim_dir / "parts"
    while victim.poll() is None and not list(parts.glob("part-*.parquet")):
        time.sleep(0.02)
    victim.kill()  # SIGKILL: no cleanup handler runs
    victim.communicate(timeout=60)
    assert victim.returncode == -9, "the run finished before it could be killed"
    assert not (victim_dir / "summary.json").exists() and not (victim_dir / "records.parquet").exists()
    kept = {p.name: p.read_bytes() for p in parts.glob("part-*.parquet")}
    assert 1 <= len(kept) < 4  # 8 images in parts of 2: killed mid-way
    # what a kill during a part write leaves: the temporary file of atomic_write_bytes, half written
    first = next(iter(kept.values()))
    stale = parts / f".part-{len(kept):06d}.parquet.k1ll3d.tmp"
    stale.write_bytes(first[: len(first) // 2])
    assert stale not in RunStore(victim_dir).part_files()

    _finish(_start(tmp_path / "killed", tiny_synthetic))
    _finish(reference)
    ref_dir = _run_dir(tmp_path / "uninterrupted")
    assert (victim_dir / "records.parquet").read_bytes() == (ref_dir / "records.parquet").read_bytes()
    records = pd.read_parquet(victim_dir / "records.parquet")
    assert len(records) == 8 and records["image_id"].is_unique and records["image_id"].is_monotonic_increasing
    resumed_images = sum(len(pd.read_parquet(parts / name)) for name in kept)
    assert json.loads((victim_dir / "timing.json").read_text())["images_resumed"] == resumed_images
    for name, data in kept.items():  # the parts written before the kill were reused, not rewritten
        assert (parts / name).read_bytes() == data
    assert not stale.exists()  # the next run of the folder removed the stale temporary file
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (victim_dir, ref_dir))
    assert ours["metrics"] == theirs["metrics"] and ours["config_hash"] == theirs["config_hash"]
    assert ours["counts"] == theirs["counts"] == {"images": 8, "records": 8}
    # Hydra's job log in the run folder is appended to: progress lines of both attempts
    log = (victim_dir / "run.log").read_text()
    left = 8 - resumed_images
    assert re.search(r"synthetic_val: [1-7]/8 images", log) and f"synthetic_val: {left}/{left} images (100%)" in log


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the job process through /proc")
def test_preempted_submitit_job_is_requeued_and_resumes(tiny_synthetic, tmp_path):
    """Submitit's pre-emption signal (USR2) to a running job of the local launcher: the launcher
    checkpoints itself, the job is requeued with the same overrides and resumes from its parts."""
    results = tmp_path / "results"
    env = {**os.environ, "BENCHMARK_CACHE": str(tiny_synthetic), "PYTHONUNBUFFERED": "1"}
    sweep = subprocess.Popen([sys.executable, "-m", "benchmark", "-m", "hydra/launcher=local", *JOB,
                              "experiment_name=preempt", f"paths.results={results}"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = _run_dir(results, "preempt")
    while sweep.poll() is None and not list((run_dir / "parts").glob("part-*.parquet")):
        time.sleep(0.02)
    submitit_dir = results / "runs" / "preempt" / ".submitit"
    (controller,) = [int(p.name) for p in submitit_dir.iterdir() if p.name.isdigit()]  # local job id = its pid
    (task,) = _children(controller)
    os.kill(task, signal.SIGUSR2)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-4000:]
    job_log = (submitit_dir / str(controller) / f"{controller}_0_log.out").read_text()
    assert job_log.count("Starting with JobEnvironment") == 2  # the same job, started again
    assert "this job is preempted" in job_log and "Calling checkpoint method" in job_log and "Requeued job" in job_log
    assert json.loads((run_dir / "timing.json").read_text())["images_resumed"] in (2, 4, 6)  # resumed mid-way
    records = pd.read_parquet(run_dir / "records.parquet")
    assert len(records) == 8 and records["image_id"].is_unique and records["image_id"].is_monotonic_increasing
    assert json.loads((run_dir / "summary.json").read_text())["counts"] == {"images": 8, "records": 8}
