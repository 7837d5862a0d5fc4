"""Tracking never costs a result: a W&B run that cannot be opened degrades to offline (one warning)
or to no tracking at all, and the evaluation still runs and writes its records. No network is used:
``wandb.init`` is replaced by one that raises W&B's own ``CommError``."""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import wandb
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.tracking import _NullTracker, tracked

REPO = Path(__file__).resolve().parents[1]
DEADLINE = "Failed to get resume status for run: context deadline exceeded"


def _config(tmp_path: Path) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"paths.results={tmp_path / 'results'}", "model=toy_gap", "dataset.limit=2", "batch_size=2",
            "progress=false", "logger=wandb", "logger.mode=online"])
    return OmegaConf.to_container(cfg, resolve=True)


def _failing_online(real_init, calls):
    def init(*args, **kwargs):
        calls.append(kwargs["mode"])
        if kwargs["mode"] != "offline":
            raise wandb.errors.CommError(DEADLINE)
        return real_init(*args, **kwargs)
    return init


def test_unreachable_wandb_tracks_offline_with_one_warning(tiny_synthetic, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_files"))
    calls: list = []
    monkeypatch.setattr(wandb, "init", _failing_online(wandb.init, calls))
    config = _config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="benchmark.tracking"):
        with tracked(config) as tracker:
            summary = evaluate(config)
            tracker.log_summary(summary)
    assert calls == ["online", "offline"] and tracker.mode == "offline"
    warnings = [r.getMessage() for r in caplog.records if r.name == "benchmark.tracking"]
    assert len(warnings) == 1 and DEADLINE in warnings[0] and "offline" in warnings[0]
    assert summary["status"] == "finished" and (Path(summary["run_dir"]) / "records.parquet").is_file()
    assert list((tmp_path / "wandb_files").glob("wandb/offline-run-*/run-*.wandb"))


def test_wandb_failing_everywhere_leaves_the_job_untracked(tmp_path, monkeypatch, caplog):
    def init(*args, **kwargs):
        raise wandb.errors.CommError("quota exceeded")
    monkeypatch.setattr(wandb, "init", init)
    with caplog.at_level(logging.WARNING, logger="benchmark.tracking"):
        with tracked(_config(tmp_path)) as tracker:
            tracker.log_summary({"status": "finished"})
    assert isinstance(tracker, _NullTracker)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "benchmark.tracking"]
    assert "quota exceeded" in warning and "untracked" in warning


PATCH = textwrap.dedent("""
    import wandb

    def init(*args, **kwargs):
        raise wandb.errors.CommError("Failed to get resume status: context deadline exceeded")

    wandb.init = init
""")


def test_cli_job_writes_its_records_when_wandb_fails(tiny_synthetic, tmp_path):
    """Through ``python -m benchmark``: a plugin module (imported before the job) breaks ``wandb.init``."""
    (tmp_path / "break_wandb.py").write_text(PATCH)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}", "BENCHMARK_CACHE": str(tiny_synthetic),
           "WANDB_API_KEY": "fakekey0" + "1" * 32, "WANDB_MODE": "online", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "benchmark", "plugins=[break_wandb]", "logger=wandb", "model=toy_gap",
            "dataset.limit=2", "batch_size=2", "progress=false", f"paths.results={tmp_path / 'results'}"]
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    (summary,) = (tmp_path / "results" / "runs").rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "finished" and (summary.parent / "records.parquet").is_file()
    assert (out.stdout + out.stderr).count("W&B could not open the run") == 1
