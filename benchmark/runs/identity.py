"""What identifies a run: its semantic configuration, the hash of it, and its run folder.

A run's identity is its whole semantic configuration (``semantic_config``: the config without the
``NON_SEMANTIC`` keys); ``config_hash`` of it decides whether a finished run is skipped or redone,
and ``run_dir_for`` places it. ``job_state`` asks the run store whether a job finished with its
current configuration, without running the loop (used by the evaluation loop, ``benchmark.demo``,
the shard merge and the W&B mirror).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchmark.runs.redact import public_config, secret_values
from benchmark.runs.store import RunStore

NON_SEMANTIC = ("force", "logger", "num_workers", "overlap_postprocessing", "paths", "part_size", "progress")
DECLARATIONS = (("model", "trained_on"), ("dataset", "parts"))  # checked by the overlap guard, not hashed


def config_hash(config: dict) -> str:
    """Stable hash of the settings that change results."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_dir_for(config: dict) -> Path:
    """``<results>/runs/<experiment>/<model>/<method label>/<dataset>[/shard-i-of-n]``."""
    ds = config["dataset"]
    path = (Path(config["paths"]["results"]) / "runs" / config["experiment_name"] / config["model"]["name"]
            / config["method"]["label"] / ds["name"])
    return path / f"shard-{ds['shard']}-of-{ds['num_shards']}" if ds.get("num_shards", 1) > 1 else path


def semantic_config(config: dict) -> dict:
    """The settings that change results, as hashed to skip finished jobs: the config without the
    ``NON_SEMANTIC`` keys and, for a generated dataset, the generator's version (the synthetic data
    and the toy models trained on it change with it, so jobs finished on older data run again)."""
    out = {k: v for k, v in config.items() if k not in NON_SEMANTIC}
    for group, key in DECLARATIONS:  # facts about the data, not settings: unset, they leave the hash as it was
        if isinstance(out.get(group), dict) and key in out[group]:
            out[group] = {k: v for k, v in out[group].items() if k != key}
    if (config.get("dataset") or {}).get("generate"):
        from data_prep.synthetic import VERSION

        out["generated_inputs_version"] = VERSION
    return out


def job_state(config: dict, run_dir: Path | None = None) -> tuple[Path, str, dict | None]:
    """``(run folder, config hash, summary if it finished with this config else None)``."""
    return public_job_state(public_config(config, secret_values(config)), run_dir)


def public_job_state(config: dict, run_dir: Path | None = None) -> tuple[Path, str, dict | None]:
    """``job_state`` of a config whose secrets are already removed."""
    run_dir = Path(run_dir or run_dir_for(config))
    digest = config_hash(semantic_config(config))
    return run_dir, digest, RunStore(run_dir).finished(digest)
