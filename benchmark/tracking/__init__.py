"""Optional mirror of runs to Weights & Biases: ``tracked`` (here), wandb_logger.py, dashboard.py.
May import the foundation modules, data, models, methods, metrics and runs; never report or entry points.

``tracked(config)`` is a no-op unless ``logger.name=wandb``; ``wandb`` and the W&B workspace
library are imported only when used. Tracking never costs a result: a W&B run that cannot be opened
(no network, a bad key, a quota) is opened offline instead, with one warning, or, if that fails too,
the job runs untracked; a failure while logging or finishing is a warning, never the job's error.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)


class _NullTracker:
    def log_summary(self, summary: dict) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


@contextlib.contextmanager
def tracked(config: dict):
    """Yield a tracker for the run; W&B runs are always finished in ``finally``."""
    if config.get("logger", {}).get("name", "none") != "wandb":
        yield _NullTracker()
        return
    tracker = open_tracker(config)
    try:
        yield tracker
        tracker.finish(exit_code=0)
    except BaseException:
        tracker.finish(exit_code=1)
        raise


def open_tracker(config: dict):
    """A ``WandbTracker`` for the run; offline when W&B cannot be reached, untracked when not even that works."""
    from benchmark.tracking.wandb_logger import WandbTracker

    try:
        return WandbTracker(config)
    except Exception as err:  # noqa: BLE001  (whatever W&B raises, the evaluation goes on)
        first = f"{type(err).__name__}: {err}"
    try:
        tracker = WandbTracker(config, mode="offline")
        log.warning("W&B could not open the run (%s); tracking offline instead (sync later with `wandb sync`)", first)
        return tracker
    except Exception as err:  # noqa: BLE001
        log.warning("W&B could not open the run (%s), not even offline (%s: %s); the job runs untracked",
                    first, type(err).__name__, err)
        return _NullTracker()
