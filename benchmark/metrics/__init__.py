"""Metrics: per-sample scores (``score_batch``), named, versioned aggregations (``aggregate``), run artifacts.
May import the foundation modules, data, models and methods; never runs, report or anything above (no tables).

Every public module of this package is imported here, so its ``METRICS`` entries exist. The
artifacts a run folder gets beside its records (``write_artifacts``: per-class CSV, the modified
pointing game's curve, the occlusion metric's Fig. 1 panel in ``_fig1.py``) are the metrics' own.
"""

from benchmark.registry import import_submodules
from benchmark.metrics.base import METRICS, Metric, build_metric

import_submodules(__name__)

__all__ = ["METRICS", "Metric", "build_metric"]
