"""Hydra's own printouts (``--cfg job|all``, ``--info config``) show no secret, long or short.

A fake W&B key in the environment, a long key and a short token given as overrides: stdout, stderr
and every file under the job's folder (its working directory and results root) are searched.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.runs.redact import REMOVED, redact_config_text

REPO = Path(__file__).resolve().parents[1]
ENV_KEY = "envkey0" + "3" * 33
CONFIG_KEY = "cfgkey0" + "5" * 33
SHORT = "tok42x"  # shorter than MIN_SECRET_LEN: masked by its key, not as a value


@pytest.mark.parametrize("flags", [("--cfg", "job"), ("--cfg", "all"), ("--info", "config")],
                         ids=["cfg-job", "cfg-all", "info-config"])
def test_printed_config_shows_no_secret(flags, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_API_KEY": ENV_KEY, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "benchmark", *flags, f"paths.results={tmp_path / 'results'}",
            f"+logger.api_key={CONFIG_KEY}", f"+paths.hf_token={SHORT}", "+paths.note=key ${logger.api_key}"]
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "api_key: " + REMOVED in out.stdout and "hf_token: " + REMOVED in out.stdout  # printed, masked
    for secret in (ENV_KEY, CONFIG_KEY, SHORT):
        assert secret not in out.stdout and secret not in out.stderr
        assert [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []


def test_config_text_is_masked_by_key_and_by_value():
    text = ("logger:\n  api_key: sk1\n  project: p\n- +logger.api_key=sk1\noverride_dirname: +paths.token=abc,seed=1\n"
            "  tokenizer: bert\n  note: has " + CONFIG_KEY + "\n")
    clean = redact_config_text(text, {CONFIG_KEY})
    assert clean == ("logger:\n  api_key: <removed>\n  project: p\n- +logger.api_key=<removed>\n"
                     "override_dirname: +paths.token=<removed>,seed=1\n  tokenizer: bert\n  note: has <removed>\n")
