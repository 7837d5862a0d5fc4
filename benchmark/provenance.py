"""What a summary records about where its numbers came from: versions, git hash, device."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

import torch

from benchmark.paths import REPO_ROOT

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scipy", "scikit-image", "hydra-core", "gradcam-benchmark")


def git_state() -> dict:
    """Commit hash and whether the tree had uncommitted changes (None outside a git checkout)."""
    def run(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_description(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
