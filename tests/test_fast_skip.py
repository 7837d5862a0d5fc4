"""A finished job answers before torch is imported; the command line and the API share one cache root."""

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmark.config import validated
from benchmark.paths import cache_dir
from benchmark.runs.identity import job_state, register_hydra
from benchmark.runs.store import write_json

REPO = Path(__file__).resolve().parents[1]
ARGS = ["model=toy_vgg", "dataset.limit=4", "batch_size=4", "experiment_name=fast"]


def _composed(overrides):
    register_hydra()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def test_a_finished_job_is_answered_without_importing_torch(tmp_path):
    results = tmp_path / "res"
    overrides = [*ARGS, f"paths.results={results}"]
    run_dir, digest, _ = job_state(OmegaConf.to_container(_composed(overrides), resolve=True))
    write_json(run_dir / "summary.json", {"config_hash": digest, "status": "finished"})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", *overrides], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"skip {run_dir}: finished with the same configuration" in out.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "torchvision", "benchmark.methods", "benchmark.evaluate", "pandas"}, imported
    assert sorted(p.name for p in run_dir.iterdir()) == ["summary.json"]  # nothing written on a skip


def test_the_command_line_and_the_api_resolve_one_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCHMARK_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory does not choose the cache
    composed = OmegaConf.to_container(_composed(["dataset=real_photos"]), resolve=True)
    api = validated({"model": {"name": "resnet18"}, "method": {"name": "grad_cam"}, "metric": {"name": "pointing"},
                     "dataset": {"name": "real_photos", "root": "${paths.cache}/data/real_photos/manifest"}})
    assert composed["paths"]["cache"] == api["paths"]["cache"] == str(cache_dir())
    assert composed["dataset"]["root"] == api["dataset"]["root"]
    assert Path(composed["paths"]["cache"]).is_absolute()
