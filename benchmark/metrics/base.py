"""The metric contract and registry.

A metric turns a batch into tidy record rows (one per image and class, fixed columns) and, as a
separate named step, aggregates the records of a run into summary numbers. Aggregations carry a
``name`` and ``version`` recorded in ``summary.json`` so a table can say how a number was made.
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import torch

from benchmark.data.transforms import Preprocess
from benchmark.methods.base import SaliencyMethod
from benchmark.registry import Registry
from benchmark.types import NonFiniteLogits, Sample

METRICS = Registry("metric")


class Metric:
    """Subclasses set ``name``, ``aggregation`` ``(name, version)`` and implement the two steps."""

    name = "metric"
    aggregation = ("none", 0)

    def score_batch(self, samples: list[Sample], images: torch.Tensor, method: SaliencyMethod,
                    prep: Preprocess) -> list[dict[str, Any]]:
        raise NotImplementedError

    def prepare_batch(self, samples: list[Sample], images: torch.Tensor, method: SaliencyMethod,
                      prep: Preprocess) -> Callable[[], list[dict[str, Any]]]:
        """Two phases: the device work now (the method's pass, maps copied to the host), the host
        work (resizing to the original size, boxes, points) in the returned callable, which
        ``evaluate`` runs in a worker thread while the next batch is on the device. The callable
        must not touch ``method`` (its hooks and scopes belong to the main thread). This default
        does everything now."""
        rows = self.score_batch(samples, images, method, prep)
        return lambda: rows

    def aggregate(self, records: pd.DataFrame) -> dict[str, Any]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Protocol settings, written into every summary."""
        return {}


def prepare_or_record(metric: Metric, samples: list[Sample], images: torch.Tensor, method: SaliencyMethod,
                      prep: Preprocess, on_error: str = "raise") -> tuple[Callable[[], list[dict]], list[dict]]:
    """``metric.prepare_batch`` and error rows: with ``on_error="record"`` the images whose logits are
    not finite become error rows (never ranked into predictions) and the rest of the batch is scored."""
    try:
        return metric.prepare_batch(samples, images, method, prep), []
    except NonFiniteLogits as err:
        if on_error != "record":
            raise
        bad = set(err.image_ids)
        errors = [{"image_id": s.image_id, "class_id": -1, "error": f"NonFiniteLogits: {NonFiniteLogits([s.image_id])}"}
                  for s in samples if s.image_id in bad]
        keep = [i for i, s in enumerate(samples) if s.image_id not in bad]
        if not keep:
            return list, errors
        return metric.prepare_batch([samples[i] for i in keep], images[keep], method, prep), errors


def build_metric(name: str, **options) -> Metric:
    """Build a registered metric; an option it does not declare is an ``OptionError`` listing the ones it does."""
    import benchmark.metrics  # noqa: F401  (registers every metric)

    METRICS.check_options(name, options)
    return METRICS.get(name)(**options)
