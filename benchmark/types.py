"""The one ``Sample`` type every reader yields, per-sample ``Record`` rows, and the map contract."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Sample:
    """One annotated image, at its original resolution.

    ``boxes_xyxy`` are 0-based inclusive pixel indices ``[N, 4]`` (x0, y0, x1, y1) with one class
    index per box in ``box_labels`` and a ``box_difficult`` flag (VOC). ``masks_rle`` maps a class
    index to the COCO RLE (dict with ``size`` and ``counts``) of the union of that class's instance
    masks. ``labels`` are the image-level classes present (ILSVRC: the single GT class).
    """

    image_id: str
    image: np.ndarray  # [H, W, 3] uint8 RGB
    labels: tuple[int, ...]
    boxes_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    box_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    box_difficult: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))
    masks_rle: dict[int, dict] = field(default_factory=dict)
    split: str = ""
    blacklisted: bool = False

    @property
    def orig_size_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def boxes_of(self, class_id: int, include_difficult: bool = True) -> np.ndarray:
        """Boxes ``[M, 4]`` of one class (optionally without the difficult ones)."""
        keep = self.box_labels == class_id
        if not include_difficult:
            keep &= ~self.box_difficult
        return self.boxes_xyxy[keep]


class MapContractError(ValueError):
    """A saliency method returned maps that break the contract (shape or dtype)."""


def validate_maps(maps: torch.Tensor, batch: int, size_hw: tuple[int, int], where: str) -> torch.Tensor:
    """Check the saliency-map contract: float32 ``[B, H, W]`` at input resolution.

    Non-finite values are *not* an error here: such a map is scored as a failure and flagged
    ``degenerate`` by the metric, never silently repaired.
    """
    if not isinstance(maps, torch.Tensor):
        raise MapContractError(f"{where}: maps must be a torch.Tensor, got {type(maps).__name__}")
    expected = (batch, *size_hw)
    if tuple(maps.shape) != expected:
        raise MapContractError(f"{where}: maps have shape {tuple(maps.shape)}, expected {expected} [B, H, W]")
    if maps.dtype != torch.float32:
        raise MapContractError(f"{where}: maps have dtype {maps.dtype}, expected torch.float32")
    return maps


def is_degenerate(saliency: np.ndarray) -> bool:
    """A map is degenerate when it has a non-finite value or is constant (no location to read)."""
    if saliency.size == 0 or not np.all(np.isfinite(saliency)):
        return True
    return bool(saliency.max() == saliency.min())


class NonFiniteLogits(ValueError):
    """A model returned NaN or infinite logits: it cannot rank classes, so the images cannot be scored."""

    def __init__(self, image_ids: list[str]):
        self.image_ids = list(image_ids)
        more = f" (and {len(image_ids) - 1} more in its batch)" if len(image_ids) > 1 else ""
        super().__init__(f"image {image_ids[0]!r}{more}: the model's logits are NaN or infinite; expected finite "
                         "logits to rank classes. Check the model and its weights (or set on_error=record to "
                         "record such images as failed and go on)")


def check_logits(logits: torch.Tensor, image_ids) -> None:
    """Raise ``NonFiniteLogits`` naming the first image whose logits ``[B, C]`` are not all finite."""
    bad = (~torch.isfinite(logits.detach())).flatten(1).any(dim=1).cpu()
    if bool(bad.any()):
        raise NonFiniteLogits([str(image_ids[i]) for i in torch.nonzero(bad).flatten().tolist()])


def top_classes(logits: torch.Tensor, k: int, image_ids) -> torch.Tensor:
    """The ``k`` highest-scoring classes ``[B, k]`` of finite ``logits [B, C]``, equal scores in class order.

    A stable sort, so the ranking of tied scores (a constant output, a saturated softmax) is the
    class order on every machine, unlike ``torch.topk``'s. Non-finite logits raise ``NonFiniteLogits``.
    """
    check_logits(logits, image_ids)
    return torch.sort(logits.detach(), dim=1, descending=True, stable=True).indices[:, :k]
