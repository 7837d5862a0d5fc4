"""Timing and memory primitives of ``benchmark.perf``: interleaved rounds, robust statistics.

Contenders of one comparison run in *rounds* of *slots*: in each slot every contender makes one
call (one class of a K-class competitor, one repeat of a one-call contender), in an order rotated
from slot to slot, so a change of machine load (other processes on a shared CPU) hits all of them
alike; ratios are then taken from paired samples and summarized by their median.
A warm-up round (not recorded) comes first: it pays one-time costs (allocator growth, oneDNN
kernel selection, lazy imports) that a long evaluation run pays once.

Memory is read from ``/proc/self/status`` (``VmRSS`` now, ``VmHWM`` the peak); writing ``5`` to
``/proc/self/clear_refs`` resets the peak (Linux >= 4.0), so a peak can be attributed to one call:
``peak_mb`` is the peak resident memory during the contender's first timed call minus the resident
memory just before it (0 when the call fit into memory the process already held from earlier calls,
as the allocator keeps freed blocks).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock interval covers the work it launched."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_mb() -> dict[str, float]:
    """Resident set size now (``rss_mb``) and its peak since start or last reset (``hwm_mb``)."""
    out = {}
    for line in STATUS.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mb" if key == "VmRSS" else "hwm_mb"] = int(value.split()[0]) / 1024.0
    return out


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Contender:
    """One timed callable: ``maps`` maps per call (images x classes) and the tool it stands for.

    ``split`` names a second contender that receives each inner call's time: a competitor's
    K-class run is K one-class calls (its natural API, ``calls``), so every inner call is also a
    one-class sample and the one-class figure costs no extra run. ``repeat``: calls per round (each one a
    sample), so a cheap contender beside expensive ones gets as many samples as a split one.
    """

    name: str
    tool: str
    fn: Callable[[], object] | None  # None: filled by the contender whose ``split`` names it
    maps: int
    classes: int
    split: str | None = None
    warm: Callable[[], object] | None = None  # the warm-up call (default: ``fn``)
    times: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    repeat: int = 1
    calls: list[Callable[[], object]] | None = None  # a split contender's inner calls, one per slot


def split_calls(calls: list[Callable[[], object]], sink: list[float], device: torch.device) -> Callable[[], None]:
    """A callable running ``calls`` one after another, appending each call's seconds to ``sink``."""
    def run():
        for call in calls:
            start = time.perf_counter()
            call()
            sync(device)
            sink.append(time.perf_counter() - start)
    return run


def _unit(c: Contender, slot: int):
    """What ``c`` runs in ``slot`` of a round: its ``slot``-th inner call (split), its call while
    ``slot < repeat``, else nothing (also for a passive contender filled by its split partner)."""
    if c.calls is not None:
        return c.calls[slot] if slot < len(c.calls) else None
    return c.fn if c.fn is not None and slot < c.repeat else None


def interleaved(contenders: list[Contender], device: torch.device, lo: int, hi: int,
                deadline: float = math.inf, measure_peak: bool = True) -> int:
    """Run between ``lo`` and ``hi`` rounds, stopping once another round would pass ``deadline``
    (a ``time.perf_counter`` value); fills ``times`` (and ``peak_mb`` in round 1).

    A round is a sequence of *slots*: in slot ``j`` every contender runs one call (a split
    contender its ``j``-th inner call, a repeated one its ``j``-th repeat), in an order rotated by
    one position per slot and per round. Samples that a ratio pairs are then taken seconds apart,
    not a whole round apart, so a drift of machine speed hits both sides of a pair alike.
    Returns the number of rounds run."""
    partners = {c.name: c for c in contenders}
    slots = max([len(c.calls) if c.calls is not None else c.repeat for c in contenders] or [0])
    rounds, last = 0, 0.0
    while rounds < hi and (rounds < lo or time.perf_counter() + last <= deadline):
        begin = time.perf_counter()
        totals = {c.name: 0.0 for c in contenders if c.calls is not None}
        for slot in range(slots):
            shift = (rounds + slot) % len(contenders)
            for c in contenders[shift:] + contenders[:shift]:
                unit = _unit(c, slot)
                if unit is None:
                    continue
                tracked = measure_peak and rounds == 0 and slot == 0 and reset_peak()
                base = memory_mb()["rss_mb"] if tracked else 0.0
                start = time.perf_counter()
                unit()
                sync(device)
                seconds = time.perf_counter() - start
                if tracked:
                    c.peak_mb = memory_mb()["hwm_mb"] - base
                if c.calls is None:
                    c.times.append(seconds)
                    continue
                totals[c.name] += seconds
                if c.split in partners:
                    partners[c.split].times.append(seconds)
        for name, total in totals.items():
            partners[name].times.append(total)
        rounds, last = rounds + 1, time.perf_counter() - begin
    return rounds


def warm_up(contenders: list[Contender], device: torch.device) -> None:
    """One unrecorded warm-up call per contender (a split contender: one of its inner calls)."""
    for c in contenders:
        if c.fn is not None:
            (c.warm or c.fn)()
            sync(device)
    for c in contenders:
        c.times.clear()


def summary(times: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles (inclusive method) of a list of seconds."""
    if not times:
        return {"n": 0, "median_s": float("nan"), "min_s": float("nan"), "max_s": float("nan"),
                "q1_s": float("nan"), "q3_s": float("nan")}
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else (times[0],) * 3
    return {"n": len(times), "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "q1_s": q1, "q3_s": q3}


def paired_ratio(slow: list[float], fast: list[float], per_slow: float = 1.0, per_fast: float = 1.0) -> dict:
    """Throughput ratio fast/slow from paired samples: median, min, max of ``(slow/per_slow)/(fast/per_fast)``.

    ``per_*`` are the maps each sample produced, so contenders producing different map counts per
    call compare per map. Unequal lengths (a split contender has K samples per round) are paired
    by grouping the longer list into as many consecutive sums as the shorter one has entries.
    """
    n = min(len(slow), len(fast))
    if n == 0:
        return {"ratio": float("nan"), "ratio_min": float("nan"), "ratio_max": float("nan")}

    def grouped(xs, per):
        k = len(xs) // n
        return [sum(xs[i * k:(i + 1) * k]) / (per * k) for i in range(n)]

    s, f = grouped(slow, per_slow), grouped(fast, per_fast)
    ratios = [a / b for a, b in zip(s, f)]
    return {"ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
