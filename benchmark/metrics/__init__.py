"""Metrics: per-sample scores (``score_batch``) and named, versioned aggregations (``aggregate``)."""

from benchmark.metrics.base import METRICS, Metric, build_metric

__all__ = ["METRICS", "Metric", "build_metric"]
