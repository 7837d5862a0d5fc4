"""Optional mirror of a run to Weights & Biases; a no-op unless ``logger.name=wandb``."""

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
    from benchmark.wandb_logger import WandbTracker

    tracker = WandbTracker(config)
    try:
        yield tracker
        tracker.finish(exit_code=0)
    except BaseException:
        tracker.finish(exit_code=1)
        raise
