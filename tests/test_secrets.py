"""Secrets (the W&B API key, tokens, passwords) never reach a run's files, logs or the W&B run.

The end-to-end test runs the Hydra entry as a user would, with a recognizable fake key in
``$WANDB_API_KEY`` and another given in the config (``+logger.api_key=...``, and interpolated into a
harmless-looking field), W&B on in offline mode, as a two-job multirun whose second job fails: the
launcher's lines and the failed job's one-block error pass through (Hydra's "Error executing job with
overrides" line is held back for a user error; ``verbose=true`` releases it, masked like the rest).
Every file under the results root and the W&B folder, and the captured output, are then searched.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.runs import redact

REPO = Path(__file__).resolve().parents[1]
ENV_KEY = "envkey0" + "3" * 33  # 40 characters, like a real W&B key
CONFIG_KEY = "cfgkey0" + "5" * 33


def _files_holding(needle: bytes, *roots: Path) -> list[str]:
    return [str(p) for r in roots for p in Path(r).rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_keys_from_env_and_config_reach_no_file_log_or_wandb_run(tiny_synthetic, tmp_path):
    results, wandb_dir = tmp_path / "results", tmp_path / "wandb_files"
    env = {**os.environ, "BENCHMARK_CACHE": str(tiny_synthetic), "WANDB_API_KEY": ENV_KEY, "WANDB_MODE": "offline",
           "WANDB_DIR": str(wandb_dir), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    # toy_gap has a layer 'avgpool', toy_vgg has not: the second job fails after its logging started
    args = [sys.executable, "-m", "benchmark", "-m", "model=toy_gap,toy_vgg", "method.layer=avgpool", "logger=wandb",
            "dataset.limit=3", "batch_size=3", "progress=false", "experiment_name=secrets",
            f"paths.results={results}", f"+logger.api_key={CONFIG_KEY}", "+paths.note=key is ${logger.api_key}"]
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    captured = out.stdout + out.stderr
    assert out.returncode == 2, captured[-4000:]  # a user error: one block, exit status 2
    assert "config field 'method.layer' is 'avgpool'" in captured
    assert "Error executing job with overrides" not in captured and "+logger.api_key=<removed>" in captured
    for key in (ENV_KEY, CONFIG_KEY):
        assert key not in captured
        assert _files_holding(key.encode(), results, wandb_dir) == []

    # the scrub happened where the key would have been (not merely nothing written)
    runs = results / "runs" / "secrets"
    (ok,) = (runs / "toy_gap" / "grad_cam@avgpool" / "synthetic_val").glob("localization-*")
    assert not (runs / "toy_vgg").exists()  # the failed job wrote no result: its folder was removed
    summary = json.loads((ok / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["config"]["paths"]["note"] == "key is <removed>"
    assert "api_key" not in summary["config"]["logger"]
    assert "api_key" not in json.loads((ok / "run_config.json").read_text())["config"]["logger"]
    assert "+logger.api_key=<removed>" in (ok / ".hydra" / "overrides.yaml").read_text()
    assert "api_key" not in OmegaConf.load(ok / ".hydra" / "config.yaml").logger
    assert "+logger.api_key=<removed>" in (runs / "multirun.yaml").read_text()
    offline = sorted(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(offline) == 2 and all(b"<removed>" in p.read_bytes() for p in offline)  # argv and config, masked


def test_evaluate_drops_secret_keys_before_hashing_and_writing(tiny_synthetic, tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "model=toy_gap", "dataset.limit=2", "progress=false", f"paths.results={tmp_path}",
            f"+logger.api_key={CONFIG_KEY}", f"+paths.hf_token={CONFIG_KEY[::-1]}",
            f"+method.label_note=x{CONFIG_KEY}"])
    summary = evaluate(cfg)  # a composed config keeps its '+' keys (a plain dict is checked against the schema)
    run = Path(summary["run_dir"])
    assert summary["config"]["method"]["label_note"] == "x<removed>"
    assert "api_key" not in summary["config"]["logger"] and "hf_token" not in summary["config"]["paths"]
    for key in (CONFIG_KEY, CONFIG_KEY[::-1]):
        assert _files_holding(key.encode(), run) == [] and key not in json.dumps(summary)


def test_secret_key_names():
    secret = ["api_key", "API_KEY", "apiKey", "wandb_api_key", "WANDB_API_KEY", "access_token", "accessToken",
              "token", "password", "db_passwd", "client_secret", "credentials", "auth", "private_key"]
    harmless = ["author", "tokenizer", "key", "keys", "layer", "monkey", "passage", "secretary", "authority"]
    assert [k for k in secret if not redact.is_secret_key(k)] == []
    assert [k for k in harmless if redact.is_secret_key(k)] == []


def test_public_config_masks_known_secrets_but_not_short_values():
    secrets = redact.secret_values({"logger": {"api_key": CONFIG_KEY, "token": "1"}},
                                   environ={"WANDB_API_KEY": ENV_KEY})
    assert {CONFIG_KEY, ENV_KEY} <= secrets
    config = {"experiment_name": "1", "url": f"https://u:{ENV_KEY}@host", "logger": {"api_key": CONFIG_KEY}}
    assert redact.public_config(config, secrets) == {"experiment_name": "1", "url": "https://u:<removed>@host",
                                                     "logger": {}}
    assert redact.scrub_overrides([f"+logger.api_key={CONFIG_KEY}", "model=toy_gap", f"x=a{ENV_KEY}"], secrets) == [
        "+logger.api_key=<removed>", "model=toy_gap", "x=a<removed>"]


def test_log_filter_masks_messages_arguments_and_tracebacks(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", ENV_KEY)
    try:
        raise RuntimeError(f"failed with key {ENV_KEY}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "using %s", (ENV_KEY,), sys.exc_info())
    assert redact.RedactFilter().filter(record)
    text = logging.Formatter().format(record)
    assert ENV_KEY not in text and "using <removed>" in text and "failed with key <removed>" in text
