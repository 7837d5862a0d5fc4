"""Sweeps through the real ``hydra/launcher=slurm`` (submitit) on the private one-node cluster.

The sweeps that need little from the test (a time-out, a failing job, W&B offline, a job to
cancel) start in the background when the first test of this module runs, so the ~4.5 minutes of the
time-out (two attempts of a 2-minute job) overlap the other tests; each check waits for its sweep.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra_plugins.benchmark_launcher.submitit_launcher import squeue_state

from slurm_jobs import LAUNCHER, N_VAL, REPO, doc_commands, finish, job_env, start_benchmark, wait_for

# a 2-minute job that needs far longer: occlusion at stride 1 takes seconds per image (at nice 19, so the
# other tests keep the CPU); one requeue, then it fails. Slurm checks time limits every 30 s, so USR2
# comes 1 to 31 s before the end; a 1-minute limit could signal a job still importing torch on a busy
# machine, which a signal kills before submitit can catch it.
TIMEOUT_SWEEP = ["method=grad_cam", "metric=occlusion_correlation", "metric.options.stride=1", "batch_size=1",
                 "part_size=1", f"dataset.limit={N_VAL}", "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=1",
                 "hydra.launcher.max_num_timeout=1",
                 'hydra.launcher.setup=["export PYTHONUNBUFFERED=1","export OMP_NUM_THREADS=1",'
                 '"renice -n 19 -p $$ >/dev/null"]']
# a sweep of three jobs, one with a layer toy_vgg does not have
FAILING_SWEEP = ["method=grad_cam", "method.layer=features.16,features.99,features.12", "dataset.limit=4"]
WANDB_SWEEP = ["method=grad_cam,gradient", "dataset.limit=4", "logger=wandb"]
# a job cancelled while it runs ends without a result (submitit ignores SIGTERM; SIGKILL follows)
CANCELLED_SWEEP = ["method=grad_cam", "batch_size=1", f"dataset.limit={N_VAL}", "hydra.launcher.timeout_min=20"]


def only(paths):
    (path,) = list(paths)
    return path


def job_folder(submitit: Path) -> Path:
    """The submitit folder of a sweep's only job: ``<id>/`` (one job) or ``<array id>_<task>/`` (an array)."""
    return only(p.parent for p in submitit.glob("*/*_submitted.pkl"))


@pytest.fixture(scope="module")
def background(slurm_cluster, slurm_cache, tmp_path_factory):
    """Start the waiting sweeps: ``{name: (process, log, results root)}``; killed if still running at the end."""
    root = tmp_path_factory.mktemp("background")
    runs = {}
    for name, args, extra in (("timeout", TIMEOUT_SWEEP, {}), ("failing", FAILING_SWEEP, {}),
                              ("wandb", WANDB_SWEEP, {"WANDB_MODE": "offline"}), ("cancelled", CANCELLED_SWEEP, {})):
        results = root / name
        if name == "timeout":  # its occlusion maps are cached under its results too: all checked for torn files
            args = [*args, f"metric.options.cache_dir={results / 'occlusion-cache'}"]
        env = job_env(slurm_cluster, slurm_cache, **extra)
        log = root / f"{name}.log"
        runs[name] = (start_benchmark(["-m", *LAUNCHER, *args, f"experiment_name={name}", f"paths.results={results}"],
                                      env, log), log, results)
    yield runs
    for proc, _, _ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_folders(results: Path, experiment: str, method: str) -> list[Path]:
    return sorted((results / "runs" / experiment / "toy_vgg" / method).glob("*/localization-*"))


def test_a_job_cancelled_while_running_fails_with_its_log_named(slurm_cluster, background, monkeypatch):
    """Without accounting (sacct), submitit alone would wait forever for a job that ended without a result."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    proc, log, results = background["cancelled"]
    submitit = results / "runs/cancelled/.submitit"
    wait_for(lambda: list(submitit.glob("*/*_submitted.pkl")), 300, "submitted job")
    job = job_folder(submitit).name
    wait_for(lambda: squeue_state(job) == "RUNNING", 300, f"job {job} running")
    subprocess.run(["scancel", job], env=slurm_cluster.env, check=True, timeout=30)
    code, out = finish(proc, log, 180)
    assert code == 1, out[-4000:]
    assert "1 of 1 jobs failed" in out and f"(Slurm job {job}): Job {job}" in out and "has not produced any output" in out
    assert f"log: {results}/runs/cancelled/.submitit/{job}/{job}_0_log.out" in out, out[-4000:]


def _first_part(results: Path, timeout: float) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        parts = sorted(results.glob("runs/**/parts/part-*.parquet"))
        if parts:
            return parts[0]
        time.sleep(0.1)
    pytest.fail(f"no record part under {results} after {timeout:.0f} s")


def test_preempted_job_is_requeued_and_resumes_from_its_parts(slurm_cluster, slurm_cache, background, tmp_path):
    env = job_env(slurm_cluster, slurm_cache)
    # timeout_min=20: submitit counts a USR2 in the first 10 minutes as a pre-emption, not a time-out
    args = ["model=toy_vgg", "device=cpu", "method=grad_cam", "batch_size=1", "part_size=10",
            f"dataset.limit={N_VAL}", "experiment_name=preempt"]
    local = start_benchmark(["-m", *args, f"paths.results={tmp_path / 'plain'}"], env, tmp_path / "plain.log")
    results, log = tmp_path / "slurm", tmp_path / "slurm.log"
    sweep = start_benchmark(["-m", *LAUNCHER, *args, "hydra.launcher.timeout_min=20", f"paths.results={results}"],
                            env, log)
    _first_part(results, 240)
    job = job_folder(results / "runs/preempt/.submitit").name
    (scancel,) = doc_commands()["3"]  # the guide's command
    subprocess.run(["bash", "-c", scancel.replace("<array id>_<task>", job)], env=env, check=True, timeout=30)
    code, out = finish(sweep, log, 300)
    assert code == 0, out[-4000:]
    job_log = (results / f"runs/preempt/.submitit/{job}/{job}_0_log.out").read_text()
    assert "this job is preempted" in job_log and f"Requeued job {job}" in job_log, job_log[-3000:]
    run = only(run_folders(results, "preempt", "grad_cam"))
    resumed = json.loads((run / "timing.json").read_text())["images_resumed"]
    computed = N_VAL - resumed
    assert 0 < resumed < N_VAL, f"{resumed} of {N_VAL} images from parts"
    # the requeued attempt's progress counts only the images it computed itself
    last_attempt = job_log.rsplit("Starting with JobEnvironment", 1)[1]
    assert f"toy_vgg/grad_cam/synthetic_val: {computed}/{computed} images (100%)" in last_attempt, last_attempt[-3000:]
    reused = re.search(r"resuming: (\d+) of (\d+) images reused", last_attempt)
    assert reused is None or (int(reused[1]), int(reused[2])) == (resumed, N_VAL)
    assert finish(local, tmp_path / "plain.log", 300)[0] == 0
    plain = only(run_folders(tmp_path / "plain", "preempt", "grad_cam"))
    assert run.name == plain.name and (run / "records.parquet").read_bytes() == (plain / "records.parquet").read_bytes()
    assert pd.read_parquet(run / "records.parquet")["image_id"].nunique() == N_VAL


def bash(command: str, cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"`{command}` exited with {out.returncode}:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def test_the_guide_sharded_sweep_watched_merged_and_rerun(slurm_cluster, slurm_cache, background, tmp_path):
    """The guide's commands (docs/sweeps.md, sections 1, 2, 4, 5) as written, from an empty folder; the
    merged records are byte-identical to those of a local unsharded run."""
    commands, env = doc_commands(), job_env(slurm_cluster, slurm_cache)
    guide = tmp_path / "guide"
    guide.mkdir()
    # the reference: one unsharded local run per method over the first 12 images (each shard keeps 6, strided)
    local = start_benchmark(["-m", "model=toy_vgg", "device=cpu", "method=grad_cam,gradient", "batch_size=2",
                             "dataset.limit=12", f"paths.results={tmp_path / 'single'}"], env, tmp_path / "single.log")
    (submit,) = commands["1"]
    assert "dataset.num_shards=2 dataset.shard=0,1 dataset.limit=6 batch_size=2" in submit
    with open(tmp_path / "sweep.log", "wb") as log:
        sweep = subprocess.Popen(["bash", "-c", submit], cwd=guide, env=env, stdout=log, stderr=subprocess.STDOUT)
    runs = guide / "results/runs/default"
    wait_for(lambda: len(list(runs.glob(".submitit/*_*/*_0_log.out"))) == 4
             and len(list(runs.glob("toy_vgg/*/synthetic_val/*/shard-*"))) == 4, 300, "4 running tasks")
    watched = "\n".join(bash(command, guide, env) for command in commands["2"])  # watching, while it runs
    assert "shard-0-of-2" in watched and "JOBID" in watched
    code, out = finish(sweep, tmp_path / "sweep.log", 300)
    assert code == 0, out[-4000:]
    script = only(runs.glob(".submitit/*/*_submission.sh")).read_text()
    assert "#SBATCH --array=0-3" in script and "#SBATCH --gpus-per-node=0" in script  # device=cpu: no GPU asked
    assert len(list(runs.glob(".submitit/*_*/*_result.pkl"))) == 4
    merge, report = commands["4"]
    assert bash(merge, guide, env).count("merged: ") == 2
    bash(report, guide, env)
    assert list((guide / "results/tables").iterdir())
    assert finish(local, tmp_path / "single.log", 300)[0] == 0
    records = {}
    for method in ("grad_cam", "gradient"):
        ours, theirs = (only(run_folders(root, "default", method)) for root in (guide / "results", tmp_path / "single"))
        assert ours.name == theirs.name  # the merged run is the unsharded run's folder (same config hash)
        assert [p.name for p in sorted(ours.glob("shard-*"))] == ["shard-0-of-2", "shard-1-of-2"]
        records[method] = (ours / "records.parquet").read_bytes()
        assert records[method] == (theirs / "records.parquet").read_bytes()
        a, b = (json.loads((r / "summary.json").read_text()) for r in (ours, theirs))
        assert a["config_hash"] == b["config_hash"] and a["metrics"] == b["metrics"] and a["counts"]["images"] == 12
    # 5: the command that reruns one job: it had finished, so it stops at once and changes nothing
    (rerun,) = commands["5"]
    assert "dataset.shard=1" in rerun and bash(rerun, guide, env).count("#0 :") == 1
    shard = only(runs.glob("toy_vgg/gradient/synthetic_val/*/shard-1-of-2"))
    assert "finished with the same configuration" in (shard / "run.log").read_text()
    assert (only(run_folders(guide / "results", "default", "gradient")) / "records.parquet").read_bytes() \
        == records["gradient"]


def test_the_guide_cluster_settings_compose(tmp_path):
    """Section 6's command, composed only (``--cfg hydra``): it names a partition this cluster lacks."""
    (command,) = doc_commands()["6"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert command.startswith("python -m benchmark -m ")
    composed = command.replace("python -m benchmark -m ", "python -m benchmark ", 1) + " --cfg hydra"  # no multirun
    out = subprocess.run(["bash", "-c", composed], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    launcher = yaml.safe_load(out.stdout)["hydra"]["launcher"]
    assert (launcher["partition"], launcher["account"], launcher["timeout_min"], launcher["mem_gb"]) == \
        ("gpu", "myproject", 600, 32)
    assert launcher["_target_"] == "hydra_plugins.benchmark_launcher.submitit_launcher.SlurmLauncher"


def test_failing_job_fails_alone_and_is_named(background):
    proc, log, results = background["failing"]
    code, out = finish(proc, log, 300)
    assert code == 2, out[-4000:]  # the failed job's error is a user error (benchmark.errors): exit status 2
    finished = [json.loads((r / "summary.json").read_text())["config"]["method"]["layer"]
                for r in (results / "runs/failing/toy_vgg").glob("grad_cam@*/*/localization-*")]
    assert sorted(finished) == ["features.12", "features.16"]  # the other two jobs finished
    match = re.search(r"1 of 3 jobs failed \(the others finished\):\n[^\n]*#1 [^\n]*method\.layer=features\.99"
                      r"[^\n]* \(Slurm job (\d+_1)\): ([^\n]*)\n\s+log: (\S+)", out)
    assert match, out[-4000:]
    assert "features.99" in match[2]
    job_log = Path(match[3])
    assert job_log == results / f"runs/failing/.submitit/{match[1]}/{match[1]}_0_log.out"
    text = job_log.read_text()  # where the report says: the one-block error of a user error, no traceback
    assert "run failed" in text and "error (ConfigError)" in text and "features.99" in text, text[-3000:]


def test_wandb_offline_writes_one_run_per_job(background):
    proc, log, results = background["wandb"]
    code, out = finish(proc, log, 300)
    assert code == 0, out[-4000:]
    offline = sorted((results / "wandb").glob("offline-run-*"))
    assert len(offline) == 2, out[-3000:]
    for run in offline:
        assert len(list(run.glob("run-*.wandb"))) == 1
    ids = {p.name.rsplit("-", 1)[1] for p in offline}
    assert len(ids) == 2


def test_timed_out_job_is_requeued_then_fails_leaving_only_complete_parts(background):
    proc, log, results = background["timeout"]
    code, out = finish(proc, log, 480)
    assert code == 1, out[-4000:]
    assert "timed-out too many times" in out and "1 of 1 jobs failed" in out, out[-4000:]
    job_dir = job_folder(results / "runs/timeout/.submitit")
    job_log = (job_dir / f"{job_dir.name}_0_log.out").read_text()
    signals = re.findall(r"^submitit WARNING .*Caught signal SIGUSR2.*this job is timed-out", job_log, re.M)
    assert len(signals) == 2 and "Requeued job" in job_log, job_log[-3000:]
    (run,) = sorted((results / "runs/timeout/toy_vgg/grad_cam").glob("*/occlusion_correlation-*"))
    assert not (run / "summary.json").exists() and not (run / "records.parquet").exists()
    assert not list(results.rglob("*.tmp")) and not list(results.rglob(".*.tmp"))
    parts = sorted((run / "parts").glob("part-*.parquet"))
    ids = [i for p in parts for i in pd.read_parquet(p)["image_id"]]  # every part is a readable, whole part
    assert len(ids) == len(set(ids)) == len(parts) and 0 < len(ids) < N_VAL
