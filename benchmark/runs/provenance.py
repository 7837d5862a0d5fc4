"""What a summary records about where its numbers came from: versions, git hash, device."""

from __future__ import annotations

import contextlib
import os
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


@contextlib.contextmanager
def deterministic(device: torch.device, enabled: bool = True):
    """Scope: deterministic kernels where PyTorch offers them; yields what was set (for the summary).

    On CUDA (``enabled``): ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op with no
    deterministic kernel warns instead of failing), cuDNN deterministic with autotuning off, and
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set (cuBLAS needs it before its first call,
    so it is set before the model moves to the device). Everything is restored on exit. On the
    CPU the suite's kernels are deterministic as they are (a test compares two runs byte for byte),
    so nothing is changed there.
    """
    if not enabled or device.type != "cuda":
        yield {"requested": bool(enabled), "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
               "device": device.type}
        return
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield {"requested": True, "deterministic_algorithms": True, "warn_only": True, "cudnn_deterministic": True,
               "cudnn_benchmark": False, "cublas_workspace_config": os.environ["CUBLAS_WORKSPACE_CONFIG"],
               "device": device.type}
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
