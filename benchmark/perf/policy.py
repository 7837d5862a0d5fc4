"""The recording policy of ``benchmark.perf``: rounds, load limit and machine facts, ratio ranges, verify tolerance.

A figure that the docs quote comes from a *recorded* section (``perf/sections.py``). Such a
section runs at least ``MIN_ROUNDS`` interleaved rounds (``timing.interleaved``), and each of its
ratios is kept as the median of its per-round ratios with their min and max (columns ``R``,
``R_min``, ``R_max``). The one-minute load average is read at the start, after each section and
at the end of the run; the run is *quiet* when every reading is at most ``LOAD_PER_CORE`` per core
(1.5 on 2 cores), else *loaded*. ``python -m benchmark.perf.recorded --record`` refuses a loaded run unless told to keep
it, and then the docs say "loaded" beside every figure of it.

``python -m benchmark.perf --verify`` reruns the recorded sections at a small budget; a fresh
ratio passes when it lies in the recorded ``[R_min, R_max]`` widened by ``VERIFY_TOLERANCE``
(``[R_min / (1 + t), R_max * (1 + t)]``): the recorded range covers the spread between rounds
of one run, the tolerance the spread between runs on a quiet machine.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

MIN_ROUNDS = 5
MAX_ROUNDS = 12
VERIFY_ROUNDS = (3, 5)
LOAD_PER_CORE = 0.75
VERIFY_TOLERANCE = 0.25


def load_limit(cpus: int | None = None) -> float:
    """The highest one-minute load average of a quiet run on ``cpus`` cores (default: this machine's)."""
    return LOAD_PER_CORE * (cpus or os.cpu_count() or 1)


def load_state(start: float, end: float, limit: float) -> str:
    """``quiet`` when the load average at the start and at the end are both at most ``limit``, else ``loaded``."""
    return "quiet" if max(start, end) <= limit else "loaded"


def ratio_stats(name: str, values: list[float]) -> dict[str, float]:
    """``{name: median, name_min: min, name_max: max}`` of per-round ratios (NaN where there are none)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {name: math.nan, f"{name}_min": math.nan, f"{name}_max": math.nan}
    return {name: statistics.median(values), f"{name}_min": min(values), f"{name}_max": max(values)}


def verify_bounds(lo: float, hi: float, tolerance: float = VERIFY_TOLERANCE) -> tuple[float, float]:
    """The recorded range ``[lo, hi]`` widened by ``tolerance`` on each side (ratios are positive)."""
    return lo / (1.0 + tolerance), hi * (1.0 + tolerance)


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (None where the file does not exist)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
