"""Metrics: per-sample scores (``score_batch``) and named, versioned aggregations (``aggregate``).

Every public module of this package is imported here, so its ``METRICS`` entries exist.
"""

from benchmark.registry import import_submodules
from benchmark.metrics.base import METRICS, Metric, build_metric

import_submodules(__name__)

__all__ = ["METRICS", "Metric", "build_metric"]
