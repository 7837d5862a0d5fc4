"""A finished job answers at once: ``python -m benchmark`` decides "already finished" before importing
torch, torchvision or any registry.

``answer_finished(argv)`` composes the config with Hydra's compose API, computes the run's identity
(``benchmark.runs.identity``, which reads the dataset and plugin digests without the data libraries)
and, when the run folder holds a finished summary of that identity, prints the skip line and returns
True. Anything else (a flag such as ``-m`` or ``--cfg``, ``force=true``, plugins, W&B, a model with a
training-overlap declaration or a checkpoint, Hydra overrides, any error) returns False and the command
takes the full path, which reports errors, checks the training overlap and runs the job.
"""

from __future__ import annotations

import sys

from benchmark.paths import REPO_ROOT

SLOW_KEYS = ("plugins", "force", "logger", "hydra")


def _eligible(argv: list[str]) -> bool:
    for arg in argv:
        if arg.startswith("-"):
            return False
        key = arg.lstrip("+~").split("=", 1)[0]
        if key.split(".", 1)[0] in SLOW_KEYS:
            return False
    return True


def finished_config(argv: list[str]) -> tuple[dict | None, str | None]:
    """``(summary, run folder)`` of the finished run the command line names, or ``(None, None)``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from benchmark.runs.identity import job_state, register_hydra
    from benchmark.runs.redact import public_config, secret_values

    register_hydra()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(argv))
    config = OmegaConf.to_container(cfg, resolve=True)
    model = config.get("model") or {}
    if config.get("force") or config.get("plugins") or model.get("trained_on") or model.get("checkpoint"):
        return None, None
    if (config.get("logger") or {}).get("name", "none") != "none":
        return None, None
    run_dir, _, summary = job_state(public_config(config, secret_values(config, argv)))
    return summary, str(run_dir)


def answer_finished(argv: list[str]) -> bool:
    """Print the skip line and return True when the command's job already finished; False otherwise."""
    if not _eligible(argv):
        return False
    try:
        summary, run_dir = finished_config(argv)
    except Exception:  # noqa: BLE001  (any doubt: the full path decides and reports)
        return False
    if summary is None:
        return False
    print(f"skip {run_dir}: finished with the same configuration (force=true to redo)", file=sys.stderr)
    return True
