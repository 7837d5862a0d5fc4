"""Optional mirror of runs to Weights & Biases: ``tracked`` (here), wandb_logger.py, dashboard.py.
May import the foundation modules, data, models, methods, metrics and runs; never report or entry points.

``tracked(config)`` is a no-op unless ``logger.name=wandb``; ``wandb`` and the W&B workspace
library are imported only when used.
"""

from __future__ import annotations

import contextlib


class _NullTracker:
    def log_summary(self, summary: dict) -> None:
        pass


@contextlib.contextmanager
def tracked(config: dict):
    """Yield a tracker for the run; W&B runs are always finished in ``finally``."""
    if config.get("logger", {}).get("name", "none") != "wandb":
        yield _NullTracker()
        return
    from benchmark.tracking.wandb_logger import WandbTracker

    tracker = WandbTracker(config)
    try:
        yield tracker
        tracker.finish(exit_code=0)
    except BaseException:
        tracker.finish(exit_code=1)
        raise
