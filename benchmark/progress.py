"""Progress for a run: a start line, a tqdm bar on a terminal or a log line every few percent otherwise,
and a heartbeat while a batch runs.

The start line names the images to compute (and those reused from an interrupted run) and what one map
costs (``cost_per_map``), so a slow method is not mistaken for a hung one. While no batch finishes, a
heartbeat thread logs (or refreshes the bar) every ``heartbeat`` seconds (10 by default) with the images
done and the time since the last one, so the console is never silent for longer than that.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time

from tqdm import tqdm

log = logging.getLogger("benchmark.progress")
HEARTBEAT_S = 10.0


def cost_per_map(method: str, options: dict | None, input_size: int = 224) -> str:
    """What one map of ``method`` costs, in forward and backward passes of the model (a description for the
    start line, from the method's name and options: occlusion counts its windows)."""
    options = options or {}
    if method in ("center", "precomputed"):
        return "no model pass (the map is given)"
    if method.startswith("occlusion") or method == "captum_occlusion":
        stride = int(options.get("stride", 1) or 1)
        windows = math.ceil(input_size / stride) ** 2
        return f"{windows + 1} forwards (stride {stride}: {windows} occluded inputs + the original)"
    if method == "cam":
        return "1 forward"
    return "1 forward + 1 backward"


class Progress:
    """``with Progress(total, label) as p: p.update(n)``: images/s and ETA either way, a heartbeat between updates."""

    def __init__(self, total: int, label: str, enabled: bool = True, every_percent: float = 10.0,
                 heartbeat: float = HEARTBEAT_S, reused: int = 0, cost: str | None = None):
        self.total, self.label, self.done = total, label, 0
        self.tty = enabled and sys.stderr.isatty()
        self.enabled, self.every = enabled, every_percent
        self.next_mark = every_percent
        self.start = self.last = time.perf_counter()
        if enabled:
            log.info("%s: %d images to compute%s%s", label, total,
                     f" ({reused} reused from record parts)" if reused else "", f"; each map costs {cost}" if cost else "")
        self.bar = tqdm(total=total, desc=label, unit="img", dynamic_ncols=True) if self.tty else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        if enabled and heartbeat and heartbeat > 0 and total > 0:
            self._thread = threading.Thread(target=self._beat, args=(heartbeat,), name="progress-heartbeat", daemon=True)
            self._thread.start()

    def __enter__(self):
        return self

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                if self.bar is not None:
                    self.bar.refresh()  # elapsed time moves on the bar
                    continue
                now = time.perf_counter()
                log.info("%s: still working: %d/%d images done, %.0fs since the last batch, %.0fs elapsed",
                         self.label, self.done, self.total, now - self.last, now - self.start)

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            self.last = time.perf_counter()
            if self.bar is not None:
                self.bar.update(n)
                return
            percent = 100.0 * self.done / max(self.total, 1)
            if self.enabled and (percent >= self.next_mark or self.done == self.total):
                elapsed = time.perf_counter() - self.start
                rate = self.done / elapsed if elapsed > 0 else 0.0
                eta = (self.total - self.done) / rate if rate > 0 else float("inf")
                log.info("%s: %d/%d images (%.0f%%), %.1f img/s, ETA %.0fs", self.label, self.done, self.total,
                         percent, rate, eta)
                while self.next_mark <= percent:
                    self.next_mark += self.every

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __exit__(self, *exc):
        self.close()
        return False
