"""Running ``python -m benchmark`` against the private cluster: the environment, background runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from private_cluster import PrivateCluster

REPO = Path(__file__).resolve().parents[2]
N_VAL = 200  # images in the Slurm tests' synthetic val split (the pre-emption test needs a job of some length)
# every sweep here: CPU jobs of one core and 1 GB (device=cpu also asks the launcher for no GPU)
LAUNCHER = ["hydra/launcher=slurm", "device=cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "model=toy_vgg"]


def job_env(cluster: PrivateCluster, cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a sweep and of its jobs (sbatch exports it): this cluster, this cache, this source."""
    env = {**cluster.env, "BENCHMARK_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}  # `python`
    env.pop("WANDB_API_KEY", None)
    env.update(extra)
    return env


def start_benchmark(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``python -m benchmark ARGS`` in the background, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float) -> tuple[int, str]:
    """Wait for a background run; its exit status and output (killed, and a failure, after ``timeout``)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"`{' '.join(map(str, proc.args[2:]))}` did not end in {timeout:.0f} s:\n"
                    f"{log.read_text(errors='replace')[-4000:]}")
    return proc.returncode, log.read_text(errors="replace")


def doc_commands(doc: Path = REPO / "docs" / "sweeps.md") -> dict[str, list[str]]:
    """The commands of the ``bash`` blocks of the guide, by the number of their section (``## 3. ...``)."""
    out: dict[str, list[str]] = {}
    section, block = None, None
    for line in doc.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].split(".", 1)[0].strip()
        elif line.strip() == "```bash":
            block = []
        elif line.strip() == "```" and block is not None:
            text = "\n".join(block).replace("\\\n", " ")
            out.setdefault(section, []).extend(" ".join(c.split()) for c in text.splitlines() if c.strip())
            block = None
        elif block is not None:
            block.append(line)
    return out


def wait_for(ready, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"no {what} after {timeout:.0f} s")
