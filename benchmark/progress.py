"""Progress for a run: a tqdm bar on a terminal, a log line every few percent otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("benchmark.progress")


class Progress:
    """``with Progress(total, label) as p: p.update(n)``: images/s and ETA either way."""

    def __init__(self, total: int, label: str, enabled: bool = True, every_percent: float = 10.0):
        self.total, self.label, self.done = total, label, 0
        self.tty = enabled and sys.stderr.isatty()
        self.enabled, self.every = enabled, every_percent
        self.next_mark = every_percent
        self.bar = tqdm(total=total, desc=label, unit="img", dynamic_ncols=True) if self.tty else None
        self.start = time.perf_counter()

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        self.done += n
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

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
