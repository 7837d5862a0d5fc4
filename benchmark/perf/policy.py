"""The recording policy of ``benchmark.perf``: rounds, load limit and machine facts, ratio ranges, verify tolerance.

A figure that the docs quote comes from a *recorded* section (``perf/sections.py``). Such a
section runs at least ``MIN_ROUNDS`` interleaved rounds (``timing.interleaved``), and each of its
ratios is kept as the median of its per-round ratios with their min and max (columns ``R``,
``R_min``, ``R_max``).

The run is *quiet* when the one-minute load average at its start is at most ``LOAD_PER_CORE``
per core (1.5 on 2 cores) and, during every section, the other processes of the machine used at
most ``OTHER_CPU_PER_CORE`` of its cores on average (``CpuMeter``: the machine's busy CPU time from
``/proc/stat`` less this process's own, its threads and reaped children included); else *loaded*.
The load average during and after a section is recorded too, but it counts the bench's own
threads (about one per core), so it cannot tell a quiet machine from a loaded one.
``python -m benchmark.perf.recorded --record`` refuses a loaded run unless told to keep
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
import time
from pathlib import Path

MIN_ROUNDS = 5
MAX_ROUNDS = 12
VERIFY_ROUNDS = (3, 5)
LOAD_PER_CORE = 0.75
OTHER_CPU_PER_CORE = 0.1
VERIFY_TOLERANCE = 0.25


def load_limit(cpus: int | None = None) -> float:
    """The highest one-minute load average of a quiet run on ``cpus`` cores (default: this machine's)."""
    return LOAD_PER_CORE * (cpus or os.cpu_count() or 1)


def other_cpu_limit(cpus: int | None = None) -> float:
    """The most cores that other processes may use on average during a section of a quiet run."""
    return OTHER_CPU_PER_CORE * (cpus or os.cpu_count() or 1)


def load_state(start: float, limit: float, other_cores: float | None = None, other_limit: float | None = None) -> str:
    """``quiet`` when the load average at the start is at most ``limit`` and the other processes' CPU use
    (``other_cores``, the highest over the sections; None where it could not be read) is at most
    ``other_limit`` (default ``other_cpu_limit()``), else ``loaded``."""
    if start > limit:
        return "loaded"
    if other_cores is not None and other_cores > (other_cpu_limit() if other_limit is None else other_limit):
        return "loaded"
    return "quiet"


class CpuMeter:
    """How many cores the *other* processes of the machine used between two readings.

    ``/proc/stat``'s busy time (user, nice, system, irq, softirq, steal) less this process's own CPU
    time (``os.times``: every thread, and children once reaped, e.g. data-loader workers). None where
    ``/proc/stat`` cannot be read (not Linux)."""

    def __init__(self) -> None:
        self.last = self.reading()

    @staticmethod
    def reading() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = sum(ticks[i] for i in (0, 1, 2, 5, 6, 7)) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system

    def other_cores(self) -> float | None:
        """Average cores used by other processes since the previous call (or the meter's creation)."""
        now = self.reading()
        before, self.last = self.last, now
        if now is None or before is None or now[0] <= before[0]:
            return None
        return max(0.0, ((now[1] - before[1]) - (now[2] - before[2])) / (now[0] - before[0]))


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
