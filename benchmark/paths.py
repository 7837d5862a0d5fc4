"""Where the suite keeps its generated data, trained toy models and results."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Git-ignored cache for generated data and toy models (``$BENCHMARK_CACHE`` overrides)."""
    return Path(os.environ.get("BENCHMARK_CACHE", REPO_ROOT / ".cache")).resolve()


def synthetic_root() -> Path:
    return cache_dir() / "data" / "synthetic"


def models_dir() -> Path:
    return cache_dir() / "models"
