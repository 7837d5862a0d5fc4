"""TorchRay's pointing-game protocol as settings (Fong, Patrick & Vedaldi's TorchRay benchmark, the
source of the published pointing numbers; Zhang et al., ECCV 2016, for the difficult lists).

* Smoothing: the maps of the pixel-space methods (gradient, guided backprop, deconvnet) are
  resized to the original ``H x W`` and then convolved with a Gaussian of standard deviation
  ``sigma = smooth * max(H, W)`` (``smooth`` 0.02): separable, taps ``-ceil(4 sigma)..ceil(4 sigma)``
  normalized to sum to 1, borders replicated. The other methods' maps are left as they are.
* Difficult subset: Zhang et al.'s lists (``pointing_game_ebp_voc07_difficult.txt``,
  ``pointing_game_ebp_coco_difficult.txt``): one line per image, the image name (file stem), then one
  0/1 flag per class, tab-separated. A (image, class) pair is in the subset iff its flag is 1; an
  image absent from the list stays in the subset (TorchRay skips only listed pairs flagged 0).
* Class mean over all classes: ``mean_c hits_c / max(hits_c + misses_c, 1)`` over every class of
  the dataset (20 / 80), a class without records counting as 0.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

PIXEL_SPACE = ("gradient", "guided_backprop", "deconvnet")


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[K, H, W]`` maps convolved with a normalized separable Gaussian (replicated borders)."""
    if sigma <= 0:
        return maps
    width = math.ceil(4 * sigma)
    taps = torch.arange(-width, width + 1, dtype=torch.float32, device=maps.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(maps.float()[:, None], (width, width, width, width), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return x[:, 0]


def smoothing_sigma(smooth: float, orig_hw: tuple[int, int]) -> float:
    """The Gaussian's standard deviation in original pixels: ``smooth`` times the longer side."""
    return float(smooth) * max(orig_hw)


class DifficultList:
    """Zhang et al.'s per-(image, class) difficult flags, read from a tab-separated file."""

    def __init__(self, path: str | Path, num_classes: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"pointing option difficult_list: {self.path} not found (expected Zhang et al.'s "
                                    "pointing_game_ebp_*_difficult.txt: image name, then one 0/1 flag per class)")
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.flags: dict[str, tuple[bool, ...]] = {}
        for number, line in enumerate(data.decode().splitlines(), 1):
            if not line.strip():
                continue
            name, *values = line.rstrip("\n").split("\t")
            if values and any(v.strip() not in ("0", "1") for v in values):
                raise ValueError(f"{self.path}, line {number}: flags {values[:5]}...; expected 0 or 1 per class")
            if num_classes is not None and len(values) != num_classes:
                raise ValueError(f"{self.path}, line {number}: {len(values)} flags for image {name!r}; expected "
                                 f"{num_classes} (one per class)")
            if name in self.flags:
                raise ValueError(f"{self.path}, line {number}: image {name!r} listed twice")
            self.flags[name] = tuple(v.strip() == "1" for v in values)

    def keys_for(self, image_id: str, split: str = "") -> tuple[str, ...]:
        """Names the lists use for an image: VOC's id, COCO's ``COCO_<split>_<12-digit id>``."""
        return (str(image_id), f"COCO_{split}_{image_id}") if split else (str(image_id),)

    def in_subset(self, image_id: str, class_id: int, split: str = "") -> bool:
        """True iff the pair is flagged 1, or the image is not listed."""
        for key in self.keys_for(image_id, split):
            if key in self.flags:
                row = self.flags[key]
                if not 0 <= int(class_id) < len(row):
                    raise ValueError(f"{self.path}: image {key!r} has {len(row)} flags, class {class_id} asked")
                return row[int(class_id)]
        return True

    def describe(self) -> str:
        return f"EBP list {self.path} (sha256 {self.sha256[:12]}, {len(self.flags)} images; unlisted images kept)"


def class_mean_all_classes(records: pd.DataFrame, num_classes: int) -> float | None:
    """TorchRay's accuracy in %: per-class ``hits / max(records, 1)`` averaged over all classes."""
    if num_classes <= 0:
        return None
    hits = np.zeros(num_classes)
    total = np.zeros(num_classes)
    if len(records):
        ids = records["class_id"].to_numpy(int)
        if ids.min() < 0 or ids.max() >= num_classes:
            raise ValueError(f"pointing: class ids {ids.min()}..{ids.max()} outside 0..{num_classes - 1} "
                             "(metric option all_classes)")
        np.add.at(hits, ids, records["hit"].to_numpy(bool).astype(float))
        np.add.at(total, ids, 1.0)
    return float(100.0 * (hits / np.maximum(total, 1.0)).mean())
