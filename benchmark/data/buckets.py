"""Batches of images whose model inputs have the same shape (exact batching of aspect-kept inputs).

With ``shorter_side`` preprocessing (TorchRay's protocol) every input keeps its image's aspect ratio,
so inputs of one batch may differ in size. Padding them to one size would change what the model sees;
grouping them by their input shape does not: a batch holds only images whose inputs have the same
``(H, W)`` (known from the manifest's ``height``/``width`` before any image is decoded), at most
``batch_size`` of them. Square inputs (``paper``, ``center_crop``) all share one shape, so the batches
are the consecutive runs of ``batch_size`` images that ``DataLoader(batch_size=...)`` makes.
"""

from __future__ import annotations

from collections.abc import Sequence


def shape_batches(shapes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Positions ``0..len(shapes)-1`` in batches of equal shape, at most ``batch_size`` each.

    Positions of one shape stay in order; batches are ordered by their first position, so the
    batches of equal shapes are exactly ``DataLoader``'s consecutive ones.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected >= 1")
    groups: dict[tuple[int, int], list[int]] = {}
    for position, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(position)
    batches = [group[i:i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]
    return sorted(batches, key=lambda batch: batch[0])


def input_batches(sizes_hw: Sequence[tuple[int, int]], prep, batch_size: int) -> list[list[int]]:
    """``shape_batches`` of the inputs ``prep`` (``benchmark.data.transforms.Preprocess``) makes from
    images of the original sizes ``sizes_hw``."""
    return shape_batches([prep.input_hw(h, w) for h, w in sizes_hw], batch_size)
